"""Study runner (studies.runner): Optuna studies in RDB storages, workers, resume, exactly-once.

The objective is real and small: an MLP trained digitally on the digits set (cached per
workload), its weights programmed as differential conductance pairs on the trial's device,
read back at each evaluation time, layer outputs quantized by an ADC of the trial's bits.
Multi-process tests are marked slow (they still run by default and in CI).
"""

from __future__ import annotations

import errno
import json
import math
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import optuna
import pytest
import torch
from optuna.trial import TrialState

from memxbar.errors import ConfigError
from memxbar.studies import trials as trials_module
from memxbar.studies import workloads as W
from memxbar.studies.runner import (
    DEFAULT_MAX_RETRIES,
    EXIT_FAILED_DESIGNS,
    MANIFEST,
    SPEC_ATTR,
    StorageError,
    TrialContext,
    _Progress,
    join_worker,
    load_study,
    make_storage,
    run_study,
)
from memxbar.studies.spec import StudySpec, accuracy_key, load_spec
from memxbar.studies.trials import _grid_points, _pop, deferred_interrupts, interruptible
from memxbar.studies.workers import _mp_context
from memxbar.training.digital import evaluate, train

HERE = Path(__file__).resolve().parent
PG_BIN = Path("/usr/lib/postgresql/15/bin")
FAST = {"progress": False, "heartbeat_interval": 1, "grace_period": 3, "poll_interval": 0.1}

# ----------------------------------------------------------------------------- the objective


def _model_path(spec: StudySpec, cache_dir: Path) -> Path:
    return cache_dir / f"mlp-{spec.workload_key('digital')}.pt"


def _train(seed: int) -> torch.nn.Module:
    torch.set_num_threads(1)  # several threads only spin on a small, shared machine
    train_set, test_set = W.digits(seed=seed)
    torch.manual_seed(seed)
    model = W.build_model("mlp", (1, 8, 8), 10, hidden=(32,))
    train(model, W.loaders(train_set, test_set, 64, seed=seed)[0], epochs=5, lr=5e-3,
          generator=seed)
    return model


def _record_run(ctx: TrialContext) -> None:
    """One file per execution of a trial: a trial run twice would leave two."""
    (ctx.trial_dir / f"run-{os.getpid()}-{time.time_ns()}").touch()


def digits_objective(spec: StudySpec, params: dict, ctx: TrialContext) -> dict:
    """Accuracy at each evaluation time and a toy energy of a tiny MLP on the trial's device."""
    torch.set_num_threads(1)
    _record_run(ctx)
    path = _model_path(spec, ctx.cache_dir)
    model = W.build_model("mlp", (1, 8, 8), 10, hidden=(32,))
    if path.is_file():
        model.load_state_dict(torch.load(path))
    else:  # first trial of the workload trains; others reuse (atomic write)
        model = _train(spec.study.seed)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        torch.save(model.state_dict(), tmp)
        os.replace(tmp, path)
    test = W.loaders(*W.digits(seed=spec.study.seed), batch_size=512)[1]
    dev = spec.build_device(params["device"])
    gen = torch.Generator().manual_seed(ctx.seed)
    layers = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    span = dev.g_max - dev.g_min
    programmed = []
    for layer in layers:
        w = layer.weight.detach()
        scale = w.abs().max()
        g_pos = dev.g_min + w.clamp(min=0) / scale * span
        g_neg = dev.g_min + (-w).clamp(min=0) / scale * span
        programmed.append((scale, dev.program(g_pos, generator=gen),
                           dev.program(g_neg, generator=gen)))
    bits = params["adc_bits"]

    def adc(_m: torch.nn.Module, _x: object, y: torch.Tensor) -> torch.Tensor:
        if bits == 0:
            return y
        n = 2 ** (bits - 1) - 1
        full = y.abs().amax().clamp(min=1e-12)
        return torch.round(y / full * n) / n * full

    for layer in layers:
        layer.register_forward_hook(adc)
    out: dict = {}
    for t in spec.evaluation.times:
        for layer, (scale, s_pos, s_neg) in zip(layers, programmed, strict=True):
            g = dev.read(s_pos, t, generator=gen) - dev.read(s_neg, t, generator=gen)
            layer.weight.data = g / span * scale
        out[accuracy_key(t)] = evaluate(model, test)
    n_weights = sum(layer.weight.numel() for layer in layers)
    n_outputs = sum(layer.out_features for layer in layers)
    cells, conv = 2 * n_weights * 1e-15, n_outputs * 5e-15 * 2.0 ** bits
    out["energy_per_inference"] = cells + conv
    out["breakdown"] = {"energy_per_inference": {"cells": cells, "adc": conv}}
    return out


def crashing_objective(spec: StudySpec, params: dict, ctx: TrialContext) -> dict:
    if params["adc_bits"] == 4:
        raise RuntimeError("ADC exploded")
    return digits_objective(spec, params, ctx)


def bad_result_objective(spec: StudySpec, params: dict, ctx: TrialContext) -> dict:
    out = digits_objective(spec, params, ctx)
    if params["device"] == "ideal":
        out.pop("energy_per_inference")
    else:
        out[accuracy_key(spec.evaluation.times[0])] = float("nan")
    return out


def slow_objective(spec: StudySpec, params: dict, ctx: TrialContext) -> dict:
    time.sleep(0.6)
    return digits_objective(spec, params, ctx)


def barrier_objective(spec: StudySpec, params: dict, ctx: TrialContext) -> dict:
    """Waits (up to 30 s) until three processes have started trials, so every worker of a
    three-worker run provably takes part."""
    out = digits_objective(spec, params, ctx)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        pids = {p.name.split("-")[1] for p in ctx.trial_dir.parent.glob("*/run-*")}
        if len(pids) >= 3:
            break
        time.sleep(0.05)
    return out


# ----------------------------------------------------------------------------- helpers


@pytest.fixture(scope="module")
def trained_state() -> dict:
    return _train(0).state_dict()


def _study_file(tmp_path: Path, body: str, name: str = "s") -> Path:
    path = tmp_path / f"{name}.toml"
    path.write_text(f'[study]\nname = "{name}"\noutput = "{tmp_path / "out"}"\n' + body)
    return path


def _seed_cache(path: Path, state: dict) -> None:
    spec = load_spec(path)
    spec.output_dir.joinpath("cache").mkdir(parents=True, exist_ok=True)
    torch.save(state, _model_path(spec, spec.output_dir / "cache"))


def _trials(path: Path, storage: str | None = None) -> list[optuna.trial.FrozenTrial]:
    study, _ = load_study(load_spec(path).output_dir, storage)
    return study.get_trials()


def _runs(path: Path, number: int) -> list[Path]:
    return sorted((load_spec(path).output_dir / "trials" / f"{number:05d}").glob("run-*"))


GRID = """
[workload]
model_options = { hidden = [32] }
[hardware]
device = { choices = ["ideal", "pcm-joshi2020"] }
adc_bits = { choices = [0, 4] }
[evaluation]
times = ["1 s", "1 day", "10 years"]
[[objectives]]
metric = "accuracy"
time = "1 day"
[[objectives]]
metric = "energy_per_inference"
[sampler]
kind = "grid"
"""

GRID9 = GRID.replace('["ideal", "pcm-joshi2020"]', '["ideal", "pcm-joshi2020", "rram-wan2022"]'
                     ).replace("[0, 4]", "[0, 4, 8]")

# ----------------------------------------------------------------------------- single process


