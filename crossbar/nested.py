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
so an a x b block has up to ``2 a + 2 b`` ports and the work is dominated by the last merges.

Open far ends: the right ends of the row wires and the top ends of the column wires carry no
current. While the blocks are many (more than :data:`_CLASS_BLOCKS` per array) every block keeps
all four sides, so a level is one batched factorization over all blocks; after that the blocks
are merged one pair at a time (batched over the arrays), and a block on the array's top or right
edge eliminates its open ports in the same Schur step as its shared ones, so the last merges
carry about half the ports (1.1 GFlop for a 256 x 256 array, 2.0 with the open ends eliminated
last and a final solve: :func:`nested_cost`).

Layout. The cells are numbered so that at every level the first half of the blocks pairs with
the second half (the bit of the row or column index merged next is the most significant), and a
block's ports are kept in the order its next merge needs (left, top, bottom, right before a
merge along the columns; top, left, right, bottom before one along the rows): the shared ports
and the others are contiguous runs, and a merge copies whole runs. While at most
:data:`_LAST_SHARED` ports are shared, the blocks' index is the last dimension of the port
matrices (p, p, N) and the elimination runs pivot by pivot (Gaussian elimination of the
shared ports, as stable as Cholesky's for these positive definite blocks and with ~2.5x fewer
torch calls per pivot than column-by-column Cholesky factors: these levels are many small
operations), vectorized over the blocks; then the first, with batched Cholesky factors and
matrix products.

The crossings in column 0 reach their source through a whole segment, and those in the last
row their virtual ground, so the whole array's ports are the sources and the grounds themselves,
and its port matrix K gives the effective matrix without a further solve: the current into
ground j per volt at source i is ``-K[ground j, source i]`` (the last merge forms only that
block).
Arrays whose sides are not powers of two are padded with open cells (G = 0) beyond their open
ends (rows before row 0, columns after column C-1), which carry no current and change nothing.
Port matrices hold conductances of the wires (1/r) with the cells' much smaller conductances as
corrections: float64 keeps those to ~1e-16 * g_wire / G relative, as the row sweep does.

Mixed precision (``effective_nested(..., mixed=True)``, own derivation). Plain float32 port
matrices lose the cells (2e-3 of error at 256 x 256, measured). Instead each block's matrix is
split as K = W + D, W its wires alone in closed form (independent row and column chains, one
conductance per block and direction) and D the cells' part, formed in float64 at the crossings
and carried in float32. A merge updates D alone (:func:`_merge`), every term of the cells'
size. While the blocks are all alike (more than :data:`_MIXED_CLASS_BLOCKS` per array) the
merges run so; then K = W + D is formed in float64 and the last three merges run as above (in
float32 they left up to 8e-7 of error at 512 x 512). Measured error 4e-8-8e-8 (column
currents, all rows at 1 V) at 256 x 256 and 512 x 512, 0.25-25 and 4-100 uS, 0.1-4 ohm;
1.3-1.7x faster than float64 (BENCHMARKS.md).

A stack of arrays is solved in batches of about one 256 x 256 array's port matrices (larger
batches fall out of the caches), each with one torch thread; with two or more torch threads
the batches run on memxbar's helper threads, so the result does not depend on the thread
count.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from memxbar.devices.base import in_parallel_single_threaded
from memxbar.errors import ConfigError

__all__ = ["effective_nested", "nested_cost", "sweep_cost"]


class SingularNetwork(ConfigError, RuntimeError):
    """The network's nodal matrix is not positive definite in floating point: a NaN conductance,
    or cell and wire conductances too far apart (e.g. a cell I-V this steep at these voltages)."""


