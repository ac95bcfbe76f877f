"""Study files (studies.spec): TOML + pydantic validation, search spaces, times, errors."""

from __future__ import annotations

import copy
import math
from pathlib import Path

import pytest

from memxbar.crossbar.cost import CostModel
from memxbar.devices.measured import MeasuredDevice
from memxbar.studies.spec import (
    HARDWARE_DOMAINS,
    YEAR,
    Choices,
    Fixed,
    Range,
    SpecError,
    accuracy_key,
    load_spec,
    parse_spec,
    parse_time,
    ready_studies,
    resolve_study,
    time_label,
)

DATA = Path(__file__).resolve().parents[2] / "devices" / "data"  # packaged copies
GOOD = """
[study]
name = "full"
seed = 3
trials = 20
output = "out"

[workload]
dataset = "digits"
model = "mlp"
model_options = { hidden = [16, 8] }
limit = 500

[workload.training]
recipe = { choices = ["digital", "hardware-aware"] }
epochs = 2
lr = 1e-2
optimizer = "sgd"

[hardware]
device = { choices = ["ideal", "pcm-joshi2020", "mine"] }
tile_rows = { low = 32, high = 256, step = 32 }
weight_bits = 6
bits_per_cell = { choices = [0, 1, 2] }
adc_bits = { low = 3, high = 8 }
adc_range = "fixed"
adc_full_scale = 4
wire_resistance = { low = 0.1, high = 10.0, log = true }
dac_bit_serial = { choices = [true, false] }
drift_compensation = "column"

[hardware.measured.mine]
file = "pulses.csv"
units = "normalized"
g_min = 1e-6
g_max = 2e-5

[evaluation]
times = ["10 years", 0, "1 h", "1 day", 1.5, "2 min"]

[[objectives]]
metric = "accuracy"
time = "1 day"

[[objectives]]
metric = "energy_per_inference"

[[objectives]]
metric = "latency"
direction = "maximize"

[sampler]
kind = "tpe"
n_startup_trials = 5
"""


@pytest.fixture
def good_file(tmp_path: Path) -> Path:
    (tmp_path / "pulses.csv").write_text((DATA / "rram_hfo2_gong2018_pulses.csv").read_text())
    path = tmp_path / "full.toml"
    path.write_text(GOOD)
    return path


BASE = {"study": {"trials": 4}, "evaluation": {"times": ["1 s", "1 h"]},
        "objectives": [{"metric": "accuracy", "time": "1 h"}]}


def _parse(mod) -> None:
    data = copy.deepcopy(BASE)
    mod(data)
    parse_spec(data, source="bad.toml")


# ----------------------------------------------------------------------------- good files


def test_full_file_every_field_form(good_file: Path) -> None:
    spec = load_spec(good_file)
    assert spec.name == "full" and spec.study.seed == 3 and spec.n_trials == 20
    # times: converted to seconds (a year is 365.25 days), sorted ascending
    assert spec.evaluation.times == [0.0, 1.5, 120.0, 3600.0, 86400.0, 10 * YEAR]
    hw = spec.hardware
    assert hw.tile_rows == Range(32, 256, integer=True, step=32)
    assert hw.wire_resistance == Range(0.1, 10.0, integer=False, step=None, log=True)
    assert hw.adc_bits == Range(3, 8, integer=True)
    assert hw.bits_per_cell == Choices((0, 1, 2))
    assert hw.weight_bits == Fixed(6) and hw.adc_full_scale == Fixed(4.0)
    assert hw.encoding == Fixed("differential")  # default
    assert list(spec.search_space()) == ["recipe", "device", "tile_rows", "bits_per_cell",
                                         "dac_bit_serial", "adc_bits", "wire_resistance"]
    # objectives: keys, default and explicit directions
    assert [o.key for o in spec.objectives] == [accuracy_key(86400.0), "energy_per_inference",
                                                "latency"]
    assert accuracy_key(86400.0) == "accuracy@86400s"
    assert spec.directions == ["maximize", "minimize", "maximize"]
    # relative paths: data files from the study file's folder, output from the cwd
    assert Path(hw.measured["mine"].file) == good_file.parent / "pulses.csv"
    assert spec.output_dir == (Path.cwd() / "out").resolve()
    assert spec.storage_url == f"sqlite:///{spec.output_dir / 'study.db'}"
    assert spec.technology("mine") == "measured" and spec.technology("pcm-joshi2020") == "pcm"
    dev = spec.build_device("mine")
    assert isinstance(dev, MeasuredDevice)
    assert math.isclose(dev.g_min, 1e-6) and math.isclose(dev.g_max, 2e-5)


