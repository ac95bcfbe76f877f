"""Mapper and analog layers: exactness with ideal hardware, tiling, drift, state_dict."""

import pytest
import torch
from torch import nn

from memxbar.crossbar.periphery import ADC, DAC
from memxbar.crossbar.tile import TileConfig
from memxbar.devices import IdealDevice, presets
from memxbar.mapping import (
    AnalogConv2d,
    AnalogLinear,
    MappingConfig,
    TiledMatrix,
    analog_layers,
    calibrate,
    drift,
    mapping_report,
    program,
    to_analog,
)
from memxbar.studies.workloads import MLP, LeNet, SmallResNet, digits, loaders
from memxbar.training.digital import evaluate, train

IDEAL = TileConfig(rows=32, cols=32, device=IdealDevice())


@pytest.fixture(scope="module")
def data():
    tr, te = digits(seed=0)
    return tr, te, *loaders(tr, te, 32, seed=0)


@pytest.fixture(scope="module")
def mlp(data):
    torch.manual_seed(0)
    m = MLP((1, 8, 8), 10, hidden=(64,))
    train(m, data[2], epochs=10, lr=3e-3, generator=0)
    return m.eval()


@pytest.fixture(scope="module")
def cnn(data):
    torch.manual_seed(0)
    m = LeNet((1, 8, 8), 10)
    train(m, data[2], epochs=10, lr=3e-3, generator=0)
    return m.eval()


@pytest.mark.parametrize("make", [lambda: MLP((1, 8, 8), 10, hidden=(50, 30)),
                                  lambda: LeNet((1, 8, 8), 10),
                                  lambda: SmallResNet((1, 8, 8), 10).eval()])
def test_ideal_hardware_reproduces_digital_model(make):
    torch.manual_seed(1)
    model = make()
    analog = program(to_analog(model, IDEAL))
    x = torch.rand(16, 1, 8, 8)
    torch.testing.assert_close(analog(x), model(x), rtol=1e-4, atol=1e-5)
    assert sum(isinstance(m, (AnalogLinear, AnalogConv2d)) for m in analog.modules()) >= 2


def test_resnet_residual_blocks_convert_and_run():
    model = SmallResNet((3, 16, 16), 10).eval()
    analog = program(to_analog(model, TileConfig(rows=64, cols=64, device=presets.get(
        "rram-falcone2025"))), generator=torch.Generator().manual_seed(0))
    y = analog(torch.rand(2, 3, 16, 16))
    assert y.shape == (2, 10) and torch.isfinite(y).all()
    convs = [m for m in analog.modules() if isinstance(m, AnalogConv2d)]
    assert len(convs) == sum(isinstance(m, nn.Conv2d) for m in model.modules())


@pytest.mark.parametrize("kind", ["mlp", "cnn"])
def test_trained_model_keeps_accuracy_on_ideal_device_with_8bit_periphery(data, mlp, cnn, kind):
    model = mlp if kind == "mlp" else cnn
    hw = TileConfig(rows=32, cols=32, device=IdealDevice(), dac=DAC(bits=8),
                    adc=ADC(bits=8, range_mode="per_column"))
    analog = program(to_analog(model, hw), calibration=data[0].tensors[0][:256])
    digital_acc, analog_acc = evaluate(model, data[3]), evaluate(analog, data[3])
    assert digital_acc > 0.9
    assert abs(analog_acc - digital_acc) <= 0.01


def test_row_block_partial_sums_are_digitized_separately():
    """Two row blocks: the result is the sum of each block's own ADC conversion."""
    hw = TileConfig(rows=4, cols=4, device=IdealDevice(), adc=ADC(bits=3, full_scale=4.0))
    tm = TiledMatrix(hw, in_features=8, out_features=2)
    w = torch.tensor([[0.9, 0.2, -0.4, 0.7, 0.1, 0.3, -0.8, 0.5],
                      [-0.6, 0.5, 0.3, -0.2, 0.9, -0.1, 0.4, 0.2]])
    tm.program(w)
    x = torch.tensor([[0.5, -1.0, 0.25, 0.75, 1.0, 0.5, -0.5, 0.25]])
    y = tm.forward(x)
    wn = w / w.abs().amax(dim=1, keepdim=True)
    n = 3  # 3-bit signed ADC: codes -3..3 over full scale 4
    parts = [x[:, :4] @ wn[:, :4].T, x[:, 4:] @ wn[:, 4:].T]  # >= 0.06 level from a tie
    expect = sum((p * n / 4.0).round().clamp(-n, n) * 4.0 / n for p in parts)
    torch.testing.assert_close(y, expect * w.abs().amax(dim=1), rtol=1e-5, atol=1e-6)


