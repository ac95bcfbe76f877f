"""The IR-drop solver against closed forms and an independent dense nodal analysis."""

import math

import numpy as np
import pytest
import torch

from memxbar.crossbar.circuit import NotConverged, effective_conductance, solve, solve_nonlinear

F64 = torch.float64


def nodal_reference(G, V, r_row, r_col, cell_voltages=False):
    """Column currents (B, C) by plain dense nodal analysis of the DESIGN.md topology (and the
    cell voltages (B, R, C) if asked).

    A node is an unknown index or a fixed potential; ideal wires (r = 0) pin the row nodes to
    their source and the column nodes to the virtual ground.
    """
    R, C = G.shape
    out, vc = np.empty((V.shape[0], C)), np.empty((V.shape[0], R, C))
    for b, v in enumerate(V):
        idx: dict = {}
        row = {(i, j): (v[i] if r_row == 0 else idx.setdefault(("u", i, j), len(idx)))
               for i in range(R) for j in range(C)}
        col = {(i, j): (0.0 if r_col == 0 else idx.setdefault(("w", i, j), len(idx)))
               for i in range(R) for j in range(C)}
        A, rhs = np.zeros((len(idx), len(idx))), np.zeros(len(idx))
        link = _linker(A, rhs)
        for i in range(R):
            for j in range(C):
                link(row[i, j], col[i, j], G[i, j])
                if r_row:
                    link(float(v[i]) if j == 0 else row[i, j - 1], row[i, j], 1 / r_row)
                if r_col:
                    link(col[i, j], 0.0 if i == R - 1 else col[i + 1, j], 1 / r_col)
        x = np.linalg.solve(A, rhs) if idx else np.zeros(0)
        val = {k: x[n] for k, n in idx.items()}
        for i in range(R):
            for j in range(C):
                vc[b, i, j] = (val["u", i, j] if r_row else v[i]) - (val["w", i, j] if r_col else 0)
        for j in range(C):
            if r_col:
                out[b, j] = val["w", R - 1, j] / r_col
            else:
                out[b, j] = sum(G[i, j] * vc[b, i, j] for i in range(R))
    return (out, vc) if cell_voltages else out


def _linker(A, rhs):
    def link(a, c, g):  # conductance g between nodes a and c (int: unknown, float: fixed)
        for p, q in ((a, c), (c, a)):
            if isinstance(p, int):
                A[p, p] += g
                if isinstance(q, int):
                    A[p, q] -= g
                else:
                    rhs[p] += g * q

    return link


def random_array(R, C, seed, lo=1e-5, hi=1e-3):
    gen = torch.Generator().manual_seed(seed)
    G = lo * (hi / lo) ** torch.rand(R, C, generator=gen, dtype=F64)  # two decades
    V = 0.05 + 0.15 * torch.rand(3, R, generator=gen, dtype=F64)
    return G, V


def rel_err(a, b):
    """max |a - b| / max |b| (normwise: open cells may leave a column without current)."""
    a, b = torch.as_tensor(a), torch.as_tensor(b)
    return float((a - b).abs().max() / b.abs().max())


@pytest.mark.parametrize("R, C, r_row, r_col", [
    (1, 1, 2.0, 3.0), (1, 6, 0.5, 4.0), (6, 1, 4.0, 0.5), (5, 5, 1.0, 1.0),
    (4, 9, 10.0, 0.1), (9, 4, 0.1, 10.0),  # C > R runs the mirrored orientation
    (5, 7, 0.0, 3.0), (7, 5, 3.0, 0.0), (3, 4, 0.0, 0.0),
])
def test_matches_dense_nodal_analysis(R, C, r_row, r_col):
    G, V = random_array(R, C, seed=R * 10 + C)
    if C > 1:
        G[0, -1] = 0.0  # an open cell
    ref = nodal_reference(G.numpy(), V.numpy(), r_row, r_col)
    assert rel_err(solve(G, V, r_row, r_col), ref) < 1e-12
    assert rel_err(V @ effective_conductance(G, r_row, r_col), ref) < 1e-12


