"""Study files: a TOML file validated by pydantic (see DESIGN.md, studies/).

A study file has seven tables (every field below, with defaults, is in ``quickstart.toml``):

- ``[study]``: ``name``, ``seed``, ``trials``, ``output`` (folder, relative to the current
  directory; default ``runs/<name>``), ``storage`` (Optuna RDB URL; default an SQLite file
  ``<output>/study.db``).
- ``[workload]``: ``dataset``, ``data_dir`` (relative to the study file), ``limit``, ``model``,
  ``model_options``, and ``[workload.training]``: ``recipe`` (digital, hardware-aware, online),
  ``epochs``, ``lr``, ``optimizer``, ``weight_decay``, ``batch_size`` and the recipe options.
- ``[hardware]``: one value or a search range per field (see :data:`HARDWARE_DOMAINS`), and
  ``[hardware.measured.NAME]`` tables (``file``, ``g_min``, ``g_max``) that make a measured-device
  file usable as ``device = "NAME"``.
- ``[cost]``: fixed fields of the cost model (:class:`memxbar.crossbar.cost.CostModel`: node,
  ADC model, rows read in parallel, sensing, buffer type...) for the energy, latency and area
  objectives; default memxbar's defaults.
- ``[evaluation]``: ``times`` since programming (seconds, or strings such as ``"1 h"``,
  ``"10 years"``), ``repeats`` (programming draws per design).
- ``[[objectives]]``: ``metric`` (one of :data:`METRICS`), ``time`` (accuracy only; one of the
  evaluation times), ``direction`` (default: maximize accuracy, minimize the rest).
- ``[sampler]``: ``kind`` (grid, random, tpe, nsga2) and its options.

A searchable field holds a value (fixed), ``{choices = [...]}``, or a numeric range
``{low = .., high = .., step = .., log = ..}``. A grid study needs every searched field discrete
(choices, an integer range, or a float range with a step).

Errors: :func:`load_spec` raises :class:`SpecError`, one line naming the file, each field path
(``hardware.adc_bits``, ``objectives[1].time``) and the allowed values.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import itertools
import json
import math
import re
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import partial
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    PlainValidator,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from ..crossbar.cost import CostModel
from ..crossbar.periphery import MAX_BITS, RANGE_MODES
from ..crossbar.tile import ENCODINGS, LAYOUTS, READ_NOISE, UPDATE_MODES
from ..devices import presets
from ..devices.base import Device
from ..errors import ConfigError
from ..training.digital import OPTIMIZERS
from ..training.online import ALGORITHMS as ONLINE_ALGORITHMS
from .workloads import DATASETS, MODELS, N_CLASSES

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10 needs the tomli backport (same API)
    import tomli as tomllib

SAMPLERS = ("grid", "random", "tpe", "nsga2")
RECIPES = ("digital", "hardware-aware", "online")
DRIFT_COMPENSATION = ("none", "global", "per_column")
INPUT_SCALING = ("dynamic", "calibrated")
# fields added after the first release, with the value that reproduces the behaviour from
# before: at that value they stay out of a study's identity and its model-cache key, so older
# studies resume
ADDED_FIELDS: dict[tuple[str, ...], Any] = {
    ("hardware", "input_scaling"): "dynamic",
    ("cost",): {},
    ("workload", "training", "adc_recalibrate_every"): 0,
}


def _drop_added(data: dict[str, Any], prefix: tuple[str, ...] = ()) -> dict[str, Any]:
    """``data`` (a model dump at ``prefix``) without the added fields at their old values."""
    for path, old in ADDED_FIELDS.items():
        if path[: len(prefix)] != prefix:
            continue
        *parents, key = path[len(prefix):]
        node = data
        for name in parents:
            node = node.get(name, {})
        if key in node and node[key] == old:
            del node[key]
    return data
METRICS = ("accuracy", "energy_per_inference", "latency", "area", "programming_energy")
METRIC_UNITS = {"accuracy": "1", "energy_per_inference": "J", "latency": "s", "area": "m^2",
                "programming_energy": "J"}
DIRECTIONS = ("maximize", "minimize")
DEFAULT_DIRECTION = {m: "maximize" if m == "accuracy" else "minimize" for m in METRICS}
INPUT_SHAPES = {"digits": (1, 8, 8), "mnist": (1, 28, 28), "fashion-mnist": (1, 28, 28),
                "cifar10": (3, 32, 32)}

YEAR = 365.25 * 86400.0  # s, Julian year
TIME_UNITS = {
    "s": 1.0, "sec": 1.0, "second": 1.0, "seconds": 1.0,
    "min": 60.0, "minute": 60.0, "minutes": 60.0,
    "h": 3600.0, "hr": 3600.0, "hour": 3600.0, "hours": 3600.0,
    "d": 86400.0, "day": 86400.0, "days": 86400.0,
    "w": 604800.0, "week": 604800.0, "weeks": 604800.0,
    "y": YEAR, "yr": YEAR, "year": YEAR, "years": YEAR,
}
_LABEL_UNITS = (("y", YEAR), ("d", 86400.0), ("h", 3600.0), ("min", 60.0), ("s", 1.0))
# Column headers of the two measured pulse-file formats memxbar.devices.measured reads.
MEASURED_FORMATS = {
    ("up_pulse_response", "down_pulse_response"): "gong2018",
    ("phase", "pulse_number", "conductance_s"): "jo2010",
}
READY_DIR = "studies"  # ready-made study files are packaged next to this module


class SpecError(ConfigError):
    """A study file that cannot be read or validated (one line: file, field paths, allowed)."""


# --------------------------------------------------------------------------- times


def parse_time(value: object) -> float:
    """Seconds since programming from a number (s) or a string ``"<number> <unit>"`` with a
    unit of :data:`TIME_UNITS` (a year is 365.25 days). Must be finite and >= 0."""
    allowed = ("a number of seconds >= 0 or a string '<number> <unit>' with unit s, min, h, "
               "d, w or y (also sec, hr, yr, and second, minute, hour, day, week, year, "
               "singular or plural)")
    if isinstance(value, bool):
        raise ConfigError(f"{value!r} is not a time; allowed: {allowed}")
    if isinstance(value, (int, float)):
        seconds = float(value)
    elif isinstance(value, str):
        m = re.fullmatch(r"\s*([-+0-9.eE]+)\s*([A-Za-z]*)\s*", value)
        unit = m.group(2).lower() if m else ""
        try:
            number = float(m.group(1)) if m else math.nan
        except ValueError:
            number = math.nan
        if m is None or math.isnan(number) or (unit and unit not in TIME_UNITS):
            raise ConfigError(f"{value!r} is not a time; allowed: {allowed}")
        seconds = number * TIME_UNITS.get(unit, 1.0)
    else:
        raise ConfigError(f"{value!r} is not a time; allowed: {allowed}")
    if not (math.isfinite(seconds) and seconds >= 0):
        raise ConfigError(f"{value!r} is not a time; allowed: {allowed}")
    return seconds


def time_label(seconds: float) -> str:
    """Short label of a time: the largest unit (y, d, h, min, s) it is at least one of."""
    for unit, size in _LABEL_UNITS:
        if seconds >= size or unit == "s":
            return f"{seconds / size:.4g} {unit}"
    raise AssertionError("unreachable")


def _num(x: float) -> str:
    text = repr(float(x))
    return text[:-2] if text.endswith(".0") else text


def metric_key(metric: str, t: float | None = None) -> str:
    """Name of a metric in an objective function's result: ``"accuracy@3600s"`` for the
    accuracy ``t`` seconds after programming, the metric name itself otherwise."""
    if metric not in METRICS:
        raise ConfigError(f"unknown metric {metric!r}; known: {', '.join(METRICS)}")
    if metric == "accuracy":
        if t is None:
            raise ConfigError("metric 'accuracy' needs a time t (s)")
        return f"accuracy@{_num(t)}s"
    return metric


def accuracy_key(t: float) -> str:
    """``metric_key("accuracy", t)``."""
    return metric_key("accuracy", t)


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

    def points(self) -> list[Any]:
        """Grid points; needs an integer range or a step."""
        if self.integer:
            step = int(self.step or 1)
            return list(range(int(self.low), int(self.high) + 1, step))
        if self.step is None:
            raise ConfigError("a continuous range has no grid points")
        n = round((self.high - self.low) / self.step)
        return [round(self.low + k * self.step, 12) for k in range(n + 1)]


Dim = Fixed | Choices | Range


@dataclass(frozen=True)
class Domain:
    """Allowed values of one searchable field."""

    kind: Literal["int", "float", "str", "bool"]
    lo: float | None = None
    hi: float | None = None
    lo_open: bool = False
    options: tuple[str, ...] | None = None
    exclude: tuple[Any, ...] = ()
    unit: str = ""
    doc: str = ""
    nullable: bool = False  # None (unset) is the default; TOML cannot write it

    def allowed(self) -> str:
        """Human description of the allowed values."""
        if self.kind == "bool":
            return "true or false"
        if self.kind == "str":
            return ", ".join(repr(o) for o in self.options) if self.options else "a string"
        what = "an integer" if self.kind == "int" else "a finite number"
        if self.lo is not None and self.hi is not None:
            text = f"{what} in [{_num(self.lo)}, {_num(self.hi)}]"
        elif self.lo is not None:
            text = f"{what} {'>' if self.lo_open else '>='} {_num(self.lo)}"
        else:
            text = what
        if self.exclude:
            text += f" except {', '.join(str(e) for e in self.exclude)}"
        return text

    def check(self, value: Any) -> Any:
        """The value, normalised (ints to float for float fields); ValueError if not allowed."""
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
                value = float(value)
            if ok and self.lo is not None:
                ok = value > self.lo if self.lo_open else value >= self.lo
            if ok and self.hi is not None:
                ok = value <= self.hi
            ok = ok and value not in self.exclude
        if not ok:
            raise ConfigError(f"{raw!r} is not allowed; allowed: {self.allowed()}")
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
            extra = sorted(set(raw) - {"choices"})
            if extra:
                raise ConfigError(f"{extra[0]!r} is not allowed next to 'choices'")
            values = raw["choices"]
            if not isinstance(values, list) or not values:
                raise ConfigError("choices must be a non-empty list")
            out = []
            for i, v in enumerate(values):
                try:
                    out.append(self.check(v))
                except ValueError as e:
                    raise ConfigError(f"choices[{i}] = {e}") from None
            if len(set(out)) != len(out):
                raise ConfigError(f"choices {values} repeat a value")
            return Choices(tuple(out))
        return self._parse_range(raw)

    def _parse_range(self, raw: dict) -> Range:
        keys = ("low", "high", "step", "log")
        if self.kind not in ("int", "float"):
            raise ConfigError(f"a table {{{', '.join(raw)}}} is not allowed for a {self.kind} "
                             f"field; allowed: {self.allowed()}, or {{choices = [...]}}")
        extra = [k for k in raw if k not in keys]
        if extra or "low" not in raw or "high" not in raw:
            bad = f"unknown key {extra[0]!r}" if extra else "'low' and 'high' are required"
            raise ConfigError(f"{bad}; a search is {{choices = [...]}} or "
                             "{low = .., high = .., step = .. (optional), log = .. (optional)}")
        low, high = {}, {}
        for key, out in (("low", low), ("high", high)):
            try:
                out["v"] = self.check(raw[key])
            except ValueError as e:
                raise ConfigError(f"{key} = {e}") from None
        lo, hi = low["v"], high["v"]
        if not lo < hi:
            raise ConfigError(f"low = {lo} must be < high = {hi}")
        log = raw.get("log", False)
        if not isinstance(log, bool):
            raise ConfigError(f"log = {log!r} is not allowed; allowed: true or false")
        step = raw.get("step")
        if step is not None:
            integer = self.kind == "int"
            if isinstance(step, bool) or not isinstance(step, int if integer else (int, float)) \
                    or not (math.isfinite(step) and step > 0):
                raise ConfigError(f"step = {step!r} is not allowed; allowed: "
                                 f"{'an integer >= 1' if integer else 'a finite number > 0'}")
            if log:
                raise ConfigError("step and log = true cannot be combined")
            n = (hi - lo) / step
            if abs(n - round(n)) > 1e-9 * max(1.0, abs(n)):
                raise ConfigError(f"high - low = {_num(hi - lo)} must be a multiple of "
                                 f"step = {_num(step)}")
        if log and lo <= 0:
            raise ConfigError(f"log = true needs low > 0 (got low = {lo})")
        return Range(lo, hi, self.kind == "int", step, log)


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


def _dim(domain: Domain) -> Any:
    return Annotated[Dim, PlainValidator(partial(_parse_dim, domain)), PlainSerializer(dump_dim)]


def _parse_dim(domain: Domain, raw: Any) -> Dim:
    return domain.parse(raw)


_BITS = dict(lo=0, hi=MAX_BITS, unit="bit")
HARDWARE_DOMAINS: dict[str, Domain] = {
    "device": Domain("str", doc="device preset name (memxbar devices list) or a name defined in "
                                "[hardware.measured]"),
    "tile_rows": Domain("int", lo=1, unit="cells", doc="rows of one crossbar array"),
    "tile_cols": Domain("int", lo=1, unit="cells", nullable=True,
                        doc="columns of one crossbar array (default: same as tile_rows)"),
    "encoding": Domain("str", options=ENCODINGS, doc="weight encoding"),
    "layout": Domain("str", options=LAYOUTS, doc="differential pair in neighbouring columns "
                                                 "or in two arrays"),
    "weight_bits": Domain("int", exclude=(1,), doc="weight resolution, sign included; "
                                                   "0 = analog weights", **_BITS),
    "bits_per_cell": Domain("int", doc="bit slicing: bits per cell; 0 = one cell per weight "
                                       "(per polarity)", **_BITS),
    "dac_bits": Domain("int", doc="DAC resolution, sign included; 0 = ideal", **_BITS),
    "dac_bit_serial": Domain("bool", doc="apply input bits one cycle each (shift-add)"),
    "adc_bits": Domain("int", doc="ADC resolution, sign included; 0 = ideal", **_BITS),
    "adc_range": Domain("str", options=RANGE_MODES, doc="ADC full-scale mode"),
    "adc_full_scale": Domain("float", lo=0.0, lo_open=True, nullable=True,
                             unit="V_read*(g_max-g_min)",
                             doc="ADC full scale with adc_range = 'fixed'"),
    "wire_resistance": Domain("float", lo=0.0, unit="ohm",
                              doc="wire resistance per cell segment, rows and columns"),
    "drift_compensation": Domain("str", options=DRIFT_COMPENSATION,
                                 doc="drift compensation applied at each evaluation time"),
    "read_noise": Domain("str", options=READ_NOISE, doc="how read noise is drawn"),
    "input_scaling": Domain("str", options=INPUT_SCALING,
                            doc="DAC input range: per input vector (dynamic) or one per layer "
                                "from the calibration data (calibrated)"),
}
RECIPE_DOMAIN = Domain("str", options=RECIPES, doc="training recipe")


# --------------------------------------------------------------------------- sections


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


def _resolve_path(value: str | None, info: ValidationInfo) -> str | None:
    if value is None:
        return None
    base = (info.context or {}).get("base_dir")
    path = Path(value).expanduser()
    if not path.is_absolute() and base is not None:
        path = Path(base) / path
    return str(path.resolve()) if base is not None else str(path)


def _check_files(info: ValidationInfo) -> bool:
    return bool((info.context or {}).get("check_files", True))


class StudySection(_Model):
    """``[study]``: identity, budget and where results go."""

    name: str | None = None
    seed: int = Field(default=0, ge=0)
    trials: int | None = Field(default=None, ge=1)
    output: str | None = None
    storage: str | None = None

    @field_validator("name")
    @classmethod
    def _name(cls, v: str | None) -> str | None:
        if v is not None and not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}", v):
            raise ConfigError(f"{v!r} is not allowed; allowed: 1-100 letters, digits, '.', '_', "
                             "'-', starting with a letter or digit")
        return v

    @field_validator("storage")
    @classmethod
    def _storage(cls, v: str | None) -> str | None:
        if v is None:
            return v
        from sqlalchemy.engine import make_url
        from sqlalchemy.exc import ArgumentError

        allowed = ("allowed: an SQLAlchemy database URL such as sqlite:///path/study.db, "
                   "postgresql://user:password@host:5432/db or mysql+pymysql://user@host/db")
        try:
            url = make_url(v)
        except ArgumentError:
            raise ConfigError(f"{v!r} is not a database URL; {allowed}") from None
        if url.get_backend_name() not in ("sqlite", "postgresql", "mysql"):
            raise ConfigError(f"{v!r}: backend {url.get_backend_name()!r} is not supported; "
                             f"{allowed}")
        if url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:"):
            raise ConfigError(f"{v!r}: an in-memory SQLite database cannot be shared by workers "
                             "or resumed; allowed: sqlite:///path/to/file.db")
        return v


class TrainingSpec(_Model):
    """``[workload.training]``: how the network's weights are obtained."""

    recipe: _dim(RECIPE_DOMAIN) = Fixed("digital")
    epochs: int = Field(default=10, ge=1)
    lr: float = Field(default=1e-3, gt=0, allow_inf_nan=False)
    optimizer: Literal[OPTIMIZERS] = "adam"
    weight_decay: float = Field(default=0.0, ge=0, allow_inf_nan=False)
    batch_size: int = Field(default=64, ge=1)
    noise_scale: float = Field(default=1.0, ge=0, allow_inf_nan=False)  # hardware-aware
    algorithm: Literal[ONLINE_ALGORITHMS] = "mixed"  # online: plain analog SGD or mixed precision
    update_mode: Literal[UPDATE_MODES] = "stochastic"  # online "sgd": pulse trains or counts
    pulse_train_length: int = Field(default=31, ge=1)  # online, stochastic pulse trains
    pulse_threshold: float = Field(default=32.0, ge=1, allow_inf_nan=False)  # online "mixed"
    lr_decay: float = Field(default=1.0, gt=0, le=1, allow_inf_nan=False)  # online, per epoch
    adc_recalibrate_every: int = Field(default=0, ge=0)  # online: steps between ADC re-rangings


