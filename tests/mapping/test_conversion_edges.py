"""Conversion edge cases: the training flag, subclasses with their own forward, frozen
parameters, overrides inside replaced modules and models that are already analog."""

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from memxbar.crossbar.tile import TileConfig
from memxbar.devices import IdealDevice
from memxbar.errors import ConfigError
from memxbar.mapping import (
    AnalogConv2d,
    AnalogLinear,
    AnalogMultiheadAttention,
    conversion_report,
    program,
    to_analog,
)


def hw(**k: object) -> TileConfig:
    return TileConfig(**{"rows": 32, "cols": 32, "device": IdealDevice(), **k})


class MaskedLinear(nn.Linear):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight * 0.5, self.bias)


class Conv2dSame(nn.Conv2d):
    """timm-style: pads dynamically so the output keeps the input's size at stride 2."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ih, iw = x.shape[-2:]
        ph = max((-(-ih // self.stride[0]) - 1) * self.stride[0] + self.kernel_size[0] - ih, 0)
        pw = max((-(-iw // self.stride[1]) - 1) * self.stride[1] + self.kernel_size[1] - iw, 0)
        x = F.pad(x, [pw // 2, pw - pw // 2, ph // 2, ph - ph // 2])
        return F.conv2d(x, self.weight, self.bias, self.stride, 0, self.dilation, self.groups)


class PlainLinear(nn.Linear):
    """A subclass without a forward of its own."""


class Attn(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.attn = nn.MultiheadAttention(8, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.attn(x, x, x)[0]


def test_converted_modules_keep_the_training_flag():
    torch.manual_seed(0)
    enc = nn.Sequential(nn.TransformerEncoderLayer(8, 2, 16)).eval()
    a = to_analog(enc, hw())
    assert not any(m.training for m in a.modules())
    b = program(a)
    x = torch.randn(5, 3, 8)
    with torch.no_grad():
        torch.testing.assert_close(b(x), b(x))  # no dropout at inference
    lin = nn.Sequential(nn.Linear(4, 4), nn.Conv1d(1, 1, 1)).eval()
    assert not any(m.training for m in to_analog(lin, hw()).modules())
    assert all(m.training for m in to_analog(lin.train(), hw()).modules())


def test_subclasses_with_their_own_forward_stay_digital_and_are_reported():
    torch.manual_seed(0)
    model = nn.Sequential(MaskedLinear(8, 4), PlainLinear(4, 4))
    with pytest.warns(UserWarning, match="has its own forward"):
        a = to_analog(model, hw())
    assert isinstance(a[0], MaskedLinear) and isinstance(a[1], AnalogLinear)
    rep = conversion_report(a).set_index("module")
    assert not bool(rep.loc["0", "analog"]) and "has its own forward" in rep.loc["0", "reason"]
    assert bool(rep.loc["1", "analog"])
    x = torch.randn(3, 8)
    with torch.no_grad():
        torch.testing.assert_close(program(a)(x), model(x), atol=1e-5, rtol=1e-5)
    conv = nn.Sequential(Conv2dSame(3, 4, 3, stride=2), nn.Conv2d(4, 4, 1))
    with pytest.warns(UserWarning, match="Conv2dSame has its own forward"):
        ac = to_analog(conv, hw())
    assert isinstance(ac[0], Conv2dSame) and isinstance(ac[1], AnalogConv2d)
    x = torch.randn(2, 3, 9, 9)
    with torch.no_grad():
        y = program(ac)(x)
    assert y.shape == conv(x).shape == (2, 4, 5, 5)


def test_a_digital_attention_subclass_keeps_out_proj_digital():
    class MyAttention(nn.MultiheadAttention):
        def forward(self, *args: object, **kwargs: object) -> object:
            return super().forward(*args, **kwargs)

    model = nn.Sequential(MyAttention(8, 2))
    with pytest.warns(UserWarning, match="has its own forward"):
        a = to_analog(model, hw(), mapping=None)
    assert not any(isinstance(m, AnalogLinear) for m in a.modules())
    rep = conversion_report(a).set_index("module")
    assert not rep.analog.any() and "inside digital" in rep.loc["0.out_proj", "reason"]


def test_frozen_parameters_stay_frozen():
    m = nn.Sequential(nn.Linear(4, 4), nn.Conv2d(1, 2, 3), nn.Linear(4, 4))
    m[0].requires_grad_(False)
    m[1].bias.requires_grad_(False)
    a = to_analog(m, hw())
    assert not a[0].weight.requires_grad and not a[0].bias.requires_grad
    assert a[1].weight.requires_grad and not a[1].bias.requires_grad
    assert a[2].weight.requires_grad and a[2].bias.requires_grad
    for kdim in (None, 4):
        mha = nn.MultiheadAttention(8, 2, kdim=kdim, vdim=kdim, add_bias_kv=True)
        mha.in_proj_bias.requires_grad_(False)
        mha.out_proj.weight.requires_grad_(False)
        mha.bias_k.requires_grad_(False)
        am = to_analog(nn.Sequential(mha), hw())[0]
        assert isinstance(am, AnalogMultiheadAttention)
        frozen = {n for n, p in am.named_parameters() if not p.requires_grad}
        projections = ["in_proj"] if kdim is None else ["q_proj", "k_proj", "v_proj"]
        assert frozen == {"out_proj.weight", "bias_k", *(f"{p}.bias" for p in projections)}


def test_overrides_inside_an_attention_and_analog_models_are_refused():
    with pytest.raises(ConfigError, match=r"'attn.out_proj'.*allowed: .*\['attn'\]"):
        to_analog(Attn(), hw(), overrides={"attn.out_proj": None})
    with pytest.raises(ConfigError, match="'attn.out_proj'"):
        to_analog(Attn(), hw(), overrides={"attn.out_proj": hw(rows=16, cols=16)})
    a = to_analog(Attn(), hw(), overrides={"attn": None})  # the whole attention: allowed
    assert not any(isinstance(m, AnalogLinear) for m in a.modules())
    analog = to_analog(nn.Sequential(nn.Linear(4, 4)), hw())
    with pytest.raises(ConfigError, match=r"already holds analog modules \['0'\]; allowed: "):
        to_analog(analog, hw(), overrides={"0": None})