def test_single_cell_is_a_series_circuit():
    G = torch.tensor([[2e-3]], dtype=F64)
    I = solve(G, torch.tensor([0.3], dtype=F64), 7.0, 11.0)
    torch.testing.assert_close(I, torch.tensor([0.3 / (7.0 + 500.0 + 11.0)], dtype=F64),
                               rtol=1e-14, atol=0)


def test_ideal_wires_return_g_exactly():
    G, V = random_array(5, 7, seed=3)
    assert torch.equal(effective_conductance(G, 0.0, 0.0), G)
    assert torch.equal(solve(G, V, 0.0, 0.0), V @ G)
    assert torch.equal(solve(G, V, 0.0, 0.0, method="cg"), V @ G)
    G32 = G.float()
    assert torch.equal(effective_conductance(G32, 0, 0), G32)


def test_ir_drop_grows_with_wire_resistance_and_with_distance():
    G = torch.full((16, 16), 1e-3, dtype=F64)
    V = torch.full((1, 16), 0.2, dtype=F64)
    ideal = V @ G
    losses = [float(1 - (solve(G, V, r, r) / ideal).mean()) for r in (0.1, 1.0, 10.0)]
    assert 0 < losses[0] < losses[1] < losses[2] < 1
    # the column nearest the sources gets the most current, the far one the least
    I = solve(G, V, 10.0, 0.0)[0]
    assert bool((I[1:] < I[:-1]).all())


@pytest.mark.parametrize("g, span_fallback", [(1.0, False), (1e-9, True)])
def test_line_inverse_matches_dense_inverse(g, span_fallback):
    """The O(n^2) semiseparable inverse of one line, in both of its evaluation branches."""
    from memxbar.crossbar.circuit import _EXP_SPAN, _line_factors, _line_inverse

    n = 60
    d = torch.rand(2, n, generator=torch.Generator().manual_seed(4), dtype=F64) * 1e-2
    diag, lam = _line_factors(d, g)
    assert (float(-lam[..., -1].min()) > _EXP_SPAN) == span_fallback
    L = torch.diag(torch.full((n,), 2.0, dtype=F64)) - torch.diag(torch.ones(n - 1, dtype=F64), 1)
    L = L - torch.diag(torch.ones(n - 1, dtype=F64), -1)
    L[-1, -1] = 1.0  # far end open; node 0 is tied to the source through one segment
    T = g * L + torch.diag_embed(d)
    dense = torch.linalg.inv(T)
    s = torch.rand(2, n, dtype=F64) + 0.5
    got = _line_inverse(diag, lam, s)
    want = s[..., :, None] * dense * s[..., None, :]
    assert bool(torch.isfinite(got).all())
    assert float(((got - want).abs().amax(-1) / want.abs().amax(-1)).max()) < 1e-12


def test_strongly_attenuating_lines_stay_exact():
    """Wire resistance far above 1/G: nearly all current flows through the first cells."""
    G, V = random_array(8, 9, seed=4, lo=5e-3, hi=2e-2)
    ref = nodal_reference(G.numpy(), V.numpy(), 1e5, 2e5)
    I = solve(G, V, 1e5, 2e5)
    assert bool(torch.isfinite(I).all())
    assert rel_err(I, ref) < 1e-10


def test_batching_broadcasting_and_dtype():
    G, V = random_array(6, 5, seed=5)
    G2 = torch.stack([G, 2 * G.flip(0)])  # (2, R, C)
    V2 = torch.stack([V, V.flip(0)])  # (2, B, R)
    I = solve(G2, V2, 2.0, 1.0)
    assert I.shape == (2, 3, 5)
    for k in range(2):  # alone, an array may take the other exact path (or more CG steps)
        torch.testing.assert_close(I[k], solve(G2[k], V2[k], 2.0, 1.0), rtol=1e-12, atol=0)
    assert solve(G2, V, 2.0, 1.0).shape == (2, 3, 5)  # V (B, R) shared by both arrays
    assert solve(G, V[0], 2.0, 1.0).shape == (5,)
    I32 = solve(G.float(), V.float(), 2.0, 1.0)
    assert I32.dtype == torch.float32
    assert rel_err(I32.double(), solve(G, V, 2.0, 1.0)) < 1e-6