class WorkloadSpec(_Model):
    """``[workload]``: dataset, reference model and training recipe."""

    dataset: Literal[DATASETS] = "digits"
    data_dir: str | None = None
    limit: int | None = Field(default=None, ge=1)
    model: Literal[MODELS] = "mlp"
    model_options: dict[str, Any] = Field(default_factory=dict)
    training: TrainingSpec = Field(default_factory=TrainingSpec)

    @field_validator("data_dir")
    @classmethod
    def _data_dir(cls, v: str | None, info: ValidationInfo) -> str | None:
        v = _resolve_path(v, info)
        if v is not None and _check_files(info) and not Path(v).is_dir():
            raise ConfigError(f"folder {v} does not exist")
        return v

    @model_validator(mode="after")
    def _check(self) -> WorkloadSpec:
        if self.dataset != "digits" and self.data_dir is None:
            raise ConfigError(f"workload.data_dir: required for dataset {self.dataset!r} "
                             "(the folder with its files)")
        from .workloads import build_model

        try:
            build_model(self.model, INPUT_SHAPES[self.dataset], N_CLASSES[self.dataset],
                        **self.model_options)
        except ValueError as e:
            raise ConfigError(f"workload.model_options: {e}") from None
        return self


class MeasuredSpec(_Model):
    """``[hardware.measured.NAME]``: a pulse-response file fitted by memxbar.devices.measured."""

    file: str
    g_min: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    g_max: float | None = Field(default=None, gt=0, allow_inf_nan=False)

    @field_validator("file")
    @classmethod
    def _file(cls, v: str, info: ValidationInfo) -> str:
        v = _resolve_path(v, info)
        if _check_files(info):
            path = Path(v)
            if not path.is_file():
                raise ConfigError(f"file {v} does not exist")
            measured_format(path)
        return v

    @model_validator(mode="after")
    def _range(self) -> MeasuredSpec:
        if self.g_min is not None and self.g_max is not None and not self.g_min < self.g_max:
            raise ConfigError(f"g_min = {self.g_min} must be < g_max = {self.g_max}")
        return self

    def build(self) -> Device:
        """Fit a :class:`~memxbar.devices.measured.MeasuredDevice` to the file."""
        from ..devices import measured

        reader = {"gong2018": measured.read_gong2018, "jo2010": measured.read_jo2010}
        data = reader[measured_format(Path(self.file))](self.file)
        return measured.fit(data.potentiation, data.depression, units=data.units,
                            g_min=self.g_min, g_max=self.g_max)


