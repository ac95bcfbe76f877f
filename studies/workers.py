"""Local worker processes of a study, watched by the process that started them.

Each worker is a child process (forkserver, else spawn) that pops and runs trials
(:func:`.trials.work`). The parent sees how a worker ended: the trial of one killed by a signal
(SIGKILL from the out-of-memory killer, say) is recorded with that reason and enqueued again up
to ``max_retries`` times, and a new worker takes its place. Workers leave Ctrl-C to the parent
(which sends them SIGTERM) and end with it, even when it is killed (a watchdog thread, and
``PR_SET_PDEATHSIG`` where it applies).
"""

from __future__ import annotations

import contextlib
import ctypes
import multiprocessing as mp
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import TrialState

from memxbar.errors import ConfigError
from memxbar.studies.spec import StudySpec
from memxbar.studies.trials import (
    ObjectiveFn,
    StorageError,
    deferred_interrupts,
    fail_crashed,
    fail_interrupted,
    make_storage,
    open_study,
    storage_fault,
    storage_message,
    work,
)


def _exit_reason(exitcode: int | None) -> str:
    """Why a worker process ended, from its exit code (negative: the signal that killed it)."""
    if exitcode is not None and exitcode < 0:
        try:
            name = signal.Signals(-exitcode).name
        except ValueError:
            name = "unknown signal"
        text = f"worker process killed by signal {-exitcode} ({name})"
        if -exitcode == signal.SIGKILL:
            text += ", likely out of memory (the kernel's OOM killer sends SIGKILL)"
        return text
    return f"worker process exited with code {exitcode}"


