"""Convolution inference with per-patch ("dynamic") input scaling: the patches gathered once
channel-major and quantized with pooled patch maxima give the outputs of the unfolded MVM
(``F.unfold`` patches through ``TiledMatrix.forward``), with the same noise draws and the same
ADC conversion count."""

import pytest
import torch
from helpers import torch_threads
from torch import nn
from torch.nn import functional as F

from memxbar.crossbar.periphery import ADC, DAC
from memxbar.crossbar.tile import TileConfig
from memxbar.devices import presets
from memxbar.errors import ConfigError
from memxbar.mapping import (
    AnalogConv,
    AnalogConv1d,
    AnalogConv2d,
    AnalogConv3d,
    MappingConfig,
    TiledMatrix,
    calibrate,
)
from memxbar.mapping.layers import conv as conv_module

PCM = presets.get("pcm-joshi2020")


def hardware(**kw) -> TileConfig:
    base = dict(rows=16, cols=16, device=PCM, dac=DAC(bits=6), adc=ADC(bits=0),
                read_noise="per_mvm")
    return TileConfig(**(base | kw))


def reference(layer: AnalogConv, x: torch.Tensor, shape: torch.Size) -> torch.Tensor:
    """The old way: unfold the patches (``F.unfold`` for 2-D, the training path's strided
    unfolding otherwise), one MVM per patch with its own largest |x| (``TiledMatrix.forward``
    computes it per row and group), bias added; ``shape``: the output's."""
    if layer.nd == 2 and layer.padding_mode == "zeros":
        cols = F.unfold(x, layer.kernel_size, layer.dilation, layer.padding, layer.stride)
        cols = cols.transpose(1, 2).reshape(-1, cols.shape[1])
    else:
        cols = layer.patches(x)[0]
    y = layer.tiled.forward(cols, generator=layer.device_generator(x))
    y = y.reshape(x.shape[0], -1, layer.out_channels).transpose(1, 2).reshape(shape)
    return y if layer.bias is None else y + layer.bias.reshape(-1, *([1] * layer.nd))


def type_of(conv: nn.Module) -> type[AnalogConv]:
    return {1: AnalogConv1d, 2: AnalogConv2d, 3: AnalogConv3d}[conv.weight.dim() - 2]


def seeded(layer: AnalogConv, x: torch.Tensor, fn) -> torch.Tensor:
    layer.generator = torch.Generator().manual_seed(7)  # the same noise draws for both paths
    with torch.no_grad():
        return fn(x)


GEOMETRIES = [
    # (module, spatial size): one group on one row block (the (N, in, L) buffer)
    (nn.Conv2d(1, 4, 3, padding=1), 6),
    (nn.Conv1d(3, 4, 5, dilation=2, padding=4, stride=2), 13),
    (nn.Conv3d(2, 3, 2, padding=1), 4),
    # several row blocks (36 = 2 x 16 + 4 inputs, the last block padded), groups, depthwise
    (nn.Conv2d(4, 5, 3, padding=1), 5),
    (nn.Conv2d(4, 8, (3, 2), groups=2, stride=2, padding=(1, 0)), 7),
    (nn.Conv2d(8, 8, 3, groups=8, padding=1, bias=False), 5),
    (nn.Conv2d(2, 4, 3, padding="same", padding_mode="reflect", dilation=2), 6),
]


@pytest.mark.parametrize("chunk", [None, 1], ids=["one chunk", "an image per chunk"])
@pytest.mark.parametrize(("conv", "size"), GEOMETRIES, ids=lambda g: repr(g))
def test_dynamic_inference_equals_the_unfolded_mvm(conv, size, chunk, monkeypatch):
    """Same DAC codes, conductances and per-MVM read-noise draws; sums in another order, so
    equal to float tolerance (an ideal ADC: no conversion threshold to cross), whether the
    codes of the whole batch are written and multiplied at once or one image at a time."""
    if chunk is not None:
        monkeypatch.setattr(conv_module, "CHUNK_ELEMENTS", chunk)
    torch.manual_seed(0)
    layer = type_of(conv).from_digital(conv, hardware(), MappingConfig(input_scaling="dynamic"))
    layer.program(generator=torch.Generator().manual_seed(1))
    layer.drift(3600.0)
    x = torch.randn(3, conv.in_channels, *([size] * layer.nd))
    x[0, :, :2] = 0.0  # all-zero patches take scale 1
    tile = layer.tiled.tile
    before = tile.adc_conversions
    fast = seeded(layer, x, layer)
    conversions = tile.adc_conversions - before
    slow = seeded(layer, x, lambda v: reference(layer, v, fast.shape))
    assert fast.shape == conv(x).shape
    torch.testing.assert_close(fast, slow, rtol=1e-5, atol=1e-6)
    assert tile.adc_conversions - before == 2 * conversions  # counted as the unfolded MVM
    # the noise is drawn: another generator state gives other outputs
    layer.generator = torch.Generator().manual_seed(8)
    with torch.no_grad():
        assert not torch.allclose(layer(x), fast)


@pytest.mark.parametrize(("conv", "size"), [GEOMETRIES[0], GEOMETRIES[3], GEOMETRIES[4]],
                         ids=lambda g: repr(g))