def test_mapping_report_counts_tiles_and_utilization():
    model = nn.Sequential(nn.Linear(70, 40), nn.ReLU(), nn.Linear(40, 10))
    rep = mapping_report(to_analog(model, IDEAL))
    first = rep.iloc[0]
    assert (first.row_blocks, first.col_blocks) == (3, 3)  # 70 inputs / 32 rows, 40 outs / 16
    assert first.cells_used == 70 * 40 * 2
    assert first.utilization == pytest.approx(70 * 40 * 2 / (9 * 32 * 32))


def test_overrides_keep_layers_digital_or_change_hardware():
    model = nn.Sequential(nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 2))
    big = TileConfig(rows=64, cols=64, device=IdealDevice())
    analog = to_analog(model, IDEAL, overrides={"0": None, "2": big})
    assert isinstance(analog[0], nn.Linear) and not isinstance(analog[0], AnalogLinear)
    assert analog[2].hardware is big
    with pytest.raises(ValueError, match="unknown modules"):
        to_analog(model, IDEAL, overrides={"nope": None})


def test_pcm_drift_lowers_accuracy_and_compensation_recovers(data, mlp):
    """PCM, 5-bit ADC ranged at t = 0: accuracy falls over 10 years of drift; the global
    reference-read compensation restores the weight scale and part of the accuracy."""
    dev = presets.get("pcm-joshi2020")
    acc = {}
    for comp in ("none", "global"):
        hw = TileConfig(rows=64, cols=64, device=dev, dac=DAC(bits=8),
                        adc=ADC(bits=5, range_mode="calibrated"))
        runs = []
        for seed in range(3):
            analog = to_analog(mlp, hw, mapping=MappingConfig(compensation=comp))
            gen = torch.Generator().manual_seed(seed)
            program(analog, generator=gen, calibration=data[0].tensors[0][:256])
            w0 = analog.net[1].tiled.effective_weight().abs().mean()
            accs = []
            for t in (1.0, 3.15e8):
                drift(analog, t, generator=gen)
                accs.append(evaluate(analog, data[3]))
            w1 = analog.net[1].tiled.effective_weight().abs().mean()
            if comp == "none":
                assert w1 < 0.5 * w0  # ten years of drift (nu ~ 0.05-0.1) shrink the weights
            else:
                assert abs(w1 / w0 - 1) < 0.1  # the reference read restores the scale
            runs.append(accs)
        acc[comp] = torch.tensor(runs).mean(0)
    assert acc["none"][1] < acc["none"][0] - 0.02
    assert acc["global"][1] > acc["none"][1] + 0.005


@pytest.mark.parametrize("read_noise", ["per_mvm", "per_read"])
def test_state_dict_round_trip_is_exact(data, mlp, read_noise):
    hw = TileConfig(rows=32, cols=32, device=presets.get("pcm-joshi2020"), dac=DAC(bits=8),
                    adc=ADC(bits=8, range_mode="per_column"), read_noise=read_noise)
    mapping = MappingConfig(compensation="column", input_scaling="calibrated")
    analog = to_analog(mlp, hw, mapping=mapping)
    program(analog, generator=torch.Generator().manual_seed(0),
            calibration=data[0].tensors[0][:128])
    drift(analog, 86400.0, generator=torch.Generator().manual_seed(1))
    sd = analog.state_dict()
    assert any(k.endswith("tiled.tile.cells.latent.nu") or k.endswith("tiled.tile.latent_nu")
               for k in sd)
    assert any(k.endswith("tiled.x_range") for k in sd)
    fresh = to_analog(mlp, hw, mapping=mapping)
    fresh.load_state_dict(sd)
    x = data[1].tensors[0][:32]
    for layer_a, layer_b in zip(analog.net[1::2], fresh.net[1::2], strict=True):
        layer_a.generator = torch.Generator().manual_seed(7)
        layer_b.generator = torch.Generator().manual_seed(7)
        torch.testing.assert_close(layer_a.tiled.effective_weight(),
                                   layer_b.tiled.effective_weight(), rtol=0, atol=0)
    with torch.no_grad():
        a, b = analog(x), fresh(x)
    # the same codes through copies of the same conductances: a conversion on a rounding tie
    # may land one level off if the BLAS sums the copies in another order
    assert float(((a - b).abs() > 1e-5).float().mean()) < 0.01
    torch.testing.assert_close(a, b, rtol=0, atol=0.1)


