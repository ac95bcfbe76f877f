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
  worker died is marked failed with the reason (user attribute ``error``) and enqueued again
  with the same parameters, at most ``max_retries`` times (a poison design that kills every
  worker, e.g. out of memory, ends as failed and the study goes on). Local workers are child
  processes watched by the process that started them, which sees at once how one died (the
  signal); a worker elsewhere is taken as dead when its trial shows no heartbeat for
  ``grace_period`` s. A trial interrupted by Ctrl-C or SIGTERM is marked failed and enqueued
  again at once, without counting an attempt. Re-running a study therefore continues it:
  finished trials are kept and never repeated; ``retry_failed`` runs failed designs again.
- A trial whose objective raises is recorded as failed with the error (user attributes
  ``error`` and ``traceback``) and the study goes on. A full disk or a read-only output folder
  or database is not the design's fault: the trial is enqueued again and the run stops with a
  :class:`StorageError` (a ``ConfigError``: exit code 2 at the command line).
- One output folder holds one study: a second, different study (another name or storage) is
  refused, so study files, trial folders and reports never mix.
- Child workers end with the process that started them, even when it is killed (a watchdog
  thread in each; Linux ``PR_SET_PDEATHSIG`` too): their running trials are enqueued again.
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
import os
import pickle
import shutil
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from memxbar.errors import ConfigError
from memxbar.studies.files import path_kind
from memxbar.studies.spec import (
    StudySpec,
    check_storage_url,
    load_spec,
    parse_spec,
    resolve_study,
)
from memxbar.studies.trials import (
    DUPLICATE_ATTR,
    SPEC_ATTR,
    ObjectiveFn,
    StorageError,
    TrialContext,
    _live,
    design_of,
    distinct,
    hide_password,
    make_storage,
    objective_identity,
    open_study,
    reap,
    requeue,
    sqlite_file,
    storage_faults,
    top_up,
    trial_seed,
    work,
)
from memxbar.studies.workers import _run_workers

DEFAULT_MAX_RETRIES = 2  # runs of a design whose worker died, after the first
EXIT_FAILED_DESIGNS = 3  # exit code of `memxbar study run` when designs failed
MANIFEST = "study.json"
# local worker processes per CPU at most: trials are CPU-bound, and each worker holds its own
# torch (~0.3 GB), so 10**6 of them was a fork bomb rather than a study
WORKERS_PER_CPU = 4
MAX_POLL_INTERVAL = 3600.0  # s between checks of the workers and the progress line


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
    # failed designs, not run again: {"number", "params", "attempt", "error"}
    failures: list[dict[str, Any]] = field(default_factory=list)
    reused: int = 0  # trials that drew an evaluated design again and reused its result

    def describe(self) -> str:
        """A few lines for the console."""
        repeats = (f"; {self.reused} repeated designs reused, not evaluated again"
                   if self.reused else "")
        lines = [f"study {self.name!r}: {self.complete} of {self.n_trials} designs complete, "
                 f"{self.failed} failed, {self.remaining} waiting or running "
                 f"({self.ran} run here in {self.elapsed_s:.1f} s{repeats})",
                 f"storage {self.storage}; output {self.output}"]
        if self.best:
            lines.append(f"best ({len(self.best)} Pareto-optimal):")
            for b in self.best[:10]:
                values = ", ".join(f"{k} {v:.4g}" for k, v in b.items()
                                   if k not in ("number", "params"))
                params = " ".join(f"{k}={v}" for k, v in b["params"].items())
                lines.append(f"  #{b['number']} {params}: {values}")
        lines += [f"worker error: {e}" for e in self.worker_errors]
        if self.failures:
            lines.append(f"failed designs ({len(self.failures)}):")
            for f in self.failures[:20]:
                params = " ".join(f"{k}={v}" for k, v in f["params"].items())
                lines.append(f"  #{f['number']} {params}: {f['error']}")
            if len(self.failures) > 20:
                lines.append(f"  ... and {len(self.failures) - 20} more (see the report)")
            lines.append("run again with --retry-failed to retry them")
        if self.remaining:
            lines.append("run the same command again to continue")
        lines.append(f"report: memxbar study report {self.output}")
        return "\n".join(lines)


# --------------------------------------------------------------------------- progress


def _fmt(value: float) -> str:
    return f"{value:.4g}"


