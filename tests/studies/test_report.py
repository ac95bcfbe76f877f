"""Study reports (studies.report): tidy tables, plots and Markdown, read from the storage only."""

from __future__ import annotations

import errno
import json
import math
import sys
from pathlib import Path

import numpy as np
import optuna
import pandas as pd
import pytest

from memxbar.errors import ConfigError
from memxbar.studies.report import PLOTS, breakdown_table, results_table, write_report
from memxbar.studies.runner import (
    MANIFEST,
    StorageError,
    TrialContext,
    load_study,
    locate_study,
    open_dashboard,
    run_study,
    trial_seed,
)
from memxbar.studies.spec import StudySpec, accuracy_key, load_spec

FAST = {"progress": False, "heartbeat_interval": 1, "grace_period": 3, "poll_interval": 0.1}
DRIFT = {"ideal": 0.0, "pcm-joshi2020": 0.05, "rram-wan2022": 0.005}
STUDY = """
[hardware]
device = { choices = ["ideal", "pcm-joshi2020", "rram-wan2022"] }
adc_bits = { choices = [3, 5, 8] }
[evaluation]
times = ["1 s", "1 day", "1 year"]
[[objectives]]
metric = "accuracy"
time = "1 day"
[[objectives]]
metric = "energy_per_inference"
[sampler]
kind = "grid"
"""


def model_objective(spec: StudySpec, params: dict, ctx: TrialContext) -> dict:
    """A closed-form design model: ADC quantization costs accuracy 0.3 * 2^-bits, drift costs
    nu * log10(1 + t / 20 s); ADC energy doubles per bit. One design crashes."""
    bits, nu = params["adc_bits"], DRIFT[params["device"]]
    if params["device"] == "rram-wan2022" and bits == 5:
        raise RuntimeError("boom")
    out = {accuracy_key(t): 0.97 - 0.3 * 2.0 ** -bits - nu * math.log10(1 + t / 20)
           for t in spec.evaluation.times}
    adc, cells = 1e-12 * 2.0 ** bits, 3e-11
    out["energy_per_inference"] = adc + cells
    out["latency"] = 1e-6 * bits
    out["breakdown"] = {"energy_per_inference": {"adc": adc, "cells": cells},
                        "layers": [{"name": "fc1", "tiles": 2}]}
    return out


def failing_objective(spec: StudySpec, params: dict, ctx: TrialContext) -> dict:
    raise ValueError(f"no model for {params['device']}")


def _run(tmp_path: Path, objective, name: str = "rep") -> Path:
    path = tmp_path / f"{name}.toml"
    path.write_text(f'[study]\nname = "{name}"\noutput = "{tmp_path / "out"}"\n' + STUDY)
    run_study(path, objective_fn=objective, **FAST)
    return load_spec(path).output_dir


def test_report_writes_every_table_and_plot(tmp_path: Path) -> None:
    folder = _run(tmp_path, model_objective)
    files = write_report(folder)
    expected = {"results.csv", "results.parquet", "summary.csv", "summary.parquet",
                "energy_breakdown.csv", "energy_breakdown.parquet", "report.md",
                *(f"{p}.{f}" for p in PLOTS for f in ("png", "svg", "pdf"))}
    assert set(files) == expected
    for name, path in files.items():
        assert path.parent == folder / "report" and path.stat().st_size > 0
        if name.endswith(".png"):
            assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        if name.endswith(".svg"):  # text kept as text (svg.fonttype = "none"), not paths
            svg = path.read_text()
            assert "<svg" in svg[:2000] and "<text" in svg
        if name.endswith(".pdf"):
            assert path.read_bytes()[:5] == b"%PDF-"

    study, spec = load_study(folder)
    df = pd.read_csv(files["results.csv"])
    assert len(df) == 9 * 3  # one row per trial x evaluation time
    for col in [*spec.dims(), "technology", "t_s", "t_label", "accuracy", "energy_per_inference",
                "latency", "area", "programming_energy", "seed", "sampler_seed", "trial",
                "state", "pareto", "error", "worker", "duration_s"]:
        assert col in df.columns, col
    # the Parquet file holds the same table
    pq = pd.read_parquet(files["results.parquet"])
    assert list(pq.columns) == list(df.columns) and len(pq) == len(df)
    pd.testing.assert_frame_equal(pq[["trial", "t_s", "accuracy", "energy_per_inference"]],
                                  df[["trial", "t_s", "accuracy", "energy_per_inference"]])
    # values are those of the storage and of the closed-form model
    for t in study.get_trials():
        rows = df[df["trial"] == t.number].sort_values("t_s")
        assert rows["t_s"].tolist() == spec.evaluation.times
        assert (rows["seed"] == 0).all() and (rows["sampler_seed"] == trial_seed(0, t.number)).all()
        p = t.params
        if p == {"device": "rram-wan2022", "adc_bits": 5}:
            assert (rows["state"] == "FAIL").all() and rows["accuracy"].isna().all()
            assert (rows["error"] == "RuntimeError: boom").all()
            continue
        nu = DRIFT[p["device"]]
        want = [0.97 - 0.3 * 2.0 ** -p["adc_bits"] - nu * math.log10(1 + s / 20)
                for s in spec.evaluation.times]
        np.testing.assert_allclose(rows["accuracy"], want, rtol=1e-12)
        assert rows["technology"].iloc[0] == {"ideal": "ideal", "pcm-joshi2020": "pcm",
                                              "rram-wan2022": "rram"}[p["device"]]
        assert (rows["tile_cols"] == 128).all() and (rows["wire_resistance"] == 0.0).all()
    # Pareto flags: brute force over (accuracy at 1 day, max; energy, min)
    day = df[(df["t_s"] == 86400.0) & (df["state"] == "COMPLETE")]
    acc, en = day["accuracy"].to_numpy(), day["energy_per_inference"].to_numpy()
    front = {int(day["trial"].iloc[i]) for i in range(len(day))
             if not any(acc[j] >= acc[i] and en[j] <= en[i] and (acc[j] > acc[i] or en[j] < en[i])
                        for j in range(len(day)))}
    assert set(df[df["pareto"]]["trial"]) == front
    assert front == {t.number for t in study.best_trials}
    # energy breakdown: components add up to the energy per inference of each trial
    parts = pd.read_csv(files["energy_breakdown.csv"])
    assert set(parts["component"]) == {"adc", "cells"}
    total = parts.groupby("trial")["energy_J"].sum()
    per_trial = day.set_index("trial")["energy_per_inference"]
    np.testing.assert_allclose(total.loc[per_trial.index], per_trial, rtol=1e-12)
    # the Markdown report embeds every plot and lists the failed trial
    md = files["report.md"].read_text()
    for name in PLOTS:
        assert f"![{name}]({name}.png)" in md and f"({name}.svg)" in md
    assert "## Failed trials" in md and "RuntimeError: boom" in md
    assert "## Pareto-optimal designs" in md and "[results.parquet](results.parquet)" in md
    assert "8 complete, 1 failed" in md
    assert "- cost model: memxbar's defaults" in md