def measured_format(path: Path) -> str:
    """Format of a measured pulse file from its CSV header (:data:`MEASURED_FORMATS`)."""
    try:
        with path.open(encoding="utf-8", newline="") as fh:
            header = next(csv.reader(fh), [])
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"cannot read {path}: {e}") from None
    cols = tuple(c.strip() for c in header)
    for known, name in MEASURED_FORMATS.items():
        if set(known) <= set(cols):
            return name
    allowed = " or ".join("(" + ", ".join(k) + ")" for k in MEASURED_FORMATS)
    raise ConfigError(f"{path}: CSV columns {list(cols)} are not a known pulse-file format; "
                     f"allowed: columns {allowed}")


class HardwareSpec(_Model):
    """``[hardware]``: every field a value or a search range (see :data:`HARDWARE_DOMAINS`)."""

    measured: dict[str, MeasuredSpec] = Field(default_factory=dict)
    device: _dim(HARDWARE_DOMAINS["device"]) = Fixed("ideal")
    tile_rows: _dim(HARDWARE_DOMAINS["tile_rows"]) = Fixed(128)
    tile_cols: _dim(HARDWARE_DOMAINS["tile_cols"]) = Fixed(None)
    encoding: _dim(HARDWARE_DOMAINS["encoding"]) = Fixed("differential")
    layout: _dim(HARDWARE_DOMAINS["layout"]) = Fixed("columns")
    weight_bits: _dim(HARDWARE_DOMAINS["weight_bits"]) = Fixed(0)
    bits_per_cell: _dim(HARDWARE_DOMAINS["bits_per_cell"]) = Fixed(0)
    dac_bits: _dim(HARDWARE_DOMAINS["dac_bits"]) = Fixed(8)
    dac_bit_serial: _dim(HARDWARE_DOMAINS["dac_bit_serial"]) = Fixed(False)
    adc_bits: _dim(HARDWARE_DOMAINS["adc_bits"]) = Fixed(8)
    adc_range: _dim(HARDWARE_DOMAINS["adc_range"]) = Fixed("calibrated")
    adc_full_scale: _dim(HARDWARE_DOMAINS["adc_full_scale"]) = Fixed(None)
    wire_resistance: _dim(HARDWARE_DOMAINS["wire_resistance"]) = Fixed(0.0)
    drift_compensation: _dim(HARDWARE_DOMAINS["drift_compensation"]) = Fixed("global")
    read_noise: _dim(HARDWARE_DOMAINS["read_noise"]) = Fixed("per_mvm")
    input_scaling: _dim(HARDWARE_DOMAINS["input_scaling"]) = Fixed("dynamic")

    @field_validator("measured")
    @classmethod
    def _measured_names(cls, v: dict[str, MeasuredSpec]) -> dict[str, MeasuredSpec]:
        for name in v:
            if name in presets.names():
                raise ConfigError(f"{name!r} is the name of a device preset; allowed: another "
                                 "name")
        return v

    def dims(self) -> dict[str, Dim]:
        """Every hardware field's :data:`Dim`, by name."""
        return {name: getattr(self, name) for name in HARDWARE_DOMAINS}