def test_resolve_and_round_trip(good_file: Path) -> None:
    spec = load_spec(good_file)
    point = {"recipe": "digital", "device": "ideal", "tile_rows": 64, "bits_per_cell": 1,
             "dac_bit_serial": True, "adc_bits": 5, "wire_resistance": 2.0}
    params = spec.resolve(point)
    assert params["tile_cols"] == 64  # unset tile_cols follows tile_rows
    assert params["weight_bits"] == 6 and params["adc_bits"] == 5
    assert list(params) == ["recipe", *HARDWARE_DOMAINS]
    with pytest.raises(ValueError, match="not searched"):
        spec.resolve({**point, "weight_bits": 4})
    with pytest.raises(ValueError, match="not given"):
        spec.resolve({"device": "ideal"})
    # the stored JSON form validates back to the same spec (what workers and reports read)
    again = parse_spec(spec.model_dump(mode="json"), check_files=False)
    assert again == spec and again.identity_hash() == spec.identity_hash()
    # budget and location are not part of the study's identity; the search space is
    other = spec.with_study(trials=50, output="elsewhere", storage="sqlite:////tmp/x.db")
    assert other.n_trials == 50 and other.identity_hash() == spec.identity_hash()
    changed = parse_spec({**spec.model_dump(mode="json"), "sampler": {"kind": "random"}},
                         check_files=False)
    assert changed.identity_hash() != spec.identity_hash()
    # a field added later keeps older studies' identity at its old behaviour, not otherwise
    data = spec.model_dump(mode="json")
    assert data["hardware"]["input_scaling"] == "dynamic"
    del data["hardware"]["input_scaling"]
    assert parse_spec(data, check_files=False).identity_hash() == spec.identity_hash()
    data["hardware"]["input_scaling"] = "calibrated"
    assert parse_spec(data, check_files=False).identity_hash() != spec.identity_hash()
    data = spec.model_dump(mode="json")
    assert data["workload"]["training"].pop("adc_recalibrate_every") == 0
    old = parse_spec(data, check_files=False)
    assert (old.identity_hash(), old.workload_key()) == (spec.identity_hash(),
                                                         spec.workload_key())
    data["workload"]["training"]["adc_recalibrate_every"] = 10  # an online-only option
    with pytest.raises(SpecError, match="read only by recipe online, not by the study's "
                                        "recipe digital / hardware-aware; allowed: leave it"):
        parse_spec(data, check_files=False)
    data["workload"]["training"]["recipe"] = {"choices": ["digital", "online"]}
    assert parse_spec(data, check_files=False).identity_hash() != spec.identity_hash()
    # the [cost] table: empty (memxbar's defaults) leaves the identity as before; a cost model
    # changes the study's objectives, so its identity, but not the trained-model cache key
    data = spec.model_dump(mode="json")
    assert data.pop("cost") == {} and spec.cost_model() == CostModel()
    assert parse_spec(data, check_files=False).identity_hash() == spec.identity_hash()
    data["cost"] = {"sensing": "per_column"}
    costed = parse_spec(data, check_files=False)
    assert costed.cost_model() == CostModel(sensing="per_column")
    assert costed.identity_hash() != spec.identity_hash()
    assert costed.workload_key() == spec.workload_key()
    # the ADC model and the rows read at once are hardware (simulated and costed alike)
    for name, value in (("adc_model", "neurosim"), ("rows_parallel", 32)):
        with pytest.raises(SpecError, match=rf"cost.{name}: is a hardware field now; set it "
                                            rf"in \[hardware\] .* or with --set {name}="):
            parse_spec({**data, "cost": {name: value}}, check_files=False)
        data = spec.model_dump(mode="json")
        assert data["hardware"][name] == (None if name == "rows_parallel" else "survey")
        data["hardware"][name] = value
        moved = parse_spec(data, check_files=False)
        assert moved.identity_hash() != spec.identity_hash()
        assert moved.resolve(point)[name] == value


def test_grid_points_and_budget() -> None:
    spec = parse_spec({
        "evaluation": {"times": [1]}, "objectives": [{"metric": "accuracy"}],
        "sampler": {"kind": "grid"},
        "hardware": {"adc_bits": {"choices": [4, 8]},
                     "tile_rows": {"low": 64, "high": 256, "step": 64},
                     "wire_resistance": {"low": 0.0, "high": 1.0, "step": 0.25}}})
    assert spec.objectives[0].time == 1.0  # single evaluation time is the default
    assert spec.grid_size() == 2 * 4 * 5 == spec.n_trials  # grid budget defaults to its size
    grid = spec.grid()
    assert len(grid) == 40 and len({tuple(p.values()) for p in grid}) == 40
    assert sorted({p["wire_resistance"] for p in grid}) == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert sorted({p["tile_rows"] for p in grid}) == [64, 128, 192, 256]
    with pytest.raises(SpecError, match=r"study.trials = 41 is more than the 40 grid points"):
        spec.with_study(trials=41)


