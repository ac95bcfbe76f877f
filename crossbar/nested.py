"""Effective conductance matrix of a crossbar array by nested dissection (exact, float64).

The same network as :mod:`memxbar.crossbar.circuit` (cell (i, j) joins row node (i, j) to column
node (i, j); row i driven at column 0's end through one segment ``r_row``, far end open; column j
grounded after row R-1 through one segment ``r_col``, far end open), both wire resistances > 0.

Own derivation. Cut every wire segment in half: each crossing becomes a block with four ports
(the far ends of its four half segments, conductance ``2 g`` each) and two inner nodes (its row
and column node) joined by the cell. A block's Dirichlet-to-Neumann matrix ``K`` on its ports
(the currents into the ports for given port voltages) is the Schur complement of its nodal
matrix onto the ports. Two neighbouring blocks share the ports on their common edge; merging
them means adding their matrices and eliminating the shared ports, a Schur complement again.
Blocks are merged in pairs, alternately along rows and along columns (keeping them near square),
so an a x b block has ``2 a + 2 b`` ports and the work is dominated by the last merges (about
2 GFlop for a 256 x 256 array, against 14 GFlop for the row sweep: :func:`nested_cost`,
:func:`sweep_cost`); every merge of a level runs as one batched factorization over all blocks
(and arrays, in cache-sized batches).

The whole array's ports: the left ends (sources), the bottom ends (virtual grounds), and the open
right and top ends, which are eliminated. The remaining half segment to each source and to each
ground is added, and one solve with the R sources as right-hand sides gives the column currents
``I_j = 2 g_c v_j`` of the bottom ports. Arrays whose sides are not powers of two are padded with
open cells (G = 0) beyond their open ends (rows before row 0, columns after column C-1), which
carry no current and change nothing. Port matrices hold conductances of the wires (1/r) with the
cells' much smaller conductances as corrections: float64 keeps those to ~1e-16 * g_wire / G
relative, as the row sweep does.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

__all__ = ["effective_nested", "nested_cost", "sweep_cost"]

_F64 = torch.float64
# port-matrix entries per batch: one 256 x 256 array (larger batches fall out of the caches
# and ran 1.7-2x slower per array, measured)
BATCH_ENTRIES = 1 << 20
_RANK1_MAX = 16  # shared ports up to which a merge eliminates them one by one (vectorized)


def _pow2(n: int) -> int:
    return 1 << max(0, (n - 1).bit_length())


def nested_cost(R: int, C: int) -> float:
    """Flops (approximate) of :func:`effective_nested` for one R x C array."""
    h = w = 1
    Rp, Cp = _pow2(R), _pow2(C)
    total = 0.0
    while (h, w) != (Rp, Cp):
        horizontal = w < Cp and (w <= h or h == Rp)
        s = h if horizontal else w  # shared ports
        h, w = (h, 2 * w) if horizontal else (2 * h, w)
        p = 2 * (h + w)
        total += (Rp // h) * (Cp // w) * (2.0 * p * p * s + p * s * s + s**3 / 3)
    n = Rp + Cp
    return total + n**3 / 3 + 2.0 * n * n * R


def sweep_cost(R: int, C: int) -> float:
    """Flops (approximate) of the row sweep (:func:`memxbar.crossbar.circuit`) for one array,
    in the orientation it picks (dense blocks of min(R, C))."""
    m, n = min(R, C), max(R, C)
    return n * (2.0 * m**3 + m**3 / 3) + n * n * m * m


def _crossings(G: Tensor, a: float, c: float) -> Tensor:
    """Port matrices ``(..., R, C, 4, 4)`` of single crossings, ports ordered (left, right, top,
    bottom); ``a = 2 g_r`` and ``c = 2 g_c`` are the half segments' conductances."""
    # inner nodes u (row), w (column): [[2a + G, -G], [-G, 2c + G]]; ports couple a to u, c to w
    det = (2 * a + G) * (2 * c + G) - G * G
    iuu, iww, iuw = (2 * c + G) / det, (2 * a + G) / det, G / det
    K = G.new_zeros((*G.shape, 4, 4))
    uu = a - a * a * iuu  # a port of the row line seen with the other ports grounded
    K[..., 0, 0] = K[..., 1, 1] = uu
    K[..., 0, 1] = K[..., 1, 0] = -a * a * iuu
    ww = c - c * c * iww
    K[..., 2, 2] = K[..., 3, 3] = ww
    K[..., 2, 3] = K[..., 3, 2] = -c * c * iww
    cross = -a * c * iuw  # row port to column port, through the cell
    for i in (0, 1):
        for j in (2, 3):
            K[..., i, j] = K[..., j, i] = cross
    return K


