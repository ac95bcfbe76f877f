"""Device parameters in a study: ``[hardware.device]`` fields, each a value or a search.

A study file names its device as ``device = "NAME"`` (or ``{choices = [...]}``), or as a table
that also sets or searches the device model's own parameters::

    [hardware.device]
    name = "pcm-joshi2020"                       # a preset, a [hardware.measured] name, or
                                                 # "module:function" returning a Device
    g_max = {low = 5e-6, high = 1e-4, log = true}  # any param() declared on the model's class
    temperature = {choices = ["25 C", "85 C"]}   # K, or a string in C or K
    on_off_ratio = {choices = [10, 100]}         # g_max / g_min: sets g_min
    read_noise_scale = {choices = [0.5, 1, 2]}   # also prog_noise_scale, drift_scale, and
                                                 # noise_scale (all three at once)

Every declared parameter of the device classes is a field, found from their ``param()``
declarations (so a parameter another model declares is searchable without a change here); its
domain (type, range) is its declaration's. A parameter only one class declares is allowed when
every named device has it; values a model refuses (another class's range, a fit's validity
range) are refused when the study is loaded, naming the field and the design. The scales are
applied by :func:`memxbar.devices.scaled.scaled` (one mechanism for every technology).
Searched fields are named ``device.<field>`` in a study's parameters and tables.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Iterable, Mapping
from typing import Any

from memxbar.devices import presets
from memxbar.devices.base import Device
from memxbar.devices.scaled import MAX_SCALE, SCALES, scaled
from memxbar.errors import ConfigError
from memxbar.studies.hardware import Dim, Domain, domain_of, short_repr

PREFIX = "device."
ZERO_CELSIUS = 273.15  # K
MAX_ON_OFF = 1e9
SCALE_DOMAIN = Domain("float", lo=0.0, hi=MAX_SCALE,
                      doc="factor on the model's programming noise, read noise and drift")
EXTRA_DOMAINS = {
    "noise_scale": SCALE_DOMAIN,
    **{name: Domain("float", lo=0.0, hi=MAX_SCALE, doc=f"factor on the model's {what}")
       for name, what in zip(SCALES, ("programming noise (write error)",
                                      "read-noise standard deviation", "drift exponent"),
                             strict=True)},
    "on_off_ratio": Domain("float", lo=1.0, hi=MAX_ON_OFF, lo_open=True,
                           doc="g_max / g_min (sets g_min)"),
}
_TEMPERATURE = re.compile(r"\s*([-+0-9.eE]+)\s*(°\s*C|deg\s*C|C|K)\s*")


def parse_temperature(value: object) -> Any:
    """Kelvin from a number (K) or a string ``"85 C"``, ``"85 °C"``, ``"358.15 K"``; any other
    value is returned unchanged (for the domain to refuse)."""
    if not isinstance(value, str):
        return value
    m = _TEMPERATURE.fullmatch(value)
    try:
        number = float(m.group(1)) if m else math.nan
    except ValueError:
        number = math.nan
    if m is None or not math.isfinite(number):
        raise ConfigError(f"{short_repr(value)} is not a temperature; allowed: a number in K, "
                          "or a string '<number> C' or '<number> K' (e.g. '85 C', '358.15 K')")
    unit = m.group(2).replace(" ", "")
    return number if unit == "K" else number + ZERO_CELSIUS


def _convert(name: str, raw: Any) -> Any:
    """Unit strings of ``raw`` (a value, ``{choices}`` or ``{low, high}``) converted to SI."""
    if name != "temperature":
        return raw
    if isinstance(raw, dict):
        return {k: ([parse_temperature(v) for v in val] if k == "choices" and
                    isinstance(val, list) else parse_temperature(val) if k in ("low", "high")
                    else val) for k, val in raw.items()}
    return parse_temperature(raw)


def declared(cls: type) -> list[str]:
    """Names of the parameters a device class declares with ``param()`` (settable ones)."""
    return [f.name for f in dataclasses.fields(cls) if f.init and "param" in f.metadata]


def split_device_table(hardware: Mapping[str, Any]) -> dict[str, Any]:
    """``[hardware]`` with a ``device`` table split into ``device`` (its ``name``) and
    ``device_params`` (the other keys); other input unchanged."""
    raw = hardware.get("device")
    if not isinstance(raw, dict) or set(raw) == {"choices"}:
        return dict(hardware)
    params = {k: v for k, v in raw.items() if k != "name"}
    if "device_params" in hardware:
        raise ConfigError("hardware.device_params: set device parameters in [hardware.device]")
    if "name" not in raw:  # (its fields would change an ideal device silently, or nothing)
        raise ConfigError("hardware.device.name: required in a [hardware.device] table; "
                          "allowed: a preset name (memxbar devices list), a measured device "
                          "or your own device's 'module:function'")
    return {**hardware, "device": raw["name"], "device_params": params}


def _classes(names: Iterable[Any], measured: Iterable[str]) -> list[type] | None:
    """Device classes of the named devices; None when one is user code (known only once
    built)."""
    from memxbar.devices.measured import MeasuredDevice

    out: list[type] = []
    for name in names:
        if not isinstance(name, str):
            continue
        if name in measured:
            out.append(MeasuredDevice)
        elif ":" in name:
            return None
        elif name in presets.names():
            out.append(type(presets.get(name)))
    return out


def device_dims(raw: Mapping[str, Any], names: Iterable[Any],
                measured: Iterable[str]) -> dict[str, Dim]:
    """Parse the ``[hardware.device]`` parameters ``raw`` (name -> TOML value) of a study whose
    device field takes the values ``names``; raises ConfigError naming the field."""
    classes = _classes(names, list(measured))
    out: dict[str, Dim] = {}
    for key, value in raw.items():
        where = f"hardware.device.{key}"
        if not isinstance(key, str) or not key.isidentifier():
            raise ConfigError(f"hardware.device: {short_repr(key)} is not a field name")
        domain = EXTRA_DOMAINS.get(key)
        if domain is None:
            owners = [c for c in classes or () if key in declared(c)]
            if classes is not None and (not owners or len(owners) < len(classes)):
                common = sorted(set.intersection(*(set(declared(c)) for c in classes))
                                if classes else set(declared(Device)))
                lacking = sorted({c.__name__ for c in classes if key not in declared(c)})
                raise ConfigError(f"{where}: not a parameter of "
                                  f"{', '.join(lacking) or 'the device'}; allowed: "
                                  f"{', '.join(common + sorted(EXTRA_DOMAINS))}")
            domain = (domain_of(owners[0], key) if owners else
                      domain_of(Device, key) if key in declared(Device) else Domain("float"))
        try:
            out[PREFIX + key] = domain.parse(_convert(key, value))
        except ConfigError as e:
            raise ConfigError(f"{where}: {e}") from None
    if "on_off_ratio" in raw and "g_min" in raw:
        raise ConfigError("hardware.device: on_off_ratio sets g_min; give one of them")
    if "noise_scale" in raw and set(raw) & set(SCALES):
        raise ConfigError("hardware.device: noise_scale sets prog_noise_scale, "
                          "read_noise_scale and drift_scale; give it or them, not both")
    return out


def device_overrides(params: Mapping[str, Any]) -> dict[str, Any]:
    """The device parameters of one design (``device.<field>`` entries, prefix removed)."""
    return {k[len(PREFIX):]: v for k, v in params.items() if k.startswith(PREFIX)}


def apply_overrides(device: Device, overrides: Mapping[str, Any], name: str) -> Device:
    """``device`` with the design's parameters set: declared parameters replaced (checked by
    the model), then ``on_off_ratio`` (g_min = g_max / ratio), then the noise and drift
    scales. ConfigError names the field, the value and the device."""
    fields = dict(overrides)
    scales = {k: fields.pop(k) for k in (*SCALES, "noise_scale") if k in fields}
    ratio = fields.pop("on_off_ratio", None)
    try:
        if fields:
            device = dataclasses.replace(device, **fields)
        if ratio is not None:
            device = dataclasses.replace(device, g_min=device.g_max / ratio)
    except TypeError as e:  # a field this class does not have
        raise ConfigError(f"hardware.device: device {name!r} ({type(device).__name__}): "
                          f"{e}") from None
    except ConfigError as e:
        shown = ", ".join(f"{k}={short_repr(v)}" for k, v in overrides.items())
        raise ConfigError(f"hardware.device ({shown}) for device {name!r}: {e}") from None
    if "noise_scale" in scales:
        s = scales.pop("noise_scale")
        scales = {k: s for k in SCALES}
    return scaled(device, **{k: float(v) for k, v in scales.items()}) if scales else device


def device_field_rows() -> list[dict[str, str]]:
    """Rows for ``memxbar study fields``: the ``[hardware.device]`` fields every device has
    (declared on :class:`~memxbar.devices.base.Device`), the scales and the on/off ratio; a
    model's own parameters (``memxbar devices show NAME``) are fields too."""
    rows = []
    for name in declared(Device):
        d = domain_of(Device, name)
        rows.append({"name": f"hardware.device.{name}", "type": d.kind, "unit": d.unit,
                     "allowed": d.allowed() + (" (or '85 C', '358.15 K')"
                                               if name == "temperature" else ""),
                     "default": "the device's", "sets": f"Device.{name}", "source": d.source,
                     "doc": d.doc})
    for name, d in EXTRA_DOMAINS.items():
        rows.append({"name": f"hardware.device.{name}", "type": d.kind, "unit": d.unit,
                     "allowed": d.allowed(), "default": "1" if name != "on_off_ratio" else
                     "the device's", "sets": "ScaledDevice" if name != "on_off_ratio" else
                     "Device.g_min", "source": "", "doc": d.doc})
    rows.append({"name": "hardware.device.<param>", "type": "", "unit": "", "allowed":
                 "as declared", "default": "the device's", "sets": "the model's field",
                 "source": "", "doc": "any other parameter the device model declares "
                                      "(memxbar devices show NAME)"})
    return rows