_F64 = torch.float64
# port-matrix entries per batch: one 256 x 256 array (larger batches fall out of the caches
# and ran 1.7-2x slower per array, measured)
BATCH_ENTRIES = 1 << 20
# on an accelerator: ~128 arrays of 256 x 256 at once (1 GiB of float64 per level of merges),
# so that each kernel launch does many arrays' work
BATCH_ENTRIES_ACCELERATOR = 1 << 27
_LAST_SHARED = 8  # shared ports up to which the blocks' index is the last dimension
_CLASS_BLOCKS = 8  # blocks per array up to which pairs merge one by one, open sides dropped
_MIXED_CLASS_BLOCKS = 4  # the same for the mixed path (whose last three merges run in float64)

Sides = tuple[int, int, int, int]  # port counts of a block's left, top, bottom, right sides
Run = tuple[int | None, int | None, int]  # a run of ports: offset in A, offset in B, length
_L, _T, _B, _R = range(4)


def _pow2(n: int) -> int:
    return 1 << max(0, (n - 1).bit_length())


def _padded(R: int, C: int) -> tuple[int, int]:
    return _pow2(R), max(2, _pow2(C))  # at least one merge


def _directions(Rp: int, Cp: int) -> list[bool]:
    """Merge directions (True: along the columns) from single crossings to the whole array."""
    h = w = 1
    out = []
    while (h, w) != (Rp, Cp):
        horizontal = w < Cp and (w <= h or h == Rp)
        out.append(horizontal)
        h, w = (h, 2 * w) if horizontal else (2 * h, w)
    return out


def _order(horizontal: bool) -> tuple[int, ...]:
    """Side order before a merge along the columns (shared right ends last, left ends first)
    or along the rows (shared bottom ends last, top ends first)."""
    return (_L, _T, _B, _R) if horizontal else (_T, _L, _R, _B)


def _offsets(sides: Sides, horizontal: bool) -> list[int]:
    off, pos = [0] * 4, 0
    for side in _order(horizontal):
        off[side], pos = pos, pos + sides[side]
    return off


def nested_cost(R: int, C: int) -> float:
    """Flops (approximate) of :func:`effective_nested` for one R x C array."""
    Rp, Cp = _padded(R, C)
    h = w = 1
    total = 0.0
    for horizontal in _directions(Rp, Cp):
        s = h if horizontal else w  # shared ports
        h, w = (h, 2 * w) if horizontal else (2 * h, w)
        nr, nc = Rp // h, Cp // w
        classes = nr * nc <= _CLASS_BLOCKS
        for top, right, count in ((1, 1, 1), (1, 0, nc - 1), (0, 1, nr - 1),
                                  (0, 0, (nr - 1) * (nc - 1))):
            if classes:  # open sides dropped (eliminated in the step that reaches them)
                p = 2 * (h + w) - top * w - right * h
                e = s + top * w + right * h if nr * nc * 2 > _CLASS_BLOCKS else s
            else:
                p, e = 2 * (h + w), s
            product = 2.0 * Rp * Cp * e if nr * nc == 1 else 2.0 * p * p * e  # last: one block
            total += count * (product + p * e * e + e**3 / 3)
    return total


def sweep_cost(R: int, C: int) -> float:
    """Flops (approximate) of the row sweep (:func:`memxbar.crossbar.circuit`) for one array,
    in the orientation it picks (dense blocks of min(R, C))."""
    m, n = min(R, C), max(R, C)
    return n * (2.0 * m**3 + m**3 / 3) + n * n * m * m


def _crossings(G: Tensor, ends: dict[int, Tensor | float], horizontal: bool) -> Tensor:
    """Port matrices ``(4, 4, N)`` of single crossings G (N,), ports in :func:`_order`;
    ``ends``: the conductance from each side's port to the crossing's row node (left, right)
    or column node (top, bottom): a half segment, or a whole one where the port is the source
    or the virtual ground itself."""
    aL, aR, cT, cB = ends[_L], ends[_R], ends[_T], ends[_B]
    # inner nodes u (row), w (column): [[aL + aR + G, -G], [-G, cT + cB + G]]
    du, dw = G + aL + aR, G + cT + cB
    det = du * dw - G * G
    inv = {(0, 0): dw / det, (1, 1): du / det, (0, 1): G / det, (1, 0): G / det}
    node = {_L: 0, _R: 0, _T: 1, _B: 1}
    pos = _offsets((1, 1, 1, 1), horizontal)
    K = G.new_empty((4, 4, G.shape[0]))
    for i in range(4):
        for j in range(i, 4):  # ports couple to their node only: K = diag(g) - g g^T inv
            k = -(ends[i] * ends[j]) * inv[node[i], node[j]]
            if i == j:
                k = k + ends[i]
            K[pos[i], pos[j]] = k
            K[pos[j], pos[i]] = k
    return K


