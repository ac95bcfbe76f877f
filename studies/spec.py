"""Study files: a TOML file validated by pydantic (see DESIGN.md, studies/).

A study file has seven tables (every field below, with defaults, is in ``quickstart.toml``):

- ``[study]``: ``name``, ``seed``, ``trials``, ``output`` (folder, relative to the current
  directory; default ``runs/<name>``), ``storage`` (Optuna RDB URL; default an SQLite file
  ``<output>/study.db``), ``torch_device`` (where trials compute: "cpu", "cuda", "cuda:1").
- ``[workload]``: ``dataset``, ``data_dir`` (relative to the study file), ``limit``, ``model``,
  ``model_options``, and ``[workload.training]``: ``recipe`` (digital, hardware-aware, online),
  ``epochs``, ``lr``, ``optimizer``, ``weight_decay``, ``batch_size`` and the recipe options.
  ``dataset`` and ``model`` are built-in names or your own ``"module:function"``
  (:mod:`.usercode`: found next to the study file or in ``code_path``; its file's hash is in
  the ``code`` table memxbar fills at load, part of the study's identity).
- ``[hardware]``: one value or a search range per field (:mod:`memxbar.studies.hardware`
  generates them from the configuration classes; ``memxbar study fields`` lists them),
  ``[hardware.device]`` as a table with ``name`` and the device model's own parameters, noise
  and drift scales, on/off ratio and temperature (:mod:`.devicefields`; searched ones are named
  ``device.<field>``), ``device = "module:function"`` for your own Device, and
  ``[hardware.measured.NAME]`` tables (``file``, ``g_min``, ``g_max``, the measurement's read
  and write voltages, times and energy) that make a measured-device file usable as
  ``device = "NAME"`` (the file is read, fitted and hashed at load).
- ``[cost]``: fixed fields of the cost model (:class:`memxbar.crossbar.cost.CostModel`: node,
  sensing, buffer type...) for the energy, latency and area objectives; default memxbar's
  defaults. The hardware that is costed (ADC model, rows read in parallel) is ``[hardware]``.
- ``[evaluation]``: ``times`` since programming (seconds, or strings such as ``"1 h"``,
  ``"10 years"``), ``repeats`` (programming draws per design, each with new programming and
  read noise: the report's confidence intervals), ``target_accuracy`` (optional, for the
  report).
- ``[[objectives]]``: ``metric`` (one of :data:`METRICS`), ``time`` (accuracy only; one of the
  evaluation times), ``direction`` (default: maximize accuracy, minimize the rest).
- ``[sampler]``: ``kind`` (grid, sweep, random, tpe, nsga2) and its options. ``sweep`` runs
  the reference design (every field at its first value) and then each field through its other
  values with the rest at the reference. A study with nothing searched has one design.

A searchable field holds a value (fixed), ``{choices = [...]}``, or a numeric range
``{low = .., high = .., step = .., log = ..}``. A grid study needs every searched field discrete
(choices, an integer range, or a float range with a step).

Loading builds, without allocating anything, the hardware of every design a study can run
(every grid point or choice, every point of a discrete range, the bounds of a continuous one;
:data:`MAX_BUILT` combinations at most, then each value once and a seeded sample), estimates the
model's size and the tiles it needs, and checks every path; so a value the simulator would
refuse, an absurd size or an unwritable folder is refused at load. Every field has an upper
bound (the ``MAX_*`` constants here, in :mod:`.hardware` and in :mod:`.workloads`).

Errors: :func:`load_spec` raises :class:`SpecError`, one line naming the file, each field path
(``hardware.adc_bits``, ``objectives[1].time``) and the allowed values.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import math
import os
import random
import re
import sys
from collections.abc import Iterator, Mapping
from functools import partial
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, overload

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    PlainValidator,
    ValidationError,
    ValidationInfo,
    create_model,
    field_validator,
    model_validator,
)

from memxbar.crossbar.cost import MOVED_TO_HARDWARE, CostModel
from memxbar.crossbar.tile import MAX_BL, UPDATE_MODES
from memxbar.devices import presets
from memxbar.devices.base import MAX_CONDUCTANCE, Device
from memxbar.errors import ConfigError
from memxbar.studies import usercode
from memxbar.studies.devicefields import (
    apply_overrides,
    device_dims,
    device_overrides,
    split_device_table,
)
from memxbar.studies.files import (  # noqa: F401  (re-exported)
    expand_path,
    file_sha256,
    fit_measured,
    path_kind,
    writable_folder,
)
from memxbar.studies.hardware import (
    FIELDS,
    HARDWARE_DOMAINS,
    RENAMED_VALUES,
    Choices,
    Dim,
    Domain,
    Fixed,
    Range,
    build_hardware,
    dim_values,
    dump_dim,
    short_repr,
)
from memxbar.studies.workloads import (
    DATASETS,
    MODELS,
    N_CLASSES,
    build_model,
    missing_files,
    module_weight_shapes,
    user_dataset,
    user_model,
    weight_shapes,
)
from memxbar.studies.workloads import load as load_dataset
from memxbar.training.digital import MAX_SCALE, OPTIMIZERS
from memxbar.training.hwa import MAX_REPEATS
from memxbar.training.online import ALGORITHMS as ONLINE_ALGORITHMS

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10 needs the tomli backport (same API)
    import tomli as tomllib

SAMPLERS = ("grid", "sweep", "random", "tpe", "nsga2")
ENUMERATED = ("grid", "sweep")  # samplers whose designs are listed in advance
RECIPES = ("digital", "hardware-aware", "online")
# fields added after the first release, with the value that reproduces the behaviour from
# before: at that value they stay out of a study's identity and its model-cache key, so older
# studies resume
ADDED_FIELDS: dict[tuple[str, ...], Any] = {
    ("cost",): {},
    ("code",): {},
    ("hardware", "device_params"): {},
    ("evaluation", "target_accuracy"): None,
    ("evaluation", "inferences"): 0.0,
    ("workload", "training", "adc_recalibrate_every"): 0,
    **{("hardware", f.name): f.default for f in FIELDS if f.added},
}
# upper bounds of the study file (hardware bounds: memxbar.studies.hardware; model sizes:
# memxbar.studies.workloads)
MAX_TRIALS = 1_000_000  # trials of one study (also the largest grid)
MAX_SEED = 2**32 - 1
MAX_EPOCHS = 100_000
MAX_BATCH = 1 << 20
MAX_LIMIT = 100_000_000  # examples per split
MAX_TIMES = 100  # evaluation times
MAX_INFERENCES = 1e18  # inferences answered before the accuracy reads (read disturb)
MAX_TIME = 1000 * 365.25 * 86400.0  # s: 1000 years after programming
MAX_DEPTH = 8  # nesting of tables and lists in a study file
MAX_FILE_BYTES = 1 << 20  # size of a study file
MAX_BUILT = 2000  # hardware combinations built at load (each ~0.1 ms)
MAX_CELLS = 1 << 28  # cells of one design's tiles (about 5 GB of cell state in float32)
MAX_TEXT = 4096  # characters of a path or a storage URL
TORCH_DEVICE = re.compile(r"cpu|cuda(:[0-9]{1,2})?")


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
Direction = Literal["maximize", "minimize"]
DIRECTIONS: tuple[Direction, ...] = ("maximize", "minimize")
DEFAULT_DIRECTION: dict[str, Direction] = {m: "maximize" if m == "accuracy" else "minimize"
                                           for m in METRICS}
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


# --------------------------------------------------------------------------- search fields


def _dim(domain: Domain, name: str | None = None) -> Any:
    return Annotated[Dim, PlainValidator(partial(_parse_dim, domain, name)),
                     PlainSerializer(dump_dim)]


def _parse_dim(domain: Domain, name: str | None, raw: Any) -> Dim:
    values = raw.get("choices") if isinstance(raw, dict) else [raw]
    for value in values if isinstance(values, list) else ():
        new = (RENAMED_VALUES.get((name, value))
               if name is not None and isinstance(value, str) else None)
        if new is not None:
            raise ConfigError(f"{value!r} is now called {new!r}; allowed: {domain.allowed()}")
    return domain.parse(raw)


RECIPE_DOMAIN = Domain("str", options=RECIPES, doc="training recipe")


# --------------------------------------------------------------------------- sections


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


@overload
def _resolve_path(value: str, info: ValidationInfo, what: str = ...) -> str: ...
@overload
def _resolve_path(value: None, info: ValidationInfo, what: str = ...) -> None: ...
def _resolve_path(value: str | None, info: ValidationInfo, what: str = "path") -> str | None:
    if value is None:
        return None
    base = (info.context or {}).get("base_dir")
    path = expand_path(value, what)
    if not path.is_absolute() and base is not None:
        path = Path(base) / path
    try:
        return str(path.resolve()) if base is not None else str(path)
    except (OSError, RuntimeError) as e:  # a symlink loop, a name too long
        raise ConfigError(f"{what} {value!r} cannot be resolved: {e}") from None


def _check_files(info: ValidationInfo) -> bool:
    return bool((info.context or {}).get("check_files", True))


def check_storage_url(v: object, *, check_files: bool = True) -> str:
    """``v`` when it is an Optuna storage URL memxbar can use (an SQLite file, PostgreSQL,
    MySQL); otherwise a :class:`ConfigError` naming it and the allowed forms. ``check_files``:
    an SQLite file must not be a folder, and its folder must be writable."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    allowed = ("allowed: an SQLAlchemy database URL such as sqlite:///path/study.db, "
               "postgresql://user:password@host:5432/db or mysql+pymysql://user@host/db")
    if not isinstance(v, str):
        raise ConfigError(f"storage = {v!r} is not a URL string; {allowed}")
    if len(v) > MAX_TEXT:
        raise ConfigError(f"{short_repr(v)} has {len(v)} characters; {allowed} (at most "
                          f"{MAX_TEXT} characters)")
    try:
        url = make_url(v)
    except (ArgumentError, ValueError):
        raise ConfigError(f"{short_repr(v)} is not a database URL; {allowed}") from None
    if url.get_backend_name() not in ("sqlite", "postgresql", "mysql"):
        raise ConfigError(f"{short_repr(v)}: backend {url.get_backend_name()!r} is not "
                          f"supported; {allowed}")
    if url.get_backend_name() == "sqlite":
        if url.database in (None, "", ":memory:"):
            raise ConfigError(f"{v!r}: an in-memory SQLite database cannot be shared by "
                              "workers or resumed; allowed: sqlite:///path/to/file.db")
        if check_files:
            db = expand_path(url.database, "database")
            if path_kind(db, "database") == "dir":
                raise ConfigError(f"{v!r}: {db} is a folder; allowed: a database file")
            writable_folder(db.resolve().parent, "database folder")
    return v