def test_grid_study_end_to_end(tmp_path: Path, trained_state: dict) -> None:
    path = _study_file(tmp_path, GRID)
    _seed_cache(path, trained_state)
    summary = run_study(path, objective_fn=digits_objective, **FAST)
    assert (summary.n_trials, summary.complete, summary.failed, summary.remaining,
            summary.ran) == (4, 4, 0, 0, 4)
    trials = _trials(path)
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 4
    grid = [{"device": d, "adc_bits": b} for d in ("ideal", "pcm-joshi2020") for b in (0, 4)]
    assert [t.params for t in trials] == grid  # every grid point once, in file order
    spec = load_spec(path)
    keys = [accuracy_key(t) for t in spec.evaluation.times]
    model = W.build_model("mlp", (1, 8, 8), 10, hidden=(32,))
    model.load_state_dict(trained_state)
    digital = evaluate(model, W.loaders(*W.digits(seed=0), batch_size=512)[1])
    for t in trials:
        attrs = t.user_attrs
        assert attrs["seed"] == 0 and attrs["attempt"] == 1 and attrs["duration_s"] > 0
        assert attrs["params"] == spec.resolve(t.params) and attrs["params"]["tile_cols"] == 128
        assert attrs["technology"] == ("ideal" if t.params["device"] == "ideal" else "pcm")
        assert set(keys) <= set(attrs["metrics"])
        assert t.values == [attrs["metrics"][accuracy_key(86400.0)],
                            attrs["metrics"]["energy_per_inference"]]
        assert attrs["breakdown"]["energy_per_inference"]["adc"] > 0
        assert len(_runs(path, t.number)) == 1
    # an ideal device with an ideal ADC gives the digital accuracy at every time (449 images)
    ideal = trials[0].user_attrs["metrics"]
    assert all(abs(ideal[k] - digital) <= 1 / 449 + 1e-12 for k in keys)
    # energy: a 4-bit ADC costs 16x the conversion energy of... an ideal one costs 1 unit
    assert trials[1].values[1] > trials[0].values[1]
    # the cached model was used, not retrained
    assert len(list((spec.output_dir / "cache").glob("*.pt"))) == 1
    # running a finished study again runs nothing and adds no trial
    again = run_study(path, objective_fn=digits_objective, **FAST)
    assert again.ran == 0 and again.complete == 4 and len(_trials(path)) == 4


def test_crashed_trials_are_recorded_and_study_goes_on(tmp_path: Path,
                                                       trained_state: dict) -> None:
    path = _study_file(tmp_path, GRID)
    _seed_cache(path, trained_state)
    summary = run_study(path, objective_fn=crashing_objective, **FAST)
    assert (summary.complete, summary.failed, summary.remaining) == (2, 2, 0)
    for t in _trials(path):
        if t.params["adc_bits"] == 4:
            assert t.state == TrialState.FAIL
            assert t.user_attrs["error"] == "RuntimeError: ADC exploded"
            assert "crashing_objective" in t.user_attrs["traceback"]
        else:
            assert t.state == TrialState.COMPLETE
    # failed trials count as done: a re-run does not repeat them
    assert run_study(path, objective_fn=crashing_objective, **FAST).ran == 0
    assert len(_trials(path)) == 4


def test_bad_objective_results_fail_the_trial(tmp_path: Path, trained_state: dict) -> None:
    path = _study_file(tmp_path, GRID)
    _seed_cache(path, trained_state)
    run_study(path, objective_fn=bad_result_objective, **FAST)
    errors = {t.params["device"]: t.user_attrs["error"] for t in _trials(path)}
    assert errors["ideal"].startswith("ValueError: the objective returned no "
                                      "energy_per_inference; it returned accuracy@1s")
    assert errors["pcm-joshi2020"] == "ValueError: the objective returned non-finite accuracy@1s"


def test_nsga2_study_exact_budget_reproducible_and_extendable(tmp_path: Path,
                                                              trained_state: dict) -> None:
    body = """
[hardware]
device = { choices = ["ideal", "pcm-joshi2020", "rram-wan2022"] }
adc_bits = { low = 2, high = 8 }
[evaluation]
times = ["1 s", "1 year"]
[[objectives]]
metric = "accuracy"
time = "1 year"
[[objectives]]
metric = "energy_per_inference"
[sampler]
kind = "nsga2"
population_size = 4
"""
    runs = []
    for name in ("a", "b"):
        folder = tmp_path / name
        folder.mkdir()
        path = _study_file(folder, "[workload]\nmodel_options = { hidden = [32] }\n" + body)
        path.write_text(path.read_text().replace('name = "s"', 'name = "s"\ntrials = 8'))
        _seed_cache(path, trained_state)
        summary = run_study(path, objective_fn=digits_objective, **FAST)
        trials = _trials(path)
        # 8 distinct designs; a repeat drawn on the way reuses its result and is replaced
        assert (summary.complete, summary.ran) == (8, len(trials))
        assert len(trials) == 8 + summary.reused
        assert all(t.state == TrialState.COMPLETE for t in trials)
        # NSGA-II made generations of four from the stored population
        gens = [t.system_attrs.get("NSGAIISampler:generation") for t in trials]
        assert gens == [i // 4 for i in range(len(trials))], gens
        assert summary.best and all(b["number"] < len(trials) for b in summary.best)
        runs.append([t.params for t in trials])
    assert runs[0] == runs[1]  # same seed, same study
    # a larger budget continues the study: the first 8 trials are kept as they were
    before = {t.number: (t.params, t.values) for t in _trials(path)}
    summary = run_study(path, trials=12, objective_fn=digits_objective, **FAST)
    after = _trials(path)
    assert (summary.complete, summary.n_trials) == (12, 12)
    assert summary.ran == len(after) - len(before)
    assert {t.number: (t.params, t.values) for t in after[:len(before)]} == before


@pytest.mark.slow
def test_nsga2_never_evaluates_a_design_twice(tmp_path: Path, trained_state: dict) -> None:
    """NSGA-II draws designs it has seen (its mutation of a small discrete space): each is
    evaluated once, repeats reuse the stored result, and the budget counts distinct designs."""
    body = """
[workload]
model_options = { hidden = [32] }
[hardware]
device = { choices = ["ideal", "pcm-joshi2020", "rram-wan2022"] }
adc_bits = { low = 2, high = 8 }
tile_rows = { choices = [32, 64] }
[evaluation]
times = ["1 s"]
[[objectives]]
metric = "accuracy"
time = "1 s"
[[objectives]]
metric = "energy_per_inference"
[sampler]
kind = "nsga2"
population_size = 8
"""
    path = _study_file(tmp_path, body)
    path.write_text(path.read_text().replace('name = "s"', 'name = "s"\ntrials = 32'))
    _seed_cache(path, trained_state)
    summary = run_study(path, objective_fn=digits_objective, **FAST)
    trials = _trials(path)
    evaluated = [t for t in trials if "duplicate_of" not in t.user_attrs]
    repeats = [t for t in trials if "duplicate_of" in t.user_attrs]
    keys = [json.dumps(t.user_attrs["params"], sort_keys=True) for t in evaluated]
    assert len(evaluated) == 32 and len(set(keys)) == 32  # 32 distinct designs (of 42)
    assert all(len(_runs(path, t.number)) == 1 for t in evaluated)
    assert repeats and all(not _runs(path, t.number) for t in repeats)  # never run again
    by_number = {t.number: t for t in trials}
    for t in repeats:
        original = by_number[t.user_attrs["duplicate_of"]]
        assert t.user_attrs["params"] == original.user_attrs["params"]
        assert t.values == original.values
    assert (summary.complete, summary.reused, summary.ran) == (32, len(repeats), len(trials))
    assert len({b["number"] for b in summary.best}) == len(summary.best)
    assert all("duplicate_of" not in by_number[b["number"]].user_attrs for b in summary.best)


def test_progress_one_line_per_trial_when_piped_and_fits_80_columns(
        tmp_path: Path, trained_state: dict, capsys: pytest.CaptureFixture[str]) -> None:
    long_name = "a-study-name-long-enough-to-crowd-an-eighty-column-terminal-line"
    path = _study_file(tmp_path, GRID, name=long_name)
    _seed_cache(path, trained_state)
    run_study(path, objective_fn=digits_objective, **{**FAST, "progress": True})
    lines = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("trial ")]
    assert len(lines) == 4  # captured output is not a terminal: one line per finished trial
    assert all(ln.endswith(f"[{i + 1}/4 designs]") for i, ln in enumerate(lines))
    assert all(" complete: accuracy @ 1 d " in ln for ln in lines)
    study, spec = load_study(load_spec(path).output_dir)
    bar = _Progress(study, spec, True, 1.0)
    bar._done_at_start = 2  # two designs were done when the bar started: an ETA exists
    for width in (80, 60, 40):
        line = bar.status(study.get_trials(), width)
        assert len(line) <= width and "4/4 designs" in line and "ETA 0:00" in line
    wide = bar.status(study.get_trials(), 200)
    assert wide.startswith(long_name) and "best: " not in wide and "accuracy @ 1 d" in wide


