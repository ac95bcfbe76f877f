"""Endurance wear-out as cell state (devices/endurance.py): write counting by pulse() and
program-and-verify, window closure against the law, lognormal failures (conditional sampling,
no draws far from the endurance), per-technology modes, worn-out reports in verify and online
training."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import ClassVar

import pytest
import torch
from torch import Tensor, nn

from memxbar.crossbar.tile import TileConfig
from memxbar.devices import IdealDevice, endurance, presets
from memxbar.devices.base import STUCK_NONE, STUCK_OFF, STUCK_ON, CellState, Device, param
from memxbar.devices.endurance import WEAR_LAWS, WearLaw
from memxbar.mapping import MappingConfig, program, to_analog
from memxbar.training.online import AnalogSGD
from memxbar.training.verify import program_verify

F64 = torch.float64


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@dataclass(frozen=True, kw_only=True)
class Box(Device):
    """Test cell of a given technology: exact programming, steps of ``step`` clamped to the
    range, no noise, so any change of what is read comes from wear."""

    technology: ClassVar[str] = "rram"
    g_min: float = param(1e-6, unit="S", ge=0.0)
    g_max: float = param(1e-5, unit="S", gt=0.0)
    step: float = param(1e-7, unit="S", gt=0.0)

    def _program(self, g_target: Tensor, generator: torch.Generator | None) -> CellState:
        return CellState(g_target.clone())

    def _pulse(self, state: CellState, n: Tensor, generator: torch.Generator | None) -> CellState:
        return state.replace(g=(state.g + n.to(state.g.dtype) * self.step).clamp(
            self.g_min, self.g_max))


@dataclass(frozen=True, kw_only=True)
class BoxPCM(Box):
    technology: ClassVar[str] = "pcm"


@dataclass(frozen=True, kw_only=True)
class WearingIdeal(IdealDevice):
    wear: ClassVar[WearLaw] = WEAR_LAWS["rram"]


def extremes(dev: Device, m: int) -> CellState:
    """m cells at g_max then m at g_min."""
    return dev.program(torch.cat([torch.full((m,), dev.g_max, dtype=F64),
                                  torch.full((m,), dev.g_min, dtype=F64)]))


def push(dev: Device, state: CellState, cycles: int, m: int, seed: int = 0) -> CellState:
    """``cycles`` pulses that keep the extremes where they are (up at g_max, down at g_min)."""
    n = torch.cat([torch.full((m,), cycles), torch.full((m,), -cycles)])
    return dev.pulse(state, n, generator=gen(seed))


def test_pulses_and_verify_count_writes() -> None:
    dev = Box(endurance=1e9)
    st = dev.program(torch.full((6,), 5e-6, dtype=F64))
    assert "cycles" not in st.latent and torch.equal(endurance.cycles(st), torch.ones(6).long())
    st = dev.pulse(st, torch.tensor([0, 1, -2, 3, 0, -40]))
    assert torch.equal(st.latent["cycles"], torch.tensor([1, 2, 3, 4, 1, 41]))
    st = dev.pulse(st, torch.tensor([5, 0, 0, 0, 0, 0]))
    assert int(st.latent["cycles"][0]) == 6
    # program-and-verify: each (re-)write is one cycle, a burst |n|; cycles == pulses per cell
    gauss = dataclasses.replace(presets.get("rram-falcone2025"), endurance=1e9)
    target = torch.full((300,), 0.5 * (gauss.g_min + gauss.g_max), dtype=F64)
    for method in ("program", "pulses"):
        r = program_verify(gauss, target, tolerance=0.0, method=method, max_pulses=7,
                           max_iterations=7, generator=gen(1))
        assert torch.equal(r.state.latent["cycles"], r.pulses), method
        assert r.worn_out == 0


@pytest.mark.parametrize("point", [0.0, 0.5, 1.0])
def test_window_closes_after_the_stated_cycles_against_the_law(point: float) -> None:
    """w(c) = 1 / (1 + (c/N_e)^s): half the window at N_e, 10 % at 9 N_e (s = 1); reads of
    the extremes sit on lo(c), hi(c) of the law; failed cells (lognormal) are left out."""
    # s = 1 fixed here: this checks the law's formula (the RRAM law's own slope is 0.5, fitted
    # to Lammie et al. 2021 Fig. 2A, tests/devices/test_physics_published.py)
    law = dataclasses.replace(WEAR_LAWS["rram"], window_slope=1.0, window_point=point,
                              fail_ratio=1e6)

    @dataclass(frozen=True, kw_only=True)
    class Cell(Box):
        wear: ClassVar[WearLaw] = law

    dev, m = Cell(endurance=200.0), 50
    st = extremes(dev, m)
    r = dev.g_max - dev.g_min
    done = 1
    for c in (20, 200, 1800):
        st = push(dev, st, c - done, m)
        done = c
        w = 1 / (1 + c / 200.0)
        g = dev.read_mean(st)
        hi, lo = g[:m], g[m:]
        torch.testing.assert_close(hi - lo, torch.full_like(hi, w * r), rtol=1e-9, atol=0)
        torch.testing.assert_close(lo, torch.full_like(lo, dev.g_min + (1 - w) * point * r))
        exp_lo, exp_hi = endurance.window(dev, float(c))
        assert float(hi[0]) == pytest.approx(float(exp_hi)) and float(lo[0]) == pytest.approx(
            float(exp_lo))
    assert float(endurance.window_fraction(dev, 200.0)) == pytest.approx(0.5)
    assert float(endurance.window_fraction(dev, 1800.0)) == pytest.approx(0.1)
    assert torch.equal(st.g[:m], torch.full((m,), dev.g_max, dtype=F64))  # the state is kept
    assert bool(endurance.worn_out(dev, st).all())                         # window < half
    assert int(endurance.worn_out(dev, push(dev, extremes(dev, 1), 150, 1)).sum()) == 0


def test_failures_follow_the_lognormal_law_and_accumulate_across_calls() -> None:
    dev, m = Box(endurance=100.0), 4000     # rram: median failure at N_e, sigma_ln 1, stuck ON
    law = endurance.wear_law(dev)
    assert law is not None and law.fail_state == STUCK_ON
    once = dev.pulse(dev.program(torch.full((m,), 5e-6, dtype=F64)), torch.full((m,), 149),
                     generator=gen(3))
    split = dev.program(torch.full((m,), 5e-6, dtype=F64))
    for k in range(5):                      # 1 + 5 x 29.8: the same 150 cycles in 5 calls
        split = dev.pulse(split, torch.full((m,), 30 if k < 4 else 29), generator=gen(10 + k))
    p = float(endurance.failure_probability(dev, 150.0))
    assert p == pytest.approx(0.5 * math.erfc(-math.log(1.5) / math.sqrt(2)), rel=1e-9)
    for st in (once, split):
        failed = st.latent["worn"]
        assert abs(float(failed.double().mean()) - p) < 5 * math.sqrt(p * (1 - p) / m)
        assert torch.equal(failed, st.latent["stuck"] == STUCK_ON)
        assert bool((dev.read_mean(st)[failed] == dev.g_max).all())
        assert bool(endurance.worn_out(dev, st)[failed].all())
    # failed cells stay failed and stuck; further pulses cannot move them
    more = dev.pulse(once, torch.full((m,), -5), generator=gen(4))
    assert bool(more.latent["worn"][once.latent["worn"]].all())
    assert bool((more.g[once.latent["worn"]] == dev.g_max).all())


def test_no_random_draws_far_from_the_endurance() -> None:
    dev = Box(endurance=1e6)
    st = dev.program(torch.full((1000,), 5e-6, dtype=F64))
    g = gen(7)
    before = g.get_state()
    new = endurance.add_cycles(dev, st, torch.full((1000,), 50), g)  # P_fail(51) ~ 1e-23
    assert torch.equal(g.get_state(), before)
    assert "stuck" not in new.latent and int(new.latent["cycles"][0]) == 51
    assert float(endurance.failure_probability(dev, 51.0)) < endurance.FAIL_EPS


def test_technology_modes() -> None:
    """PCM and MTJ keep their window until they fail (stuck-SET / shorted barrier, g_max);
    FeFET closes symmetrically and fails later (10 N_e); ideal cells do not wear."""
    pcm, m = BoxPCM(endurance=100.0), 2000
    st = push(pcm, extremes(pcm, m), 99, m, seed=5)
    alive = ~st.latent["worn"]
    g = pcm.read_mean(st)
    assert bool((g[:m][alive[:m]] == pcm.g_max).all()) and bool(
        (g[m:][alive[m:]] == pcm.g_min).all())                   # no closure before failure
    p = float(endurance.failure_probability(pcm, 100.0))
    assert abs(float(st.latent["worn"].double().mean()) - p) < 5 * math.sqrt(p * (1 - p) / m / 2)
    assert bool((g[st.latent["worn"]] == pcm.g_max).all())
    for name, state in (("pcm-joshi2020", STUCK_ON), ("fefet-deng2020", STUCK_OFF)):
        law = endurance.wear_law(presets.get(name))
        assert law is not None and law.fail_state == state and law.source
    fefet = endurance.wear_law(presets.get("fefet-deng2020"))
    assert fefet is not None and fefet.window_point == 0.5 and fefet.fail_ratio == 10.0
    assert endurance.wear_law(IdealDevice()) is None
    ideal = IdealDevice(endurance=1.0)
    st = ideal.pulse(ideal.program(torch.full((10,), 5e-6)), torch.full((10,), 1000))
    assert int(st.latent["cycles"][0]) == 1001 and not bool(endurance.worn_out(ideal, st).any())
    assert torch.equal(ideal.read_mean(st), st.g)


def test_fefet_cycled_to_its_endurance_has_half_its_window() -> None:
    dev = dataclasses.replace(presets.get("fefet-deng2020"), vt_sigma_d2d=0.0, vt_sigma_c2c=0.0,
                              vt_sigma_d2d_programmed=None, endurance=40.0)
    st = dev.program(torch.tensor([dev.g_max, dev.g_min], dtype=F64))
    st = dev.pulse(st, torch.tensor([39, -39]), generator=gen(1))   # 40 writes each
    g = dev.read_mean(st)
    assert float(g[0] - g[1]) == pytest.approx(0.5 * (dev.g_max - dev.g_min), rel=1e-9)
    mid = 0.5 * (dev.g_min + dev.g_max)
    assert float(0.5 * (g[0] + g[1])) == pytest.approx(mid, rel=1e-9)   # symmetric closure


def test_program_verify_reports_worn_out_cells() -> None:
    dev = dataclasses.replace(presets.get("rram-falcone2025"), endurance=10.0)
    target = torch.full((2000,), 0.5 * (dev.g_min + dev.g_max), dtype=F64)
    r = program_verify(dev, target, tolerance=0.0, max_pulses=30, max_iterations=30,
                       generator=gen(2))
    worn = endurance.worn_out(dev, r.state)
    assert r.worn_out == int(worn.sum()) > 1000                    # 31 writes >> N_e = 10
    assert bool((r.state.latent["stuck"][r.state.latent["worn"]] == STUCK_ON).all())
    assert int((r.state.latent.get("stuck", torch.zeros(1)) != STUCK_NONE).sum()) == int(
        r.state.latent["worn"].sum())


def test_online_training_reports_worn_out_cells() -> None:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(6, 4)).double()
    hw = TileConfig(rows=8, cols=8, device=WearingIdeal(pulse_states=50, endurance=30.0))
    model = program(to_analog(net, hw, mapping=MappingConfig(weight_clip="fixed",
                                                             clip_value=1.0)))
    opt = AnalogSGD(model, 5.0, algorithm="mixed", refresh_every=0, generator=gen(3))
    x = torch.randn(32, 6, generator=gen(4), dtype=F64)
    y = torch.randint(0, 4, (32,), generator=gen(5))
    for _ in range(6):
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    cost = opt.cost()
    tile = opt._layers[0].module.tiled.tile
    assert cost.worn_out_cells == int(endurance.worn_out(tile.config.device, tile.state).sum())
    assert cost.worn_out_cells > 0 and cost.max_cell_pulses > 30
    assert cost.as_dict()["worn_out_cells"] == cost.worn_out_cells
