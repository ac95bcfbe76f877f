"""RRAM device (devices/rram.py) against the published fits it implements."""

import math

import numpy as np
import pytest
import torch

from memxbar.devices import presets
from memxbar.devices.base import STUCK_OFF, STUCK_ON
from memxbar.devices.rram import (
    RRAM,
    CMOStatistics,
    MiloIV,
    MiloStatistics,
    NeuRRAMStatistics,
    cmo_statistics,
)

uS = 1e-6
N = 20000  # cells for statistical checks
K = 5.0  # tolerance in standard errors


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def cells(value: float, n: int = N) -> torch.Tensor:
    return torch.full((n,), value, dtype=torch.float64)


def test_cmo_relaxation_after_one_hour_matches_fit():
    dev = RRAM()
    state = dev.program(cells(50 * uS), generator=gen(1))
    d = (dev.read_mean(state, 3600.0) - state.g) / uS
    # Falcone 2025 (aihwkit): mean -0.08900206 ln t, spread 0.04201137 ln t + 0.41183342 (uS)
    mu, sd = -0.08900206 * math.log(3600), 0.04201137 * math.log(3600) + 0.41183342
    assert abs(float(d.mean()) - mu) < K * sd / math.sqrt(N)
    assert abs(float(d.std()) - sd) < K * sd / math.sqrt(2 * N)
    assert torch.equal(dev.read_mean(state, 3600.0), dev.read_mean(state, 3600.0))
    # t = 0 is the programmed state; below the 1-s fit start the spread ramps linearly
    assert torch.equal(dev.read_mean(state, 0.0), state.g)
    assert torch.equal(dev.read(state, 0.0, generator=gen(2)), state.g)
    d_half = dev.read_mean(state, 0.5) - state.g
    torch.testing.assert_close(d_half, 0.5 * 0.41183342 * uS * state.latent["relax_z"])


def test_cmo_read_noise_matches_fit_in_microsiemens():
    dev = RRAM()
    state = dev.program(cells(50 * uS), generator=gen(3))
    t = 3600.0
    mean = dev.read_mean(state, t)
    want = 0.0277316483 * np.log10(mean.numpy() / uS) * np.sqrt(np.log((t + 1e-6) / 2e-6)) * uS
    np.testing.assert_allclose(dev.read_std(state, t).numpy(), want, rtol=1e-9)
    assert 0.2 * uS < float(dev.read_std(state, t).mean()) < 0.25 * uS  # ~0.22 uS at 50 uS, 1 h
    noise = dev.read(state, t, generator=gen(4)) - mean
    s = float(dev.read_std(state, t).mean())
    assert abs(float(noise.std()) - s) < K * s / math.sqrt(2 * N)
    assert float(dev.read_std(state, 0.0).abs().max()) == 0.0


@pytest.mark.parametrize("acceptance,a,b", [(0.02, 0.0112185391, 0.01129027418),
                                            (0.002, 0.00081107, 0.00106879)])
@pytest.mark.parametrize("level", [20.0, 50.0, 80.0])
def test_cmo_programming_sigma(acceptance, a, b, level):
    dev = RRAM(inference=cmo_statistics(acceptance))
    state = dev.program(cells(level * uS), generator=gen(5))
    sd = a + b * level  # uS
    err = (state.g / uS - level).std()
    assert abs(float(err) - sd) < K * sd / math.sqrt(2 * N)


def test_neurram_spread_at_one_day_and_no_drift():
    dev = presets.get("rram-wan2022")
    g_t = 20 * uS  # x = 0.5 of the 40-uS fit
    state = dev.program(cells(g_t), generator=gen(6))
    x = 0.5
    poly = {1.0: [0.348, 16.030, -43.853, 45.393, -16.815],
            86400.0: [0.701, 22.086, -50.773, 47.095, -16.458]}
    for t, c in poly.items():
        sd = sum(ci * x**i for i, ci in enumerate(c))  # uS (Wan 2022 via aihwkit)
        d = (dev.read_mean(state, t) - g_t) / uS
        assert abs(float(d.std()) - sd) < K * sd / math.sqrt(2 * N)
        assert abs(float(d.mean())) < K * sd / math.sqrt(N)  # no mean drift
    # log-time interpolation: at sqrt(1 s * 1 day) the spread is halfway
    stats = dev.inference
    g = torch.tensor([g_t], dtype=torch.float64)
    mid = stats.sigma(g, math.sqrt(86400.0))
    torch.testing.assert_close(mid, 0.5 * (stats.sigma(g, 1.0) + stats.sigma(g, 86400.0)))
    torch.testing.assert_close(stats.sigma(g, 30 * 86400.0), stats.sigma(g, 2 * 86400.0))
    torch.testing.assert_close(stats.sigma(g, 0.0), stats.sigma(g, 1.0))


@pytest.mark.parametrize("name,fraction", [("rram-gong2022-om", 0.1348),
                                           ("rram-gong2022-hfo2", 0.0977)])
def test_stuck_fractions_of_gong2022_arrays(name, fraction):
    dev = presets.get(name)
    state = dev.program(cells(50 * uS), generator=gen(7))
    stuck = state.latent["stuck"]
    p = fraction / 2
    for code in (STUCK_ON, STUCK_OFF):
        got = float((stuck == code).double().mean())
        assert abs(got - p) < K * math.sqrt(p * (1 - p) / N)
    on = stuck == STUCK_ON
    assert bool((dev.read(state, 3600.0, generator=gen(8))[on] == dev.g_max).all())
    pulsed = dev.pulse(state, torch.full((N,), -5), generator=gen(9))
    assert bool((pulsed.g[on] == dev.g_max).all())


