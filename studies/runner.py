"""Run studies: every study is an Optuna study in an RDB storage (see DESIGN.md, studies/).

How a study runs:

- The storage is an SQLite file ``<output>/study.db`` by default, or any SQLAlchemy URL
  (PostgreSQL, MySQL) that workers on other machines can reach. The validated study file is
  stored in the study's user attributes, so results need only the storage.
- The trial budget is a queue: the process that creates the study (and every
  :func:`run_study`) enqueues waiting trials up to ``trials`` (a grid study enqueues its grid
  points). Workers pop waiting trials one at a time; the pop is atomic in the database (row
  lock on PostgreSQL/MySQL; on SQLite every transaction is ``BEGIN IMMEDIATE``), so K workers
  on one storage run each trial and each grid point exactly once. A worker stops when no trial
  is waiting and none is running.
- Each running trial records a heartbeat every ``heartbeat_interval`` seconds. A trial whose
  worker was killed (no heartbeat for ``grace_period`` s) is marked failed and enqueued again
  with the same parameters (at most :data:`MAX_ATTEMPTS` attempts); a trial interrupted by
  Ctrl-C or SIGTERM is marked failed and enqueued again at once. Re-running a study therefore
  continues it: finished trials are kept and never repeated.
- A trial whose objective raises is recorded as failed with the error (user attributes
  ``error`` and ``traceback``) and the study goes on.
- Parameters are sampled with a sampler seeded from the study seed and the trial number, so
  one worker replays the same study; the objective gets the study seed (common random numbers:
  every design sees the same noise draws, and a retried design gives the same result).

The objective is a function ``objective_fn(spec, params, ctx) -> Mapping``: ``params`` holds
every parameter of the design (:meth:`StudySpec.resolve`), ``ctx`` is a :class:`TrialContext`
(trial folder, cache folder shared by trials, seed). It returns metric name -> float, with a
key :func:`~memxbar.studies.spec.metric_key` for every objective and for the accuracy at every
evaluation time; an optional ``"breakdown"`` entry (JSON-serialisable dict, e.g.
``{"energy_per_inference": {"adc": J, ...}, "layers": [...]}``) is stored as it is. An object
with an ``as_dict()`` method returning that mapping is accepted too.
"""

from __future__ import annotations

import contextlib
import json
import math
import multiprocessing as mp
import os
import pickle
import random
import shutil
import signal
import socket
import threading
import time
import traceback
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import optuna
from optuna.exceptions import (
    DuplicatedStudyError,
    ExperimentalWarning,
    StorageInternalError,
    UpdateFinishedTrialError,
)
from optuna.trial import FrozenTrial, TrialState

from ..errors import ConfigError
from .spec import (
    Choices,
    Range,
    StudySpec,
    accuracy_key,
    load_spec,
    parse_spec,
    resolve_study,
)

MAX_ATTEMPTS = 3  # runs of one trial whose worker died before it finished
MANIFEST = "study.json"
SPEC_ATTR = "memxbar_spec"
HASH_ATTR = "memxbar_spec_hash"

ObjectiveFn = Callable[[StudySpec, dict[str, Any], "TrialContext"], Any]


@dataclass(frozen=True)
class TrialContext:
    """What an objective function gets besides the design parameters."""

    number: int  # Optuna trial number
    seed: int  # seed for every random draw of the trial (the study seed)
    trial_dir: Path  # this trial's folder, for files it wants to keep
    cache_dir: Path  # shared by all trials of the study, e.g. trained models per workload


@dataclass(frozen=True)
class RunSummary:
    """State of a study after :func:`run_study` or :func:`join_worker`."""

    name: str
    storage: str  # URL, password hidden
    output: Path
    n_trials: int  # budget
    complete: int
    failed: int
    remaining: int  # waiting or running
    ran: int  # trials run by this call
    elapsed_s: float
    best: list[dict[str, Any]] = field(default_factory=list)  # Pareto-optimal trials
    worker_errors: list[str] = field(default_factory=list)

    def describe(self) -> str:
        """A few lines for the console."""
        lines = [f"study {self.name!r}: {self.complete} of {self.n_trials} trials complete, "
                 f"{self.failed} failed, {self.remaining} waiting or running "
                 f"({self.ran} run here in {self.elapsed_s:.1f} s)",
                 f"storage {self.storage}; output {self.output}"]
        if self.best:
            lines.append(f"best ({len(self.best)} Pareto-optimal):")
            for b in self.best[:10]:
                values = ", ".join(f"{k} {v:.4g}" for k, v in b.items()
                                   if k not in ("number", "params"))
                params = " ".join(f"{k}={v}" for k, v in b["params"].items())
                lines.append(f"  #{b['number']} {params}: {values}")
        lines += [f"worker error: {e}" for e in self.worker_errors]
        if self.remaining:
            lines.append("run the same command again to continue")
        lines.append(f"report: memxbar study report {self.output}")
        return "\n".join(lines)