def test_gradient_flows_to_conductances():
    G, _ = random_array(2, 3, seed=6)
    G.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda g: effective_conductance(g, 30.0, 70.0), (G,))


def cubic(g, v):
    """Test cubic cell I = G0 V + NL2 V^2 + NL3 V^3 with NL2 = 2 G0 / V, NL3 = 30 G0 / V^2."""
    return g * v + 2.0 * g * v**2 + 30.0 * g * v**3


def cubic_slope(g, v):
    return g + 4.0 * g * v + 90.0 * g * v**2


@pytest.mark.parametrize("r_row, r_col", [(3.0, 1.0), (0.0, 2.0), (2.0, 0.0), (0.0, 0.0)])
def test_nonlinear_solver_reduces_to_linear(r_row, r_col):
    G, V = random_array(7, 5, seed=7)
    I = solve_nonlinear(G, V, r_row, r_col, lambda g, v: g * v)
    assert rel_err(I, solve(G, V, r_row, r_col)) < 1e-12


def test_nonlinear_without_wires_is_the_sum_of_cell_currents():
    G, V = random_array(4, 6, seed=8)
    I = solve_nonlinear(G, V, 0.0, 0.0, cubic)
    assert rel_err(I, cubic(G, V[:, :, None]).sum(-2)) < 1e-14


@pytest.mark.parametrize("r_row, r_col", [(5.0, 2.0), (0.0, 4.0), (3.0, 0.0)])
def test_nonlinear_matches_secant_fixed_point_of_reference(r_row, r_col):
    """At the solution every cubic cell carries i = (i/v) v, so the linear reference network
    with the secant conductances i/v reproduces it; iterate that map on the dense reference."""
    G, V = random_array(4, 5, seed=9, lo=1e-4, hi=1e-2)
    I = solve_nonlinear(G, V, r_row, r_col, cubic)
    I_d = solve_nonlinear(G, V, r_row, r_col, cubic, derivative=cubic_slope)
    assert rel_err(I, I_d) < 1e-12
    assert rel_err(I, solve(G, V, r_row, r_col)) > 0.1  # the nonlinearity matters
    for b in range(V.shape[0]):
        Gs, v = G.numpy(), V[b : b + 1].numpy()
        for _ in range(100):
            I_ref, vc = nodal_reference(Gs, v, r_row, r_col, cell_voltages=True)
            Gs = cubic(G.numpy(), vc[0]) / vc[0]
        assert rel_err(I[b], I_ref[0]) < 1e-10


def test_damping_keeps_newton_convergent_on_a_wiggly_i_v(monkeypatch):
    """I = G (v + 0.95 sin(200 v) / 200) is monotone but its curvature flips sign, so full
    Newton steps overshoot; the damped iteration still lands on the series-circuit root."""
    import memxbar.crossbar.circuit as circuit

    solves, evals = [0], [0]
    node_voltages = circuit._node_voltages

    def counted(*args):
        solves[0] += 1
        return node_voltages(*args)

    def cell(g, v):
        evals[0] += 1
        return g * (v + 0.95 * torch.sin(200 * v) / 200)

    monkeypatch.setattr(circuit, "_node_voltages", counted)
    G, V, r = torch.tensor([[1e-2]], dtype=F64), 0.3, 1001.0
    I = solve_nonlinear(G, torch.tensor([V], dtype=F64), 1000.0, 1.0, cell)
    assert evals[0] > solves[0] + 1  # some steps were halved
    lo, hi = 0.0, V  # bisection of G f(v) = (V - v) / r for the cell voltage
    for _ in range(100):
        mid = 0.5 * (lo + hi)
        f = float(cell(G, torch.tensor(mid, dtype=F64)))
        lo, hi = (lo, mid) if f > (V - mid) / r else (mid, hi)
    assert abs(float(I[0]) - (V - lo) / r) < 1e-12 * float(I[0])


def test_nonconvergence_raises_with_iterations_and_residual():
    from memxbar.errors import ConfigError

    G, V = random_array(6, 6, seed=10, lo=1e-3, hi=1e-1)
    with pytest.raises(NotConverged, match=r"did not converge in 1 iterations.*residual") as e:
        solve_nonlinear(G, V, 10.0, 10.0, cubic, max_iter=1)
    assert isinstance(e.value, ConfigError) and isinstance(e.value, RuntimeError)


