"""The trial queue of a study in an Optuna RDB storage, and the running of its trials.

The storage, the queue (waiting trials popped atomically), heartbeats, one trial from its
parameters to its recorded metrics, failed workers' trials enqueued again, and storage faults
(a full disk, a read-only folder or database). How a study runs: :mod:`.runner`.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import math
import os
import random
import signal
import socket
import threading
import time
import traceback
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import optuna
from optuna.exceptions import (
    DuplicatedStudyError,
    ExperimentalWarning,
    StorageInternalError,
    UpdateFinishedTrialError,
)
from optuna.trial import FrozenTrial, TrialState

from memxbar.errors import ConfigError
from memxbar.studies.spec import Choices, Range, StudySpec, accuracy_key, parse_spec

if TYPE_CHECKING:
    from optuna.storages._heartbeat import BaseHeartbeat

SPEC_ATTR = "memxbar_spec"
HASH_ATTR = "memxbar_spec_hash"
OBJECTIVE_ATTR = "memxbar_objective"  # a custom objective function: "module:name sha256 ..."

ObjectiveFn = Callable[[StudySpec, dict[str, Any], "TrialContext"], Any]


class StorageError(ConfigError):
    """The study's results cannot be written: a full disk, a read-only or unwritable output
    folder or database. Finished trials are kept; the run continues once it is fixed."""


@dataclass(frozen=True)
class TrialContext:
    """What an objective function gets besides the design parameters."""

    number: int  # Optuna trial number
    seed: int  # seed for every random draw of the trial (the study seed)
    trial_dir: Path  # this trial's folder, for files it wants to keep
    cache_dir: Path  # shared by all trials of the study, e.g. trained models per workload


# --------------------------------------------------------------------------- storage


def hide_password(url: str) -> str:
    """The URL with its password replaced by ``***``."""
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def _with_driver(url: str) -> str:
    """``url`` with a PostgreSQL driver that is installed: a bare ``postgresql://`` means
    psycopg 3 to SQLAlchemy 2.1 (what ``memxbar[postgres]`` installs); psycopg2 is used when
    only it is there. Other URLs are returned unchanged."""
    from importlib.util import find_spec

    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if parsed.drivername != "postgresql":
        return url
    for module, driver in (("psycopg", "postgresql+psycopg"), ("psycopg2", "postgresql+psycopg2")):
        if find_spec(module) is not None:
            return parsed.set(drivername=driver).render_as_string(hide_password=False)
    raise ConfigError(f"storage {hide_password(url)}: no PostgreSQL driver is installed; "
                     "install one with pip install 'memxbar[postgres]' (psycopg 3)")


def sqlite_file(url: str) -> Path | None:
    """The database file of an SQLite URL (``sqlite:///path``); None for another backend or
    an in-memory database."""
    if not url.startswith("sqlite"):
        return None
    path = url.split(":///", 1)[-1]
    return Path(path) if path and path != ":memory:" else None


def make_storage(url: str, *, heartbeat_interval: int | None = None,
                 grace_period: int | None = None) -> optuna.storages.RDBStorage:
    """An Optuna RDB storage for ``url``. SQLite files get ``BEGIN IMMEDIATE`` transactions
    (so a read-then-write such as popping a waiting trial is atomic across processes) and a
    60 s busy timeout. With ``heartbeat_interval`` running trials record heartbeats; stale
    ones are failed and enqueued again by the workers (:func:`reap`), not by Optuna."""
    from sqlalchemy import event

    # A Ctrl-C or a worker's SIGTERM that lands inside a connection's close is logged by
    # SQLAlchemy's pool with a traceback before it re-raises; the interrupt itself is handled
    # (one line, trials kept), so that log would be the only traceback the user sees.
    pool_log = logging.getLogger("sqlalchemy.pool")
    if not any(isinstance(h, logging.NullHandler) for h in pool_log.handlers):
        pool_log.addHandler(logging.NullHandler())
    url = _with_driver(url)
    sqlite = url.startswith("sqlite")
    db = sqlite_file(url)
    if db is not None:
        db.parent.mkdir(parents=True, exist_ok=True)
    kwargs: dict[str, Any] = {}
    if heartbeat_interval is not None:
        kwargs.update(heartbeat_interval=heartbeat_interval, grace_period=grace_period)
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


def design_of(t: FrozenTrial) -> dict[str, Any]:
    """The searched parameters of a trial (also of one that failed before suggesting them)."""
    return {**t.system_attrs.get("fixed_params", {}), **t.params}


def requeue(study: optuna.Study, failed: FrozenTrial, attempt: int) -> None:
    """Enqueue a failed (killed or interrupted) trial again with the same parameters."""
    study.enqueue_trial(design_of(failed), user_attrs={"attempt": attempt,
                                                       "retry_of": failed.number})


def fail_crashed(study: optuna.Study, trial_id: int, reason: str, max_retries: int) -> None:
    """Record a running trial whose worker died as failed with ``reason``; enqueue it again
    unless it has had ``max_retries`` retries. Safe against other workers doing the same:
    only the one whose state change succeeds enqueues. Callers hold back interrupts."""
    storage = study._storage
    with contextlib.suppress(UpdateFinishedTrialError, KeyError):
        attempt = int(storage.get_trial(trial_id).user_attrs.get("attempt", 1))
        retry = attempt <= max_retries
        note = (f"; attempt {attempt} of {max_retries + 1}, enqueued again" if retry else
                f"; attempt {attempt} of {max_retries + 1}, not retried (--retry-failed "
                "runs it again)")
        storage.set_trial_user_attr(trial_id, "error", reason + note)
        if storage.set_trial_state_values(trial_id, state=TrialState.FAIL) and retry:
            requeue(study, storage.get_trial(trial_id), attempt + 1)


# errno -> what it means for the study's files (the last two only for memxbar's own writes)
DISK_FAULTS = {errno.ENOSPC: "the disk is full", errno.EDQUOT: "the disk quota is exceeded",
               errno.EROFS: "the file system is read-only"}
WRITE_FAULTS = {**DISK_FAULTS, errno.EACCES: "permission denied",
                errno.EPERM: "operation not permitted"}
DB_FAULTS = {"readonly database": "the database is read-only",
             "disk is full": "the disk is full",
             "unable to open database": "the database file cannot be opened or created",
             "disk i/o error": "disk I/O error"}


def storage_fault(e: BaseException, faults: Mapping[int, str] = WRITE_FAULTS) -> str | None:
    """What an exception (or one it was raised from) says about the study's storage: a full
    disk, a read-only or unwritable folder or database; None for any other error."""
    seen: set[int] = set()
    cur: BaseException | None = e
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        if isinstance(cur, OSError) and cur.errno is not None and cur.errno in faults:
            return faults[cur.errno] + (f" ({cur.filename})" if cur.filename else "")
        if not isinstance(cur, OSError):
            text = str(cur).lower()
            for needle, what in DB_FAULTS.items():
                if needle in text:
                    return what
        cur = cur.__cause__ or cur.__context__
    return None


def storage_message(spec: StudySpec, what: str) -> str:
    return (f"study {spec.name!r}: cannot write its results: {what} (output folder "
            f"{spec.output_dir}, storage {hide_password(spec.storage_url)}); free space or make "
            "them writable, then run the same command again: finished trials are kept")


@contextlib.contextmanager
def storage_faults(spec: StudySpec) -> Iterator[None]:
    """Turn a full disk or a read-only folder or database into one :class:`StorageError`."""
    try:
        yield
    except StorageError:
        raise
    except Exception as e:
        what = storage_fault(e)
        if what is None:
            raise
        raise StorageError(storage_message(spec, what)) from None


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
        if kind in ("grid", "sweep", "random"):
            # grid: every trial is enqueued with its grid point as fixed parameters, so no
            # sampler is asked. Optuna's GridSampler is not used: it picks a point per trial
            # (by trial number, then at random among unvisited ones, which concurrent workers
            # can duplicate) and fails on trials it did not pick (a one-point grid).
            return optuna.samplers.RandomSampler(seed=seed)
        if kind == "tpe":
            n = spec.sampler.n_startup_trials
            tpe: dict[str, Any] = {} if n is None else {"n_startup_trials": n}
            return optuna.samplers.TPESampler(seed=seed, **tpe)
        n = spec.sampler.population_size
        nsga: dict[str, Any] = {} if n is None else {"population_size": n}
        return optuna.samplers.NSGAIISampler(seed=seed, **nsga)


def trial_seed(seed: int, number: int) -> int:
    """Sampler seed of trial ``number`` in a study with seed ``seed``."""
    return int(np.random.SeedSequence([seed, number]).generate_state(1)[0])


def _store_spec(study: optuna.Study, spec: StudySpec) -> None:
    """Store the study file in the study, its storage password hidden: user attributes are
    served to anyone who can read the storage (optuna-dashboard's ``/api/studies``)."""
    stored = spec.model_dump(mode="json")
    if stored["study"].get("storage"):
        stored["study"]["storage"] = hide_password(stored["study"]["storage"])
    study.set_user_attr(SPEC_ATTR, stored)
    study.set_user_attr(HASH_ATTR, spec.identity_hash())


def objective_identity(fn: Any) -> str | None:
    """``"module:qualname sha256 <hash of its source file>"`` of a custom objective function
    (None for memxbar's own evaluation): part of the study, so a changed objective is not
    silently resumed."""
    import hashlib
    import inspect

    if fn is None or getattr(fn, "__module__", "").startswith("memxbar."):
        return None
    name = f"{getattr(fn, '__module__', '?')}:{getattr(fn, '__qualname__', type(fn).__name__)}"
    try:
        source = inspect.getsourcefile(fn)
        digest = hashlib.sha256(Path(source).read_bytes()).hexdigest()[:16] if source else "?"
    except (TypeError, OSError):
        digest = "?"
    return f"{name} sha256 {digest}"


def _set_metric_names(study: optuna.Study, spec: StudySpec) -> None:
    """Name the objectives for optuna-dashboard ("accuracy @ 1 y", "energy_per_inference")."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExperimentalWarning)
        study.set_metric_names([o.label for o in spec.objectives])


def open_study(spec: StudySpec, storage: optuna.storages.RDBStorage, *,
               create: bool, objective: str | None = None,
               check_objective: bool = False) -> tuple[optuna.Study, bool]:
    """Load the study ``spec.name`` from ``storage`` (creating it when ``create``); returns
    the study and whether this call created it. A study created from another study file
    (different workload, hardware, times, objectives or sampler) or with another custom
    objective function (``objective``, :func:`objective_identity`; with ``check_objective``)
    is refused."""
    sampler = _make_sampler(spec, spec.study.seed)
    url = hide_password(str(storage.engine.url))
    if create:
        try:
            with deferred_interrupts() as got:  # a study is made with its study file
                study = optuna.create_study(study_name=spec.name, storage=storage,
                                            directions=spec.directions, sampler=sampler)
                _store_spec(study, spec)
                _set_metric_names(study, spec)
                if objective is not None:
                    study.set_user_attr(OBJECTIVE_ATTR, objective)
            if got:
                raise KeyboardInterrupt
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
        if create and not study.get_trials(deepcopy=False):  # its creator was cut short
            _store_spec(study, spec)
            return study, True
        raise ConfigError(f"study {spec.name!r} in {url} was not made by memxbar (no study "
                         "file stored); use another [study] name")
    if study.user_attrs.get(HASH_ATTR) != spec.identity_hash() and (
            old_spec := parse_spec(stored, check_files=False)).identity_hash() != \
            spec.identity_hash():  # (a stored hash of an older identity rule, recomputed)
        old = old_spec.identity()
        diffs = list(_identity_diff(old, spec.identity()))[:3]
        raise ConfigError(f"study {spec.name!r} in {url} was made from a different study file: "
                         f"{'; '.join(diffs)}; use another [study] name or output folder")
    stored_objective = study.user_attrs.get(OBJECTIVE_ATTR)
    if check_objective and stored_objective != objective:
        raise ConfigError(f"study {spec.name!r} in {url} was run with the objective "
                          f"{stored_objective or 'memxbar evaluate_design'}; this run uses "
                          f"{objective or 'memxbar evaluate_design'}: a changed objective is a "
                          "different study: use another [study] name or output folder")
    return study, False


# --------------------------------------------------------------------------- the queue


def _live(trials: list[FrozenTrial]) -> list[FrozenTrial]:
    """Trials that count toward the budget: all but failed trials that were enqueued again."""
    retried = {t.user_attrs["retry_of"] for t in trials if "retry_of" in t.user_attrs}
    return [t for t in trials if not (t.state == TrialState.FAIL and t.number in retried)]


def _params_key(params: Mapping[str, Any]) -> str:
    return json.dumps(dict(params), sort_keys=True)


DUPLICATE_ATTR = "duplicate_of"  # user attribute of a trial whose design was evaluated before
MAX_REPEATS = 10  # repeats replaced per trial of the budget, at most


def distinct(trials: list[FrozenTrial]) -> list[FrozenTrial]:
    """The trials that evaluated a design, without those that reused an earlier result."""
    return [t for t in trials if DUPLICATE_ATTR not in t.user_attrs]


def _evaluated(study: optuna.Study, params: Mapping[str, Any]) -> FrozenTrial | None:
    """The complete trial that evaluated the design ``params`` (resolved), if any."""
    key = _params_key(params)
    for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        if DUPLICATE_ATTR in t.user_attrs:
            continue
        if _params_key(t.user_attrs.get("params", {})) == key:
            return t
    return None


def _reuse(study: optuna.Study, spec: StudySpec, trial: optuna.Trial,
           original: FrozenTrial) -> TrialState:
    """Record ``trial`` as a repeat of ``original``'s design: same metrics, no evaluation (a
    design's result depends only on the design and the study seed). A waiting trial replaces
    it, so the budget counts distinct designs, while the space has unevaluated designs and at
    most ``MAX_REPEATS * n_trials`` repeats have been replaced (a sampler that has converged
    keeps drawing the same designs)."""
    with deferred_interrupts() as got:
        trial.set_user_attr(DUPLICATE_ATTR, original.number)
        trial.set_user_attr("metrics", original.user_attrs.get("metrics", {}))
        if "breakdown" in original.user_attrs:
            trial.set_user_attr("breakdown", original.user_attrs["breakdown"])
        trial.set_user_attr("duration_s", 0.0)
        state = study.tell(trial, original.values, skip_if_finished=True).state
        trials = study.get_trials(deepcopy=False)
        repeats = len(trials) - len(distinct(trials))
        evaluated = sum(t.state == TrialState.COMPLETE for t in distinct(trials))
        if repeats <= MAX_REPEATS * spec.n_trials and evaluated < spec.space_size():
            study.enqueue_trial({}, user_attrs={"attempt": 1, "replaces": trial.number})
    if got:
        raise KeyboardInterrupt
    return state


def _grid_points(spec: StudySpec, n: int) -> list[dict[str, Any]]:
    """The first ``n`` grid points: all of them in file order, or a seeded random subset
    (a prefix of one permutation, so a larger budget extends a smaller one). A sweep's subset
    always holds its reference design (the point every other one is compared with)."""
    grid = spec.grid()
    if n >= len(grid):
        return grid
    first = 1 if spec.sampler.kind == "sweep" else 0
    order = list(range(first, len(grid)))
    random.Random(spec.study.seed).shuffle(order)
    return [grid[i] for i in sorted(list(range(first)) + order[:n - first])]


def top_up(study: optuna.Study, spec: StudySpec, n_trials: int) -> int:
    """Enqueue waiting trials until the budget ``n_trials`` is covered; returns how many."""
    live = _live(study.get_trials(deepcopy=False))
    added = 0
    if spec.enumerated and spec.search_space():
        have = {_params_key(t.system_attrs.get("fixed_params", t.params)) for t in live}
        for point in _grid_points(spec, n_trials):
            if _params_key(point) not in have:
                study.enqueue_trial(point, user_attrs={"attempt": 1})
                added += 1
    else:  # repeats of an evaluated design do not count (they were replaced)
        for _ in range(n_trials - len(distinct(live))):
            study.enqueue_trial({}, user_attrs={"attempt": 1})
            added += 1
    return added


def _heartbeat_storage(study: optuna.Study) -> BaseHeartbeat:
    """The study's storage as the heartbeat recorder it is: studies run on an RDB storage
    (make_storage), which Optuna wraps in a cache; both implement Optuna's heartbeat API."""
    return cast("BaseHeartbeat", study._storage)


def _pop(study: optuna.Study) -> int | None:
    """Atomically take a waiting trial (state WAITING -> RUNNING) and record this worker on
    it (user attribute ``worker``); its heartbeat row is made first, so a worker that dies
    right after the pop still leaves a trial that goes stale."""
    storage, beat = study._storage, _heartbeat_storage(study)
    for t in study.get_trials(deepcopy=False, states=(TrialState.WAITING,)):
        try:
            if beat.get_heartbeat_interval() is not None:
                beat.record_heartbeat(t._trial_id)
            if storage.set_trial_state_values(t._trial_id, state=TrialState.RUNNING):
                storage.set_trial_user_attr(t._trial_id, "worker", _worker_id())
                return t._trial_id
        except (UpdateFinishedTrialError, StorageInternalError):
            continue
    return None


class _Heartbeat:
    """Records a trial's heartbeat every ``interval`` seconds from a daemon thread."""

    def __init__(self, storage: BaseHeartbeat, trial_id: int, interval: float):
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(storage, trial_id, interval),
                                        daemon=True)

    def _run(self, storage: BaseHeartbeat, trial_id: int, interval: float) -> None:
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


class _Deferring:
    """Signal handler of :func:`deferred_interrupts`: notes the signal in ``pending``;
    ``original`` holds the handlers it replaced."""

    def __init__(self, original: dict[signal.Signals, Any]) -> None:
        self.original = original
        self.pending: list[int] = []

    def __call__(self, signum: int, _frame: object) -> None:
        self.pending.append(signum)


_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@contextlib.contextmanager
def deferred_interrupts() -> Iterator[list[int]]:
    """Hold back Ctrl-C (SIGINT) and a worker's SIGTERM while a block of storage bookkeeping
    runs; yields the list of signals that arrived, for the caller to act on. Outside the main
    thread, or for signals without a Python handler, nothing changes."""
    if threading.current_thread() is not threading.main_thread():
        yield []
        return
    old = {sig: signal.getsignal(sig) for sig in _SIGNALS}
    handler = _Deferring(old)
    for sig, was in old.items():
        if callable(was):
            signal.signal(sig, handler)
    try:
        yield handler.pending
    finally:
        for sig, was in old.items():
            if callable(was):
                signal.signal(sig, was)


@contextlib.contextmanager
def interruptible() -> Iterator[None]:
    """Inside :func:`deferred_interrupts`: let Ctrl-C and SIGTERM interrupt this block (an
    objective, user code) at once, as they would without the deferral; one that arrived
    before raises KeyboardInterrupt on entry. Storage code outside such blocks is never cut
    short: an interrupt inside SQLAlchemy can leave a connection holding the database's write
    lock, and every other connection then waits out the busy timeout."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    handlers = {sig: signal.getsignal(sig) for sig in _SIGNALS}
    deferring = [h for h in handlers.values() if isinstance(h, _Deferring)]
    if not deferring:
        yield
        return
    if deferring[0].pending:
        raise KeyboardInterrupt
    for sig, handler in handlers.items():
        if isinstance(handler, _Deferring):
            signal.signal(sig, handler.original[sig])
    try:
        yield
    finally:
        for sig, handler in handlers.items():
            if isinstance(handler, _Deferring):
                signal.signal(sig, handler)


def fail_interrupted(study: optuna.Study, trial_id: int,
                      why: str = "Ctrl-C or SIGTERM") -> None:
    """Record a trial cut short (by Ctrl-C or SIGTERM, or ``why``) as failed and enqueue it
    again, counting no attempt."""
    storage = study._storage
    with deferred_interrupts(), contextlib.suppress(Exception):
        storage.set_trial_user_attr(trial_id, "error", f"interrupted ({why}); enqueued again")
        if storage.set_trial_state_values(trial_id, state=TrialState.FAIL):
            failed = storage.get_trial(trial_id)
            requeue(study, failed, int(failed.user_attrs.get("attempt", 1)))


def _run_trial(study: optuna.Study, spec: StudySpec, trial_id: int, objective_fn: ObjectiveFn,
               heartbeat_interval: float) -> TrialState:
    """Run the popped trial ``trial_id`` to the end; returns its final state. On Ctrl-C or
    SIGTERM the trial is recorded as failed and enqueued again, then KeyboardInterrupt is
    raised; on a full disk or read-only file system likewise, then :class:`StorageError`."""
    storage = study._storage
    number = storage.get_trial(trial_id).number
    study.sampler = _make_sampler(spec, trial_seed(spec.study.seed, number))
    out = spec.output_dir
    ctx = TrialContext(number=number, seed=spec.study.seed,
                       trial_dir=out / "trials" / f"{number:05d}", cache_dir=out / "cache")
    with _Heartbeat(_heartbeat_storage(study), trial_id, heartbeat_interval):
        start = time.perf_counter()
        try:
            trial = optuna.Trial(study, trial_id)
            trial.set_user_attr("seed", spec.study.seed)
            params = spec.resolve(_suggest(trial, spec))
            trial.set_user_attr("params", params)
            trial.set_user_attr("technology", spec.technology(params["device"]))
            if (original := _evaluated(study, params)) is not None:
                return _reuse(study, spec, trial, original)
            ctx.trial_dir.mkdir(parents=True, exist_ok=True)
            ctx.cache_dir.mkdir(parents=True, exist_ok=True)
            with interruptible():
                result = objective_fn(spec, params, ctx)
            metrics, breakdown = _metrics(result, spec)
            values = [metrics[o.key] for o in spec.objectives]
        except KeyboardInterrupt:
            fail_interrupted(study, trial_id)
            raise
        except Exception as e:
            if (what := storage_fault(e, DISK_FAULTS)) is not None:  # not the design's fault
                fail_interrupted(study, trial_id, what)
                raise StorageError(storage_message(spec, what)) from None
            with deferred_interrupts() as got:
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
        with deferred_interrupts() as got:  # a finished trial is recorded in full
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


def reap(study: optuna.Study, max_retries: int) -> None:
    """Fail trials whose worker stopped sending heartbeats, with the reason; they are enqueued
    again up to ``max_retries`` times."""
    storage, beat = study._storage, _heartbeat_storage(study)
    interval = beat.get_heartbeat_interval()
    if interval is None:
        return
    with deferred_interrupts() as got:
        for trial_id in beat._get_stale_trial_ids(study._study_id):
            worker = storage.get_trial(trial_id).user_attrs.get("worker", "unknown")
            grace = (getattr(getattr(storage, "_backend", storage), "grace_period", None)
                     or 2 * interval)
            fail_crashed(study, trial_id, f"worker {worker} stopped during the trial (no "
                         f"heartbeat for {grace} s): killed, e.g. out of memory, or its "
                         "machine stopped", max_retries)
    if got:
        raise KeyboardInterrupt


def work(study: optuna.Study, spec: StudySpec, objective_fn: ObjectiveFn, *,
         heartbeat_interval: float, poll_interval: float, max_retries: int) -> int:
    """Pop and run trials until none is waiting or running; returns how many were run.
    Ctrl-C or SIGTERM interrupts the objective at once and the bookkeeping between trials at
    the next step (:func:`interruptible`)."""
    ran = 0
    with deferred_interrupts() as got:
        while not got:
            reap(study, max_retries)
            trial_id = _pop(study)
            if got:
                if trial_id is not None:
                    fail_interrupted(study, trial_id)
                break
            if trial_id is None:
                if not study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
                    return ran
                time.sleep(poll_interval)
                continue
            try:
                _run_trial(study, spec, trial_id, objective_fn, heartbeat_interval)
            except BaseException:  # Ctrl-C, storage faults
                fail_interrupted(study, trial_id)  # no-op for a trial already recorded
                raise
            ran += 1
    raise KeyboardInterrupt