class StudySection(_Model):
    """``[study]``: identity, budget, where results go and where trials compute."""

    name: str | None = None
    seed: int = Field(default=0, ge=0, le=MAX_SEED)
    trials: int | None = Field(default=None, ge=1, le=MAX_TRIALS)
    output: str | None = None
    storage: str | None = None
    torch_device: str = "cpu"

    @field_validator("name")
    @classmethod
    def _name(cls, v: str | None) -> str | None:
        if v is not None and not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}", v):
            raise ConfigError(f"{short_repr(v)} is not allowed; allowed: 1-100 letters, digits, "
                              "'.', '_', '-', starting with a letter or digit")
        return v

    @field_validator("output")
    @classmethod
    def _output(cls, v: str | None, info: ValidationInfo) -> str | None:
        if v is None:
            return v
        if not v.strip() or len(v) > MAX_TEXT:
            raise ConfigError(f"{short_repr(v)} is not allowed; allowed: a folder path (1 to "
                              f"{MAX_TEXT} characters)")
        folder = expand_path(v, "folder")
        if _check_files(info):
            try:
                folder = folder.resolve()
            except (OSError, RuntimeError) as e:
                raise ConfigError(f"folder {v!r} cannot be resolved: {e}") from None
            study_file = (info.context or {}).get("study_file")
            if study_file is not None and folder == Path(study_file).resolve():
                raise ConfigError(f"{v!r} is the study file itself; allowed: a folder for the "
                                  "results (default runs/<name>)")
            writable_folder(folder, "folder")
        return v

    @field_validator("torch_device")
    @classmethod
    def _torch_device(cls, v: str, info: ValidationInfo) -> str:
        if not TORCH_DEVICE.fullmatch(v):
            raise ConfigError(f"{short_repr(v)} is not allowed; allowed: 'cpu', 'cuda' or 'cuda:N' "
                              "(the memory device is [hardware] device)")
        if v != "cpu" and _check_files(info):
            check_torch_device(v)
        return v

    @field_validator("storage")
    @classmethod
    def _storage(cls, v: str | None, info: ValidationInfo) -> str | None:
        return v if v is None else check_storage_url(v, check_files=_check_files(info))


def check_torch_device(name: str) -> None:
    """Refuse a torch device (``"cuda"``, ``"cuda:1"``) this machine does not have."""
    import torch

    if name == "cpu":
        return
    if not torch.cuda.is_available():
        raise ConfigError(f"study.torch_device = {name!r}: CUDA is not available on this "
                          "machine; allowed: 'cpu'")
    index = int(name.partition(":")[2] or 0)
    if index >= torch.cuda.device_count():
        raise ConfigError(f"study.torch_device = {name!r}: this machine has "
                          f"{torch.cuda.device_count()} CUDA device(s); allowed: 'cpu' or "
                          f"'cuda:0' .. 'cuda:{torch.cuda.device_count() - 1}'")