def test_nonlinear_refuses_bad_cells():
    G, V = random_array(3, 3, seed=11)
    with pytest.raises(ValueError, match="non-decreasing"):
        solve_nonlinear(G, V, 1.0, 1.0, lambda g, v: g * v - 100 * g * v**3)
    with pytest.raises(ValueError, match="non-finite"):
        solve_nonlinear(G, V, 1.0, 1.0, lambda g, v: g * v / (v - v))
    with pytest.raises(ValueError, match="cell-voltage shape"):
        solve_nonlinear(G, V, 1.0, 1.0, lambda g, v: (g * v).sum())
    with pytest.raises(ValueError, match="tol"):
        solve_nonlinear(G, V, 1.0, 1.0, cubic, tol=0.0)
    with pytest.raises(ValueError, match="max_iter"):
        solve_nonlinear(G, V, 1.0, 1.0, cubic, max_iter=0)
    # a cubic I-V at 1e30 V: cell slopes of 1e55 S against 1 S wires leave no positive
    # definite linearised network in float64 (was a bare RuntimeError from the factorization)
    with pytest.raises(NotConverged, match=r"singular in float64.*dI/dV spans"):
        solve_nonlinear(G, V * 1e31, 1.0, 2.5, cubic)


def test_bad_inputs_are_refused():
    G, V = random_array(4, 3, seed=12)
    with pytest.raises(ValueError, match=r"\(5,\).*\(4, 3\)|\(4, 3\).*\(5,\)"):
        solve(G, torch.ones(5, dtype=F64), 1.0, 1.0)
    with pytest.raises(ValueError, match=r"\(2, 3, 4\).*\(5, 4, 3\)"):
        solve(torch.stack([G] * 5), torch.ones(2, 3, 4, dtype=F64), 1.0, 1.0)
    with pytest.raises(ValueError, match=r"R, C\).*\(3,\)"):
        effective_conductance(G[0], 1.0, 1.0)
    bad = G.clone()
    bad[1, 1] = math.nan
    with pytest.raises(ValueError, match="non-finite"):
        solve(bad, V, 1.0, 1.0)
    with pytest.raises(ValueError, match=">= 0 S"):
        solve(-G, V, 1.0, 1.0)
    with pytest.raises(ValueError, match="non-finite"):
        solve(G, V * math.inf, 1.0, 1.0)
    for r in (-1.0, math.inf, math.nan, "1"):
        with pytest.raises(ValueError, match="r_col"):
            solve(G, V, 1.0, r)
    with pytest.raises(ValueError, match="r_row"):
        effective_conductance(G, -0.5, 1.0)
    # beyond the bound the cells are lost (1e30 ohm: the float16 array's solve broke down)
    with pytest.raises(ValueError, match=r"r_row = 1e\+30 ohm .*\[0, 1e\+06\] ohm"):
        effective_conductance(G.half(), 10**30, 1.0)


# --- the two exact paths of solve: conjugate gradients on the cell currents, effective matrix


def run_path(monkeypatch, path, fn, *args):
    """fn(*args) with solve's path forced; asserts the forced path really ran."""
    import memxbar.crossbar.circuit as circuit

    calls = {"cg": 0, "cg_ok": 0, "direct": 0}
    cg, eff, node = circuit._cg_currents, circuit._effective64, circuit._node_voltages_direct

    def counted_cg(*a):
        calls["cg"] += 1
        X = cg(*a)
        calls["cg_ok"] += X is not None
        return X

    def counted(f):
        def wrapped(*a):
            calls["direct"] += 1
            return f(*a)
        return wrapped

    with monkeypatch.context() as m:
        m.setattr(circuit, "_prefer_iterative", lambda *a: path == "iterative")
        m.setattr(circuit, "_cg_currents", counted_cg)
        m.setattr(circuit, "_effective64", counted(eff))
        m.setattr(circuit, "_node_voltages_direct", counted(node))
        out = fn(*args)
    if path == "iterative":
        assert calls["cg_ok"] >= 1 and calls["direct"] == 0, calls
    else:
        assert calls["cg"] == 0 and calls["direct"] >= 1, calls
    return out


