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
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from memxbar.errors import ConfigError
from memxbar.studies.spec import StudySpec, load_spec, parse_spec, resolve_study
from memxbar.studies.trials import (
    SPEC_ATTR,
    ObjectiveFn,
    StorageError,
    TrialContext,
    _live,
    design_of,
    hide_password,
    make_storage,
    open_study,
    reap,
    requeue,
    storage_faults,
    top_up,
    trial_seed,
    work,
)
from memxbar.studies.workers import _run_workers

DEFAULT_MAX_RETRIES = 2  # runs of a design whose worker died, after the first
EXIT_FAILED_DESIGNS = 3  # exit code of `memxbar study run` when designs failed
MANIFEST = "study.json"


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
    from memxbar.studies.evaluate import evaluate_design  # type: ignore[import-not-found]

    return evaluate_design(spec, params, cache_dir=ctx.cache_dir, seed=ctx.seed)


def _objective(objective_fn: ObjectiveFn | None) -> ObjectiveFn:
    if objective_fn is not None:
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


def _write_manifest(spec: StudySpec, source: Path) -> None:
    """Record the study in its output folder: ``study.json`` (name, storage, study file) and a
    copy of the study file, each written whole or not at all."""
    out = spec.output_dir
    out.mkdir(parents=True, exist_ok=True)
    _claim_folder(spec, source)
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
    live = _live(study.get_trials(deepcopy=False))
    best = []
    complete = [t for t in live if t.state == TrialState.COMPLETE]
    if complete:
        for t in study.best_trials:
            best.append({"number": t.number, "params": dict(t.params),
                         **{o.label: v for o, v in zip(spec.objectives, t.values, strict=True)}})
    failures = _failures(live)
    return RunSummary(
        name=spec.name, storage=hide_password(spec.storage_url), output=spec.output_dir,
        n_trials=spec.n_trials, complete=len(complete), failed=len(failures),
        remaining=sum(t.state in (TrialState.WAITING, TrialState.RUNNING) for t in live),
        ran=ran, elapsed_s=elapsed, best=best, worker_errors=errors, failures=failures)


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


def _check_retries(max_retries: int) -> None:
    if isinstance(max_retries, bool) or not isinstance(max_retries, int) or not (
            0 <= max_retries <= 100):
        raise ConfigError(f"max_retries = {max_retries!r}; allowed: an integer in 0..100")


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
              retry_failed: bool = False, in_process: bool | None = None) -> RunSummary:
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
    ``retry_failed`` enqueues the failed designs again first. Raises :class:`StorageError`
    (a ``ConfigError``) on a full disk or read-only storage, keeping every finished trial.
    Returns a :class:`RunSummary` (``failed`` > 0: designs failed).
    """
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 0:
        raise ConfigError(f"workers = {workers!r}; allowed: an integer >= 0")
    if not (isinstance(heartbeat_interval, int) and isinstance(grace_period, int)
            and 0 < heartbeat_interval < grace_period):
        raise ConfigError(f"heartbeat_interval = {heartbeat_interval!r}, grace_period = "
                         f"{grace_period!r}; allowed: integers with 0 < interval < grace")
    _check_retries(max_retries)
    if in_process is None:
        in_process = workers == 1
    if in_process and workers > 1:
        raise ConfigError(f"in_process = True with workers = {workers}; allowed: workers <= 1")
    objective_fn = _objective(objective_fn)
    spec, source = _prepare(path, trials, storage, output)
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
        _write_manifest(spec, source)
        db = make_storage(spec.storage_url, heartbeat_interval=heartbeat_interval,
                          grace_period=grace_period)
        study, _ = open_study(spec, db, create=True)
        reap(study, max_retries)
        if retry_failed:
            requeue_failed(study)
        top_up(study, spec, spec.n_trials)
        start = time.perf_counter()
        if workers == 0:
            return _summary(study, spec, 0, 0.0, [])
        with _Progress(study, spec, progress, poll_interval):
            if in_process:
                errors = []
                ran = work(study, spec, objective_fn, heartbeat_interval=heartbeat_interval,
                           poll_interval=poll_interval, max_retries=max_retries)
            else:
                ran, errors = _run_workers(study, spec, objective_fn, workers, opts)
        return _summary(study, spec, ran, time.perf_counter() - start, errors)


def join_worker(path: str | Path, storage: str, objective_fn: ObjectiveFn | None = None, *,
                output: str | Path | None = None, progress: bool = True,
                heartbeat_interval: int = 10, grace_period: int = 60,
                poll_interval: float = 1.0, max_retries: int = DEFAULT_MAX_RETRIES
                ) -> RunSummary:
    """Join the study of a study file on a shared storage (e.g. from another machine) and run
    its waiting trials in this process until none is waiting or running. Creates the study
    (and enqueues its budget) only if it does not exist yet. Trial folders and the model
    cache go to the study's output folder on this machine. ``max_retries``: runs again of a
    design whose worker died (seen by its missing heartbeat)."""
    _check_retries(max_retries)
    objective_fn = _objective(objective_fn)
    spec, source = _prepare(path, None, storage, output)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    with storage_faults(spec):
        _write_manifest(spec, source)
        db = make_storage(spec.storage_url, heartbeat_interval=heartbeat_interval,
                          grace_period=grace_period)
        study, created = open_study(spec, db, create=True)
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


__all__ = ["DEFAULT_MAX_RETRIES", "EXIT_FAILED_DESIGNS", "RunSummary", "StorageError",
           "TrialContext", "join_worker", "load_study",
           "locate_study", "make_storage", "open_dashboard", "open_study", "requeue_failed",
           "run_study", "top_up", "trial_seed"]
