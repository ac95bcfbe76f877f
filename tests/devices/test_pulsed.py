"""Pulse-response families (devices/pulsed.py) against their published formulas (aihwkit)."""

import math

import pytest
import torch

from memxbar.devices.pulsed import ExpStep, LinearStep, PowStep, PulseResponse, SoftBounds

QUIET = dict(dw_min_dtod=0.0, up_down_dtod=0.0, x_min_dtod=0.0, x_max_dtod=0.0, dw_min_std=0.0)
N = 4000  # cells for statistical checks
K = 5.0  # tolerance in standard errors


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def one_pulse(model: PulseResponse, x: torch.Tensor, sign: int, seed: int = 0) -> torch.Tensor:
    lat = model.sample(x, gen(seed))
    return model.apply(x, torch.full(x.shape, sign), lat, gen(seed + 1)) - x


def test_softbounds_step_and_asymmetry_match_formula():
    m = SoftBounds(dw_min=0.01, up_down=0.2, x_ref=0.4, **QUIET)
    x = torch.linspace(0, 1, 11, dtype=torch.float64)
    # up_down > 0: up step = dw_min, down step = dw_min * (1 - up_down); zero at the bounds
    torch.testing.assert_close(one_pulse(m, x, +1), 0.01 * (1 - x) / 0.6)
    torch.testing.assert_close(one_pulse(m, x, -1), -0.008 * x / 0.4)
    m = SoftBounds(dw_min=0.01, up_down=-0.3, x_ref=0.4, **QUIET)
    xr = torch.full((1,), 0.4, dtype=torch.float64)
    assert one_pulse(m, xr, +1).item() == pytest.approx(0.007)
    assert one_pulse(m, xr, -1).item() == pytest.approx(-0.01)


def test_linear_step_matches_formula():
    m = LinearStep(dw_min=0.01, gamma_up=0.5, gamma_down=0.3, gamma_up_dtod=0.0,
                   gamma_down_dtod=0.0, x_ref=0.5, **QUIET)
    x = torch.linspace(0.1, 0.9, 9, dtype=torch.float64)
    torch.testing.assert_close(one_pulse(m, x, +1), 0.01 * (1 - 0.5 * (x - 0.5) / 0.5))
    torch.testing.assert_close(one_pulse(m, x, -1), -0.01 * (1 + 0.3 * (x - 0.5) / 0.5))
    const = LinearStep(dw_min=0.01, gamma_up_dtod=0.0, gamma_down_dtod=0.0, **QUIET)
    torch.testing.assert_close(one_pulse(const, x, +1), torch.full_like(x, 0.01))


def test_expstep_matches_aihwkit_formula_in_weight_units():
    # aihwkit ReRamESPresetDevice (Gong 2018), device-to-device and noise off
    p = dict(w_min=-1.0, w_max=1.0, dw_min=0.00135, up_down=0.259359, a=-0.5, b=-0.5,
             gamma_up=5.0, gamma_down=5.0, A_up=-1.18445, A_down=-0.081404)
    m = ExpStep.from_aihwkit(**p)
    w = torch.linspace(-0.9, 0.9, 7, dtype=torch.float64)
    x = (w + 1.0) / 2.0
    z = 2 * p["a"] * w / 2.0 + p["b"]  # aihwkit: z = 2 a w / (b_max - b_min) + b
    dw_up = p["dw_min"] * (1 - p["A_up"] * torch.exp(p["gamma_up"] * z)).clamp_min(0)
    dw_down = (p["dw_min"] * (1 - p["up_down"])
               * (1 - p["A_down"] * torch.exp(-p["gamma_down"] * z)).clamp_min(0))
    torch.testing.assert_close(one_pulse(m, x, +1), dw_up / 2.0)
    torch.testing.assert_close(one_pulse(m, x, -1), -dw_down / 2.0)
    # Gong 2018: potentiation strongest at low G, depression strongest at high G
    up, down = one_pulse(m, x, +1), -one_pulse(m, x, -1)
    assert up[0] > up[-1] and down[-1] > down[0]


def test_powstep_matches_formula():
    m = PowStep(dw_min=0.01, pow_gamma=2.0, pow_gamma_dtod=0.0, pow_up_down=0.25, **QUIET)
    x = torch.linspace(0.1, 0.9, 9, dtype=torch.float64)
    omega = 1 - x  # relative distance to the upper bound
    torch.testing.assert_close(one_pulse(m, x, +1), 0.01 * omega**2.5)
    torch.testing.assert_close(one_pulse(m, x, -1), -0.01 * (1 - omega) ** 1.5)


def test_softbounds_pulse_train_follows_closed_form_and_saturates():
    m = SoftBounds(dw_min=0.002, x_ref=0.5, **QUIET)
    x0 = torch.rand(200, generator=gen(3), dtype=torch.float64)
    lat = m.sample(x0, gen(4))
    x = m.apply(x0, torch.full((200,), 2000), lat, gen(5))
    # x_n = 1 - (1 - x0) (1 - dw/(1 - x_ref))^n
    torch.testing.assert_close(x, 1 - (1 - x0) * (1 - 0.002 / 0.5) ** 2000)
    assert bool((x <= 1).all()) and float((1 - x).max()) < 1e-3
    x = m.apply(x, torch.full((200,), -2000), lat, gen(6))
    assert bool((x >= 0).all()) and float(x.max()) < 1e-3


