"""Loading states (strict=False, the saved device range) and memory formats of analog models."""

import pytest
import torch
from torch import nn

from memxbar.crossbar.tile import TileConfig
from memxbar.devices import IdealDevice
from memxbar.errors import ConfigError
from memxbar.mapping import program, to_analog


def hw(**k: object) -> TileConfig:
    return TileConfig(**{"rows": 32, "cols": 32, "device": IdealDevice(), **k})


def model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(8, 6), nn.ReLU(), nn.Linear(6, 4))


def test_load_state_dict_respects_strict_false():
    sd = program(to_analog(model(), hw())).state_dict()
    partial = {k: v for k, v in sd.items() if k != "2.weight"}
    fresh = to_analog(model(), hw())
    result = fresh.load_state_dict(partial, strict=False)
    assert result.missing_keys == ["2.weight"] and result.unexpected_keys == []
    assert fresh[0].programmed and fresh[2].programmed
    with pytest.raises(RuntimeError, match='Missing key.*"2.weight"'):
        to_analog(model(), hw()).load_state_dict(partial)


def test_a_state_saved_with_another_conductance_range_or_encoding_is_refused():
    low = hw(device=IdealDevice(g_max=1e-5))
    sd = program(to_analog(model(), low)).state_dict()
    extra = next(v for k, v in sd.items() if k.endswith("tile._extra_state"))
    assert extra["g_max"] == 1e-5 and extra["encoding"] == "differential"
    with pytest.raises(ConfigError, match=r"saved with device g_max = 1e-05 S.*allowed: "):
        to_analog(model(), hw(device=IdealDevice(g_max=1e-4))).load_state_dict(sd)
    same = to_analog(model(), low)
    same.load_state_dict(sd)
    x = torch.randn(3, 8)
    ref = program(to_analog(model(), low))
    with torch.no_grad():
        torch.testing.assert_close(same(x), ref(x), rtol=1e-4, atol=1e-5)
    # a state saved before the keys existed still loads
    old = {k: ({kk: vv for kk, vv in v.items() if kk not in ("g_min", "g_max", "encoding")}
               if k.endswith("_extra_state") else v) for k, v in sd.items()}
    to_analog(model(), low).load_state_dict(old)
    changed = {k: ({**v, "encoding": "offset"} if k.endswith("tile._extra_state") else v)
               for k, v in sd.items()}
    with pytest.raises(ConfigError, match=r"encoding = 'offset'.*allowed: the same encoding"):
        to_analog(model(), low).load_state_dict(changed)


def test_a_state_with_other_bit_slicing_is_refused():
    """5-bit weights in one cell each and in 2-bit slices fill the same cells: loaded into
    the other slicing they would be read as other weights."""
    from memxbar.crossbar.tile import Tile

    dev = IdealDevice(g_min=1e-6, g_max=1e-5)
    src = Tile(TileConfig(rows=4, cols=8, device=dev, weight_bits=5, read_noise="off"))
    src.program(torch.tensor([[0.5, -0.25, 1.0, 0.0]] * 4))
    dst = Tile(TileConfig(rows=4, cols=8, device=dev, weight_bits=5, bits_per_cell=2,
                          read_noise="off"))
    assert dst.config.physical_shape == src.config.physical_shape
    with pytest.raises(ConfigError, match=r"bits_per_cell = 0; this tile's is 2; allowed: the "
                                          r"same bits_per_cell"):
        dst.load_state_dict(src.state_dict())


def test_channels_last_after_programming_a_conv_model():
    torch.manual_seed(0)
    digital = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Conv2d(4, 2, 1))
    a = program(to_analog(digital, hw()))
    x = torch.randn(2, 3, 8, 8)
    with torch.no_grad():
        before = a(x)
        a.to(memory_format=torch.channels_last)
        digital.to(memory_format=torch.channels_last)
        torch.testing.assert_close(a(x), before)
        torch.testing.assert_close(a(x.to(memory_format=torch.channels_last)), before)
        torch.testing.assert_close(a(x), digital(x), rtol=1e-4, atol=1e-4)
    assert a[0].tiled.tile.cells.g.is_contiguous()
