"""Weight encodings (memxbar.crossbar.encodings): exact reconstruction with an ideal device, the
arrange/un-arrange round trip, the sign of pulse updates, layout sizes and refused combinations."""

from __future__ import annotations

import pytest
import torch

from memxbar.crossbar.encodings import BitSlices, Differential, Offset, make_encoding
from memxbar.crossbar.tile import Tile, TileConfig
from memxbar.devices import IdealDevice
from memxbar.errors import ConfigError

F64 = torch.float64
DEV = IdealDevice(g_min=1e-6, g_max=11e-6)

# (encoding, layout, weight_bits, bits_per_cell): every encoding, analog and quantized
CASES = [
    ("differential", "columns", 0, 0),
    ("differential", "arrays", 0, 0),
    ("offset", "columns", 0, 0),
    ("differential", "columns", 6, 0),
    ("differential", "arrays", 6, 0),
    ("offset", "columns", 6, 0),
    ("differential", "columns", 8, 2),  # bit slices over differential columns: 4 slices
    ("differential", "arrays", 5, 3),  # over differential arrays: 2 slices
    ("offset", "columns", 8, 3),  # over offset: 3 slices
    ("offset", "columns", 4, 4),  # one slice of 4 bits
]
IDS = [f"{e}-{lay}-w{w}-c{c}" for e, lay, w, c in CASES]


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def grid_weights(cfg: TileConfig, shape: tuple[int, ...], seed: int = 0, span: float = 1.0
                 ) -> torch.Tensor:
    """Weights in [-span, span] on the quantization grid (no rounding ties), any value when
    analog."""
    size = (*shape, cfg.rows, cfg.weight_cols)
    if cfg.weight_bits == 0:
        return (torch.rand(size, generator=gen(seed), dtype=F64) * 2 - 1) * span
    n = cfg.weight_levels
    k = int(n * span)
    return torch.randint(-k, k + 1, size, generator=gen(seed)).to(F64) / n


def config(case: tuple, rows: int = 9, cols: int = 26) -> TileConfig:
    encoding, layout, wb, c = case
    return TileConfig(rows=rows, cols=cols, device=DEV, encoding=encoding, layout=layout,
                      weight_bits=wb, bits_per_cell=c)


def test_factory_builds_the_strategy() -> None:
    assert isinstance(make_encoding("differential", "arrays", 0, 0, DEV), Differential)
    assert isinstance(make_encoding("offset", "columns", 4, 0, DEV), Offset)
    sliced = make_encoding("offset", "columns", 8, 2, DEV)
    assert isinstance(sliced, BitSlices) and isinstance(sliced.inner, Offset)
    assert (sliced.n_slices, sliced.digit_max, sliced.slice_base) == (4, 3, 4)
    cfg = config(("differential", "columns", 8, 2))
    assert isinstance(cfg.scheme, BitSlices) and cfg.scheme is cfg.scheme  # built once


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_encoding_alone_reconstructs_weights(case: tuple) -> None:
    """targets -> fold -> recombine is the identity on grid weights (ideal conductances)."""
    enc = make_encoding(*case, DEV)
    rows, wc = 7, 5
    cfg = config(case, rows=rows, cols=enc.used_cols_for(wc))
    W = grid_weights(cfg, (3,))
    g = enc.targets(W)
    assert g.shape == (3, enc.n_arrays, rows, enc.used_cols_for(wc))
    assert float(g.min()) >= DEV.g_min - 1e-18 and float(g.max()) <= DEV.g_max + 1e-18
    a = enc.fold(g)
    assert a.shape == (3, rows, enc.adc_cols(wc))
    assert torch.allclose(enc.recombine(a), W, rtol=0, atol=1e-12)
    # the MVM's per-converter coefficients and combine give the same shift-add
    y = enc.combine(a * enc.converter_coefficients(wc, a))
    assert torch.allclose(y, W, rtol=0, atol=1e-12)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_tile_reconstructs_weights_and_mvm(case: tuple) -> None:
    cfg = config(case)
    tile = Tile(cfg, (2,))
    W = grid_weights(cfg, (2,), seed=1)
    tile.program(W)
    assert torch.allclose(tile.weights(), W, rtol=0, atol=1e-12)
    x = torch.rand(2, 4, cfg.rows, generator=gen(2), dtype=F64) * 2 - 1
    d = torch.rand(2, 4, cfg.weight_cols, generator=gen(3), dtype=F64) * 2 - 1
    assert torch.allclose(tile.mvm(x), x @ W, rtol=0, atol=1e-12)
    assert torch.allclose(tile.mvm_t(d), d @ W.mT, rtol=0, atol=1e-12)
    y = tile.mvm_rows(x[0])  # one row block driving both tiles
    assert torch.allclose(y, torch.cat([x[0] @ W[0], x[0] @ W[1]], dim=-1), rtol=0, atol=1e-12)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_arrange_round_trip(case: tuple) -> None:
    cfg = config(case)
    enc, tile = cfg.scheme, Tile(cfg, (2,))
    g = tile.conductance_targets(grid_weights(cfg, (2,)))
    cells = tile.weight_cells(g)
    assert cells.shape == (2, enc.polarities, enc.n_slices, cfg.rows, cfg.weight_cols)
    ref = g[..., 0, :, -1:] if enc.reference_cols else None
    assert torch.equal(tile.physical_cells(cells, ref), g)
    other = torch.rand(cells.shape, generator=gen(4), dtype=F64)
    assert torch.equal(enc.cells(enc.arrange(other)), other)
    if enc.reference_cols:  # zeros in the reference column when none is given
        assert torch.equal(enc.arrange(other)[..., -1:], torch.zeros(2, 1, cfg.rows, 1, dtype=F64))