class TrainingSpec(_Model):
    """``[workload.training]``: how the network's weights are obtained."""

    # [valid-type] ignores in this module: a search field's type (_dim) and Literal[<options>]
    # are built at import from one source (the domains, the registries' tuples); pydantic
    # reads them at runtime, a static checker cannot
    recipe: _dim(RECIPE_DOMAIN) = Fixed("digital")  # type: ignore[valid-type]
    epochs: int = Field(default=10, ge=1, le=MAX_EPOCHS)
    lr: float = Field(default=1e-3, gt=0, le=MAX_SCALE, allow_inf_nan=False)
    optimizer: Literal[OPTIMIZERS] = "adam"  # type: ignore[valid-type]
    weight_decay: float = Field(default=0.0, ge=0, le=MAX_SCALE, allow_inf_nan=False)
    batch_size: int = Field(default=64, ge=1, le=MAX_BATCH)
    noise_scale: float = Field(default=1.0, ge=0, le=MAX_SCALE,
                               allow_inf_nan=False)  # hardware-aware
    # online: plain analog SGD or mixed precision; "sgd": pulse trains or counts
    algorithm: Literal[ONLINE_ALGORITHMS] = "mixed"  # type: ignore[valid-type]
    update_mode: Literal[UPDATE_MODES] = "stochastic"  # type: ignore[valid-type]
    pulse_train_length: int = Field(default=31, ge=1, le=MAX_BL)  # online, stochastic trains
    pulse_threshold: float = Field(default=32.0, ge=1, le=MAX_SCALE,
                                   allow_inf_nan=False)  # online "mixed"
    lr_decay: float = Field(default=1.0, gt=0, le=1, allow_inf_nan=False)  # online, per epoch
    adc_recalibrate_every: int = Field(default=0, ge=0,
                                       le=10**9)  # online: steps between ADC re-rangings

    @model_validator(mode="after")
    def _used_by_a_recipe(self) -> TrainingSpec:
        """Refuse an option set away from its default that no recipe of the study reads (it
        would be ignored, yet enter the study's identity and the searched designs)."""
        recipes = set(self.recipe.values if isinstance(self.recipe, Choices) else
                      (self.recipe.value,))
        algorithms = {self.algorithm} if "online" in recipes else set()
        for name, (users, what) in _RECIPE_OPTIONS.items():
            used = recipes & users if what == "recipe" else algorithms & users
            if not used and getattr(self, name) != type(self).model_fields[name].default:
                where = (f"recipe {' / '.join(sorted(recipes))}" if what == "recipe" else
                         f"online algorithm {self.algorithm!r}")
                raise ConfigError(f"workload.training.{name} = {getattr(self, name)!r} is read "
                                  f"only by {what} {' / '.join(sorted(users))}, not by the "
                                  f"study's {where}; allowed: leave it out")
        return self


# options of [workload.training] and who reads them: a recipe, or an online algorithm
_RECIPE_OPTIONS: dict[str, tuple[set[str], str]] = {
    "noise_scale": ({"hardware-aware"}, "recipe"),
    "algorithm": ({"online"}, "recipe"), "update_mode": ({"online"}, "recipe"),
    "pulse_train_length": ({"online"}, "recipe"), "pulse_threshold": ({"mixed"}, "algorithm"),
    "lr_decay": ({"online"}, "recipe"), "adc_recalibrate_every": ({"online"}, "recipe"),
}


class WorkloadSpec(_Model):
    """``[workload]``: dataset, reference model and training recipe. ``dataset`` and ``model``
    are built-in names or your own code, ``"module:function"`` (:mod:`.usercode`)."""

    dataset: str = "digits"
    data_dir: str | None = None
    limit: int | None = Field(default=None, ge=1, le=MAX_LIMIT)
    model: str = "mlp"
    model_options: dict[str, Any] = Field(default_factory=dict)
    training: TrainingSpec = Field(default_factory=TrainingSpec)

    @field_validator("dataset", "model")
    @classmethod
    def _name_or_ref(cls, v: str, info: ValidationInfo) -> str:
        known = DATASETS if info.field_name == "dataset" else MODELS
        if v not in known and not usercode.is_ref(v):
            raise ConfigError(f"{short_repr(v)} is not allowed; allowed: "
                              f"{', '.join(map(repr, known))}, or your own "
                              f"'module:function' (next to the study file)")
        return v

    @property
    def custom(self) -> bool:
        """Whether the dataset or the model is the user's code."""
        return usercode.is_ref(self.dataset) or usercode.is_ref(self.model)

    @field_validator("data_dir")
    @classmethod
    def _data_dir(cls, v: str | None, info: ValidationInfo) -> str | None:
        v = _resolve_path(v, info, "folder")
        if v is not None and _check_files(info) and path_kind(Path(v), "folder") != "dir":
            raise ConfigError(f"folder {v} does not exist")
        return v

    @model_validator(mode="after")
    def _check(self, info: ValidationInfo) -> WorkloadSpec:
        if self.dataset in DATASETS[1:] and self.data_dir is None:
            raise ConfigError(f"workload.data_dir: required for dataset {self.dataset!r} "
                              "(the folder with its files)")
        if self.dataset in DATASETS[1:] and self.data_dir and _check_files(info):
            missing = missing_files(self.dataset, self.data_dir)
            if missing:
                kind = ("CIFAR-10 python batches" if self.dataset == "cifar10" else
                        "IDX files, plain or .gz")
                raise ConfigError(f"workload.data_dir: {self.data_dir} lacks the "
                                  f"{self.dataset} files {', '.join(missing)} ({kind})")
        if not self.custom:  # your own code is sized once it is found (StudySpec)
            try:
                self.weight_shapes()
            except ConfigError as e:
                raise ConfigError(f"workload.model_options: {e}") from None
        return self

    def weight_shapes(self) -> list[tuple[int, int]]:
        """``(fan_in, fan_out)`` of every weight matrix of the model (computed, not built)."""
        return weight_shapes(self.model, INPUT_SHAPES[self.dataset], N_CLASSES[self.dataset],
                             **self.model_options)