def _block(X: Tensor, r0: int, nr: int, c0: int, nc: int, last: bool) -> Tensor:
    """Rows r0.. and columns c0.. of port matrices X: (p, p, N) if ``last`` else (..., p, p)."""
    if last:
        return X[r0:r0 + nr, c0:c0 + nc]
    return X[..., r0:r0 + nr, c0:c0 + nc]


def _fill(out: Tensor, A: Tensor, B: Tensor, rows: list[Run], cols: list[Run],
          last: bool, add: bool = False) -> Tensor:
    """``out`` from A's and B's entries between the runs of ports (their sum where both hold
    a run, as for the shared ports; zero where neither holds both); ``add``: added to
    ``out``."""
    pr = 0
    for ra, rb, nr in rows:
        pc = 0
        for ca, cb, nc in cols:
            in_a, in_b = ra is not None and ca is not None, rb is not None and cb is not None
            if in_a or in_b or not add:  # (nothing to add where neither holds the block)
                dst = _block(out, pr, nr, pc, nc, last)
                done = add
                if in_a:
                    src = _block(A, ra, nr, ca, nc, last)  # type: ignore[arg-type]
                    dst.add_(src) if done else dst.copy_(src)
                    done = True
                if in_b:
                    src = _block(B, rb, nr, cb, nc, last)  # type: ignore[arg-type]
                    dst.add_(src) if done else dst.copy_(src)
                    done = True
                if not done:
                    dst.zero_()
            pc += nc
        pr += nr
    return out


def _eliminate(S: Tensor, Koi: Tensor, Kii: Tensor, infos: list[Tensor], last: bool,
               split: int | None = None) -> None:
    """``S = -Koi Kii^-1 Koi^T``, S overwritten (Kii positive definite); ``last``: the blocks'
    index is the last dimension (a few eliminated ports), else the first; ``split``: only the
    block of S between the ports from ``split`` on (rows) and those before it (columns)."""
    s = Kii.shape[1] if last else Kii.shape[-1]
    if last:  # elimination pivot by pivot, vectorized over the blocks (few shared ports)
        assert split is None  # the last merge runs with the blocks' index first
        K, Y = Kii.clone(), Koi.clone()  # (s, s, N), (p, s, N), reduced in place
        for j in range(s):
            piv = K[j, j]
            infos.append(~(piv > 0))  # not positive definite (or NaN)
            inv = piv.reciprocal()
            y = Y[:, j]
            if j + 1 < s:  # the remaining shared ports: K -= k k^T / piv, Y -= y k^T / piv
                kr = K[j, j + 1:] * inv
                K[j + 1:, j + 1:].addcmul_(K[j + 1:, j, None], kr[None], value=-1.0)
                Y[:, j + 1:].addcmul_(y[:, None], kr[None], value=-1.0)
            yr = y * inv
            if j:
                S.addcmul_(yr[:, None], y[None, :], value=-1.0)
            else:
                torch.mul(yr[:, None], y[None, :].neg(), out=S)
        return
    if s <= 2:  # closed-form Cholesky; the update as outer products
        k = [[Kii[..., i, j, None] for j in range(s)] for i in range(s)]
        o = [Koi[..., j] for j in range(s)]
        l11 = k[0][0].sqrt()
        infos.append(torch.isnan(l11))
        ys = [o[0] / l11]
        if s == 2:
            l21 = k[1][0] / l11
            l22 = (k[1][1] - l21 * l21).sqrt()
            infos.append(torch.isnan(l22))
            ys.append((o[1] - l21 * ys[0]) / l22)
        c = ys[0].shape[-1] if split is None else split
        r = 0 if split is None else split
        torch.mul(ys[0][..., r:, None], ys[0][..., None, :c].neg(), out=S)
        for y in ys[1:]:
            S.addcmul_(y[..., r:, None], y[..., None, :c], value=-1.0)
        return
    L, info = torch.linalg.cholesky_ex(Kii)
    infos.append(info != 0)
    out = S.view(-1, *S.shape[-2:])
    if Kii.dtype == torch.float32:  # X = Koi L^-T: solved from the right, 2x faster there
        X = torch.linalg.solve_triangular(L.mT, Koi, upper=True, left=False)
        X = X.reshape(-1, *X.shape[-2:])
        Xr, Xc = (X, X) if split is None else (X[:, split:], X[:, :split])
        torch.baddbmm(out, Xr, Xc.mT, beta=0.0, alpha=-1.0, out=out)
        return
    Y = torch.linalg.solve_triangular(L, Koi.mT, upper=False)
    Yr, Yc = (Y, Y) if split is None else (Y[..., split:], Y[..., :split])
    torch.baddbmm(out, Yr.mT.reshape(-1, Yr.shape[-1], s), Yc.reshape(-1, s, Yc.shape[-1]),
                  beta=0.0, alpha=-1.0, out=out)


