"""Program-and-verify (training.verify): rejection statistics of re-programming against the
geometric law, truncated-normal residual error, pulse bursts, read averaging, stuck cells,
partial (refresh) writes, cost accounting and errors."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pytest
import torch
from torch import Tensor

from memxbar.crossbar.cost import program_cost
from memxbar.devices.base import STUCK_NONE, CellState, Device, param, randn
from memxbar.errors import ConfigError
from memxbar.training.verify import nominal_steps, program_verify

F64 = torch.float64
N = 4096


@dataclass(frozen=True, kw_only=True)
class GaussCell(Device):
    """Test cell: programming ``g_T + sigma * N(0,1)`` (clipped to the range), read noise
    ``sigma_read``, no drift; pulses of a fixed ``step`` with no noise."""

    g_min: float = param(0.0, unit="S", ge=0.0)
    g_max: float = param(1e-5, unit="S", gt=0.0)
    sigma: float = param(2e-7, unit="S", ge=0.0)
    sigma_read: float = param(0.0, unit="S", ge=0.0)
    step: float = param(1e-8, unit="S", gt=0.0)
    write_energy: float = param(1e-12, unit="J", ge=0.0)

    def _program(self, g_target: Tensor, generator: torch.Generator | None) -> CellState:
        g = (g_target + self.sigma * randn(g_target, generator)).clamp(self.g_min, self.g_max)
        return CellState(g, {"tag": torch.ones_like(g)})

    def _read_std(self, state: CellState, t: Tensor, mean: Tensor) -> Tensor:
        return torch.full_like(state.g, self.sigma_read)

    def _pulse(self, state: CellState, n: Tensor, generator: torch.Generator | None) -> CellState:
        g = (state.g + n.to(state.g.dtype) * self.step).clamp(self.g_min, self.g_max)
        return state.replace(g=g)


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def targets(dev: Device, n: int = N, lo: float = 0.2, hi: float = 0.8) -> Tensor:
    u = torch.rand(n, generator=gen(99), dtype=F64)
    return dev.g_min + (lo + (hi - lo) * u) * (dev.g_max - dev.g_min)


def test_reprogramming_follows_the_geometric_law_and_truncated_normal() -> None:
    dev = GaussCell()
    tol = 0.5 * dev.sigma
    r = program_verify(dev, targets(dev), tolerance=tol, max_pulses=1000, max_iterations=1000,
                       generator=gen(1))
    assert bool(r.converged.all())
    assert float(r.error.max()) <= tol * (1 + 1e-12)
    # each try lands within +-tol with p = erf(a / sqrt 2), a = tol / sigma: tries ~ Geometric(p)
    a = tol / dev.sigma
    p = math.erf(a / math.sqrt(2))
    mean, sd = 1 / p, math.sqrt(1 - p) / p
    assert float(r.pulses.double().mean()) == pytest.approx(mean, abs=5 * sd / math.sqrt(N))
    assert torch.equal(r.reads, r.pulses)  # one verify read after every write
    # residual: normal truncated to [-a, a] sigma, variance 1 - 2 a phi(a) / (2 Phi(a) - 1)
    phi = math.exp(-a * a / 2) / math.sqrt(2 * math.pi)
    want = dev.sigma * math.sqrt(1 - 2 * a * phi / p)
    rms = float(r.error.pow(2).mean().sqrt())
    assert rms == pytest.approx(want, rel=5 / math.sqrt(2 * N))
    cost = program_cost(dev, targets(dev), pulses=r.pulses.double(),
                        verify_iterations=r.reads.double())
    assert r.energy == pytest.approx(cost.energy, rel=1e-12)
    assert r.energy >= float(r.pulses.sum()) * dev.write_energy


def test_tighter_tolerance_costs_more_pulses_and_lowers_the_error() -> None:
    dev = GaussCell()
    t = targets(dev)
    single = float((dev.program(t, generator=gen(1)).g - t).pow(2).mean().sqrt())
    assert single == pytest.approx(dev.sigma, rel=5 / math.sqrt(2 * N))
    errs, pulses = [], []
    for k in (2.0, 1.0, 0.5, 0.25):
        s = program_verify(dev, t, tolerance=k * dev.sigma, max_pulses=500, max_iterations=500,
                           generator=gen(1)).summary()
        errs.append(s["rms_error"])
        pulses.append(s["pulses_per_cell"])
    assert errs == sorted(errs, reverse=True) and errs[-1] < 0.2 * single
    assert pulses == sorted(pulses) and pulses[-1] > 4 * pulses[0]


def test_read_averaging_and_read_noise() -> None:
    """With read noise the verify accepts on lucky reads; averaging k reads counts k reads
    per verify and leaves a smaller error."""
    dev = GaussCell(sigma_read=4e-7)
    t = targets(dev, n=2048)
    tol = 0.25 * dev.sigma
    one = program_verify(dev, t, tolerance=tol, max_pulses=300, max_iterations=300,
                         generator=gen(2))
    avg = program_verify(dev, t, tolerance=tol, max_pulses=300, max_iterations=300,
                         reads_per_verify=16, generator=gen(2))
    assert torch.equal(avg.reads, 16 * avg.pulses)
    assert avg.summary()["rms_error"] < 0.6 * one.summary()["rms_error"]


def test_pulse_bursts_converge_on_a_fine_step_device() -> None:
    dev = GaussCell(sigma=5e-7, step=2e-8)
    t = targets(dev, n=1024)
    tol = 1.5 * dev.step
    r = program_verify(dev, t, tolerance=tol, method="pulses", max_pulses=400,
                       max_iterations=40, pulses_per_iteration=50, generator=gen(3))
    assert bool(r.converged.all()) and float(r.error.max()) <= tol * (1 + 1e-9)
    # deterministic steps: about |initial error| / step pulses (plus the first write)
    start = (dev.program(t, generator=gen(3)).g - t).abs() / dev.step
    assert float(r.pulses.double().mean()) == pytest.approx(float(start.mean()) + 1, rel=0.1)
    assert r.reads.max() <= 41
    assert nominal_steps(dev) == pytest.approx((dev.step, dev.step), rel=1e-9)


def test_stuck_cells_keep_their_fault_and_spend_the_budget() -> None:
    dev = GaussCell(stuck_on_fraction=0.1, stuck_off_fraction=0.1)
    t = targets(dev, lo=0.4, hi=0.6)
    r = program_verify(dev, t, tolerance=0.5 * dev.sigma, max_pulses=30, max_iterations=100,
                       generator=gen(4))
    stuck = r.state.latent["stuck"] != STUCK_NONE
    assert abs(float(stuck.double().mean()) - 0.2) < 5 * math.sqrt(0.16 / N)
    assert not bool(r.converged[stuck].any())
    assert bool((r.pulses[stuck] == 31).all())  # first write + the whole budget
    on = r.state.latent["stuck"] == 1
    assert torch.equal(r.state.g[on], torch.full_like(r.state.g[on], dev.g_max))
    free = ~stuck
    assert float(r.converged[free].double().mean()) > 0.99


def test_partial_rewrite_leaves_other_cells_alone() -> None:
    dev = GaussCell()
    t = targets(dev, n=512)
    st = dev.program(t, generator=gen(5))
    new_t = t.flip(0)
    active = torch.zeros(512, dtype=torch.bool)
    active[::3] = True
    r = program_verify(dev, new_t, tolerance=0.5 * dev.sigma, state=st, active=active,
                       max_pulses=200, max_iterations=200, generator=gen(6))
    assert torch.equal(r.state.g[~active], st.g[~active])
    assert int(r.pulses[~active].sum()) == 0 and int(r.reads[~active].sum()) == 0
    assert bool(r.converged[active].all())
    assert float(r.error[active].max()) <= 0.5 * dev.sigma * (1 + 1e-12)
    assert set(r.state.latent) == {"tag", "cycles"}   # re-writes count (devices/endurance.py)
    assert torch.equal(r.state.latent["cycles"][~active], torch.ones(int((~active).sum()),
                                                                      dtype=torch.int64))


def test_errors() -> None:
    dev = GaussCell()
    t = targets(dev, n=8)
    with pytest.raises(ValueError, match="method"):
        program_verify(dev, t, tolerance=1e-8, method="anneal")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="tolerance"):
        program_verify(dev, t, tolerance=-1.0)
    with pytest.raises(ValueError, match="active"):
        program_verify(dev, t, tolerance=1e-8, active=torch.ones(8, dtype=torch.bool))
    with pytest.raises(ValueError, match="device range"):
        program_verify(dev, t + 1.0, tolerance=1e-8)
    with pytest.raises(ValueError, match="max_pulses"):
        program_verify(dev, t, tolerance=1e-8, max_pulses=1.5)  # type: ignore[arg-type]
    # found by fuzz_api: budgets of 2**63 - 1 ran without end, an int tolerance of 10**30
    # overflowed, a string target was a bare TypeError, True was read as t = 1 s
    with pytest.raises(ValueError, match=r"max_iterations.*<= 100000"):
        program_verify(dev, t, tolerance=1e-8, max_iterations=2**63 - 1)
    with pytest.raises(ValueError, match=r"max_pulses.*<= 1e\+12"):
        program_verify(dev, t, tolerance=1e-8, max_pulses=2**63 - 1)
    assert program_verify(dev, t, tolerance=1).converged.all()  # an int tolerance, in S
    with pytest.raises(ValueError, match=r"tolerance = 1000.*<= 1"):
        program_verify(dev, t, tolerance=10**400)
    with pytest.raises(ValueError, match="g_target must be a tensor"):
        program_verify(dev, "1e-5", tolerance=1e-8)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="t = True is a bool"):
        program_verify(dev, t, tolerance=1e-8, t_read=True)


@pytest.mark.parametrize("method", ["program", "pulses"])
def test_numpy_scalars_are_taken_as_the_numbers_they_hold(method: str) -> None:
    """Values from np.linspace or a pandas column: same result as the Python numbers."""
    dev = GaussCell(sigma_read=1e-8)
    t = targets(dev, n=256)
    kw = dict(tolerance=0.5 * dev.sigma, max_pulses=50, max_iterations=40,
              pulses_per_iteration=3, reads_per_verify=2, t_read=1.0)
    want = program_verify(dev, t, method=method, generator=gen(4), **kw)
    np_kw = dict(tolerance=np.float32(kw["tolerance"]), max_pulses=np.int64(50),
                 max_iterations=np.int32(40), pulses_per_iteration=np.int64(3),
                 reads_per_verify=np.int64(2), t_read=np.float32(1.0))
    got = program_verify(dev, t, method=method, generator=gen(4), **np_kw)
    assert int(got.pulses.sum()) > 0
    torch.testing.assert_close(got.state.g, want.state.g, rtol=1e-6, atol=1e-12)
    with pytest.raises(ConfigError, match="max_pulses = 1.5.*allowed"):
        program_verify(dev, t, tolerance=1e-7, max_pulses=np.float64(1.5))