class EvaluationSpec(_Model):
    """``[evaluation]``: times since programming (s) and programming repeats per design."""

    times: list[float] = Field(min_length=1)
    repeats: int = Field(default=1, ge=1)

    @field_validator("times", mode="before")
    @classmethod
    def _times(cls, v: Any) -> list[float]:
        if not isinstance(v, list):
            raise ConfigError(f"{v!r} is not allowed; allowed: a list of times, e.g. "
                             "[\"1 s\", \"1 h\", \"1 day\", \"1 year\"]")
        out = []
        for i, item in enumerate(v):
            try:
                out.append(parse_time(item))
            except ValueError as e:
                raise ConfigError(f"times[{i}] = {e}") from None
        if len(set(out)) != len(out):
            raise ConfigError(f"times {v} repeat a time")
        return sorted(out)


class ObjectiveSpec(_Model):
    """One ``[[objectives]]`` entry."""

    metric: Literal[METRICS]
    time: float | None = None
    direction: Literal[DIRECTIONS] | None = None

    @field_validator("time", mode="before")
    @classmethod
    def _time(cls, v: Any) -> float | None:
        return None if v is None else parse_time(v)

    @property
    def key(self) -> str:
        """Metric name in the objective function's result (:func:`metric_key`)."""
        return metric_key(self.metric, self.time)

    @property
    def sense(self) -> str:
        """``"maximize"`` or ``"minimize"``."""
        return self.direction or DEFAULT_DIRECTION[self.metric]

    @property
    def label(self) -> str:
        """Short label for tables and plots."""
        return (f"accuracy @ {time_label(self.time)}" if self.metric == "accuracy"
                else self.metric)


