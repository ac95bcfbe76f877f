"""Temperature: Arrhenius acceleration of PCM drift and RRAM relaxation (retention)."""

import dataclasses
import math

import pytest
import torch

from memxbar.devices import presets
from memxbar.devices.base import K_B_EV, T_REF, arrhenius_factor
from memxbar.devices.pcm import PCM
from memxbar.devices.rram import RRAM

T85 = 358.15  # 85 C
TIMES = torch.tensor([0.0, 1.0, 60.0, 3600.0, 86400.0, 3.15e8], dtype=torch.float64)


def test_arrhenius_factor():
    want = math.exp(1.5 / 8.617333262e-5 * (1 / 300.0 - 1 / T85))
    assert arrhenius_factor(1.5, T85) == pytest.approx(want, rel=1e-12)
    assert 1e4 < want < 1e5  # 1.5 eV: 85 C runs ~2e4 times faster than 300 K
    assert arrhenius_factor(1.1, T_REF) == 1.0
    assert arrhenius_factor(0.0, T85) == 1.0
    assert arrhenius_factor(1.0, 250.0) < 1.0  # colder: slower
    assert K_B_EV == pytest.approx(1.380649e-23 / 1.602176634e-19, rel=1e-9)


def _programmed(dev, seed=0):
    g = torch.linspace(dev.g_min, dev.g_max, 64, dtype=torch.float64)
    return dev.program(g, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("name", ["pcm-joshi2020", "pcm-legallo2023-1dev"])
def test_pcm_drift_at_85C_is_300K_drift_at_arrhenius_scaled_time(name):
    cold = presets.get(name)
    hot = dataclasses.replace(cold, temperature=T85)
    a = hot.drift_acceleration
    assert a == pytest.approx(arrhenius_factor(cold.drift_activation_energy, T85), rel=1e-12)
    state = _programmed(cold)
    for t in TIMES.tolist():
        torch.testing.assert_close(hot.read_mean(state, t), cold.read_mean(state, a * t),
                                   rtol=1e-12, atol=0)
    # retention loss (drop of the mean conductance) after 1 h: faster when hot
    g0 = state.g.sum()
    loss_cold = g0 - cold.read_mean(state, 3600.0).sum()
    loss_hot = g0 - hot.read_mean(state, 3600.0).sum()
    assert float(loss_hot) > 1.5 * float(loss_cold) > 0


def test_pcm_time_to_lose_a_fraction_shrinks_by_the_arrhenius_factor():
    """G(t) = g ((a t + t0) / t0)^-nu: the time to drift to G = g / 2 is (t0/a)(2^(1/nu) - 1)."""
    cold, hot = PCM(), PCM(temperature=T85)
    nu = 0.05
    state = _programmed(cold)
    state = state.replace(nu=torch.full_like(state.g, nu))
    t_half_cold = cold.statistics.t0 * (2 ** (1 / nu) - 1)
    t_half_hot = t_half_cold / hot.drift_acceleration
    torch.testing.assert_close(hot.read_mean(state, t_half_hot), state.g / 2, rtol=1e-9, atol=0)
    torch.testing.assert_close(cold.read_mean(state, t_half_cold), state.g / 2, rtol=1e-9,
                               atol=0)


def test_read_noise_band_stays_on_the_physical_clock():
    cold, hot = PCM(), PCM(temperature=T85)
    assert hot.read_noise_split(86400.0, 1e-6) == cold.read_noise_split(86400.0, 1e-6)


@pytest.mark.parametrize("name", ["rram-falcone2025", "rram-wan2022"])
def test_rram_relaxation_at_85C_is_300K_relaxation_at_arrhenius_scaled_time(name):
    cold = presets.get(name)
    hot = dataclasses.replace(cold, temperature=T85)
    a = hot.relaxation_acceleration
    assert a == pytest.approx(arrhenius_factor(cold.relaxation_activation_energy, T85))
    assert 1e2 < a < 1e5
    state = _programmed(cold)
    for t in TIMES.tolist():
        torch.testing.assert_close(hot.read_mean(state, t), cold.read_mean(state, a * t),
                                   rtol=1e-12, atol=1e-18)


def test_rram_cmo_mean_shift_grows_by_ln_of_the_factor():
    """CMO relaxation: mean shift -0.089 uS * ln(t / 1 s); at 85 C it is larger by
    -0.089 uS * ln(a) at every t >= 1 s."""
    cold, hot = RRAM(), RRAM(temperature=T85)
    stats = cold.inference
    t = torch.tensor([10.0, 1e4, 1e7], dtype=torch.float64)
    a = hot.relaxation_acceleration
    extra = stats.relax_shift(t * a) - stats.relax_shift(t)
    torch.testing.assert_close(extra, torch.full_like(t, stats.relax_mean_per_ln_t * math.log(a)))


def test_default_temperature_keeps_the_300K_numbers():
    for dev in (PCM(), RRAM()):
        state = _programmed(dev)
        hot = dataclasses.replace(dev, temperature=300.0)
        torch.testing.assert_close(hot.read_mean(state, 86400.0), dev.read_mean(state, 86400.0),
                                   rtol=0, atol=0)
    assert PCM().drift_acceleration == 1.0 and RRAM().relaxation_acceleration == 1.0