class _Progress:
    """Progress of a running study, read from the storage every ``interval`` s by a thread.

    On a terminal: one status line, rewritten in place and fitted to the terminal's width
    (count, failures, elapsed time and ETA first; the best value per objective as room allows,
    so 80 columns keep the count and the ETA). Not on a terminal (piped, a log file): one line
    per finished trial, with its outcome and the count so far."""

    def __init__(self, study: optuna.Study, spec: StudySpec, enabled: bool,
                 interval: float, stream: Any = None) -> None:
        self.study, self.spec, self.enabled, self.interval = study, spec, enabled, interval
        self.stream = stream if stream is not None else sys.stdout
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._refresh, daemon=True)
        self._seen: set[int] = set()
        self._start = time.monotonic()
        self._done_at_start = 0

    def __enter__(self) -> _Progress:
        if self.enabled:
            trials = self.study.get_trials(deepcopy=False)
            self._seen = {t.number for t in trials if t.state.is_finished()}
            self._done_at_start = len([t for t in distinct(_live(trials))
                                       if t.state.is_finished()])
            self._start = time.monotonic()
            self._update()
            self._thread.start()
        return self

    def _best(self, complete: list[FrozenTrial]) -> list[str]:
        best = []
        for i, obj in enumerate(self.spec.objectives):
            vals = [t.values[i] for t in complete]
            if vals:
                pick = max(vals) if obj.sense == "maximize" else min(vals)
                best.append(f"{obj.label} {_fmt(pick)}")
        return best

    def status(self, trials: list[FrozenTrial], width: int) -> str:
        """The status line for ``trials``, at most ``width`` characters."""
        live = distinct(_live(trials))
        done = [t for t in live if t.state.is_finished()]
        n_fail = sum(t.state == TrialState.FAIL for t in done)
        total = max(self.spec.n_trials, len(live))
        elapsed = time.monotonic() - self._start
        ran = len(done) - self._done_at_start
        eta = "ETA --:--" if ran <= 0 else f"ETA {_clock(elapsed / ran * (total - len(done)))}"
        head = [f"{len(done)}/{total} designs"] + ([f"{n_fail} failed"] if n_fail else [])
        head += [_clock(elapsed), eta]
        line = " ".join(head)
        name = self.spec.name
        room = width - len(line) - 1
        if room >= 4:
            line = (name if len(name) <= room else name[: room - 1] + "…") + " " + line
        for part in self._best([t for t in done if t.state == TrialState.COMPLETE]):
            if len(line) + 3 + len(part) > width:
                break
            line += (" | " if "|" not in line else ", ") + part
        return line[:width]

    def _finished_line(self, t: FrozenTrial, trials: list[FrozenTrial], later: int = 0) -> str:
        """The line of finished trial ``t``; ``later``: how many designs (reused results not
        counted) that finished since the last update are listed after it (each line counts the
        designs done up to itself)."""
        done = len([u for u in distinct(_live(trials)) if u.state.is_finished()]) - later
        total = max(self.spec.n_trials, len(distinct(_live(trials))))
        if t.state == TrialState.COMPLETE:
            values = ", ".join(f"{o.label} {_fmt(v)}"
                               for o, v in zip(self.spec.objectives, t.values, strict=True))
            what = (f"repeats design #{t.user_attrs[DUPLICATE_ATTR]} (result reused)"
                    if DUPLICATE_ATTR in t.user_attrs else "complete")
            outcome = f"{what}: {values}"
        else:
            outcome = f"failed: {t.user_attrs.get('error', 'unknown error')}"
        return f"trial {t.number} {outcome} [{done}/{total} designs]"

    def _update(self) -> None:
        trials = self.study.get_trials(deepcopy=False)
        if self.tty:
            width = max(shutil.get_terminal_size((80, 24)).columns - 1, 20)
            self.stream.write("\r" + self.status(trials, width).ljust(width))
        else:
            new = [t for t in sorted(trials, key=lambda u: u.number)
                   if t.state.is_finished() and t.number not in self._seen]
            designs = {u.number for u in distinct(_live(trials))}
            for j, t in enumerate(new):
                self._seen.add(t.number)
                later = sum(u.number in designs for u in new[j + 1:])  # listed after this line
                self.stream.write(self._finished_line(t, trials, later) + "\n")
        self.stream.flush()

    def _refresh(self) -> None:
        while not self._stop.wait(self.interval):
            with contextlib.suppress(Exception):  # a failed read is retried next interval
                self._update()

    def __exit__(self, *exc: object) -> None:
        if self.enabled:
            self._stop.set()
            self._thread.join()
            with contextlib.suppress(Exception):
                self._update()
            if self.tty:
                self.stream.write("\n")
                self.stream.flush()