# --------------------------------------------------------------------------- storage


def hide_password(url: str) -> str:
    """The URL with its password replaced by ``***``."""
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def make_storage(url: str, *, heartbeat_interval: int | None = None,
                 grace_period: int | None = None) -> optuna.storages.RDBStorage:
    """An Optuna RDB storage for ``url``. SQLite files get ``BEGIN IMMEDIATE`` transactions
    (so a read-then-write such as popping a waiting trial is atomic across processes) and a
    60 s busy timeout; stale trials are handed to :func:`_requeue`."""
    from sqlalchemy import event

    sqlite = url.startswith("sqlite")
    if sqlite:
        path = url.split(":///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
    kwargs: dict[str, Any] = {}
    if heartbeat_interval is not None:
        kwargs.update(heartbeat_interval=heartbeat_interval, grace_period=grace_period,
                      heartbeat_stale_trial_callback=_requeue)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExperimentalWarning)
        try:
            storage = optuna.storages.RDBStorage(
                url, engine_kwargs={"connect_args": {"timeout": 60}} if sqlite else None,
                **kwargs)
        except (ImportError, ModuleNotFoundError) as e:
            raise ConfigError(f"storage {hide_password(url)}: database driver missing ({e}); "
                             "install it, e.g. pip install 'memxbar[postgres]'") from None
        except Exception as e:  # SQLAlchemy and driver errors
            raise ConfigError(f"storage {hide_password(url)}: cannot connect "
                             f"({type(e).__name__}: {str(e).splitlines()[0]})") from None
    if sqlite:
        engine = storage.engine

        @event.listens_for(engine, "connect")
        def _no_implicit_begin(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.isolation_level = None  # we emit BEGIN ourselves
            dbapi_connection.execute("PRAGMA journal_mode=WAL")
            dbapi_connection.execute("PRAGMA synchronous=FULL")

        @event.listens_for(engine, "begin")
        def _begin_immediate(conn: Any) -> None:
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        engine.dispose()  # connections made so far lack the hooks
    return storage


def _requeue(study: optuna.Study, failed: FrozenTrial, count_attempt: bool = True) -> None:
    """Enqueue a failed (killed or interrupted) trial again with the same parameters."""
    attempt = int(failed.user_attrs.get("attempt", 1))
    if count_attempt and attempt >= MAX_ATTEMPTS:
        return
    params = {**failed.system_attrs.get("fixed_params", {}), **failed.params}
    study.enqueue_trial(params, user_attrs={"attempt": attempt + int(count_attempt),
                                            "retry_of": failed.number})


def _identity_diff(a: Any, b: Any, path: str = "") -> Iterator[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b)):
            yield from _identity_diff(a.get(key), b.get(key), f"{path}.{key}" if path else key)
    elif a != b:
        yield f"{path} ({json.dumps(a)} in the storage, {json.dumps(b)} now)"


def _make_sampler(spec: StudySpec, seed: int) -> optuna.samplers.BaseSampler:
    kind = spec.sampler.kind
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExperimentalWarning)
        if kind in ("grid", "random"):
            # grid: every trial is enqueued with its grid point as fixed parameters, so no
            # sampler is asked. Optuna's GridSampler is not used: it picks a point per trial
            # (by trial number, then at random among unvisited ones, which concurrent workers
            # can duplicate) and fails on trials it did not pick (a one-point grid).
            return optuna.samplers.RandomSampler(seed=seed)
        if kind == "tpe":
            n = spec.sampler.n_startup_trials
            return optuna.samplers.TPESampler(seed=seed, **({} if n is None else
                                                            {"n_startup_trials": n}))
        n = spec.sampler.population_size
        return optuna.samplers.NSGAIISampler(seed=seed, **({} if n is None else
                                                           {"population_size": n}))


def trial_seed(seed: int, number: int) -> int:
    """Sampler seed of trial ``number`` in a study with seed ``seed``."""
    return int(np.random.SeedSequence([seed, number]).generate_state(1)[0])