def test_workers_zero_then_join_worker(tmp_path: Path, trained_state: dict) -> None:
    path = _study_file(tmp_path, GRID)
    _seed_cache(path, trained_state)
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    created = run_study(path, workers=0, storage=url, objective_fn=digits_objective, **FAST)
    assert (created.complete, created.remaining, created.ran) == (0, 4, 0)
    assert all(t.state == TrialState.WAITING for t in _trials(path, url))
    joined = join_worker(path, url, objective_fn=digits_objective, **FAST)
    assert (joined.ran, joined.complete, joined.remaining) == (4, 4, 0)
    assert join_worker(path, url, objective_fn=digits_objective, **FAST).ran == 0
    # a worker on a storage without the study creates it and enqueues the budget (in its
    # own output folder: the first one belongs to the study on shared.db)
    other = f"sqlite:///{tmp_path / 'fresh.db'}"
    with pytest.raises(ValueError, match=r"holds study 's' stored in sqlite:///.*shared\.db; "
                                         r"this run stores study 's' .* in sqlite:///.*fresh"):
        join_worker(path, other, objective_fn=digits_objective, **FAST)
    fresh = tmp_path / "fresh"
    (fresh / "cache").mkdir(parents=True)
    torch.save(trained_state, _model_path(load_spec(path), fresh / "cache"))
    assert join_worker(path, other, objective_fn=digits_objective, output=fresh,
                       **FAST).complete == 4


def test_one_point_grid_and_tpe(tmp_path: Path, trained_state: dict) -> None:
    path = _study_file(tmp_path, GRID.replace('["ideal", "pcm-joshi2020"]', '["ideal"]')
                       .replace("[0, 4]", "[8]"))
    _seed_cache(path, trained_state)
    assert run_study(path, objective_fn=digits_objective, **FAST).complete == 1
    tpe = GRID.replace('kind = "grid"', 'kind = "tpe"\nn_startup_trials = 2').replace(
        "{ choices = [0, 4] }", "{ low = 2, high = 8 }")
    folder = tmp_path / "tpe"
    folder.mkdir()
    path = _study_file(folder, tpe)
    path.write_text(path.read_text().replace('name = "s"', 'name = "s"\ntrials = 5'))
    _seed_cache(path, trained_state)
    assert run_study(path, objective_fn=digits_objective, **FAST).complete == 5
    assert all(2 <= t.params["adc_bits"] <= 8 for t in _trials(path))


def test_changed_study_file_is_refused(tmp_path: Path, trained_state: dict) -> None:
    path = _study_file(tmp_path, GRID)
    _seed_cache(path, trained_state)
    run_study(path, objective_fn=digits_objective, **FAST)
    path.write_text(path.read_text().replace("[0, 4]", "[0, 6]"))
    with pytest.raises(ValueError, match=r"made from a different study file: hardware\.adc_bits"):
        run_study(path, objective_fn=digits_objective, **FAST)


def test_argument_errors(tmp_path: Path) -> None:
    path = _study_file(tmp_path, GRID)
    with pytest.raises(ValueError, match="workers = -1; allowed: an integer from 0 to"):
        run_study(path, workers=-1, objective_fn=digits_objective)
    with pytest.raises(ValueError, match="per CPU here"):  # was a million worker processes
        run_study(path, workers=10**6, objective_fn=digits_objective)
    # each of these used to run (a failed trial, a bare error or a silent default)
    for kwargs, match in ((dict(objective_fn=3), "objective_fn = 3"),
                          (dict(poll_interval=math.inf), "poll_interval"),
                          (dict(code_path="src"), "code_path"),
                          (dict(in_process="yes"), "in_process = 'yes'"),
                          (dict(output="/proc/memxbar-study"), "cannot be made|not writable"),
                          (dict(output=path), r"cannot be made \(File exists\)")):
        with pytest.raises(ValueError, match=match):
            run_study(path, **{"objective_fn": digits_objective, **kwargs})
    with pytest.raises(ValueError, match="0 < interval < grace"):
        run_study(path, objective_fn=digits_objective, heartbeat_interval=5, grace_period=5)
    with pytest.raises(ValueError, match="module-level function"):
        run_study(path, workers=2, objective_fn=lambda s, p, c: {})
    with pytest.raises(ValueError, match="not a study output folder"):
        load_study(tmp_path)


def test_partial_grid_is_a_prefix_of_one_permutation(tmp_path: Path) -> None:
    spec = load_spec(_study_file(tmp_path, GRID9))
    full = spec.grid()
    assert _grid_points(spec, 9) == full
    small, larger = _grid_points(spec, 3), _grid_points(spec, 6)
    assert len(small) == 3 and all(p in larger for p in small)
    assert [full.index(p) for p in larger] == sorted(full.index(p) for p in larger)


# ----------------------------------------------------------------------------- processes


def _popper(url: str, queue) -> None:
    """Pop waiting trials until none is left; report their ids."""
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    study = optuna.load_study(study_name="q", storage=make_storage(url))
    got = []
    while (trial_id := _pop(study)) is not None:
        got.append(trial_id)
    queue.put(got)