class SamplerSpec(_Model):
    """``[sampler]``: Optuna sampler and its options."""

    kind: Literal[SAMPLERS] = "tpe"
    population_size: int | None = Field(default=None, ge=2)  # nsga2
    n_startup_trials: int | None = Field(default=None, ge=0)  # tpe

    @model_validator(mode="after")
    def _options(self) -> SamplerSpec:
        for name, kind in (("population_size", "nsga2"), ("n_startup_trials", "tpe")):
            if getattr(self, name) is not None and self.kind != kind:
                raise ConfigError(f"sampler.{name}: only allowed with sampler.kind = {kind!r}")
        return self


class StudySpec(_Model):
    """A whole study file. Build it with :func:`load_spec` or :func:`parse_spec`."""

    study: StudySection = Field(default_factory=StudySection)
    workload: WorkloadSpec = Field(default_factory=WorkloadSpec)
    hardware: HardwareSpec = Field(default_factory=HardwareSpec)
    cost: dict[str, Any] = Field(default_factory=dict)
    evaluation: EvaluationSpec
    objectives: list[ObjectiveSpec] = Field(min_length=1)
    sampler: SamplerSpec = Field(default_factory=SamplerSpec)

    @field_validator("cost")
    @classmethod
    def _cost_fields(cls, value: dict[str, Any]) -> dict[str, Any]:
        """Every ``[cost]`` entry must be a :class:`CostModel` field with an allowed value."""
        cost_model(value)
        return value

    @model_validator(mode="before")
    @classmethod
    def _default_time(cls, data: Any) -> Any:
        """With one evaluation time, accuracy objectives default to it."""
        ev, objs = (data.get("evaluation"), data.get("objectives")) if isinstance(
            data, dict) else (None, None)
        times = ev.get("times") if isinstance(ev, dict) else None
        if isinstance(times, list) and len(times) == 1 and isinstance(objs, list):
            data = {**data, "objectives": [
                {**o, "time": times[0]} if isinstance(o, dict) and o.get("metric") == "accuracy"
                and "time" not in o else o for o in objs]}
        return data

    @model_validator(mode="after")
    def _cross(self) -> StudySpec:
        errors = []
        hw = self.hardware
        known = presets.names() + list(hw.measured)
        for value in _values(hw.device):
            if value not in known:
                errors.append(f"hardware.device: {value!r} is not a device preset or a "
                              f"[hardware.measured] name; allowed: {', '.join(known)}")
        if "fixed" in _values(hw.adc_range) and None in _values(hw.adc_full_scale):
            errors.append("hardware.adc_full_scale: required when hardware.adc_range can be "
                          "'fixed'; allowed: a number > 0")
        if isinstance(hw.weight_bits, Fixed) and hw.weight_bits.value == 0 and any(
                b != 0 for b in _values(hw.bits_per_cell)):
            errors.append("hardware.bits_per_cell: must be 0 with analog weights "
                          "(hardware.weight_bits = 0)")
        times = self.evaluation.times
        allowed_t = ", ".join(time_label(t) for t in times)
        seen = set()
        for i, obj in enumerate(self.objectives):
            if obj.metric == "accuracy" and obj.time is None:
                errors.append(f"objectives[{i}].time: required for metric 'accuracy'; "
                              f"allowed: one of evaluation.times ({allowed_t})")
                continue
            if obj.metric == "accuracy" and obj.time not in times:
                errors.append(f"objectives[{i}].time = {time_label(obj.time)} is not one of "
                              f"evaluation.times; allowed: {allowed_t}")
            elif obj.metric != "accuracy" and obj.time is not None:
                errors.append(f"objectives[{i}].time: only allowed with metric 'accuracy'")
            if obj.key in seen:
                errors.append(f"objectives[{i}]: {obj.label} is listed twice")
            seen.add(obj.key)
        if self.sampler.kind == "grid":
            space = self.search_space()
            for name, dim in space.items():
                if isinstance(dim, Range) and not dim.integer and dim.step is None:
                    errors.append(f"{_path(name)}: sampler.kind = 'grid' needs a discrete "
                                  "search; allowed: {choices = [...]} or a range with a step")
                elif isinstance(dim, Range) and dim.log:
                    errors.append(f"{_path(name)}: sampler.kind = 'grid' cannot use log = "
                                  "true; allowed: {choices = [...]} or a range with a step")
            if not space:
                errors.append("sampler.kind = 'grid' needs at least one searched field")
            elif not errors and self.study.trials is not None:
                n = self.grid_size()
                if self.study.trials > n:
                    errors.append(f"study.trials = {self.study.trials} is more than the "
                                  f"{n} grid points; allowed: 1 to {n} (or leave it out)")
        elif self.study.trials is None:
            errors.append(f"study.trials: required with sampler.kind = {self.sampler.kind!r}; "
                          "allowed: an integer >= 1")
        if errors:
            raise ConfigError("; ".join(errors))
        return self

    # ---------------------------------------------------------------- derived
    @property
    def name(self) -> str:
        """Study name (``[study] name``)."""
        return self.study.name or "study"

    @property
    def output_dir(self) -> Path:
        """Output folder (absolute)."""
        return Path(self.study.output or f"runs/{self.name}").expanduser().resolve()

    @property
    def storage_url(self) -> str:
        """Optuna storage URL: ``[study] storage`` or ``sqlite:///<output>/study.db``."""
        return self.study.storage or f"sqlite:///{self.output_dir / 'study.db'}"

    @property
    def directions(self) -> list[str]:
        """Optuna directions, one per objective."""
        return [o.sense for o in self.objectives]

    def dims(self) -> dict[str, Dim]:
        """Every searchable field: ``recipe`` and the hardware fields."""
        return {"recipe": self.workload.training.recipe, **self.hardware.dims()}

    def search_space(self) -> dict[str, Dim]:
        """The searched fields (name -> Choices or Range), in file order."""
        return {k: d for k, d in self.dims().items() if not isinstance(d, Fixed)}

    def fixed_params(self) -> dict[str, Any]:
        """The fields that are not searched (name -> value)."""
        return {k: d.value for k, d in self.dims().items() if isinstance(d, Fixed)}

    def resolve(self, searched: Mapping[str, Any]) -> dict[str, Any]:
        """Every parameter of one design: fixed values, then ``searched`` values; an unset
        ``tile_cols`` follows ``tile_rows``."""
        unknown = sorted(set(searched) - set(self.search_space()))
        if unknown:
            raise ConfigError(f"parameters {unknown} are not searched by this study; searched: "
                             f"{', '.join(self.search_space()) or 'none'}")
        missing = [k for k in self.search_space() if k not in searched]
        if missing:
            raise ConfigError(f"parameters {missing} are searched by this study but not given")
        out = {k: searched[k] if k in searched else d.value for k, d in self.dims().items()}
        if out["tile_cols"] is None:
            out["tile_cols"] = out["tile_rows"]
        return out

    def grid(self) -> list[dict[str, Any]]:
        """All grid points (searched values only), in file order of the fields."""
        space = self.search_space()
        axes = [list(d.values) if isinstance(d, Choices) else d.points() for d in space.values()]
        return [dict(zip(space, combo, strict=True)) for combo in itertools.product(*axes)]

    def grid_size(self) -> int:
        """Number of grid points."""
        return math.prod(len(d.values) if isinstance(d, Choices) else len(d.points())
                         for d in self.search_space().values())

    @property
    def n_trials(self) -> int:
        """Trial budget: ``[study] trials``, or the grid size for a grid study."""
        return self.study.trials if self.study.trials is not None else self.grid_size()

    def technology(self, device: str) -> str:
        """Technology of a device name ("pcm", "rram", ..., "measured")."""
        if device in self.hardware.measured:
            return "measured"
        return presets.preset(device).technology

    def build_device(self, device: str) -> Device:
        """A fresh device model for a device name (preset or ``[hardware.measured]`` entry)."""
        if device in self.hardware.measured:
            return self.hardware.measured[device].build()
        return presets.get(device)

    def workload_key(self, recipe: str | None = None) -> str:
        """Hash of what determines the digitally trained model: workload, recipe, seed (for
        a cache of trained models per workload)."""
        data = _drop_added(self.workload.model_dump(mode="json"), ("workload",))
        data["training"]["recipe"] = recipe
        data["seed"] = self.study.seed
        return _hash(data)

    def cost_model(self) -> CostModel:
        """The cost model of the ``[cost]`` table."""
        return cost_model(self.cost)

    def identity(self) -> dict[str, Any]:
        """The spec without budget and location (``trials``, ``output``, ``storage``): two
        runs with the same identity belong to the same study."""
        data = self.model_dump(mode="json")
        for key in ("trials", "output", "storage"):
            data["study"].pop(key)
        return _drop_added(data)

    def identity_hash(self) -> str:
        """Short hash of :meth:`identity`."""
        return _hash(self.identity())

    def with_study(self, source: str = "study", **changes: Any) -> StudySpec:
        """A copy with ``[study]`` fields replaced (``trials``, ``output``, ``storage``...),
        validated again as a whole (files are not checked again); errors start with
        ``source``."""
        data = self.model_dump(mode="json")
        data["study"].update(changes)
        return parse_spec(data, check_files=False, source=source)