def _clock(seconds: float) -> str:
    """``h:mm:ss`` (or ``m:ss`` under an hour)."""
    s = int(max(seconds, 0.0))
    h, rest = divmod(s, 3600)
    return f"{h}:{rest // 60:02d}:{rest % 60:02d}" if h else f"{rest // 60}:{rest % 60:02d}"


# --------------------------------------------------------------------------- public API


def _default_objective(spec: StudySpec, params: dict[str, Any], ctx: TrialContext) -> Any:
    """memxbar's hardware evaluation, ``memxbar.studies.evaluate.evaluate_design``."""
    from memxbar.studies.evaluate import evaluate_design

    return evaluate_design(spec, params, cache_dir=ctx.cache_dir, seed=ctx.seed)


def _objective(objective_fn: ObjectiveFn | None) -> ObjectiveFn:
    if objective_fn is not None:
        if not callable(objective_fn):
            raise ConfigError(f"objective_fn = {objective_fn!r}; allowed: None (the hardware "
                              "evaluation) or a function (spec, params, context) -> metrics")
        return objective_fn
    try:
        from memxbar.studies import evaluate  # noqa: F401
    except ImportError as e:
        raise ConfigError(f"the hardware evaluation memxbar.studies.evaluate cannot be imported "
                         f"({e})") from None
    return _default_objective


def _claim_folder(spec: StudySpec, source: Path) -> None:
    """Refuse a second, different study in the output folder: its ``study.json`` names another
    study or storage, or its SQLite file already holds another study."""
    out = spec.output_dir
    here = f"study {spec.name!r} (from {source})"
    name: str | None
    url: str | None
    try:
        info = json.loads((out / MANIFEST).read_text(encoding="utf-8"))
        name, url = str(info["name"]), str(info["storage"])
    except (OSError, ValueError, KeyError, TypeError):  # none yet, or unreadable: unclaimed
        name = url = None
    if name is not None and name != spec.name:
        raise ConfigError(f"output folder {out} already holds study {name!r} (from "
                          f"{info.get('study_file', '?')}); {here} needs its own folder: set "
                          "[study] output or pass --output")
    if url is not None and url != hide_password(spec.storage_url):
        raise ConfigError(f"output folder {out} holds study {name!r} stored in {url}; this run "
                          f"stores {here} in {hide_password(spec.storage_url)}: pass --storage "
                          "with the recorded URL to continue it, or use another output folder")
    db = out / "study.db"
    if spec.storage_url == f"sqlite:///{db}" and db.is_file():
        import sqlite3

        try:
            with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as c:
                names = [r[0] for r in c.execute("SELECT study_name FROM studies")]
        except sqlite3.Error:
            names = []
        others = sorted(set(names) - {spec.name})
        if others:
            raise ConfigError(f"output folder {out}: its study.db already holds "
                              f"{', '.join(map(repr, others))}; {here} needs its own folder: "
                              "set [study] output or pass --output")
    file = sqlite_file(spec.storage_url)
    if file is not None:  # a database in another study's folder
        home = file.parent
        try:
            owner = str(json.loads((home / MANIFEST).read_text(encoding="utf-8"))["name"])
        except (OSError, ValueError, KeyError, TypeError):
            owner = None
        if owner is not None and owner != spec.name and home.resolve() != out.resolve():
            raise ConfigError(f"storage {spec.storage_url} lies in the output folder {home} of "
                              f"study {owner!r}; {here} needs its own database: leave [study] "
                              "storage out (its own output folder's study.db) or name another "
                              "file")


def _claim_output(spec: StudySpec, source: Path) -> None:
    """Make the study's output folder, refused if it holds another study."""
    out = spec.output_dir
    try:
        out.mkdir(parents=True, exist_ok=True)
    except (FileNotFoundError, NotADirectoryError, FileExistsError) as e:  # under /proc, or
        # a file of that name (a full disk or a read-only folder is a StorageError, from
        # storage_faults)
        raise ConfigError(f"output folder {out} cannot be made ({e.strerror}); allowed: a "
                          "folder you can write to") from None
    _claim_folder(spec, source)