PULSED = [c for c in CASES if c[3] in (0, c[2])]  # one cell per weight and polarity


@pytest.mark.parametrize("case", PULSED, ids=[IDS[CASES.index(c)] for c in PULSED])
def test_positive_pulses_raise_the_weight(case: tuple) -> None:
    cfg = config(case)
    tile = Tile(cfg, (2,))
    W = grid_weights(cfg, (2,), span=0.5)  # away from the range ends
    tile.program(W)
    up, down = tile.weight_steps()
    n = torch.randint(1, 4, (2, cfg.rows, cfg.weight_cols), generator=gen(5))
    tile.apply_pulses(n)
    assert torch.allclose(tile.weights(), W + n.to(F64) * up, rtol=0, atol=1e-12)
    tile.apply_pulses(-n)
    assert torch.allclose(tile.weights(), W + n.to(F64) * (up - down), rtol=0, atol=1e-12)
    counts = tile.weight_cells(tile.pulse_count)[..., 0, :, :]  # (2, P, rows, weight_cols)
    # differential: n on G+ then n on G- (both potentiated); offset: 2 n on the one cell
    assert torch.equal(counts, n.unsqueeze(-3).expand_as(counts) * (2 // cfg.scheme.polarities))
    # the counts update moves the weight against lr * x^T d
    before = tile.weights()
    x = torch.zeros(2, 1, cfg.rows, dtype=F64)
    x[..., 0] = 1.0
    d = torch.full((2, 1, cfg.weight_cols), -1.0, dtype=F64)
    tile.update(x, d, lr=3 * up, mode="counts", generator=gen(6))
    delta = tile.weights() - before
    assert bool((delta[..., 0, :] > 0).all()) and bool((delta[..., 1:, :] == 0).all())


def test_bit_slices_refuse_pulses() -> None:
    enc = make_encoding("differential", "columns", 8, 2, DEV)
    inc = torch.ones(1, 3, 2, dtype=torch.int64)
    with pytest.raises(ConfigError, match="4 slices"):
        enc.pulses(inc, inc)


def test_weights_per_tile() -> None:
    """Item 11's figures: the weight matrix a 256x256 tile holds."""
    want = {
        ("differential", "columns", 0, 0):
            "256x256, differential, columns: 256x128 weights per tile",
        ("differential", "arrays", 0, 0):
            "256x256 (2 arrays), differential, arrays: 256x256 weights per tile",
        ("offset", "columns", 0, 0): "256x256, offset, columns: 256x255 weights per tile",
        ("differential", "columns", 8, 2):
            "256x256, differential, columns, 4 slices x 2 bits: 256x32 weights per tile",
        ("offset", "columns", 8, 2):
            "256x256, offset, columns, 4 slices x 2 bits: 256x63 weights per tile",
    }
    for case, text in want.items():
        enc = make_encoding(*case, DEV)
        assert enc.describe(256, 256) == text
        cfg = config(case, rows=256, cols=256)
        assert enc.weights_per_tile(256, 256) == (256, cfg.weight_cols)


@pytest.mark.parametrize("args,words", [
    (("pair", "columns", 0, 0), ["TileConfig.encoding", "'pair'", "differential, offset"]),
    (("offset", "arrays", 0, 0), ["TileConfig.layout = 'arrays'", "encoding='offset'",
                                  "one cell per weight", "allowed: 'columns'"]),
    (("differential", "rows", 0, 0), ["TileConfig.layout", "'rows'"]),
    (("differential", "columns", 1, 0), ["TileConfig.weight_bits = 1"]),
    (("differential", "columns", 0, 2), ["TileConfig.bits_per_cell = 2", "weight_bits = 0"]),
    (("differential", "columns", 4, 4), ["TileConfig.bits_per_cell = 4", "[0, 3]"]),
    (("offset", "columns", 4, 5), ["TileConfig.bits_per_cell = 5", "[0, 4]"]),
])
def test_refused_combinations(args: tuple, words: list[str]) -> None:
    with pytest.raises(ConfigError) as err:
        make_encoding(*args, DEV)
    assert all(w in str(err.value) for w in words), str(err.value)
    encoding, layout, wb, c = args
    with pytest.raises(ConfigError):
        TileConfig(rows=4, cols=16, device=DEV, encoding=encoding, layout=layout,
                   weight_bits=wb, bits_per_cell=c)
