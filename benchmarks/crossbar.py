"""Crossbar benchmarks, each against its baseline measured in the same run.

    .venv/bin/python benchmarks/crossbar.py [--only SUBSTRING]

Sections (``BENCHMARKS``; each function returns table rows, all printed as one table):

* ``ir_drop_vs_ngspice``: column currents of a 64 x 64 array with wire resistance, memxbar's
  solver vs ngspice ``.op`` of the same netlist (PySpice shared library): one input from scratch
  (``solve``'s automatic choice, conjugate gradients here, and its direct effective-matrix path;
  and the automatic choice at the stiff corner of the tested range, G 10-1000 uS with 10 ohm
  segments) and per input with the effective matrix reused; max relative error against ngspice.
* ``nonlinear_ir_drop``: the same array with cubic (RRAM-like) cells, one input:
  ``solve_nonlinear`` (Newton, linear steps by conjugate gradients) vs ngspice ``.op`` with
  B-source cells, and vs its own direct linear steps (``method="direct"``).
* ``effective_matrix_vs_splu``: the one-time effective-conductance solve of a 256 x 256 array vs
  scipy's SuperLU (``splu``) on the full nodal network with 256 right-hand sides.

Times are the best of a few runs (wall clock); torch uses the thread count set by the
environment (printed). Add a section by appending a function returning rows to ``BENCHMARKS``.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from collections.abc import Callable
from typing import TypeVar

import numpy as np
import scipy
import scipy.sparse as sp
import scipy.sparse.linalg as sla

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as memxbar sets it, before torch loads
import torch

from memxbar.crossbar.circuit import effective_conductance, solve, solve_nonlinear
from memxbar.crossbar.spice import simulate

Row = dict  # benchmark, case, memxbar_s, baseline, baseline_s, max_rel_err
T = TypeVar("T")


def best_of(fn: Callable[[], T], repeat: int) -> tuple[float, T]:
    """Smallest wall time of ``repeat`` (>= 1) calls, and the last result."""
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def random_array(R: int, C: int, B: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """G log-uniform in [1, 100] uS, V uniform in [0.05, 0.2] V (float64)."""
    gen = torch.Generator().manual_seed(seed)
    G = 1e-6 * 100.0 ** torch.rand(R, C, generator=gen, dtype=torch.float64)
    V = 0.05 + 0.15 * torch.rand(B, R, generator=gen, dtype=torch.float64)
    return G, V


def rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(((a - b).abs() / b.abs()).max())


def ir_drop_vs_ngspice() -> list[Row]:
    R = C = 64
    r = 1.0
    G, V = random_array(R, C, 3, seed=0)
    t_sp1, I_sp1 = best_of(lambda: simulate(G, V[:1], r, r), 3)
    t_sp3, I_sp3 = best_of(lambda: simulate(G, V, r, r), 1)
    solve(G, V[:1], r, r)  # warm-up
    t_m1, I_m1 = best_of(lambda: solve(G, V[:1], r, r), 20)
    t_d1, I_d1 = best_of(lambda: solve(G, V[:1], r, r, method="direct"), 5)
    # stiff corner of the tested range: G 10-1000 uS, 10 ohm segments (about 40 CG steps)
    G_s, r_s = 10.0 * G, 10.0
    t_sps, I_sps = best_of(lambda: simulate(G_s, V[:1], r_s, r_s), 1)
    t_ms, I_ms = best_of(lambda: solve(G_s, V[:1], r_s, r_s), 10)
    M = effective_conductance(G, r, r)
    Vb = V[torch.arange(1024) % 3]
    t_mb, I_mb = best_of(lambda: Vb @ M, 20)
    case = f"{R}x{C}, r_row = r_col = {r} ohm, G 1-100 uS"
    return [
        Row(benchmark="IR drop, 1 input from scratch", case=case, memxbar="solve()",
            memxbar_s=t_m1, baseline="ngspice .op (netlist+load+op)", baseline_s=t_sp1,
            max_rel_err=rel_err(I_m1, I_sp1)),
        Row(benchmark="IR drop, 1 input from scratch", case=case,
            memxbar='solve(method="direct")', memxbar_s=t_d1,
            baseline="ngspice .op (netlist+load+op)", baseline_s=t_sp1,
            max_rel_err=rel_err(I_d1, I_sp1)),
        Row(benchmark="IR drop, 1 input from scratch",
            case=f"{R}x{C}, r_row = r_col = {r_s} ohm, G 10-1000 uS", memxbar="solve()",
            memxbar_s=t_ms, baseline="ngspice .op (netlist+load+op)", baseline_s=t_sps,
            max_rel_err=rel_err(I_ms, I_sps)),
        Row(benchmark="IR drop per input, M reused", case=case + ", B = 1024",
            memxbar="V @ M", memxbar_s=t_mb / 1024, baseline="ngspice alter+op, B = 3",
            baseline_s=t_sp3 / 3, max_rel_err=rel_err(I_mb[:3], I_sp3)),
    ]


def cubic(g: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """RRAM-like cubic cell G0 V + NL2 V^2 + NL3 V^3 (NL2 = 2 G0 / V, NL3 = 30 G0 / V^2)."""
    return g * v + 2.0 * g * v**2 + 30.0 * g * v**3


CUBIC_SPICE = "{g}*{v} + 2*{g}*{v}*{v} + 30*{g}*{v}*{v}*{v}"


def nonlinear_ir_drop() -> list[Row]:
    R = C = 64
    r = 1.0
    G, V = random_array(R, C, 1, seed=0)
    t_sp, I_sp = best_of(lambda: simulate(G, V, r, r, cell=CUBIC_SPICE), 1)
    solve_nonlinear(G, V, r, r, cubic)  # warm-up
    t_m, I_m = best_of(lambda: solve_nonlinear(G, V, r, r, cubic), 5)
    t_d, I_d = best_of(lambda: solve_nonlinear(G, V, r, r, cubic, method="direct"), 1)
    case = f"{R}x{C}, r_row = r_col = {r} ohm, cubic cells, G0 1-100 uS"
    return [
        Row(benchmark="nonlinear IR drop, 1 input", case=case, memxbar="solve_nonlinear()",
            memxbar_s=t_m, baseline="ngspice .op, B-source cells", baseline_s=t_sp,
            max_rel_err=rel_err(I_m, I_sp)),
        Row(benchmark="nonlinear IR drop, 1 input", case=case, memxbar="solve_nonlinear()",
            memxbar_s=t_m, baseline='solve_nonlinear(method="direct")', baseline_s=t_d,
            max_rel_err=rel_err(I_m, I_d)),
    ]


def nodal_matrix(G: np.ndarray, r_row: float, r_col: float) -> sp.csc_matrix:
    """Full nodal conductance matrix (row nodes, then column nodes) of the DESIGN.md topology."""
    R, C = G.shape
    u = np.arange(R * C).reshape(R, C)
    w = u + R * C
    a = np.concatenate([u.ravel(), u[:, :-1].ravel(), w[:-1].ravel()])
    b = np.concatenate([w.ravel(), u[:, 1:].ravel(), w[1:].ravel()])
    g_wire = [np.full(R * (C - 1), 1 / r_row), np.full((R - 1) * C, 1 / r_col)]
    g = np.concatenate([G.ravel(), *g_wire])
    ii = np.concatenate([a, b, a, b])
    jj = np.concatenate([a, b, b, a])
    A = sp.coo_matrix((np.concatenate([g, g, -g, -g]), (ii, jj)), shape=(2 * R * C,) * 2)
    ends = np.zeros(2 * R * C)
    ends[u[:, 0]] += 1 / r_row  # segment to the row source
    ends[w[-1]] += 1 / r_col  # segment to the virtual ground
    return (A + sp.diags(ends)).tocsc()


def effective_matrix_vs_splu() -> list[Row]:
    R = C = 256
    r = 1.0
    G, _ = random_array(R, C, 1, seed=1)
    effective_conductance(G[:8, :8], r, r)  # warm-up
    t_m, M = best_of(lambda: effective_conductance(G, r, r), 3)

    def splu_effective() -> np.ndarray:
        A = nodal_matrix(G.numpy(), r, r)
        rhs = np.zeros((2 * R * C, R))
        rhs[np.arange(R) * C, np.arange(R)] = 1 / r  # unit source behind one row segment
        X = sla.splu(A).solve(rhs)
        return X[R * C + (R - 1) * C:].T / r  # column currents into the virtual grounds

    t_s, M_s = best_of(splu_effective, 1)
    return [
        Row(benchmark="effective matrix, one-time solve", case=f"{R}x{C}, r = {r} ohm",
            memxbar="effective_conductance()", memxbar_s=t_m,
            baseline=f"scipy {scipy.__version__} splu + 256-RHS solve", baseline_s=t_s,
            max_rel_err=rel_err(M, torch.from_numpy(M_s))),
    ]


BENCHMARKS: list[Callable[[], list[Row]]] = [
    ir_drop_vs_ngspice, nonlinear_ir_drop, effective_matrix_vs_splu]


def print_table(rows: list[Row]) -> None:
    head = ["benchmark", "case", "memxbar", "time", "baseline", "time", "speed-up", "max rel err"]
    body = [[r["benchmark"], r["case"], r["memxbar"], f"{r['memxbar_s'] * 1e3:.3g} ms",
             r["baseline"], f"{r['baseline_s'] * 1e3:.4g} ms",
             f"{r['baseline_s'] / r['memxbar_s']:.3g}x", f"{r['max_rel_err']:.1e}"] for r in rows]
    width = [max(len(x[k]) for x in [head, *body]) for k in range(len(head))]
    for line in [head, ["-" * n for n in width], *body]:
        print("  ".join(x.ljust(n) for x, n in zip(line, width, strict=True)))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="", help="run the sections whose name contains this")
    args = parser.parse_args(argv)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; "
          f"{os.cpu_count()} CPUs ({platform.processor() or platform.machine()})")
    rows: list[Row] = []
    for bench in BENCHMARKS:
        if args.only in bench.__name__:
            rows += bench()
    print_table(rows)


if __name__ == "__main__":
    main()
