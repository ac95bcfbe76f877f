"""The study's hardware fields, declared once, and the one place a study point becomes hardware.

Every ``[hardware]`` field of a study file that sets a configuration field is generated from
that field's :func:`memxbar.devices.base.param` declaration (type, unit, allowed values or
range, default, source, doc) on :class:`~memxbar.crossbar.tile.TileConfig`,
:class:`~memxbar.crossbar.periphery.ADC`, :class:`~memxbar.crossbar.periphery.DAC` or
:class:`~memxbar.mapping.MappingConfig`; only the study's own fields with no single config
counterpart (the device name, ``wire_resistance`` that sets ``r_row`` and ``r_col``,
``tile_cols`` that follows ``tile_rows``) are declared here. A study may bound a field more
tightly than its class (``tile_rows <= 4096``: a study runs many designs). :data:`FIELDS` lists
them all, :func:`build_hardware` turns one design's parameters into the tile and mapping
configuration, and ``memxbar study fields`` prints the table.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from memxbar.crossbar.periphery import ADC, DAC
from memxbar.crossbar.tile import TileConfig
from memxbar.devices.base import Device, declared_range
from memxbar.errors import ConfigError
from memxbar.mapping.config import MappingConfig

MAX_TILE = 4096  # largest tile_rows / tile_cols / rows_parallel of a study (cells)
MAX_FULL_SCALE = 1e7  # ADC full scale, units V_read*(g_max-g_min)
MAX_NOISE = 1e3  # out_noise, same units
MAX_INPUT_RANGE = 1e9  # activation units


# --------------------------------------------------------------------------- search dimensions


@dataclass(frozen=True)
class Fixed:
    """A field that is not searched."""

    value: Any


@dataclass(frozen=True)
class Choices:
    """A categorical search dimension."""

    values: tuple[Any, ...]


@dataclass(frozen=True)
class Range:
    """A numeric search dimension ``[low, high]`` (integer or float; ``step`` or ``log``)."""

    low: float
    high: float
    integer: bool
    step: float | None = None
    log: bool = False

    @property
    def continuous(self) -> bool:
        """A float range without a step: no grid points, any value in ``[low, high]``."""
        return not self.integer and self.step is None

    def n_points(self) -> int:
        """Number of grid points (computed, not listed); needs an integer range or a step."""
        if self.integer:
            return (int(self.high) - int(self.low)) // int(self.step or 1) + 1
        if self.step is None:  # continuous
            raise ConfigError("a continuous range has no grid points")
        return round((self.high - self.low) / self.step) + 1

    def points(self) -> list[Any]:
        """Grid points; needs an integer range or a step."""
        n = self.n_points()
        if self.integer:
            return list(range(int(self.low), int(self.high) + 1, int(self.step or 1)))
        step = self.step
        assert step is not None  # n_points() refused a continuous range without one
        return [round(self.low + k * step, 12) for k in range(n)]


Dim = Fixed | Choices | Range


def _num(x: float) -> str:
    text = repr(float(x))
    return text[:-2] if text.endswith(".0") else text


@dataclass(frozen=True)
class Domain:
    """Allowed values of one searchable field (generated from a ``param()`` declaration by
    :func:`domain_of`, or declared for a study-level field)."""

    kind: Literal["int", "float", "str", "bool"]
    lo: float | None = None
    hi: float | None = None
    lo_open: bool = False
    hi_open: bool = False
    options: tuple[str, ...] | None = None
    unit: str = ""
    doc: str = ""
    source: str = ""
    nullable: bool = False  # None is allowed (TOML cannot write it: it is a default)

    def allowed(self) -> str:
        """Human description of the allowed values."""
        if self.kind == "bool":
            return "true or false"
        if self.kind == "str":
            return ", ".join(repr(o) for o in self.options) if self.options else "a string"
        what = "an integer" if self.kind == "int" else "a finite number"
        if self.lo is not None and self.hi is not None:
            text = (f"{what} in {'(' if self.lo_open else '['}{_num(self.lo)}, "
                    f"{_num(self.hi)}{')' if self.hi_open else ']'}")
        elif self.lo is not None:
            text = f"{what} {'>' if self.lo_open else '>='} {_num(self.lo)}"
        elif self.hi is not None:
            text = f"{what} {'<' if self.hi_open else '<='} {_num(self.hi)}"
        else:
            text = what
        return text

    def check(self, value: Any) -> Any:
        """The value, normalised (ints to float for float fields); ConfigError if not allowed."""
        raw, ok = value, False
        if self.kind == "bool":
            ok = isinstance(value, bool)
        elif self.kind == "str":
            ok = isinstance(value, str) and (self.options is None or value in self.options)
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            if self.kind == "int":
                ok = isinstance(value, int)
            else:
                ok = math.isfinite(value)
                value = float(value) if ok else value
            if ok and self.lo is not None:
                ok = value > self.lo if self.lo_open else value >= self.lo
            if ok and self.hi is not None:
                ok = value < self.hi if self.hi_open else value <= self.hi
        if not ok:
            raise ConfigError(f"{short_repr(raw)} is not allowed; allowed: {self.allowed()}")
        return value

    def parse(self, raw: Any) -> Dim:
        """A :data:`Dim` from a TOML value: a value, ``{choices}`` or ``{low, high, ...}``."""
        if isinstance(raw, (Fixed, Choices, Range)):
            return raw
        if raw is None and self.nullable:
            return Fixed(None)
        if isinstance(raw, list):
            raise ConfigError(f"a list is not allowed; allowed: {self.allowed()}, or a search "
                              "written {choices = [...]}")
        if not isinstance(raw, dict):
            return Fixed(self.check(raw))
        if "choices" in raw:
            extra = sorted(set(raw) - {"choices"}, key=str)
            if extra:
                raise ConfigError(f"{short_repr(extra[0])} is not allowed next to 'choices'")
            values = raw["choices"]
            if not isinstance(values, list) or not values:
                raise ConfigError("choices must be a non-empty list")
            if len(values) > MAX_CHOICES:
                raise ConfigError(f"choices has {len(values)} values; allowed: at most "
                                  f"{MAX_CHOICES}")
            out = []
            for i, v in enumerate(values):
                try:
                    out.append(self.check(v))
                except ConfigError as e:
                    raise ConfigError(f"choices[{i}] = {e}") from None
            if len(set(out)) != len(out):
                raise ConfigError(f"choices {short_repr(values)} repeat a value")
            return Choices(tuple(out))
        return self._parse_range(raw)

    def _parse_range(self, raw: dict) -> Range:
        keys = ("low", "high", "step", "log")
        if self.kind not in ("int", "float"):
            keys_text = ", ".join(map(str, raw))
            keys_text = keys_text if len(keys_text) <= 60 else keys_text[:57] + "..."
            raise ConfigError(f"a table {{{keys_text}}} is not allowed "
                              f"for a {self.kind} field; allowed: {self.allowed()}, or "
                              "{choices = [...]}")
        extra = [k for k in raw if k not in keys]
        if extra or "low" not in raw or "high" not in raw:
            bad = (f"unknown key {short_repr(extra[0])}" if extra
                   else "'low' and 'high' are required")
            raise ConfigError(f"{bad}; a search is {{choices = [...]}} or "
                              "{low = .., high = .., step = .. (optional), log = .. (optional)}")
        bounds = {}
        for key in ("low", "high"):
            try:
                bounds[key] = self.check(raw[key])
            except ConfigError as e:
                raise ConfigError(f"{key} = {e}") from None
        lo, hi = bounds["low"], bounds["high"]
        if not lo < hi:
            raise ConfigError(f"low = {lo} must be < high = {hi}")
        log = raw.get("log", False)
        if not isinstance(log, bool):
            raise ConfigError(f"log = {short_repr(log)} is not allowed; allowed: true or false")
        step = raw.get("step")
        if step is not None:
            integer = self.kind == "int"
            if isinstance(step, bool) or not isinstance(step, int if integer else (int, float)) \
                    or not (math.isfinite(step) and step > 0):
                raise ConfigError(f"step = {short_repr(step)} is not allowed; allowed: "
                                  f"{'an integer >= 1' if integer else 'a finite number > 0'}")
            if log:
                raise ConfigError("step and log = true cannot be combined")
            n = (hi - lo) / step
            if abs(n - round(n)) > 1e-9 * max(1.0, abs(n)):
                raise ConfigError(f"high - low = {_num(hi - lo)} must be a multiple of "
                                  f"step = {_num(step)}")
            if n + 1 > MAX_CHOICES:
                raise ConfigError(f"the range has {round(n) + 1} grid points; allowed: at "
                                  f"most {MAX_CHOICES} (a larger step)")
        if log and lo <= 0:
            raise ConfigError(f"log = true needs low > 0 (got low = {lo})")
        return Range(lo, hi, self.kind == "int", step, log)


MAX_CHOICES = 10_000  # values of one {choices} list or grid points of one range


def short_repr(value: Any, limit: int = 60) -> str:
    """``repr(value)``, cut to ``limit`` characters (fuzzed files hold huge values)."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def dump_dim(dim: Dim) -> Any:
    """The TOML form of a :data:`Dim` (inverse of :meth:`Domain.parse`)."""
    if isinstance(dim, Fixed):
        return dim.value
    if isinstance(dim, Choices):
        return {"choices": list(dim.values)}
    out: dict[str, Any] = {"low": dim.low, "high": dim.high}
    if dim.step is not None:
        out["step"] = dim.step
    if dim.log:
        out["log"] = True
    return out