def open_study(spec: StudySpec, storage: optuna.storages.RDBStorage, *,
               create: bool) -> tuple[optuna.Study, bool]:
    """Load the study ``spec.name`` from ``storage`` (creating it when ``create``); returns
    the study and whether this call created it. A study created from another study file
    (different workload, hardware, times, objectives or sampler) is refused."""
    sampler = _make_sampler(spec, spec.study.seed)
    url = hide_password(str(storage.engine.url))
    if create:
        try:
            study = optuna.create_study(study_name=spec.name, storage=storage,
                                        directions=spec.directions, sampler=sampler)
            study.set_user_attr(SPEC_ATTR, spec.model_dump(mode="json"))
            study.set_user_attr(HASH_ATTR, spec.identity_hash())
            return study, True
        except DuplicatedStudyError:
            pass
    try:
        study = optuna.load_study(study_name=spec.name, storage=storage, sampler=sampler)
    except KeyError:
        raise ConfigError(f"study {spec.name!r} not found in {url}; start it with "
                         "`memxbar study run FILE --storage URL` first") from None
    for _ in range(50):  # the creator stores the spec right after creating the study
        stored = study.user_attrs.get(SPEC_ATTR)
        if stored is not None:
            break
        time.sleep(0.2)
    else:
        raise ConfigError(f"study {spec.name!r} in {url} was not made by memxbar (no study "
                         "file stored); use another [study] name")
    if study.user_attrs.get(HASH_ATTR) != spec.identity_hash():
        old = parse_spec(stored, check_files=False).identity()
        diffs = list(_identity_diff(old, spec.identity()))[:3]
        raise ConfigError(f"study {spec.name!r} in {url} was made from a different study file: "
                         f"{'; '.join(diffs)}; use another [study] name or output folder")
    return study, False


# --------------------------------------------------------------------------- the queue


def _live(trials: list[FrozenTrial]) -> list[FrozenTrial]:
    """Trials that count toward the budget: all but failed trials that were enqueued again."""
    retried = {t.user_attrs["retry_of"] for t in trials if "retry_of" in t.user_attrs}
    return [t for t in trials if not (t.state == TrialState.FAIL and t.number in retried)]


def _params_key(params: Mapping[str, Any]) -> str:
    return json.dumps(dict(params), sort_keys=True)


def _grid_points(spec: StudySpec, n: int) -> list[dict[str, Any]]:
    """The first ``n`` grid points: all of them in file order, or a seeded random subset
    (a prefix of one permutation, so a larger budget extends a smaller one)."""
    grid = spec.grid()
    if n >= len(grid):
        return grid
    order = list(range(len(grid)))
    random.Random(spec.study.seed).shuffle(order)
    return [grid[i] for i in sorted(order[:n])]


def top_up(study: optuna.Study, spec: StudySpec, n_trials: int) -> int:
    """Enqueue waiting trials until the budget ``n_trials`` is covered; returns how many."""
    live = _live(study.get_trials(deepcopy=False))
    added = 0
    if spec.sampler.kind == "grid":
        have = {_params_key(t.system_attrs.get("fixed_params", t.params)) for t in live}
        for point in _grid_points(spec, n_trials):
            if _params_key(point) not in have:
                study.enqueue_trial(point, user_attrs={"attempt": 1})
                added += 1
    else:
        for _ in range(n_trials - len(live)):
            study.enqueue_trial({}, user_attrs={"attempt": 1})
            added += 1
    return added


def _pop(study: optuna.Study) -> int | None:
    """Atomically take a waiting trial (state WAITING -> RUNNING); its heartbeat row is made
    first, so a worker that dies right after the pop still leaves a trial that goes stale."""
    storage = study._storage
    for t in study.get_trials(deepcopy=False, states=(TrialState.WAITING,)):
        try:
            if storage.get_heartbeat_interval() is not None:
                storage.record_heartbeat(t._trial_id)
            if storage.set_trial_state_values(t._trial_id, state=TrialState.RUNNING):
                return t._trial_id
        except (UpdateFinishedTrialError, StorageInternalError):
            continue
    return None