def cost_model(fields: Mapping[str, Any]) -> CostModel:
    """The :class:`CostModel` of a ``[cost]`` table; a ValueError names the field
    (``cost.NAME``) and what is allowed."""
    names = [f.name for f in dataclasses.fields(CostModel)]
    unknown = sorted(set(fields) - set(names))
    if unknown:
        raise ConfigError(f"cost: unknown field(s) {', '.join(unknown)}; allowed fields: "
                         f"{', '.join(names)}")
    try:
        return CostModel(**fields)
    except ValueError as e:
        raise ConfigError(str(e).replace("CostModel: ", "cost: ").replace(
            "CostModel.", "cost.")) from None


def _values(dim: Dim) -> list[Any]:
    if isinstance(dim, Fixed):
        return [dim.value]
    if isinstance(dim, Choices):
        return list(dim.values)
    return []


def _path(name: str) -> str:
    return "workload.training.recipe" if name == "recipe" else f"hardware.{name}"


def _hash(data: Any) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


# --------------------------------------------------------------------------- loading


def _fields_at(model: type[BaseModel], loc: tuple) -> list[str] | None:
    """Field names of the model that holds ``loc[-1]`` (for "unknown field" messages)."""
    current: Any = model
    for part in loc[:-1]:
        if isinstance(part, int) or current is None:
            continue
        field = current.model_fields.get(part) if isinstance(current, type) and issubclass(
            current, BaseModel) else None
        if field is None:
            return None
        ann = field.annotation
        args = getattr(ann, "__args__", ())
        current = next((a for a in (ann, *args) if isinstance(a, type)
                        and issubclass(a, BaseModel)), None)
    if isinstance(current, type) and issubclass(current, BaseModel):
        return list(current.model_fields)
    return None