def _write_manifest(spec: StudySpec, source: Path) -> None:
    """Record the study in its output folder, once its storage accepted it: ``study.json``
    (name, storage, study file) and a copy of the study file, each written whole or not at
    all."""
    out = spec.output_dir
    manifest = {"name": spec.name, "storage": hide_password(spec.storage_url),
                "study_file": str(source.resolve()), "written": datetime.now().isoformat()}
    for name, write in ((MANIFEST, lambda p: p.write_text(json.dumps(manifest, indent=2) + "\n",
                                                          encoding="utf-8")),
                        ("study.toml", lambda p: shutil.copyfile(source, p))):
        target = out / name
        if name == "study.toml" and target.exists() and target.samefile(source):
            continue
        tmp = out / f".{name}.{os.getpid()}.tmp"
        try:
            write(tmp)
            os.replace(tmp, target)
        finally:
            with contextlib.suppress(OSError):
                tmp.unlink()


def _failures(live: list[FrozenTrial]) -> list[dict[str, Any]]:
    return [{"number": t.number, "params": design_of(t),
             "attempt": t.user_attrs.get("attempt", 1),
             "error": str(t.user_attrs.get("error", "worker stopped during the trial"))}
            for t in live if t.state == TrialState.FAIL]


def _summary(study: optuna.Study, spec: StudySpec, ran: int, elapsed: float,
             errors: list[str]) -> RunSummary:
    trials = study.get_trials(deepcopy=False)
    live = distinct(_live(trials))
    best = []
    complete = [t for t in live if t.state == TrialState.COMPLETE]
    if complete:
        for t in study.best_trials:
            if DUPLICATE_ATTR in t.user_attrs:  # the same design is listed once
                continue
            best.append({"number": t.number, "params": dict(t.params),
                         **{o.label: v for o, v in zip(spec.objectives, t.values, strict=True)}})
    failures = _failures(live)
    return RunSummary(
        name=spec.name, storage=hide_password(spec.storage_url), output=spec.output_dir,
        n_trials=spec.n_trials, complete=len(complete), failed=len(failures),
        remaining=sum(t.state in (TrialState.WAITING, TrialState.RUNNING) for t in live),
        ran=ran, elapsed_s=elapsed, best=best, worker_errors=errors, failures=failures,
        reused=sum(DUPLICATE_ATTR in t.user_attrs for t in trials))


def _prepare(path: str | Path, trials: int | None, storage: str | None,
             output: str | Path | None,
             code_path: list[str] | None = None) -> tuple[StudySpec, Path]:
    source = resolve_study(path)
    spec = load_spec(source, code_path=code_path)
    changes: dict[str, Any] = {}
    if trials is not None:
        changes["trials"] = trials
    if storage is not None:
        changes["storage"] = storage
    if output is not None:
        changes["output"] = str(Path(output).expanduser().resolve())
    return (spec.with_study(source=str(source), **changes) if changes else spec), source


def _check_options(heartbeat_interval: int, grace_period: int, poll_interval: float,
                   max_retries: int, code_path: list[str] | None, **flags: object) -> None:
    """The run options shared by :func:`run_study` and :func:`join_worker`; ``flags`` are
    booleans (None allowed for ``in_process``)."""
    if not (isinstance(heartbeat_interval, int) and isinstance(grace_period, int)
            and 0 < heartbeat_interval < grace_period):
        raise ConfigError(f"heartbeat_interval = {heartbeat_interval!r}, grace_period = "
                         f"{grace_period!r}; allowed: integers with 0 < interval < grace")
    if isinstance(max_retries, bool) or not isinstance(max_retries, int) or not (
            0 <= max_retries <= 100):
        raise ConfigError(f"max_retries = {max_retries!r}; allowed: an integer in 0..100")
    if isinstance(poll_interval, bool) or not isinstance(poll_interval, (int, float)) or not (
            0 < poll_interval <= MAX_POLL_INTERVAL):
        raise ConfigError(f"poll_interval = {poll_interval!r}; allowed: seconds in "
                          f"(0, {MAX_POLL_INTERVAL:g}]")
    if code_path is not None and not (isinstance(code_path, (list, tuple)) and all(
            isinstance(p, (str, Path)) for p in code_path)):
        raise ConfigError(f"code_path = {code_path!r}; allowed: None or a list of folders")
    for name, value in flags.items():
        if not (isinstance(value, bool) or (value is None and name == "in_process")):
            raise ConfigError(f"{name} = {value!r}; allowed: True or False")