@pytest.mark.parametrize("name", sorted(ready_studies()))
def test_ready_studies_validate(name: str) -> None:
    spec = load_spec(name)  # by name, as `memxbar study run quickstart`
    assert spec.name == name and spec.search_space()
    assert resolve_study(name) == ready_studies()[name]
    if spec.sampler.kind == "grid":
        assert spec.n_trials == len(spec.grid())
    for device in {p["device"] for p in spec.grid()} if spec.sampler.kind == "grid" else ():
        spec.technology(device)


def test_quickstart_covers_four_technologies_and_stays_small() -> None:
    spec = load_spec("quickstart")
    assert spec.n_trials <= 20 and spec.workload.dataset == "digits"
    techs = {spec.technology(p["device"]) for p in spec.grid()}
    assert {"rram", "pcm", "fefet"} <= techs and techs & {"mtj", "domain-wall"}
    assert {p["drift_compensation"] for p in spec.grid()} == {"none", "global"}


# ----------------------------------------------------------------------------- times


@pytest.mark.parametrize("text, seconds", [
    (0, 0.0), (2.5, 2.5), ("1 s", 1.0), ("90 sec", 90.0), ("2 min", 120.0), ("1 h", 3600.0),
    ("1.5 hours", 5400.0), ("1 day", 86400.0), ("2d", 172800.0), ("1 week", 604800.0),
    ("1 year", 31_557_600.0), ("10 years", 315_576_000.0), ("1e3", 1000.0), (" 3 HOURS ", 10800),
])
def test_parse_time(text: object, seconds: float) -> None:
    assert parse_time(text) == pytest.approx(seconds, rel=1e-15)


@pytest.mark.parametrize("bad", ["1 fortnight", "-1 s", "abc", "", True, None, [1], math.inf,
                                 math.nan, "1..2 s"])
def test_parse_time_rejects(bad: object) -> None:
    with pytest.raises(ValueError, match="allowed: a number of seconds >= 0"):
        parse_time(bad)


def test_time_label() -> None:
    assert [time_label(t) for t in (0, 1, 90, 3600, 86400, YEAR, 10 * YEAR)] == [
        "0 s", "1 s", "1.5 min", "1 h", "1 d", "1 y", "10 y"]


# ----------------------------------------------------------------------------- bad files