Wires = tuple[Tensor, Tensor]  # a block's row and column wire-chain conductances (S), per block
Label = tuple[str, int]  # a run of ports: block "A", "B" or "S" (the shared ports), side


def _series(a: Tensor, b: Tensor) -> Tensor:
    return a * b / (a + b)


def _wire_terms(horizontal: bool, wa: Wires, wb: Wires
                ) -> tuple[list[tuple[Label, Label, Tensor]], Tensor, Wires]:
    """The wires-alone part W of a merge of two blocks with all four sides: ``Z = W_ii^-1
    W_io`` as (kept run, shared run, coefficient) (the runs couple index by index), the
    diagonal ``W_ii`` (S), and the merged block's chain conductances. A block's wires alone
    are independent row and column chains, each joining its two ends with ``1 / (length r)``;
    the shared ends join A's chains to their far ends (left or top) and B's to theirs."""
    (ra, ca), (rb, cb) = wa, wb
    S: Label = ("S", -1)
    if horizontal:  # A's right ends are B's left ends
        ga, gb, a_end, b_end, new = ra, rb, ("A", _L), ("B", _R), (_series(ra, rb), ca)
    else:  # A's bottom ends are B's top ends
        ga, gb, a_end, b_end, new = ca, cb, ("A", _T), ("B", _B), (ra, _series(ca, cb))
    total = ga + gb
    return [(a_end, S, -ga / total), (b_end, S, -gb / total)], total, new


def _coef(v: Tensor, last: bool, dtype: torch.dtype) -> Tensor:
    """A per-block coefficient (N,) shaped to broadcast over port blocks of the layout."""
    v = v.to(dtype)
    return v if last else v.view(-1, 1, 1)