@pytest.mark.slow
def test_concurrent_pops_on_sqlite_take_each_trial_once(tmp_path: Path) -> None:
    """Four processes drain one queue of 120 waiting trials with nothing else to do (the
    tightest race): every trial is taken exactly once. (Optuna's own pop on SQLite, without
    BEGIN IMMEDIATE, took 16 of 300 trials twice in the same race.)"""
    url = f"sqlite:///{tmp_path / 'queue.db'}"
    study = optuna.create_study(study_name="q", storage=make_storage(url))
    for _ in range(120):
        study.enqueue_trial({})
    ctx = _mp_context()
    queue = ctx.SimpleQueue()
    procs = [ctx.Process(target=_popper, args=(url, queue)) for _ in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
    got = [tid for _ in procs for tid in queue.get()]
    assert sorted(got) == sorted(t._trial_id for t in study.get_trials())
    assert all(t.state == TrialState.RUNNING for t in study.get_trials())


PG_PASSWORD = "pg-secret-7f3a"  # noqa: S105  (a throwaway cluster's password: must never be stored)


def _postgres(tmp: Path) -> tuple[str, list[str], Path]:
    """Start a throwaway PostgreSQL cluster on loopback with password authentication; returns
    (url, as-user prefix, data). The URL is the README's plain ``postgresql://`` form.
    ``MEMXBAR_REQUIRE_POSTGRES=1`` (set by .ci/run) turns a missing server into a failure."""
    missing = pytest.fail if os.environ.get("MEMXBAR_REQUIRE_POSTGRES") == "1" else pytest.skip
    if not (PG_BIN / "initdb").is_file():
        missing(f"PostgreSQL server binaries not found in {PG_BIN}: apt-get install postgresql")
    try:
        import psycopg  # noqa: F401
    except ImportError:
        missing("psycopg missing: pip install 'memxbar[postgres]'")
    prefix: list[str] = []
    data = tmp / "data"
    if os.geteuid() == 0:  # initdb refuses root: run the server as the postgres user
        try:
            user = pwd.getpwnam("postgres")
        except KeyError:
            missing("running as root and there is no 'postgres' user to run the server")
        os.chown(tmp, user.pw_uid, user.pw_gid)
        prefix = ["runuser", "-u", "postgres", "--"]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    pwfile = tmp / "pw"
    pwfile.write_text(PG_PASSWORD + "\n")
    if prefix:
        os.chown(pwfile, user.pw_uid, user.pw_gid)
    subprocess.run([*prefix, str(PG_BIN / "initdb"), "-D", str(data), "-A", "scram-sha-256",
                    "-U", "postgres", f"--pwfile={pwfile}", "--no-sync"], check=True,
                   capture_output=True)
    opts = f"-p {port} -k {data} -c listen_addresses=127.0.0.1 -c fsync=off"
    subprocess.run([*prefix, str(PG_BIN / "pg_ctl"), "-D", str(data), "-o", opts, "-w",
                    "-l", str(data / "server.log"), "start"], check=True, capture_output=True)
    return f"postgresql://postgres:{PG_PASSWORD}@127.0.0.1:{port}/postgres", prefix, data


@pytest.fixture(params=["sqlite", "postgresql"])
def storage_url(request: pytest.FixtureRequest, tmp_path: Path):
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'workers.db'}"
        return
    tmp = Path(tempfile.mkdtemp(prefix="memxbar-pg-"))
    try:
        url, prefix, data = _postgres(tmp)
        try:
            yield url
        finally:
            subprocess.run([*prefix, str(PG_BIN / "pg_ctl"), "-D", str(data), "-m",
                            "immediate", "stop"], capture_output=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@pytest.mark.slow
def test_three_workers_run_every_trial_exactly_once(tmp_path: Path, trained_state: dict,
                                                    storage_url: str) -> None:
    path = _study_file(tmp_path, GRID9)
    _seed_cache(path, trained_state)
    summary = run_study(path, workers=3, storage=storage_url, objective_fn=barrier_objective,
                        **FAST)
    assert summary.worker_errors == []
    assert (summary.complete, summary.failed, summary.remaining, summary.ran) == (9, 0, 0, 9)
    trials = _trials(path, storage_url)
    assert len(trials) == 9 and all(t.state == TrialState.COMPLETE for t in trials)
    points = sorted((t.params["device"], t.params["adc_bits"]) for t in trials)
    assert points == sorted((d, b) for d in ("ideal", "pcm-joshi2020", "rram-wan2022")
                            for b in (0, 4, 8))  # no grid point lost or repeated
    assert all(len(_runs(path, t.number)) == 1 for t in trials)  # each executed once
    assert len({t.user_attrs["worker"] for t in trials}) == 3


def test_no_storage_password_is_stored_or_written(tmp_path: Path, trained_state: dict,
                                                  storage_url: str) -> None:
    """After a two-worker run, neither the database (every row of every table), nor the
    study's Optuna attributes, nor any file the run wrote contains the storage password."""
    if not storage_url.startswith("postgresql"):
        pytest.skip("SQLite URLs carry no password")
    path = _study_file(tmp_path, GRID)
    _seed_cache(path, trained_state)
    summary = run_study(path, workers=2, storage=storage_url, objective_fn=digits_objective,
                        **FAST)
    assert summary.complete == 4 and summary.worker_errors == []
    assert PG_PASSWORD not in summary.storage
    study = optuna.load_study(study_name="s", storage=make_storage(storage_url))
    attrs = [study.user_attrs]
    attrs += [a for t in study.get_trials() for a in (t.user_attrs, t.params)]
    assert study.user_attrs[SPEC_ATTR]["study"]["storage"].startswith("postgresql://postgres:***@")
    assert all(PG_PASSWORD not in repr(a) for a in attrs)
    from sqlalchemy import create_engine, text

    engine = create_engine(make_storage(storage_url).engine.url)
    seen = []
    with engine.connect() as conn:
        tables = conn.execute(text("SELECT tablename FROM pg_tables WHERE schemaname = "
                                   "'public'")).scalars().all()
        assert "studies" in tables and "study_user_attributes" in tables
        for table in tables:  # every row of every table, as text
            rows = conn.execute(text(f'SELECT t::text FROM "{table}" t')).scalars().all()
            assert all(PG_PASSWORD not in row for row in rows), table
            seen += rows
    assert any("postgres:***@127.0.0.1" in row for row in seen)  # the scan sees the URL
    engine.dispose()
    out = load_spec(path).output_dir
    files = [p for p in out.rglob("*") if p.is_file() and p.suffix not in (".pt", ".db")]
    assert files and all(PG_PASSWORD.encode() not in p.read_bytes() for p in files)


def _start_run(path: Path, tmp_path: Path) -> subprocess.Popen:
    """Run the study with two workers and the slow objective in a new process session; Ctrl-C
    ends it with one line, as the command line does."""
    code = (f"import sys\nsys.path.insert(0, {str(HERE)!r})\n"
            "from test_runner import slow_objective\n"
            "from memxbar.studies.runner import run_study\nif __name__ == '__main__':\n"
            "    try:\n"
            f"        run_study({str(path)!r}, workers=2, objective_fn=slow_objective,\n"
            "                  progress=False, heartbeat_interval=1, grace_period=3,\n"
            "                  poll_interval=0.1)\n"
            "    except KeyboardInterrupt:\n"
            "        sys.exit('interrupted')\n")
    script = tmp_path / "run.py"
    script.write_text(code)
    return subprocess.Popen([sys.executable, str(script)], start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def _signal_mid_study(proc: subprocess.Popen, path: Path, sig: int,
                      group: bool = True) -> tuple[list, str]:
    """Once 3 trials are complete and 2 are running, send ``sig`` to the run's process group
    (the run and its workers; with ``group = False`` to the run only); returns the trials as
    they were just before and the run's output."""
    storage = make_storage(load_spec(path).storage_url)
    deadline = time.monotonic() + 120
    trials: list = []
    while time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
        try:
            trials = optuna.load_study(study_name="s", storage=storage).get_trials()
        except KeyError:
            continue
        states = [t.state for t in trials]
        if states.count(TrialState.COMPLETE) >= 3 and states.count(TrialState.RUNNING) == 2:
            break
    alive = proc.poll() is None
    if group:
        os.killpg(proc.pid, sig)
    else:
        os.kill(proc.pid, sig)
    try:
        output = proc.communicate(timeout=90)[0].decode(errors="replace")
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # leave no process behind
        output = proc.communicate()[0].decode(errors="replace")
        pytest.fail(f"the run's processes did not end within 90 s of the signal:\n{output}")
    assert alive, f"the run ended before the signal:\n{output}"
    return trials, output


def _check_resumed(path: Path, finished: dict) -> dict:
    """Resume the study; every earlier finished trial is kept, every grid point complete once.
    It resumes with the objective it was started with: a changed objective is refused as a
    different study (issue 14)."""
    summary = run_study(path, objective_fn=slow_objective, **FAST)
    assert (summary.complete, summary.failed, summary.remaining) == (9, 0, 0)
    after = {t.number: t for t in _trials(path)}
    for number, (params, values) in finished.items():  # kept as they were
        assert after[number].state == TrialState.COMPLETE
        assert (after[number].params, after[number].values) == (params, values)
    complete = [t for t in after.values() if t.state == TrialState.COMPLETE]
    points = [(t.params["device"], t.params["adc_bits"]) for t in complete]
    assert len(points) == len(set(points)) == 9  # none repeated, none lost
    assert all(len(_runs(path, t.number)) == 1 for t in complete)
    return after


@pytest.mark.slow
def test_killed_run_resumes_without_repeating_finished_trials(tmp_path: Path,
                                                              trained_state: dict) -> None:
    path = _study_file(tmp_path, GRID9)
    _seed_cache(path, trained_state)
    proc = _start_run(path, tmp_path)
    before, _ = _signal_mid_study(proc, path, signal.SIGKILL)  # no chance to clean up
    finished = {t.number: (t.params, t.values) for t in before if t.state == TrialState.COMPLETE}
    killed = [t.number for t in before if t.state == TrialState.RUNNING]
    after = _check_resumed(path, finished)
    for number in killed:  # failed (no heartbeat), then run again with the same parameters
        # (its grid point; the kill may have come before the trial suggested them)
        retry = next(t for t in after.values() if t.user_attrs.get("retry_of") == number)
        assert after[number].state == TrialState.FAIL
        assert "stopped during the trial (no heartbeat for 3 s)" in after[number].user_attrs[
            "error"] and after[number].user_attrs["error"].endswith("enqueued again")
        assert retry.state == TrialState.COMPLETE
        assert retry.params == {**after[number].system_attrs["fixed_params"],
                                **after[number].params}
        assert retry.user_attrs["attempt"] == 2 <= DEFAULT_MAX_RETRIES + 1


@pytest.mark.slow
def test_ctrl_c_records_running_trials_and_resumes(tmp_path: Path, trained_state: dict) -> None:
    path = _study_file(tmp_path, GRID9)
    _seed_cache(path, trained_state)
    proc = _start_run(path, tmp_path)
    before, output = _signal_mid_study(proc, path, signal.SIGINT)  # Ctrl-C: run, workers
    assert output.strip() == "interrupted", output  # no traceback from a worker
    finished = {t.number: (t.params, t.values) for t in before if t.state == TrialState.COMPLETE}
    running = [t.number for t in before if t.state == TrialState.RUNNING]
    now = {t.number: t for t in _trials(path)}
    assert not any(t.state == TrialState.RUNNING for t in now.values())  # nothing left hanging
    for number in running:  # recorded at once and enqueued again, not counted as an attempt
        if now[number].state == TrialState.COMPLETE:
            continue  # it finished between the snapshot and the signal
        assert now[number].state == TrialState.FAIL
        assert now[number].user_attrs["error"].startswith("interrupted")
        retry = next(t for t in now.values() if t.user_attrs.get("retry_of") == number)
        assert retry.state == TrialState.WAITING and retry.user_attrs["attempt"] == 1
    _check_resumed(path, finished)


def test_calibrated_input_ranges_as_a_searched_dimension(tmp_path: Path,
                                                         trained_state: dict) -> None:
    """input_scaling = calibrated (one DAC range per layer from the calibration images) runs
    end to end and, with an ideal device and ADC, keeps the digital accuracy within 2 points
    like per-vector scaling."""
    body = GRID.replace('device = { choices = ["ideal", "pcm-joshi2020"] }', 'device = "ideal"'
                        ).replace("adc_bits = { choices = [0, 4] }",
                                  'adc_bits = 0\ninput_scaling = { choices = ["dynamic", '
                                  '"calibrated"] }')
    path = _study_file(tmp_path, body)
    _seed_cache(path, trained_state)
    summary = run_study(path, objective_fn=digits_objective, **FAST)
    assert (summary.complete, summary.failed) == (2, 0)
    acc = {t.params["input_scaling"]: t.values[0] for t in _trials(path)}
    assert set(acc) == {"dynamic", "calibrated"}
    assert abs(acc["calibrated"] - acc["dynamic"]) <= 0.02


# ----------------------------------------------------------------------------- faults

POISON = {"device": "pcm-joshi2020", "adc_bits": 4}


def quick_objective(spec: StudySpec, params: dict, ctx: TrialContext) -> dict:
    """A closed-form design model (no training): for tests of the runner's bookkeeping."""
    _record_run(ctx)
    bits = params["adc_bits"]
    out = {accuracy_key(t): 0.9 - 0.001 * bits - 0.01 * (params["device"] != "ideal")
           for t in spec.evaluation.times}
    out["energy_per_inference"] = 1e-12 * (1 + 2.0 ** bits)
    return out


def poison_objective(spec: StudySpec, params: dict, ctx: TrialContext) -> dict:
    """One design kills its own worker process, as the out-of-memory killer would, while the
    file ``<output>/poisoned`` exists (a run resumes with the objective it started with: a
    changed objective is a different study, so the fault is switched off by a file)."""
    if {k: params[k] for k in POISON} == POISON and (spec.output_dir / "poisoned").exists():
        _record_run(ctx)
        os.kill(os.getpid(), signal.SIGKILL)
    return quick_objective(spec, params, ctx)


def disk_full_objective(spec: StudySpec, params: dict, ctx: TrialContext) -> dict:
    """The disk fills up while one design writes a file (while ``<output>/full`` exists)."""
    if {k: params[k] for k in POISON} == POISON and (spec.output_dir / "full").exists():
        raise OSError(errno.ENOSPC, "No space left on device", str(ctx.trial_dir / "big.pt"))
    return quick_objective(spec, params, ctx)


def _fault(path: Path, name: str) -> Path:
    """Create the file that switches a fault of the study at ``path`` on; returns it."""
    flag = load_spec(path).output_dir / name
    flag.parent.mkdir(parents=True, exist_ok=True)
    flag.touch()
    return flag


def _design(t: optuna.trial.FrozenTrial) -> dict:
    return {**t.system_attrs.get("fixed_params", {}), **t.params}


@pytest.mark.slow
def test_poison_trial_is_retried_then_recorded_and_the_study_goes_on(tmp_path: Path) -> None:
    path = _study_file(tmp_path, GRID)
    flag = _fault(path, "poisoned")
    summary = run_study(path, workers=2, objective_fn=poison_objective, max_retries=1, **FAST)
    assert (summary.complete, summary.failed, summary.remaining) == (3, 1, 0)
    assert summary.worker_errors == []
    (failure,) = summary.failures
    assert failure["params"] == POISON and failure["attempt"] == 2
    assert failure["error"] == ("worker process killed by signal 9 (SIGKILL), likely out of "
                                "memory (the kernel's OOM killer sends SIGKILL); attempt 2 of 2, "
                                "not retried (--retry-failed runs it again)")
    text = summary.describe()
    assert "failed designs (1):" in text and "device=pcm-joshi2020 adc_bits=4: worker process " \
        "killed by signal 9 (SIGKILL)" in text and "--retry-failed" in text
    trials = _trials(path)
    poisoned = [t for t in trials if _design(t) == POISON]
    assert [t.state for t in poisoned] == [TrialState.FAIL] * 2  # 1 + max_retries runs
    assert [t.user_attrs["attempt"] for t in poisoned] == [1, 2]
    assert poisoned[0].user_attrs["error"].endswith("attempt 1 of 2, enqueued again")
    assert poisoned[1].user_attrs["retry_of"] == poisoned[0].number
    assert all(len(_runs(path, t.number)) == 1 for t in trials)  # each run once
    others = [t for t in trials if _design(t) != POISON]
    assert len(others) == 3 and all(t.state == TrialState.COMPLETE for t in others)
    # a later run does not retry it by itself, and says so
    again = run_study(path, workers=2, objective_fn=poison_objective, **FAST)
    assert (again.ran, again.failed, len(_trials(path))) == (0, 1, 5)
    # --retry-failed runs the failed design again (here it no longer crashes)
    flag.unlink()
    fixed = run_study(path, objective_fn=poison_objective, retry_failed=True, **FAST)
    assert (fixed.ran, fixed.complete, fixed.failed, fixed.failures) == (1, 4, 0, [])
    last = _trials(path)[-1]
    assert _design(last) == POISON and last.state == TrialState.COMPLETE
    assert (last.user_attrs["attempt"], last.user_attrs["retry_of"]) == (1, poisoned[1].number)


def test_failed_designs_exit_with_their_own_code(tmp_path: Path, monkeypatch,
                                                 capsys: pytest.CaptureFixture) -> None:
    """`memxbar study run` exits with EXIT_FAILED_DESIGNS (3) when designs failed, also when
    every design failed, and says which and why."""
    from memxbar import cli
    from memxbar.studies import runner

    def with_objective(objective_fn):  # the CLI's run, in this process with this objective
        def run(*args, **kwargs):
            return real(*args, **{**kwargs, **FAST, "in_process": True,
                                  "objective_fn": objective_fn})
        return run

    real = runner.run_study
    path = _study_file(tmp_path, GRID)
    monkeypatch.setattr(runner, "run_study", with_objective(crashing_quick_objective))

    def main(*argv: str) -> int:
        try:
            return cli.main(list(argv))
        except SystemExit as e:
            return e.code

    assert main("study", "run", str(path), "--max-retries", "0") == EXIT_FAILED_DESIGNS == 3
    out = capsys.readouterr().out
    assert "2 of 4 designs complete, 2 failed" in out and "failed designs (2):" in out
    assert "adc_bits=4: RuntimeError: ADC exploded" in out
    # --retry-failed runs the two failed designs again (they fail again)
    assert main("study", "run", str(path), "--retry-failed") == 3
    assert "(2 run here in" in capsys.readouterr().out and len(_trials(path)) == 6
    monkeypatch.setattr(runner, "run_study", with_objective(failing_objective))
    other = tmp_path / "all"
    assert main("study", "run", str(path), "--output", str(other)) == 3
    assert "0 of 4 designs complete, 4 failed" in capsys.readouterr().out
    assert main("study", "run", str(path), "--max-retries", "-1") == 2


def failing_objective(spec: StudySpec, params: dict, ctx: TrialContext) -> dict:
    raise ValueError(f"no model for {params['device']}")


def crashing_quick_objective(spec: StudySpec, params: dict, ctx: TrialContext) -> dict:
    if params["adc_bits"] == 4:
        raise RuntimeError("ADC exploded")
    return quick_objective(spec, params, ctx)


def test_max_retries_is_checked(tmp_path: Path) -> None:
    path = _study_file(tmp_path, GRID)
    for bad in (-1, 101, 1.5, True):
        with pytest.raises(ConfigError, match=r"max_retries = .*; allowed: an integer in 0\.\.100"):
            run_study(path, objective_fn=quick_objective, max_retries=bad, **FAST)
    with pytest.raises(ConfigError, match="max_retries"):
        join_worker(path, "sqlite://", objective_fn=quick_objective, max_retries=-1, **FAST)


def test_disk_full_in_a_trial_stops_the_run_and_keeps_finished_trials(tmp_path: Path) -> None:
    path = _study_file(tmp_path, GRID)
    flag = _fault(path, "full")
    with pytest.raises(StorageError) as info:
        run_study(path, objective_fn=disk_full_objective, **FAST)
    assert isinstance(info.value, ConfigError)  # one line and exit code 2 at the command line
    msg = str(info.value)
    assert msg.startswith("study 's': cannot write its results: the disk is full (")
    assert "big.pt" in msg and "finished trials are kept" in msg
    assert "output folder " + str(load_spec(path).output_dir) in msg
    trials = _trials(path)
    states = {t.number: t.state for t in trials}
    assert [_design(t) for t in trials[:3]] == [{"device": "ideal", "adc_bits": 0},
                                              {"device": "ideal", "adc_bits": 4},
                                              {"device": "pcm-joshi2020", "adc_bits": 0}]
    assert [states[n] for n in range(3)] == [TrialState.COMPLETE] * 3
    # the design was not at fault: enqueued again without counting an attempt
    assert trials[3].state == TrialState.FAIL
    assert trials[3].user_attrs["error"].startswith("interrupted (the disk is full (")
    retry = next(t for t in trials if t.user_attrs.get("retry_of") == 3)
    assert retry.state == TrialState.WAITING and retry.user_attrs["attempt"] == 1
    finished = {t.number: t.values for t in trials[:3]}
    flag.unlink()
    summary = run_study(path, objective_fn=disk_full_objective, **FAST)  # space freed
    assert (summary.ran, summary.complete, summary.failed) == (1, 4, 0)  # the retry
    assert {t.number: t.values for t in _trials(path)[:3]} == finished


def test_database_full_stops_the_run_and_keeps_finished_trials(tmp_path: Path,
                                                              monkeypatch) -> None:
    """SQLite reports a full disk as an OperationalError, which Optuna wraps."""
    from optuna.exceptions import StorageInternalError
    from optuna.storages import RDBStorage

    path = _study_file(tmp_path, GRID)
    write = RDBStorage.set_trial_user_attr
    calls = {"metrics": 0}

    def full_on_third_result(self, trial_id: int, key: str, value: object) -> None:
        if key == "metrics":
            calls["metrics"] += 1
            if calls["metrics"] == 3:
                raise StorageInternalError("An exception is raised during the commit. "
                                           "(sqlite3.OperationalError) database or disk is full")
        write(self, trial_id, key, value)

    monkeypatch.setattr(RDBStorage, "set_trial_user_attr", full_on_third_result)
    with pytest.raises(StorageError, match=r"cannot write its results: the disk is full "
                                           r"\(output folder .*storage sqlite:///.*study\.db\)"):
        run_study(path, objective_fn=quick_objective, **FAST)
    monkeypatch.undo()
    trials = _trials(path)
    assert [t.state for t in trials[:2]] == [TrialState.COMPLETE] * 2
    assert not any(t.state == TrialState.RUNNING for t in trials)  # recorded, enqueued again
    summary = run_study(path, objective_fn=quick_objective, **FAST)
    assert (summary.complete, summary.failed, summary.remaining) == (4, 0, 0)


def _run_script(path: Path, tmp_path: Path, trials: int) -> Path:
    script = tmp_path / "run_ro.py"
    script.write_text(
        f"import sys\nsys.path.insert(0, {str(HERE)!r})\n"
        "from test_runner import FAST, quick_objective\n"
        "from memxbar.errors import ConfigError\n"
        "from memxbar.studies.runner import run_study\n"
        "try:\n"
        f"    run_study({str(path)!r}, trials={trials}, objective_fn=quick_objective, **FAST)\n"
        "except ConfigError as e:\n"
        "    print(f'{type(e).__name__}: {e}')\n"
        "    sys.exit(2)\n")
    return script


@pytest.mark.parametrize("what", ["folder", "database"])
def test_read_only_output_folder_or_database(tmp_path: Path, what: str) -> None:
    """A real read-only folder (or database file). As a normal user it is chmod'ed; as root,
    where permissions do not apply, it is bind-mounted read-only in a private mount namespace
    (`unshare -m`), which gives EROFS instead of EACCES."""
    path = _study_file(tmp_path, GRID)
    assert run_study(path, trials=2, objective_fn=quick_objective, **FAST).complete == 2
    out = load_spec(path).output_dir
    target = out if what == "folder" else out / "study.db"
    script = _run_script(path, tmp_path, trials=4)
    if os.geteuid() != 0:
        mode = target.stat().st_mode
        target.chmod(0o555 if what == "folder" else 0o444)
        try:
            res = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                                 timeout=120)
        finally:
            target.chmod(mode)
    else:
        if subprocess.run(["unshare", "-m", "true"], capture_output=True).returncode != 0:
            pytest.skip("running as root without permission for a private mount namespace "
                        "(unshare -m), so no read-only folder can be made")
        shell = (f"mount --bind {target} {target} && mount -o remount,bind,ro {target} {target}"
                 f" && exec {sys.executable} {script}")
        res = subprocess.run(["unshare", "-m", "sh", "-c", shell], capture_output=True,
                             text=True, timeout=120)
    assert res.returncode == 2, res.stdout + res.stderr
    assert "Traceback" not in res.stdout + res.stderr
    (line,) = res.stdout.strip().splitlines()
    if line.startswith("SpecError:"):  # the study file's check at load saw it first
        assert what == "folder" and f"folder {out} is not writable" in line, line
    else:
        assert line.startswith("StorageError: study 's': cannot write its results: "), line
        assert any(w in line for w in ("read-only", "permission denied", "cannot be opened"))
        assert f"output folder {out}" in line and "finished trials are kept" in line
    # made writable again, the study continues with its finished trials
    before = {t.number: t.values for t in _trials(path)}
    summary = run_study(path, trials=4, objective_fn=quick_objective, **FAST)
    assert (summary.complete, summary.failed, summary.ran) == (4, 0, 2)
    assert {n: v for n, v in ((t.number, t.values) for t in _trials(path)) if n in before} == \
        before


def test_two_studies_in_one_output_folder_are_refused(tmp_path: Path) -> None:
    first = _study_file(tmp_path, GRID, name="a")
    run_study(first, objective_fn=quick_objective, **FAST)
    out = load_spec(first).output_dir
    second = _study_file(tmp_path, GRID9, name="b")  # same output folder
    with pytest.raises(ConfigError) as info:
        run_study(second, objective_fn=quick_objective, **FAST)
    assert str(info.value) == (f"output folder {out} already holds study 'a' (from {first}); "
                               f"study 'b' (from {second}) needs its own folder: set [study] "
                               "output or pass --output")
    with pytest.raises(ConfigError, match="already holds study 'a'"):
        join_worker(second, f"sqlite:///{out / 'study.db'}", objective_fn=quick_objective,
                    **FAST)
    # also when study.json is gone (a folder made before the check): study.db names the study
    manifest = (out / MANIFEST).read_text()
    (out / MANIFEST).unlink()
    with pytest.raises(ConfigError, match=r"its study\.db already holds 'a'; study 'b'"):
        run_study(second, objective_fn=quick_objective, **FAST)
    (out / MANIFEST).write_text(manifest)
    # nothing of the first study changed; the second runs in its own folder
    assert len(_trials(first)) == 4 and (out / "study.toml").read_text() == first.read_text()
    assert run_study(second, output=tmp_path / "b", objective_fn=quick_objective,
                     **FAST).complete == 9


def _gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return True
    return state in ("Z", "X")  # a zombie has ended (no one may reap it in a container)


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc").is_dir(), reason="needs /proc to see processes")
def test_workers_end_with_a_killed_parent(tmp_path: Path, trained_state: dict) -> None:
    path = _study_file(tmp_path, GRID9)
    _seed_cache(path, trained_state)
    proc = _start_run(path, tmp_path)
    before, _ = _signal_mid_study(proc, path, signal.SIGKILL, group=False)  # the parent only
    pids = {int(t.user_attrs["worker"].rsplit(":", 1)[1]) for t in before
            if t.state == TrialState.RUNNING}
    assert len(pids) == 2 and proc.pid not in pids
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not all(_gone(p) for p in pids):
        time.sleep(0.1)
    assert all(_gone(p) for p in pids), "workers outlived their parent"
    # each recorded its trial as interrupted and enqueued it again, and ran no more trials
    # (9 designs: 3 were complete, 2 running; the queue was not drained)
    trials = _trials(path)
    assert not any(t.state == TrialState.RUNNING for t in trials)
    assert sum(t.state == TrialState.WAITING for t in trials) >= 3
    assert any(str(t.user_attrs.get("error", "")).startswith("interrupted") for t in trials)
    finished = {t.number: (t.params, t.values) for t in before if t.state == TrialState.COMPLETE}
    _check_resumed(path, finished)


def _interrupt_self() -> None:
    os.kill(os.getpid(), signal.SIGINT)
    time.sleep(0.05)  # the Python handler runs here


def test_interrupts_wait_for_bookkeeping_but_cut_the_objective_short() -> None:
    """Ctrl-C in a deferred block is held back; inside `interruptible` (the objective) it
    raises at once, and one held back raises on entry; the handlers are restored after."""
    with deferred_interrupts() as got:
        _interrupt_self()
        assert got == [signal.SIGINT]
        with pytest.raises(KeyboardInterrupt), interruptible():
            pytest.fail("a held-back interrupt raises on entry")
    with deferred_interrupts() as got:
        with pytest.raises(KeyboardInterrupt), interruptible():
            _interrupt_self()
        assert not got
        with deferred_interrupts() as inner:  # nested bookkeeping keeps its own list
            _interrupt_self()
        assert inner == [signal.SIGINT] and not got
        with interruptible():  # nothing pending: runs
            pass
    with interruptible():  # outside a deferred block: changes nothing
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_ctrl_c_during_bookkeeping_lands_between_steps(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """A Ctrl-C that arrives while a trial is being set up in storage does not cut the
    storage call short (that can leave a connection holding the write lock): the setup ends,
    the objective is not started, the trial is recorded as interrupted and enqueued again."""
    path = _study_file(tmp_path, GRID)
    real, returned, ran = trials_module._evaluated, [], []

    def evaluated(*args: object) -> object:
        _interrupt_self()
        out = real(*args)
        returned.append(True)
        return out

    def objective(spec: StudySpec, params: dict, ctx: TrialContext) -> dict:
        ran.append(ctx.number)
        return quick_objective(spec, params, ctx)

    monkeypatch.setattr(trials_module, "_evaluated", evaluated)
    with pytest.raises(KeyboardInterrupt):
        run_study(path, objective_fn=objective, **FAST)
    assert returned == [True] and ran == []
    trials = _trials(path)
    assert not any(t.state == TrialState.RUNNING for t in trials)
    failed = [t for t in trials if t.state == TrialState.FAIL]
    assert len(failed) == 1 and failed[0].user_attrs["error"].startswith("interrupted")
    monkeypatch.setattr(trials_module, "_evaluated", real)
    summary = run_study(path, objective_fn=objective, **FAST)
    assert (summary.complete, summary.remaining) == (4, 0)


def sleepy_objective(spec: StudySpec, params: dict, ctx: TrialContext) -> dict:
    time.sleep(0.3)
    return quick_objective(spec, params, ctx)


@pytest.mark.slow
def test_ctrl_c_at_random_moments_of_the_command_prints_one_line(tmp_path: Path) -> None:
    """`memxbar study run --workers 2`, interrupted at random moments (seeded) after its start:
    one line on stderr, exit code 130, no traceback from the run or its workers; the study
    then finishes with every design run once."""
    import random

    path = _study_file(tmp_path, GRID9)
    script = tmp_path / "cli_run.py"
    script.write_text(
        f"import sys\nsys.path.insert(0, {str(HERE)!r})\n"
        "from memxbar import cli\nfrom memxbar.studies import runner\n"
        "from test_runner import FAST, sleepy_objective\n"
        "real = runner.run_study\n"
        "def run(*args, **kwargs):\n"
        "    return real(*args, **{**kwargs, **FAST, 'objective_fn': sleepy_objective})\n"
        "runner.run_study = run\n"
        "if __name__ == '__main__':\n"
        "    print('started', flush=True)\n"
        f"    sys.exit(cli.main(['study', 'run', {str(path)!r}, '--workers', '2']))\n")
    rng = random.Random(0)
    for _ in range(2):
        proc = subprocess.Popen([sys.executable, str(script)], start_new_session=True,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert proc.stdout.readline() == "started\n"
        time.sleep(rng.uniform(0.2, 2.5))
        os.killpg(proc.pid, signal.SIGINT)
        out, err = proc.communicate(timeout=90)
        if proc.returncode == 0:  # it finished before the signal
            continue
        assert proc.returncode == 130, out + err
        assert err.strip() == ("memxbar: interrupted; finished trials are kept: run the same "
                               "command again to continue"), err
        try:
            assert not any(t.state == TrialState.RUNNING for t in _trials(path))
        except ConfigError as e:  # interrupted before the study was made
            assert "not found" in str(e) or "not a study output folder" in str(e)
    # the same objective as the interrupted runs (another one would be another study)
    summary = run_study(path, objective_fn=sleepy_objective, **FAST)
    assert (summary.complete, summary.failed, summary.remaining) == (9, 0, 0)
    complete = [t for t in _trials(path) if t.state == TrialState.COMPLETE]
    assert len(complete) == 9 and all(len(_runs(path, t.number)) == 1 for t in complete)


def test_trials_left_running_by_interrupted_workers_are_enqueued_again(tmp_path: Path) -> None:
    """After a Ctrl-C has ended the local workers, a trial still running under one of them (a
    signal between two of its steps) is recorded as interrupted and enqueued again with the
    same parameters; a trial of a worker that is not ours is left alone."""
    from memxbar.studies.workers import _requeue_orphans

    study = optuna.create_study(study_name="q", storage=make_storage(
        f"sqlite:///{tmp_path / 'q.db'}"))
    for x in (1, 2):
        study.enqueue_trial({"x": x})
    mine, other = _pop(study), _pop(study)
    assert mine is not None and other is not None
    study._storage.set_trial_user_attr(mine, "worker", "host:1")
    study._storage.set_trial_user_attr(other, "worker", "elsewhere:2")
    _requeue_orphans(study, {"host:1"})
    trials = {t._trial_id: t for t in study.get_trials()}
    assert trials[mine].state == TrialState.FAIL
    assert str(trials[mine].user_attrs["error"]).startswith("interrupted")
    assert trials[other].state == TrialState.RUNNING
    waiting = [t for t in trials.values() if t.state == TrialState.WAITING]
    assert len(waiting) == 1 and waiting[0].user_attrs["retry_of"] == trials[mine].number
    assert waiting[0].system_attrs["fixed_params"] == trials[mine].system_attrs["fixed_params"]


# ------------------------------------------------------------ designs counted once, folders

SMALL = """
[hardware]
device = "ideal"
adc_bits = { choices = [0, 4] }
[evaluation]
times = ["1 s", "1 day"]
[[objectives]]
metric = "accuracy"
time = "1 day"
[[objectives]]
metric = "energy_per_inference"
"""


def test_a_budget_beyond_the_space_is_capped_and_each_design_reported_once(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from memxbar.studies.report import results_table, write_report

    # two designs, five trials asked of a random sampler: proposals repeat, and reused
    # results were listed as designs of their own (8 "complete" for 2, a budget never met,
    # progress counts of -1)
    path = _study_file(tmp_path, SMALL + '[sampler]\nkind = "random"\n')
    path.write_text(path.read_text().replace('name = "s"', 'name = "s"\ntrials = 5'))
    spec = load_spec(path)
    assert spec.space_size() == 2 and spec.n_trials == 2
    for _ in range(2):  # a rerun has nothing left to do
        summary = run_study(path, objective_fn=quick_objective, **{**FAST, "progress": True})
        assert (summary.n_trials, summary.complete, summary.remaining) == (2, 2, 0)
    counts = [ln.rsplit("[", 1)[1] for ln in capsys.readouterr().out.splitlines()
              if ln.startswith("trial ")]
    assert counts and all(c.split("/")[0] in ("1", "2") and c.endswith("/2 designs]")
                          for c in counts), counts
    study, spec = load_study(spec.output_dir)
    table = results_table(study, spec)
    assert sorted(table["adc_bits"].unique()) == [0, 4] and len(table) == 2 * 2  # x 2 times
    write_report(spec.output_dir)
    text = (spec.output_dir / "report" / "report.md").read_text()
    assert "budget 2 designs (study.trials = 5; the space holds 2)" in text
    assert "- designs: 2 complete" in text


GRID_SMALL = SMALL + '[sampler]\nkind = "grid"\n'


def test_a_refused_resume_leaves_the_folder_record_alone(tmp_path: Path) -> None:
    path = _study_file(tmp_path, GRID_SMALL)
    run_study(path, objective_fn=quick_objective, **FAST)
    out = load_spec(path).output_dir
    before = {n: (out / n).read_text() for n in (MANIFEST, "study.toml")}
    edited = tmp_path / "edited.toml"
    edited.write_text(path.read_text().replace('times = ["1 s", "1 day"]', 'times = ["1 s"]')
                      .replace('time = "1 day"', 'time = "1 s"'))
    with pytest.raises(ConfigError, match="made from a different study file"):
        run_study(edited, objective_fn=quick_objective, **FAST)
    assert {n: (out / n).read_text() for n in before} == before


def test_a_database_in_another_studys_folder_is_refused(tmp_path: Path) -> None:
    a = _study_file(tmp_path, GRID_SMALL, name="a")
    run_study(a, objective_fn=quick_objective, **FAST)
    b = tmp_path / "b.toml"
    b.write_text(f'[study]\nname = "b"\noutput = "{tmp_path / "out_b"}"\nstorage = '
                 f'"sqlite:///{load_spec(a).output_dir / "study.db"}"\n' + GRID_SMALL)
    with pytest.raises(ConfigError, match=r"lies in the output folder .* of study 'a'"):
        run_study(b, objective_fn=quick_objective, **FAST)
    assert not (tmp_path / "out_b" / MANIFEST).exists()


def test_a_partial_sweep_keeps_its_reference_design(tmp_path: Path) -> None:
    body = SMALL.replace('adc_bits = { choices = [0, 4] }',
                         'adc_bits = { choices = [8, 6, 4] }\ndac_bits = { choices = [8, 6, 4] }')
    for seed in range(4):
        path = _study_file(tmp_path, body + '[sampler]\nkind = "sweep"\n')
        path.write_text(path.read_text().replace('name = "s"', f'name = "s"\nseed = {seed}\n'
                                                 'trials = 2'))
        points = _grid_points(load_spec(path), 2)
        assert points[0] == {"adc_bits": 8, "dac_bits": 8} and len(points) == 2