BAD = [
    (lambda d: d.setdefault("hardware", {}).update(adc_bits=30),
     ["hardware.adc_bits: 30 is not allowed", "allowed: an integer in [0, 24]"]),
    (lambda d: d.setdefault("hardware", {}).update(adc_bits={"choices": [4, 30]}),
     ["hardware.adc_bits: choices[1] = 30 is not allowed"]),
    (lambda d: d.setdefault("hardware", {}).update(adc_bit=3),
     ["hardware.adc_bit: unknown field", "allowed fields:", "adc_bits"]),
    (lambda d: d.setdefault("hardware", {}).update(device="pcm-nope"),
     ["hardware.device: 'pcm-nope' is not a device preset", "pcm-joshi2020"]),
    (lambda d: d.setdefault("hardware", {}).update(encoding="weird"),
     ["hardware.encoding: 'weird' is not allowed; allowed: 'differential', 'offset'"]),
    (lambda d: d.setdefault("hardware", {}).update(encoding={"low": 0, "high": 1}),
     ["hardware.encoding: a table {low, high} is not allowed", "{choices = [...]}"]),
    (lambda d: d.setdefault("hardware", {}).update(wire_resistance={"low": 2.0, "high": 1.0}),
     ["hardware.wire_resistance: low = 2.0 must be < high = 1.0"]),
    (lambda d: d.setdefault("hardware", {}).update(wire_resistance={"low": -1, "high": 1.0}),
     ["hardware.wire_resistance: low = -1 is not allowed; allowed: a finite number in [0, "
      "1000000]"]),
    (lambda d: d.setdefault("hardware", {}).update(tile_rows={"low": 1, "high": 10, "step": 4}),
     ["hardware.tile_rows: high - low = 9 must be a multiple of step = 4"]),
    (lambda d: d.setdefault("hardware", {}).update(adc_bits={"low": 0, "high": 8, "log": True}),
     ["hardware.adc_bits: log = true needs low > 0"]),
    (lambda d: d.setdefault("hardware", {}).update(tile_rows=[64, 128]),
     ["hardware.tile_rows: a list is not allowed", "{choices = [...]}"]),
    (lambda d: d.setdefault("hardware", {}).update(weight_bits=1),
     ["hardware.weight_bits = 1 is not allowed", "allowed: 0 (analog) or an integer in [2, "]),
    # values the simulator refuses are refused at load, in study terms (they passed before)
    (lambda d: d.setdefault("hardware", {}).update(adc_bits=1),
     ["hardware.adc_bits = 1 is not allowed; allowed: 0 (ideal) or an integer in [2, 24]"]),
    (lambda d: d.setdefault("hardware", {}).update(dac_bits={"choices": [4, 1]}),
     ["hardware.dac_bits = 1 is not allowed", "(in the design dac_bits=1)"]),
    (lambda d: d.setdefault("hardware", {}).update(adc_bits={"low": 0, "high": 6}),
     ["hardware.adc_bits = 1 is not allowed", "(in the design adc_bits=1)"]),
    (lambda d: d.setdefault("hardware", {}).update(encoding="offset", layout="arrays"),
     ["hardware.layout = 'arrays' is not allowed with encoding='offset'"]),
    (lambda d: d.setdefault("hardware", {}).update(
        encoding={"choices": ["differential", "offset"]}, layout={"choices": ["arrays"]}),
     ["(in the design encoding='offset', layout='arrays')"]),
    (lambda d: d.setdefault("hardware", {}).update(tile_rows=8192),
     ["hardware.tile_rows: 8192 is not allowed; allowed: an integer in [1, 4096]"]),
    (lambda d: d.setdefault("hardware", {}).update(drift_compensation="per_column"),
     ["hardware.drift_compensation: 'per_column' is now called 'column'"]),
    (lambda d: d.update(cost={"adc_model": "neurosim"}),
     ["cost.adc_model: is a hardware field now; set it in [hardware]"]),
    (lambda d: d.setdefault("hardware", {}).update(dac_bit_serial=1),
     ["hardware.dac_bit_serial: 1 is not allowed; allowed: true or false"]),
    (lambda d: d.setdefault("hardware", {}).update(bits_per_cell=2),
     ["hardware.bits_per_cell = 2 is not allowed with weight_bits = 0 (analog weights)"]),
    (lambda d: d.setdefault("hardware", {}).update(adc_range="fixed"),
     ["hardware.adc_full_scale = None is not allowed with range_mode='fixed'"]),
    (lambda d: d.setdefault("hardware", {}).update(measured={"m": {"file": "/no/such.csv"}}),
     ["hardware.measured.m.file: file /no/such.csv does not exist"]),
    (lambda d: d.setdefault("hardware", {}).update(measured={"ideal": {"file": str(
        DATA / "rram_agasi_jo2010_ltp_ltd.csv")}}),
     ["hardware.measured: 'ideal' is the name of a device preset"]),
    (lambda d: d.setdefault("hardware", {}).update(measured={"m": {"file": "/etc/hostname"}}),
     ["hardware.measured.m.file:", "not an accepted layout", "WIDE, one column per ramp"]),
    (lambda d: d.update(sampler={"kind": "annealing"}),
     ["sampler.kind = 'annealing'", "'grid', 'sweep', 'random', 'tpe' or 'nsga2'"]),
    # (a grid with nothing searched is no longer refused: it evaluates its one design, issue 14)
    (lambda d: d.update(sampler={"kind": "grid"},
                        hardware={"wire_resistance": {"low": 0.0, "high": 2.0}}),
     ["hardware.wire_resistance: sampler.kind = 'grid' needs a discrete search"]),
    (lambda d: d.update(sampler={"kind": "random", "population_size": 8}),
     ["sampler.population_size: only allowed with sampler.kind = 'nsga2'"]),
    (lambda d: d["evaluation"].update(times=["1 fortnight"]),
     ["evaluation.times: times[0] = '1 fortnight' is not a time"]),
    (lambda d: d["evaluation"].update(times=["1 h", "60 min"]),
     ["evaluation.times: times ['1 h', '60 min'] repeat a time"]),
    (lambda d: d["evaluation"].update(times=[]),
     ["evaluation.times"]),
    (lambda d: d["objectives"].append({"metric": "accuracy", "time": "2 h"}),
     ["objectives[1].time = 2 h is not one of evaluation.times; allowed: 1 s, 1 h"]),
    (lambda d: d["objectives"].append({"metric": "accuracy"}),
     ["objectives[1].time: required for metric 'accuracy'"]),
    (lambda d: d["objectives"].append({"metric": "area", "time": "1 h"}),
     ["objectives[1].time: only allowed with metric 'accuracy'"]),
    (lambda d: d["objectives"].append({"metric": "accuracy", "time": 3600}),
     ["objectives[1]: accuracy @ 1 h is listed twice"]),
    (lambda d: d["objectives"].append({"metric": "power"}),
     ["objectives[1].metric = 'power'", "'energy_per_inference'", "'programming_energy'"]),
    (lambda d: d["objectives"][0].update(direction="up"),
     ["objectives[0].direction = 'up'", "'maximize' or 'minimize'"]),
    (lambda d: d.pop("objectives"), ["objectives: required field is missing"]),
    (lambda d: d.update(study={}, hardware={"adc_bits": {"choices": [4, 8]}}),
     ["study.trials: required with sampler.kind = 'tpe'"]),
    (lambda d: d.update(study={"trials": 0}), ["study.trials = 0", "greater than or equal to 1"]),
    (lambda d: d.update(study={"trials": 2, "name": "a b"}),
     ["study.name: 'a b' is not allowed; allowed: 1-100 letters"]),
    (lambda d: d.update(study={"trials": 2, "storage": "redis://x"}),
     ["study.storage: 'redis://x': backend 'redis' is not supported", "postgresql://"]),
    (lambda d: d.update(study={"trials": 2, "storage": "sqlite://"}),
     ["study.storage: 'sqlite://': an in-memory SQLite database cannot be shared"]),
    (lambda d: d.update(workload={"dataset": "mnist"}),
     ["workload.data_dir: required for dataset 'mnist'"]),
    (lambda d: d.update(workload={"model_options": {"width": 3}}),
     ["workload.model_options: model 'mlp'", "width"]),
    (lambda d: d.update(workload={"training": {"epochs": 0, "lr": "fast"}}),
     ["workload.training.epochs = 0", "workload.training.lr = 'fast'", "valid number"]),
    (lambda d: d.update(workload={"training": {"recipe": {"choices": ["digital", "magic"]}}}),
     ["workload.training.recipe: choices[1] = 'magic' is not allowed",
      "'digital', 'hardware-aware', 'online'"]),
    (lambda d: d.update(extra=1), ["extra: unknown field; allowed fields: study, workload"]),
    (lambda d: d.update(cost={"sensing": "voltage"}),
     ["cost.sensing = 'voltage' is not allowed; allowed: sample_hold, per_column"]),
    (lambda d: d.update(cost={"nodes": 22e-9}),
     ["cost: unknown field(s) nodes; allowed fields: node,"]),
    (lambda d: d.update(cost={"node": -1.0}),
     ["cost.node = -1.0 is out of range; allowed: [1e-09, 1e-06] m"]),
]