def dim_values(dim: Dim) -> list[Any]:
    """The values a dimension can take that are worth building at load: the value, every
    choice, every point of a range up to :data:`MAX_CHOICES` points, else its bounds."""
    if isinstance(dim, Fixed):
        return [dim.value]
    if isinstance(dim, Choices):
        return list(dim.values)
    if not dim.continuous and not dim.log:
        return dim.points()
    lo, hi = (int(dim.low), int(dim.high)) if dim.integer else (dim.low, dim.high)
    return [lo, hi]


# --------------------------------------------------------------------------- the fields


def domain_of(cls: type, name: str, **override: Any) -> Domain:
    """The :class:`Domain` of ``cls.name`` from its ``param()`` declaration; ``override``
    replaces entries (a tighter bound ``hi``, ``doc``, ``nullable``)."""
    meta = declared_range(name, next(f.metadata["param"] for f in dataclasses.fields(cls)
                                     if f.name == name))
    if meta["options"] is not None:
        opts = meta["options"]
        kind = "bool" if all(isinstance(o, bool) for o in opts) else "str"
        base: dict[str, Any] = dict(kind=kind, options=None if kind == "bool" else tuple(opts))
    else:
        lo = meta["ge"] if meta["ge"] is not None else meta["gt"]
        hi = meta["le"] if meta["le"] is not None else meta["lt"]
        base = dict(kind="int" if meta["integer"] else "float", lo=lo, hi=hi,
                    lo_open=meta["ge"] is None and meta["gt"] is not None,
                    hi_open=meta["le"] is None and meta["lt"] is not None)
    base.update(unit=meta["unit"], doc=meta["doc"], source=meta["source"],
                nullable=meta["nullable"])
    if "hi" in override and base.get("hi") is not None:
        override["hi"] = min(override["hi"], base["hi"])
    return Domain(**{**base, **override})