def test_chip_in_the_loop_gradients_match_effective_weights():
    torch.manual_seed(0)
    layer = AnalogLinear(6, 3, hardware=IDEAL)
    layer.program()
    x = torch.rand(4, 6, requires_grad=True)
    layer(x).sum().backward()
    torch.testing.assert_close(x.grad, layer.weight.detach().sum(0).expand(4, 6))
    torch.testing.assert_close(layer.weight.grad, x.detach().sum(0).expand(3, 6))
    layer.backward_analog = True
    x.grad = None
    layer(x).sum().backward()
    torch.testing.assert_close(x.grad, layer.weight.detach().sum(0).expand(4, 6), rtol=1e-4,
                               atol=1e-5)


def test_errors_are_clear():
    layer = AnalogLinear(4, 2, hardware=IDEAL)
    with pytest.raises(ValueError, match="not programmed"):
        layer(torch.rand(1, 4))
    with pytest.raises(ValueError, match="no analog layers"):
        program(nn.Sequential(nn.ReLU()))
    with pytest.raises(ValueError, match="weight_scaling"):
        MappingConfig(weight_scaling="row")
    hw = TileConfig(rows=8, cols=8, device=IdealDevice(), adc=ADC(bits=6,
                                                                   range_mode="calibrated"))
    with pytest.raises(ValueError, match="calibration"):
        program(to_analog(nn.Linear(4, 2), hw))


def test_read_times_and_counts_from_numpy_arrays_are_taken_as_numbers():
    """``for t in np.array([1, 3600])`` gives np.int64 values: read as the seconds they hold,
    the same as Python numbers; a numpy bool is still refused."""
    import numpy as np

    from memxbar.mapping.disturb import apply_read_disturb
    from memxbar.training.hwa import analog_accuracy

    hw = TileConfig(rows=8, cols=8, device=presets.get("pcm-joshi2020"))
    net = nn.Sequential(nn.Linear(8, 4))
    x = torch.rand(3, 8, generator=torch.Generator().manual_seed(1))
    outs = []
    for times in ([1, 3600.0], np.array([1, 3600]), np.array([1, 3600], dtype=np.float32),
                  torch.tensor([1.0, 3600.0]), torch.tensor([1, 3600])):  # 0-d tensors
        model = program(to_analog(net, hw), generator=torch.Generator().manual_seed(0))
        for t in times:
            drift(model, t)
        apply_read_disturb(model, np.int64(10), x)
        with torch.no_grad():
            outs.append(model(x))
    assert all(torch.equal(outs[0], out) for out in outs[1:])
    with pytest.raises(ValueError, match="t = True s is not allowed"):
        drift(model, np.bool_(True))
    with pytest.raises(ValueError, match=r"t = tensor\(True\) s is not allowed"):
        drift(model, torch.tensor(True))
    with pytest.raises(ValueError, match=r"t = tensor\(\[1., 2.\]\) s is not allowed"):
        drift(model, torch.tensor([1.0, 2.0]))
    data = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, torch.tensor([0, 1, 2])))
    acc = analog_accuracy(net, hw, data, t=np.float32(60.0), repeats=np.int64(2))
    assert analog_accuracy(net, hw, data, t=torch.tensor(60.0), repeats=2) == acc
    assert len(acc) == 2


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_matches_cpu_statistics(mlp, data):
    hw = TileConfig(rows=64, cols=64, device=presets.get("pcm-joshi2020"))
    accs = []
    for dev in ("cpu", "cuda"):
        analog = to_analog(mlp, hw).to(dev)
        gen = torch.Generator(device=dev).manual_seed(0)
        program(analog, generator=gen)
        drift(analog, 86400.0, generator=gen)
        x, y = data[1].tensors
        accs.append((analog(x.to(dev)).argmax(1).cpu() == y).float().mean().item())
    assert abs(accs[0] - accs[1]) < 0.02


@pytest.mark.parametrize("geometry", [dict(kernel_size=3, padding=1),
                                      dict(kernel_size=(3, 2), stride=2, padding=(2, 0)),
                                      dict(kernel_size=3, dilation=2, padding=2)])