def test_report_of_a_study_without_results(tmp_path: Path) -> None:
    folder = _run(tmp_path, failing_objective, name="bad")
    files = write_report(folder)
    assert set(files) == {"results.csv", "results.parquet", "summary.csv", "summary.parquet",
                          "report.md"}  # no data, no plots
    df = pd.read_csv(files["results.csv"])
    assert len(df) == 27 and (df["state"] == "FAIL").all()
    assert df["error"].str.startswith("ValueError: no model for ").all()
    md = files["report.md"].read_text()
    assert md.count("No data for this plot") == len(PLOTS) and "0 complete, 9 failed" in md
    study, spec = load_study(folder)
    assert results_table(study, spec)["accuracy"].isna().all()
    assert breakdown_table(study).empty


def test_storage_location_and_dashboard(tmp_path: Path) -> None:
    folder = _run(tmp_path, model_objective)
    url, name = locate_study(folder)
    assert name == "rep" and url == f"sqlite:///{folder / 'study.db'}"
    with pytest.raises(ValueError, match="not a study output folder"):
        write_report(tmp_path / "nowhere")
    with pytest.raises(ConfigError, match="File name too long"):  # was a bare OSError
        write_report(tmp_path / ("x" * 300))
    # a recorded URL with a hidden password needs the URL given again
    manifest = json.loads((folder / MANIFEST).read_text())
    manifest["storage"] = "postgresql://me:***@db.example/memxbar"
    (folder / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(ValueError, match="needs a password; pass it with --storage URL"):
        write_report(folder)
    assert "report.md" in write_report(folder, storage=url)
    # a given URL is checked as the study file's is (this one was a bare SQLAlchemy error)
    for bad, match in (("bogus", "'bogus' is not a database URL; allowed: an SQLAlchemy"),
                       ("sqlite://", "in-memory SQLite database"), (3, "not a URL string")):
        with pytest.raises(ConfigError, match=match):
            write_report(folder, storage=bad)  # type: ignore[arg-type]
        with pytest.raises(ConfigError, match=match):
            open_dashboard(folder, storage=bad)  # type: ignore[arg-type]
    with pytest.MonkeyPatch.context() as mp:  # as on a machine without optuna-dashboard
        mp.setitem(sys.modules, "optuna_dashboard", None)
        with pytest.raises(ValueError, match="optuna-dashboard is not installed; install it"):
            open_dashboard(folder, storage=url)


def test_report_of_a_folder_with_two_studies_and_failed_designs(tmp_path: Path) -> None:
    """A folder written before a second study was refused (its study.db holds two): the report
    covers the recorded study and names the other; failed designs come with the way to retry."""
    folder = _run(tmp_path, model_objective)
    url = f"sqlite:///{folder / 'study.db'}"
    optuna.create_study(study_name="intruder", storage=url)
    md = write_report(folder)["report.md"].read_text()
    assert "- the study database also holds 'intruder', not in this report" in md
    assert "- 1 failed designs (see Failed trials): `memxbar study run FILE --retry-failed`" in md
    assert "# Study `rep`" in md


def test_report_on_a_full_disk_is_one_error(tmp_path: Path, monkeypatch) -> None:
    folder = _run(tmp_path, model_objective)

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", str(folder / "report" / "x"))

    monkeypatch.setattr(pd.DataFrame, "to_csv", full)
    with pytest.raises(StorageError) as info:
        write_report(folder)
    assert isinstance(info.value, ConfigError)
    assert str(info.value) == (f"study 'rep': cannot write its report: the disk is full "
                               f"({folder / 'report' / 'x'}) (folder {folder / 'report'}); free "
                               "space or make it writable, then run `memxbar study report` "
                               "again")
