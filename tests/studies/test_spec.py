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
drift_compensation = "per_column"

[hardware.measured.mine]
file = "pulses.csv"
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
    data["workload"]["training"]["adc_recalibrate_every"] = 10
    assert parse_spec(data, check_files=False).identity_hash() != spec.identity_hash()
    # the [cost] table: empty (memxbar's defaults) leaves the identity as before; a cost model
    # changes the study's objectives, so its identity, but not the trained-model cache key
    data = spec.model_dump(mode="json")
    assert data.pop("cost") == {} and spec.cost_model() == CostModel()
    assert parse_spec(data, check_files=False).identity_hash() == spec.identity_hash()
    data["cost"] = {"sensing": "per_column", "rows_parallel": 32, "adc_model": "neurosim"}
    costed = parse_spec(data, check_files=False)
    assert costed.cost_model() == CostModel(sensing="per_column", rows_parallel=32,
                                            adc_model="neurosim")
    assert costed.identity_hash() != spec.identity_hash()
    assert costed.workload_key() == spec.workload_key()


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
     ["hardware.wire_resistance: low = -1 is not allowed; allowed: a finite number >= 0"]),
    (lambda d: d.setdefault("hardware", {}).update(tile_rows={"low": 1, "high": 10, "step": 4}),
     ["hardware.tile_rows: high - low = 9 must be a multiple of step = 4"]),
    (lambda d: d.setdefault("hardware", {}).update(adc_bits={"low": 0, "high": 8, "log": True}),
     ["hardware.adc_bits: log = true needs low > 0"]),
    (lambda d: d.setdefault("hardware", {}).update(tile_rows=[64, 128]),
     ["hardware.tile_rows: a list is not allowed", "{choices = [...]}"]),
    (lambda d: d.setdefault("hardware", {}).update(weight_bits=1),
     ["hardware.weight_bits: 1 is not allowed", "except 1"]),
    (lambda d: d.setdefault("hardware", {}).update(dac_bit_serial=1),
     ["hardware.dac_bit_serial: 1 is not allowed; allowed: true or false"]),
    (lambda d: d.setdefault("hardware", {}).update(bits_per_cell=2),
     ["hardware.bits_per_cell: must be 0 with analog weights"]),
    (lambda d: d.setdefault("hardware", {}).update(adc_range="fixed"),
     ["hardware.adc_full_scale: required when hardware.adc_range can be 'fixed'"]),
    (lambda d: d.setdefault("hardware", {}).update(measured={"m": {"file": "/no/such.csv"}}),
     ["hardware.measured.m.file: file /no/such.csv does not exist"]),
    (lambda d: d.setdefault("hardware", {}).update(measured={"ideal": {"file": str(
        DATA / "rram_agasi_jo2010_ltp_ltd.csv")}}),
     ["hardware.measured: 'ideal' is the name of a device preset"]),
    (lambda d: d.setdefault("hardware", {}).update(measured={"m": {"file": "/etc/hostname"}}),
     ["hardware.measured.m.file:", "not a known pulse-file format",
      "up_pulse_response, down_pulse_response"]),
    (lambda d: d.update(sampler={"kind": "annealing"}),
     ["sampler.kind = 'annealing'", "'grid', 'random', 'tpe' or 'nsga2'"]),
    (lambda d: d.update(sampler={"kind": "grid"}),
     ["sampler.kind = 'grid' needs at least one searched field"]),
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
    (lambda d: d.update(study={}), ["study.trials: required with sampler.kind = 'tpe'"]),
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
     ["cost.node = -1.0 is out of range; allowed: (0.0, 1e-06] m"]),
]


@pytest.mark.parametrize("mod, expected", BAD)
def test_bad_values_name_field_and_allowed(mod, expected: list[str]) -> None:
    with pytest.raises(SpecError) as info:
        _parse(mod)
    msg = str(info.value)
    assert msg.startswith("bad.toml: ") and "\n" not in msg
    for part in expected:
        assert part in msg, (part, msg)


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
