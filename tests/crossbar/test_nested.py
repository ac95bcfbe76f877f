"""The nested-dissection IR-drop solve against dense nodal analysis and the row sweep."""

import pytest
import torch
from test_circuit import nodal_reference, random_array, rel_err

from memxbar.crossbar import circuit
from memxbar.crossbar.circuit import effective_conductance, solve
from memxbar.crossbar.nested import effective_nested

F64 = torch.float64


@pytest.mark.parametrize("R, C, r_row, r_col", [
    (1, 1, 2.0, 3.0), (1, 6, 0.5, 4.0), (6, 1, 4.0, 0.5), (4, 4, 1.0, 1.0),
    (5, 7, 10.0, 0.1), (9, 4, 0.1, 10.0), (3, 8, 2.0, 7.0),  # padded to powers of two
])
def test_matches_dense_nodal_analysis(R, C, r_row, r_col):
    G, V = random_array(R, C, seed=R * 10 + C)
    if C > 1:
        G[0, -1] = 0.0  # an open cell
    ref = nodal_reference(G.numpy(), V.numpy(), r_row, r_col)
    assert rel_err(V @ effective_nested(G, 1 / r_row, 1 / r_col), ref) < 1e-12


@pytest.mark.parametrize("R, C, r_row, r_col", [(12, 20, 1.0, 2.5), (20, 12, 3.0, 0.5)])
def test_batched_stack_matches_the_row_sweep(R, C, r_row, r_col):
    """A stack of random non-square arrays (G over two decades, asymmetric wires, one array
    with a column of open cells) in one batched solve, each against the row sweep alone."""
    gen = torch.Generator().manual_seed(R + C)
    G = 1e-6 * 100 ** torch.rand(2, 2, R, C, generator=gen, dtype=F64)
    G[1, 0, :, 5] = 0.0
    M = effective_nested(G, 1 / r_row, 1 / r_col)
    for idx in ((0, 0), (0, 1), (1, 0), (1, 1)):
        ref = circuit._sweep64(G[idx], r_row, r_col)
        assert rel_err(M[idx], ref) < 1e-9
    assert torch.equal(M[1, 1], effective_nested(G[1, 1], 1 / r_row, 1 / r_col))


def test_effective_conductance_uses_it_for_large_wired_arrays(monkeypatch):
    used = []
    nested = circuit.effective_nested
    monkeypatch.setattr(circuit, "effective_nested",
                        lambda *a, **k: used.append("nested") or nested(*a, **k))
    G, V = random_array(64, 64, seed=1, lo=1e-6, hi=1e-4)
    M = effective_conductance(G.float(), 1.0, 2.0)
    assert used == ["nested"] and M.dtype == torch.float32
    assert rel_err(V @ M.double(), solve(G, V, 1.0, 2.0, method="cg")) < 1e-6
    effective_conductance(G, 0.0, 2.0)  # an ideal row wire: the sweep's pinned-row path
    effective_conductance(G[:8, :8], 1.0, 2.0)  # small: the sweep
    assert used == ["nested"]


@pytest.mark.parametrize("R, C", [(64, 64), (128, 256)])
def test_identical_for_one_and_two_threads(R, C):
    """A lone array too (128 x 256: with two torch threads it differed by 1e-15)."""
    from helpers import torch_threads

    G, _ = random_array(R, C, seed=4, lo=1e-6, hi=1e-4)
    with torch_threads(1):
        one = effective_nested(G, 1.0, 0.5)
    with torch_threads(2):
        two = effective_nested(G, 1.0, 0.5)
        assert torch.get_num_threads() == 2
    assert torch.equal(one, two)


def test_a_wired_tile_reads_the_same_weights_as_with_the_row_sweep(monkeypatch):
    from memxbar.crossbar.tile import Tile, TileConfig
    from memxbar.devices import presets

    cfg = TileConfig(rows=64, cols=64, device=presets.get("pcm-joshi2020"), r_row=1.0,
                     r_col=2.0, read_noise="off")
    tile = Tile(cfg, (2,))
    gen = torch.Generator().manual_seed(0)
    tile.program(torch.rand(2, 64, 32, generator=gen) * 2 - 1, generator=gen)
    nested = tile.weights(3600.0).double()
    monkeypatch.setattr(circuit, "_NESTED_MIN_CELLS", 1 << 62)
    sweep = tile.weights(3600.0).double()
    assert rel_err(nested, sweep) < 1e-6