def test_milo_iv_is_the_polynomial_and_ohmic_at_small_voltage():
    dev = presets.get("rram-milo2021")
    assert not dev.is_ohmic and RRAM().is_ohmic
    g = torch.tensor([62.5, 76.2, 93.9, 110.0], dtype=torch.float64) * uS
    # CrossSim RRAM_Milo coefficients, highest power first, in log10(G / S)
    nl2 = np.polyval([1.388e-4, 1.541e-3, 5.711e-3, 7.063e-3], np.log10(g.numpy()))
    nl3 = np.polyval([8.871e-5, 6.7919e-4, 1.2968e-3], np.log10(g.numpy()))
    for v in (0.4, -0.3):
        want = g.numpy() * v + nl2 * v**2 + nl3 * v**3
        got = dev.current(g, torch.tensor(v, dtype=torch.float64))
        np.testing.assert_allclose(got.numpy(), want, rtol=1e-12)
    small = dev.current(g, torch.tensor(1e-4))
    torch.testing.assert_close(small, g * 1e-4, rtol=1e-3, atol=0.0)
    # the fit assumes a linear I-V at 225 uS
    g_hi = torch.tensor([225 * uS], dtype=torch.float64)
    assert abs(float(dev.current(g_hi, torch.tensor(0.5)) / (g_hi * 0.5)) - 1) < 0.01
    assert float(dev.current(torch.zeros(1, dtype=torch.float64), torch.tensor(0.5))) == 0.0
    with pytest.raises(ValueError, match="0.5 V"):
        dev.current(g, torch.tensor(0.6))


def test_pulses_stay_in_window_and_saturate():
    dev = RRAM()
    state = dev.program(cells(dev.g_min, 500), generator=gen(10))
    up = dev.pulse(state, torch.full((500,), 2000), generator=gen(11))
    x = (up.g - dev.g_min) / (dev.g_max - dev.g_min)
    assert bool((up.g >= dev.g_min).all() and (up.g <= dev.g_max).all())
    assert float(x.mean()) > 0.75
    assert bool((up.latent["pulse_x"] <= up.latent["pulse_x_hi"]).all())
    down = dev.pulse(up, torch.full((500,), -2000), generator=gen(12))
    x = (down.g - dev.g_min) / (dev.g_max - dev.g_min)
    assert float(x.mean()) < 0.25
    same = dev.pulse(down, torch.zeros(500, dtype=torch.int64), generator=gen(13))
    assert torch.equal(same.g, down.g)


def test_neurram_pulsed_cells_relax_around_their_new_conductance():
    dev = presets.get("rram-wan2022")
    state = dev.program(cells(20 * uS, 100), generator=gen(14))
    n = torch.zeros(100, dtype=torch.int64)
    n[:50] = 10
    new = dev.pulse(state, n, generator=gen(15))
    torch.testing.assert_close(new.latent["g_target"][:50], new.g[:50])
    assert torch.equal(new.latent["g_target"][50:], state.latent["g_target"][50:])


def test_seed_reproducibility():
    dev = presets.get("rram-gong2018-es")
    targets = torch.linspace(dev.g_min, dev.g_max, 300, dtype=torch.float64)
    n = torch.randint(-30, 31, (300,), generator=gen(16))

    def run(seed):
        g = gen(seed)
        s = dev.program(targets, generator=g)
        return dev.read(dev.pulse(s, n, generator=g), 60.0, generator=g)

    assert torch.equal(run(1), run(1)) and not torch.equal(run(1), run(2))


@pytest.mark.parametrize("build", [
    lambda: RRAM(g_min=-1e-6), lambda: RRAM(g_min=1e-4, g_max=1e-5),
    lambda: CMOStatistics(prog_sigma_slope=-1.0), lambda: RRAM(inference="cmo"),
    lambda: RRAM(update=3), lambda: RRAM(iv="milo"),
    lambda: RRAM(inference=NeuRRAMStatistics()),  # 90 uS > 40-uS fit
    lambda: RRAM(inference=MiloStatistics()),  # 8 uS < 50-uS fit
    lambda: RRAM(g_min=50 * uS, g_max=225 * uS, iv=MiloIV(), read_voltage=0.8),
    lambda: RRAM(iv=MiloIV()), lambda: cmo_statistics(0.05),
    lambda: RRAM(stuck_on_fraction=0.7, stuck_off_fraction=0.4),
])
def test_bad_parameters_raise(build):
    with pytest.raises(ValueError):
        build()


def test_bad_inputs_raise():
    dev = RRAM()
    with pytest.raises(ValueError, match="outside the device range"):
        dev.program(torch.tensor([1e-3]))
    state = dev.program(torch.tensor([50 * uS]), generator=gen())
    with pytest.raises(ValueError, match="t = "):
        dev.read(state, -1.0)
    with pytest.raises(ValueError, match="integer"):
        dev.pulse(state, torch.tensor([1.0]))


@pytest.mark.parametrize("name", presets.names("rram"))
def test_presets_build_and_run(name):
    p = presets.preset(name)
    assert name.startswith("rram-") and name == name.lower() and p.source and p.summary
    dev = p.build()
    assert isinstance(dev, RRAM) and dev.technology == "rram"
    assert presets.describe(name)
    for dtype in (torch.float32, torch.float64):
        targets = torch.linspace(dev.g_min, dev.g_max, 64, dtype=dtype).reshape(8, 8)
        s = dev.program(targets, generator=gen(17))
        s = dev.pulse(s, torch.randint(-50, 51, (8, 8), generator=gen(18)), generator=gen(19))
        g = dev.read(s, 86400.0, generator=gen(20))
        assert g.dtype == dtype and g.shape == (8, 8) and bool(torch.isfinite(g).all())
        assert bool((g >= 0).all())