def _merge(A: Tensor, B: Tensor, sa: Sides, sb: Sides, horizontal: bool, nxt: bool,
           drop: tuple[bool, bool], infos: list[Tensor], last: bool,
           final: bool = False, wires: tuple[Wires, Wires] | None = None
           ) -> tuple[Tensor, Sides, Wires | None]:
    """Merge blocks A (left or upper) and B, ports in :func:`_order` of ``horizontal``, with
    side counts ``sa``, ``sb``: the merged block's matrix, ports in the order of the next
    merge (``nxt``), with its open top and/or right side (``drop``) eliminated together with
    the shared ports, its side counts, and (``wires``) its chain conductances.
    ``last``: port matrices (p, p, N), else (..., p, p). ``final``: the whole array; only its
    block between the grounds (rows) and the sources (columns) is formed.

    ``wires`` (A's and B's row and column chain conductances, per block; blocks with all four
    sides, none dropped, not ``final``): A and B hold only the cells' parts D of their port
    matrices (K = W + D, W the wires alone), and so does the result. With
    ``Z = W_ii^-1 W_io`` and ``E = D_io - D_ii Z`` (all of the cells' size):
    ``D_new = D_oo - Z^T D_io - E^T Z - E^T K_ii^-1 E``, the Schur complement of K less that
    of W (own derivation: the congruence that moves the eliminated ports to the wires' own
    solution), so the wires' large conductances never meet the cells' small ones in a sum."""
    oa, ob = _offsets(sa, horizontal), _offsets(sb, horizontal)
    runs: dict[Label, Run] = {}
    for side in range(4):
        runs["A", side] = (oa[side], None, sa[side])
        runs["B", side] = (None, ob[side], sb[side])
    if horizontal:  # A's right ends are B's left ends
        runs["S", -1] = (oa[_R], ob[_L], sa[_R])
        parts: dict[int, list[Label]] = {_L: [("A", _L)], _T: [("A", _T), ("B", _T)],
                                         _B: [("A", _B), ("B", _B)], _R: [("B", _R)]}
    else:  # A's bottom ends are B's top ends
        runs["S", -1] = (oa[_B], ob[_T], sa[_B])
        parts = {_T: [("A", _T)], _L: [("A", _L), ("B", _L)], _R: [("A", _R), ("B", _R)],
                 _B: [("B", _B)]}
    gone = {side for side, d in zip((_T, _R), drop, strict=True) if d}
    keep_l = [x for side in _order(nxt) if side not in gone for x in parts[side] if runs[x][2]]
    elim_l = [("S", -1)] + [x for side in sorted(gone) for x in parts[side] if runs[x][2]]
    keep, elim = [runs[x] for x in keep_l], [runs[x] for x in elim_l]
    pk, pe = sum(r[2] for r in keep), sum(r[2] for r in elim)
    if last:
        def new(m: int, q: int) -> Tensor:
            return A.new_empty((m, q, A.shape[-1]))
    else:
        lead = torch.broadcast_shapes(A.shape[:-2], B.shape[:-2])

        def new(m: int, q: int) -> Tensor:
            return A.new_empty((*lead, m, q))
    Koi, Kii = _fill(new(pk, pe), A, B, keep, elim, last), _fill(new(pe, pe), A, B, elim, elim,
                                                                  last)
    merged: Wires | None = None
    Et = Koi
    if wires is not None:
        assert not (final or any(drop))
        z, w_ii, merged = _wire_terms(horizontal, *wires)
        kpos = dict(zip(keep_l, _starts(keep), strict=True))
        zc = [(kpos[k], 0, pe, _coef(v, last, A.dtype)) for k, _, v in z]  # pe: shared only
        Et = Koi.clone()  # E^T = D_oi - Z^T D_ii
        for k0, e0, n, v in zc:
            _block(Et, k0, n, 0, pe, last).addcmul_(_block(Kii, e0, n, 0, pe, last), v,
                                                    value=-1.0)
        c = _coef(w_ii, last, A.dtype)  # K_ii = W_ii + D_ii
        _diag(Kii, last).add_(c[:, None] if last else c[..., 0])
    if final:  # the whole array: only its grounds' rows and sources' columns are needed
        nl = sum(runs[x][2] for x in parts[_L])
        S = new(pk - nl, nl)
        _eliminate(S, Et, Kii, infos, last, split=nl)
        bottom = [runs[x] for x in parts[_B] if runs[x][2]]
        _fill(S, A, B, bottom, [runs[x] for x in parts[_L] if runs[x][2]], last, add=True)
        sides: Sides = (nl, 0, pk - nl, 0)
    else:
        S = new(pk, pk)
        _eliminate(S, Et, Kii, infos, last)
        _fill(S, A, B, keep, keep, last, add=True)
        size = [0 if side in gone else sum(runs[x][2] for x in parts[side]) for side in range(4)]
        sides = (size[0], size[1], size[2], size[3])
    if wires is not None:  # - Z^T D_io (rows), - E^T Z (columns)
        for k0, e0, n, v in zc:
            rows = _block(Koi, 0, pk, e0, n, last)
            _block(S, k0, n, 0, pk, last).addcmul_(rows.transpose(0, 1) if last else rows.mT,
                                                   v, value=-1.0)
            _block(S, 0, pk, k0, n, last).addcmul_(_block(Et, 0, pk, e0, n, last), v,
                                                   value=-1.0)
    return S, sides, merged


