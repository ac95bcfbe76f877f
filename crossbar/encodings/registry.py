"""Encodings by name, and the factory that checks a combination and builds its encoding."""

from __future__ import annotations

from memxbar.crossbar.encodings.base import Encoding, StoredEncoding
from memxbar.crossbar.encodings.differential import Differential
from memxbar.crossbar.encodings.offset import Offset
from memxbar.crossbar.encodings.sliced import BitSlices
from memxbar.crossbar.periphery import MAX_BITS
from memxbar.devices.base import Device
from memxbar.errors import ConfigError, plain_value

REGISTRY: dict[str, type[StoredEncoding]] = {cls.name: cls for cls in (Differential, Offset)}
ENCODINGS: tuple[str, ...] = tuple(REGISTRY)
LAYOUTS: tuple[str, ...] = ("columns", "arrays")


def _int(owner: str, name: str, value: object, lo: int, hi: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise ConfigError(f"{owner}.{name} = {value!r} is not allowed; allowed: an integer in "
                          f"[{lo}, {hi}]")


def make_encoding(encoding: str, layout: str, weight_bits: int, bits_per_cell: int,
                  device: Device, *, owner: str = "TileConfig") -> Encoding:
    """The encoding named ``encoding`` in ``layout``, for ``weight_bits`` (0: analog) and
    ``bits_per_cell`` (0: one cell per code, else bit slices) on ``device``'s conductance
    range. Refuses a bad combination with a ConfigError naming ``owner``'s field."""
    encoding, layout = plain_value(encoding), plain_value(layout)
    weight_bits, bits_per_cell = plain_value(weight_bits), plain_value(bits_per_cell)
    for name, value, allowed in (("encoding", encoding, ENCODINGS), ("layout", layout, LAYOUTS)):
        if value not in allowed:
            raise ConfigError(f"{owner}.{name} = {value!r} is not allowed; allowed: "
                              f"{', '.join(allowed)}")
    cls = REGISTRY[encoding]
    if layout not in cls.LAYOUTS:
        raise ConfigError(f"{owner}.layout = {layout!r} is not allowed with encoding="
                          f"'{encoding}' ({cls.LAYOUT_NOTE}); allowed: "
                          f"{', '.join(repr(v) for v in cls.LAYOUTS)}")
    _int(owner, "weight_bits", weight_bits, 0, MAX_BITS)
    if weight_bits == 1:
        raise ConfigError(f"{owner}.weight_bits = 1 is not allowed; allowed: 0 (analog) or an "
                          f"integer in [2, {MAX_BITS}] (sign included)")
    if bits_per_cell != 0 and weight_bits == 0:
        raise ConfigError(f"{owner}.bits_per_cell = {bits_per_cell!r} is not allowed with "
                          "weight_bits = 0 (analog weights); allowed: 0")
    enc = cls(weight_bits=weight_bits, g_min=float(device.g_min), g_max=float(device.g_max),
              layout=layout)
    if weight_bits:
        _int(owner, "bits_per_cell", bits_per_cell, 0, enc.magnitude_bits)
    return BitSlices(enc, bits_per_cell) if bits_per_cell else enc
