"""Domain-wall MTJ: notch states, stochastic depinning with the stated Binomial statistics,
the device-to-device notch spread, cycle-to-cycle jitter and thermal-hopping retention loss.
Monte-Carlo tolerances are K standard errors."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch

from memxbar.devices import presets
from memxbar.devices.domain_wall import DomainWall

N = 20000
K = 5.0
F64 = torch.float64


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def deterministic(**kw) -> DomainWall:
    """No jitter, no notch spread, pulses above depinning: one notch per pulse."""
    return DomainWall(**{"c2c_sigma": 0.0, "depin_sigma": 0.0, **kw})


def test_domain_wall_state_count_and_range():
    dev = deterministic()
    assert dev.levels == 11 and dev.g_min == 64e-6 and dev.g_max == pytest.approx(160e-6)
    targets = torch.rand(5000, generator=gen(16)).double() * 96e-6 + 64e-6
    state = dev.program(targets, generator=gen(17))
    values = torch.unique(state.g)
    torch.testing.assert_close(values, torch.linspace(64e-6, 160e-6, 11, dtype=F64))
    assert (state.g - targets).abs().max() <= 96e-6 / 20 + 1e-12  # nearest state
    assert presets.get("dw-siddiqui2020").levels == 25


def test_domain_wall_pulses_move_one_state_and_stop_at_the_ends():
    dev = deterministic()
    assert float(dev.move_probability()) == 1.0  # drive 1.1 >= the depinning current
    step = 96e-6 / 10
    state = dev.program(torch.full((3,), 64e-6, dtype=F64))
    for k in range(1, 15):
        state = dev.pulse(state, torch.tensor([1, 0, 1]))
        assert state.g[0] == pytest.approx(64e-6 + min(k, 10) * step)
    assert state.g[1] == 64e-6 and state.latent["state"].tolist() == [10, 0, 10]
    state = dev.pulse(state, torch.tensor([-3, 2, -40]))
    assert state.latent["state"].tolist() == [7, 2, 0]
    torch.testing.assert_close(state.g, 64e-6 + torch.tensor([7, 2, 0]).double() * step)


@pytest.mark.parametrize(("drive", "pulses"), [(0.95, 1), (0.95, 4), (0.97, 3)])
def test_stochastic_depinning_moves_binomially(drive, pulses):
    dev = deterministic(pulse_drive=drive)
    p = -math.expm1(-8e-9 / 1e-9 * math.exp(-60 * (1 - drive)))  # Arrhenius, b = 1
    assert 0.05 < p < 0.95
    assert float(dev.move_probability()) == pytest.approx(p, rel=1e-12)
    state = dev.program(torch.full((N,), 64e-6 + 96e-6 * 0.3, dtype=F64), generator=gen(1))
    moved = dev.pulse(state, torch.tensor(pulses), generator=gen(2))
    k = (moved.latent["state"] - state.latent["state"]).double()  # Binomial(pulses, p)
    assert float(k.mean()) == pytest.approx(pulses * p, abs=K * math.sqrt(pulses * p * (1 - p)
                                                                            / N))
    assert float(k.var()) == pytest.approx(pulses * p * (1 - p), rel=K * math.sqrt(2 / N) + 0.02)
    back = dev.pulse(moved, torch.tensor(-pulses), generator=gen(3))
    assert bool((back.latent["state"] <= moved.latent["state"]).all())


def test_device_to_device_notch_spread_sets_each_cells_move_probability():
    dev = DomainWall(c2c_sigma=0.0, depin_sigma=0.05, pulse_drive=1.0)
    state = dev.program(torch.full((N,), 64e-6 + 96e-6 * 0.5, dtype=F64), generator=gen(4))
    i_dep = state.latent["i_dep"]
    assert float(i_dep.std()) == pytest.approx(0.05, rel=K / math.sqrt(2 * N))
    p = dev.move_probability(i_dep.double())
    assert bool((p[i_dep <= 1.0] == 1.0).all())  # weak notches: the pulse is above depinning
    strong = i_dep > 1.0
    expect = -torch.expm1(-8.0 * torch.exp(-60 * (1 - 1 / i_dep[strong].double())))
    torch.testing.assert_close(p[strong], expect)
    moved = dev.pulse(state, torch.tensor(1), generator=gen(5))
    k = (moved.latent["state"] - state.latent["state"]).double()
    assert float(k.mean()) == pytest.approx(float(p.mean()), abs=K * 0.5 / math.sqrt(N))
    assert 0.5 < float(p.mean()) < 0.95  # strong notches hold the wall back


def test_domain_wall_cycle_to_cycle_spread():
    dev = DomainWall(depin_sigma=0.0)  # dw-hsin2025 jitter: 2 % of the range per write
    span = dev.g_max - dev.g_min
    state = dev.program(torch.full((N,), 64e-6 + 5 * span / 10, dtype=F64), generator=gen(18))
    x = (state.g - dev.g_min) / span
    assert float(x.mean()) == pytest.approx(0.5, abs=K * 0.02 / math.sqrt(N))
    assert float(x.std()) == pytest.approx(0.02, abs=K * 0.02 / math.sqrt(2 * N))
    moved = dev.pulse(state, torch.tensor(1), generator=gen(19))
    x1 = (moved.g - dev.g_min) / span
    assert float(x1.mean()) == pytest.approx(0.6, abs=K * 0.02 / math.sqrt(N))
    assert float(x1.std()) == pytest.approx(0.02, abs=K * 0.02 / math.sqrt(2 * N))
    far = dev.pulse(moved, torch.tensor(20), generator=gen(20))
    assert float(far.g.max()) <= dev.g_max and float(far.g.min()) >= dev.g_min
    assert float(((far.g - dev.g_max) / span).mean()) == pytest.approx(
        -0.02 / math.sqrt(2 * math.pi), abs=K * 0.02 / math.sqrt(N))  # half-normal at the end


def test_retention_loss_by_thermal_hopping_and_its_temperature_speed_up():
    dev = deterministic(pin_delta=10.0)
    tau = 1e-9 * math.exp(10.0)
    assert dev.tau_hop == pytest.approx(tau)
    state = dev.program(torch.full((N,), 64e-6 + 96e-6 * 0.5, dtype=F64), generator=gen(6))
    step = 96e-6 / 10
    for t in (5e-6, 30e-6):
        g = dev.read_mean(state, t)
        hop = (g - state.g) / step
        expect = -math.expm1(-t / tau)
        assert float((hop != 0).double().mean()) == pytest.approx(expect, abs=K * math.sqrt(
            expect * (1 - expect) / N))
        assert set(torch.round(hop).unique().tolist()) <= {-1.0, 0.0, 1.0}
        assert float(torch.round(hop).mean()) == pytest.approx(0.0, abs=K * math.sqrt(expect / N))
    # warmer: Delta_pin(T) = 10 x 300 / 400, hops faster by exp(10 - 7.5)
    warm = dataclasses.replace(dev, temperature=400.0)
    assert warm.tau_hop == pytest.approx(tau * math.exp(7.5 - 10.0))
    frac = float((warm.read_mean(state, 5e-6) != state.g).double().mean())
    expect = -math.expm1(-5e-6 / warm.tau_hop)
    assert frac == pytest.approx(expect, abs=K * math.sqrt(expect * (1 - expect) / N))
    # walls at the ends do not hop off the track
    end = dev.program(torch.full((1000,), 64e-6, dtype=F64), generator=gen(7))
    assert float(dev.read_mean(end, 1.0).min()) >= 64e-6
    # the presets' barrier (60) holds for 10 years
    hsin = presets.get("dw-hsin2025")
    s = hsin.program(torch.full((1000,), 112e-6), generator=gen(8))
    assert torch.equal(hsin.read_mean(s, 3.15e8), s.g)


@pytest.mark.parametrize("kwargs", [{"n_states": 1}, {"c2c_sigma": -0.1}, {"g_min": 2e-4},
                                    {"pin_delta": 0.0}, {"depin_sigma": 0.6},
                                    {"pulse_drive": -1.0}])
def test_bad_parameters_raise(kwargs):
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        DomainWall(**kwargs)