def _loc_text(prefix: str, loc: tuple) -> str:
    text = prefix
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _format_errors(err: ValidationError, prefix: str = "",
                   model: type[BaseModel] | None = None) -> str:
    model = model or StudySpec
    lines = []
    for e in err.errors(include_url=False):
        loc = tuple(e["loc"])
        path = _loc_text(prefix, loc)
        msg = e["msg"].removeprefix("Value error, ")
        if e["type"] == "extra_forbidden":
            fields = _fields_at(model, loc)
            allowed = f"; allowed fields: {', '.join(fields)}" if fields else ""
            lines.append(f"{path}: unknown field{allowed}")
        elif e["type"] == "missing":
            lines.append(f"{path}: required field is missing")
        elif e["type"] == "value_error":
            # model-level checks write their own full paths
            lines.append(f"{path}: {msg}" if path and not msg.startswith(path) else msg)
        else:
            lines.append(f"{path} = {e.get('input')!r}: {msg}")
    return "; ".join(lines)


def parse_spec(data: Mapping[str, Any], *, base_dir: str | Path | None = None,
               name: str | None = None, check_files: bool = True,
               source: str = "study") -> StudySpec:
    """Validate a study given as a dict (parsed TOML or :meth:`StudySpec.model_dump` JSON).

    Relative file paths are taken from ``base_dir``; ``name`` is the default study name;
    ``check_files=False`` skips checks that files exist (for specs read back from storage).
    Raises :class:`SpecError` whose message starts with ``source``.
    """
    data = dict(data)
    if name is not None and isinstance(data.get("study", {}), dict):
        study = dict(data.get("study", {}))
        study.setdefault("name", name)
        data["study"] = study
    context = {"base_dir": None if base_dir is None else str(base_dir),
               "check_files": check_files}
    try:
        return StudySpec.model_validate(data, context=context)
    except ValidationError as e:
        raise SpecError(f"{source}: {_format_errors(e)}") from None