@pytest.mark.parametrize("model", [SoftBounds(), LinearStep(), ExpStep(), PowStep(dw_min=0.002),
                                   ExpStep.from_aihwkit(w_min=-1.0, w_max=1.0, dw_min=0.00135,
                                                        up_down=0.259359, a=-0.5, b=-0.5,
                                                        gamma_up=5.0, gamma_down=5.0,
                                                        A_up=-1.18445, A_down=-0.081404,
                                                        dw_min_dtod=0.2, up_down_dtod=0.05,
                                                        w_max_dtod=0.3, w_min_dtod=0.3,
                                                        dw_min_std=5.0)],
                         ids=["softbounds", "linear", "expstep", "powstep", "gong2018-es"])
def test_long_trains_respect_cell_bounds(model):
    # PowStep's dw_min is its step at the far bound (rate dw/width), hence the larger dw_min
    x0 = torch.rand(500, generator=gen(7), dtype=torch.float64)
    lat = model.sample(x0, gen(8))
    lo, hi = lat["pulse_x_lo"], lat["pulse_x_hi"]
    assert bool((lo >= 0).all() and (hi <= 1).all() and (lo <= hi).all())
    x = model.apply(x0, torch.full((500,), 2000), lat, gen(9))
    assert bool(((x >= lo) & (x <= hi)).all())
    assert float((hi - x).mean()) < 0.05  # saturated near each cell's own upper bound
    x = model.apply(x, torch.full((500,), -2000), lat, gen(10))
    assert bool(((x >= lo) & (x <= hi)).all())
    assert float((x - lo).mean()) < 0.05


def test_cells_saturate_at_their_own_drawn_bounds():
    m = LinearStep(dw_min=0.01, gamma_up_dtod=0.0, gamma_down_dtod=0.0, dw_min_dtod=0.0,
                   up_down_dtod=0.0, dw_min_std=0.0, x_min_dtod=0.1, x_max_dtod=0.1)
    x0 = torch.full((N,), 0.5, dtype=torch.float64)
    lat = m.sample(x0, gen(11))
    hi = lat["pulse_x_hi"]
    torch.testing.assert_close(m.apply(x0, torch.full((N,), 200), lat, gen(12)), hi)
    # x_hi = min(1 + 0.1 xi, 1): half the cells keep the nominal bound, E[1 - x_hi] = 0.1/sqrt(2pi)
    frac = float((hi < 1).double().mean())
    assert abs(frac - 0.5) < K * math.sqrt(0.25 / N)
    gap = 1 - hi
    assert abs(float(gap.mean()) - 0.1 / math.sqrt(2 * math.pi)) < K * 0.1 * 0.584 / math.sqrt(N)


@pytest.mark.parametrize("lognormal", [False, True])
def test_device_to_device_step_spread(lognormal):
    m = SoftBounds(dw_min=0.01, dw_min_dtod=0.2, dw_min_dtod_lognormal=lognormal,
                   up_down_dtod=0.05, x_min_dtod=0.0, x_max_dtod=0.0, dw_min_std=0.0)
    x = torch.full((N,), 0.5, dtype=torch.float64)
    lat = m.sample(x, gen(13))
    step = one_pulse(m, x, +1, seed=13)
    torch.testing.assert_close(step, lat["pulse_dw_up"])  # step at x_ref is the cell's dw_up
    gain = (lat["pulse_dw_up"] + lat["pulse_dw_down"]) / 0.02
    if lognormal:  # gain = exp(0.2 xi): log-gain mean 0, std 0.2
        g = torch.log(gain)
        assert abs(float(g.mean())) < K * 0.2 / math.sqrt(N)
        assert abs(float(g.std()) - 0.2) < K * 0.2 / math.sqrt(2 * N)
    else:
        assert abs(float(gain.mean()) - 1) < K * 0.2 / math.sqrt(N)
        assert abs(float(gain.std()) - 0.2) < K * 0.2 / math.sqrt(2 * N)
    # up - down = 2 r dw_min with r ~ N(0, up_down_dtod)
    diff = (lat["pulse_dw_up"] - lat["pulse_dw_down"]) / 0.01
    assert abs(float(diff.std()) - 0.1) < K * 0.1 / math.sqrt(2 * N)