@pytest.mark.parametrize("R, C, r_row, r_col", [(64, 48, 1.0, 2.5), (40, 64, 3.0, 0.5)])
def test_open_edges_and_layouts_against_the_row_sweep(R, C, r_row, r_col):
    """Arrays large enough for every stage (blocks' index last, then first, then pairs merged
    one by one with the open top and right sides dropped), padded, non-square, asymmetric
    wires, G over two decades, a row and a column of open cells: the float64 row sweep."""
    gen = torch.Generator().manual_seed(R * C)
    G = 1e-6 * 100 ** torch.rand(2, R, C, generator=gen, dtype=F64)
    G[0, :, -1] = 0.0  # the last column open
    G[1, 0, :] = 0.0  # the first (top) row open
    M = effective_nested(G, 1 / r_row, 1 / r_col)
    for k in range(2):
        assert rel_err(M[k], circuit._sweep64(G[k], r_row, r_col)) < 1e-10


def test_stack_on_helper_threads_is_identical_for_any_thread_count(monkeypatch):
    """Batches of one array each run on the helper threads: the same bits as one thread,
    and as each array solved alone."""
    from helpers import torch_threads

    from memxbar.crossbar import nested

    monkeypatch.setattr(nested, "BATCH_ENTRIES", 16 * 32 * 32)  # one 32 x 32 array per batch
    gen = torch.Generator().manual_seed(3)
    G = 1e-6 * 100 ** torch.rand(5, 32, 32, generator=gen, dtype=F64)
    with torch_threads(1):
        one = effective_nested(G, 1.0, 0.5)
    with torch_threads(2):
        two = effective_nested(G, 1.0, 0.5)
        assert torch.get_num_threads() == 2  # restored after the helper threads ran
    assert torch.equal(one, two)
    assert torch.equal(two[3], effective_nested(G[3], 1.0, 0.5))


def test_the_flop_count_halves_with_the_open_ends_dropped():
    """nested_cost of a 256 x 256 array: 1.1 GFlop (2.0 with every block keeping all four
    sides, the open ends eliminated last and a final solve; the row sweep: 14.3)."""
    from memxbar.crossbar.nested import nested_cost, sweep_cost

    assert 1.0e9 < nested_cost(256, 256) < 1.25e9
    assert sweep_cost(256, 256) > 10 * nested_cost(256, 256)


def _wired_tile(bits, **kw):
    from memxbar.crossbar.periphery import ADC
    from memxbar.crossbar.tile import Tile, TileConfig
    from memxbar.devices import presets

    cfg = TileConfig(rows=64, cols=64, device=presets.get("pcm-joshi2020"), r_row=1.0,
                     r_col=2.0, read_noise="off", adc=ADC(bits=bits, range_mode="calibrated"),
                     **kw)
    tile = Tile(cfg, (2,))
    gen = torch.Generator().manual_seed(0)
    tile.program(torch.rand(2, 64, 32, generator=gen) * 2 - 1, generator=gen)
    return tile


def test_a_wired_tile_reports_the_achieved_ir_drop_error(monkeypatch):
    """ir_error: the first array's column currents for all rows at 1 V against the CG solve,
    within the tolerance tied to the ADC (1e-6, or a quarter ADC step where that is finer)."""
    from memxbar.crossbar import readout

    tile = _wired_tile(8)
    tile.set_time(3600.0)
    assert tile.ir_tolerance() == 1e-6
    assert tile.ir_error is not None and tile.ir_error < 1e-6
    g = tile.config.device.effective_g(tile.config.device.read_mean(tile.state, 3600.0))
    v = torch.ones(1, 64, dtype=F64)
    ref = solve(g[0, 0].double(), v, 1.0, 2.0, method="cg")
    got = v @ tile._effective(g)[0, 0].double()
    assert tile.ir_error == pytest.approx(rel_err(got, ref), rel=1e-3, abs=1e-15)
    t24 = _wired_tile(24)
    assert t24.ir_tolerance(F64) == pytest.approx(0.25 * 2.0**-24)
    assert t24.ir_tolerance() == pytest.approx(2.0**-24)  # float32 matrices: half their ulp
    t24.set_time(3600.0)  # a 24-bit ADC does not refuse the float32 matrices' rounding
    exact = readout.effective_conductance  # a solve 1e-5 off is refused
    monkeypatch.setattr(readout, "effective_conductance",
                        lambda *a, **k: exact(*a, **k) * (1 + 1e-5))
    with pytest.raises(RuntimeError, match="IR-drop solve: relative error 1.0"):
        tile.set_time(7200.0)  # the float64 fallback is 1e-5 off as well
    assert tile.ir_fallbacks == 1


