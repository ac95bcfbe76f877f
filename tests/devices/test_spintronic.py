"""Spintronic cells against their published laws: TMR arithmetic, the thermal and precessional
switching probability, Néel–Brown retention, compound-synapse levels and domain-wall states.
Monte-Carlo tolerances are K standard errors of the estimated fraction or std."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch

from memxbar.devices import presets
from memxbar.devices.spintronic import MTJ, CompoundMTJ, DomainWall

N = 20000  # cells per Monte-Carlo point
K = 5.0  # standard errors allowed


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def p_sw_formula(i: float, tw: float, delta: float, tau0: float, b: float, tau_d: float) -> float:
    """Taniguchi & Imamura (2012) thermal law (barrier clamped at I_c0) combined with the
    macrospin precessional law exp(-(pi^2 Delta/4) exp(-2(i-1) t/tau_D)) for i > 1."""
    p_th = 1.0 - math.exp(-(tw / tau0) * math.exp(-delta * max(1.0 - i, 0.0) ** b))
    c = math.pi ** 2 * delta / 4
    p_pr = math.exp(-c * math.exp(-2 * (i - 1) * tw / tau_d)) if i > 1 else 0.0
    return 1.0 - (1.0 - p_th) * (1.0 - p_pr)


def tol(p: float, n: int = N) -> float:
    return K * math.sqrt(max(p * (1 - p), 1e-4) / n)


def switched_fraction(dev: MTJ, n_pulses: int, start_parallel: bool, seed: int = 1) -> float:
    g0 = dev.g_max if start_parallel else dev.g_min
    state = dev.program(torch.full((N,), g0, dtype=torch.float64), generator=gen(seed))
    assert bool((state.latent["parallel"] == start_parallel).all())  # WER ~ 1e-16 here
    new = dev.pulse(state, torch.tensor(n_pulses), generator=gen(seed + 1))
    return float((new.latent["parallel"] != start_parallel).double().mean())


# ------------------------------------------------------------------------- MTJ: states, TMR
def test_tmr_arithmetic_and_two_state_programming():
    dev = MTJ(r_p=8e3, tmr=2.0)
    assert dev.g_max == pytest.approx(1 / 8e3) and dev.g_min == pytest.approx(1 / 24e3)
    assert dev.r_ap == pytest.approx(24e3) and dev.levels == 2
    assert (1 / dev.g_min - 1 / dev.g_max) * dev.g_max == pytest.approx(dev.tmr)
    mid = (dev.g_min + dev.g_max) / 2
    targets = torch.tensor([dev.g_min, 0.9 * mid, 1.1 * mid, dev.g_max], dtype=torch.float64)
    state = dev.program(targets, generator=gen())
    expected = torch.tensor([dev.g_min, dev.g_min, dev.g_max, dev.g_max], dtype=torch.float64)
    torch.testing.assert_close(state.g, expected)
    nvsim = presets.get("mtj-nvsim")
    assert 1 / nvsim.g_max == pytest.approx(3e3) and 1 / nvsim.g_min == pytest.approx(6e3)
    neurosim = presets.get("mtj-neurosim")
    assert 1 / neurosim.g_min == pytest.approx(24e3) and neurosim.write_voltage == 1.0


def test_device_to_device_spread_of_r_p():
    dev = MTJ(r_p_sigma=0.07)
    state = dev.program(torch.full((N,), dev.g_max, dtype=torch.float64), generator=gen(3))
    r_p = 1 / state.latent["g_p"].squeeze(-1)
    rel = r_p / dev.r_p - 1
    assert float(rel.mean()) == pytest.approx(0.0, abs=K * 0.07 / math.sqrt(N))
    assert float(rel.std()) == pytest.approx(0.07, abs=K * 0.07 / math.sqrt(2 * N))
    ap = dev.pulse(state, torch.tensor(-1), generator=gen(4))  # deterministic 80 uA pulses
    torch.testing.assert_close(state.g / ap.g, torch.full_like(ap.g, 1 + dev.tmr))


# ------------------------------------------------------------------------- switching probability
@pytest.mark.parametrize("width", [2e-9, 10e-9, 50e-9])
def test_switching_probability_vs_pulse_width(width):
    dev = MTJ(pulse_current=0.75 * 50e-6, pulse_width=width)
    p = p_sw_formula(0.75, width, 60.0, 1e-9, 2.0, dev.tau_d)
    assert float(dev.switching_probability(dev.pulse_current, width)) == pytest.approx(p, rel=1e-9)
    assert switched_fraction(dev, 1, start_parallel=False) == pytest.approx(p, abs=tol(p))


@pytest.mark.parametrize(("i", "b", "width"), [(0.7, 2.0, 10e-9), (0.85, 2.0, 10e-9),
                                               (0.9, 1.0, 10e-9), (2.0, 2.0, 1e-9),
                                               (1.5, 2.0, 2e-9)])
def test_switching_probability_vs_current(i, b, width):
    dev = MTJ(b_exponent=b, pulse_current=i * 50e-6, pulse_width=width)
    p = p_sw_formula(i, width, 60.0, 1e-9, b, dev.tau_d)
    assert 0.02 < p < 0.98  # the Monte-Carlo point is informative
    assert float(dev.switching_probability(i * 50e-6, width)) == pytest.approx(p, rel=1e-9)
    assert switched_fraction(dev, -1, start_parallel=True) == pytest.approx(p, abs=tol(p))


def test_switching_probability_monotone_and_tau_d():
    dev = MTJ()
    assert dev.tau_d == pytest.approx((1 + 0.01 ** 2) / (0.01 * 1.76085963e11 * 1.5))
    i = torch.linspace(0.0, 4.0, 401) * dev.i_c0
    for tw in (0.3e-9, 1e-9, 10e-9):
        p = dev.switching_probability(i, tw)
        assert bool((p.diff() >= -1e-15).all()) and bool(((p >= 0) & (p <= 1)).all())
    # the write error rate keeps its precision where 1 - P_sw underflows
    wer = float(dev.write_error_rate())
    assert 0 < wer < 1e-12
    assert wer == pytest.approx(math.exp(-10) * -math.expm1(
        -(math.pi ** 2 * 60 / 4) * math.exp(-2 * 0.6 * 10e-9 / dev.tau_d)), rel=1e-9)


def test_multiple_pulses_and_direction():
    dev = MTJ(pulse_current=0.75 * 50e-6)
    p = float(dev.switching_probability(dev.pulse_current, dev.pulse_width))
    p3 = 1 - (1 - p) ** 3
    assert switched_fraction(dev, 3, start_parallel=False) == pytest.approx(p3, abs=tol(p3))
    # pulses towards the state a junction is already in do nothing
    assert switched_fraction(dev, 5, start_parallel=True) == 0.0
    assert switched_fraction(dev, -5, start_parallel=False) == 0.0


def test_write_error_rate_of_programming():
    dev = MTJ(write_current=0.8 * 50e-6)
    wer = 1 - p_sw_formula(0.8, 10e-9, 60.0, 1e-9, 2.0, dev.tau_d)
    assert float(dev.write_error_rate()) == pytest.approx(wer, rel=1e-9)
    want_p = torch.arange(N) % 2 == 0
    targets = torch.where(want_p, dev.g_max, dev.g_min).double()
    state = dev.program(targets, generator=gen(5))
    wrong = float((state.latent["parallel"].squeeze(-1) != want_p).double().mean())
    torch.testing.assert_close(state.g, torch.where(want_p == state.latent["parallel"][:, 0],
                                                    targets, dev.g_max + dev.g_min - targets))
    assert wrong == pytest.approx(wer, abs=tol(wer))


# ------------------------------------------------------------------------- retention
def test_retention_flip_fraction_follows_neel_brown():
    dev = MTJ(delta=5.0)
    tau = 1e-9 * math.exp(5.0)
    assert dev.tau_ret == pytest.approx(tau)
    targets = torch.where(torch.arange(N) % 2 == 0, dev.g_max, dev.g_min).double()
    state = dev.program(targets, generator=gen(6))
    assert torch.equal(dev.read_mean(state, 0.0), state.g)
    for t in (30e-9, 150e-9, 600e-9):
        g = dev.read_mean(state, t)
        assert torch.equal(g, dev.read_mean(state, t))  # deterministic given the latents
        flipped = g != state.g
        frac = float(flipped.double().mean())
        expect = 1 - math.exp(-t / tau)
        assert frac == pytest.approx(expect, abs=tol(expect))
        # a flip goes to the opposite state
        assert bool((g[flipped & (state.g == dev.g_max)] == dev.g_min).all())
        assert bool((g[flipped & (state.g == dev.g_min)] == dev.g_max).all())
    # per-cell times broadcast; flips are monotone in t
    t_cells = torch.linspace(0, 600e-9, N, dtype=torch.float64)
    assert dev.read_mean(state, t_cells).shape == state.g.shape
    assert bool(((dev.read_mean(state, 30e-9) != state.g)
                 <= (dev.read_mean(state, 600e-9) != state.g)).all())


def test_default_retention_is_stable_and_float32_safe():
    dev = MTJ(delta=200.0)  # tau_ret beyond float32's range
    state = dev.program(torch.full((1000,), dev.g_max, dtype=torch.float32), generator=gen(7))
    g = dev.read(state, 3.15e8, generator=gen(8))
    assert g.dtype == torch.float32 and bool(torch.isfinite(g).all())
    assert torch.equal(presets.get("mtj-neurosim").read_mean(state, 3.15e8), state.g)


# ------------------------------------------------------------------------- read noise
def test_read_noise_is_tunnel_shot_noise():
    dev = MTJ()
    state = dev.program(torch.tensor([dev.g_min, dev.g_max], dtype=torch.float64))
    e, kb = 1.602176634e-19, 1.380649e-23
    v, g = dev.read_voltage, state.g
    expect = torch.sqrt(2 * e * g / math.tanh(e * v / (2 * kb * 300.0)) / (2 * 10e-9) / v)
    torch.testing.assert_close(dev.read_std(state), expect)
    assert float((dev.read_std(state) / g).max()) < 1e-3  # small compared with the state gap
    many = dev.program(torch.full((N,), dev.g_max, dtype=torch.float64))
    reads = dev.read(many, 0.0, generator=gen(9))
    sd = float(dev.read_std(many)[0])
    assert float(reads.std()) == pytest.approx(sd, rel=K / math.sqrt(2 * N))


# ------------------------------------------------------------------------- compound synapse
def test_compound_synapse_has_k_plus_1_levels():
    dev = CompoundMTJ(n_mtj=4)
    assert dev.levels == 5
    assert dev.g_max == pytest.approx(4 / 8e3) and dev.g_min == pytest.approx(4 / 24e3)
    targets = torch.linspace(dev.g_min, dev.g_max, 5, dtype=torch.float64)
    state = dev.program(targets, generator=gen(10))
    m = torch.arange(5, dtype=torch.float64)
    torch.testing.assert_close(state.g, m / 8e3 + (4 - m) / 24e3)
    assert state.latent["parallel"].shape == (5, 4)
    assert state.latent["parallel"].sum(-1).tolist() == [0, 1, 2, 3, 4]
    noisy = dev.program(torch.rand(N, generator=gen(11)).double() * (dev.g_max - dev.g_min)
                        + dev.g_min, generator=gen(12))
    assert len(torch.unique(noisy.g)) == 5


def test_compound_synapse_pulses_switch_each_junction():
    dev = presets.get("mtj-vincent2014-compound4")
    p = float(dev.switching_probability(dev.pulse_current, dev.pulse_width))
    assert p == pytest.approx(p_sw_formula(0.75, 10e-9, 60.0, 1e-9, 2.0, dev.tau_d), rel=1e-9)
    state = dev.program(torch.full((N,), dev.g_min, dtype=torch.float64), generator=gen(13))
    new = dev.pulse(state, torch.tensor(1), generator=gen(14))
    k_on = new.latent["parallel"].sum(-1).double()  # Binomial(4, p) per synapse
    assert float(k_on.mean()) == pytest.approx(4 * p, abs=K * math.sqrt(4 * p * (1 - p) / N))
    assert float(k_on.var()) == pytest.approx(4 * p * (1 - p), rel=0.1)
    down = dev.pulse(new, torch.tensor(-100), generator=gen(15))
    assert int(down.latent["parallel"].sum()) == 0  # each stays P with (1-p)^100 ~ 6e-11
    g_p = down.latent["g_p"]
    torch.testing.assert_close(down.g, (g_p / (1 + dev.tmr)).sum(-1))


# ------------------------------------------------------------------------- domain wall
def test_domain_wall_state_count_and_range():
    dev = DomainWall(c2c_sigma=0.0)
    assert dev.levels == 11 and dev.g_min == 64e-6 and dev.g_max == pytest.approx(160e-6)
    targets = torch.rand(5000, generator=gen(16)).double() * 96e-6 + 64e-6
    state = dev.program(targets, generator=gen(17))
    values = torch.unique(state.g)
    torch.testing.assert_close(values, torch.linspace(64e-6, 160e-6, 11, dtype=torch.float64))
    assert (state.g - targets).abs().max() <= 96e-6 / 20 + 1e-12  # nearest state
    assert presets.get("dw-siddiqui2020").levels == 25


def test_domain_wall_pulses_move_one_state_and_stop_at_the_ends():
    dev = DomainWall(c2c_sigma=0.0)
    step = 96e-6 / 10
    state = dev.program(torch.full((3,), 64e-6, dtype=torch.float64))
    for k in range(1, 15):
        state = dev.pulse(state, torch.tensor([1, 0, 1]))
        assert state.g[0] == pytest.approx(64e-6 + min(k, 10) * step)
    assert state.g[1] == 64e-6 and state.latent["state"].tolist() == [10, 0, 10]
    state = dev.pulse(state, torch.tensor([-3, 2, -40]))
    assert state.latent["state"].tolist() == [7, 2, 0]
    torch.testing.assert_close(state.g, 64e-6 + torch.tensor([7, 2, 0]).double() * step)


def test_domain_wall_cycle_to_cycle_spread():
    dev = DomainWall()  # dw-hsin2025: 2 % of the range per write
    span = dev.g_max - dev.g_min
    state = dev.program(torch.full((N,), 64e-6 + 5 * span / 10, dtype=torch.float64),
                        generator=gen(18))
    x = (state.g - dev.g_min) / span
    assert float(x.mean()) == pytest.approx(0.5, abs=K * 0.02 / math.sqrt(N))
    assert float(x.std()) == pytest.approx(0.02, abs=K * 0.02 / math.sqrt(2 * N))
    moved = dev.pulse(state, torch.tensor(1), generator=gen(19))
    x1 = (moved.g - dev.g_min) / span
    assert float(x1.mean()) == pytest.approx(0.6, abs=K * 0.02 / math.sqrt(N))
    assert float(x1.std()) == pytest.approx(0.02, abs=K * 0.02 / math.sqrt(2 * N))
    # the jitter is redrawn, not accumulated, and the wall stays on the track
    far = dev.pulse(moved, torch.tensor(20), generator=gen(20))
    assert float(far.g.max()) <= dev.g_max and float(far.g.min()) >= dev.g_min
    assert float(((far.g - dev.g_max) / span).mean()) == pytest.approx(
        -0.02 / math.sqrt(2 * math.pi), abs=K * 0.02 / math.sqrt(N))  # half-normal at the end


# ------------------------------------------------------------------------- contract
@pytest.mark.parametrize("name", ["mtj-neurosim", "mtj-nvsim", "mtj-vincent2014-compound4",
                                  "dw-hsin2025", "dw-siddiqui2020"])
def test_presets_and_seed_reproducibility(name):
    dev = presets.get(name)
    assert dev.cell_type == "1T1MTJ"
    assert dev.technology == ("domain-wall" if name.startswith("dw") else "mtj")
    assert presets.preset(name).technology == dev.technology
    assert dev.write_time > 0 and dev.write_energy > 0 and dev.endurance > 0
    targets = torch.rand(4, 5, generator=gen(21)) * (dev.g_max - dev.g_min) + dev.g_min

    def run(seed: int):
        s = dev.program(targets, generator=gen(seed))
        s = dev.pulse(s, torch.randint(-3, 4, (4, 5), generator=gen(seed)), generator=gen(seed))
        return s, dev.read(s, 10.0, generator=gen(seed))

    (s1, r1), (s2, r2) = run(1), run(1)
    assert torch.equal(s1.g, s2.g) and torch.equal(r1, r2)
    assert all(torch.equal(s1.latent[k], s2.latent[k]) for k in s1.latent)
    assert r1.dtype == torch.float32 and bool(torch.isfinite(r1).all())
    s64 = dev.program(targets.double(), generator=gen(1))
    assert dev.read(s64, 1.0).dtype == torch.float64


def test_stuck_cells_ignore_pulses():
    dev = MTJ(stuck_off_fraction=1.0)
    state = dev.program(torch.full((10,), dev.g_max), generator=gen(22))
    assert bool((dev.pulse(state, torch.tensor(1)).g == dev.g_min).all())


@pytest.mark.parametrize(("cls", "kwargs"), [
    (MTJ, {"tmr": 0.0}), (MTJ, {"r_p": -1.0}), (MTJ, {"b_exponent": 3.0}),
    (MTJ, {"delta": float("nan")}), (MTJ, {"r_p_sigma": 0.5}), (MTJ, {"write_current": 0.0}),
    (CompoundMTJ, {"n_mtj": 0}), (CompoundMTJ, {"n_mtj": 2.5}),
    (DomainWall, {"n_states": 1}), (DomainWall, {"c2c_sigma": -0.1}),
    (DomainWall, {"g_min": 2e-4}),
])
def test_bad_parameters_raise(cls, kwargs):
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        cls(**kwargs)


@pytest.mark.parametrize("dev", [MTJ(), CompoundMTJ(), DomainWall()], ids=["mtj", "cmtj", "dw"])
def test_bad_inputs_raise(dev):
    with pytest.raises(ValueError, match="non-finite"):
        dev.program(torch.tensor([dev.g_max, float("nan")]))
    with pytest.raises(ValueError, match="outside the device range"):
        dev.program(torch.tensor([2 * dev.g_max]))
    state = dev.program(torch.tensor([dev.g_max]))
    with pytest.raises(ValueError, match="integer"):
        dev.pulse(state, torch.tensor([1.0]))
    with pytest.raises(ValueError, match="t ="):
        dev.read(state, -1.0)
    if isinstance(dev, MTJ):
        with pytest.raises(ValueError, match="pulse width"):
            dev.switching_probability(dev.i_c0, 0.0)
        with pytest.raises(ValueError, match="pulse current"):
            dev.switching_probability(float("inf"), 1e-9)


def test_replace_recomputes_derived_range():
    dev = dataclasses.replace(CompoundMTJ(n_mtj=2), r_p=4e3)
    assert dev.g_max == pytest.approx(2 / 4e3) and dev.levels == 3