def _schur(Koo_a: Tensor, Koo_b: Tensor | None, Koi: Tensor, Kii: Tensor) -> Tensor:
    """``blockdiag(Koo_a, Koo_b) - Koi Kii^-1 Koi^T``: the ports ``o`` with the shared ports
    ``i`` eliminated (``Koo_b`` None: ``Koo_a`` alone)."""
    s = Kii.shape[-1]
    if s <= _RANK1_MAX:  # Gauss-Jordan on [Kii | Koi^T], vectorized over the batch
        W = torch.cat([Kii, Koi.mT], -1)
        for k in range(s):
            W[..., k, :] /= W[..., k, k:k + 1].clone()
            col = W[..., :, k:k + 1].clone()
            col[..., k, :] = 0.0
            W -= col * W[..., k:k + 1, :]
        S = Koi @ W[..., s:]
    else:
        L, info = torch.linalg.cholesky_ex(Kii)
        if bool((info != 0).any()):
            raise RuntimeError("crossbar network matrix is not positive definite (check G and r)")
        Y = torch.linalg.solve_triangular(L, Koi.mT, upper=False)
        S = Y.mT @ Y
    S = S.neg_()
    na = Koo_a.shape[-1]
    S[..., :na, :na] += Koo_a
    if Koo_b is not None:
        S[..., na:, na:] += Koo_b
    return S


def _sub(K: Tensor, rows: Tensor, cols: Tensor) -> Tensor:
    """``K[..., rows, :][..., cols]`` for index sets made of a few contiguous runs (every port
    set here is): copies of whole runs, far faster than a gather."""
    return _take(_take(K, rows, -2), cols, -1)


def _take(K: Tensor, idx: Tensor, dim: int) -> Tensor:
    cut = (torch.nonzero(idx[1:] != idx[:-1] + 1).flatten() + 1).tolist()
    starts, stops = [0, *cut], [*cut, idx.numel()]
    first = idx.tolist()
    runs = [K.narrow(dim, first[a], b - a) for a, b in zip(starts, stops, strict=True)]
    return runs[0] if len(runs) == 1 else torch.cat(runs, dim)


Ports = dict[str, Tensor]  # "left", "right", "top", "bottom" -> indices into a port matrix


