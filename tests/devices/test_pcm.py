"""PCM model against the published formulas (Joshi 2020, HERMES 2023, Nandakumar 2020 preset).

Every reference formula here is written out from device-parameters.md §3, independently of
devices/pcm.py; statistical tolerances are 5 standard errors of the estimate.
"""

import math

import pytest
import torch

from memxbar.devices import presets
from memxbar.devices.pcm import (
    PCM,
    HermesStatistics,
    JoshiStatistics,
    PCMPulseResponse,
)

uS = 1e-6
N = 200_000
K = 5.0  # tolerance in standard errors
T_READ = 250e-9
TIMES = (1.0, 3600.0, 86400.0, 365.25 * 86400.0)  # 1 s, 1 h, 1 day, 1 year


def joshi_sigma_prog_us(x: float) -> float:
    return max(-1.1731 * x**2 + 1.9650 * x + 0.2635, 0.0)


def joshi_nu(x: float) -> tuple[float, float]:
    mu = min(max(-0.0155 * math.log(x) + 0.0244, 0.049), 0.1)
    sd = min(max(-0.0125 * math.log(x) - 0.0059, 0.008), 0.045)
    return mu, sd


def folded_normal(mu: float, sd: float) -> tuple[float, float]:
    """Mean and std of |N(mu, sd)|."""
    mean = (sd * math.sqrt(2 / math.pi) * math.exp(-mu**2 / (2 * sd**2))
            + mu * math.erf(mu / (sd * math.sqrt(2))))
    return mean, math.sqrt(mu**2 + sd**2 - mean**2)


def folded_normal_expect(f, mu: float, sd: float, m: int = 20001) -> float:
    """E[f(|X|)], X ~ N(mu, sd), by the trapezoid rule on +-12 sd."""
    v = torch.linspace(mu - 12 * sd, mu + 12 * sd, m, dtype=torch.float64)
    w = torch.exp(-0.5 * ((v - mu) / sd) ** 2) / (sd * math.sqrt(2 * math.pi))
    return torch.trapezoid(w * f(v.abs()), v).item()


def program(dev: PCM, levels: list[float], n: int, seed: int):
    g_t = torch.tensor(levels, dtype=torch.float64)[:, None].expand(-1, n) * dev.g_max
    return g_t, dev.program(g_t, generator=torch.Generator().manual_seed(seed))


# --------------------------------------------------------------------- Joshi statistics
def test_joshi_programming_sigma_and_drift_exponent_at_five_levels():
    dev = PCM()
    levels = [0.05, 0.1, 0.2, 0.5, 1.0]  # log branch, then clipped branches of mu/sigma_nu
    g_t, state = program(dev, levels, N, seed=0)
    err = (state.g - g_t) / uS
    for i, x in enumerate(levels):
        want = joshi_sigma_prog_us(x)
        got = err[i].std().item()
        assert abs(got / want - 1) < K / math.sqrt(2 * N), (x, got, want)
        assert abs(err[i].mean().item()) < K * want / math.sqrt(N)
        mean, sd = folded_normal(*joshi_nu(x))
        nu = state.latent["nu"][i]
        assert abs(nu.mean().item() - mean) < K * sd / math.sqrt(N), (x, nu.mean(), mean)
        assert abs(nu.std().item() / sd - 1) < 2 * K / math.sqrt(2 * N)
        assert (nu >= 0).all()


def test_programming_sigma_scales_with_g_max():
    x = torch.tensor([0.0, 0.3, 1.0], dtype=torch.float64)
    stats = JoshiStatistics()
    ref = stats.sigma_prog(x, 25 * uS)
    torch.testing.assert_close(ref / uS, torch.tensor([joshi_sigma_prog_us(v) for v in x],
                                                      dtype=torch.float64), rtol=2e-4, atol=0)
    torch.testing.assert_close(stats.sigma_prog(x, 50 * uS), 2 * ref)


def test_drift_mean_follows_power_law_at_1s_1h_1day_1year():
    dev = PCM()
    x, n = 0.1, 100_000
    g_t, state = program(dev, [x], n, seed=1)
    torch.testing.assert_close(dev.read_mean(state, 0.0), state.g, rtol=0, atol=0)
    mu, sd = joshi_nu(x)
    gen = torch.Generator().manual_seed(2)
    wants = []
    for t in TIMES:
        want = folded_normal_expect(lambda nu, t=t: ((t + 20.0) / 20.0) ** (-nu), mu, sd)
        for g in (dev.read_mean(state, t), dev.read(state, t, generator=gen)):
            ratio = g / g_t
            got = ratio.mean().item()
            assert abs(got - want) < K * ratio.std().item() / math.sqrt(n), (t, got, want)
        wants.append(want)
    assert wants == sorted(wants, reverse=True) and 0.3 < wants[-1] < 0.5
    # a cell with nu = 0.1 (the mu_nu ceiling) keeps ((1 y + 20 s) / 20 s)^-0.1 = 0.2400 of G
    fixed = state.replace(nu=torch.full_like(state.g, 0.1))
    torch.testing.assert_close(dev.read_mean(fixed, TIMES[-1]) / fixed.g,
                               torch.full_like(fixed.g, 0.23998), rtol=1e-4, atol=0)