def ready_studies() -> dict[str, Path]:
    """The ready-made study files packaged with memxbar, by name."""
    folder = resources.files(__package__)
    return {p.name[:-5]: Path(str(p)) for p in sorted(folder.iterdir(), key=lambda p: p.name)
            if p.name.endswith(".toml")}


def resolve_study(path_or_name: str | Path) -> Path:
    """The study file for a path, or for the name of a ready-made study (``quickstart``)."""
    path = Path(path_or_name)
    if path.is_file():
        return path
    ready = ready_studies()
    if str(path_or_name) in ready:
        return ready[str(path_or_name)]
    raise SpecError(f"study file {path} not found; ready-made studies: {', '.join(ready)}")


def load_spec(path_or_name: str | Path) -> StudySpec:
    """Read and validate a study file (a path, or a ready-made study's name)."""
    path = resolve_study(path_or_name)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise SpecError(f"{path}: cannot read the file ({e})") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise SpecError(f"{path}: not valid TOML: {e}") from None
    return parse_spec(data, base_dir=path.parent, name=path.stem, source=str(path))


def iter_fields() -> Iterator[tuple[str, Domain]]:
    """Every searchable field with its domain, as ``(path, domain)``."""
    yield "workload.training.recipe", RECIPE_DOMAIN
    for name, dom in HARDWARE_DOMAINS.items():
        yield f"hardware.{name}", dom