def _merge(K: Tensor, ports: Ports, horizontal: bool) -> tuple[Tensor, Ports]:
    """Merge neighbouring blocks of the grid ``K`` (..., nr, nc, p, p) in pairs along the
    columns (``horizontal``: A's right ports are B's left ports) or along the rows (A's bottom
    ports are B's top ports). The merged matrix holds A's remaining ports, then B's."""
    if horizontal:
        A, B = K[..., :, 0::2, :, :], K[..., :, 1::2, :, :]
        sa, sb = ports["right"], ports["left"]
        oa = torch.cat([ports["left"], ports["top"], ports["bottom"]])
        ob = torch.cat([ports["right"], ports["top"], ports["bottom"]])
    else:
        A, B = K[..., 0::2, :, :, :], K[..., 1::2, :, :, :]
        sa, sb = ports["bottom"], ports["top"]
        oa = torch.cat([ports["left"], ports["right"], ports["top"]])
        ob = torch.cat([ports["left"], ports["right"], ports["bottom"]])
    Koi = torch.cat([_sub(A, oa, sa), _sub(B, ob, sb)], -2)
    Kii = _sub(A, sa, sa) + _sub(B, sb, sb)
    S = _schur(_sub(A, oa, oa), _sub(B, ob, ob), Koi, Kii)
    h, w = ports["left"].numel(), ports["top"].numel()
    n = oa.numel()
    ar = torch.arange
    if horizontal:  # A: left h, top w, bottom w; B: right h, top w, bottom w
        new = {"left": ar(h), "right": n + ar(h),
               "top": torch.cat([h + ar(w), n + h + ar(w)]),
               "bottom": torch.cat([h + w + ar(w), n + h + w + ar(w)])}
    else:  # A: left h, right h, top w; B: left h, right h, bottom w
        new = {"left": torch.cat([ar(h), n + ar(h)]),
               "right": torch.cat([h + ar(h), n + h + ar(h)]),
               "top": 2 * h + ar(w), "bottom": n + 2 * h + ar(w)}
    return S, new


def effective_nested(G: Tensor, g_r: float, g_c: float) -> Tensor:
    """Effective conductance matrix ``(..., R, C)`` (S) of arrays ``G`` (..., R, C) (S) with
    finite wire conductances ``g_r = 1 / r_row`` and ``g_c = 1 / r_col`` (S), in float64.

    A stack of arrays is solved in batches of about :data:`BATCH_ENTRIES` port-matrix entries
    (each level of merges holds ~16 R C per array)."""
    G = G.to(_F64)
    R, C = G.shape[-2:]
    lead = G.shape[:-2]
    n = math.prod(lead)
    per = max(1, BATCH_ENTRIES // (16 * _pow2(R) * _pow2(C)))
    if n <= per:
        return _effective(G, g_r, g_c)
    flat = G.reshape(n, R, C)
    parts = [_effective(flat[i:i + per], g_r, g_c) for i in range(0, n, per)]
    return torch.cat(parts).reshape(*lead, R, C)


def _effective(G: Tensor, g_r: float, g_c: float) -> Tensor:
    R, C = G.shape[-2:]
    Rp, Cp = _pow2(R), _pow2(C)
    if (Rp, Cp) != (R, C):  # open cells before row 0 and after column C-1
        G = torch.nn.functional.pad(G, (0, Cp - C, Rp - R, 0))
    a, c = 2.0 * g_r, 2.0 * g_c
    K = _crossings(G, a, c)
    ar = torch.arange
    ports: Ports = {"left": ar(1), "right": ar(1, 2), "top": ar(2, 3), "bottom": ar(3, 4)}
    h = w = 1
    while (h, w) != (Rp, Cp):
        horizontal = w < Cp and (w <= h or h == Rp)
        K, ports = _merge(K, ports, horizontal)
        h, w = (h, 2 * w) if horizontal else (2 * h, w)
    K = K[..., 0, 0, :, :]
    keep = torch.cat([ports["left"], ports["bottom"]])
    drop = torch.cat([ports["right"], ports["top"]])  # the open far ends
    K = _schur(_sub(K, keep, keep), None, _sub(K, keep, drop), _sub(K, drop, drop))
    # the other half segment to each source (a) and to each virtual ground (c)
    K = K + torch.diag(torch.cat([G.new_full((Rp,), a), G.new_full((Cp,), c)]))
    L, info = torch.linalg.cholesky_ex(K)
    if bool((info != 0).any()):
        raise RuntimeError("crossbar network matrix is not positive definite (check G and r)")
    rhs = torch.zeros((Rp + Cp, R), dtype=_F64, device=G.device)
    rhs[ar(Rp - R, Rp), ar(R)] = a  # the real rows are the last R of the padded ones
    v = torch.cholesky_solve(rhs.expand(*K.shape[:-2], Rp + Cp, R), L)
    return (c * v[..., Rp: Rp + C, :]).mT.contiguous()