@pytest.mark.parametrize("mod, expected", BAD)
def test_bad_values_name_field_and_allowed(mod, expected: list[str]) -> None:
    with pytest.raises(SpecError) as info:
        _parse(mod)
    msg = str(info.value)
    assert msg.startswith("bad.toml: ") and "\n" not in msg
    for part in expected:
        assert part in msg, (part, msg)


@pytest.mark.parametrize("dataset, present, missing", [
    ("mnist", ["train-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte"],
     "train-labels-idx1-ubyte, t10k-images-idx3-ubyte (IDX files, plain or .gz)"),
    ("cifar10", ["cifar-10-batches-py/data_batch_1", "cifar-10-batches-py/test_batch"],
     "data_batch_2, data_batch_3, data_batch_4, data_batch_5 (CIFAR-10 python batches)"),
])
def test_dataset_files_are_checked_before_any_training(tmp_path: Path, dataset: str,
                                                       present: list[str], missing: str
                                                       ) -> None:
    """A data folder without its dataset's files is refused at load, naming the missing ones
    (before, every design failed in turn on a FileNotFoundError)."""
    for name in present:
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_bytes(b"")
    data = copy.deepcopy(BASE)
    data["workload"] = {"dataset": dataset, "data_dir": str(tmp_path)}
    with pytest.raises(SpecError, match="workload.data_dir: .* lacks the") as info:
        parse_spec(data, source="data.toml")
    assert str(info.value).endswith(f"{dataset} files {missing}")
    for name in ("train-labels-idx1-ubyte", "t10k-images-idx3-ubyte.gz",
                 *(f"cifar-10-batches-py/data_batch_{i}" for i in range(2, 6))):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_bytes(b"")
    assert parse_spec(data, source="data.toml").workload.data_dir == str(tmp_path)


def test_several_errors_in_one_line() -> None:
    with pytest.raises(SpecError) as info:
        _parse(lambda d: d.update(hardware={"adc_bits": 99, "dac_bits": -1}))
    msg = str(info.value)
    assert "hardware.adc_bits: 99" in msg and "hardware.dac_bits: -1" in msg and "\n" not in msg


def test_bad_toml_and_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "broken.toml"
    path.write_text("[study]\nname = \n")
    with pytest.raises(SpecError, match=r"broken.toml: not valid TOML: .*line 2"):
        load_spec(path)
    with pytest.raises(SpecError, match="not found; ready-made studies: .*quickstart"):
        load_spec(tmp_path / "nope.toml")