def test_first_order_ir_drop_is_second_order_accurate():
    """effective_first_order against the exact matrix: the error falls 4x per halving of the
    wires (second order in the drop) on a random non-square array, asymmetric wires, G over
    two decades; at 256 x 256, 1 ohm, PCM-like G it keeps the all-rows signal gain to 1e-3."""
    from memxbar.crossbar.circuit import effective_first_order

    G, _ = random_array(32, 24, seed=5)
    errs = []
    for r in (0.2, 0.1, 0.05):
        M = effective_conductance(G, r, 2 * r)
        errs.append(rel_err(effective_first_order(G, r, 2 * r), M))
    assert 3.3 < errs[0] / errs[1] < 4.5 and 3.5 < errs[1] / errs[2] < 4.5
    assert errs[2] < 1e-4
    G = 0.25e-6 * 100 ** torch.rand(256, 256, generator=torch.Generator().manual_seed(0),
                                    dtype=F64)
    v = torch.ones(256, dtype=F64)
    exact = (v @ effective_conductance(G, 1.0, 1.0)).sum() / (v @ G).sum()
    approx = (v @ effective_first_order(G, 1.0, 1.0)).sum() / (v @ G).sum()
    assert 0.75 < float(exact) < 0.85 and abs(float(approx - exact)) < 1e-3


def test_a_first_order_tile_reports_its_error_and_is_never_the_default():
    exact = _wired_tile(8)
    assert exact.config.ir_drop == "exact"
    approx = _wired_tile(8, ir_drop="first_order")
    for tile in (exact, approx):
        tile.set_time(3600.0)
    assert exact.ir_error < 1e-6  # checked against the tolerance
    assert 1e-6 < approx.ir_error < 1e-2  # the approximation's measured error, not refused
    w_exact, w_approx = exact.weights(3600.0), approx.weights(3600.0)
    assert 0 < rel_err(w_approx, w_exact) < 1e-2


# --- the mixed-precision path: the cells' parts D = K - W in float32 below the last merges


def _column_error(G, M, r_row, r_col):
    """Tile._check_ir's metric: column currents for all rows at 1 V against CG (float64)."""
    v = torch.ones(1, G.shape[-2], dtype=F64)
    return rel_err(v @ M.double(), solve(G, v, r_row, r_col, method="cg"))


@pytest.mark.parametrize("R, C, r_row, r_col", [(5, 7, 10.0, 0.1), (9, 4, 0.1, 10.0),
                                                (64, 48, 1.0, 2.5), (40, 64, 4.0, 0.5)])
def test_the_split_is_the_same_network(R, C, r_row, r_col):
    """Carrying only the cells' parts (the wires' closed form taken out of every merge) in
    float64 gives the same matrix as the plain merges: the algebra of the split, checked
    against the dense nodal analysis on small arrays and the plain nested dissection on
    larger ones (padded, non-square, asymmetric wires, open cells)."""
    from memxbar.crossbar import nested

    G, V = random_array(R, C, seed=R + 3 * C, lo=0.25e-6, hi=25e-6)
    G[0, -1] = 0.0
    G[-1, :] = 0.0  # the row next to the grounds open
    split = nested._effective(G[None], 1 / r_row, 1 / r_col, F64)[0]
    if R * C < 100:
        ref = nodal_reference(G.numpy(), V.numpy(), r_row, r_col)
        assert rel_err(V @ split, ref) < 1e-12
    else:
        assert rel_err(split, effective_nested(G, 1 / r_row, 1 / r_col)) < 1e-11


def test_plain_float32_merges_lose_the_cells_and_the_split_keeps_them():
    """Plain float32 port matrices hold 2 S wires with 1e-5 S cell corrections: 1e-3 of
    error at 64 x 64 (1 ohm; 9.7e-5 since the lowest levels eliminate pivot by pivot, 1e-3
    with their Cholesky factors before); the mixed path stays at the float32 rounding."""
    from memxbar.crossbar import nested

    G, _ = random_array(64, 64, seed=5, lo=0.25e-6, hi=25e-6)
    plain = nested._effective(G[None].float(), 1.0, 1.0)[0]
    assert _column_error(G, plain, 1.0, 1.0) > 3e-5
    assert _column_error(G, effective_nested(G, 1.0, 1.0, mixed=True), 1.0, 1.0) < 2e-7


@pytest.mark.parametrize("R, C, r_row, r_col, lo, hi", [
    (64, 64, 0.1, 0.1, 0.25e-6, 25e-6), (48, 80, 4.0, 1.0, 4e-6, 100e-6),
    (100, 37, 0.5, 3.0, 0.25e-6, 25e-6), (128, 128, 4.0, 4.0, 4e-6, 100e-6)])