def test_read_noise_grows_with_log_time_per_formula():
    dev = PCM()
    x, n = 0.5, 100_000
    _, state = program(dev, [x], n, seed=3)
    gen = torch.Generator().manual_seed(4)
    q_s = torch.clamp(0.0088 / (state.g / dev.g_max) ** 0.65, max=0.2)
    stds = []
    for t in (0.0, *TIMES):
        mean = dev.read_mean(state, t)
        z = (dev.read(state, t, generator=gen) - mean) / (mean * q_s)
        want = math.sqrt(math.log((t + 20.0 + T_READ) / (2 * T_READ)))
        assert abs(z.std().item() / want - 1) < K / math.sqrt(2 * n), (t, z.std(), want)
        torch.testing.assert_close(dev.read_std(state, t), mean * q_s * want, rtol=1e-9, atol=0)
        stds.append(want)
    assert stds == sorted(stds) and stds[0] == pytest.approx(4.184, rel=1e-3)  # finite at t = 0


def test_one_read_time_and_per_cell_times_give_the_same_mean_and_std():
    """A read time shared by all cells takes its drift and bandwidth factors as numbers (and
    Q_s as one exp2 of a log2); per-cell times take them as tensors: same values, float32,
    across Q_s's ceiling (x < 0.1 %) and its power law."""
    dev = PCM()
    x = torch.tensor([0.0, 1e-4, 1e-3, 0.01, 0.1, 0.5, 1.0])
    state = dev.program(x * dev.g_max, generator=torch.Generator().manual_seed(5))
    for t in (0.0, 3600.0, 365.25 * 86400.0):
        m1, s1 = dev.read_stats(state, t)
        m2, s2 = dev.read_stats(state, torch.full_like(state.g, t))
        torch.testing.assert_close(m1, m2, rtol=1e-6, atol=0)
        torch.testing.assert_close(s1, s2, rtol=1e-6, atol=0)
        xp = (state.g.double() / dev.g_max).clamp_min(1e-7)
        q_s = torch.clamp(0.0088 / xp**0.65, max=0.2)
        band = math.sqrt(math.log((t + 20.0 + T_READ) / (2 * T_READ)))
        torch.testing.assert_close(s1.double(), m1.double() * q_s * band, rtol=1e-5, atol=0)


def test_longer_read_integrates_less_noise():
    short, long = PCM(), PCM(read_time=1e-6)
    state = short.program(torch.full((4,), 10 * uS, dtype=torch.float64))
    ratio = long.read_std(state, 3600.0) / short.read_std(state, 3600.0)
    want = math.sqrt(math.log((3620 + 1e-6) / 2e-6) / math.log((3620 + T_READ) / (2 * T_READ)))
    torch.testing.assert_close(ratio, torch.full((4,), want, dtype=torch.float64))


# --------------------------------------------------------------------- HERMES
@pytest.mark.parametrize("name, g_max, t0, coeffs, levels", [
    ("pcm-legallo2023-1dev", 10.35, 200.0,
     (0.15781817, 2.32443916, -2.16310839, 0.68841818), (0.2, 0.8)),
    ("pcm-legallo2023-2dev", 20.7, 300.0,
     (0.16603222, 4.71806468, -8.48101252, 4.68961419), (0.2, 0.8)),
])
def test_hermes_presets_programming_sigma(name, g_max, t0, coeffs, levels):
    dev = presets.get(name)
    assert dev.g_max == pytest.approx(g_max * uS) and dev.statistics.t0 == t0
    assert dev.read_time == pytest.approx(512e-9)
    n = 100_000
    g_t, state = program(dev, list(levels), n, seed=5)
    for i, x in enumerate(levels):
        want = sum(c * x**k for k, c in enumerate(coeffs))
        got = ((state.g[i] - g_t[i]) / uS).std().item()
        assert abs(got / want - 1) < K / math.sqrt(2 * n), (name, x, got, want)