# ----------------------------------------------------------------------------- hardware at load


def _run_one_mvm(spec, point: dict) -> None:
    """Build a design's hardware as a trial does and run one MVM through a small layer."""
    import torch
    from torch import nn

    from memxbar.mapping import program, to_analog

    tile, mapping = spec.build_hardware(point)
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(4, 12, generator=gen)
    layer = nn.Sequential(nn.Linear(12, 5))
    analog = to_analog(layer, tile, mapping=mapping)
    program(analog, generator=gen, calibration=x)
    with torch.no_grad():
        y = analog(x)
    assert y.shape == (4, 5) and bool(torch.isfinite(y).all()), point


def _sample_points(spec, n: int, seed: int) -> list[dict]:
    import random

    points = list(spec.hardware_points())
    return random.Random(seed).sample(points, min(n, len(points)))


@pytest.mark.parametrize("name", sorted(ready_studies()))
def test_every_design_accepted_at_load_runs_an_mvm(name: str) -> None:
    spec = load_spec(name)
    for point in _sample_points(spec, 6, seed=1):
        _run_one_mvm(spec, point)


def test_fuzzed_hardware_accepted_at_load_runs_an_mvm() -> None:
    """Random [hardware] tables: whatever load accepts runs; what fails must fail at load."""
    import random

    from memxbar.studies.hardware import FIELDS

    rng = random.Random(7)
    values = {"device": ["ideal", "pcm-joshi2020", "rram-falcone2025", "fefet-jerry2017"],
              "tile_rows": [1, 2, 3, 16, 64], "tile_cols": [1, 2, 3, 8, 64],
              "weight_bits": [0, 1, 2, 4, 8], "bits_per_cell": [0, 1, 2, 3],
              "dac_bits": [0, 1, 2, 8], "adc_bits": [0, 1, 2, 6, 8],
              "adc_full_scale": [0.5, 8.0], "wire_resistance": [0.0, 1.0],
              "rows_parallel": [1, 4, 64], "input_range": [0.5, 2.0], "out_noise": [0.0, 0.01]}
    accepted = 0
    for _ in range(60):
        hw = {}
        for f in FIELDS:
            if rng.random() < 0.4:
                options = values.get(f.name) or (
                    [True, False] if f.domain.kind == "bool" else list(f.domain.options))
                hw[f.name] = rng.choice(options)
        try:
            spec = parse_spec({**BASE, "hardware": hw})
        except SpecError as e:
            assert "hardware." in str(e) or "hardware:" in str(e), str(e)
            continue
        accepted += 1
        for point in _sample_points(spec, 1, seed=0):
            _run_one_mvm(spec, point)
    assert accepted >= 10


def test_a_large_search_builds_a_bounded_sample() -> None:
    spec = parse_spec({**BASE, "hardware": {
        "tile_rows": {"low": 8, "high": 512}, "adc_bits": {"choices": [0, 4, 6, 8]},
        "wire_resistance": {"low": 0.0, "high": 5.0}, "dac_bits": {"low": 2, "high": 8}}})
    from memxbar.studies.spec import MAX_BUILT

    points = list(spec.hardware_points())
    assert MAX_BUILT < len(points) <= MAX_BUILT + 600
    assert {p["tile_rows"] for p in points} >= {8, 9, 511, 512}  # every value once


# ----------------------------------------------------------------------------- bounds and paths