def requeue_failed(study: optuna.Study) -> int:
    """Enqueue every failed design of ``study`` again (attempt 1); returns how many."""
    failed = [t for t in _live(study.get_trials(deepcopy=False)) if t.state == TrialState.FAIL]
    for t in failed:
        requeue(study, t, 1)
    return len(failed)


def run_study(path: str | Path, trials: int | None = None, workers: int = 1,
              storage: str | None = None, objective_fn: ObjectiveFn | None = None, *,
              output: str | Path | None = None, progress: bool = True,
              heartbeat_interval: int = 10, grace_period: int = 60,
              poll_interval: float = 1.0, max_retries: int = DEFAULT_MAX_RETRIES,
              retry_failed: bool = False, in_process: bool | None = None,
              code_path: list[str] | None = None) -> RunSummary:
    """Run (or continue) the study of a study file with ``workers`` local processes.

    ``path``: a study file or a ready-made study's name. ``trials``, ``storage``, ``output``
    override ``[study]``. ``workers = 0`` only creates the study and enqueues its budget (for
    remote :func:`join_worker` processes). Workers are child processes watched by this one
    (``objective_fn`` must then be a module-level function, and a calling script needs the
    ``if __name__ == "__main__":`` guard); ``in_process`` (default: when ``workers == 1``)
    runs the one worker in this process instead, where a trial that kills its process ends
    the run. The trial budget is topped up first, so running the same file again continues
    the study. ``objective_fn`` defaults to ``memxbar.studies.evaluate.evaluate_design``.
    A trial whose worker dies (a signal, e.g. SIGKILL from the out-of-memory killer, or no
    heartbeat for ``grace_period`` s, interval ``heartbeat_interval`` s) is recorded as
    failed with the reason and enqueued again, up to ``max_retries`` times.
    ``retry_failed`` enqueues the failed designs again first. ``code_path``: more folders to
    find the study's ``"module:function"`` code in (after the study file's folder); a custom
    ``objective_fn`` is recorded (name and source hash), and a study run with another one is
    refused. Raises :class:`StorageError`
    (a ``ConfigError``) on a full disk or read-only storage, keeping every finished trial.
    Returns a :class:`RunSummary` (``failed`` > 0: designs failed).
    """
    most = WORKERS_PER_CPU * (os.cpu_count() or 1)
    if isinstance(workers, bool) or not isinstance(workers, int) or not 0 <= workers <= most:
        raise ConfigError(f"workers = {workers!r}; allowed: an integer from 0 to {most} "
                          f"({WORKERS_PER_CPU} per CPU here; more machines join with "
                          "join_worker)")
    _check_options(heartbeat_interval, grace_period, poll_interval, max_retries, code_path,
                   progress=progress, retry_failed=retry_failed, in_process=in_process)
    if in_process is None:
        in_process = workers == 1
    if in_process and workers > 1:
        raise ConfigError(f"in_process = True with workers = {workers}; allowed: workers <= 1")
    objective_fn = _objective(objective_fn)
    spec, source = _prepare(path, trials, storage, output, code_path)
    if workers > 0 and not in_process:
        try:
            pickle.dumps(objective_fn)
        except (pickle.PicklingError, AttributeError, TypeError) as e:
            raise ConfigError(f"objective_fn cannot be sent to worker processes ({e}); use a "
                             "module-level function, or workers = 1") from None
    opts = {"heartbeat_interval": heartbeat_interval, "grace_period": grace_period,
            "poll_interval": poll_interval, "max_retries": max_retries}
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    with storage_faults(spec):
        _claim_output(spec, source)
        db = make_storage(spec.storage_url, heartbeat_interval=heartbeat_interval,
                          grace_period=grace_period)
        study, _ = open_study(spec, db, create=True, objective=objective_identity(objective_fn),
                              check_objective=True)
        _write_manifest(spec, source)
        reap(study, max_retries)
        if retry_failed:
            requeue_failed(study)
        top_up(study, spec, spec.n_trials)
        start = time.perf_counter()
        if workers == 0:
            return _summary(study, spec, 0, 0.0, [])
        with _Progress(study, spec, progress, poll_interval):
            if in_process:
                errors: list[str] = []
                ran = work(study, spec, objective_fn, heartbeat_interval=heartbeat_interval,
                           poll_interval=poll_interval, max_retries=max_retries)
            else:
                ran, errors = _run_workers(study, spec, objective_fn, workers, opts)
        return _summary(study, spec, ran, time.perf_counter() - start, errors)