class MeasuredSpec(_Model):
    """``[hardware.measured.NAME]``: a pulse-response file fitted by memxbar.devices.measured.

    The file is read and fitted at load (numbers, finite, enough readings, not constant);
    ``sha256`` is its content hash, taken at load and part of the study's identity, so a file
    changed at the same path is a different study. A study file does not set ``sha256``.
    ``read_voltage`` (V), ``read_time`` (s), ``write_voltage`` (V), ``write_time`` (s) and
    ``write_energy`` (J per pulse) are the measurement's, for the cost figures (default: the
    Device defaults, which mean nothing for your device). ``units`` (S, mS, uS, nS or
    normalized) is required when the file's header names none. ``retention``: a retention file
    (conductance against time per level, :func:`~memxbar.devices.measured.read_retention_file`)
    fitted to a power-law drift, hashed like ``file``; ``retention_units`` as ``units``.
    """

    g_min: float | None = Field(default=None, gt=0, le=MAX_CONDUCTANCE, allow_inf_nan=False)
    g_max: float | None = Field(default=None, gt=0, le=MAX_CONDUCTANCE, allow_inf_nan=False)
    read_voltage: float | None = Field(default=None, gt=0, le=100.0, allow_inf_nan=False)
    read_time: float | None = Field(default=None, gt=0, le=1.0, allow_inf_nan=False)
    write_voltage: float | None = Field(default=None, gt=0, le=100.0, allow_inf_nan=False)
    write_time: float | None = Field(default=None, gt=0, le=1.0, allow_inf_nan=False)
    write_energy: float | None = Field(default=None, ge=0, le=1.0, allow_inf_nan=False)
    units: Literal["S", "mS", "uS", "µS", "nS", "normalized"] | None = None
    retention_units: Literal["S", "mS", "uS", "µS", "nS"] | None = None
    retention: str | None = None
    retention_sha256: str | None = Field(default=None, validate_default=True)
    file: str
    sha256: str | None = Field(default=None, validate_default=True)

    @field_validator("retention")
    @classmethod
    def _retention(cls, v: str | None, info: ValidationInfo) -> str | None:
        if v is None:
            return None
        v = _resolve_path(v, info, "retention")
        if _check_files(info):
            if path_kind(Path(v), "file") != "file":
                raise ConfigError(f"file {v} does not exist")
            from memxbar.devices import measured

            measured.fit_retention(measured.read_retention_file(
                v, units=info.data.get("retention_units")))
        return v

    @field_validator("retention_sha256")
    @classmethod
    def _retention_sha256(cls, v: str | None, info: ValidationInfo) -> str | None:
        if not _check_files(info):
            return v
        if v is not None:
            raise ConfigError("memxbar hashes the retention file itself; remove this field")
        if info.data.get("retention") is None:
            return None
        return file_sha256(Path(info.data["retention"]))

    @field_validator("file")
    @classmethod
    def _file(cls, v: str, info: ValidationInfo) -> str:
        v = _resolve_path(v, info, "file")
        if _check_files(info):
            if path_kind(Path(v), "file") != "file":
                raise ConfigError(f"file {v} does not exist")
            g_min, g_max = info.data.get("g_min"), info.data.get("g_max")
            if "g_min" in info.data and "g_max" in info.data and (
                    g_min is None or g_max is None or g_min < g_max):
                fit_measured(v, None, g_min, g_max, info.data.get("units"),
                             info.data.get("retention"), None,
                             info.data.get("retention_units"))  # as a trial will read it
        return v

    @field_validator("sha256")
    @classmethod
    def _sha256(cls, v: str | None, info: ValidationInfo) -> str | None:
        if not _check_files(info):
            return v
        if v is not None:
            raise ConfigError("memxbar hashes the file itself; remove this field")
        if "file" not in info.data:
            return None
        return file_sha256(Path(info.data["file"]))

    @model_validator(mode="after")
    def _range(self) -> MeasuredSpec:
        if self.g_min is not None and self.g_max is not None and not self.g_min < self.g_max:
            raise ConfigError(f"g_min = {self.g_min} must be < g_max = {self.g_max}")
        return self

    def build(self) -> Device:
        """Fit a :class:`~memxbar.devices.measured.MeasuredDevice` to the file (refused when
        its content no longer has the hash taken at load), with the measurement's voltages,
        times and energy."""
        device = fit_measured(self.file, self.sha256, self.g_min, self.g_max, self.units,
                              self.retention, self.retention_sha256, self.retention_units)
        given = {k: getattr(self, k) for k in MEASURED_ELECTRICAL if getattr(self, k) is not None}
        return dataclasses.replace(device, **given) if given else device


MEASURED_ELECTRICAL = ("read_voltage", "read_time", "write_voltage", "write_time",
                       "write_energy")


def _dump_dims(dims: dict[str, Dim]) -> dict[str, Any]:
    return {k.removeprefix("device."): dump_dim(v) for k, v in dims.items()}


