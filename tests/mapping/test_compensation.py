"""Drift compensation: the reference read is not biased by a calibrated ADC, and every draw
uses the caller's generator."""

import pytest
import torch
from torch import nn

from memxbar.crossbar.periphery import ADC, DAC
from memxbar.crossbar.tile import TileConfig
from memxbar.devices import presets
from memxbar.mapping import MappingConfig, analog_layers, drift, program, to_analog

YEAR = 3.15e7


def net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10)).eval()


def factors(model: nn.Module, adc: ADC, mode: str, x: torch.Tensor, seed: int = 0):
    hw = TileConfig(rows=64, cols=128, device=presets.get("pcm-joshi2020"), dac=DAC(bits=8),
                    adc=adc, read_noise="per_read")
    analog = to_analog(model, hw, mapping=MappingConfig(compensation=mode))
    gen = torch.Generator().manual_seed(seed)
    program(analog, generator=gen, calibration=x)
    drift(analog, YEAR)
    return analog, [layer.tiled.alpha for _, layer in analog_layers(analog)]


@pytest.mark.parametrize("mode", ["global", "column"])
def test_compensation_factor_with_a_calibrated_adc_matches_the_exact_one(mode):
    """A random 64-64-10 net, PCM, one year: with an 8-bit ADC calibrated on real activations
    the factors are within 2 % of those with an ideal ADC (a +-1 probe through that ADC
    saturated it and gave 1.53 instead of 1.995), and they restore the weight scale."""
    model = net()
    x = torch.rand(256, 64)
    analog, calibrated = factors(model, ADC(bits=8, range_mode="calibrated"), mode, x)
    _, ideal = factors(model, ADC(bits=0), mode, x)
    for a, b in zip(calibrated, ideal, strict=True):
        assert float((a / b - 1).abs().max()) < 0.02
    assert float(calibrated[1].mean()) > 1.8  # ten-percent-level drift of PCM over a year
    layer = analog[2]
    w0 = (layer.tiled.effective_weight(0.0) / layer.tiled.alpha[:, None]).abs().sum()
    w1 = layer.tiled.effective_weight().abs().sum()  # at one year, compensated
    assert float(w1 / w0) == pytest.approx(1.0, abs=0.05)
    _, per_column = factors(model, ADC(bits=8, range_mode="per_column"), mode, x)
    for a, b in zip(per_column, ideal, strict=True):
        assert float((a / b - 1).abs().max()) < 0.02


def test_the_same_generator_gives_the_same_result_under_any_global_seed():
    model = net()
    x = torch.rand(64, 64)
    adc = ADC(bits=8, range_mode="calibrated")
    hw = TileConfig(rows=64, cols=128, device=presets.get("pcm-joshi2020"), dac=DAC(bits=8),
                    adc=adc)
    runs = []
    for global_seed in (1, 2):
        torch.manual_seed(global_seed)
        analog = to_analog(model, hw, mapping=MappingConfig(compensation="column",
                                                            input_scaling="calibrated"))
        program(analog, generator=torch.Generator().manual_seed(5), calibration=x)
        drift(analog, YEAR)
        with torch.no_grad():
            y = analog(x)
        runs.append(([layer.tiled.alpha for _, layer in analog_layers(analog)], y))
    for a, b in zip(runs[0][0], runs[1][0], strict=True):
        assert torch.equal(a, b)
    assert torch.equal(runs[0][1], runs[1][1])
    torch.manual_seed(3)  # and without any generator: a private one, not the global one
    one = program(to_analog(model, hw), calibration=x)
    torch.manual_seed(4)
    two = program(to_analog(model, hw), calibration=x)
    with torch.no_grad():
        assert torch.equal(one(x), two(x))


@pytest.mark.parametrize("read_noise", ["physical", "per_read", "per_mvm"])
def test_one_ir_drop_solve_per_read_time_with_compensation(monkeypatch, read_noise):
    """With IR drop and drift compensation, each read time costs one solve per tile: the
    reference read at the tile's own read time is a read of that period (its installed read,
    frozen noise sample included), not a second solve of the noise-free means."""
    from memxbar.crossbar.readout import ReadPath

    solves = []
    real = ReadPath._effective

    def counting(self, g):  # type: ignore[no-untyped-def]
        solves.append(g.shape)
        return real(self, g)

    monkeypatch.setattr(ReadPath, "_effective", counting)
    hw = TileConfig(rows=64, cols=64, device=presets.get("pcm-joshi2020"), dac=DAC(bits=8),
                    adc=ADC(bits=0), read_noise=read_noise, r_row=1.0, r_col=1.0)
    analog = to_analog(nn.Sequential(nn.Linear(32, 16)), hw,
                       mapping=MappingConfig(compensation="global"))
    program(analog, generator=torch.Generator().manual_seed(0))
    solves.clear()
    drift(analog, YEAR)
    assert len(solves) == 1
    alpha = analog[0].tiled.alpha
    assert alpha is not None and 1.0 < float(alpha.mean()) < 3.0  # a year of PCM drift
