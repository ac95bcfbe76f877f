"""Correlated faults: whole rows / columns of an array stuck at g_min."""

import math

import pytest
import torch

from memxbar.crossbar.periphery import ADC
from memxbar.crossbar.tile import Tile, TileConfig
from memxbar.devices.base import STUCK_NONE, STUCK_OFF
from memxbar.devices.ideal import IdealDevice
from memxbar.devices.rram import RRAM
from memxbar.errors import ConfigError

ARRAYS, R, C = 40, 32, 24


def _stuck(dev, shape=(ARRAYS, R, C), seed=0):
    g = torch.full(shape, 0.5 * (dev.g_min + dev.g_max), dtype=torch.float64)
    st = dev.program(g, generator=torch.Generator().manual_seed(seed))
    return st, st.latent["stuck"] == STUCK_OFF


@pytest.mark.parametrize("dev", [IdealDevice(row_fault_fraction=0.1, column_fault_fraction=0.05),
                                 RRAM(row_fault_fraction=0.1, column_fault_fraction=0.05)])
def test_failed_lines_are_whole_rows_and_columns_at_the_declared_fractions(dev):
    st, off = _stuck(dev)
    rows = off.all(-1)  # (arrays, R): every cell of the row stuck
    cols = off.all(-2)  # (arrays, C)
    # a stuck cell lies on a failed row or a failed column, nothing else is stuck
    torch.testing.assert_close(off, rows[..., :, None] | cols[..., None, :])
    assert bool((st.latent["stuck"][~off] == STUCK_NONE).all())
    assert bool((st.g[off] == dev.g_min).all())
    # fractions within 4 binomial sigmas (a row can also be all-stuck through every column
    # failing: negligible at 5 %)
    for got, p, n in ((rows, 0.1, ARRAYS * R), (cols, 0.05, ARRAYS * C)):
        assert abs(float(got.double().mean()) - p) < 4 * math.sqrt(p * (1 - p) / n)
    # arrays draw their own lines
    assert len({tuple(r.tolist()) for r in rows}) > ARRAYS // 2
    # failed cells stay failed at every read time
    assert bool((dev.read_mean(st, 3600.0)[off] == dev.g_min).all())


def test_no_line_faults_by_default_and_fractions_are_checked():
    g = torch.full((4, 4), 1e-6, dtype=torch.float64)
    assert "stuck" not in IdealDevice().program(g).latent
    st, off = _stuck(IdealDevice(row_fault_fraction=1.0))
    assert bool(off.all())
    with pytest.raises(ConfigError, match="row_fault_fraction"):
        IdealDevice(row_fault_fraction=1.5)
    # 1-D cells are one row; a 0-d cell is a single cell
    _, off = _stuck(IdealDevice(column_fault_fraction=0.5), shape=(4096,))
    assert 0.45 < float(off.double().mean()) < 0.55
    _, off = _stuck(IdealDevice(row_fault_fraction=1.0), shape=())
    assert bool(off)


def test_a_failed_row_zeroes_its_weights_in_a_tile():
    """Differential pairs on a failed row both sit at g_min: the row's weights read 0."""
    dev = IdealDevice(g_min=1e-6, g_max=1e-5, row_fault_fraction=0.25)
    tile = Tile(TileConfig(rows=R, cols=2 * 8, device=dev, adc=ADC(bits=0)))
    w = torch.full((R, 8), 0.75, dtype=torch.float64)
    tile.program(w, generator=torch.Generator().manual_seed(2))
    dead = (tile.state.latent["stuck"] == STUCK_OFF).all(-1)[0]  # (R,)
    assert 0 < int(dead.sum()) < R
    y = tile.weights()
    assert bool((y[dead] == 0).all())
    torch.testing.assert_close(y[~dead], w[~dead])