def join_worker(path: str | Path, storage: str, objective_fn: ObjectiveFn | None = None, *,
                output: str | Path | None = None, progress: bool = True,
                heartbeat_interval: int = 10, grace_period: int = 60,
                poll_interval: float = 1.0, max_retries: int = DEFAULT_MAX_RETRIES,
                code_path: list[str] | None = None) -> RunSummary:
    """Join the study of a study file on a shared storage (e.g. from another machine) and run
    its waiting trials in this process until none is waiting or running. Creates the study
    (and enqueues its budget) only if it does not exist yet. Trial folders and the model
    cache go to the study's output folder on this machine. ``max_retries``: runs again of a
    design whose worker died (seen by its missing heartbeat)."""
    _check_options(heartbeat_interval, grace_period, poll_interval, max_retries, code_path,
                   progress=progress)
    objective_fn = _objective(objective_fn)
    spec, source = _prepare(path, None, storage, output, code_path)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    with storage_faults(spec):
        _claim_output(spec, source)
        db = make_storage(spec.storage_url, heartbeat_interval=heartbeat_interval,
                          grace_period=grace_period)
        study, created = open_study(spec, db, create=True,
                                    objective=objective_identity(objective_fn),
                                    check_objective=True)
        _write_manifest(spec, source)
        if created:
            top_up(study, spec, spec.n_trials)
        start = time.perf_counter()
        with _Progress(study, spec, progress, poll_interval):
            ran = work(study, spec, objective_fn, heartbeat_interval=heartbeat_interval,
                       poll_interval=poll_interval, max_retries=max_retries)
        return _summary(study, spec, ran, time.perf_counter() - start, [])


def locate_study(folder: str | Path, storage: str | None = None) -> tuple[str, str]:
    """``(storage URL, study name)`` of a study's output folder (from its ``study.json``);
    ``storage`` overrides the URL (needed when the recorded one hides a password)."""
    folder = Path(folder)
    manifest = folder / MANIFEST
    if path_kind(manifest, "study output folder") != "file":
        raise ConfigError(f"{folder} is not a study output folder (no {MANIFEST}); give the "
                         "folder that `memxbar study run` wrote")
    try:
        info = json.loads(manifest.read_text(encoding="utf-8"))
        name, url = str(info["name"]), str(info["storage"])
    except (ValueError, KeyError, TypeError) as e:
        raise ConfigError(f"{manifest}: unreadable ({e})") from None
    if storage is not None:
        return check_storage_url(storage), name
    if "***" in url:
        raise ConfigError(f"the storage of study {name!r} ({url}) needs a password; pass it with "
                         "--storage URL")
    return url, name


def _existing_sqlite(url: str) -> None:
    """Refuse an SQLite storage whose file does not exist (opening it would create an empty
    database, and a report of it has nothing to show)."""
    file = sqlite_file(url)
    if file is not None and not file.is_file():
        raise ConfigError(f"storage {url}: no such database file; allowed: the storage of a "
                          "study that has run (its output folder's study.json names it)")


def load_study(folder: str | Path, storage: str | None = None) -> tuple[optuna.Study,
                                                                         StudySpec]:
    """The Optuna study of an output folder and its study file (read from the storage)."""
    url, name = locate_study(folder, storage)
    _existing_sqlite(url)
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
    _existing_sqlite(url)
    try:
        import optuna_dashboard
    except ImportError:
        raise ConfigError("optuna-dashboard is not installed; install it with `pip install "
                         f"optuna-dashboard`, then run again (storage: {hide_password(url)}, "
                         f"study {name!r})") from None
    print(f"optuna-dashboard for study {name!r} at http://{host}:{port} (Ctrl-C to stop)")
    optuna_dashboard.run_server(url, host=host, port=port)


__all__ = ["DEFAULT_MAX_RETRIES", "EXIT_FAILED_DESIGNS", "RunSummary", "StorageError",
           "TrialContext", "join_worker", "load_study",
           "locate_study", "make_storage", "open_dashboard", "open_study", "requeue_failed",
           "run_study", "top_up", "trial_seed"]
