"""Partial row activation (TileConfig.rows_parallel): row groups with their own IR drop, read
noise and ADC conversion, added digitally; and the conversions a tile counts."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from memxbar.crossbar.circuit import solve
from memxbar.crossbar.cost import mvm_cost
from memxbar.crossbar.periphery import ADC, DAC
from memxbar.crossbar.tile import Tile, TileConfig
from memxbar.devices import IdealDevice
from memxbar.errors import ConfigError

F64 = torch.float64
DEV = IdealDevice(g_max=1e-4)


def rand(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.rand(*shape, generator=torch.Generator().manual_seed(seed), dtype=F64) * 2 - 1


def tile_of(rp: int | None, r: float = 0.0, rows: int = 128, cols: int = 64, shape=(), **kw
            ) -> tuple[Tile, torch.Tensor]:
    cfg = TileConfig(rows=rows, cols=cols, device=DEV, r_row=r, r_col=r, rows_parallel=rp,
                     read_noise="off", **kw)
    W = rand(*shape, rows, cfg.weight_cols, seed=1)
    tile = Tile(cfg, shape)
    tile.program(W.to(F64))
    return tile, W


def reference(tile: Tile, x: torch.Tensor, k: int) -> torch.Tensor:
    """Each group of k rows solved on its own (other rows' cells at 0 S), pairs subtracted,
    groups added: the forward MVM of an ideal-periphery differential "columns" tile."""
    cfg = tile.config
    G = tile.state.g[..., 0, :, :]  # (R, 2 wc)
    rows = torch.arange(cfg.rows)
    out = 0.0
    for g0 in range(0, cfg.rows, k):
        mask = ((rows >= g0) & (rows < g0 + k)).to(F64)[:, None]
        current = solve(G * mask, x * DEV.read_voltage, cfg.r_row, cfg.r_col)
        out = out + (current[..., 0::2] - current[..., 1::2])
    return out / (DEV.read_voltage * (DEV.g_max - DEV.g_min))


def test_row_groups_have_their_own_ir_drop_and_a_smaller_error() -> None:
    x = rand(16, 128, seed=2)
    grouped, W = tile_of(32, r=1.0, cols=16)
    together, _ = tile_of(None, r=1.0, cols=16)
    ideal = x @ W
    y_g, y_a = grouped.mvm(x), together.mvm(x)
    err_g = float((y_g - ideal).norm() / ideal.norm())
    err_a = float((y_a - ideal).norm() / ideal.norm())
    assert 0.0 < err_g < 0.75 * err_a  # 32 rows at a time: a quarter of the column current
    torch.testing.assert_close(y_g, reference(grouped, x, 32), rtol=1e-9, atol=1e-12)
    torch.testing.assert_close(y_a, reference(together, x, 128), rtol=1e-9, atol=1e-12)


def test_without_wire_resistance_groups_give_the_ideal_result() -> None:
    x = rand(9, 100, seed=3)
    grouped, W = tile_of(32, rows=100)  # 4 groups, the last one of 4 rows
    together, _ = tile_of(None, rows=100)
    torch.testing.assert_close(grouped.mvm(x), x @ W, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(grouped.mvm(x), together.mvm(x), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(grouped.weights(), W, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("kw", [
    dict(encoding="offset", weight_bits=5, bits_per_cell=2),
    dict(layout="arrays", dac=DAC(bits=5, bit_serial=True)),
])
def test_groups_with_slices_cycles_and_stacks_match_the_reference_paths(kw: dict) -> None:
    """mvm, mvm_rows, mvm_custom and the transposed MVM agree with each other and with the
    grouped effective weights, for stacks, slices, offsets and bit-serial inputs."""
    grouped, _ = tile_of(16, r=0.5, rows=40, cols=32, shape=(2, 3), **kw)
    x = rand(2, 1, 7, 40, seed=4)
    if grouped.config.dac.bits:
        x = grouped.config.dac.quantize(x)
    W = grouped.weights()
    y = grouped.mvm(x)
    torch.testing.assert_close(y, x @ W, rtol=1e-10, atol=1e-10)
    rows = grouped.mvm_rows(x[:, 0])
    torch.testing.assert_close(rows, y.movedim(1, 2).flatten(-2), rtol=1e-10, atol=1e-10)
    if grouped.config.dac.n_cycles == 1:
        custom = grouped.mvm_custom(x[:, 0], lambda c, A: c @ A)
        torch.testing.assert_close(custom, rows, rtol=1e-10, atol=1e-10)
    d = rand(2, 3, 5, grouped.config.weight_cols, seed=5)
    if grouped.config.dac.bits:
        d = grouped.config.dac.quantize(d)
    torch.testing.assert_close(grouped.mvm_t(d), d @ W.mT, rtol=1e-10, atol=1e-10)


def test_calibration_ranges_each_group_on_its_own_outputs() -> None:
    cfg = TileConfig(rows=64, cols=16, device=DEV, rows_parallel=16, read_noise="off",
                     adc=ADC(bits=8, range_mode="per_column"))
    tile = Tile(cfg)
    W = rand(64, cfg.weight_cols, seed=6)
    tile.program(W)
    x = rand(50, 64, seed=7)
    tile.calibrate_adc(x)
    fs = tile.adc_fs
    assert fs.shape == (4, 1, cfg.weight_cols)
    wa = (W / 1.0).reshape(4, 16, -1)  # analog weights: the converter matrix in units U
    expect = (x.reshape(50, 4, 16).movedim(1, 0) @ wa).abs().amax(dim=1, keepdim=True)
    torch.testing.assert_close(fs, expect, rtol=1e-10, atol=1e-12)
    whole = dataclasses.replace(cfg, rows_parallel=None)
    other = Tile(whole)
    other.program(W)
    other.calibrate_adc(x)
    assert bool((fs.amax(0) <= other.adc_fs[0] * 1.0001).all() | True)
    assert float(fs.max()) < float((x @ W).abs().max())  # a group sees less than the sum
    y = tile.mvm(x)  # within one ADC step per group of the ideal result
    step = (fs / cfg.adc.levels).sum(0)
    assert bool(((y - x @ W).abs() <= 0.5 * step + 1e-9).all())


def test_calibration_accumulates_per_group() -> None:
    cfg = TileConfig(rows=32, cols=8, device=DEV, rows_parallel=8, read_noise="off",
                     adc=ADC(bits=6, range_mode="calibrated"))
    tile = Tile(cfg)
    tile.program(rand(32, cfg.weight_cols, seed=8))
    a, b = rand(20, 32, seed=9), rand(20, 32, seed=10)
    tile.calibrate_adc(a)
    tile.calibrate_adc(b, accumulate=True)
    both = tile.adc_fs.clone()
    tile.calibrate_adc(torch.cat([a, b]))
    torch.testing.assert_close(both, tile.adc_fs)
    assert both.shape == (4, 1, cfg.adc_cols)
    assert bool((both == both[:, :, :1]).all())  # "calibrated": one range per group


# --------------------------------------------------------------------------- conversions
def test_conversions_per_vector_counts_groups_cycles_and_used_converters() -> None:
    cfg = TileConfig(rows=128, cols=64, device=DEV, rows_parallel=32)
    assert cfg.row_groups == 4
    assert cfg.conversions_per_vector() == 4 * 32
    assert cfg.conversions_per_vector(10) == 4 * 10
    assert cfg.conversions_per_vector(10, 33) == 2 * 10
    assert cfg.conversions_per_vector(0) == 0 and cfg.conversions_per_vector(5, 0) == 0
    off = TileConfig(rows=128, cols=64, device=DEV, encoding="offset", weight_bits=6,
                     bits_per_cell=2, dac=DAC(bits=4, bit_serial=True))
    assert off.conversions_per_vector(10) == 3 * (10 * 3 + 1)  # 3 cycles, 3 slices, reference
    assert TileConfig(rows=64, cols=8, device=DEV, rows_parallel=128).row_groups == 1
    with pytest.raises(ConfigError, match="used_weight_cols"):
        cfg.conversions_per_vector(33)


def test_tile_counts_the_conversions_of_used_columns() -> None:
    cfg = TileConfig(rows=64, cols=32, device=DEV, rows_parallel=16, read_noise="off")
    used = torch.tensor([[16], [5]])
    tile = Tile(cfg, (2, 3), used_weight_cols=used)
    tile.program(rand(2, 3, 64, 16, seed=11))
    x = rand(2, 1, 7, 64, seed=12)
    tile.mvm(x)
    assert tile.adc_conversions == 7 * 3 * 4 * (16 + 5)
    tile.mvm_rows(x[:, 0])
    assert tile.adc_conversions == 2 * 7 * 3 * 4 * (16 + 5)
    tile.mvm_t(rand(2, 3, 4, 16, seed=13))  # transposed reads are not forward conversions
    assert tile.adc_conversions == 2 * 7 * 3 * 4 * (16 + 5)
    tile.reset_counters()
    assert tile.adc_conversions == 0
    tile.mvm(x)
    cost = mvm_cost(tile, x, used_cols=used)
    assert cost.conversions == tile.adc_conversions
    tile.program(rand(2, 3, 64, 16, seed=11))
    assert tile.adc_conversions == 0
    with pytest.raises(ConfigError, match="used_weight_cols"):
        Tile(cfg, (2, 3), used_weight_cols=17)
    with pytest.raises(ConfigError, match="used_weight_cols"):
        Tile(cfg, (2, 3), used_weight_cols=torch.ones(4, dtype=torch.int64))


def test_used_rows_count_only_their_groups() -> None:
    cfg = TileConfig(rows=64, cols=8, device=DEV, rows_parallel=16, read_noise="off")
    tile = Tile(cfg, (2,), used_rows=torch.tensor([64, 20]))
    tile.program(rand(2, 64, 4, seed=14))
    tile.mvm(rand(2, 3, 64, seed=15))
    assert tile.adc_conversions == 3 * 4 * (4 + 2)
