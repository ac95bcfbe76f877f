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
                        lambda *a: used.append("nested") or nested(*a))
    G, V = random_array(64, 64, seed=1, lo=1e-6, hi=1e-4)
    M = effective_conductance(G.float(), 1.0, 2.0)
    assert used == ["nested"] and M.dtype == torch.float32
    assert rel_err(V @ M.double(), solve(G, V, 1.0, 2.0, method="cg")) < 1e-6
    effective_conductance(G, 0.0, 2.0)  # an ideal row wire: the sweep's pinned-row path
    effective_conductance(G[:8, :8], 1.0, 2.0)  # small: the sweep
    assert used == ["nested"]


def test_identical_for_one_and_two_threads():
    from helpers import torch_threads

    G, _ = random_array(64, 64, seed=4, lo=1e-6, hi=1e-4)
    with torch_threads(1):
        one = effective_nested(G, 1.0, 0.5)
    with torch_threads(2):
        two = effective_nested(G, 1.0, 0.5)
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
