"""Read disturb accumulated over inferences (issue 13, missing physics 5): the reads each cell of
a network sees per inference (DAC cycles, polarity, convolution positions), MTJ cells below and
above their disturb limit against the device's closed form, the RRAM power law against its
formula and its voltage acceleration, and technologies without a model left untouched."""

import dataclasses
import math

import pytest
import torch
from torch import nn

from memxbar.crossbar.periphery import DAC
from memxbar.crossbar.tile import TileConfig
from memxbar.devices import IdealDevice, presets
from memxbar.devices.base import CellState
from memxbar.devices.disturb import PowerLawReadDisturb
from memxbar.errors import ConfigError
from memxbar.mapping import program, to_analog
from memxbar.mapping.cost import capture_inputs
from memxbar.mapping.disturb import apply_read_disturb

BITS = 4  # bit-serial DAC: 3 magnitude-bit cycles per vector
CYCLES = BITS - 1


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def analog_net(device, model: nn.Module, signed: str = "voltage", rows: int = 64,
               cols: int = 64) -> nn.Module:
    hw = TileConfig(rows=rows, cols=cols, device=device, read_noise="off",
                    dac=DAC(bits=BITS, bit_serial=True, signed=signed))
    return program(to_analog(model, hw), generator=gen(0))


def mlp() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(48, 32), nn.ReLU(), nn.Linear(32, 10))


def cells(model: nn.Module, i: int = 0) -> CellState:
    return model[i].tiled.tile.state


# ------------------------------------------------------------------ reads per inference
def test_full_scale_inputs_read_every_row_once_per_bit_serial_cycle():
    net = analog_net(IdealDevice(), mlp())
    x = torch.ones(5, 48)  # largest code: every magnitude bit set
    report = apply_read_disturb(net, 1e9, x)
    assert report.layers.loc["0", "reads_per_inference"] == CYCLES
    assert report.layers.loc["0", "reads_mean"] == pytest.approx(CYCLES)
    assert report.changed == 0  # ideal device: no read-disturb model


def test_convolution_reads_each_row_once_per_output_position():
    torch.manual_seed(0)
    net = analog_net(IdealDevice(), nn.Sequential(nn.Conv2d(2, 4, 3), nn.Flatten(),
                                                  nn.Linear(4 * 4 * 4, 3)))
    report = apply_read_disturb(net, 10.0, torch.ones(2, 2, 6, 6))
    assert report.layers.loc["0", "reads_per_inference"] == 4 * 4 * CYCLES  # 4x4 positions


def test_zero_inputs_and_zero_inferences_read_nothing():
    dev = dataclasses.replace(presets.get("mtj-neurosim"), read_voltage=0.4)
    net = analog_net(dev, mlp())
    before = cells(net).g.clone()
    assert apply_read_disturb(net, 1e9, torch.zeros(3, 48)).layers.loc[
        "0", "reads_per_inference"] == 0
    assert apply_read_disturb(net, 0.0, torch.ones(3, 48)).changed == 0
    assert torch.equal(cells(net).g, before)


# ------------------------------------------------------------------ MTJ
def test_mtj_below_the_disturb_limit_keeps_cells_and_outputs_after_1e9_inferences():
    dev = presets.get("mtj-neurosim")  # 0.1 V read, limit 0.154 V for 1e9 reads
    net = analog_net(dev, mlp())
    x = torch.randn(64, 48, generator=gen(3))  # signed inputs: both polarities
    y0 = net(x)
    before = [cells(net, i).g.clone() for i in (0, 2)]
    report = apply_read_disturb(net, 1e9, x, generator=gen(4))
    assert report.changed == 0
    assert all(torch.equal(cells(net, i).g, b) for i, b in zip((0, 2), before, strict=True))
    assert torch.equal(net(x), y0)


