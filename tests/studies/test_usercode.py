"""Your own model, dataset, device and objective in a study; one design; metric names."""

from __future__ import annotations

import math
from pathlib import Path

import optuna
import pytest

from memxbar.errors import ConfigError
from memxbar.studies.report import write_report
from memxbar.studies.runner import TrialContext, load_study, run_study
from memxbar.studies.spec import SpecError, StudySpec, accuracy_key, load_spec

FAST = {"progress": False, "heartbeat_interval": 1, "grace_period": 3, "poll_interval": 0.1}
MODULE = '''
import torch
from torch import nn
from torch.utils.data import TensorDataset


def tiny(in_shape, n_classes, hidden=8):
    n = 1
    for s in in_shape:
        n *= s
    return nn.Sequential(nn.Flatten(), nn.Linear(n, hidden), nn.ReLU(),
                         nn.Linear(hidden, n_classes))


def blobs(seed=0):
    """Three well separated Gaussian blobs in 6 dimensions: 120 train, 60 test."""
    g = torch.Generator().manual_seed(seed)
    centres = 4.0 * torch.eye(3, 6)
    y = torch.randint(0, 3, (180,), generator=g)
    x = centres[y] + 0.3 * torch.randn(180, 6, generator=g)
    return TensorDataset(x[:120], y[:120]), TensorDataset(x[120:], y[120:])


def quiet_pcm():
    from memxbar.devices import presets
    import dataclasses
    return dataclasses.replace(presets.get("pcm-joshi2020"), read_voltage=0.1)


def not_a_device():
    return 42
'''
STUDY = """
[study]
name = "mine"
output = "{out}"
[workload]
dataset = "{dataset}"
model = "{model}"
model_options = {{ hidden = 8 }}
[workload.training]
epochs = 30
lr = 0.02
[hardware]
device = "{device}"
[evaluation]
times = ["1 s", "1 day"]
repeats = 2
[[objectives]]
metric = "accuracy"
time = "1 day"
[[objectives]]
metric = "energy_per_inference"
"""


def _study(folder: Path, dataset: str = "mymodels:blobs", model: str = "mymodels:tiny",
           device: str = "ideal", module_dir: Path | None = None) -> Path:
    for f in (folder, module_dir or folder):
        f.mkdir(parents=True, exist_ok=True)
    (module_dir or folder).joinpath("mymodels.py").write_text(MODULE)
    path = folder / "mine.toml"
    path.write_text(STUDY.format(out=folder / "out", dataset=dataset, model=model,
                                 device=device))
    return path


def test_a_study_naming_a_model_and_a_dataset_next_to_the_toml(tmp_path: Path) -> None:
    path = _study(tmp_path)
    spec = load_spec(path)
    assert spec.input_shape() == (6,) and spec.n_classes() == 3
    assert spec.weight_shapes() == [(7, 8), (9, 3)]
    assert set(spec.code) == {"mymodels:blobs", "mymodels:tiny"}
    summary = run_study(path, **FAST)  # memxbar's own evaluation: train, program, read, cost
    assert summary.complete == 1 and summary.n_trials == 1  # nothing searched: one design
    study, spec = load_study(tmp_path / "out")
    metrics = study.trials[0].user_attrs["metrics"]
    assert metrics["test_examples"] == 60 and metrics["accuracy_digital"] > 0.9
    assert metrics[accuracy_key(86400.0)] > 0.9  # an ideal device keeps the digital accuracy
    md = write_report(tmp_path / "out")["report.md"].read_text()
    assert "model mymodels:tiny" in md and "dataset mymodels:blobs" in md
    sha = spec.code["mymodels:tiny"]["sha256"]
    assert f"`mymodels:tiny` from mymodels.py (sha256 {sha[:12]}" in md
    assert "searched: nothing (one design)" in md
    # a changed file is a different study: refused, not silently resumed
    (tmp_path / "mymodels.py").write_text(MODULE + "\n# changed\n")
    with pytest.raises(ConfigError, match="different study file: code.mymodels:blobs.sha256"):
        run_study(path, **FAST)


def test_code_found_with_path_and_refusals(tmp_path: Path) -> None:
    path = _study(tmp_path / "study", module_dir=tmp_path / "lib")
    with pytest.raises(SpecError, match="module 'mymodels' not found .* --path"):
        load_spec(path)
    spec = load_spec(path, code_path=[str(tmp_path / "lib")])
    assert spec.code["mymodels:tiny"]["file"] == str(tmp_path / "lib" / "mymodels.py")
    for missing in (tmp_path / "nolib", tmp_path / "lib" / "mymodels.py"):  # a typo, a file
        with pytest.raises(SpecError, match="code path .* is not a folder; allowed: existing"):
            load_spec(path, code_path=[str(tmp_path / "lib"), str(missing)])
    with pytest.raises(SpecError, match="'nomodule' is not allowed; allowed: 'mlp', 'lenet'"):
        load_spec(_study(tmp_path / "a", model="nomodule"))
    with pytest.raises(SpecError, match="defines no 'missing'"):
        load_spec(_study(tmp_path / "b", model="mymodels:missing"))
    with pytest.raises(SpecError, match="returned int; expected a memxbar Device"):
        load_spec(_study(tmp_path / "c", device="mymodels:not_a_device"))
    bad = _study(tmp_path / "d")
    bad.write_text(bad.read_text() + '[code]\n"x:y" = {}\n')
    with pytest.raises(SpecError, match="code: memxbar finds your code"):
        load_spec(bad)