def test_dynamic_inference_is_identical_for_one_and_two_threads(conv, size, monkeypatch):
    """The chunks of images run on two threads (each with one torch thread) give the bits of
    one thread: one row block, several row blocks, groups."""
    monkeypatch.setattr(conv_module, "CHUNK_ELEMENTS", 1)  # an image per chunk
    torch.manual_seed(0)
    layer = type_of(conv).from_digital(conv, hardware(), MappingConfig(input_scaling="dynamic"))
    layer.program(generator=torch.Generator().manual_seed(1))
    x = torch.randn(5, conv.in_channels, *([size] * layer.nd))
    outs = []
    for threads in (1, 2):
        with torch_threads(threads):
            outs.append(seeded(layer, x, layer))
    assert torch.equal(outs[0], outs[1])


def test_dynamic_inference_with_ir_drop_row_groups_and_compensation():
    """Wire resistance keeps the whole 16-row array simulated (9 inputs on 16 rows), rows read
    4 at a time, drift compensation per column, a calibrated 8-bit ADC: equal to the unfolded
    MVM except where a sum in another order crosses an ADC threshold (one level, rarely)."""
    torch.manual_seed(0)
    conv = nn.Conv2d(1, 3, 3, padding=1)
    hw = hardware(r_row=2.0, r_col=2.0, rows_parallel=4, adc=ADC(bits=8, range_mode="calibrated"))
    layer = AnalogConv2d.from_digital(
        conv, hw, MappingConfig(input_scaling="dynamic", compensation="column"))
    layer.program(generator=torch.Generator().manual_seed(1))
    x = torch.randn(4, 1, 6, 6)
    calibrate(layer, x)
    layer.drift(86400.0)
    assert layer.tiled.sim.rows == 16 and layer.tiled.alpha is not None
    fast = seeded(layer, x, layer)
    slow = seeded(layer, x, lambda v: reference(layer, v, fast.shape))
    lsb = float((layer.tiled.tile.adc_fs / 127).max() * layer.tiled.scale.max()
                * layer.tiled.alpha.max() * x.abs().max()) * hw.row_groups
    diff = (fast - slow).abs()
    assert float(diff.max()) <= 1.01 * lsb
    assert float((diff > 1e-5).float().mean()) < 0.02


def test_dynamic_inference_runs_without_the_unfolded_mvm(monkeypatch):
    """With a one-shot DAC the unfolded row-major MVM is not used in inference; a bit-serial
    DAC (one conversion per magnitude bit) still takes it, with the same result."""
    torch.manual_seed(0)
    conv = nn.Conv2d(3, 4, 3)
    x = torch.randn(2, 3, 6, 6)
    outs = []
    for dac in (DAC(bits=5), DAC(bits=5, bit_serial=True)):
        layer = type_of(conv).from_digital(conv, hardware(dac=dac, read_noise="off"))
        layer.program(generator=torch.Generator().manual_seed(1))
        if not dac.bit_serial:
            with monkeypatch.context() as m:
                m.setattr(TiledMatrix, "forward", lambda *a, **k: pytest.fail("unfolded MVM"))
                with torch.no_grad():
                    outs.append(layer(x))
        else:
            with torch.no_grad():
                outs.append(layer(x))
    # bit-serial cycles recombined digitally equal the one-shot codes (ideal ADC)
    torch.testing.assert_close(outs[0], outs[1], rtol=1e-5, atol=1e-6)
    layer = type_of(conv).from_digital(conv, hardware(read_noise="off"))
    layer.program()
    x[1, 2, 3, 3] = float("nan")
    with pytest.raises(ConfigError, match="non-finite"), torch.no_grad():
        layer(x)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_dynamic_inference_on_cuda_equals_the_unfolded_mvm():
    torch.manual_seed(0)
    conv = nn.Conv2d(4, 5, 3, padding=1)
    layer = AnalogConv2d.from_digital(conv, hardware()).cuda()
    layer.program(generator=torch.Generator(device="cuda").manual_seed(1))
    x = torch.randn(3, 4, 5, 5, device="cuda")
    layer.generator = torch.Generator(device="cuda").manual_seed(7)
    with torch.no_grad():
        fast = layer(x)
        layer.generator = torch.Generator(device="cuda").manual_seed(7)
        slow = reference(layer, x, fast.shape)
    torch.testing.assert_close(fast, slow, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("scaling", ["dynamic", "fixed"])
def test_non_ohmic_cells_take_the_unfolded_mvm(scaling):
    """Cells with a nonlinear I-V (rram-milo2021) have no conductance matrix to convolve with:
    every input scaling runs the unfolded MVM (a fixed range used to fail in inference)."""
    torch.manual_seed(0)
    conv = nn.Conv2d(2, 3, 3)
    hw = hardware(device=presets.get("rram-milo2021"), read_noise="off")
    layer = AnalogConv2d.from_digital(conv, hw, MappingConfig(input_scaling=scaling,
                                                              input_range=3.0))
    layer.program(generator=torch.Generator().manual_seed(1))
    x = torch.randn(2, 2, 6, 6)
    with torch.no_grad():
        y = layer(x)
        cols = layer.patches(x)[0]
        want = layer.tiled.forward(cols).reshape(2, 16, 3).transpose(1, 2).reshape(y.shape)
    torch.testing.assert_close(y, want + conv.bias[:, None, None], rtol=1e-5, atol=1e-6)