def test_mixed_precision_within_the_tolerance(R, C, r_row, r_col, lo, hi):
    """The mixed path against the float64 nested dissection on random stacks (non-square,
    padded, asymmetric wires, G over two decades or 4-100 uS, open cells): every array
    within 1e-6 (measured 3e-8-2e-7), by the column-current metric and entry-wise."""
    gen = torch.Generator().manual_seed(R * C)
    G = lo * (hi / lo) ** torch.rand(3, R, C, generator=gen, dtype=F64)
    G[1, :, 3] = 0.0  # a column of open cells
    G[2, 5, :] = 0.0  # a row of open cells
    M64 = effective_nested(G, 1 / r_row, 1 / r_col)
    M32 = effective_nested(G, 1 / r_row, 1 / r_col, mixed=True)
    assert M32.dtype == F64
    for k in range(3):
        assert _column_error(G[k], M32[k], r_row, r_col) < 1e-6
        assert rel_err(M32[k], M64[k]) < 1e-6


def test_mixed_precision_is_identical_for_one_and_two_threads(monkeypatch):
    """A stack on the helper threads and a lone array: the same bits for 1 and 2 threads."""
    from helpers import torch_threads

    from memxbar.crossbar import nested

    monkeypatch.setattr(nested, "BATCH_ENTRIES", 16 * 64 * 64)  # one 64 x 64 array per batch
    gen = torch.Generator().manual_seed(8)
    G = 1e-6 * 100 ** torch.rand(3, 64, 64, generator=gen, dtype=F64)
    with torch_threads(1):
        one = effective_nested(G, 1.0, 0.5, mixed=True)
        lone = effective_nested(G[1], 1.0, 0.5, mixed=True)
    with torch_threads(2):
        two = effective_nested(G, 1.0, 0.5, mixed=True)
        assert torch.equal(lone, effective_nested(G[1], 1.0, 0.5, mixed=True))
    assert torch.equal(one, two) and torch.equal(two[1], lone)


def test_effective_conductance_mixed_only_for_float32_results(monkeypatch):
    """precision="auto": mixed for float32 (and half) matrices, float64 for float64 ones;
    "float64" forces it; anything else is refused."""
    from memxbar.errors import ConfigError

    calls = []
    nested = circuit.effective_nested
    monkeypatch.setattr(circuit, "effective_nested",
                        lambda *a, **k: calls.append(k.get("mixed", False)) or nested(*a, **k))
    G, V = random_array(64, 64, seed=2, lo=1e-6, hi=1e-4)
    M = effective_conductance(G.float(), 1.0, 2.0)
    assert calls == [True] and M.dtype == torch.float32
    assert rel_err(V @ M.double(), solve(G, V, 1.0, 2.0, method="cg")) < 1e-6
    effective_conductance(G, 1.0, 2.0)
    effective_conductance(G.half(), 1.0, 2.0)
    effective_conductance(G.float(), 1.0, 2.0, precision="float64")
    assert calls == [True, False, True, False]
    with pytest.raises(ConfigError, match="precision = 'float32' is not allowed"):
        effective_conductance(G, 1.0, 2.0, precision="float32")


def test_a_mixed_solve_beyond_the_tolerance_is_redone_in_float64(monkeypatch):
    """A mixed result the check finds beyond the tolerance is solved again in float64 and
    that result kept (counted in ir_fallbacks), never returned or refused."""
    from memxbar.crossbar import readout

    tile = _wired_tile(8)
    tile.set_time(3600.0)
    assert tile.ir_fallbacks == 0 and tile.ir_error < 1e-6
    mixed = tile.weights(3600.0)
    exact = readout.effective_conductance
    with monkeypatch.context() as m:
        m.setattr(readout, "effective_conductance", lambda *a, **k: exact(*a, precision="float64"))
        good = tile.weights(3600.0)
    assert 0 < rel_err(mixed, good) < 1e-6

    def off(*a, **k):  # the mixed path 1e-4 off
        M = exact(*a, **k)
        return M if k.get("precision") == "float64" else M * (1 + 1e-4)

    monkeypatch.setattr(readout, "effective_conductance", off)
    tile.set_time(7200.0)
    assert tile.ir_fallbacks == 1 and tile.ir_error < 1e-6
    assert torch.equal(tile.weights(3600.0), good)
    assert tile.ir_fallbacks == 2


@pytest.mark.parametrize("mixed", [False, True])
def test_a_network_that_is_not_positive_definite_is_refused(mixed):
    """The lowest levels eliminate pivot by pivot: a pivot that is not positive (here NaN,
    from one NaN cell) is refused, never returned as a matrix."""
    G, _ = random_array(16, 16, seed=2, lo=1e-6, hi=1e-4)
    G[3, 5] = float("nan")
    with pytest.raises(RuntimeError, match="not positive definite"):
        effective_nested(G, 1.0, 1.0, mixed=mixed)