class _Heartbeat:
    """Records a trial's heartbeat every ``interval`` seconds from a daemon thread."""

    def __init__(self, storage: optuna.storages.RDBStorage, trial_id: int, interval: float):
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(storage, trial_id, interval),
                                        daemon=True)

    def _run(self, storage: Any, trial_id: int, interval: float) -> None:
        while not self._stop.wait(interval):
            with contextlib.suppress(Exception):  # a missed beat is retried next interval
                storage.record_heartbeat(trial_id)

    def __enter__(self) -> _Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


# --------------------------------------------------------------------------- one trial


def _suggest(trial: optuna.Trial, spec: StudySpec) -> dict[str, Any]:
    out = {}
    for name, dim in spec.search_space().items():
        if isinstance(dim, Choices):
            out[name] = trial.suggest_categorical(name, list(dim.values))
        elif isinstance(dim, Range) and dim.integer:
            out[name] = trial.suggest_int(name, int(dim.low), int(dim.high),
                                          step=int(dim.step or 1), log=dim.log)
        else:
            out[name] = trial.suggest_float(name, dim.low, dim.high, step=dim.step, log=dim.log)
    return out


def _metrics(result: Any, spec: StudySpec) -> tuple[dict[str, float], Any]:
    """Check an objective's result; returns (metrics, breakdown)."""
    if hasattr(result, "as_dict"):
        result = result.as_dict()
    if not isinstance(result, Mapping):
        raise TypeError(f"the objective returned {type(result).__name__}; expected a mapping "
                        "of metric name -> float")
    breakdown = result.get("breakdown")
    metrics: dict[str, float] = {}
    for key, value in result.items():
        if key == "breakdown":
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float, np.number)):
            raise TypeError(f"metric {key!r} = {value!r} is not a number")
        metrics[str(key)] = float(value)
    needed = [o.key for o in spec.objectives]
    needed += [accuracy_key(t) for t in spec.evaluation.times if accuracy_key(t) not in needed]
    missing = [k for k in needed if k not in metrics]
    if missing:
        raise ValueError(f"the objective returned no {', '.join(missing)}; it returned "
                         f"{', '.join(metrics) or 'nothing'}")
    bad = [k for k in needed if not math.isfinite(metrics[k])]
    if bad:
        raise ValueError(f"the objective returned non-finite {', '.join(bad)}")
    if breakdown is not None:
        json.dumps(breakdown)  # must be storable
    return metrics, breakdown


def _worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


@contextlib.contextmanager
def _deferred_interrupts() -> Iterator[list[int]]:
    """Hold back Ctrl-C (SIGINT) and a worker's SIGTERM while a block of storage bookkeeping
    runs; yields the list of signals that arrived, for the caller to act on. Outside the main
    thread, or for signals without a Python handler, nothing changes."""
    got: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield got
        return
    old = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    for sig, handler in old.items():
        if callable(handler):
            signal.signal(sig, lambda signum, _frame: got.append(signum))
    try:
        yield got
    finally:
        for sig, handler in old.items():
            if callable(handler):
                signal.signal(sig, handler)


def _fail_interrupted(study: optuna.Study, trial_id: int) -> None:
    """Record a trial cut short by Ctrl-C or SIGTERM as failed and enqueue it again."""
    storage = study._storage
    with _deferred_interrupts(), contextlib.suppress(Exception):
        storage.set_trial_user_attr(trial_id, "error",
                                    "interrupted (Ctrl-C or SIGTERM); enqueued again")
        if storage.set_trial_state_values(trial_id, state=TrialState.FAIL):
            _requeue(study, storage.get_trial(trial_id), count_attempt=False)