class _HardwareBase(_Model):
    """``[hardware]``: every field a value or a search range (:data:`HARDWARE_DOMAINS`,
    generated by :mod:`memxbar.studies.hardware`); ``[hardware.device]`` may be a table that
    also sets or searches the device model's parameters (:mod:`.devicefields`)."""

    measured: dict[str, MeasuredSpec] = Field(default_factory=dict)
    device_params: Annotated[dict[str, Any], PlainSerializer(_dump_dims)] = Field(
        default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _device_table(cls, data: Any) -> Any:
        """Split a ``[hardware.device]`` table into the device name and its parameters,
        parsed (``device.<field>`` -> Dim)."""
        if not isinstance(data, dict):
            return data
        data = split_device_table(data)
        raw = data.get("device_params")
        if isinstance(raw, dict) and raw and not all(
                isinstance(v, (Fixed, Choices, Range)) for v in raw.values()):
            name = data.get("device", "ideal")
            names = name.get("choices", []) if isinstance(name, dict) else [name]
            measured = data.get("measured") if isinstance(data.get("measured"), dict) else {}
            data["device_params"] = device_dims(raw, names if isinstance(names, list) else [],
                                                list(measured))
        return data

    @field_validator("measured")
    @classmethod
    def _measured_names(cls, v: dict[str, MeasuredSpec]) -> dict[str, MeasuredSpec]:
        for name in v:
            if name in presets.names():
                raise ConfigError(f"{name!r} is the name of a device preset; allowed: another "
                                  "name")
        return v

    def dims(self) -> dict[str, Dim]:
        """Every hardware field's :data:`Dim`, by name (device parameters as
        ``device.<field>``)."""
        return {**{name: getattr(self, name) for name in HARDWARE_DOMAINS},
                **self.device_params}


if TYPE_CHECKING:
    class HardwareSpec(_HardwareBase):
        """The generated model, as static checkers see it: the FIELDS are Dims (Any)."""

        def __getattr__(self, name: str) -> Any: ...
else:
    _FIELD_DEFS: dict[str, Any] = {f.name: (_dim(f.domain, f.name), Fixed(f.default))
                                   for f in FIELDS}
    HardwareSpec = create_model("HardwareSpec", __base__=_HardwareBase, __module__=__name__,
                                **_FIELD_DEFS)


class EvaluationSpec(_Model):
    """``[evaluation]``: times since programming (s) and programming repeats per design;
    ``inferences``: inferences the deployed arrays answer before their accuracy is read (the
    read disturb of their reads, :func:`memxbar.mapping.disturb.apply_read_disturb`; 0 = none).
    """

    times: list[float] = Field(min_length=1, max_length=MAX_TIMES)
    repeats: int = Field(default=1, ge=1, le=MAX_REPEATS)
    inferences: float = Field(default=0.0, ge=0, le=MAX_INFERENCES, allow_inf_nan=False)
    # accuracy a design must reach at the accuracy objective's time (for the report)
    target_accuracy: float | None = Field(default=None, gt=0, le=1, allow_inf_nan=False)

    @field_validator("times", mode="before")
    @classmethod
    def _times(cls, v: Any) -> list[float]:
        if not isinstance(v, list):
            raise ConfigError(f"{short_repr(v)} is not allowed; allowed: a list of times, e.g. "
                              "[\"1 s\", \"1 h\", \"1 day\", \"1 year\"]")
        if len(v) > MAX_TIMES:
            raise ConfigError(f"{len(v)} times; allowed: at most {MAX_TIMES}")
        out = []
        for i, item in enumerate(v):
            try:
                out.append(_bounded_time(item))
            except ConfigError as e:
                raise ConfigError(f"times[{i}] = {e}") from None
        if len(set(out)) != len(out):
            raise ConfigError(f"times {short_repr(v)} repeat a time")
        return sorted(out)


def _bounded_time(value: object) -> float:
    seconds = parse_time(value)
    if seconds > MAX_TIME:
        raise ConfigError(f"{short_repr(value)} is more than 1000 years; allowed: times up to "
                          "1000 years")
    return seconds


class ObjectiveSpec(_Model):
    """One ``[[objectives]]`` entry."""

    metric: Literal[METRICS]  # type: ignore[valid-type]  # see TrainingSpec
    time: float | None = None
    direction: Direction | None = None

    @field_validator("time", mode="before")
    @classmethod
    def _time(cls, v: Any) -> float | None:
        return None if v is None else _bounded_time(v)

    @property
    def key(self) -> str:
        """Metric name in the objective function's result (:func:`metric_key`)."""
        return metric_key(self.metric, self.time)

    @property
    def sense(self) -> Direction:
        """``"maximize"`` or ``"minimize"``."""
        return self.direction or DEFAULT_DIRECTION[self.metric]

    @property
    def label(self) -> str:
        """Short label for tables and plots."""
        return (f"accuracy @ {time_label(self.time)}"
                if self.metric == "accuracy" and self.time is not None else self.metric)


class SamplerSpec(_Model):
    """``[sampler]``: Optuna sampler and its options."""

    kind: Literal[SAMPLERS] = "tpe"  # type: ignore[valid-type]  # see TrainingSpec
    population_size: int | None = Field(default=None, ge=2, le=100_000)  # nsga2
    n_startup_trials: int | None = Field(default=None, ge=0, le=MAX_TRIALS)  # tpe

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
    objectives: list[ObjectiveSpec] = Field(min_length=1, max_length=100)
    sampler: SamplerSpec = Field(default_factory=SamplerSpec)
    # your code the study names ("module:function" -> file, sha256, root), found at load
    code: dict[str, dict[str, str]] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _locate_code(cls, data: Any, info: ValidationInfo) -> Any:
        """Find the file of every ``"module:function"`` the study names (see
        :mod:`.usercode`) and record its hash."""
        context = info.context or {}
        if not isinstance(data, dict) or not context.get("check_files", True):
            return data
        if "code" in data:
            raise ConfigError("code: memxbar finds your code and fills this table itself; "
                              "remove it")
        refs = _code_refs(data)
        if not refs:
            return data
        folders = [context.get("base_dir") or "."] + list(context.get("code_path") or ())
        return {**data, "code": {ref: usercode.locate(ref, folders, what)
                                 for ref, what in refs.items()}}

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
    def _cross(self, info: ValidationInfo) -> StudySpec:
        errors = []
        hw = self.hardware
        known = presets.names() + list(hw.measured)
        for value in _values(hw.device):
            if value not in known and not usercode.is_ref(value):
                errors.append(f"hardware.device: {short_repr(value)} is not a device preset or a "
                              f"[hardware.measured] name; allowed: {', '.join(known)}, or your "
                              "own 'module:function' returning a Device")
        times = self.evaluation.times
        allowed_t = ", ".join(time_label(t) for t in times)
        seen = set()
        for i, obj in enumerate(self.objectives):
            if obj.metric == "accuracy" and obj.time is None:
                errors.append(f"objectives[{i}].time: required for metric 'accuracy'; "
                              f"allowed: one of evaluation.times ({allowed_t})")
                continue
            if obj.metric == "accuracy" and obj.time is not None and obj.time not in times:
                errors.append(f"objectives[{i}].time = {time_label(obj.time)} is not one of "
                              f"evaluation.times; allowed: {allowed_t}")
            elif obj.metric != "accuracy" and obj.time is not None:
                errors.append(f"objectives[{i}].time: only allowed with metric 'accuracy'")
            if obj.key in seen:
                errors.append(f"objectives[{i}]: {obj.label} is listed twice")
            seen.add(obj.key)
        errors += self._inert_errors()
        if not self.search_space():
            pass  # one design: evaluated once (or ``trials`` times)
        elif self.sampler.kind in ENUMERATED:
            errors += self._grid_errors()
        elif self.study.trials is None:
            errors.append(f"study.trials: required with sampler.kind = {self.sampler.kind!r}; "
                          "allowed: an integer >= 1")
        target = self.evaluation.target_accuracy
        if target is not None and not any(o.metric == "accuracy" for o in self.objectives):
            errors.append("evaluation.target_accuracy: needs an accuracy objective")
        if not errors and _check_files(info):
            errors += self._hardware_errors()
        if errors:
            raise ConfigError("; ".join(errors))
        return self

    def _inert_errors(self) -> list[str]:
        """A searched field that no design uses (its values would be recorded as distinct
        designs that simulate and cost alike)."""
        dims, space, errors = self.dims(), self.search_space(), []
        quantizing = isinstance(dims["adc_bits"], Range) or any(
            b != 0 for b in _values(dims["adc_bits"]))
        if "adc_full_scale" in space and not ("fixed" in _values(dims["adc_range"])
                                              and quantizing):
            errors.append("hardware.adc_full_scale is searched, but no design uses it (it sets "
                          "the range of a quantizing ADC with adc_range = 'fixed'); allowed: "
                          "search it with adc_range 'fixed' and adc_bits >= 2 among the "
                          "designs, or fix it")
        if "input_range" in space and "fixed" not in _values(dims["input_scaling"]):
            errors.append("hardware.input_range is searched, but no design uses it (it sets "
                          "the inputs' full scale with input_scaling = 'fixed'); allowed: "
                          "search it with input_scaling 'fixed' among the designs, or fix it")
        return errors

    def _grid_errors(self) -> list[str]:
        errors = []
        space = self.search_space()
        kind = self.sampler.kind
        for name, dim in space.items():
            if isinstance(dim, Range) and dim.continuous:
                errors.append(f"{_path(name)}: sampler.kind = {kind!r} needs a discrete "
                              "search; allowed: {choices = [...]} or a range with a step")
            elif isinstance(dim, Range) and dim.log:
                errors.append(f"{_path(name)}: sampler.kind = {kind!r} cannot use log = "
                              "true; allowed: {choices = [...]} or a range with a step")
        if errors:
            return errors
        n = self.grid_size()
        if n > MAX_TRIALS:
            errors.append(f"the {kind} has {n:,} points; allowed: at most {MAX_TRIALS:,} "
                          "(search fewer values, or use another sampler)")
        elif self.study.trials is not None and self.study.trials > n:
            errors.append(f"study.trials = {self.study.trials} is more than the "
                          f"{n} {kind} points; allowed: 1 to {n} (or leave it out)")
        return errors

    def _hardware_errors(self) -> list[str]:
        """Build the hardware of every design the study can run (see the module doc): the
        first refusal, in study terms, or a design too large for memory."""
        devices: dict[str, Device] = {}
        try:
            shapes = self.weight_shapes()
        except ConfigError as e:
            return [str(e)]
        for point in self.hardware_points():
            name = point["device"]
            overrides = device_overrides(point)
            key = json.dumps([name, overrides], sort_keys=True)
            try:
                if key not in devices:
                    devices[key] = self.build_device(name, overrides)
                tile, _ = build_hardware(point, devices[key])
                cells = _cells(tile, shapes)
            except ConfigError as e:
                return [f"{e}{_design_text(point, self.hardware.dims())}"]
            if cells > MAX_CELLS:
                return [f"hardware: the design {_design_text(point, self.hardware.dims(), '')} "
                        f"needs {cells:,} cells for this model; allowed: at most "
                        f"{MAX_CELLS:,} (smaller tiles or a smaller model)"]
        return []

    def hardware_points(self) -> Iterator[dict[str, Any]]:
        """The hardware designs built at load: every combination of :func:`dim_values` of
        the hardware fields when there are at most :data:`MAX_BUILT`, else every value once
        (the other fields at their first value) and :data:`MAX_BUILT` seeded random
        combinations."""
        dims = self.hardware.dims()
        axes = {k: dim_values(d) for k, d in dims.items()}
        if math.prod(len(v) for v in axes.values()) <= MAX_BUILT:
            for combo in itertools.product(*axes.values()):
                yield dict(zip(axes, combo, strict=True))
            return
        base = {k: v[0] for k, v in axes.items()}
        for k, values in axes.items():
            for v in values:
                yield {**base, k: v}
        rng = random.Random(0)
        for _ in range(MAX_BUILT):
            yield {k: rng.choice(v) for k, v in axes.items()}

    # ---------------------------------------------------------------- derived
    @property
    def name(self) -> str:
        """Study name (``[study] name``)."""
        return self.study.name or "study"

    @property
    def output_dir(self) -> Path:
        """Output folder (absolute)."""
        return expand_path(self.study.output or f"runs/{self.name}", "folder").resolve()

    @property
    def storage_url(self) -> str:
        """Optuna storage URL: ``[study] storage`` or ``sqlite:///<output>/study.db``."""
        return self.study.storage or f"sqlite:///{self.output_dir / 'study.db'}"

    @property
    def torch_device(self) -> str:
        """Where trials compute (``[study] torch_device``)."""
        return self.study.torch_device

    @property
    def directions(self) -> list[Direction]:
        """Optuna directions, one per objective."""
        return [o.sense for o in self.objectives]

    def dims(self) -> dict[str, Dim]:
        """Every searchable field: ``recipe`` and the hardware fields."""
        return {"recipe": self.workload.training.recipe, **self.hardware.dims()}

    def search_space(self) -> dict[str, Choices | Range]:
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
        out = {k: d.value if isinstance(d, Fixed) else searched[k]
               for k, d in self.dims().items()}
        if out["tile_cols"] is None:
            out["tile_cols"] = out["tile_rows"]
        return out

    def grid(self) -> list[dict[str, Any]]:
        """The designs of an enumerated study (searched values only), in file order of the
        fields: every combination ("grid"), or ("sweep") the reference design, every field at
        its first value, then each field through its other values with the rest at the
        reference (one at a time: the sensitivity to each field). Nothing searched: ``[{}]``."""
        space = self.search_space()
        axes = [list(d.values) if isinstance(d, Choices) else d.points() for d in space.values()]
        if self.sampler.kind == "sweep":
            reference = {k: a[0] for k, a in zip(space, axes, strict=True)}
            return [reference] + [{**reference, k: v} for k, a in zip(space, axes, strict=True)
                                  for v in a[1:]]
        return [dict(zip(space, combo, strict=True)) for combo in itertools.product(*axes)]

    def grid_size(self) -> int:
        """Number of designs of :meth:`grid` (computed, not listed)."""
        sizes = [len(d.values) if isinstance(d, Choices) else d.n_points()
                 for d in self.search_space().values()]
        if self.sampler.kind == "sweep":
            return 1 + sum(n - 1 for n in sizes)
        return math.prod(sizes)

    @property
    def enumerated(self) -> bool:
        """Whether the designs are listed in advance (grid, sweep, or nothing searched)."""
        return self.sampler.kind in ENUMERATED or not self.search_space()

    def space_size(self) -> float:
        """Number of distinct designs the search space holds (``inf`` with a continuous
        range; 1 when nothing is searched)."""
        size = 1.0
        for dim in self.search_space().values():
            if isinstance(dim, Choices):
                size *= len(dim.values)
            elif dim.continuous:
                return math.inf
            else:
                size *= dim.n_points()
        return size

    @property
    def n_trials(self) -> int:
        """Trial budget in designs: ``[study] trials``, at most the number of distinct designs
        the space holds (a proposal of a design again reuses its result and does not count),
        or the number of designs of an enumerated study (one when nothing is searched)."""
        if self.study.trials is None:
            return self.grid_size()
        return int(min(self.study.trials, self.space_size()))

    def technology(self, device: str) -> str:
        """Technology of a device name ("pcm", "rram", ..., "measured"; your device's own)."""
        if device in self.hardware.measured:
            return "measured"
        if usercode.is_ref(device):
            return self.build_device(device).technology
        return presets.preset(device).technology

    def build_device(self, device: str, overrides: Mapping[str, Any] | None = None) -> Device:
        """The device model of a device name (preset, ``[hardware.measured]`` entry, or your
        ``"module:function"``), with a design's device parameters (``overrides``, from
        :func:`.devicefields.device_overrides`) applied."""
        if device in self.hardware.measured:
            try:
                model = self.hardware.measured[device].build()
            except ConfigError as e:
                raise ConfigError(f"hardware.measured.{device}.file: {e}") from None
        elif usercode.is_ref(device):
            model = _user_device(self, device)
        else:
            model = presets.get(device)
        return apply_overrides(model, overrides, device) if overrides else model

    def build_hardware(self, params: Mapping[str, Any], *,
                       mapping: Mapping[str, Any] | None = None) -> Any:
        """``(TileConfig, MappingConfig)`` of one design (:func:`.hardware.build_hardware`
        with the design's device built)."""
        device = self.build_device(params["device"], device_overrides(params))
        return build_hardware(params, device, mapping=mapping)

    # ---------------------------------------------------------------- the workload
    def user_callable(self, ref: str, what: str) -> Any:
        """The function your ``"module:function"`` names (located at load, in ``code``)."""
        if ref not in self.code:
            raise ConfigError(f"{what} = {ref!r}: its file was not located; load the study "
                              "file again")
        return usercode.resolve(ref, self.code[ref], what)

    def load_data(self) -> tuple[Any, Any]:
        """``(train, test)`` TensorDatasets of the workload (built-in or your function)."""
        w = self.workload
        if usercode.is_ref(w.dataset):
            key = (self.code.get(w.dataset, {}).get("sha256"), w.dataset, self.study.seed,
                   w.limit, w.data_dir)
            if key not in _DATA:
                fn = self.user_callable(w.dataset, "workload.dataset")
                _DATA.clear()  # one user dataset held at a time
                _DATA[key] = user_dataset(fn, seed=self.study.seed, limit=w.limit,
                                          data_dir=w.data_dir)
            return _DATA[key]
        return load_dataset(w.dataset, folder=w.data_dir, seed=self.study.seed, limit=w.limit)

    def input_shape(self) -> tuple[int, ...]:
        """Shape of one input example (C, H, W for images)."""
        if usercode.is_ref(self.workload.dataset):
            return tuple(self.load_data()[0].tensors[0].shape[1:])
        return INPUT_SHAPES[self.workload.dataset]

    def n_classes(self) -> int:
        """Number of classes (your dataset's: the largest label + 1, at least 2)."""
        if usercode.is_ref(self.workload.dataset):
            train, test = self.load_data()
            return max(2, int(max(train.tensors[1].max(), test.tensors[1].max())) + 1)
        return N_CLASSES[self.workload.dataset]

    def build_model(self) -> Any:
        """The workload's model, untrained (the caller seeds torch first)."""
        w = self.workload
        if usercode.is_ref(w.model):
            return user_model(self.user_callable(w.model, "workload.model"), self.input_shape(),
                              self.n_classes(), dict(w.model_options))
        return build_model(w.model, self.input_shape(), self.n_classes(), **w.model_options)

    def weight_shapes(self) -> list[tuple[int, int]]:
        """``(fan_in, fan_out)`` of every weight matrix of the model (built-in: computed; your
        model: built once on the CPU)."""
        w = self.workload
        if not w.custom:
            return w.weight_shapes()
        if usercode.is_ref(w.model):
            import torch

            torch.manual_seed(self.study.seed)
            return module_weight_shapes(self.build_model())
        try:
            return weight_shapes(w.model, self.input_shape(), self.n_classes(),
                                 **w.model_options)
        except ConfigError as e:
            raise ConfigError(f"workload.model_options: {e}") from None

    def workload_key(self, recipe: str | None = None) -> str:
        """Hash of what determines the digitally trained model: workload, recipe, seed (for
        a cache of trained models per workload)."""
        data = _drop_added(self.workload.model_dump(mode="json"), ("workload",))
        data["training"]["recipe"] = recipe
        data["seed"] = self.study.seed
        code = {ref: self.code[ref]["sha256"] for ref in (self.workload.dataset,
                                                          self.workload.model) if ref in self.code}
        if code:
            data["code"] = code
        return _hash(data)

    def cost_model(self) -> CostModel:
        """The cost model of the ``[cost]`` table."""
        return cost_model(self.cost)

    def identity(self) -> dict[str, Any]:
        """The spec without budget, location and torch device (``trials``, ``output``,
        ``storage``, ``torch_device``), and measured-data files by their content hash alone
        (not their paths): two runs with the same identity belong to the same study."""
        data = self.model_dump(mode="json")
        for key in ("trials", "output", "storage", "torch_device"):
            data["study"].pop(key)
        for entry in data["hardware"]["measured"].values():  # added fields, unset
            for key in MEASURED_ELECTRICAL:
                if entry.get(key) is None:
                    entry.pop(key, None)
            for path, digest in (("file", "sha256"), ("retention", "retention_sha256")):
                if entry.get(digest) is not None:  # the content is what it is, not its path
                    entry.pop(path, None)
        for source in data.get("code", {}).values():  # where it is found is not what it is
            source.pop("file", None)
            source.pop("root", None)
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


def _cells(tile: Any, shapes: list[tuple[int, int]]) -> int:
    """Cells of the tiles that hold weight matrices of these shapes on this tile."""
    per_tile = tile.rows * tile.cols * tile.n_arrays
    return sum(-(-a // tile.rows) * -(-b // tile.weight_cols) * per_tile for a, b in shapes)


def _design_text(point: Mapping[str, Any], dims: Mapping[str, Dim], prefix: str = " (in the "
                 "design ") -> str:
    """The searched values of a design, for messages (empty when nothing is searched)."""
    searched = {k: v for k, v in point.items() if not isinstance(dims[k], Fixed)}
    if not searched:
        return ""
    text = ", ".join(f"{k}={short_repr(v)}" for k, v in searched.items())
    return f"{prefix}{text})" if prefix else text


def cost_model(fields: Mapping[str, Any]) -> CostModel:
    """The :class:`CostModel` of a ``[cost]`` table; a ConfigError names the field
    (``cost.NAME``) and what is allowed."""
    moved = sorted(set(fields) & set(MOVED_TO_HARDWARE))
    if moved:
        name = moved[0]
        raise ConfigError(f"cost.{name}: is a hardware field now; set it in [hardware] "
                          f"({name} = {short_repr(fields[name])}) or with --set {name}=VALUE")
    names = [f.name for f in dataclasses.fields(CostModel)]
    unknown = sorted(set(fields) - set(names), key=str)
    if unknown:
        raise ConfigError(f"cost: unknown field(s) {', '.join(map(str, unknown))[:200]}; "
                          f"allowed fields: {', '.join(names)}")
    try:
        return CostModel(**fields)
    except ConfigError as e:
        raise ConfigError(str(e).replace("CostModel: ", "cost: ").replace(
            "CostModel.", "cost.")) from None


_DATA: dict[tuple, Any] = {}  # your dataset, loaded once per process
_DEVICES: dict[tuple, Device] = {}  # your device models, built once per file content


def _user_device(spec: StudySpec, ref: str) -> Device:
    """The Device your ``"module:function"`` returns (called once per file content)."""
    key = (ref, spec.code.get(ref, {}).get("sha256"))
    if key not in _DEVICES:
        fn = spec.user_callable(ref, "hardware.device")
        try:
            device = fn()
        except ConfigError:
            raise
        except Exception as e:  # the user's code failed
            raise ConfigError(f"hardware.device = {ref!r}: your function raised "
                              f"{type(e).__name__}: {e}") from None
        if not isinstance(device, Device):
            raise ConfigError(f"hardware.device = {ref!r}: your function returned "
                              f"{type(device).__name__}; expected a memxbar Device (e.g. "
                              "memxbar.devices.pcm.PCM(...))")
        _DEVICES[key] = device
    return _DEVICES[key]


def _code_refs(data: Mapping[str, Any]) -> dict[str, str]:
    """Every ``"module:function"`` a raw study names -> the field that names it."""
    refs: dict[str, str] = {}
    workload = data.get("workload")
    if isinstance(workload, dict):
        for key in ("dataset", "model"):
            if usercode.is_ref(workload.get(key)):
                refs[workload[key]] = f"workload.{key}"
    hardware = data.get("hardware")
    device = hardware.get("device") if isinstance(hardware, dict) else None
    if isinstance(device, dict) and set(device) != {"choices"}:
        device = device.get("name")
    names = device.get("choices") if isinstance(device, dict) else [device]
    for name in names if isinstance(names, list) else ():
        if usercode.is_ref(name):
            refs[name] = "hardware.device"
    return refs


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
            lines.append(f"{path} = {short_repr(e.get('input'))}: {msg}")
    return "; ".join(lines)


def parse_spec(data: Mapping[str, Any], *, base_dir: str | Path | None = None,
               name: str | None = None, check_files: bool = True,
               source: str = "study", study_file: str | Path | None = None,
               code_path: list[str] | None = None) -> StudySpec:
    """Validate a study given as a dict (parsed TOML or :meth:`StudySpec.model_dump` JSON).

    Relative file paths are taken from ``base_dir``; ``name`` is the default study name;
    ``check_files=False`` skips the checks of files, folders, the torch device and the
    designs' hardware (for specs read back from storage, validated when first loaded);
    ``study_file`` is the file it came from (its output may not be that file);
    ``code_path``: more folders to find your ``"module:function"`` code in (``--path``).
    Raises :class:`SpecError` whose message starts with ``source``.
    """
    depth = nesting_depth(data)
    if depth > MAX_DEPTH:
        raise SpecError(f"{source}: tables and lists are nested {depth} deep; allowed: at most "
                        f"{MAX_DEPTH}")
    data = dict(data)
    if name is not None and isinstance(data.get("study", {}), dict):
        study = dict(data.get("study", {}))
        study.setdefault("name", name)
        data["study"] = study
    for folder in (code_path or ()) if check_files else ():
        if path_kind(Path(folder), "code path") != "dir":
            raise SpecError(f"{source}: code path {short_repr(str(folder))} is not a folder; "
                            "allowed: existing folders that hold your 'module:function' code")
    context = {"base_dir": None if base_dir is None else str(base_dir),
               "check_files": check_files, "study_file": study_file,
               "code_path": [str(p) for p in code_path or ()]}
    try:
        return StudySpec.model_validate(data, context=context)
    except ValidationError as e:
        raise SpecError(f"{source}: {_format_errors(e)}") from None
    except ConfigError as e:  # raised outside a field (a design's hardware)
        raise SpecError(f"{source}: {e}") from None


def nesting_depth(data: Any) -> int:
    """How deeply tables and lists nest in ``data`` (a scalar is 0), without recursion, and
    counting no deeper than ``MAX_DEPTH + 1``."""
    deepest, stack = 0, [(data, 0)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, (dict, list, tuple)):
            if depth + 1 > MAX_DEPTH:
                return depth + 1
            deepest = max(deepest, depth + 1)
            stack += [(v, depth + 1) for v in (node.values() if isinstance(node, dict)
                                               else node)]
    return deepest


def ready_studies() -> dict[str, Path]:
    """The ready-made study files packaged with memxbar, by name."""
    folder = resources.files(__package__)
    return {p.name[:-5]: Path(str(p)) for p in sorted(folder.iterdir(), key=lambda p: p.name)
            if p.name.endswith(".toml")}


def resolve_study(path_or_name: str | Path) -> Path:
    """The study file for a path, or for the name of a ready-made study (``quickstart``)."""
    if not isinstance(path_or_name, (str, os.PathLike)):
        raise SpecError(f"study file = {path_or_name!r}: allowed: a path (str or Path) or the "
                        "name of a ready-made study")
    path = Path(path_or_name)
    try:
        if path.is_file():
            return path
    except (OSError, ValueError) as e:  # a name too long, a NUL character
        raise SpecError(f"study file {short_repr(str(path))}: {e}") from None
    ready = ready_studies()
    if str(path_or_name) in ready:
        return ready[str(path_or_name)]
    raise SpecError(f"study file {path} not found; ready-made studies: {', '.join(ready)}")


def load_spec(path_or_name: str | Path, code_path: list[str] | None = None) -> StudySpec:
    """Read and validate a study file (a path, or a ready-made study's name); your
    ``"module:function"`` code is found next to it, then in ``code_path``."""
    path = resolve_study(path_or_name)
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            raise SpecError(f"{path}: {path.stat().st_size:,} bytes; allowed: a study file of "
                            f"at most {MAX_FILE_BYTES:,} bytes")
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise SpecError(f"{path}: cannot read the file ({e})") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise SpecError(f"{path}: not valid TOML: {e}") from None
    except RecursionError:
        raise SpecError(f"{path}: tables and lists are nested too deeply; allowed: at most "
                        f"{MAX_DEPTH}") from None
    return parse_spec(data, base_dir=path.parent, name=path.stem, source=str(path),
                      study_file=path, code_path=code_path)