@pytest.mark.parametrize("signed", ["voltage", "two_phase"])
def test_mtj_above_the_limit_flips_the_fraction_of_the_device_formula(signed):
    # no device-to-device R_P spread: every junction has the nominal law (with the preset's 7 %
    # spread the flipped fraction is the mean of the per-junction laws, 0.44 here)
    base = dataclasses.replace(presets.get("mtj-neurosim"), r_p_sigma=0.0)
    inferences = 1e9
    reads = inferences * CYCLES
    v = base.max_read_voltage(reads, 0.3)  # P cells (V < 0) flip with p = 0.3
    dev = dataclasses.replace(base, read_voltage=v)
    net = analog_net(dev, mlp(), signed=signed)
    before = cells(net)
    parallel = before.latent["parallel"].clone()
    x = -torch.ones(4, 48)  # negative full-scale inputs
    report = apply_read_disturb(net, inferences, x, generator=gen(5))
    after = cells(net).latent["parallel"]
    if signed == "two_phase":  # negative inputs driven at +V_read: only AP cells exposed
        p_ap = dev.read_disturb_probability(reads, voltage=v)
        assert p_ap < 1e-6
        assert torch.equal(after, parallel)
        return
    p = dev.read_disturb_probability(reads, voltage=-v)
    assert p == pytest.approx(0.3, rel=1e-6)
    n = int(parallel.sum())
    flipped = int((parallel & ~after).sum()) / n
    assert n > 500
    assert flipped == pytest.approx(p, abs=4 * math.sqrt(p * (1 - p) / n))
    assert not bool((~parallel & after).any())  # AP cells (p ~ 1e-10) stay
    assert report.layers.loc["0", "changed"] == int((parallel & ~after).sum())


def test_mtj_disturb_is_reproducible_with_a_seeded_generator():
    dev = dataclasses.replace(presets.get("mtj-neurosim"), read_voltage=0.3)
    states = []
    for _ in range(2):
        net = analog_net(dev, mlp())
        apply_read_disturb(net, 1e6, torch.randn(8, 48, generator=gen(1)), generator=gen(9))
        states.append(cells(net).g)
    assert torch.equal(*states)


# ------------------------------------------------------------------ RRAM
def test_rram_law_matches_its_formula_and_grows_with_read_voltage():
    law = PowerLawReadDisturb()
    kt = 8.617333262e-5 * 300.0
    for v in (0.3, 0.5):
        p = 0.0068 * math.exp(0.11 * v / kt)
        t_t = 1.55e-8 * (1.43339 * (1 - 0.003 * 1 ** 0.41)) ** (1 / p)
        assert float(law.exponent(v)) == pytest.approx(p, rel=1e-12)
        assert float(law.log_transition_time(v).exp()) == pytest.approx(t_t, rel=1e-9)
        assert float(law.retained(0.5 * t_t, v)) == 1.0  # before the transition time
        assert float(law.retained(1e3 * t_t, v)) == pytest.approx(1e3 ** -p, rel=1e-9)
    # higher read bias: earlier onset and a steeper loss, at any stress time
    for t in (1e-3, 1.0, 10.0):
        assert float(law.retained(t, 0.5)) < float(law.retained(t, 0.3)) <= 1.0
    # cycled cells disturb sooner (N = write cycles, the endurance latent)
    assert float(law.log_transition_time(0.5, 1e5)) < float(law.log_transition_time(0.5, 1.0))


def test_rram_network_cells_follow_the_law_above_g_min():
    dev = presets.get("rram-falcone2025")  # 0.5 V, 9.8 ns reads
    net = analog_net(dev, mlp())
    before = cells(net)
    g0 = before.g.clone()
    inferences = 1e9
    report = apply_read_disturb(net, inferences, torch.ones(2, 48))
    kept = dev.read_disturb.retained(inferences * CYCLES * dev.read_time, dev.read_voltage)
    want = dev.g_min + (g0.double() - dev.g_min) * kept
    # 48 inputs on 64-row tiles: the simulated array is the 48 used rows, all of them read
    assert torch.allclose(cells(net).g.double(), want, rtol=1e-5, atol=0)
    # (3e9 reads x 9.8 ns / t_T = 8.07 us)^-0.0571
    assert float(kept) == pytest.approx((3e9 * 9.8e-9 / 8.0716e-6) ** -0.057078, rel=1e-3)
    assert report.layers.loc["0", "window_shift"] > 0.1
    # the stress accumulates: a second call continues the same law
    apply_read_disturb(net, inferences, torch.ones(2, 48))
    kept2 = dev.read_disturb.retained(2 * inferences * CYCLES * dev.read_time, dev.read_voltage)
    assert torch.allclose(cells(net).g.double(), dev.g_min + (g0.double() - dev.g_min) * kept2,
                          rtol=1e-5, atol=0)


def test_rram_disturb_grows_with_read_voltage_and_low_bias_is_harmless():
    lost = {}
    for v in (0.2, 0.3, 0.5):
        dev = dataclasses.replace(presets.get("rram-falcone2025"), read_voltage=v)
        state = dev.program(torch.full((64,), dev.g_max), generator=gen(0))
        after = dev.disturb(state, 1e8)
        lost[v] = float(1 - (after.g - dev.g_min).sum() / (state.g - dev.g_min).sum())
        assert torch.equal(after.latent["pulse_x"], dev._to_x(after.g)) or lost[v] == 0
    assert lost[0.2] == 0.0  # 1 s of stress, below t_T = 85 s
    assert 0.0 < lost[0.3] < lost[0.5]


