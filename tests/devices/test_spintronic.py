"""MTJ cells against their published laws: TMR arithmetic and its bias dependence, the thermal
and precessional switching probability, read disturb over many reads, Néel–Brown retention and
its temperature dependence, device-to-device spreads, write energy and the compound synapse.
Monte-Carlo tolerances are K standard errors of the estimated fraction or std."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch
from helpers import torch_threads

from memxbar.crossbar.circuit import solve_nonlinear
from memxbar.crossbar.tile import Tile, TileConfig
from memxbar.devices import presets
from memxbar.devices.domain_wall import DomainWall
from memxbar.devices.mtj import MTJ, CompoundMTJ

N = 20000  # cells per Monte-Carlo point
K = 5.0  # standard errors allowed
F64 = torch.float64


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def mtj(**kw) -> MTJ:
    """An MTJ whose programming pulse (150 uA = 3 I_c0) has a write error rate ~ 5e-12."""
    return MTJ(**{"write_current": 150e-6, **kw})


def p_sw_formula(i: float, tw: float, delta: float, tau0: float, b: float, tau_d: float) -> float:
    """Thermal law (barrier clamped at I_c0) combined with the macrospin precessional law
    exp(-(pi^2 Delta/4) exp(-2(i-1) t/tau_D)) for i > 1."""
    p_th = 1.0 - math.exp(-(tw / tau0) * math.exp(-delta * max(1.0 - i, 0.0) ** b))
    c = math.pi ** 2 * delta / 4
    p_pr = math.exp(-c * math.exp(-2 * (i - 1) * tw / tau_d)) if i > 1 else 0.0
    return 1.0 - (1.0 - p_th) * (1.0 - p_pr)


def tol(p: float, n: int = N) -> float:
    return K * math.sqrt(max(p * (1 - p), 1e-4) / n)


def switched_fraction(dev: MTJ, n_pulses: int, start_parallel: bool, seed: int = 1) -> float:
    g0 = dev.g_max if start_parallel else dev.g_min
    state = dev.program(torch.full((N,), g0, dtype=F64), generator=gen(seed))
    assert bool((state.latent["parallel"] == start_parallel).all())  # WER ~ 5e-12 here
    new = dev.pulse(state, torch.tensor(n_pulses), generator=gen(seed + 1))
    return float((new.latent["parallel"] != start_parallel).double().mean())


# ------------------------------------------------------------------------- states, TMR(V)
def test_tmr_arithmetic_and_two_state_programming():
    dev = mtj(r_p=8e3, tmr=2.0)
    assert dev.g_max == pytest.approx(1 / 8e3) and dev.g_min == pytest.approx(1 / 24e3)
    assert dev.r_ap == pytest.approx(24e3) and dev.levels == 2
    assert (1 / dev.g_min - 1 / dev.g_max) * dev.g_max == pytest.approx(dev.tmr)
    mid = (dev.g_min + dev.g_max) / 2
    targets = torch.tensor([dev.g_min, 0.9 * mid, 1.1 * mid, dev.g_max], dtype=F64)
    state = dev.program(targets, generator=gen())
    expected = torch.tensor([dev.g_min, dev.g_min, dev.g_max, dev.g_max], dtype=F64)
    torch.testing.assert_close(state.g, expected)  # zero-bias conductances
    nvsim = presets.get("mtj-nvsim")
    assert 1 / nvsim.g_max == pytest.approx(3e3) and 1 / nvsim.g_min == pytest.approx(6e3)
    neurosim = presets.get("mtj-neurosim")
    assert 1 / neurosim.g_min == pytest.approx(24e3) and neurosim.write_voltage == 1.0


def test_tmr_bias_dependence_and_chord_reads():
    dev = mtj()  # V_h = 0.5 V (Zhang, Zhao et al. 2012)
    assert dev.tmr_at(0.5) == pytest.approx(1.0)  # TMR halves at V_h
    assert dev.tmr_at(-0.25) == pytest.approx(2.0 / (1 + 0.25))
    state = dev.program(torch.tensor([dev.g_min, dev.g_max], dtype=F64), generator=gen())
    # 'chord' reads: the AP cell conducts I(V_read)/V_read = 1/(R_P (1 + TMR(V_read)))
    ap_chord = 1 / (8e3 * (1 + 2.0 / (1 + (0.1 / 0.5) ** 2)))
    torch.testing.assert_close(dev.read_mean(state), torch.tensor([ap_chord, 1 / 8e3], dtype=F64))
    assert dev.is_ohmic
    flat = mtj(tmr_v_half=None)
    torch.testing.assert_close(flat.read_mean(state), state.g)
    # 'nonlinear': the zero-bias conductance is read through I(V); the chord at V_read agrees
    nl = mtj(read_iv="nonlinear")
    assert not nl.is_ohmic
    g0 = nl.read_mean(state)
    torch.testing.assert_close(g0, state.g)
    v = torch.tensor(0.1, dtype=F64)
    torch.testing.assert_close(nl.current(g0, v) / v, dev.read_mean(state))
    # negative reads: the opposite current (the law is even in V)
    torch.testing.assert_close(nl.current(g0, -v), -nl.current(g0, v))
    # AP current at 0.5 V follows TMR(0.5 V) = 1 (half of TMR0): R_AP = 2 R_P
    i_ap = nl.current(torch.tensor([dev.g_min], dtype=F64), torch.tensor(0.5, dtype=F64))
    assert float(i_ap) == pytest.approx(0.5 / 16e3, rel=1e-12)
    # slope = dI/dV, positive, against a central difference
    vv = torch.linspace(-0.6, 0.6, 13, dtype=F64)
    gg = torch.full_like(vv, dev.g_min)
    h = 1e-6
    fd = (nl.current(gg, vv + h) - nl.current(gg, vv - h)) / (2 * h)
    torch.testing.assert_close(nl.slope(gg, vv), fd, rtol=1e-6, atol=0.0)
    assert bool((nl.slope(gg, vv) > 0).all())


def test_nonlinear_mtj_tile_agrees_with_solve_nonlinear():
    dev = mtj(read_iv="nonlinear", r_p_sigma=0.0)
    cfg = TileConfig(rows=6, cols=8, device=dev, r_row=1.0, r_col=1.0, read_noise="off")
    tile = Tile(cfg, (1,))
    w = torch.rand(1, 6, cfg.weight_cols, generator=gen(1), dtype=F64) * 2 - 1
    tile.program(w, generator=gen(2))
    x = 0.9 * (torch.rand(1, 4, 6, generator=gen(3), dtype=F64) * 2 - 1)
    g = tile.state.g[..., 0, :, :]
    current = solve_nonlinear(g, x * dev.read_voltage, 1.0, 1.0, dev.current)
    expect = (current[..., 0::2] - current[..., 1::2]) / (dev.read_voltage
                                                          * (dev.g_max - dev.g_min))
    torch.testing.assert_close(tile.mvm(x), expect, rtol=1e-7, atol=1e-9)


def test_chord_reads_are_exact_for_full_scale_drives_in_the_tile():
    """'chord' (linear tile) and 'nonlinear' (I(V) per MVM) agree exactly when every row is
    driven at 0 or +-V_read; a half-scale drive differs by the TMR(V) curvature only."""
    out = {}
    for mode in ("chord", "nonlinear"):
        dev = mtj(read_iv=mode)
        cfg = TileConfig(rows=6, cols=8, device=dev, read_noise="off")
        tile = Tile(cfg, (1,))
        w = torch.rand(1, 6, cfg.weight_cols, generator=gen(1), dtype=F64) * 2 - 1
        tile.program(w, generator=gen(2))
        x = torch.randint(-1, 2, (1, 5, 6), generator=gen(3)).to(F64)
        out[mode] = (tile.mvm(x), tile.mvm(0.5 * x))
    torch.testing.assert_close(out["chord"][0], out["nonlinear"][0], rtol=1e-12, atol=1e-12)
    diff = (out["chord"][1] - out["nonlinear"][1]).abs().max()
    assert 0 < float(diff) < 0.02 * float(out["nonlinear"][1].abs().max())


def test_device_to_device_spread_of_r_p():
    dev = mtj(r_p_sigma=0.07, tmr_v_half=None)
    state = dev.program(torch.full((N,), dev.g_max, dtype=F64), generator=gen(3))
    r_p = 1 / state.latent["g_p"].squeeze(-1)
    rel = r_p / dev.r_p - 1
    assert float(rel.mean()) == pytest.approx(0.0, abs=K * 0.07 / math.sqrt(N))
    assert float(rel.std()) == pytest.approx(0.07, abs=K * 0.07 / math.sqrt(2 * N))
    ap = dev.pulse(state, torch.tensor(-1), generator=gen(4))  # P_sw(80 uA) = 1 - 1e-5
    switched = ~ap.latent["parallel"].squeeze(-1)
    torch.testing.assert_close(state.g[switched] / ap.g[switched],
                               torch.full_like(ap.g[switched], 1 + dev.tmr))


def test_device_to_device_spread_of_tmr_and_ic0_apart_from_cycle_to_cycle():
    dev = mtj(tmr_sigma=0.05, ic0_sigma=0.1, tmr_v_half=None, pulse_current=0.9 * 50e-6)
    state = dev.program(torch.full((N,), dev.g_min, dtype=F64), generator=gen(5))
    tmr, ic0 = state.latent["tmr"].squeeze(-1), state.latent["ic0"].squeeze(-1)
    assert float(tmr.std() / dev.tmr) == pytest.approx(0.05, rel=K / math.sqrt(2 * N))
    assert float(ic0.std()) == pytest.approx(0.1, rel=K / math.sqrt(2 * N))
    torch.testing.assert_close(state.g, state.latent["g_p"].squeeze(-1) / (1 + tmr))
    # cycle to cycle: each junction switches with its own P_sw(I / I_c0,j), drawn anew per pulse
    p_j = dev.switching_probability(dev.pulse_current / ic0, dev.pulse_width)
    p_each = [float(-torch.expm1(dev._log_stay(dev.pulse_current, 10e-9, c)))
              for c in ic0[:3].tolist()]
    torch.testing.assert_close(p_j[:3], torch.tensor(p_each, dtype=F64))
    hits = torch.zeros(N, dtype=F64)
    for seed in range(4):  # four independent cycles from the same devices
        new = dev.pulse(state, torch.tensor(1), generator=gen(100 + seed))
        hits += new.latent["parallel"].squeeze(-1).double()
    expect = 4 * float(p_j.mean())
    assert float(hits.mean()) == pytest.approx(expect, abs=K * math.sqrt(4 * 0.25 / N))
    # the spread of I_c0 spreads P_sw far more than a nominal device's Binomial noise
    assert float(p_j.std()) > 0.1


# ------------------------------------------------------------------------- switching probability
@pytest.mark.parametrize("width", [2e-9, 10e-9, 50e-9])
def test_switching_probability_vs_pulse_width(width):
    dev = mtj(pulse_current=0.94 * 50e-6, pulse_width=width)
    p = p_sw_formula(0.94, width, 60.0, 1e-9, 1.0, dev.tau_d)
    assert 0.02 < p < 0.98
    assert float(dev.switching_probability(dev.pulse_current, width)) == pytest.approx(p, rel=1e-9)
    assert switched_fraction(dev, 1, start_parallel=False) == pytest.approx(p, abs=tol(p))


@pytest.mark.parametrize(("i", "b", "width"), [(0.7, 2.0, 10e-9), (0.85, 2.0, 10e-9),
                                               (0.9, 1.0, 10e-9), (2.0, 2.0, 2e-9),
                                               (10.0, 1.0, 0.5e-9)])
def test_switching_probability_vs_current(i, b, width):
    dev = mtj(b_exponent=b, pulse_current=i * 50e-6, pulse_width=width)
    p = p_sw_formula(i, width, 60.0, 1e-9, b, dev.tau_d)
    assert 0.02 < p < 0.98  # the Monte-Carlo point is informative
    assert float(dev.switching_probability(i * 50e-6, width)) == pytest.approx(p, rel=1e-9)
    assert switched_fraction(dev, -1, start_parallel=True) == pytest.approx(p, abs=tol(p))


def test_switching_probability_monotone_and_tau_d():
    dev = MTJ()
    tau_d = (1 + 0.01 ** 2) / (0.01 * 1.76085963e11 * 0.3)
    assert dev.tau_d == pytest.approx(tau_d) and 1e-9 < dev.tau_d < 3e-9  # PMA: 1-3 ns
    i = torch.linspace(0.0, 4.0, 401) * dev.i_c0
    for tw in (0.3e-9, 1e-9, 10e-9):
        p = dev.switching_probability(i, tw)
        assert bool((p.diff() >= -1e-15).all()) and bool(((p >= 0) & (p <= 1)).all())
    # the write error rate of the 80 uA, 10 ns pulse, with its precision kept when tiny
    wer = float(dev.write_error_rate())
    assert wer == pytest.approx(math.exp(-10) * -math.expm1(
        -(math.pi ** 2 * 60 / 4) * math.exp(-2 * 0.6 * 10e-9 / tau_d)), rel=1e-9)
    assert 1e-6 < wer < 1e-4  # survey error rates: 9e-6 (ISSCC 2018 row)
    assert 0 < float(mtj().write_error_rate()) < 1e-10


def test_multiple_pulses_and_direction():
    dev = mtj(pulse_current=0.94 * 50e-6)
    p = float(dev.switching_probability(dev.pulse_current, dev.pulse_width))
    p3 = 1 - (1 - p) ** 3
    assert switched_fraction(dev, 3, start_parallel=False) == pytest.approx(p3, abs=tol(p3))
    # pulses towards the state a junction is already in do nothing
    assert switched_fraction(dev, 5, start_parallel=True) == 0.0
    assert switched_fraction(dev, -5, start_parallel=False) == 0.0


def test_write_error_rate_of_programming():
    dev = MTJ(write_current=0.95 * 50e-6)
    wer = 1 - p_sw_formula(0.95, 10e-9, 60.0, 1e-9, 1.0, dev.tau_d)
    assert float(dev.write_error_rate()) == pytest.approx(wer, rel=1e-9)
    want_p = torch.arange(N) % 2 == 0
    targets = torch.where(want_p, dev.g_max, dev.g_min).double()
    state = dev.program(targets, generator=gen(5))
    wrong = float((state.latent["parallel"].squeeze(-1) != want_p).double().mean())
    torch.testing.assert_close(state.g, torch.where(want_p == state.latent["parallel"][:, 0],
                                                    targets, dev.g_max + dev.g_min - targets))
    assert wrong == pytest.approx(wer, abs=tol(wer))


def test_write_energy_is_i_squared_r_t():
    dev = MTJ()  # 80 uA, 10 ns, R_P = 8 kOhm, TMR0 = 2, V_h = 0.5 V
    i, t = 80e-6, 10e-9
    v_ap = dev._ap_bias(i)  # V = I R_P (1 + TMR(V)), self-consistent
    assert v_ap == pytest.approx(i * 8e3 * (1 + 2.0 / (1 + (v_ap / 0.5) ** 2)), rel=1e-12)
    assert 0.64 < v_ap < 1.92  # between the P drop and the zero-bias AP drop
    assert dev.write_energy == pytest.approx(0.5 * i * i * t * (8e3 + v_ap / i), rel=1e-12)
    flat = MTJ(tmr_v_half=None)
    assert flat.write_energy == pytest.approx(0.5 * i * i * t * (8e3 + 24e3), rel=1e-12)
    assert CompoundMTJ(n_mtj=4).write_energy == pytest.approx(4 * dev.write_energy)
    assert dataclasses.replace(dev, write_current=40e-6).write_energy < dev.write_energy / 3


# ------------------------------------------------------------------------- read disturb
def test_reads_below_the_disturb_limit_leave_the_cell_unswitched():
    for name in ("mtj-neurosim", "mtj-nvsim", "mtj-vincent2014-compound4"):
        dev = presets.get(name)
        v_max = dev.max_read_voltage(reads=1e9, p=1e-6)
        assert dev.read_voltage < v_max, name
        assert dev.read_disturb_probability(1e9) < 1e-6
        assert dev.read_disturb_probability(1e9, voltage=-dev.read_voltage) < 1e-6
        assert dev.read_disturb_probability(1e9, voltage=v_max) < 1.01e-6
        state = dev.program(torch.full((N,), 0.5 * (dev.g_min + dev.g_max)), generator=gen(1))
        for v in (dev.read_voltage, -dev.read_voltage):
            after = dev.disturb(state, 1e9, voltage=v, generator=gen(2))
            assert torch.equal(after.latent["parallel"], state.latent["parallel"]), name
    # NeuroSim's own 0.5 V read across the bare junction (62.5 uA = 1.25 I_c0 through R_P) flips
    # P cells at once (the preset now has a 5 kOhm access transistor in series, lead 12:59, and
    # the disturb current sees it: 0.5 V then drives 38 uA, so the bare junction is tested here)
    bare = dataclasses.replace(presets.get("mtj-neurosim"), access_resistance=0.0)
    assert bare.read_disturb_probability(1, voltage=-0.5) > 0.99
    vincent = presets.get("mtj-vincent2014-compound4")
    assert vincent.pulse_current > 3 * vincent.read_voltage / vincent.r_p  # updates beat reads


@pytest.mark.parametrize(("i", "reads"), [(0.5, 1e12), (0.6, 1e9), (0.75, 1e5)])
def test_reads_above_the_limit_switch_at_the_modelled_rate(i, reads):
    dev = mtj(tmr_v_half=None)
    v = -i * dev.i_c0 * dev.r_p  # negative reads push P junctions towards AP
    tau = 1e-9 * math.exp(60 * (1 - i))  # Néel–Brown with b = 1
    p = -math.expm1(-reads * 10e-9 / tau)
    assert 0.02 < p < 0.98
    assert dev.read_disturb_probability(reads, voltage=v) == pytest.approx(p, rel=1e-9)
    state = dev.program(torch.full((N,), dev.g_max, dtype=F64), generator=gen(7))
    after = dev.disturb(state, reads, voltage=v, generator=gen(8))
    frac = float((~after.latent["parallel"]).double().mean())
    assert frac == pytest.approx(p, abs=tol(p))
    torch.testing.assert_close(after.g[~after.latent["parallel"].squeeze(-1)],
                               torch.full((int(frac * N + 0.5),), dev.g_min, dtype=F64))
    # the same read the other way round stabilises P: nothing flips
    same = dev.disturb(state, reads, voltage=-v, generator=gen(8))
    assert torch.equal(same.latent["parallel"], state.latent["parallel"])


def test_disturb_of_ap_cells_uses_the_biased_ap_current_and_per_cell_counts():
    dev = mtj()  # TMR(V): an AP junction at V carries V / (R_P (1 + TMR(V)))
    v = 0.45
    i = v / (8e3 * (1 + 2.0 / (1 + (v / 0.5) ** 2))) / 50e-6
    reads = torch.tensor([0.0, 1.0, 1e3])
    p = [-math.expm1(-r * 10e-9 / (1e-9 * math.exp(60 * (1 - i)))) for r in reads.tolist()]
    assert dev.read_disturb_probability(1e3, voltage=v) == pytest.approx(p[2], rel=1e-9)
    state = dev.program(torch.full((N, 3), dev.g_min, dtype=F64), generator=gen(9))
    after = dev.disturb(state, reads, voltage=v, generator=gen(10))
    frac = after.latent["parallel"].squeeze(-1).double().mean(0)
    assert float(frac[0]) == 0.0
    for k in (1, 2):
        assert float(frac[k]) == pytest.approx(p[k], abs=tol(p[k]))


def test_disturb_counts_of_1e12_reads_in_closed_form_and_reproducible():
    dev = presets.get("mtj-vincent2014-compound4")
    state = dev.program(torch.full((300, 400), dev.g_min), generator=gen(11))
    a = dev.disturb(state, 1e12, voltage=-0.3, generator=gen(12))
    b = dev.disturb(state, 1e12, voltage=-0.3, generator=gen(12))
    assert torch.equal(a.latent["parallel"], b.latent["parallel"]) and torch.equal(a.g, b.g)
    # more cells than one block: the same result for 1 and 2 torch threads
    big = dev.program(torch.full((257, 251), dev.g_max), generator=gen(13))
    flips = []
    for threads in (1, 2):
        with torch_threads(threads):
            flips.append(dev.disturb(big, 1e12, voltage=-0.3, generator=gen(14)).g)
    assert torch.equal(flips[0], flips[1]) and not torch.equal(flips[0], big.g)
    with pytest.raises(ValueError, match="reads"):
        dev.disturb(state, -1.0)
    with pytest.raises(ValueError, match="voltage"):
        dev.disturb(state, 1.0, voltage=float("nan"))


# ------------------------------------------------------------------------- retention, temperature
def test_retention_flip_fraction_follows_neel_brown():
    dev = mtj(delta=5.0, tmr_v_half=None)
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
        assert bool((g[flipped & (state.g == dev.g_max)] == dev.g_min).all())
        assert bool((g[flipped & (state.g == dev.g_min)] == dev.g_max).all())
    t_cells = torch.linspace(0, 600e-9, N, dtype=F64)
    assert dev.read_mean(state, t_cells).shape == state.g.shape
    assert bool(((dev.read_mean(state, 30e-9) != state.g)
                 <= (dev.read_mean(state, 600e-9) != state.g)).all())


def test_delta_of_temperature_and_the_retention_speed_up():
    dev = MTJ()
    hot = dataclasses.replace(dev, temperature=358.15)  # 85 C

    def m(t: float) -> float:
        return 1 - (t / 1000.0) ** 1.5
    ratio = (m(358.15) / m(300.0)) ** 2
    assert hot.delta_t == pytest.approx(60 * ratio * 300 / 358.15, rel=1e-12)
    assert 40 < hot.delta_t < 50.3  # E_b(T) falls with M_s(T)^2
    assert dataclasses.replace(hot, barrier_ms_exponent=0.0).delta_t == pytest.approx(50.26,
                                                                                       abs=0.01)
    assert hot.i_c0_t == pytest.approx(50e-6 * ratio)
    assert hot.tau_ret / dev.tau_ret == pytest.approx(math.exp(hot.delta_t - 60), rel=1e-9)
    # the same cells read by a warmer device flip faster, at the Néel–Brown rate of Delta(T)
    cool = mtj(delta=12.0, tmr_v_half=None, barrier_ms_exponent=0.0)
    warm = dataclasses.replace(cool, temperature=400.0)  # Delta 12 -> 9
    assert warm.delta_t == pytest.approx(9.0)
    state = cool.program(torch.full((N,), cool.g_max, dtype=F64), generator=gen(13))
    t = 20e-6
    for dev_t in (cool, warm):
        frac = float((dev_t.read_mean(state, t) != state.g).double().mean())
        expect = -math.expm1(-t / (1e-9 * math.exp(dev_t.delta_t)))
        assert frac == pytest.approx(expect, abs=tol(expect))


def test_default_retention_is_stable_and_float32_safe():
    dev = mtj(delta=200.0)  # tau_ret beyond float32's range
    state = dev.program(torch.full((1000,), dev.g_max, dtype=torch.float32), generator=gen(7))
    g = dev.read(state, 3.15e8, generator=gen(8))
    assert g.dtype == torch.float32 and bool(torch.isfinite(g).all())
    assert torch.equal(presets.get("mtj-neurosim").read_mean(state, 3.15e8), state.g)


# ------------------------------------------------------------------------- read noise
def test_read_noise_is_tunnel_shot_noise():
    dev = mtj()
    state = dev.program(torch.tensor([dev.g_min, dev.g_max], dtype=F64))
    e, kb = 1.602176634e-19, 1.380649e-23
    v, g = dev.read_voltage, dev.read_mean(state)
    expect = torch.sqrt(2 * e * g / math.tanh(e * v / (2 * kb * 300.0)) / (2 * 10e-9) / v)
    torch.testing.assert_close(dev.read_std(state), expect)
    assert float((dev.read_std(state) / g).max()) < 2e-3  # small compared with the state gap
    many = dev.program(torch.full((N,), dev.g_max, dtype=F64))
    reads = dev.read(many, 0.0, generator=gen(9))
    sd = float(dev.read_std(many)[0])
    assert float(reads.std()) == pytest.approx(sd, rel=K / math.sqrt(2 * N))


# ------------------------------------------------------------------------- compound synapse
def test_compound_synapse_has_k_plus_1_levels():
    dev = CompoundMTJ(n_mtj=4, write_current=150e-6, tmr_v_half=None)
    assert dev.levels == 5
    assert dev.g_max == pytest.approx(4 / 8e3) and dev.g_min == pytest.approx(4 / 24e3)
    targets = torch.linspace(dev.g_min, dev.g_max, 5, dtype=F64)
    state = dev.program(targets, generator=gen(10))
    m = torch.arange(5, dtype=F64)
    torch.testing.assert_close(state.g, m / 8e3 + (4 - m) / 24e3)
    assert state.latent["parallel"].shape == (5, 4)
    assert state.latent["parallel"].sum(-1).tolist() == [0, 1, 2, 3, 4]
    noisy = dev.program(torch.rand(N, generator=gen(11)).double() * (dev.g_max - dev.g_min)
                        + dev.g_min, generator=gen(12))
    assert len(torch.unique(noisy.g)) == 5
    # the nonlinear current of a mixed cell: P junctions ohmic, AP ones at TMR(V)
    nl = CompoundMTJ(n_mtj=4, read_iv="nonlinear")
    v = torch.tensor(0.3, dtype=F64)
    expect = v * (m / 8e3 + (4 - m) / (8e3 * (1 + 2.0 / (1 + (0.3 / 0.5) ** 2))))
    torch.testing.assert_close(nl.current(state.g, v), expect)


def test_compound_synapse_pulses_switch_each_junction():
    dev = presets.get("mtj-vincent2014-compound4")
    p = float(dev.switching_probability(dev.pulse_current, dev.pulse_width))
    assert p == pytest.approx(p_sw_formula(0.9375, 10e-9, 60.0, 1e-9, 1.0, dev.tau_d), rel=1e-9)
    assert 0.15 < p < 0.25
    state = dev.program(torch.full((N,), dev.g_min, dtype=F64), generator=gen(13))
    assert int(state.latent["parallel"].sum()) <= 5  # write error rate 1e-5 per junction
    state = state.replace(parallel=torch.zeros_like(state.latent["parallel"]))
    new = dev.pulse(state, torch.tensor(1), generator=gen(14))
    k_on = new.latent["parallel"].sum(-1).double()  # Binomial(4, p) per synapse
    assert float(k_on.mean()) == pytest.approx(4 * p, abs=K * math.sqrt(4 * p * (1 - p) / N))
    assert float(k_on.var()) == pytest.approx(4 * p * (1 - p), rel=0.1)
    down = dev.pulse(new, torch.tensor(-100), generator=gen(15))
    assert int(down.latent["parallel"].sum()) == 0  # each stays P with (1-p)^100 ~ 6e-11
    g_p = down.latent["g_p"]
    torch.testing.assert_close(down.g, (g_p / (1 + dev.tmr)).sum(-1))


# ------------------------------------------------------------------------- contract
@pytest.mark.parametrize("name", ["mtj-neurosim", "mtj-nvsim", "mtj-vincent2014-compound4",
                                  "dw-hsin2025", "dw-siddiqui2020"])
def test_presets_and_seed_reproducibility(name):
    dev = presets.get(name)
    assert dev.cell_type == "1T1MTJ"
    assert dev.technology == ("domain-wall" if name.startswith("dw") else "mtj")
    assert presets.preset(name).technology == dev.technology
    assert dev.write_time > 0 and dev.write_energy > 0 and dev.endurance > 0
    assert "choices:" in dev.describe()
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


def test_stuck_cells_ignore_pulses_and_reads():
    dev = MTJ(stuck_off_fraction=1.0, tmr_v_half=None)
    state = dev.program(torch.full((10,), dev.g_max), generator=gen(22))
    assert bool((dev.pulse(state, torch.tensor(1)).g == dev.g_min).all())
    assert bool((dev.disturb(state, 1e9, voltage=0.5).g == dev.g_min).all())


@pytest.mark.parametrize(("cls", "kwargs"), [
    (MTJ, {"tmr": 0.0}), (MTJ, {"r_p": -1.0}), (MTJ, {"b_exponent": 3.0}),
    (MTJ, {"delta": float("nan")}), (MTJ, {"r_p_sigma": 0.5}), (MTJ, {"write_current": 0.0}),
    (MTJ, {"tmr_v_half": 0.0}), (MTJ, {"read_iv": "exact"}), (MTJ, {"ic0_sigma": -0.1}),
    (MTJ, {"curie_temperature": 300.0}), (MTJ, {"temperature": 100.0}),
    (CompoundMTJ, {"n_mtj": 0}), (CompoundMTJ, {"n_mtj": 2.5}),
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
        with pytest.raises(ValueError, match="p ="):
            dev.max_read_voltage(1e9, p=1.0)


def test_replace_recomputes_derived_range_and_energy():
    dev = dataclasses.replace(CompoundMTJ(n_mtj=2), r_p=4e3)
    assert dev.g_max == pytest.approx(2 / 4e3) and dev.levels == 3
    assert dev.write_energy < CompoundMTJ(n_mtj=2).write_energy