@pytest.mark.parametrize("mod, expected", [
    (lambda d: d.update(study={"trials": 10**18}), ["study.trials", "1000000"]),
    (lambda d: d.update(study={"trials": 2, "seed": 2**70}), ["study.seed"]),
    (lambda d: d.update(workload={"model_options": {"hidden": [100_000_000]}}),
     ["workload.model_options: model 'mlp': hidden[0] = 100000000", "[1, 65536]"]),
    (lambda d: d.update(workload={"model_options": {"hidden": [8] * 65}}),
     ["hidden = [8, 8", "at most 64 widths"]),
    (lambda d: d.update(workload={"model_options": {"hidden": [60000, 60000, 60000]}}),
     ["weights; allowed: at most 200,000,000"]),
    (lambda d: d.update(workload={"model": "resnet", "model_options": {"width": 10**6}}),
     ["model 'resnet': width = 1000000"]),
    (lambda d: d.update(hardware={"tile_rows": 2**40}), ["hardware.tile_rows: 1099511627776"]),
    (lambda d: d.update(hardware={"tile_rows": {"low": 1, "high": 2**40}}),
     ["hardware.tile_rows: high = 1099511627776 is not allowed"]),
    (lambda d: d.update(hardware={"wire_resistance": {"low": 0.0, "high": 1.0, "step": 1e-9}}),
     ["hardware.wire_resistance: the range has 1000000001 grid points"]),
    (lambda d: d.update(workload={"model_options": {"hidden": [4097] * 3}},
                        hardware={"tile_rows": 4096, "layout": "arrays"}),
     ["hardware: the design", "needs", "cells for this model; allowed: at most"]),
    (lambda d: d["evaluation"].update(times=[1e30]), ["more than 1000 years"]),
    (lambda d: d["evaluation"].update(times=list(range(101))), ["evaluation.times"]),
    (lambda d: d.update(study={"trials": 2, "output": "~nosuchuser_xyz/out"}),
     ["study.output: folder '~nosuchuser_xyz/out'", "home"]),
    (lambda d: d.update(study={"trials": 2, "torch_device": "gpu"}),
     ["study.torch_device: 'gpu' is not allowed; allowed: 'cpu', 'cuda' or 'cuda:N'"]),
    (lambda d: d.update(hardware={"measured": {"m": {"file": "x.csv", "sha256": "ab"}}}),
     ["hardware.measured.m"]),
])
def test_bounds_and_sizes_are_refused_without_allocating(mod, expected: list[str]) -> None:
    test_bad_values_name_field_and_allowed(mod, expected)


def test_deep_nesting_is_a_clean_error(tmp_path: Path) -> None:
    data = copy.deepcopy(BASE)
    node = data["workload"] = {}
    for _ in range(5000):
        node["model_options"] = {}
        node = node["model_options"]
    with pytest.raises(SpecError, match="nested 9 deep; allowed: at most 8"):
        parse_spec(data, source="bad.toml")
    path = tmp_path / "deep.toml"
    path.write_text("[evaluation]\ntimes = [1]\n[workload]\nmodel_options = { a = "
                    + "[" * 3000 + "]" * 3000 + " }\n")
    with pytest.raises(SpecError, match="nested"):
        load_spec(path)


def test_output_paths_are_checked_at_load(tmp_path: Path, monkeypatch) -> None:
    import os

    monkeypatch.chdir(tmp_path)
    study = tmp_path / "s.toml"
    study.write_text('[study]\noutput = "s.toml"\ntrials = 1\n[evaluation]\ntimes = [1]\n'
                     '[[objectives]]\nmetric = "area"\n')
    with pytest.raises(SpecError, match="study.output: 's.toml' is the study file itself"):
        load_spec(study)
    (tmp_path / "afile").write_text("x")
    with pytest.raises(SpecError, match="afile is a file, not a folder"):
        parse_spec({**BASE, "study": {"trials": 1, "output": "afile/sub"}})
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    if os.geteuid() == 0:  # root writes anywhere: make the folder unwritable to os.access
        real = os.access
        monkeypatch.setattr(os, "access", lambda p, mode: real(p, mode) and Path(p) != locked)
    with pytest.raises(SpecError, match=f"study.output: folder {locked}/out: the folder "
                                        f"{locked} is not writable"):
        parse_spec({**BASE, "study": {"trials": 1, "output": str(locked / "out")}})
    with pytest.raises(SpecError, match="study.storage: .* is not writable"):
        parse_spec({**BASE, "study": {"trials": 1, "storage": f"sqlite:///{locked}/s.db"}})
    # read back from storage, paths are not checked again (the report may run elsewhere)
    spec = parse_spec({**BASE, "study": {"trials": 1, "output": "afile/sub"}},
                      check_files=False)
    assert spec.study.output == "afile/sub"


def test_cuda_torch_device_refused_when_absent(monkeypatch) -> None:
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(SpecError, match="study.torch_device = 'cuda:1': CUDA is not available"):
        parse_spec({**BASE, "study": {"trials": 1, "torch_device": "cuda:1"}})
    # not part of the study's identity: a study may move between CPU and GPU machines
    a = parse_spec(BASE)
    b = parse_spec({**BASE, "study": {"trials": 4, "torch_device": "cuda"}}, check_files=False)
    assert a.identity_hash() == b.identity_hash() and b.torch_device == "cuda"


# ----------------------------------------------------------------------------- measured files


def _measured_study(tmp_path: Path, csv_text: str) -> Path:
    (tmp_path / "m.csv").write_text(csv_text)
    path = tmp_path / "m.toml"
    path.write_text('[study]\ntrials = 1\n[hardware]\ndevice = "m"\n[hardware.measured.m]\n'
                    'file = "m.csv"\nunits = "normalized"\ng_min = 1e-6\ng_max = 2e-5\n'
                    '[evaluation]\ntimes = [1]\n'
                    '[[objectives]]\nmetric = "area"\n')
    return path