@pytest.mark.parametrize("R, C, r_row, r_col, lo, hi", [
    (1, 1, 2.0, 3.0, 1e-5, 1e-3), (1, 7, 0.5, 4.0, 1e-5, 1e-3), (7, 1, 4.0, 0.5, 1e-5, 1e-3),
    (12, 20, 10.0, 0.1, 1e-5, 1e-3), (20, 12, 0.1, 10.0, 1e-5, 1e-3),
    (9, 6, 0.0, 3.0, 1e-5, 1e-3), (6, 9, 3.0, 0.0, 1e-5, 1e-3),
    (10, 10, 10.0, 10.0, 1e-4, 1e-2),  # wires and cells of similar resistance
])
def test_iterative_path_matches_direct_and_nodal(monkeypatch, R, C, r_row, r_col, lo, hi):
    G, V = random_array(R, C, seed=R * 7 + C, lo=lo, hi=hi)
    if C > 1:
        G[0, -1] = G[R - 1, 0] = 0.0  # open cells
    ref = nodal_reference(G.numpy(), V.numpy(), r_row, r_col)
    I_cg = run_path(monkeypatch, "iterative", solve, G, V, r_row, r_col)
    I_d = run_path(monkeypatch, "direct", solve, G, V, r_row, r_col)
    assert rel_err(I_cg, ref) < 1e-11
    assert rel_err(I_cg, I_d) < 1e-11


def test_iterative_path_batching_broadcasting_and_zero_inputs(monkeypatch):
    G, V = random_array(6, 5, seed=13)
    V[1] = 0.0  # a zero input: the CG of that system must stay 0, not 0/0
    G2 = torch.stack([G, 2 * G.flip(0)])
    V2 = torch.stack([V, V.flip(0)])
    for Gx, Vx, shape in [(G2, V2, (2, 3, 5)), (G2, V, (2, 3, 5)), (G, V[0], (5,)),
                          (G2, V[0], (2, 5)), (G2[:, None], V2, (2, 2, 3, 5))]:
        I = run_path(monkeypatch, "iterative", solve, Gx, Vx, 2.0, 1.0)
        I_d = run_path(monkeypatch, "direct", solve, Gx, Vx, 2.0, 1.0)
        assert I.shape == I_d.shape == shape
        assert rel_err(I, I_d) < 1e-12
    I = run_path(monkeypatch, "iterative", solve, G, V, 2.0, 1.0)
    assert torch.equal(I[1], torch.zeros(5, dtype=F64))
    I32 = run_path(monkeypatch, "iterative", solve, G.float(), V.float(), 2.0, 1.0)
    assert I32.dtype == torch.float32


def test_path_choice_by_batch_and_stiffness(monkeypatch):
    """One input of a 32 x 32 array: CG; a large batch: the effective matrix; wires far
    stiffer than the cells (long CG bound): the effective matrix."""
    import memxbar.crossbar.circuit as circuit

    G, V = random_array(32, 32, seed=14, lo=1e-6, hi=1e-4)
    used = []
    eff = circuit._effective64
    monkeypatch.setattr(circuit, "_effective64", lambda *a: used.append("direct") or eff(*a))
    solve(G, V[:1], 1.0, 1.0)
    assert used == []
    solve(G, V[torch.arange(256) % 3], 1.0, 1.0)
    assert used == ["direct"]
    G, V = random_array(8, 9, seed=4, lo=5e-3, hi=2e-2)
    solve(G, V[:1], 1e5, 2e5)
    assert used == ["direct", "direct"]
    used.clear()
    G.requires_grad_(True)  # gradients go through the direct path
    solve(G, V[:1], 1.0, 1.0).sum().backward()
    assert used == ["direct"] and G.grad is not None