def _sigterm(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def _start_time(pid: int) -> str | None:
    """Start time of process ``pid`` (Linux, /proc), to tell it from a later one with its pid;
    None where /proc is missing; "" when the process has ended (gone or a zombie)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return "" if Path("/proc/self/stat").exists() else None
    except OSError:
        return None
    return "" if fields[0] in ("Z", "X") else fields[19]


def _alive(pid: int, started: str | None) -> bool:
    if started is not None:
        now = _start_time(pid)
        return now is not None and now != "" and now == started
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists
        pass
    return True


def _watch_parent(parent_pid: int, interval: float) -> None:
    """Send this process SIGTERM once process ``parent_pid`` has ended (also while it is a
    zombie, and not fooled by a new process with its pid)."""
    started = _start_time(parent_pid)
    while _alive(parent_pid, started):
        time.sleep(interval)
    os.kill(os.getpid(), signal.SIGTERM)


def _die_with_parent(parent_pid: int) -> None:
    """End this worker (SIGTERM: its trial is enqueued again) when ``parent_pid`` ends, even
    by SIGKILL: a watchdog thread, and on Linux ``prctl(PR_SET_PDEATHSIG)`` too, which helps
    only where this process's parent is ``parent_pid`` itself (spawn): a forkserver outlives
    the parent while its workers live (each holds the parent's end of its alive pipe)."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)
    threading.Thread(target=_watch_parent, args=(parent_pid, 0.5), daemon=True,
                     name="memxbar-parent-watchdog").start()


def _tell(outbox: Any, message: tuple[str, Any]) -> None:
    with contextlib.suppress(OSError):  # the parent is gone: no one to tell
        outbox.send(message)


def _worker_main(spec: StudySpec, url: str, objective_fn: ObjectiveFn, opts: dict[str, Any],
                 threads: int, parent_pid: int, outbox: Any) -> None:
    """Entry point of a worker process started by :func:`run_study`. Ctrl-C is left to the
    parent, which sends SIGTERM; the worker ends with its parent. Reports ``(kind, value)``
    tuples on ``outbox``: ("done", trials run), ("interrupted", 0), ("error", text),
    ("storage", message)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _sigterm)
    try:
        _die_with_parent(parent_pid)
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        with contextlib.suppress(ImportError):
            import torch

            torch.set_num_threads(threads)
        storage = make_storage(url, heartbeat_interval=opts["heartbeat_interval"],
                               grace_period=opts["grace_period"])
        study, _ = open_study(spec, storage, create=False)
        ran = work(study, spec, objective_fn, heartbeat_interval=opts["heartbeat_interval"],
                   poll_interval=opts["poll_interval"], max_retries=opts["max_retries"])
        _tell(outbox, ("done", ran))
    except KeyboardInterrupt:
        _tell(outbox, ("interrupted", 0))
    except BaseException as e:  # report to the parent instead of a bare traceback
        what = None if isinstance(e, StorageError) else storage_fault(e)
        if isinstance(e, StorageError) or what is not None:
            _tell(outbox, ("storage", str(e) if what is None else storage_message(spec, what)))
            sys.exit(1)
        _tell(outbox, ("error", f"{type(e).__name__}: {e}"))
        if isinstance(e, ConfigError):
            sys.exit(1)
        raise


@contextlib.contextmanager
def _sigint_blocked() -> Iterator[None]:
    """Block SIGINT in this thread while processes are started: they inherit the blocked
    signal (a Ctrl-C cannot interrupt their start-up, e.g. the forkserver's imports), and a
    Ctrl-C meanwhile reaches this process when the block ends."""
    if not hasattr(signal, "pthread_sigmask"):
        yield
        return
    old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def _mp_context() -> Any:
    """Forkserver where available (one import of torch for all workers; fork-safe), else
    spawn. Either way a script that calls :func:`run_study` with workers > 1 needs the
    ``if __name__ == "__main__":`` guard."""
    if "forkserver" in mp.get_all_start_methods():
        from multiprocessing import forkserver, resource_tracker

        ctx = mp.get_context("forkserver")
        ctx.set_forkserver_preload([__name__])
        resource_tracker.ensure_running()  # first: it unblocks SIGINT after its own start
        with _sigint_blocked():
            forkserver.ensure_running()
        return ctx
    return mp.get_context("spawn")


class _Worker:
    """One child worker process and the pipe it reports on."""

    def __init__(self, ctx: Any, number: int, args: tuple[Any, ...]) -> None:
        self.inbox, self._outbox = ctx.Pipe(duplex=False)
        self.process = ctx.Process(target=_worker_main, name=f"memxbar-worker-{number}",
                                   args=(*args, self._outbox))
        self.messages: list[tuple[str, Any]] = []

    def start(self) -> None:
        with _sigint_blocked():
            self.process.start()
        self._outbox.close()

    @property
    def id(self) -> str:
        """The ``worker`` user attribute of the trials it runs."""
        return f"{socket.gethostname()}:{self.process.pid}"

    def read(self) -> None:
        with contextlib.suppress(EOFError, OSError):
            while self.inbox.poll():
                self.messages.append(self.inbox.recv())


def _run_workers(study: optuna.Study, spec: StudySpec, objective_fn: ObjectiveFn,
                 workers: int, opts: dict[str, Any]) -> tuple[int, list[str]]:
    """Run ``workers`` child processes, each with 1/workers of the CPU cores for torch, and
    watch them. The trial of a worker that dies is recorded as failed with the reason (the
    signal) and enqueued again, up to ``max_retries`` times, and a new worker takes its
    place. A storage fault in a worker stops all of them and raises :class:`StorageError`;
    Ctrl-C sends them SIGTERM (each records its trial and enqueues it again), then is raised.
    Returns (trials run, worker errors)."""
    ctx = _mp_context()
    threads = max(1, (os.cpu_count() or 1) // workers)
    args = (spec, spec.storage_url, objective_fn, opts, threads, os.getpid())
    before = {t._trial_id for t in study.get_trials(deepcopy=False) if t.state.is_finished()}
    alive: list[_Worker] = []
    ids: set[str] = set()
    errors: list[str] = []
    fault: str | None = None
    started = idle_crashes = 0

    def start() -> None:
        nonlocal started
        started += 1
        alive.append(_Worker(ctx, started, args))  # listed first: a Ctrl-C may follow start
        alive[-1].start()
        ids.add(alive[-1].id)

    if not study.get_trials(deepcopy=False, states=(TrialState.WAITING, TrialState.RUNNING)):
        return 0, []  # nothing to do: start no process
    try:
        for _ in range(workers):
            start()
        while alive and fault is None:
            time.sleep(opts["poll_interval"])
            for w in list(alive):
                w.read()
                fault = fault or next((m for k, m in w.messages if k == "storage"), None)
                if w.process.is_alive():
                    continue
                w.process.join()
                w.read()
                alive.remove(w)
                errors += [m for k, m in w.messages if k == "error"]
                if w.process.exitcode == 0 or fault is not None:
                    continue
                running = [t._trial_id for t in study.get_trials(
                    deepcopy=False, states=(TrialState.RUNNING,))
                    if t.user_attrs.get("worker") == w.id]
                with deferred_interrupts() as got:
                    for trial_id in running:
                        fail_crashed(study, trial_id, _exit_reason(w.process.exitcode),
                                     opts["max_retries"])
                if got:
                    raise KeyboardInterrupt
                if not running:  # it died outside a trial: say so, replace it only a few times
                    idle_crashes += 1
                    if any(k == "error" for k, _ in w.messages):
                        continue  # it said why (e.g. a refused study file): no new worker
                    errors.append(f"{w.process.name} (pid {w.process.pid}) ended: "
                                  f"{_exit_reason(w.process.exitcode)}")
                pending = study.get_trials(deepcopy=False, states=(TrialState.WAITING,
                                                                   TrialState.RUNNING))
                if pending and len(alive) < workers and idle_crashes <= workers:
                    start()
    except BaseException:
        ours = ids | {w.id for w in alive if w.process.pid is not None}  # one just started too
        _stop(alive)
        _requeue_orphans(study, ours)
        raise
    if fault is not None:
        _stop(alive)
        raise StorageError(fault)
    ran = sum(1 for t in study.get_trials(deepcopy=False)
              if t.state.is_finished() and t._trial_id not in before
              and t.user_attrs.get("worker") in ids
              and not str(t.user_attrs.get("error", "")).startswith("interrupted"))
    return ran, errors


def _requeue_orphans(study: optuna.Study, ids: set[str]) -> None:
    """After our workers have ended on a Ctrl-C: a trial still running under one of them was
    popped but not recorded (the signal came between two of the worker's steps, or its
    record lost a race for the database's lock) — recorded as interrupted and enqueued again
    here, so that no trial is left running for a worker that is gone."""
    with contextlib.suppress(Exception):
        for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            if t.user_attrs.get("worker") in ids:
                fail_interrupted(study, t._trial_id)


def _stop(workers: list[_Worker]) -> None:
    """SIGTERM to every worker (each records its running trial and enqueues it again), then
    wait; SIGKILL to any still alive after 30 s."""
    workers = [w for w in workers if w.process.pid is not None]  # started
    for w in workers:
        if w.process.is_alive():
            w.process.terminate()
    for w in workers:
        w.process.join(timeout=30)
        if w.process.is_alive():
            w.process.kill()
            w.process.join(timeout=5)