def test_hermes_drift_and_noise_branches():
    one, two = HermesStatistics(), HermesStatistics.two_devices()
    x = torch.tensor([0.05, 0.2, 0.5], dtype=torch.float64)
    ln = torch.log(x)
    mu_low = (-0.0387 * ln - 0.0182).clamp(0.072, 0.13)
    mu_high = -0.0436 * x**2 - 0.0126 * x + 0.0736
    mu = torch.where(x < 0.0945, mu_low, mu_high)
    torch.testing.assert_close(one.nu_mean(x), mu)
    torch.testing.assert_close(two.nu_mean(x), mu)
    sd1 = torch.where(x < 0.3039, (-0.0120 * ln - 0.0023).clamp(0.0124, 0.04),
                      -0.0165 * x**2 + 0.0116 * x + 0.0104)
    sd2 = torch.where(x < 0.3055, (-0.0117 * ln - 0.0057).clamp(0.0091, 0.04),
                      -0.0118 * x**2 + 0.0093 * x + 0.0073)
    torch.testing.assert_close(one.nu_std(x), sd1)
    torch.testing.assert_close(two.nu_std(x), sd2)
    q1 = torch.where(x < 0.1591, (-0.0078 * ln + 0.0038).clamp(0.0179, 0.04),
                     0.0664 * x**3 - 0.1352 * x**2 + 0.0768 * x + 0.0088)
    q2 = torch.where(x < 0.16, (-0.0117 * ln - 0.0069).clamp(0.015, 0.04),
                     0.0069 * x**3 - 0.0280 * x**2 + 0.0211 * x + 0.0123)
    torch.testing.assert_close(one.q_s(x), q1)
    torch.testing.assert_close(two.q_s(x), q2)


# --------------------------------------------------------------------- pulse response
def _reset_cells(dev: PCM, n: int, gen: torch.Generator):
    state = dev.program(torch.zeros(n, dtype=torch.float64), generator=gen)
    return dev.pulse(state, torch.full((n,), -1), generator=gen)


def test_noise_free_set_step_matches_expstep_formula():
    dev = PCM(pulse_response=PCMPulseResponse(dx_std=0.0, dx_min_dtod=0.0, x_max_dtod=0.0))
    x0 = torch.tensor([0.0, 0.1, 0.4, 0.8], dtype=torch.float64)
    state = dev.program(x0 * dev.g_max, generator=torch.Generator().manual_seed(6))
    state = state.replace(g=x0 * dev.g_max)
    x1 = dev.pulse(state, torch.ones(4, dtype=torch.int64)).g / dev.g_max
    # preset on w in [0, 2]: dw = 0.01 * (1 + 27.235 * exp(2.5 * (-w))), w = 2x
    want = (x0 + 0.01 * (1 + 27.235 * torch.exp(-2.5 * 2 * x0)) / 2).clamp(max=1.0)
    torch.testing.assert_close(x1, want)


def test_potentiation_is_monotone_and_saturates_and_reset_is_abrupt():
    dev, n = PCM(), 4000
    gen = torch.Generator().manual_seed(7)
    state = _reset_cells(dev, n, gen)
    counts = [1] * 41 + [59] + [10] * 10  # pulses per call: trajectory at 0..41, 100..200
    means = [(state.g / dev.g_max).mean().item()]
    for k in counts:
        state = dev.pulse(state, torch.full((n,), k), generator=gen)
        means.append((state.g / dev.g_max).mean().item())
    m = torch.tensor(means)
    se = 0.2 / math.sqrt(n)  # per-cell std of x stays below 0.2 (c2c noise, bounds)
    assert m[0] < 0.02
    assert (m[[0, 1, 2, 5, 10, 20, 40]].diff() > 0).all()
    assert m[1] - m[0] > 0.1 and (m[41] - m[40]).abs() < 0.01  # steps shrink: 0.14 -> ~0
    plateau = m[-11:]  # after 100, 110, ..., 200 pulses
    assert (plateau - plateau.mean()).abs().max() < 2 * K * se and 0.6 < plateau.mean() < 1.0
    assert ((state.g >= 0) & (state.g <= state.latent["x_sat"] * dev.g_max + 1e-18)).all()
    one = dev.pulse(state, torch.full((n,), -1), generator=gen)
    five = dev.pulse(state, torch.full((n,), -5), generator=gen)
    for after in (one, five):
        x = after.g / dev.g_max
        assert x.mean() < 0.02 and x.max() < 0.1 and (x >= 0).all()


def test_pulse_redraws_drift_only_for_pulsed_cells():
    dev = PCM()
    gen = torch.Generator().manual_seed(8)
    state = dev.program(torch.full((1000,), 5 * uS), generator=gen)
    n = torch.zeros(1000, dtype=torch.int64)
    n[:500] = 3
    after = dev.pulse(state, n, generator=gen)
    assert torch.equal(after.g[500:], state.g[500:])
    assert torch.equal(after.latent["nu"][500:], state.latent["nu"][500:])
    assert (after.latent["nu"][:500] != state.latent["nu"][:500]).all()
    assert (after.g[:500] != state.g[:500]).all()