def _default_of(cls: type, name: str) -> Any:
    return next(f.default for f in dataclasses.fields(cls) if f.name == name)


@dataclass(frozen=True)
class HardwareField:
    """One ``[hardware]`` field: its domain, study default and what it sets."""

    name: str
    domain: Domain
    default: Any
    sets: tuple[str, ...]  # "TileConfig.rows", "ADC.bits"... ; () = read by the study itself
    added: bool = False  # added after the first release: at its default it stays out of the
    #                      study's identity, so older studies resume


def _config(name: str, cls: type, attr: str, default: Any = dataclasses.MISSING,
            added: bool = False, **override: Any) -> HardwareField:
    value = _default_of(cls, attr) if default is dataclasses.MISSING else default
    return HardwareField(name, domain_of(cls, attr, **override), value,
                         (f"{cls.__name__}.{attr}",), added)


_WIRE = domain_of(TileConfig, "r_row",
                  doc="wire resistance per cell segment, rows and columns (0 = ideal wires)")
FIELDS: tuple[HardwareField, ...] = (
    HardwareField("device", Domain("str", doc="device preset name (memxbar devices list) or a "
                                              "name defined in [hardware.measured]"),
                  "ideal", ("TileConfig.device",)),
    _config("tile_rows", TileConfig, "rows", 128, hi=MAX_TILE),
    _config("tile_cols", TileConfig, "cols", None, hi=MAX_TILE, nullable=True,
            doc="physical columns of each array (default: tile_rows)"),
    _config("encoding", TileConfig, "encoding"),
    _config("layout", TileConfig, "layout"),
    _config("weight_bits", TileConfig, "weight_bits"),
    _config("bits_per_cell", TileConfig, "bits_per_cell"),
    _config("dac_bits", DAC, "bits", 8),
    _config("dac_bit_serial", DAC, "bit_serial"),
    _config("adc_bits", ADC, "bits", 8),
    _config("adc_range", ADC, "range_mode", "calibrated"),
    _config("adc_full_scale", ADC, "full_scale", hi=MAX_FULL_SCALE,
            doc="ADC full scale with adc_range = 'fixed' and adc_bits > 0 (ignored "
                "otherwise), in units V_read*(g_max-g_min)"),
    HardwareField("wire_resistance", _WIRE, 0.0, ("TileConfig.r_row", "TileConfig.r_col")),
    _config("drift_compensation", MappingConfig, "compensation", "global"),
    _config("read_noise", TileConfig, "read_noise"),
    _config("input_scaling", MappingConfig, "input_scaling", added=True),
    _config("adc_model", ADC, "model", added=True),
    _config("rows_parallel", TileConfig, "rows_parallel", added=True, hi=MAX_TILE),
    _config("input_range", MappingConfig, "input_range", added=True, hi=MAX_INPUT_RANGE),
    _config("out_noise", TileConfig, "out_noise", added=True, hi=MAX_NOISE),
    _config("ir_drop", TileConfig, "ir_drop", added=True),
)
BY_NAME: dict[str, HardwareField] = {f.name: f for f in FIELDS}
HARDWARE_DOMAINS: dict[str, Domain] = {f.name: f.domain for f in FIELDS}
RENAMED_VALUES = {("drift_compensation", "per_column"): "column"}  # old study value -> new
# config field -> study field, to word the configuration classes' messages in study terms
_STUDY_NAME = {target: f.name for f in FIELDS for target in f.sets}