def _starts(rs: list[Run]) -> list[int]:
    out, pos = [], 0
    for r in rs:
        out.append(pos)
        pos += r[2]
    return out


def _diag(X: Tensor, last: bool) -> Tensor:
    """The diagonal of square port blocks X (n, n, N) if ``last`` else (..., n, n), as a view
    (N, n) or (..., n)."""
    return X.diagonal(0, 0, 1) if last else X.diagonal(0, -2, -1)


def _merge_order(G: Tensor, dirs: list[bool]) -> Tensor:
    """Cells G (n, Rp, Cp) flattened so that the blocks of every level pair up as the first
    and the second half: the bit of the row or column index merged first is the most
    significant, the array index the least."""
    n, Rp, Cp = G.shape
    kr, kc = Rp.bit_length() - 1, Cp.bit_length() - 1
    dims, cr, cc = [], 0, 0
    for horizontal in dirs:
        if horizontal:
            dims.append(1 + kr + kc - 1 - cc)
            cc += 1
        else:
            dims.append(1 + kr - 1 - cr)
            cr += 1
    return G.reshape(n, *[2] * (kr + kc)).permute(*dims, 0).reshape(-1)


def _positions(dirs: list[bool], k: int) -> list[tuple[int, int]]:
    """(block row, block column) of each block after the first ``k`` merges, in the order of
    :func:`_merge_order`."""
    rest = dirs[k:]
    mr, mc = k - sum(dirs[:k]), sum(dirs[:k])  # row and column bits merged so far
    out = []
    for b in range(1 << len(rest)):
        i = j = 0
        cr, cc = mr, mc
        for t, horizontal in enumerate(rest):
            bit = (b >> (len(rest) - 1 - t)) & 1
            if horizontal:
                j, cc = j + (bit << (cc - mc)), cc + 1
            else:
                i, cr = i + (bit << (cr - mr)), cr + 1
        out.append((i, j))
    return out


def _batch_first(K: Tensor) -> Tensor:
    """(p, p, N) -> (N, p, p), by torch's tiled 2-D transpose (2x faster than a permute)."""
    p, N = K.shape[0], K.shape[-1]
    return K.reshape(p * p, N).t().contiguous().view(N, p, p)