# --------------------------------------------------------------------- contract
def _run(dev: PCM, g_t: torch.Tensor, seed: int):
    gen = torch.Generator().manual_seed(seed)
    s = dev.program(g_t, generator=gen)
    r = dev.read(s, 86400.0, generator=gen)
    p = dev.pulse(s, torch.arange(64).reshape(8, 8) % 5 - 2, generator=gen)
    return s, r, p


def test_seed_reproducibility_and_dtypes():
    dev = PCM()
    for dtype in (torch.float32, torch.float64):
        g_t = torch.linspace(0, 25 * uS, 64, dtype=dtype).reshape(8, 8)

        a, b, c = _run(dev, g_t, 9), _run(dev, g_t, 9), _run(dev, g_t, 10)
        assert torch.equal(a[0].g, b[0].g) and torch.equal(a[1], b[1])
        assert torch.equal(a[2].g, b[2].g)
        assert not torch.equal(a[0].g, c[0].g)
        for s in (a[0], a[2]):
            assert s.g.dtype == dtype and all(v.dtype == dtype for k, v in s.latent.items()
                                              if k != "cycles")  # int64 write count (endurance)
            assert torch.isfinite(dev.read(s, 0.0)).all() and (dev.read(s, 0.0) >= 0).all()


def test_bad_parameters_and_inputs_raise_value_error():
    with pytest.raises(ValueError, match=r"PCM\.g_max"):
        PCM(g_max=-1.0)
    with pytest.raises(ValueError, match=r"JoshiStatistics\.t0"):
        JoshiStatistics(t0=0.0)
    with pytest.raises(ValueError, match=r"nu_mean_clip"):
        JoshiStatistics(nu_mean_clip=(0.1, 0.049))
    with pytest.raises(ValueError, match=r"q_s_log"):
        HermesStatistics(q_s_log=(1.0,))
    with pytest.raises(ValueError, match=r"PCMPulseResponse\.dx_min"):
        PCMPulseResponse(dx_min=0.0)
    with pytest.raises(ValueError, match=r"reset_std"):
        PCMPulseResponse(reset_std=float("nan"))
    with pytest.raises(ValueError, match=r"statistics must be"):
        PCM(statistics="joshi")
    with pytest.raises(ValueError, match=r"t0 = 0.0001 s must exceed read_time"):
        PCM(read_time=1e-3, statistics=JoshiStatistics(t0=1e-4))
    with pytest.raises(ValueError, match=r"read_time = 30.0 is out of range; allowed: .*0.001\]"):
        PCM(read_time=30.0)  # 30 meaning ns
    dev = PCM()
    for bad in (float("nan"), float("inf")):
        with pytest.raises(ValueError, match="non-finite"):
            dev.program(torch.tensor([1 * uS, bad]))
    with pytest.raises(ValueError, match="outside the device range"):
        dev.program(torch.tensor([30 * uS]))
    state = dev.program(torch.tensor([1 * uS]))
    with pytest.raises(ValueError, match="time since programming"):
        dev.read(state, float("inf"))
    with pytest.raises(ValueError, match="lacks latents"):
        dev.pulse(state.__class__(state.g, {}), torch.tensor([1]))


def test_pulse_latents_are_drawn_at_the_first_pulse_and_kept():
    """Inference never needs the pulse-response latents: programming draws none; the first
    pulse draws them (reproducibly) and later pulses keep them."""
    dev = PCM()
    state = dev.program(torch.full((1000,), 5 * uS), generator=torch.Generator().manual_seed(0))
    assert set(state.latent) == {"nu"}
    one = dev.pulse(state, torch.ones(1000, dtype=torch.int64),
                    generator=torch.Generator().manual_seed(1))
    again = dev.pulse(state, torch.ones(1000, dtype=torch.int64),
                      generator=torch.Generator().manual_seed(1))
    assert {"dx_scale", "x_reset", "x_sat"} <= set(one.latent)
    torch.testing.assert_close(one.g, again.g, rtol=0, atol=0)
    two = dev.pulse(one, torch.ones(1000, dtype=torch.int64))
    assert two.latent["x_sat"] is one.latent["x_sat"]
    assert float(one.latent["dx_scale"].std()) > 0


def test_presets_registered():
    assert presets.names("pcm") == ["pcm-joshi2020", "pcm-legallo2023-1dev",
                                    "pcm-legallo2023-2dev"]
    assert presets.get("pcm-joshi2020") == PCM()
    assert PCM().g_max == pytest.approx(25 * uS) and PCM().statistics.t0 == 20.0