def _run_trial(study: optuna.Study, spec: StudySpec, trial_id: int, objective_fn: ObjectiveFn,
               heartbeat_interval: float) -> TrialState:
    """Run the popped trial ``trial_id`` to the end; returns its final state. On Ctrl-C or
    SIGTERM the trial is recorded as failed and enqueued again, then KeyboardInterrupt is
    raised."""
    storage = study._storage
    number = storage.get_trial(trial_id).number
    study.sampler = _make_sampler(spec, trial_seed(spec.study.seed, number))
    out = spec.output_dir
    ctx = TrialContext(number=number, seed=spec.study.seed,
                       trial_dir=out / "trials" / f"{number:05d}", cache_dir=out / "cache")
    with _Heartbeat(storage, trial_id, heartbeat_interval):
        start = time.perf_counter()
        try:
            trial = optuna.Trial(study, trial_id)
            trial.set_user_attr("seed", spec.study.seed)
            trial.set_user_attr("worker", _worker_id())
            params = spec.resolve(_suggest(trial, spec))
            trial.set_user_attr("params", params)
            trial.set_user_attr("technology", spec.technology(params["device"]))
            ctx.trial_dir.mkdir(parents=True, exist_ok=True)
            ctx.cache_dir.mkdir(parents=True, exist_ok=True)
            metrics, breakdown = _metrics(objective_fn(spec, params, ctx), spec)
            values = [metrics[o.key] for o in spec.objectives]
        except KeyboardInterrupt:
            _fail_interrupted(study, trial_id)
            raise
        except Exception as e:
            with _deferred_interrupts() as got:
                with contextlib.suppress(UpdateFinishedTrialError):
                    storage.set_trial_user_attr(trial_id, "error", f"{type(e).__name__}: {e}")
                    storage.set_trial_user_attr(trial_id, "traceback",
                                                traceback.format_exc()[-4000:])
                    storage.set_trial_user_attr(trial_id, "duration_s",
                                                time.perf_counter() - start)
                state = study.tell(number, state=TrialState.FAIL, skip_if_finished=True).state
            if got:
                raise KeyboardInterrupt from None
            return state
        with _deferred_interrupts() as got:  # a finished trial is recorded in full
            try:
                trial.set_user_attr("metrics", metrics)
                if breakdown is not None:
                    trial.set_user_attr("breakdown", breakdown)
                trial.set_user_attr("duration_s", time.perf_counter() - start)
            except UpdateFinishedTrialError:
                pass  # reaped as stale meanwhile; tell() below keeps the failed state
            state = study.tell(trial, values, skip_if_finished=True).state
        if got:
            raise KeyboardInterrupt
        return state


def _reap(study: optuna.Study) -> None:
    """Fail trials whose worker stopped sending heartbeats; they are enqueued again."""
    with _deferred_interrupts() as got, warnings.catch_warnings():
        warnings.simplefilter("ignore", ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)
    if got:
        raise KeyboardInterrupt


def _work(study: optuna.Study, spec: StudySpec, objective_fn: ObjectiveFn, *,
          heartbeat_interval: float, poll_interval: float) -> int:
    """Pop and run trials until none is waiting or running; returns how many were run."""
    ran = 0
    while True:
        _reap(study)
        with _deferred_interrupts() as got:
            trial_id = _pop(study)
        if got:
            if trial_id is not None:
                _fail_interrupted(study, trial_id)
            raise KeyboardInterrupt
        if trial_id is None:
            if not study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
                return ran
            time.sleep(poll_interval)
            continue
        try:
            _run_trial(study, spec, trial_id, objective_fn, heartbeat_interval)
        except KeyboardInterrupt:  # also when it came before _run_trial's own handler
            _fail_interrupted(study, trial_id)  # no-op for a trial already recorded
            raise
        ran += 1


def _sigterm(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


def _worker_main(spec: StudySpec, url: str, objective_fn: ObjectiveFn, opts: dict[str, Any],
                 threads: int, queue: Any) -> None:
    """Entry point of a worker process started by :func:`run_study`."""
    signal.signal(signal.SIGTERM, _sigterm)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    with contextlib.suppress(ImportError):
        import torch

        torch.set_num_threads(threads)
    try:
        storage = make_storage(url, heartbeat_interval=opts["heartbeat_interval"],
                               grace_period=opts["grace_period"])
        study, _ = open_study(spec, storage, create=False)
        ran = _work(study, spec, objective_fn, heartbeat_interval=opts["heartbeat_interval"],
                    poll_interval=opts["poll_interval"])
        queue.put(("done", ran))
    except KeyboardInterrupt:
        queue.put(("interrupted", 0))
    except BaseException as e:  # report to the parent instead of a bare traceback
        queue.put(("error", f"{type(e).__name__}: {e}"))
        raise


# --------------------------------------------------------------------------- progress


def _fmt(value: float) -> str:
    return f"{value:.4g}"


class _Progress:
    """Rich progress bar: trials done of the budget, failures, best value per objective and
    ETA, refreshed from the storage every ``interval`` seconds by a thread."""

    def __init__(self, study: optuna.Study, spec: StudySpec, enabled: bool,
                 interval: float) -> None:
        self.study, self.spec, self.enabled, self.interval = study, spec, enabled, interval
        self._bar: Any = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._refresh, daemon=True)

    def __enter__(self) -> _Progress:
        if self.enabled:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            self._bar = Progress(TextColumn("[bold]{task.description}"), BarColumn(bar_width=20),
                                 MofNCompleteColumn(), TextColumn("{task.fields[failed]}"),
                                 TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
                                 TextColumn("{task.fields[best]}"))
            self._bar.start()
            done, failed, total, best = self._state()
            self._task = self._bar.add_task(self.spec.name, total=total, completed=done,
                                            failed=failed, best=best)
            self._thread.start()
        return self

    def _state(self) -> tuple[int, str, int, str]:
        live = _live(self.study.get_trials(deepcopy=False))
        done = [t for t in live if t.state.is_finished()]
        n_fail = sum(t.state == TrialState.FAIL for t in done)
        complete = [t for t in done if t.state == TrialState.COMPLETE]
        best = []
        for i, obj in enumerate(self.spec.objectives):
            vals = [t.values[i] for t in complete]
            if vals:
                pick = max(vals) if obj.sense == "maximize" else min(vals)
                best.append(f"{obj.label} {_fmt(pick)}")
        failed = f"[red]{n_fail} failed[/red]" if n_fail else ""
        total = max(self.spec.n_trials, len(live))
        return len(done), failed, total, ("best: " + ", ".join(best)) if best else ""

    def _update(self) -> None:
        done, failed, total, best = self._state()
        self._bar.update(self._task, completed=done, total=total, failed=failed, best=best)

    def _refresh(self) -> None:
        while not self._stop.wait(self.interval):
            with contextlib.suppress(Exception):  # a failed read is retried next interval
                self._update()

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._stop.set()
            self._thread.join()
            with contextlib.suppress(Exception):
                self._update()
            self._bar.stop()