def study_message(message: str) -> str:
    """A configuration class's message with its field names replaced by the study's
    (``ADC.bits`` -> ``hardware.adc_bits``)."""
    for target in sorted(_STUDY_NAME, key=len, reverse=True):
        message = message.replace(target, f"hardware.{_STUDY_NAME[target]}")
    return message


def build_hardware(params: Mapping[str, Any], device: Device, *,
                   mapping: Mapping[str, Any] | None = None) -> tuple[TileConfig, MappingConfig]:
    """The tile and mapping configuration of one design: ``params`` holds every hardware
    field (:data:`FIELDS`; ``device`` is named there, built by the caller and passed as
    ``device``), ``mapping`` overrides further :class:`MappingConfig` fields (the online
    recipe's fixed weight clip). A value the simulator refuses raises :class:`ConfigError`
    naming the study field (``hardware.adc_bits = 1 ...``). Allocates nothing."""
    missing = [f.name for f in FIELDS if f.name not in params]
    if missing:
        raise ConfigError(f"build_hardware: params lacks {', '.join(missing)}")
    kwargs: dict[str, dict[str, Any]] = {"TileConfig": {}, "ADC": {}, "DAC": {},
                                         "MappingConfig": dict(mapping or {})}
    for f in FIELDS:
        value = params[f.name]
        if f.name == "tile_cols" and value is None:
            value = params["tile_rows"]
        elif f.name == "adc_full_scale" and (params["adc_range"] != "fixed"
                                             or params["adc_bits"] == 0):
            value = None  # a calibrated range comes from data; an ideal ADC has none
        elif f.name == "device":
            value = device
        for target in f.sets:
            cls, attr = target.split(".")
            kwargs[cls][attr] = value
    try:
        adc, dac = _config_object(ADC, kwargs["ADC"]), _config_object(DAC, kwargs["DAC"])
        tile = TileConfig(**kwargs["TileConfig"], adc=adc, dac=dac)
        return tile, _config_object(MappingConfig, kwargs["MappingConfig"])
    except ConfigError as e:
        raise ConfigError(study_message(str(e))) from None


def _config_object(cls: type, kwargs: dict[str, Any]) -> Any:
    """``cls(**kwargs)``, shared between designs with the same values (frozen, so safe):
    a study load builds thousands of designs from a few distinct ADCs, DACs and mappings."""
    key = (cls, tuple(sorted((k, type(v), v) for k, v in kwargs.items())))
    try:
        hash(key)
    except TypeError:
        return cls(**kwargs)
    if key not in _OBJECTS:
        if len(_OBJECTS) > 4096:
            _OBJECTS.clear()
        _OBJECTS[key] = cls(**kwargs)
    return _OBJECTS[key]


_OBJECTS: dict[tuple, Any] = {}


def field_rows() -> Iterator[dict[str, str]]:
    """One row per hardware field for ``memxbar study fields``: name, type, unit, allowed,
    default, sets, source, doc."""
    for f in FIELDS:
        d = f.domain
        kind = d.kind + (" or none" if d.nullable else "")
        yield {"name": f"hardware.{f.name}", "type": kind, "unit": d.unit,
               "allowed": d.allowed(), "default": "none" if f.default is None else
               repr(f.default), "sets": ", ".join(f.sets) or "-", "source": d.source,
               "doc": d.doc}
