"""The resistive network of one crossbar array with wire resistance (IR drop).

Topology (DESIGN.md, crossbar/; the same in the SPICE netlist and every test): cell (i, j) joins
row node (i, j) to column node (i, j). Row i is driven by an ideal source ``V[i]`` at column 0's
end through one segment ``r_row``; neighbouring row nodes are joined by ``r_row``; row i's far end
(after column C-1) is open. Column j ends in a virtual ground (0 V) after row R-1 through one
segment ``r_col``; neighbouring column nodes are joined by ``r_col``; column j's far end (before
row 0) is open. ``r = 0`` means an ideal wire. The outputs are the column currents flowing into
the virtual grounds, in amperes.

Direct method (own derivation; exact up to float64 rounding, no iteration):

* Each row line with its cells is a tridiagonal system ``T_i = g_r L + diag(G_i)`` (``L`` is the
  chain Laplacian, source end fixed, far end open). Its inverse is formed in O(C^2) from the two
  pivot sequences of the chain (forward ``p``, backward ``q``): the diagonal of ``T^-1`` is
  ``1 / (a_j - g^2/p_(j-1) - g^2/q_(j+1))`` and, along a column of ``T^-1``,
  ``T^-1[j, k] = T^-1[k, k] * prod_(m=j..k-1) g/p_m`` for ``j < k`` (the inverse of a symmetric
  tridiagonal matrix is semiseparable), evaluated as exponentials of cumulative log-ratios, so
  nothing overflows.
* Eliminating the row nodes leaves a block-tridiagonal system in the column-node voltages, one
  dense C x C block per array row (``g_c k_i I + diag(G_i) - diag(G_i) T_i^-1 diag(G_i)``) coupled
  by ``-g_c I``. A block LDL^T sweep from row 0 to row R-1 carries all R unit-source right-hand
  sides at once; only the last block is needed, because the column currents are
  ``g_c * w[R-1, :]``, so no back substitution is done. Cost ~ R C^3 + R^2 C^2 flops, memory
  O(C^2 + R C) per array.
* The network is reciprocal, so the effective matrix of the mirrored problem (rows and columns
  swapped, both axes reversed, ``r_row`` and ``r_col`` swapped) is the transpose of the same map;
  the solver runs in whichever orientation has the smaller dense block.

With both wire resistances > 0 and arrays of at least 64 x 64 cells, the effective matrix is
computed by nested dissection instead (:mod:`memxbar.crossbar.nested`: blocks of cells merged
in pairs by Schur complements on their edge ports, the open far ends dropped on the array's
edge: about 1.1 GFlop against the sweep's 14 GFlop at 256 x 256; exact as well, agreeing with
the sweep to ~1e-11 relative there).

The sweep is a sequential recurrence over array rows (each step a batched dense operation over
every leading dimension), as is the O(C) pivot recurrence of each line; neither loops over cells.

Iterative method (own derivation), for a few inputs per array, where the R sequential steps of
the sweep cost more than the whole answer: take the cell currents X (R, C) as the unknowns. A
row segment carries the currents of every cell beyond it and a column segment those of every
cell above it, so the row node (i, j) sits ``r_row (P_row X)[i, j]`` below ``V[i]`` and the column
node ``r_col (P_col X)[i, j]`` above ground, with ``P_row X`` a prefix sum of suffix sums along
the row and ``P_col X`` a suffix sum of prefix sums along the column. Each cell's Ohm's law then
reads ``X / G + r_row P_row X + r_col P_col X = V`` (V broadcast along the rows): symmetric
positive definite, applied in O(R C) by four cumulative sums. Jacobi-preconditioned conjugate
gradients solve it in float64 to a relative residual of 1e-13, checked on the true residual;
the iteration bound follows from a proven condition-number bound, and a system that misses it
falls back to the direct method, so no answer is approximate. The column currents are the
column sums of X. Open cells (G = 0) carry X = 0.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

from memxbar.crossbar.nested import SingularNetwork, effective_nested, nested_cost, sweep_cost
from memxbar.errors import ConfigError, plain_value

__all__ = ["NotConverged", "SingularNetwork", "effective_conductance", "effective_first_order",
           "solve", "solve_nonlinear"]

CellCurrent = Callable[[Tensor, Tensor], Tensor]


class NotConverged(ConfigError, RuntimeError):
    """:func:`solve_nonlinear` did not reach ``tol`` within ``max_iter`` Newton steps (or its
    line search stalled): a ConfigError (the tolerance, iteration budget or cell I-V asked
    for cannot be met) that is also a RuntimeError."""

_F64 = torch.float64


# ---------------------------------------------------------------------------------------------
# input checks


def _as_tensor(x: Tensor, name: str, unit: str) -> Tensor:
    """``x`` as a real floating tensor (integers and bool become float64)."""
    if not isinstance(x, Tensor):
        try:
            x = torch.as_tensor(x)
        except (TypeError, ValueError, RuntimeError):
            raise ConfigError(f"{name} must be a tensor ({unit}); got {type(x).__name__}") from None
    if x.is_complex():
        raise ConfigError(f"{name} has dtype {x.dtype}; it must be real ({unit})")
    return x if x.is_floating_point() else x.to(_F64)


def _out_dtype(*xs: Tensor) -> torch.dtype:
    """Promoted dtype of the inputs, at least float32 (float16/bfloat16 inputs give float32:
    currents of microamperes underflow in half precision)."""
    out = torch.promote_types(xs[0].dtype, xs[-1].dtype)
    return torch.float32 if out in (torch.float16, torch.bfloat16) else out


def _as_conductance(G: Tensor) -> Tensor:
    G = _as_tensor(G, "G", "siemens")
    if G.dim() < 2 or G.shape[-1] == 0 or G.shape[-2] == 0:
        raise ConfigError(
            f"G must have shape (..., R, C) with R, C >= 1 (siemens); got {tuple(G.shape)}"
        )
    if not bool(torch.isfinite(G).all()):
        raise ConfigError("G contains non-finite values; conductances must be finite (S)")
    if bool((G < 0).any()):
        raise ConfigError(f"G must be >= 0 S; got minimum {float(G.min()):.3e} S")
    return G


# largest wire resistance per segment, ohm: a sanity bound above the cells' own resistance
# (10 kohm - 1 Mohm for RRAM / PCM states), where an array no longer reads; metal segments are
# ohms. Far beyond it the solves lose the cells (float32 currents underflow near 1e35 ohm).
MAX_WIRE_RESISTANCE = 1e6


def _as_resistance(r: float, name: str) -> float:
    if isinstance(r, Tensor):
        if r.numel() != 1:
            raise ConfigError(f"{name} must be a scalar (ohm); got shape {tuple(r.shape)}")
        r = r.item()
    r = plain_value(r)
    if isinstance(r, bool) or not isinstance(r, (int, float)):
        raise ConfigError(f"{name} must be a number (ohm); got {r!r}")
    r = float(r)
    if not 0 <= r <= MAX_WIRE_RESISTANCE:
        raise ConfigError(f"{name} = {r!r} ohm is not allowed; allowed: [0, "
                          f"{MAX_WIRE_RESISTANCE:g}] ohm per segment")
    return r


def _as_voltage(V: Tensor, G: Tensor) -> Tensor:
    V = _as_tensor(V, "V", "volts")
    R = G.shape[-2]
    if V.dim() < 1 or V.shape[-1] != R:
        raise ConfigError(
            f"V must have shape (..., B, R) or (R,) with R = {R} rows of G {tuple(G.shape)}; "
            f"got {tuple(V.shape)}"
        )
    if V.dim() >= 2:
        try:
            torch.broadcast_shapes(V.shape[:-2], G.shape[:-2])
        except RuntimeError:
            raise ConfigError(
                f"leading dimensions of V {tuple(V.shape)} and G {tuple(G.shape)} do not "
                "broadcast; expected V (..., B, R) and G (..., R, C)"
            ) from None
    if not bool(torch.isfinite(V).all()):
        raise ConfigError("V contains non-finite values; voltages must be finite (V)")
    return V


_METHODS = ("auto", "cg", "direct")


def _check_method(method: str) -> None:
    if method not in _METHODS:
        raise ConfigError(f"method = {method!r} is not allowed; allowed: 'auto', 'cg', 'direct'")


def _conductance_of(r: float) -> float:
    return math.inf if r == 0.0 else 1.0 / r


# ---------------------------------------------------------------------------------------------
# one line: tridiagonal T = g L + diag(d); L: node 0 tied to a fixed potential, node n-1 open


def _line_factors(d: Tensor, g: float) -> tuple[Tensor, Tensor]:
    """Diagonal of ``T^-1`` and the cumulative log-ratios ``Lam`` of the lines ``d`` (..., n).

    ``T^-1[j, k] = diag[max(j, k)] * exp(-|Lam[j] - Lam[k]|)``.
    """
    n = d.shape[-1]
    a = d + g
    a[..., : n - 1] += g
    a_cols = a.unbind(-1)
    g2 = g * g
    p = [a_cols[0]]
    for j in range(1, n):
        p.append(a_cols[j] - g2 / p[-1])
    q = [a_cols[n - 1]]
    for j in range(n - 2, -1, -1):
        q.append(a_cols[j] - g2 / q[-1])
    q.reverse()
    P = torch.stack(p, -1)
    Q = torch.stack(q, -1)
    s = a.clone()
    s[..., 1:] -= g2 / P[..., :-1]
    s[..., :-1] -= g2 / Q[..., 1:]
    lam = torch.zeros_like(a)
    lam[..., 1:] = torch.cumsum(torch.log(g / P[..., :-1]), -1)
    return 1.0 / s, lam


_EXP_SPAN = 600.0  # |Lam| range up to which T^-1 is formed as an outer product in float64


def _line_inverse(diag: Tensor, lam: Tensor, scale: Tensor | None = None) -> Tensor:
    """Dense ``diag(s) T^-1 diag(s)`` (..., n, n) from :func:`_line_factors` (s = 1 if None).

    The lower triangle is the outer product ``(diag_j e^(Lam_j + c)) (e^(-Lam_k - c))``, j >= k,
    with c centring the exponents, unless ``Lam`` spans more than float64 exponents allow; then
    every entry is exponentiated separately.
    """
    n = diag.shape[-1]
    idx = torch.arange(n, device=diag.device)
    lower = idx[:, None] >= idx[None, :]
    s = torch.ones_like(diag) if scale is None else scale
    if float(-lam[..., -1].detach().min()) <= _EXP_SPAN:
        c = -0.5 * lam[..., -1:]
        P = (s * diag * torch.exp(lam + c))[..., :, None] * (s * torch.exp(-lam - c))[..., None, :]
        return torch.where(lower, P, P.mT)
    D = torch.where(lower, diag[..., :, None], diag[..., None, :]) * s[..., :, None]
    return D * s[..., None, :] * torch.exp(-(lam[..., :, None] - lam[..., None, :]).abs())


def _check_info(info: Tensor) -> None:
    if bool((info != 0).any()):
        raise SingularNetwork("crossbar network matrix is not positive definite (check G and r)")


def _cholesky(A: Tensor) -> Tensor:
    L, info = torch.linalg.cholesky_ex(A)
    _check_info(info)
    return L


def _cholesky_inverse(L: Tensor) -> Tensor:
    """``(L L^T)^-1`` by two triangular solves: MKL's ``potri`` (``torch.cholesky_inverse``)
    rounds differently with the thread count; this does not."""
    eye = torch.eye(L.shape[-1], dtype=L.dtype, device=L.device)
    return torch.cholesky_solve(eye.expand(L.shape), L)


def _row_block(d: Tensor, dtd: Tensor, diag_add: Tensor) -> Tensor:
    """``diag(d + diag_add) - dtd``, dtd = ``diag(d) T^-1 diag(d)``: rows seen from the columns."""
    B = -dtd
    B.diagonal(dim1=-2, dim2=-1).add_(d + diag_add)
    return B


def _column_coupling(rows: range, g_c: float, like: Tensor) -> Tensor:
    """``k_i g_c`` (rows, 1): column node i has a segment below it, and one above unless i = 0."""
    k = torch.tensor([[2.0 if i > 0 else 1.0] for i in rows], dtype=_F64, device=like.device)
    return g_c * k


_BLOCK_BUDGET = 2**19  # float64 entries of row blocks built at once (4 MiB: no page-fault storm)


def _effective_oriented(G: Tensor, g_r: float, g_c: float) -> Tensor:
    """Effective matrix for finite ``g_r``; dense blocks of size C, a sweep over the R rows."""
    R, C = G.shape[-2:]
    diag, lam = _line_factors(G, g_r)
    beta = g_r * G * diag * torch.exp(lam)  # cell currents per volt with columns grounded
    if math.isinf(g_c):
        return beta
    chunk = max(1, _BLOCK_BUDGET // (C * C * max(1, G[..., 0, 0].numel())))
    H = beta[..., 0, :, None]  # (..., C, i + 1): swept right-hand sides of sources 0..i
    L: Tensor | None = None
    infos: list[Tensor] = []
    for i0 in range(0, R, chunk):
        rows = range(i0, min(R, i0 + chunk))
        sl = slice(rows.start, rows.stop)
        d = G[..., sl, :]
        blocks = _row_block(d, _line_inverse(diag[..., sl, :], lam[..., sl, :], d),
                            _column_coupling(rows, g_c, G))
        for k, i in enumerate(rows):
            block = blocks[..., k, :, :]
            if L is not None:
                S = g_c * _cholesky_inverse(L)  # g_c * Sigma_(i-1)^-1
                block = torch.add(block, S, alpha=-g_c)
                H = torch.cat([S @ H, beta[..., i, :, None]], -1)
            L, info = torch.linalg.cholesky_ex(block)
            infos.append(info)
    _check_info(torch.stack(infos))
    assert L is not None  # the sweep factored R >= 1 row blocks
    return g_c * torch.cholesky_solve(H, L).transpose(-1, -2)


_NESTED_MIN_CELLS = 4096  # below this the sweep's few steps beat the merges' fixed costs


def _prefer_nested(R: int, C: int) -> bool:
    """Whether nested dissection (:mod:`memxbar.crossbar.nested`) is predicted faster than the
    row sweep for R x C arrays: fewer flops (it pads to powers of two) and at least
    ``_NESTED_MIN_CELLS`` cells (measured: 2.5-5x faster at 128 x 256 to 512 x 512)."""
    return R * C >= _NESTED_MIN_CELLS and nested_cost(R, C) < sweep_cost(R, C)


def _mirror(X: Tensor) -> Tensor:
    return X.transpose(-1, -2).flip(-2, -1)


def _effective64(G: Tensor, r_row: float, r_col: float, mixed: bool = False) -> Tensor:
    G = G.to(_F64)
    if r_row == 0.0 and r_col == 0.0:
        return G.clone()
    R, C = G.shape[-2:]
    if r_row != 0.0 and r_col != 0.0 and _prefer_nested(R, C) and not (
            torch.is_grad_enabled() and G.requires_grad):
        return effective_nested(G, 1.0 / r_row, 1.0 / r_col, mixed=mixed)
    return _sweep64(G, r_row, r_col)


def _sweep64(G: Tensor, r_row: float, r_col: float) -> Tensor:
    """Effective matrix of float64 ``G`` (some r > 0) by the row sweep, in the orientation
    with the smaller dense block."""
    R, C = G.shape[-2:]
    g_r, g_c = _conductance_of(r_row), _conductance_of(r_col)
    # cost ~ R C^3 + R^2 C^2 directly, C R^3 + R^2 C^2 mirrored: the dense block is min(R, C)
    if r_row == 0.0 or (r_col != 0.0 and C > R):
        return _mirror(_effective_oriented(_mirror(G), g_c, g_r))
    return _effective_oriented(G, g_r, g_c)


_PRECISIONS = ("auto", "float64")


def effective_conductance(G: Tensor, r_row: float, r_col: float, *,
                          precision: str = "auto") -> Tensor:
    """Effective conductance matrix M (S) of arrays of ohmic cells with wire resistance.

    G: (..., R, C) cell conductances in S; r_row, r_col: wire segment resistances in ohm (0 =
    ideal wire). Returns M (..., R, C), dtype of G (float32 for float16/bfloat16), such that
    the column currents are ``I = V @ M`` for row voltages V (..., B, R). Computed in float64
    (by nested dissection when both r > 0 and R C >= 4096, else by the row sweep; both exact);
    ``r_row = r_col = 0`` returns G exactly. Solve once per programmed array, then reuse M
    for every input. ``precision="auto"`` with a float32 (or half) result: the nested
    dissection carries the cells' parts in float32 below its last merges (``mixed``, 1.3-1.7x
    faster; measured error of the column currents <= 1e-7, of single entries <= 3e-7
    relative to the largest, where float32 storage rounds to 6e-8); ``"float64"``: float64
    throughout.
    """
    G = _as_conductance(G)
    r_row, r_col = _as_resistance(r_row, "r_row"), _as_resistance(r_col, "r_col")
    if precision not in _PRECISIONS:
        raise ConfigError(f"effective_conductance: precision = {precision!r} is not allowed; "
                          "allowed: 'auto', 'float64'")
    out = _out_dtype(G)
    if G.numel() == 0:  # an empty stack of arrays
        return G.to(out).clone()
    mixed = precision == "auto" and out == torch.float32
    return _effective64(G, r_row, r_col, mixed).to(out)


def effective_first_order(G: Tensor, r_row: float, r_col: float) -> Tensor:
    """Approximate effective conductance matrix (S), first order in the wire resistances: a
    fast stand-in for :func:`effective_conductance` (O(R C), no solve), not exact.

    Own derivation, from the cell-current form in this module's docstring: with source l
    alone at 1 V, the zeroth-order cell currents are ``G[l, :]``. Row l's node j then sits
    ``r_row * sum_(m <= j) sum_(q >= m) G[l, q]`` below 1 V, and column j's node k sits
    ``r_col * G[l, j] * (R - max(k, l))`` above ground. That lowers cell (l, j)'s current and
    drives reverse currents through the other cells of column j. To first order,
    ``M[l, j] = G[l, j] (1 - rho[l, j])`` with ``rho = r_row P_row(G)[l, j] + r_col sum_k
    G[k, j] (R - max(k, l))``. It is returned in the rational form ``G / (1 + rho)``, equal
    to first order, which stays positive where the drop is large. Its error grows as
    ``rho^2``. Peers correct similarly (aihwkit: a polynomial along the output line only).
    G: (..., R, C); returns (..., R, C) in G's dtype (float32 for half precision).
    """
    G = _as_conductance(G)
    r_row, r_col = _as_resistance(r_row, "r_row"), _as_resistance(r_col, "r_col")
    Gd = G.to(_F64)
    R = Gd.shape[-2]
    suffix = Gd.flip(-1).cumsum(-1).flip(-1)  # current through row segment m: sum_(q >= m)
    rho = r_row * suffix.cumsum(-1)
    k = torch.arange(R, dtype=_F64, device=Gd.device)[:, None]  # row index
    below = Gd.cumsum(-2)  # sum_(k <= l) G[k, j]
    beyond = (Gd * (R - k)).flip(-2).cumsum(-2).flip(-2) - Gd * (R - k)  # sum_(k > l)
    rho = rho + r_col * ((R - k) * below + beyond)
    return (Gd / (1.0 + rho)).to(_out_dtype(G))


def solve(
    G: Tensor, V: Tensor, r_row: float, r_col: float, *, method: str = "auto"
) -> Tensor:
    """Column currents (A) of arrays of ohmic cells with wire resistance.

    G: (..., R, C) in S; V: (..., B, R) row voltages in V (or (R,)); r_row, r_col in ohm.
    Returns I (..., B, C) (or (..., C) for 1-D V), in the promoted dtype of G and V (at
    least float32). Refuses (ConfigError) non-finite or negative G, non-finite V, shapes that
    do not match, and negative or non-finite r.

    Two exact paths (``method``): ``"cg"``, conjugate gradients on the cell currents (O(R C)
    per step, no dense block; stops at a relative residual of 1e-13, and falls back to the
    direct path if it does not get there within its bound); ``"direct"``, the effective matrix
    of :func:`effective_conductance`, then one matmul. ``"auto"`` picks the one predicted
    faster: CG for a few inputs per array, the effective matrix for many inputs or when CG's
    iteration bound is long (wires far stiffer than the cells). Both agree to ~1e-12
    relative. With gradients required through G or V, always the direct path; ``r_row = r_col
    = 0`` returns ``V @ G``.
    """
    G = _as_conductance(G)
    V = _as_voltage(V, G)
    r_row, r_col = _as_resistance(r_row, "r_row"), _as_resistance(r_col, "r_col")
    _check_method(method)
    out = _out_dtype(G, V)
    if G.numel() == 0 or V.numel() == 0:  # no arrays or no inputs: an empty answer
        return (V.to(_F64) @ G.to(_F64)).to(out)
    wired = r_row != 0.0 or r_col != 0.0
    grad = torch.is_grad_enabled() and (G.requires_grad or V.requires_grad)
    if wired and method != "direct" and not grad:
        I = _solve_iterative(G.to(_F64), V.to(_F64), r_row, r_col, force=method == "cg")
        if I is not None:
            return I.to(out)
    M = _effective64(G, r_row, r_col)
    return (V.to(_F64) @ M).to(out)


# ---------------------------------------------------------------------------------------------
# iterative solve in the cell currents: preconditioned conjugate gradients


def _wire_drop(X: Tensor, r_r: float, r_c: float) -> Tensor:
    """``r_r P_row X + r_c P_col X`` (V) for cell currents X (..., R, C) in A.

    ``(P_row X)[i, j] = sum_(s<=j) sum_(k>=s) X[i, k]``: the drop from row i's source to row node
    (i, j), each segment carrying the currents of the cells beyond it. ``(P_col X)[i, j] =
    sum_(s>=i) sum_(m<=s) X[m, j]``: the rise of column node (i, j) above the virtual ground.
    Both are Gram matrices of triangular all-ones matrices, so positive definite.
    """
    out = None
    if r_r != 0.0:
        S = torch.cumsum(X, -1)
        out = torch.cumsum(torch.sub(S[..., -1:], S).add_(X), -1).mul_(r_r)  # prefix of suffix
    if r_c != 0.0:
        P = torch.cumsum(X, -2)
        T = torch.cumsum(P, -2)
        col = torch.sub(T[..., -1:, :], T).add_(P)  # suffix sum of prefix sums
        out = col.mul_(r_c) if out is None else out.add_(col, alpha=r_c)
    return torch.zeros_like(X) if out is None else out


def _pmax(n: int) -> float:
    """Largest eigenvalue of ``P_row`` (n = C) or ``P_col`` (n = R): the inverse of the smallest
    eigenvalue ``4 sin^2(pi / (4n + 2))`` of a chain Laplacian with one end tied, one open."""
    return 0.25 / math.sin(math.pi / (4 * n + 2)) ** 2


_CG_TOL = 1e-13  # relative residual ||b - A x|| / ||b|| (Jacobi-weighted norms) to stop at


def _cg_budget(D: Tensor, open_: Tensor | None, r_r: float, r_c: float) -> tuple[Tensor, int]:
    """Jacobi weights ``1 / diag(A)`` (0 on open cells) and an iteration bound for ``_CG_TOL``.

    With ``J = diag(A) = D + r_r (j + 1) + r_c (R - i)`` the preconditioned system
    ``J^-1/2 A J^-1/2`` has its spectrum in ``[min D/J, max (D + lam_W)/J]``, lam_W the largest
    eigenvalue of the wire part; CG reduces the error by ``2 ((sqrt k - 1) / (sqrt k + 1))^n``
    after n steps for condition number k (Saad, Iterative Methods for Sparse Linear Systems,
    2003, Thm. 6.29), so ``n = sqrt(k)/2 ln(2 sqrt(k) / tol)`` steps suffice.
    """
    R, C = D.shape[-2:]
    i = torch.arange(R, dtype=_F64, device=D.device)[:, None]
    j = torch.arange(C, dtype=_F64, device=D.device)
    J = D + (r_r * (j + 1) + r_c * (R - i))
    lam = r_r * _pmax(C) + r_c * _pmax(R)
    lo, hi = D / J, (D + lam) / J
    if open_ is not None:
        lo, hi, J = lo.masked_fill(open_, math.inf), hi.masked_fill(open_, 0.0), J.masked_fill(
            open_, math.inf)
    kappa = float((hi.flatten(-2).amax(-1) / lo.flatten(-2).amin(-1)).max())
    root = math.sqrt(max(kappa, 1.0))  # kappa = 0: every cell of a system is open
    return 1.0 / J, math.ceil(0.5 * root * math.log(2.0 * root / _CG_TOL)) + 2


def _cg_currents(
    D: Tensor, open_: Tensor | None, weight: Tensor, b: Tensor, r_r: float, r_c: float,
    max_iter: int,
) -> Tensor | None:
    """Cell currents X (..., R, C) of ``D X + r_r P_row X + r_c P_col X = b`` by Jacobi-
    preconditioned conjugate gradients, or None if some system misses ``_CG_TOL`` in
    ``max_iter`` steps (checked on the true residual). Open cells (``open_``) carry X = 0;
    ``weight`` is the Jacobi preconditioner from :func:`_cg_budget`."""

    def apply(P: Tensor) -> Tensor:
        AP = _wire_drop(P, r_r, r_c).addcmul_(D, P)
        return AP if open_ is None else AP.masked_fill_(open_, 0.0)

    def dot(A: Tensor, B: Tensor) -> Tensor:  # rows, then columns: same sums for any threads
        return (A * B).sum(-1, keepdim=True).sum(-2, keepdim=True)

    shape = torch.broadcast_shapes(D.shape, b.shape)
    b = b.expand(shape) if open_ is None else b.expand(shape).masked_fill(open_, 0.0)
    X = torch.zeros(shape, dtype=_F64, device=b.device)
    res = b.clone()
    P = weight * res
    rz = dot(res, P)  # squared residual norm, weighted by the preconditioner
    limit = (_CG_TOL**2) * rz
    tiny = torch.finfo(_F64).tiny
    for _ in range(max_iter):
        AP = apply(P)
        alpha = rz / dot(P, AP).clamp_min_(tiny)  # 0 / tiny = 0 for a system already solved
        X.addcmul_(alpha, P)
        res.addcmul_(alpha, AP, value=-1.0)
        Z = weight * res
        rz_new = dot(res, Z)
        if bool((rz_new <= limit).all()):
            res = b - apply(X)  # the recurred residual drifts from the true one by rounding
            Z = weight * res
            rz_new = dot(res, Z)
            if bool((rz_new <= 4.0 * limit).all()):
                return X
            P, rz = Z, rz_new  # restart from the true residual
            continue
        P = Z.addcmul_(rz_new / rz.clamp_min_(tiny), P)
        rz = rz_new
    return None


# Time model that picks the path (seconds; on a 2-core x86 CPU, torch 2, float64): a CG step
# costs a fixed overhead (about 25 small tensor operations) plus a time per cell and right-hand
# side (7-30 ns measured for 4k-1M cells x inputs, one thread); the direct sweep costs a time
# per array row (sequential small factorizations) plus a time per unit of R C min(R, C)^2 (its
# dense blocks), fitted to its 7.3 ms at 64 x 64 and 432 ms at 256 x 256 (BENCHMARKS.md).
_CG_STEP_S, _CG_CELL_S = 50e-6, 20e-9
_SWEEP_ROW_S, _SWEEP_WORK_S = 90e-6, 0.1e-9
# nested dissection's speed-up over the sweep per flop ratio (sweep_cost / nested_cost):
# measured 1.3x / 3.3x / 7.0x at 64 / 128 / 256 squared (1 thread), flop ratios 3.3 / 6.5 / 12.8
_NESTED_EFFICIENCY = 0.5
_CG_STEPS_USED = 0.4  # fraction of _cg_budget's bound that CG takes (0.3-0.45 in the tests)


def _prefer_iterative(n_rhs: int, n_direct: int, R: int, C: int, bound: int,
                      nested: bool = False) -> bool:
    """Whether CG on ``n_rhs`` systems with iteration bound ``bound`` is predicted faster than
    ``n_direct`` direct solves (``nested``: the effective matrix may use nested dissection)."""
    m = min(R, C)
    t_cg = _CG_STEPS_USED * bound * (_CG_STEP_S + _CG_CELL_S * n_rhs * R * C)
    t_direct = n_direct * (_SWEEP_ROW_S * max(R, C) + _SWEEP_WORK_S * R * C * m * m)
    if nested and _prefer_nested(R, C):
        t_direct /= max(1.0, _NESTED_EFFICIENCY * sweep_cost(R, C) / nested_cost(R, C))
    return t_cg < t_direct


def _iterative_setup(
    Gd: Tensor, r_r: float, r_c: float
) -> tuple[Tensor, Tensor | None, Tensor, int]:
    """Resistances ``D = 1/Gd`` (0 where open), the open-cell mask (None if no cell is open),
    the Jacobi weights and the CG iteration bound of cells Gd (..., R, C)."""
    zero = Gd == 0
    open_ = zero if bool(zero.any()) else None
    D = 1.0 / Gd if open_ is None else (1.0 / Gd).masked_fill_(open_, 0.0)
    weight, bound = _cg_budget(D, open_, r_r, r_c)
    return D, open_, weight, bound


def _solve_iterative(
    G: Tensor, V: Tensor, r_r: float, r_c: float, *, force: bool
) -> Tensor | None:
    """Column currents (..., B, C) (or (..., C) for 1-D V) by CG in float64, or None where the
    direct path is predicted faster (unless ``force``) or CG missed its tolerance."""
    vec = V.dim() == 1
    Vb = V[None] if vec else V
    D, open_, weight, bound = _iterative_setup(G, r_r, r_c)
    R, C = G.shape[-2:]
    lead = torch.broadcast_shapes(G.shape[:-2], Vb.shape[:-2])
    n_rhs = math.prod(lead) * Vb.shape[-2]
    nested = r_r != 0.0 and r_c != 0.0
    if not (force or _prefer_iterative(n_rhs, math.prod(G.shape[:-2]), R, C, bound, nested)):
        return None
    mask = None if open_ is None else open_[..., None, :, :]
    X = _cg_currents(D[..., None, :, :], mask, weight[..., None, :, :], Vb[..., :, None], r_r,
                     r_c, bound)
    if X is None:
        return None
    I = X.sum(-2)  # a column's current into its virtual ground is the sum of its cells'
    return I[..., 0, :] if vec else I


# ---------------------------------------------------------------------------------------------
# general linear solve of the node voltages (used by the nonlinear Newton iteration)


def _line_solve(d: Tensor, g: float, rhs: Tensor) -> Tensor:
    diag, lam = _line_factors(d, g)
    return (_line_inverse(diag, lam) @ rhs[..., None])[..., 0]


def _node_voltages(
    Gd: Tensor, Vs: Tensor, Ju: Tensor, Jw: Tensor, g_r: float, g_c: float, method: str
) -> tuple[Tensor, Tensor]:
    """Row and column node voltages of the network with cell conductances Gd (..., R, C).

    Vs (..., R) source voltages; Ju, Jw (..., R, C) currents injected into the row and column
    nodes. Infinite g_r pins the row nodes to Vs (Ju unused); infinite g_c pins the column nodes
    to 0 V (Jw unused). Solved by CG on the cell currents X, from ``X / Gd + r_r P_row X +
    r_c P_col X = Vs + r_r P_row Ju - r_c P_col Jw`` (the wire drops of the injected currents
    added), as ``method`` of :func:`solve_nonlinear` says; otherwise, or if CG misses, by
    :func:`_node_voltages_direct`.
    """
    r_r = 0.0 if math.isinf(g_r) else 1.0 / g_r
    r_c = 0.0 if math.isinf(g_c) else 1.0 / g_c
    if (r_r != 0.0 or r_c != 0.0) and method != "direct":
        D, open_, weight, bound = _iterative_setup(Gd, r_r, r_c)
        R, C = Gd.shape[-2:]
        n = math.prod(Gd.shape[:-2])
        # the direct node-voltage sweep costs about twice the effective-matrix one (measured)
        if method == "cg" or _prefer_iterative(n, 2 * n, R, C, bound):
            b = _wire_drop(Ju, r_r, 0.0).sub_(_wire_drop(Jw, 0.0, r_c)).add_(Vs[..., :, None])
            X = _cg_currents(D, open_, weight, b, r_r, r_c, bound)
            if X is not None:
                u = Vs[..., :, None] - _wire_drop(X - Ju, r_r, 0.0)
                return u, _wire_drop(X + Jw, 0.0, r_c)
    return _node_voltages_direct(Gd, Vs, Ju, Jw, g_r, g_c)


def _node_voltages_direct(
    Gd: Tensor, Vs: Tensor, Ju: Tensor, Jw: Tensor, g_r: float, g_c: float
) -> tuple[Tensor, Tensor]:
    """:func:`_node_voltages` by elimination: each row line's semiseparable inverse, then a
    block LDL^T sweep over the rows and back substitution (dense C x C blocks per input)."""
    R, C = Gd.shape[-2:]
    if math.isinf(g_r):
        u = Vs[..., :, None].expand_as(Gd)
        if math.isinf(g_c):
            return u, torch.zeros_like(Gd)
        # columns are independent lines, fixed end (virtual ground) after row R-1
        flip = lambda X: X.transpose(-1, -2).flip(-1)  # noqa: E731  (..., C, R), reversed rows
        w = _line_solve(flip(Gd), g_c, flip(Gd * u + Jw))
        return u, w.flip(-1).transpose(-1, -2)
    ru = Ju.clone()
    ru[..., 0] += g_r * Vs
    diag, lam = _line_factors(Gd, g_r)
    tinv = _line_inverse(diag, lam)  # (..., R, C, C)
    y = (tinv @ ru[..., None])[..., 0]  # row voltages with the column nodes at 0 V
    if math.isinf(g_c):
        return y, torch.zeros_like(Gd)
    b = Jw + Gd * y
    dtd = Gd[..., :, None] * tinv * Gd[..., None, :]
    blocks = _row_block(Gd, dtd, _column_coupling(range(R), g_c, Gd))
    sinv: list[Tensor] = []
    bt: list[Tensor] = []
    for i in range(R):
        block, rhs = blocks[..., i, :, :], b[..., i, :]
        if i > 0:
            block = block - (g_c * g_c) * sinv[-1]
            rhs = rhs + g_c * (sinv[-1] @ bt[-1][..., None])[..., 0]
        sinv.append(_cholesky_inverse(_cholesky(block)))
        bt.append(rhs)
    ws = [(sinv[R - 1] @ bt[R - 1][..., None])[..., 0]]
    for i in range(R - 2, -1, -1):
        ws.append((sinv[i] @ (bt[i] + g_c * ws[-1])[..., None])[..., 0])
    ws.reverse()
    W = torch.stack(ws, -2)
    u = y + (tinv @ (Gd * W)[..., None])[..., 0]
    return u, W


# ---------------------------------------------------------------------------------------------
# nonlinear cells: damped Newton


def _kcl(
    u: Tensor, w: Tensor, Vs: Tensor, f: Tensor, g_r: float, g_c: float
) -> tuple[Tensor, Tensor]:
    """Currents leaving each row node and each column node (A); zero where pinned."""
    if math.isinf(g_r):
        Fu = torch.zeros_like(u)
    else:
        left = torch.cat([Vs[..., :, None], u[..., :-1]], -1)
        Fu = g_r * (u - left) + f
        Fu[..., :-1] += g_r * (u[..., :-1] - u[..., 1:])
    if math.isinf(g_c):
        Fw = torch.zeros_like(w)
    else:
        below = torch.cat([w[..., 1:, :], torch.zeros_like(w[..., :1, :])], -2)
        Fw = g_c * (w - below) - f
        Fw[..., 1:, :] += g_c * (w[..., 1:, :] - w[..., :-1, :])
    return Fu, Fw


def _cell_eval(
    current: CellCurrent, derivative: CellCurrent | None, g: Tensor, v: Tensor
) -> tuple[Tensor, Tensor]:
    if derivative is None:
        with torch.enable_grad():
            vv = v.detach().requires_grad_(True)
            i = current(g, vv)
            if not isinstance(i, Tensor) or i.shape != v.shape:
                raise ConfigError(
                    "current(g, v) must return a tensor of the cell-voltage shape "
                    f"{tuple(v.shape)}; got {getattr(i, 'shape', type(i))}"
                )
            (di,) = torch.autograd.grad(i.sum(), vv, allow_unused=True)
        i = i.detach()
        di = torch.zeros_like(v) if di is None else di
    else:
        i, di = current(g, v), derivative(g, v)
        for name, x in (("current", i), ("derivative", di)):
            if not isinstance(x, Tensor) or x.shape != v.shape:
                raise ConfigError(
                    f"{name}(g, v) must return a tensor of the cell-voltage shape "
                    f"{tuple(v.shape)}; got {getattr(x, 'shape', type(x))}"
                )
    i, di = i.to(_F64), di.to(_F64)
    if not (bool(torch.isfinite(i).all()) and bool(torch.isfinite(di).all())):
        raise ConfigError("the cell I-V returned non-finite current or dI/dV")
    if bool((di < 0).any()):
        k = int(torch.argmin(di))
        raise ConfigError(
            "the cell I-V must be non-decreasing (dI/dV >= 0) for a unique, convergent solution; "
            f"got dI/dV = {float(di.flatten()[k]):.3e} S at v = {float(v.flatten()[k]):.4g} V"
        )
    return i, di


def solve_nonlinear(
    G: Tensor,
    V: Tensor,
    r_row: float,
    r_col: float,
    current: CellCurrent,
    *,
    derivative: CellCurrent | None = None,
    tol: float = 1e-10,
    max_iter: int = 50,
    method: str = "auto",
) -> Tensor:
    """Column currents (A) of arrays of cells with a nonlinear I-V, by damped Newton.

    ``current(g, v) -> i``: elementwise cell current (A) for cell parameter g (the entries of G,
    broadcast to the cell voltages v, V) — non-decreasing in v. ``derivative(g, v) -> dI/dV``
    (S) is optional; without it autograd differentiates ``current``. G: (..., R, C); V:
    (..., B, R) or (R,); r_row, r_col in ohm (0 = ideal wire). Returns I (..., B, C) (or
    (..., C) for 1-D V) in the promoted dtype of G and V.

    Each Newton step solves the linearised network (cell conductances dI/dV at the present cell
    voltages) exactly; the step is halved until the Kirchhoff residual decreases. Converged
    when the full Newton step is at most ``tol * max|V|`` for every input; otherwise raises
    :class:`NotConverged` (a ConfigError and a RuntimeError) naming the iterations and the
    residual. Linear cells converge in one step
    to :func:`solve`'s answer. Each linear step runs by CG on the cell currents (memory ~ 10 B
    R C float64) or by a direct block sweep (memory ~ 3 B R C^2 float64: one dense C x C block
    per row and input), as ``method`` (``"auto"``, ``"cg"``, ``"direct"``) says, like
    :func:`solve`'s; both are exact.
    """
    G = _as_conductance(G)
    V = _as_voltage(V, G)
    r_row, r_col = _as_resistance(r_row, "r_row"), _as_resistance(r_col, "r_col")
    for name, fn in (("current", current), ("derivative", derivative)):
        if not callable(fn) and not (name == "derivative" and fn is None):
            raise ConfigError(f"solve_nonlinear: {name} must be a function (g, v) -> tensor; "
                              f"got {type(fn).__name__}")
    tol, max_iter = plain_value(tol), plain_value(max_iter)
    if isinstance(tol, bool) or not (isinstance(tol, (int, float)) and math.isfinite(tol)
                                     and tol > 0):
        raise ConfigError(f"tol = {tol!r} is not allowed; allowed: finite and > 0")
    if isinstance(max_iter, bool) or not isinstance(max_iter, int) or max_iter < 1:
        raise ConfigError(f"max_iter = {max_iter!r} is not allowed; allowed: an integer >= 1")
    _check_method(method)
    out = _out_dtype(G, V)
    if G.numel() == 0 or V.numel() == 0:  # no arrays or no inputs: an empty answer
        return (V.to(_F64) @ G.to(_F64)).to(out)
    vec = V.dim() == 1
    Vs = (V[None] if vec else V).to(_F64)  # (..., B, R)
    g = G.to(_F64)[..., None, :, :]  # (..., 1, R, C)
    shape = torch.broadcast_shapes(g.shape[:-2], Vs.shape[:-1]) + tuple(G.shape[-2:])
    g = g.expand(shape)
    Vs = Vs.expand(shape[:-1])
    g_r, g_c = _conductance_of(r_row), _conductance_of(r_col)
    zero = torch.zeros(shape, dtype=_F64, device=G.device)
    v_scale = max(float(Vs.abs().max()), torch.finfo(_F64).tiny)

    def residual(u: Tensor, w: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        f, df = _cell_eval(current, derivative, g, u - w)
        Fu, Fw = _kcl(u, w, Vs, f, g_r, g_c)
        norm = (Fu.square() + Fw.square()).flatten(-2).sum(-1)
        return Fu, Fw, df, norm

    def linear_step(df: Tensor, Vs: Tensor, Ju: Tensor, Jw: Tensor, it: int
                    ) -> tuple[Tensor, Tensor]:
        try:
            return _node_voltages(df, Vs, Ju, Jw, g_r, g_c, method)
        except SingularNetwork:
            raise NotConverged(
                f"solve_nonlinear: the network linearised at Newton step {it} is singular in "
                f"float64: cell dI/dV spans {float(df.min()):.3e} .. {float(df.max()):.3e} S "
                f"against wire conductances {g_r:.3g} / {g_c:.3g} S (an I-V this steep at "
                f"inputs up to {v_scale:.3g} V)") from None

    _, df0 = _cell_eval(current, derivative, g, zero)
    u, w = linear_step(df0, Vs, zero, zero, 0)
    Fu, Fw, df, norm = residual(u, w)
    done = torch.zeros(shape[:-2], dtype=torch.bool, device=G.device)
    for it in range(1, max_iter + 1):
        du, dw = linear_step(df, torch.zeros_like(Vs), -Fu, -Fw, it)
        step = torch.maximum(du.abs(), dw.abs()).flatten(-2).amax(-1)
        alpha = torch.where(done, 0.0, 1.0).to(_F64)
        small = step <= tol * v_scale
        accepted = done | small
        while True:
            a = alpha[..., None, None]
            cand = residual(u + a * du, w + a * dw)
            ok = accepted | (cand[3] <= (1.0 - 1e-4 * alpha) * norm)
            if bool(ok.all()):
                break
            if float(alpha[~ok].max()) < 2.0**-40:
                raise NotConverged(
                    f"solve_nonlinear: line search failed at iteration {it}; Kirchhoff residual "
                    f"{float(norm.max()) ** 0.5:.3e} A (tol too tight for float64, or a bad I-V)"
                )
            alpha = torch.where(ok, alpha, 0.5 * alpha)
        u, w = u + alpha[..., None, None] * du, w + alpha[..., None, None] * dw
        Fu, Fw, df, norm = cand
        done = done | small
        if bool(done.all()):
            I = g_c * w[..., -1, :] if not math.isinf(g_c) else _cell_eval(
                current, derivative, g, u)[0].sum(-2)
            return (I[..., 0, :] if vec else I).to(out)
    raise NotConverged(
        f"solve_nonlinear did not converge in {max_iter} iterations: largest Newton step "
        f"{float(step.max()):.3e} V > tol * max|V| = {tol * v_scale:.3e} V, Kirchhoff residual "
        f"{float(norm.max()) ** 0.5:.3e} A; allowed: raise max_iter or tol"
    )