def test_rram_device_disturb_composes_and_can_be_switched_off():
    dev = presets.get("rram-falcone2025")
    state = dev.program(torch.linspace(dev.g_min, dev.g_max, 32), generator=gen(1))
    once = dev.disturb(state, 2e6)
    twice = dev.disturb(dev.disturb(state, 1e6), 1e6)
    assert torch.allclose(once.g, twice.g, rtol=1e-6)
    assert float(once.g[0]) == pytest.approx(float(state.g[0]), rel=1e-6)  # ~g_min: kept
    off = dataclasses.replace(dev, read_disturb=None)
    assert off.disturb(state, 1e12) is state
    # a 5 kOhm access transistor in series: the filament of a cell at g sees V / (1 + g R_s)
    series = dataclasses.replace(dev, access_resistance=5e3)
    g = state.g.double()
    kept = dev.read_disturb.retained(2e6 * dev.read_time, dev.read_voltage / (1 + g * 5e3))
    want = dev.g_min + (g - dev.g_min) * kept
    assert torch.allclose(series.disturb(state, 2e6).g.double(), want, rtol=1e-6)
    assert bool((series.disturb(state, 2e6).g >= once.g).all())


# ------------------------------------------------------------------ no model, errors
@pytest.mark.parametrize("name", ["pcm-joshi2020", "fefet-deng2020"])
def test_technologies_without_a_model_are_untouched(name):
    dev = presets.get(name)
    net = analog_net(dev, mlp())
    before = cells(net)
    report = apply_read_disturb(net, 1e12, torch.ones(2, 48))
    assert cells(net) is before and report.changed == 0
    state = dev.program(torch.full((4,), dev.g_max), generator=gen(0))
    assert dev.disturb(state, 1e15, voltage=-1.0) is state


def test_bad_arguments_are_refused():
    dev = presets.get("pcm-joshi2020")
    state = dev.program(torch.full((4,), dev.g_max), generator=gen(0))
    for reads, v in ((-1.0, None), (float("nan"), None), (torch.ones(3), None), (1.0, math.inf)):
        with pytest.raises(ConfigError, match="disturb"):
            dev.disturb(state, reads, voltage=v)
    net = analog_net(IdealDevice(), mlp())
    for bad in (-1.0, float("inf"), True, "1e9"):
        with pytest.raises(ConfigError, match="inferences"):
            apply_read_disturb(net, bad, torch.ones(1, 48))
    with pytest.raises(ConfigError, match="generator"):
        apply_read_disturb(net, 1.0, torch.ones(1, 48), generator=1)
    captured = capture_inputs(net, torch.ones(1, 48))  # a capture can be reused
    assert apply_read_disturb(net, 1.0, captured).layers.loc["0", "reads_per_inference"] == 3


def test_mtj_disturb_current_sees_the_access_transistor_in_series():
    bare = dataclasses.replace(presets.get("mtj-neurosim"), access_resistance=0.0,
                               r_p_sigma=0.0)
    cell = dataclasses.replace(bare, access_resistance=5e3)
    v = 0.3  # across the cell; the P junction gets R_P / (R_P + R_s) of it
    share = bare.r_p / (bare.r_p + 5e3)
    assert cell.read_disturb_probability(1e9, voltage=-v) == pytest.approx(
        bare.read_disturb_probability(1e9, voltage=-v * share), rel=1e-9)
    assert cell.max_read_voltage(1e9) > bare.max_read_voltage(1e9)
    state = cell.program(torch.full((20000,), cell.g_max), generator=gen(0))
    reads = 1e9 * 3e3  # p ~ 0.5 at the P junction's share
    p = cell.read_disturb_probability(reads, voltage=-v)
    flipped = float((~cell.disturb(state, reads, voltage=-v, generator=gen(1))
                     .latent["parallel"]).double().mean())
    assert flipped == pytest.approx(p, abs=4 * math.sqrt(p * (1 - p) / 20000) + 1e-4)


def test_a_scaled_device_disturbs_as_the_model_it_wraps():
    from memxbar.devices.scaled import scaled

    inner = presets.get("rram-falcone2025")
    dev = scaled(inner, read_noise_scale=0.5)
    state = dev.program(torch.full((8,), inner.g_max), generator=gen(0))
    assert torch.equal(dev.disturb(state, 1e9).g, inner.disturb(state, 1e9).g)