def test_cycle_to_cycle_noise_models():
    x = torch.full((N,), 0.9, dtype=torch.float64)
    common = dict(dw_min=0.001, x_ref=0.5, dw_min_dtod=0.0, up_down_dtod=0.0, x_min_dtod=0.0,
                  x_max_dtod=0.0, dw_min_std=0.5)
    # multiplicative: step (1 + 0.5 xi); the mean step at x = 0.9 is dw * 0.1 / 0.5
    s = one_pulse(SoftBounds(**common), x, +1, seed=20)
    assert abs(float(s.std()) - 0.5 * 0.0002) < K * 1e-4 / math.sqrt(2 * N)
    assert abs(float(s.mean()) - 0.0002) < K * 1e-4 / math.sqrt(N)
    # additive (aihwkit mult_noise=False): std 0.5 * dw_min whatever the state
    s = one_pulse(SoftBounds(multiplicative_noise=False, **common), x, +1, seed=21)
    assert abs(float(s.std()) - 0.5 * 0.001) < K * 5e-4 / math.sqrt(2 * N)
    # ExpStep complex noise: std = dw_min_std (|step| + add + slope |x - x_ref|)
    m = ExpStep(A_up=0.0, dw_min_std_add=0.002, dw_min_std_slope=0.01, **common)
    s = one_pulse(m, x, +1, seed=22)
    want = 0.5 * (0.001 + 0.002 + 0.01 * 0.4)
    assert abs(float(s.std()) - want) < K * want / math.sqrt(2 * N)


def test_write_noise_is_apparent_only():
    m = SoftBounds(write_noise=0.05, **QUIET)
    x = torch.full((N,), 0.5, dtype=torch.float64)
    seen = m.observe(x, gen(30))
    assert abs(float((seen - x).std()) - 0.05) < K * 0.05 / math.sqrt(2 * N)
    assert torch.equal(m.observe(x, gen(30)), seen)


def test_mixed_signs_and_masking():
    m = LinearStep(dw_min=0.01, gamma_up_dtod=0.0, gamma_down_dtod=0.0, **QUIET)
    x = torch.full((4,), 0.5, dtype=torch.float64)
    n = torch.tensor([3, 0, -2, 1])
    out = m.apply(x, n, m.sample(x, gen()), gen())
    torch.testing.assert_close(out, 0.5 + 0.01 * n.double())


def test_from_aihwkit_conversion():
    # aihwkit ReRamSBPresetDevice: w in [-0.75, 1.25]
    m = SoftBounds.from_aihwkit(w_min=-0.75, w_max=1.25, dw_min=0.002, dw_min_dtod=0.3,
                                up_down_dtod=0.01, w_max_dtod=0.24, w_min_dtod=0.4,
                                dw_min_std=3.75, write_noise_std=56.0, mult_noise=False)
    assert m.dw_min == pytest.approx(0.001) and m.x_ref == pytest.approx(0.375)
    assert m.x_min_dtod == pytest.approx(0.15) and m.x_max_dtod == pytest.approx(0.15)
    assert m.write_noise == pytest.approx(0.056) and not m.multiplicative_noise
    # a one-sided range (aihwkit PCMPresetDevice, w in [0, 2]) is allowed for ExpStep
    e = ExpStep.from_aihwkit(w_min=0.0, w_max=2.0, dw_min=0.01, dw_min_std_add=0.042)
    assert e.x_ref == 0.0 and e.dw_min_std_add == pytest.approx(0.021)
    with pytest.raises(ValueError, match="w_min <= 0 <= w_max"):
        SoftBounds.from_aihwkit(w_min=0.1, w_max=1.0, dw_min=0.01)
    with pytest.raises(ValueError, match="unknown parameters"):
        SoftBounds.from_aihwkit(w_min=-1.0, w_max=1.0, dw_min=0.01, gamma_up=1.0)
    rows = {r["name"]: r["value"] for r in m.parameters()}
    assert rows["multiplicative_noise"] is False and rows["dw_min"] == pytest.approx(0.001)


@pytest.mark.parametrize("build", [
    lambda: SoftBounds(dw_min=0.0), lambda: SoftBounds(dw_min=1.5),
    lambda: SoftBounds(up_down=1.0), lambda: SoftBounds(x_ref=0.0),
    lambda: LinearStep(x_ref=1.0), lambda: SoftBounds(dw_min_dtod=-0.1),
    lambda: SoftBounds(multiplicative_noise="yes"), lambda: ExpStep(dw_min_std_add=-1.0),
    lambda: PowStep(pow_gamma=float("nan")), lambda: LinearStep(gamma_up=-0.1),
])
def test_bad_parameters_raise(build):
    with pytest.raises(ValueError):
        build()


def test_float_pulse_counts_refused():
    m = SoftBounds()
    x = torch.full((3,), 0.5)
    with pytest.raises(ValueError, match="integer"):
        m.apply(x, torch.ones(3), m.sample(x, gen()), gen())


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_seed_reproducible_and_dtypes(dtype):
    m = ExpStep(write_noise=0.01)
    x = torch.rand(300, generator=gen(40), dtype=dtype)
    n = torch.randint(-20, 21, (300,), generator=gen(41))

    def run(seed):
        lat = m.sample(x, gen(seed))
        return m.observe(m.apply(x, n, lat, gen(seed + 1)), gen(seed + 2))

    a, b, c = run(1), run(1), run(2)
    assert a.dtype == dtype and torch.isfinite(a).all()
    assert torch.equal(a, b) and not torch.equal(a, c)