def test_measured_file_is_validated_in_full_and_hashed(tmp_path: Path) -> None:
    good = (DATA / "rram_hfo2_gong2018_pulses.csv").read_text()
    path = _measured_study(tmp_path, good)
    spec = load_spec(path)
    assert len(spec.hardware.measured["m"].sha256) == 64
    # the same file rewritten with other numbers: another study, and the old spec refuses it
    lines = good.splitlines()
    rows = [lines[0]] + [",".join(str(float(v) * 1.01) for v in ln.split(",")) for ln in
                         lines[1:]]
    (tmp_path / "m.csv").write_text("\n".join(rows) + "\n")
    changed = load_spec(path)
    assert changed.identity_hash() != spec.identity_hash()
    with pytest.raises(ValueError, match="changed since the study was loaded"):
        spec.build_device("m")
    header = lines[0]
    for body, text in [
        ("1,x\n" * 50, "is not"),  # non-numeric
        ("1,nan\n" * 50, ""),  # not finite
        ("1,2\n", "readings"),  # too few rows
        ("0.5,0.5\n" * 50, ""),  # constant
    ]:
        _measured_study(tmp_path, header + "\n" + body)
        with pytest.raises(SpecError, match=r"hardware.measured.m.file: .*" + text):
            load_spec(path)


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


@pytest.mark.parametrize("torch_device", ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(
    not _cuda(), reason="needs a CUDA device"))])
def test_a_trial_runs_on_the_study_torch_device(tmp_path: Path, torch_device: str) -> None:
    """Each training recipe, evaluation and cost of one design on the study's torch device."""
    from memxbar.studies.evaluate import evaluate_design

    data = {"study": {"trials": 1, "torch_device": torch_device},
            "workload": {"limit": 200, "model_options": {"hidden": [8]},
                         "training": {"recipe": {"choices": ["digital", "hardware-aware",
                                                             "online"]},
                                      "epochs": 1}},
            "hardware": {"device": "pcm-joshi2020", "tile_rows": 32, "adc_bits": 6,
                         "wire_resistance": 1.0},
            "evaluation": {"times": [1, 3600]},
            "objectives": [{"metric": "accuracy", "time": 3600}]}
    spec = parse_spec(data)
    for recipe in ("digital", "hardware-aware", "online"):
        out = evaluate_design(spec, spec.resolve({"recipe": recipe}), cache_dir=tmp_path)
        assert 0.0 <= out[accuracy_key(3600.0)] <= 1.0 and out["energy_per_inference"] > 0


def test_build_hardware_sets_every_config_field_from_one_declaration() -> None:
    import dataclasses

    from memxbar.crossbar.periphery import ADC
    from memxbar.crossbar.tile import TileConfig
    from memxbar.devices import presets
    from memxbar.studies.hardware import BY_NAME, FIELDS, build_hardware, domain_of

    # the study's domains are the configuration classes' declarations (bounds may be tighter)
    meta = {f.name: f.metadata["param"] for f in dataclasses.fields(ADC)}
    assert BY_NAME["adc_model"].domain.options == meta["model"]["options"]
    assert BY_NAME["adc_range"].domain == domain_of(ADC, "range_mode")
    assert BY_NAME["tile_rows"].domain.hi == 4096 and domain_of(TileConfig, "rows").hi > 4096
    params = {f.name: f.default for f in FIELDS}
    params.update(device="pcm-joshi2020", tile_rows=64, wire_resistance=2.5, adc_range="fixed",
                  adc_full_scale=3.0, drift_compensation="column", rows_parallel=16,
                  adc_model="neurosim", input_scaling="fixed", input_range=4.0)
    dev = presets.get("pcm-joshi2020")
    tile, mapping = build_hardware(params, dev)
    assert (tile.rows, tile.cols, tile.r_row, tile.r_col) == (64, 64, 2.5, 2.5)
    assert tile.device is dev and tile.rows_parallel == 16
    assert (tile.adc.bits, tile.adc.range_mode, tile.adc.full_scale, tile.adc.model) == (
        8, "fixed", 3.0, "neurosim")
    assert (tile.dac.bits, mapping.compensation, mapping.input_scaling, mapping.input_range) == (
        8, "column", "fixed", 4.0)
    # a calibrated ADC takes its range from data: a full scale given for "fixed" is ignored
    tile, _ = build_hardware({**params, "adc_range": "calibrated"}, dev)
    assert tile.adc.full_scale is None
    tile, mapping = build_hardware(params, dev, mapping={"weight_clip": "fixed"})
    assert mapping.weight_clip == "fixed"
    with pytest.raises(ValueError, match=r"hardware.tile_cols = 1 holds no weight column"):
        build_hardware({**params, "tile_cols": 1}, dev)