def test_cg_that_misses_its_tolerance_falls_back_to_direct(monkeypatch):
    import memxbar.crossbar.circuit as circuit

    G, V = random_array(10, 12, seed=15)
    D = 1 / G
    weight, bound = circuit._cg_budget(D, None, 5.0, 2.0)
    assert bound > 3
    b = V[:, :, None].expand(3, 10, 12)
    assert circuit._cg_currents(D, None, weight, b, 5.0, 2.0, 2) is None  # 2 steps: too few
    X = circuit._cg_currents(D, None, weight, b, 5.0, 2.0, bound)
    assert X is not None
    budget = circuit._cg_budget
    monkeypatch.setattr(circuit, "_cg_budget", lambda *a: (budget(*a)[0], 2))
    monkeypatch.setattr(circuit, "_prefer_iterative", lambda *a: True)
    ref = nodal_reference(G.numpy(), V.numpy(), 5.0, 2.0)
    assert rel_err(solve(G, V, 5.0, 2.0), ref) < 1e-12  # exact although CG gave up
    assert rel_err(solve_nonlinear(G, V, 5.0, 2.0, cubic), solve_nonlinear(
        G, V, 5.0, 2.0, cubic, derivative=cubic_slope)) < 1e-12


def test_wire_operator_and_its_largest_eigenvalue():
    """The wire drops are the matrices min(j, k) + 1 along a row and R - max(i, m) along a
    column; _pmax is the largest eigenvalue of either."""
    from memxbar.crossbar.circuit import _pmax, _wire_drop

    R, C = 5, 7
    X = torch.randn(2, R, C, generator=torch.Generator().manual_seed(16), dtype=F64)
    j = torch.arange(C, dtype=F64)
    i = torch.arange(R, dtype=F64)
    P_row = torch.minimum(j[:, None], j[None, :]) + 1
    P_col = R - torch.maximum(i[:, None], i[None, :])
    torch.testing.assert_close(_wire_drop(X, 2.0, 0.5), 2.0 * X @ P_row + 0.5 * P_col @ X,
                               rtol=1e-13, atol=1e-13)
    assert torch.equal(_wire_drop(X, 0.0, 0.0), torch.zeros_like(X))
    for n, P in ((C, P_row), (R, P_col)):
        assert math.isclose(_pmax(n), float(torch.linalg.eigvalsh(P).max()), rel_tol=1e-12)


@pytest.mark.parametrize("r_row, r_col", [(5.0, 2.0), (0.0, 4.0), (3.0, 0.0)])
def test_nonlinear_paths_agree(monkeypatch, r_row, r_col):
    """Newton's linear steps by CG or by the direct sweep give the same answer, open cells
    (dI/dV = 0) included."""
    G, V = random_array(9, 13, seed=17, lo=1e-4, hi=1e-2)
    G[2, 3] = G[8, 0] = 0.0
    I_cg = run_path(monkeypatch, "iterative", solve_nonlinear, G, V, r_row, r_col, cubic)
    I_d = run_path(monkeypatch, "direct", solve_nonlinear, G, V, r_row, r_col, cubic)
    assert rel_err(I_cg, I_d) < 1e-12


def test_method_selects_the_path(monkeypatch):
    import memxbar.crossbar.circuit as circuit

    G, V = random_array(32, 32, seed=18)
    I_cg = run_path(monkeypatch, "iterative", solve, G, V, 2.0, 1.0)  # auto forced onto CG
    used = []
    cg, eff = circuit._cg_currents, circuit._effective64
    monkeypatch.setattr(circuit, "_cg_currents", lambda *a: used.append("cg") or cg(*a))
    monkeypatch.setattr(circuit, "_effective64", lambda *a: used.append("direct") or eff(*a))
    big = V[torch.arange(256) % 3]
    assert rel_err(solve(G, big, 2.0, 1.0, method="cg")[:3], I_cg) < 1e-12
    assert used == ["cg"]
    assert rel_err(solve(G, V, 2.0, 1.0, method="direct"), I_cg) < 1e-12
    assert used == ["cg", "direct"]
    solve_nonlinear(G[:4, :5], V[:, :4], 2.0, 1.0, cubic, method="direct")
    assert used == ["cg", "direct"]  # the nonlinear direct sweep is not _effective64
    for bad in ("CG", "lu", None):
        with pytest.raises(ValueError, match="method.*'auto', 'cg', 'direct'"):
            solve(G, V, 1.0, 1.0, method=bad)
        with pytest.raises(ValueError, match="method"):
            solve_nonlinear(G, V, 1.0, 1.0, cubic, method=bad)