@pytest.mark.parametrize("scaling", ["fixed", "dynamic", "calibrated"])
def test_conv_without_unfolding_matches_the_unfolded_path(geometry, scaling):
    """The inference convolution (conv2d of DAC codes for fixed input scaling; pooled patch
    maxima for dynamic scaling) equals the unfolded MVM the training path uses, with several
    row blocks (24-36 inputs on 16-row tiles), PCM read noise and an 8-bit ADC."""
    torch.manual_seed(3)
    conv = nn.Conv2d(4, 5, **geometry)
    hw = TileConfig(rows=16, cols=8, device=presets.get("pcm-joshi2020"), dac=DAC(bits=6),
                    adc=ADC(bits=8, full_scale=6.0), read_noise="per_read")
    layer = AnalogConv2d.from_digital(conv, hw, MappingConfig(input_scaling=scaling,
                                                              input_range=0.8))
    layer.program(generator=torch.Generator().manual_seed(0))
    x = torch.randn(3, 4, 9, 8)
    if scaling == "calibrated":
        with pytest.raises(ValueError, match="input_scaling='calibrated' needs a calibration"):
            layer(x)
        calibrate(layer, 0.5 * x)
        assert float(layer.tiled.x_range) == pytest.approx(float((0.5 * x).abs().max()))
    with torch.no_grad():
        fast = layer(x)
        grad_path = layer(x.requires_grad_()).detach()  # unfolds through the strided view
        cols = nn.functional.unfold(x, conv.kernel_size, conv.dilation, conv.padding,
                                    conv.stride)
        slow = layer.tiled.forward(cols.transpose(1, 2).reshape(-1, cols.shape[1]))
        slow = slow.reshape(3, *fast.shape[2:], 5).permute(0, 3, 1, 2) + conv.bias[:, None, None]
    assert layer.tiled.n_row_blocks > 1 and fast.shape == conv(x).shape
    # same codes and conductances, sums in another order (another unfolding, a convolution,
    # another CPU's BLAS kernels): a conversion on a rounding tie may land one ADC level off;
    # allowed on under 2 % of the outputs, at most one level per row block
    fs = (float(layer.tiled.x_range) if scaling == "calibrated" else
          0.8 if scaling == "fixed" else float(x.detach().abs().max()))
    lsb = 6.0 / 127 * float(layer.tiled.scale.max()) * fs
    for other in (grad_path, fast):
        diff = (other - slow).abs()
        assert float(diff.max()) <= (layer.tiled.n_row_blocks + 0.01) * lsb
        assert float((diff > 1e-5).float().mean()) < 0.02


def test_calibration_over_several_batches_covers_them_all(mlp, data):
    """ADC ranges and calibrated input ranges from three batches cover them all, not just
    the last: the first layer's equal those from the three concatenated; later layers see
    inputs quantized by ranges still growing, so theirs agree to a fraction of a percent."""
    hw = TileConfig(rows=32, cols=32, device=IdealDevice(), dac=DAC(bits=8),
                    adc=ADC(bits=8, range_mode="per_column"))
    x = data[0].tensors[0][:96]
    mapping = MappingConfig(input_scaling="calibrated")
    one = program(to_analog(mlp, hw, mapping=mapping), calibration=x)
    three = program(to_analog(mlp, hw, mapping=mapping), calibration=list(x.split(32)))
    for k, (a, b) in enumerate(zip(analog_layers(one), analog_layers(three), strict=True)):
        ta, tb = a[1].tiled, b[1].tiled
        if k == 0:
            assert float(ta.x_range) == float(tb.x_range)
            torch.testing.assert_close(ta.tile.adc_fs, tb.tile.adc_fs)
        else:
            assert abs(ta.x_range - tb.x_range) <= 0.02 * tb.x_range
            torch.testing.assert_close(ta.tile.adc_fs, tb.tile.adc_fs, rtol=0.02, atol=0.0)
    # the last batch alone gives narrower ranges somewhere: the earlier batches count
    last = next(analog_layers(program(to_analog(mlp, hw, mapping=mapping), calibration=x[64:])))[1]
    first = next(analog_layers(three))[1]
    assert last.tiled.x_range <= first.tiled.x_range
    assert bool((last.tiled.tile.adc_fs <= first.tiled.tile.adc_fs).all())
    assert last.tiled.x_range < first.tiled.x_range or bool(
        (last.tiled.tile.adc_fs < first.tiled.tile.adc_fs).any())
