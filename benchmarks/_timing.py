"""Timing helpers shared by the benchmark scripts."""

from __future__ import annotations

import os
import time
from collections.abc import Callable

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as memxbar sets it, before torch loads
import torch


def best_time(fn: Callable[[], object], *, repeat: int = 5, warmup: int = 1) -> float:
    """Smallest wall time (s) of ``repeat`` calls of ``fn`` after ``warmup`` calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def best_times(fns: dict[str, Callable[[], object]], *, repeat: int = 20,
               warmup: int = 2) -> dict[str, float]:
    """Smallest wall time (s) of each function, the functions called in turn ``repeat``
    times, so that a baseline and its candidate see the same machine load."""
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    best = dict.fromkeys(fns, float("inf"))
    for _ in range(repeat):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            best[name] = min(best[name], time.perf_counter() - t0)
    return best


def header(title: str) -> str:
    """A title line with the torch version and thread count of this run."""
    return f"{title} — torch {torch.__version__}, {torch.get_num_threads()} threads"
