"""Run every tutorial script as a user would, and keep its output and figures for its page.

Each script in :data:`TUTORIALS` runs in its own fresh folder under ``build/docs-tutorials/``
(``python docs/tutorials/SCRIPT``, the command its page gives); a failing script fails the
docs build. Its printed output goes to ``docs/generated/tutorials/NAME.txt`` and the PNG
figures it wrote (its folder and ``runs/*/report/``) to ``docs/generated/tutorials/NAME/``,
where the tutorial page includes them, so every page shows what its script printed in this
build. The PostgreSQL tutorial gets a throwaway server on 127.0.0.1 (:mod:`docs.gen.postgres`)
unless ``MEMXBAR_STORAGE`` names one. Run: ``python -m docs.gen.tutorials [NAME ...]``
(default: all).
"""

from __future__ import annotations

import contextlib
import os
import resource
import shutil
import socket
import subprocess
import sys
import time

from docs.gen.common import OUT, ROOT, write_if_changed
from docs.gen.postgres import throwaway_server

TUTORIALS = {  # page name -> script in docs/tutorials/
    "first-study": "first_study.py",
    "own-device": "own_device.py",
    "own-model": "own_model.py",
    "postgres": "postgres_search.py",
    "neurosim": "neurosim_cost.py",
    "online-training": "online_training.py",
}
MODULES = {"waves.py"}  # code that tutorials and their study files import, not run itself
WORK = ROOT / "build" / "docs-tutorials"
TIMEOUT_S = 900  # s per tutorial (a hung one fails the build instead of the CI run)


def run(name: str, env: dict[str, str] | None = None) -> tuple[float, float]:
    """Run one tutorial (extra environment ``env``); return its wall and CPU time (s), the CPU
    time of all its processes. Raises ``SystemExit`` when it fails."""
    script = ROOT / "docs" / "tutorials" / TUTORIALS[name]
    work = WORK / name
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    env = {**os.environ, "MPLBACKEND": "Agg", "PYTHONUNBUFFERED": "1", **(env or {})}
    start, cpu = time.perf_counter(), _children_cpu()
    proc = subprocess.run([sys.executable, str(script)], cwd=work, env=env, text=True,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=TIMEOUT_S)
    elapsed, cpu = time.perf_counter() - start, _children_cpu() - cpu
    if proc.returncode != 0:
        sys.stdout.write(proc.stdout)
        raise SystemExit(f"tutorial {name} ({script.name}) failed with exit code "
                         f"{proc.returncode}")
    write_if_changed(OUT / "tutorials" / f"{name}.txt", proc.stdout.replace(str(work), "."))
    figures = OUT / "tutorials" / name
    shutil.rmtree(figures, ignore_errors=True)
    figures.mkdir(parents=True)
    for png in [*work.glob("*.png"), *work.glob("runs/*/report/*.png")]:
        shutil.copy(png, figures / png.name)
    return elapsed, cpu


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _children_cpu() -> float:
    """User + system CPU time (s) of this process's finished children."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def main(names: list[str]) -> None:
    for name in names or list(TUTORIALS):
        if name not in TUTORIALS:
            raise SystemExit(f"unknown tutorial {name!r}; known: {', '.join(TUTORIALS)}")
        if name == "postgres":
            env = {"MEMXBAR_DASHBOARD_PORT": str(free_port())}
            with contextlib.ExitStack() as stack:
                if "MEMXBAR_STORAGE" not in os.environ:  # None: no server binaries -> SQLite
                    url = stack.enter_context(throwaway_server())
                    env.update({"MEMXBAR_STORAGE": url} if url else {})
                elapsed, cpu = run(name, env)
        else:
            elapsed, cpu = run(name)
        print(f"tutorial {name}: {elapsed:.1f} s ({cpu:.1f} s CPU)", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