# --- every entry point refuses bad values; same answer for 1 and 2 threads

def _entry_points():
    cubic = lambda g, v: g * v + g * v**3  # noqa: E731
    return {
        "solve": lambda G, V, r, c: solve(G, V, r, c),
        "solve-cg": lambda G, V, r, c: solve(G, V, r, c, method="cg"),
        "solve-direct": lambda G, V, r, c: solve(G, V, r, c, method="direct"),
        "effective_conductance": lambda G, V, r, c: effective_conductance(G, r, c),
        "solve_nonlinear": lambda G, V, r, c: solve_nonlinear(G, V, r, c, cubic),
        "solve_nonlinear-direct": lambda G, V, r, c: solve_nonlinear(G, V, r, c, cubic,
                                                                     method="direct"),
    }


@pytest.mark.parametrize("entry", list(_entry_points()))
def test_every_entry_point_refuses_bad_values(entry):
    from memxbar.errors import ConfigError

    f = _entry_points()[entry]
    G, V = random_array(4, 3, seed=13)
    for bad, word in ((math.nan, "non-finite"), (math.inf, "non-finite"), (-1e-6, ">= 0 S")):
        Gb = G.clone()
        Gb[2, 1] = bad
        with pytest.raises(ConfigError, match=word):
            f(Gb, V, 1.0, 1.0)
    for r in (-1.0, math.nan, math.inf):
        with pytest.raises(ConfigError, match="r_row"):
            f(G, V, r, 1.0)
        with pytest.raises(ConfigError, match="r_col"):
            f(G, V, 1.0, r)
    with pytest.raises(ConfigError, match="G must be a tensor"):
        f("conductances", V, 1.0, 1.0)
    with pytest.raises(ConfigError, match="real"):
        f(G.to(torch.complex128), V, 1.0, 1.0)
    if entry != "effective_conductance":
        with pytest.raises(ConfigError, match=r"V must have shape.*R = 4"):
            f(G, torch.ones(2, 3, dtype=F64), 1.0, 1.0)
        with pytest.raises(ConfigError, match="V contains non-finite"):
            f(G, torch.full((2, 4), math.nan, dtype=F64), 1.0, 1.0)
    # half precision: currents of microamperes underflow there, so the answer is float32
    out = f(G.half(), V.half(), 1.0, 1.0)
    assert out.dtype == torch.float32 and bool(torch.isfinite(out).all())


def test_nonlinear_refuses_a_cell_model_that_is_not_a_function():
    from memxbar.errors import ConfigError

    G, V = random_array(4, 3, seed=14)
    with pytest.raises(ConfigError, match="current must be a function"):
        solve_nonlinear(G, V, 1.0, 1.0, "ohmic")
    with pytest.raises(ConfigError, match="derivative must be a function"):
        solve_nonlinear(G, V, 1.0, 1.0, lambda g, v: g * v, derivative=3.0)
    with pytest.raises(ConfigError, match="tol"):
        solve_nonlinear(G, V, 1.0, 1.0, lambda g, v: g * v, tol=True)


def test_every_solver_path_is_identical_for_one_and_two_threads():
    """MKL's Cholesky inverse (potri) used to round differently with 2 threads."""
    from helpers import torch_threads

    gen = torch.Generator().manual_seed(2)
    G = 1e-5 * 10 ** torch.rand(64, 56, generator=gen, dtype=F64)  # blocks of 56: potri threads
    V = torch.rand(8, 64, generator=gen, dtype=F64)
    cubic = lambda g, v: g * v + g * v**3  # noqa: E731

    def run():
        out = [solve(G, V, 1.0, 2.0, method=m) for m in ("auto", "cg", "direct")]
        out += [solve(G, V[0], 0.5, 0.0), effective_conductance(G, 1.0, 2.0),
                effective_conductance(G.mT, 2.0, 1.0)]
        out += [solve_nonlinear(G[:12, :52], V[:2, :12], 1.0, 2.0, cubic, method=m)
                for m in ("auto", "cg", "direct")]
        return out

    with torch_threads(1):
        one = run()
    with torch_threads(2):
        two = run()
    for a, b in zip(one, two, strict=True):
        assert torch.equal(a, b)