def _top_block(G: Tensor, a: float, c: float, infos: list[Tensor],
               split: torch.dtype | None = None) -> Tensor:
    """The block (n, Cp, Rp) of the port matrix of whole padded arrays G (n, Rp, Cp) between
    the virtual grounds (column order) and the sources (row order). ``split``: the merges
    carry only the cells' parts D = K - W of the port matrices, in that dtype (the crossings'
    D formed in float64); W, the wires alone, is zero between sources and grounds."""
    n, Rp, Cp = G.shape
    dirs = _directions(Rp, Cp)
    # the row wires' sources are at column 0's left ends, the columns' grounds at row Rp - 1's
    # bottom ends: there the port is the source (ground) itself, one whole segment away
    edge = torch.zeros((2, 1, Rp, Cp), dtype=G.dtype, device=G.device)
    edge[0, :, :, 0] = edge[1, :, -1, :] = 1.0
    left, bottom = (_merge_order(x, dirs).repeat_interleave(n) for x in edge)
    a_left, c_bottom = a - 0.5 * a * left, c - 0.5 * c * bottom
    ends: dict[int, Tensor | float] = {_L: a_left, _R: a, _T: c, _B: c_bottom}
    K = _crossings(_merge_order(G, dirs), ends, dirs[0])
    wires: Wires | None = None
    if split is not None:  # K - W: the row chain joins left and right, the column's top, bottom
        wires = (_series(a_left, torch.full_like(left, a)),
                 _series(torch.full_like(bottom, c), c_bottom))
        pos = _offsets((1, 1, 1, 1), dirs[0])
        for (i, j), g in (((_L, _R), wires[0]), ((_T, _B), wires[1])):
            K[pos[i], pos[i]] -= g
            K[pos[j], pos[j]] -= g
            K[pos[i], pos[j]] += g
            K[pos[j], pos[i]] += g
        K = K.to(split)
    last = True  # (p, p, N) while at most _LAST_SHARED ports are shared, then (N, p, p)
    classes = _CLASS_BLOCKS if split is None else _MIXED_CLASS_BLOCKS
    sides: Sides = (1, 1, 1, 1)
    h = w = 1
    blocks: list[tuple[Tensor, Sides, tuple[int, int], Wires | None]] | None = None
    for k, horizontal in enumerate(dirs):
        nxt = dirs[k + 1] if k + 1 < len(dirs) else True
        s = sides[_R] if horizontal else sides[_B]
        h, w = (h, 2 * w) if horizontal else (2 * h, w)
        nr, nc = Rp // h, Cp // w
        if blocks is None and nr * nc > classes:  # every block alike: one batch
            if last and s > _LAST_SHARED:
                K, last = _batch_first(K), False
            half = (K.shape[-1] if last else K.shape[0]) // 2
            A, B = (K[..., :half], K[..., half:]) if last else (K[:half], K[half:])
            pair = None if wires is None else ((wires[0][:half], wires[1][:half]),
                                               (wires[0][half:], wires[1][half:]))
            K, sides, wires = _merge(A, B, sides, sides, horizontal, nxt, (False, False),
                                     infos, last, wires=pair)
            continue
        if blocks is None:
            if last:
                K, last = _batch_first(K), False
            if wires is not None:  # the last merges on K = W + D in float64: float32 there
                # left 3e-7-8e-7 of error at 256 x 256 and 512 x 512 (4-100 uS, 1-4 ohm)
                K, wires = _with_wires(K.to(_F64), sides, wires, horizontal), None
            blocks = [(K[b * n:(b + 1) * n], sides, ij, None if wires is None else
                       (wires[0][b * n:(b + 1) * n], wires[1][b * n:(b + 1) * n]))
                      for b, ij in enumerate(_positions(dirs, k))]
        half = len(blocks) // 2
        merged = []
        for (KA, sa, (i, j), wa), (KB, sb, _, wb) in zip(blocks[:half], blocks[half:],
                                                        strict=True):
            i, j = (i, j // 2) if horizontal else (i // 2, j)
            S, sd, wm = _merge(KA, KB, sa, sb, horizontal, nxt, (i == 0, j == nc - 1), infos,
                               False, final=k + 1 == len(dirs),
                               wires=None if wa is None or wb is None else (wa, wb))
            merged.append((S, sd, (i, j), wm))
        blocks = merged
    assert blocks is not None and blocks[0][1] == (Rp, 0, Cp, 0)  # only sources and grounds
    return blocks[0][0]


def _with_wires(D: Tensor, sides: Sides, wires: Wires, horizontal: bool) -> Tensor:
    """Port matrices (N, p, p) of blocks with all four sides from their cells' parts D
    (overwritten) and their wires' row and column chain conductances (N,)."""
    off = _offsets(sides, horizontal)
    for (i, j), g in (((_L, _R), wires[0]), ((_T, _B), wires[1])):
        n, v = sides[i], g.to(D.dtype)[:, None]
        _diag(_block(D, off[i], n, off[i], n, False), False).add_(v)
        _diag(_block(D, off[j], n, off[j], n, False), False).add_(v)
        _diag(_block(D, off[i], n, off[j], n, False), False).sub_(v)
        _diag(_block(D, off[j], n, off[i], n, False), False).sub_(v)
    return D


def _effective(G: Tensor, g_r: float, g_c: float, split: torch.dtype | None = None) -> Tensor:
    """Effective matrices (n, R, C) of arrays G (n, R, C), float64 (``split``: the cells'
    parts carried in that dtype, :func:`_top_block`)."""
    R, C = G.shape[-2:]
    Rp, Cp = _padded(R, C)
    if (Rp, Cp) != (R, C):  # open cells before row 0 and after column C-1
        G = torch.nn.functional.pad(G, (0, Cp - C, Rp - R, 0))
    infos: list[Tensor] = []
    K = _top_block(G, 2.0 * g_r, 2.0 * g_c, infos, split)
    if bool(torch.cat([i.reshape(-1) for i in infos]).any()):
        raise SingularNetwork("crossbar network matrix is not positive definite (check G and r)")
    # the current into ground j per volt at source i is minus the port matrix's entry between
    # them (the real rows are the last R sources, the real columns the first C grounds)
    return K[:, :C, Rp - R:].mT.contiguous().neg_()


def effective_nested(G: Tensor, g_r: float, g_c: float, *, mixed: bool = False) -> Tensor:
    """Effective conductance matrix ``(..., R, C)`` (S) of arrays ``G`` (..., R, C) (S) with
    finite wire conductances ``g_r = 1 / r_row`` and ``g_c = 1 / r_col`` (S), in float64.

    ``mixed``: the cells' parts of the port matrices carried in float32 through all merges
    but the last three (float64; module docstring), 1.3-1.7x faster; relative error (column
    currents, all rows at 1 V) 4e-8-8e-8 at 256 x 256 and 512 x 512, 0.25-25 and 4-100 uS,
    0.1-4 ohm, against ~1e-12 in float64: for results stored in float32 (rounding 6e-8),
    as the tiles' (whose check redoes a solve beyond its tolerance in float64).

    A stack of arrays is solved in batches of about :data:`BATCH_ENTRIES` port-matrix entries
    (each level of merges holds ~16 R C per array; :data:`BATCH_ENTRIES_ACCELERATOR` on a
    GPU), on the CPU each with one torch thread, on memxbar's helper threads when torch has
    two or more: the same bits for any thread count (a lone array on two torch threads was
    1.1x faster, and differed by 1e-15)."""
    G = G.to(_F64)
    R, C = G.shape[-2:]
    lead = G.shape[:-2]
    n = math.prod(lead)
    Rp, Cp = _padded(R, C)
    budget = BATCH_ENTRIES if G.device.type == "cpu" else BATCH_ENTRIES_ACCELERATOR
    per = max(1, budget // (16 * Rp * Cp))
    flat = G.reshape(n, R, C)
    chunks = [flat[i:i + per] for i in range(0, n, per)]
    split = torch.float32 if mixed else None
    parts: list[Tensor] = [G.new_empty(0)] * len(chunks)

    def run(ks: range) -> None:
        for k in ks:
            parts[k] = _effective(chunks[k], g_r, g_c, split)

    if G.device.type != "cpu":
        run(range(len(chunks)))
    else:  # one torch thread per batch: torch's kernels round by their split points
        in_parallel_single_threaded(run, len(chunks))
    return (parts[0] if len(parts) == 1 else torch.cat(parts)).reshape(*lead, R, C)
