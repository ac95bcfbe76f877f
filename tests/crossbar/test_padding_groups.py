"""Row groups that hold only padding rows are neither converted nor noisy: the converters'
noise follows the conversions that the cost counts."""

from __future__ import annotations

import pytest
import torch

from memxbar.crossbar.tile import Tile, TileConfig
from memxbar.devices import IdealDevice
from memxbar.mapping.config import MappingConfig
from memxbar.mapping.tiler import TiledMatrix

SIGMA = 0.1
DEV = IdealDevice(g_min=1e-6, g_max=1e-5)


def _config(rows: int) -> TileConfig:
    return TileConfig(rows=rows, cols=4, device=DEV, read_noise="off", rows_parallel=4,
                      out_noise=SIGMA)


def test_a_padding_only_group_adds_no_noise_per_tile() -> None:
    """A stack of two 8-row tiles, groups of 4 rows: 8 and 3 used rows -> 2 and 1 noisy
    conversions per output."""
    tile = Tile(_config(8), (2,), used_rows=torch.tensor([8, 3])).to(torch.float64)
    tile.program(torch.full((2, 8, 2), 0.5, dtype=torch.float64))
    x = torch.zeros(2, 20000, 8, dtype=torch.float64)
    x[0], x[1, :, :3] = 1.0, 1.0
    var = tile.mvm(x, generator=torch.Generator().manual_seed(0)).var(dim=1)
    assert var[0].tolist() == pytest.approx([2 * SIGMA**2] * 2, rel=0.05)
    assert var[1].tolist() == pytest.approx([SIGMA**2] * 2, rel=0.05)
    cfg = tile.config  # the conversions counted are those of the noisy groups
    assert tile.adc_conversions == 20000 * (cfg.conversions_per_vector(used_rows=8)
                                            + cfg.conversions_per_vector(used_rows=3))
    assert cfg.conversions_per_vector(used_rows=8) == 2 * cfg.conversions_per_vector(used_rows=3)


@pytest.mark.parametrize("in_features", [12, 16])
def test_a_layer_noise_counts_its_used_groups(in_features: int) -> None:
    """Linear 12 -> 2 on 8-row tiles: 2 + 1 used groups (the 4 padding rows of the second
    tile are one group, not converted); 16 -> 2: 2 + 2. The layer's output noise scales
    with them (the same weight scale, one weight value)."""
    tiled = TiledMatrix(_config(8), in_features, 2, MappingConfig()).to(torch.float64)
    tiled.program(torch.full((2, in_features), 0.5, dtype=torch.float64),
                  generator=torch.Generator().manual_seed(1))
    x = torch.ones(20000, in_features, dtype=torch.float64)
    y = tiled.forward(x, generator=torch.Generator().manual_seed(0))
    ref = TiledMatrix(_config(4), 4, 2, MappingConfig()).to(torch.float64)  # one group
    ref.program(torch.full((2, 4), 0.5, dtype=torch.float64),
                generator=torch.Generator().manual_seed(1))
    one = ref.forward(torch.ones(20000, 4, dtype=torch.float64),
                      generator=torch.Generator().manual_seed(0)).var(dim=0)
    groups = 3 if in_features == 12 else 4
    assert (y.var(dim=0) / one).tolist() == pytest.approx([groups] * 2, rel=0.06)