def test_a_device_named_by_module_function(tmp_path: Path) -> None:
    spec = load_spec(_study(tmp_path, device="mymodels:quiet_pcm"))
    assert spec.technology("mymodels:quiet_pcm") == "pcm"
    tile, _ = spec.build_hardware(spec.resolve({}))
    assert tile.device.read_voltage == 0.1 and type(tile.device).__name__ == "PCM"


def spread_objective(spec: StudySpec, params: dict, ctx: TrialContext) -> dict:
    """Repeats of a closed form: design k has draws 0.90 + 0.01 k + (-0.006, 0, +0.006)."""
    k = params["adc_bits"] - 4
    draws = [0.90 + 0.01 * k + d for d in (-0.006, 0.0, 0.006)]
    acc = {accuracy_key(t): sum(draws) / 3 for t in spec.evaluation.times}
    return {**acc, "energy_per_inference": 1e-12 * 2 ** k, "test_examples": 200.0,
            "breakdown": {"accuracy_repeats": {key: draws for key in acc}}}


def test_statistics_intervals_ties_and_small_test_set(tmp_path: Path) -> None:
    path = tmp_path / "stats.toml"
    path.write_text(f"""
[study]
name = "stats"
output = "{tmp_path / 'out'}"
[hardware]
adc_bits = {{ choices = [4, 5, 6] }}
[evaluation]
times = ["1 day"]
repeats = 3
[[objectives]]
metric = "accuracy"
[[objectives]]
metric = "energy_per_inference"
[sampler]
kind = "grid"
""")
    run_study(path, objective_fn=spread_objective, **FAST)
    files = write_report(tmp_path / "out")
    import pandas as pd
    from scipy.stats import t as student

    df = pd.read_csv(files["results.csv"])
    half = student.ppf(0.975, 2) * 0.006 / math.sqrt(3)  # std of (-d, 0, d) is d
    for _, r in df.iterrows():
        assert r["repeats"] == 3 and r["accuracy_std"] == pytest.approx(0.006)
        assert r["accuracy_ci_low"] == pytest.approx(r["accuracy"] - half)
        assert r["accuracy_ci_high"] == pytest.approx(r["accuracy"] + half)
    md = files["report.md"].read_text()
    # Welch: the difference of two means has half-width t(4 dof) * sqrt(2 * 0.006^2 / 3) =
    # 0.0136: designs 0.01 apart are not told apart, 0.02 apart are
    assert "same accuracy @ 1 d as (95 %)" in md
    rows = {line.split("|")[1].strip(): line.split("|")[-2].strip()
            for line in md.splitlines() if line.startswith("| ") and "pJ" in line}
    assert rows == {"0": "#1", "1": "#0, #2", "2": "#1"}
    assert "The test set is small for these differences" in md and "200 test examples" in md
    summary = pd.read_csv(files["summary.csv"])
    acc = summary[summary["metric"] == "accuracy"]
    assert len(acc) == 3 and (acc["n"] == 3).all()


def one_design(spec: StudySpec, params: dict, ctx: TrialContext) -> dict:
    return {accuracy_key(86400.0): 0.9, "energy_per_inference": 1e-12}


def other_objective(spec: StudySpec, params: dict, ctx: TrialContext) -> dict:
    return {accuracy_key(86400.0): 0.8, "energy_per_inference": 1e-12}


def test_one_design_metric_names_and_a_changed_objective(tmp_path: Path) -> None:
    path = tmp_path / "one.toml"
    path.write_text(f"""
[study]
name = "one"
output = "{tmp_path / 'out'}"
[evaluation]
times = ["1 day"]
[[objectives]]
metric = "accuracy"
[[objectives]]
metric = "energy_per_inference"
[sampler]
kind = "tpe"
""")
    summary = run_study(path, objective_fn=one_design, **FAST)
    assert summary.complete == 1 and summary.n_trials == 1
    study = optuna.load_study(study_name="one", storage=f"sqlite:///{tmp_path / 'out/study.db'}")
    assert study.metric_names == ["accuracy @ 1 d", "energy_per_inference"]
    assert study.user_attrs["memxbar_objective"].startswith(f"{__name__}:one_design sha256 ")
    with pytest.raises(ConfigError, match="run with the objective .*one_design.* a changed "
                                          "objective is a different study"):
        run_study(path, objective_fn=other_objective, **FAST)


def test_command_line_path_option(tmp_path: Path) -> None:
    from memxbar import cli

    path = _study(tmp_path / "study", module_dir=tmp_path / "lib")
    assert cli.main(["study", "run", str(path), "--workers", "0", "--path",
                     str(tmp_path / "lib")]) in (0, None)
    study, spec = load_study(tmp_path / "study" / "out")
    assert spec.code["mymodels:tiny"]["file"] == str(tmp_path / "lib" / "mymodels.py")
    assert len(study.trials) == 1  # one design enqueued, none run (--workers 0)
