"""The layer registry and conversion: convolutions of every dimension and grouping, attention,
transformers, the conversion report, shared modules and refused inputs."""

import warnings

import pytest
import torch
from torch import nn

from memxbar.crossbar.periphery import ADC, DAC
from memxbar.crossbar.tile import TileConfig
from memxbar.devices import IdealDevice, presets
from memxbar.errors import ConfigError
from memxbar.mapping import (
    AnalogConv1d,
    AnalogConv2d,
    AnalogConv3d,
    AnalogLinear,
    AnalogMultiheadAttention,
    MappingConfig,
    TiledMatrix,
    analog_layers,
    conversion_report,
    drift,
    mapping_report,
    program,
    register,
    to_analog,
)

# ideal device, ideal (unquantized, unsaturated) periphery, no wire resistance
IDEAL = TileConfig(rows=32, cols=32, device=IdealDevice(), dac=DAC(bits=0), adc=ADC(bits=0))
YEAR = 3.15e7


def exact(analog: nn.Module, digital: nn.Module, *xs: torch.Tensor) -> None:
    with torch.no_grad():
        torch.testing.assert_close(analog(*xs), digital(*xs), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("conv", [
    nn.Conv1d(3, 5, 3, padding=1),
    nn.Conv1d(4, 6, 5, stride=2, dilation=2, padding="valid", groups=2),
    nn.Conv2d(6, 9, 3, groups=3, padding=1),  # grouped
    nn.Conv2d(8, 8, 3, groups=8, stride=2, padding=1, bias=False),  # depthwise
    nn.Conv2d(8, 16, (3, 2), groups=8, padding="same", padding_mode="reflect"),  # multiplier 2
    nn.Conv2d(4, 4, 3, padding=2, padding_mode="circular", dilation=2),
    nn.Conv3d(2, 4, (2, 3, 3), padding=(1, 1, 0), stride=(1, 2, 1)),
    nn.Conv3d(4, 4, 3, groups=4, padding=1, padding_mode="replicate"),
], ids=lambda c: repr(c))
@pytest.mark.parametrize("scaling", ["dynamic", "fixed"])
def test_convolutions_are_exact_with_ideal_hardware(conv, scaling):
    """Unfolded (dynamic scaling) and conv-of-codes (fixed range) paths, 16-row tiles so that
    the larger kernels take several row blocks."""
    torch.manual_seed(0)
    hw = TileConfig(rows=16, cols=16, device=IdealDevice())
    analog = program(to_analog(conv, hw, mapping=MappingConfig(input_scaling=scaling,
                                                               input_range=8.0)))
    assert isinstance(analog, (AnalogConv1d, AnalogConv2d, AnalogConv3d))
    nd = conv.weight.dim() - 2
    x = torch.randn(2, conv.in_channels, *([12 if nd == 1 else 7] * nd))
    exact(analog, conv, x)
    # the training path (unfolded, autograd) gives the same output and the digital gradients
    xg = x.clone().requires_grad_()
    y = analog(xg)
    torch.testing.assert_close(y, conv(x), rtol=1e-4, atol=1e-5)
    y.square().sum().backward()
    x2 = x.clone().requires_grad_()
    conv.zero_grad()
    conv(x2).square().sum().backward()
    torch.testing.assert_close(xg.grad, x2.grad, rtol=1e-3, atol=1e-4)
    torch.testing.assert_close(analog.weight.grad, conv.weight.grad, rtol=1e-3, atol=1e-4)
    assert analog.tiled.groups == conv.groups
    assert analog(x[0]).shape == conv(x[0]).shape  # unbatched input


@pytest.mark.parametrize("kw", [dict(batch_first=True), dict(batch_first=False),
                                dict(batch_first=True, kdim=6, vdim=10),
                                dict(add_bias_kv=True, add_zero_attn=True),
                                dict(bias=False, batch_first=True)])
def test_multihead_attention_is_exact_with_ideal_hardware(kw):
    torch.manual_seed(0)
    mha = nn.MultiheadAttention(16, 4, **kw).eval()
    if kw.get("add_bias_kv"):
        nn.init.normal_(mha.bias_k)
        nn.init.normal_(mha.bias_v)
    analog = program(to_analog(mha, IDEAL))
    assert isinstance(analog, AnalogMultiheadAttention)
    bf = kw.get("batch_first", False)
    shape = (lambda n: (3, n, 16)) if bf else (lambda n: (n, 3, 16))
    q = torch.randn(shape(5))
    kv_k = torch.randn(*shape(7)[:-1], kw.get("kdim", 16))
    kv_v = torch.randn(*shape(7)[:-1], kw.get("vdim", 16))
    mask = torch.rand(5, 7) < 0.2
    pad = torch.zeros(3, 7, dtype=torch.bool)
    pad[0, -2:] = True
    with torch.no_grad():
        for args in ((q, kv_k, kv_v), (q, kv_k, kv_v, pad)):
            ya, wa = analog(*args, attn_mask=mask)
            yd, wd = mha(*args, attn_mask=mask)
            torch.testing.assert_close(ya, yd, rtol=1e-4, atol=1e-5)
            torch.testing.assert_close(wa, wd, rtol=1e-4, atol=1e-5)
        if "kdim" not in kw:  # self-attention reads the fused projection once
            ya, _ = analog(q, q, q, need_weights=False)
            torch.testing.assert_close(ya, mha(q, q, q, need_weights=False)[0], rtol=1e-4,
                                       atol=1e-5)
            u = q[0] if bf else q[:, 0]
            torch.testing.assert_close(analog(u, u, u)[0], mha(u, u, u)[0], rtol=1e-4,
                                       atol=1e-5)
    rep = conversion_report(analog)
    names = set(rep.module)
    assert {"out_proj"} <= names and ({"in_proj"} <= names or {"q_proj", "k_proj"} <= names)
    row = rep[rep.module == ""].iloc[0]
    assert "QK^T" in row.reason and "digital" in row.reason


@pytest.mark.parametrize("batch_first", [True, False])
def test_attention_refuses_inputs_the_digital_module_refuses(batch_first):
    """Shapes that ``nn.MultiheadAttention`` refuses (with an assert or a reshape error) are
    ConfigErrors naming the input; a numpy array is refused, not read as a tensor."""
    torch.manual_seed(0)
    mha = nn.MultiheadAttention(8, 2, batch_first=batch_first).eval()
    analog = program(to_analog(mha, IDEAL))
    x = torch.randn(2, 5, 8)  # batch_first: batch 2, length 5; else length 2, batch 5
    n, length = (2, 5) if batch_first else (5, 2)
    short = x[:, :3] if batch_first else x[:1]
    bad = {
        "query must be a torch.Tensor": ((x.numpy(), x, x), {}),
        "have (3, 4, 3) dimensions": ((x, x[None], x), {}),
        "key has length": ((x, short, x), {}),
        "batch sizes": ((x, x[:1] if batch_first else x[:, :3], x), {}),
        "attn_mask is of shape (4, 4)": ((x, x, x), dict(attn_mask=torch.zeros(4, 4))),
        "attn_mask is a list": ((x, x, x), dict(attn_mask=[[0.0]])),
        "key_padding_mask is of shape (3, 5)": (
            (x, x, x), dict(key_padding_mask=torch.zeros(3, 5, dtype=torch.bool))),
    }
    with torch.no_grad():
        for shown, (args, kw) in bad.items():
            with pytest.raises(ConfigError) as info:
                analog(*args, **kw)
            assert shown in str(info.value), (shown, str(info.value))
            with pytest.raises((AssertionError, RuntimeError, AttributeError, TypeError)):
                mha(*args, **kw)
        attn = torch.zeros(n * 2, length, length, dtype=torch.bool)
        attn[::2, :, -1] = True  # no query row masked whole (its softmax would be NaN)
        masks = dict(attn_mask=attn, key_padding_mask=torch.zeros(n, length, dtype=torch.bool))
        exact(lambda *a: analog(*a, **masks)[0], lambda *a: mha(*a, **masks)[0], x, x, x)


def transformer() -> nn.Module:
    torch.manual_seed(0)
    layer = nn.TransformerEncoderLayer(16, 4, dim_feedforward=32, dropout=0.0, batch_first=True)
    return nn.TransformerEncoder(layer, 2, enable_nested_tensor=True).eval()


@pytest.mark.filterwarnings("ignore:The PyTorch API of nested tensors")  # the digital model's
def test_transformer_encoder_runs_analog_in_eval_under_no_grad():
    """PyTorch's fast path (eval, no_grad) would read the weights directly: the converted
    encoder reproduces the digital output with ideal hardware and differs from it with PCM
    read one year after programming, with and without a padding mask (nested tensors)."""
    model = transformer()
    x = torch.randn(3, 6, 16)
    pad = torch.zeros(3, 6, dtype=torch.bool)
    pad[1, -2:] = True
    ideal = program(to_analog(model, IDEAL))
    assert len(list(analog_layers(ideal))) == 2 * 4  # in_proj, out_proj, linear1, linear2
    calls = {}
    for name, layer in analog_layers(ideal):
        layer.register_forward_hook(lambda m, i, o, n=name: calls.__setitem__(n, 1))
    with torch.no_grad():
        exact(ideal, model, x)
        y_pad, d_pad = ideal(x, src_key_padding_mask=pad), model(x, src_key_padding_mask=pad)
        keep = ~pad  # padded positions are undefined in PyTorch's nested path
        torch.testing.assert_close(y_pad[keep], d_pad[keep], rtol=1e-4, atol=1e-5)
    assert len(calls) == 8  # every analog layer ran
    pcm = TileConfig(rows=32, cols=32, device=presets.get("pcm-joshi2020"))
    aged = drift(program(to_analog(model, pcm), generator=torch.Generator().manual_seed(0)),
                 YEAR)
    with torch.no_grad():
        diff = (aged(x) - model(x)).abs().max()
    assert diff > 1e-2


def test_transformer_decoder_runs_analog():
    torch.manual_seed(0)
    dec = nn.TransformerDecoder(nn.TransformerDecoderLayer(16, 2, 32, 0.0, batch_first=True),
                                1).eval()
    tgt, mem = torch.randn(2, 4, 16), torch.randn(2, 5, 16)
    analog = program(to_analog(dec, IDEAL))
    assert len(list(analog_layers(analog))) == 6  # two attentions (in, out) and the ffn
    exact(analog, dec, tgt, mem)
    pcm = TileConfig(rows=32, cols=32, device=presets.get("pcm-joshi2020"))
    aged = drift(program(to_analog(dec, pcm)), YEAR)
    with torch.no_grad():
        assert (aged(tgt, mem) - dec(tgt, mem)).abs().max() > 1e-2


class Mixed(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.emb = nn.Embedding(10, 8)
        self.lstm = nn.LSTM(8, 8, batch_first=True)
        self.norm = nn.LayerNorm(8)
        self.head = nn.Linear(8, 3)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        h, _ = self.lstm(self.emb(idx))
        return self.head(self.norm(h[:, -1]))


def test_conversion_report_lists_digital_modules_and_warns_or_refuses():
    model = Mixed()
    with pytest.warns(UserWarning, match="stay digital.*lstm"):
        analog = to_analog(model, IDEAL)
    rep = conversion_report(analog).set_index("module")
    assert bool(rep.loc["head", "analog"]) and not bool(rep.loc["lstm", "analog"])
    assert "unsupported type LSTM" in rep.loc["lstm", "reason"]
    assert "unsupported type Embedding" in rep.loc["emb", "reason"]
    assert "elementwise" in rep.loc["norm", "reason"]
    with pytest.raises(ConfigError, match="strict=True"):
        to_analog(model, IDEAL, strict=True)
    # kept digital on purpose: no warning, the reason says so
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        quiet = to_analog(model, IDEAL, overrides={"emb": None, "lstm": None, "head": None},
                          strict=True)
    rep = conversion_report(quiet).set_index("module")
    assert rep.loc["head", "reason"].startswith("override None") and not rep.analog.any()
    with pytest.raises(ConfigError, match="no analog layers"):
        mapping_report(quiet)


def test_a_shared_module_stays_shared_and_runs_analog_in_both_uses():
    torch.manual_seed(0)
    lin = nn.Linear(6, 6)
    model = nn.Sequential(lin, nn.ReLU(), lin)
    analog = to_analog(model, IDEAL)
    assert analog[0] is analog[2] and isinstance(analog[0], AnalogLinear)
    assert len(mapping_report(analog)) == 1  # converted, mapped and costed once
    pcm = TileConfig(rows=32, cols=32, device=presets.get("pcm-joshi2020"),
                     read_noise="per_read")
    aged = drift(program(to_analog(model, pcm)), YEAR)
    x = torch.randn(4, 6)
    with torch.no_grad():
        h = torch.relu(aged[0](x))
        torch.testing.assert_close(aged(x), aged[0](h))  # both uses go through the arrays
        assert (aged[0](h) - lin(h)).abs().max() > 1e-3
    exact(program(analog), model, x)


def test_refused_inputs_are_clear():
    with pytest.raises(ConfigError, match="hardware = None"):
        to_analog(nn.Linear(2, 2), None)
    layer = program(to_analog(nn.Linear(4, 2), IDEAL))
    with pytest.raises(ConfigError, match="dtype torch.float64 differs"):
        layer(torch.rand(3, 4, dtype=torch.float64))
    with pytest.raises(ConfigError, match=r"expected \(\.\.\., 4\)"):
        layer(torch.rand(3, 5))
    with pytest.raises(ConfigError, match="GiB"):  # refused before allocating 4 PB
        AnalogLinear(10**8, 10**7, hardware=IDEAL)
    with pytest.raises(ConfigError, match="GiB"):
        TiledMatrix(IDEAL, 2**31, 2**31)
    conv = program(to_analog(nn.Conv2d(2, 2, 5), IDEAL))
    with pytest.raises(ConfigError, match="smaller than the kernel"):
        conv(torch.rand(1, 2, 3, 8))
    with pytest.raises(ConfigError, match="groups = 3 must divide"):
        AnalogConv2d(4, 6, 3, groups=3, hardware=IDEAL)
    with pytest.raises(ConfigError, match="phase"):
        with layer.calibration("weights"):
            pass


def test_registry_takes_new_layer_types():
    class Scaled(nn.Linear):
        """A user module whose analog replacement is registered by the user."""

    calls = []

    def convert(module, hardware, mapping):
        calls.append(type(module).__name__)
        return AnalogLinear.from_digital(module, hardware, mapping)

    register(Scaled, convert)
    analog = to_analog(nn.Sequential(Scaled(3, 2)), IDEAL)
    assert calls == ["Scaled"] and isinstance(analog[0], AnalogLinear)
    with pytest.raises(ConfigError, match="not an nn.Module"):
        register(int, convert)


@pytest.mark.parametrize("encoding, layout, cols", [("differential", "columns", 128),
                                                    ("differential", "arrays", 256),
                                                    ("offset", "columns", 255)])
def test_mapping_report_states_the_weights_per_tile(encoding, layout, cols):
    hw = TileConfig(rows=256, cols=256, device=IdealDevice(), encoding=encoding, layout=layout)
    rep = mapping_report(to_analog(nn.Linear(512, 512), hw)).iloc[0]
    assert rep.weights_per_tile == f"256x{cols}" and rep.weight_cols_per_tile == cols
    assert (rep.row_blocks, rep.col_blocks) == (2, -(-512 // cols))