# --------------------------------------------------------------------------- public API


def _default_objective(spec: StudySpec, params: dict[str, Any], ctx: TrialContext) -> Any:
    """memxbar's hardware evaluation, ``memxbar.studies.evaluate.evaluate_design``."""
    from .evaluate import evaluate_design  # type: ignore[import-not-found]

    return evaluate_design(spec, params, cache_dir=ctx.cache_dir, seed=ctx.seed)


def _objective(objective_fn: ObjectiveFn | None) -> ObjectiveFn:
    if objective_fn is not None:
        return objective_fn
    try:
        from . import evaluate  # noqa: F401
    except ImportError as e:
        raise ConfigError(f"the hardware evaluation memxbar.studies.evaluate cannot be imported "
                         f"({e})") from None
    return _default_objective


def _write_manifest(spec: StudySpec, source: Path) -> None:
    out = spec.output_dir
    out.mkdir(parents=True, exist_ok=True)
    manifest = {"name": spec.name, "storage": hide_password(spec.storage_url),
                "study_file": str(source.resolve()), "written": datetime.now().isoformat()}
    (out / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    with contextlib.suppress(shutil.SameFileError):
        shutil.copyfile(source, out / "study.toml")


def _summary(study: optuna.Study, spec: StudySpec, ran: int, elapsed: float,
             errors: list[str]) -> RunSummary:
    live = _live(study.get_trials(deepcopy=False))
    best = []
    complete = [t for t in live if t.state == TrialState.COMPLETE]
    if complete:
        for t in study.best_trials:
            best.append({"number": t.number, "params": dict(t.params),
                         **{o.label: v for o, v in zip(spec.objectives, t.values, strict=True)}})
    return RunSummary(
        name=spec.name, storage=hide_password(spec.storage_url), output=spec.output_dir,
        n_trials=spec.n_trials, complete=len(complete),
        failed=sum(t.state == TrialState.FAIL for t in live),
        remaining=sum(t.state in (TrialState.WAITING, TrialState.RUNNING) for t in live),
        ran=ran, elapsed_s=elapsed, best=best, worker_errors=errors)


def _prepare(path: str | Path, trials: int | None, storage: str | None,
             output: str | Path | None) -> tuple[StudySpec, Path]:
    source = resolve_study(path)
    spec = load_spec(source)
    changes: dict[str, Any] = {}
    if trials is not None:
        changes["trials"] = trials
    if storage is not None:
        changes["storage"] = storage
    if output is not None:
        changes["output"] = str(Path(output).expanduser().resolve())
    return (spec.with_study(source=str(source), **changes) if changes else spec), source


def run_study(path: str | Path, trials: int | None = None, workers: int = 1,
              storage: str | None = None, objective_fn: ObjectiveFn | None = None, *,
              output: str | Path | None = None, progress: bool = True,
              heartbeat_interval: int = 10, grace_period: int = 60,
              poll_interval: float = 1.0) -> RunSummary:
    """Run (or continue) the study of a study file with ``workers`` local processes.

    ``path``: a study file or a ready-made study's name. ``trials``, ``storage``, ``output``
    override ``[study]``. ``workers = 0`` only creates the study and enqueues its budget (for
    remote :func:`join_worker` processes); ``workers = 1`` runs in this process; more run
    here and in ``workers - 1`` child processes (``objective_fn`` must then be a module-level
    function, and a calling script needs the ``if __name__ == "__main__":`` guard). The trial
    budget is topped up first, so running the same file again continues the study.
    ``objective_fn`` defaults to ``memxbar.studies.evaluate.evaluate_design``. A worker whose
    trial shows no heartbeat for ``grace_period`` s (interval ``heartbeat_interval`` s) is
    taken as dead and its trial enqueued again. Returns a :class:`RunSummary`.
    """
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 0:
        raise ConfigError(f"workers = {workers!r}; allowed: an integer >= 0")
    if not (isinstance(heartbeat_interval, int) and isinstance(grace_period, int)
            and 0 < heartbeat_interval < grace_period):
        raise ConfigError(f"heartbeat_interval = {heartbeat_interval!r}, grace_period = "
                         f"{grace_period!r}; allowed: integers with 0 < interval < grace")
    objective_fn = _objective(objective_fn)
    spec, source = _prepare(path, trials, storage, output)
    if workers > 1:
        try:
            pickle.dumps(objective_fn)
        except (pickle.PicklingError, AttributeError, TypeError) as e:
            raise ConfigError(f"objective_fn cannot be sent to worker processes ({e}); use a "
                             "module-level function, or workers = 1") from None
    _write_manifest(spec, source)
    opts = {"heartbeat_interval": heartbeat_interval, "grace_period": grace_period,
            "poll_interval": poll_interval}
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    db = make_storage(spec.storage_url, heartbeat_interval=heartbeat_interval,
                      grace_period=grace_period)
    study, _ = open_study(spec, db, create=True)
    _reap(study)
    top_up(study, spec, spec.n_trials)
    start = time.perf_counter()
    if workers == 0:
        return _summary(study, spec, 0, 0.0, [])
    with _Progress(study, spec, progress, poll_interval):
        ran, errors = _run_workers(study, spec, objective_fn, workers, opts)
    return _summary(study, spec, ran, time.perf_counter() - start, errors)


def _mp_context() -> Any:
    """Forkserver where available (one import of torch for all workers; fork-safe), else
    spawn. Either way a script that calls :func:`run_study` with workers > 1 needs the
    ``if __name__ == "__main__":`` guard."""
    if "forkserver" in mp.get_all_start_methods():
        ctx = mp.get_context("forkserver")
        ctx.set_forkserver_preload([__name__])
        return ctx
    return mp.get_context("spawn")


@contextlib.contextmanager
def _torch_threads(n: int | None) -> Iterator[None]:
    """Limit torch's intra-op threads to ``n`` while a block runs (None: leave them)."""
    try:
        import torch
    except ImportError:
        torch = None
    before = torch.get_num_threads() if torch is not None else None
    if torch is not None and n is not None:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        if torch is not None:
            torch.set_num_threads(before)


def _run_workers(study: optuna.Study, spec: StudySpec, objective_fn: ObjectiveFn,
                 workers: int, opts: dict[str, Any]) -> tuple[int, list[str]]:
    """Run ``workers`` workers: this process and ``workers - 1`` child processes, each with
    1/workers of the CPU cores for torch. Returns (trials run, worker errors)."""
    procs: list[Any] = []
    queue: Any = None
    threads = max(1, (os.cpu_count() or 1) // workers) if workers > 1 else None
    if workers > 1:
        ctx = _mp_context()
        queue = ctx.SimpleQueue()
        procs = [ctx.Process(target=_worker_main, name=f"memxbar-worker-{i}",
                             args=(spec, spec.storage_url, objective_fn, opts, threads, queue))
                 for i in range(1, workers)]
        for p in procs:
            p.start()
    try:
        with _torch_threads(threads):
            ran = _work(study, spec, objective_fn, heartbeat_interval=opts["heartbeat_interval"],
                        poll_interval=opts["poll_interval"])
    except BaseException:
        # Ctrl-C in a terminal reaches the workers too; give them time to record their
        # trials, then send SIGTERM (handled the same way) to any still running.
        for p in procs:
            p.join(timeout=5)
        for p in procs:
            if p.is_alive():
                p.terminate()
        for p in procs:
            p.join(timeout=30)
        raise
    for p in procs:
        p.join()
    messages = []
    while queue is not None and not queue.empty():
        messages.append(queue.get())
    ran += sum(n for kind, n in messages if kind == "done")
    errors = [str(n) for kind, n in messages if kind == "error"]
    if not errors:
        errors = [f"{p.name} exited with code {p.exitcode}" for p in procs if p.exitcode != 0]
    return ran, errors


def join_worker(path: str | Path, storage: str, objective_fn: ObjectiveFn | None = None, *,
                output: str | Path | None = None, progress: bool = True,
                heartbeat_interval: int = 10, grace_period: int = 60,
                poll_interval: float = 1.0) -> RunSummary:
    """Join the study of a study file on a shared storage (e.g. from another machine) and run
    its waiting trials until none is waiting or running. Creates the study (and enqueues its
    budget) only if it does not exist yet. Trial folders and the model cache go to the study's
    output folder on this machine."""
    objective_fn = _objective(objective_fn)
    spec, source = _prepare(path, None, storage, output)
    _write_manifest(spec, source)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    db = make_storage(spec.storage_url, heartbeat_interval=heartbeat_interval,
                      grace_period=grace_period)
    study, created = open_study(spec, db, create=True)
    if created:
        top_up(study, spec, spec.n_trials)
    start = time.perf_counter()
    with _Progress(study, spec, progress, poll_interval):
        ran = _work(study, spec, objective_fn, heartbeat_interval=heartbeat_interval,
                    poll_interval=poll_interval)
    return _summary(study, spec, ran, time.perf_counter() - start, [])


def locate_study(folder: str | Path, storage: str | None = None) -> tuple[str, str]:
    """``(storage URL, study name)`` of a study's output folder (from its ``study.json``);
    ``storage`` overrides the URL (needed when the recorded one hides a password)."""
    folder = Path(folder)
    manifest = folder / MANIFEST
    if not manifest.is_file():
        raise ConfigError(f"{folder} is not a study output folder (no {MANIFEST}); give the "
                         "folder that `memxbar study run` wrote")
    try:
        info = json.loads(manifest.read_text(encoding="utf-8"))
        name, url = str(info["name"]), str(info["storage"])
    except (ValueError, KeyError, TypeError) as e:
        raise ConfigError(f"{manifest}: unreadable ({e})") from None
    if storage is not None:
        return storage, name
    if "***" in url:
        raise ConfigError(f"the storage of study {name!r} ({url}) needs a password; pass it with "
                         "--storage URL")
    return url, name


def load_study(folder: str | Path, storage: str | None = None) -> tuple[optuna.Study,
                                                                         StudySpec]:
    """The Optuna study of an output folder and its study file (read from the storage)."""
    url, name = locate_study(folder, storage)
    db = make_storage(url)
    try:
        study = optuna.load_study(study_name=name, storage=db)
    except KeyError:
        raise ConfigError(f"study {name!r} not found in {hide_password(url)}") from None
    stored = study.user_attrs.get(SPEC_ATTR)
    if stored is None:
        raise ConfigError(f"study {name!r} in {hide_password(url)} has no stored study file")
    return study, parse_spec(stored, check_files=False, source=f"study {name!r}")


def open_dashboard(folder: str | Path, *, storage: str | None = None,
                   host: str = "127.0.0.1", port: int = 8080) -> None:
    """Serve optuna-dashboard on the study's storage (blocks until Ctrl-C)."""
    url, name = locate_study(folder, storage)
    try:
        import optuna_dashboard  # type: ignore[import-not-found]
    except ImportError:
        raise ConfigError("optuna-dashboard is not installed; install it with `pip install "
                         f"optuna-dashboard`, then run again (storage: {hide_password(url)}, "
                         f"study {name!r})") from None
    print(f"optuna-dashboard for study {name!r} at http://{host}:{port} (Ctrl-C to stop)")
    optuna_dashboard.run_server(url, host=host, port=port)


__all__ = ["MAX_ATTEMPTS", "RunSummary", "TrialContext", "join_worker", "load_study",
           "locate_study", "make_storage", "open_dashboard", "open_study", "run_study",
           "top_up", "trial_seed"]
