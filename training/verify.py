"""Closed-loop program-and-verify: write, read back, write again where the read is outside a
tolerance, until every cell is verified or its pulse budget is spent.

The loop chips use for analog weights (iterative program-and-verify, e.g. Le Gallo et al., Nat.
Electron. 6:680 (2023); the "acceptance range" of Falcone et al., arXiv 2502.04524 (2025)):
an initial write of every cell, then per iteration one verify (``reads_per_verify`` averaged
reads, ``Device.read`` at ``t_read``, read noise included) of every unfinished cell; cells
within ``target +- tolerance`` stop (verified), the others are written again. A cell that runs
out of budget or iterations stops where it is. Two ways to write again:

- ``method="program"``: re-program the cell (``Device.program`` of the same target, one
  programming pulse): each try is a fresh draw of the device's programming noise, so the loop
  accepts the first draw that verifies. Stuck cells stay stuck (the fault map of ``state`` is
  kept; re-writes use the device without fault draws). Note: a re-written cell also gets fresh
  per-cell latents (drift exponent, device-to-device pulse parameters), as every
  ``Device.program`` call draws them.
- ``method="pulses"``: a burst of ``round(error / step)`` update pulses (``Device.pulse``; at
  least one, at most ``pulses_per_iteration`` and what is left of the budget), for fine-step
  devices. The step of each cell and direction starts at the nominal step
  (:func:`nominal_steps`) and follows what the cell did: after a burst of ``n`` pulses that
  moved the read by ``dG`` the intended way, it becomes the mean of the old value and
  ``|dG| / n``, kept within a factor 4 of the nominal step (handles nonlinear steps without a
  model of them).

Endurance: every write counts in the cells' ``cycles`` latent (a re-program is one write, a
burst ``|n|``; :mod:`memxbar.devices.endurance`), so cells near their endurance fail or see a
closing window while they are verified; ``VerifyResult.worn_out`` counts the worn-out cells.

Everything is vectorized over cells; the only Python loop is over iterations (and the device's
loop over pulses within a burst). Cost: energy and time of every pulse and verify read by
:func:`memxbar.crossbar.cost.program_cost`.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor

from memxbar.crossbar.cost import MAX_PULSES_PER_CELL, CostModel, program_cost
from memxbar.crossbar.tile import probe_steps
from memxbar.devices import endurance
from memxbar.devices.base import STUCK_OFF, STUCK_ON, CellState, Device
from memxbar.errors import ConfigError, plain_value

METHODS = ("program", "pulses")
STEP_RANGE = 4.0  # adaptive step estimate kept within [nominal / 4, nominal * 4]
# sanity bounds of the loop's budgets: beyond any device's endurance per write (pulses, the bound
# of the programming cost) and any write-verify scheme (rounds), and inside int64 pulse counts
MAX_PULSES = MAX_PULSES_PER_CELL
MAX_ITERATIONS = 100_000


@dataclass
class VerifyResult:
    """Outcome of :func:`program_verify`, per cell (tensors of the targets' shape).

    ``state``: the written cells. ``error``: ``|read_mean(t_read) - target|`` (S), the error
    left without read noise. ``pulses``: write pulses per cell (the initial write counts one).
    ``reads``: verify reads per cell. ``converged``: the last verify read was within tolerance.
    ``energy`` (J) and ``time`` (s, one cell at a time): :func:`program_cost` of the pulses and
    reads. Cells outside ``active`` have zero pulses and reads and keep their state.
    ``worn_out``: cells worn out after the loop (:func:`memxbar.devices.endurance.worn_out`:
    failed by wear, or their window below half).
    """

    state: CellState
    error: Tensor
    pulses: Tensor
    reads: Tensor
    converged: Tensor
    energy: float
    time: float
    worn_out: int = 0

    def summary(self, active: Tensor | None = None) -> dict[str, float]:
        """RMS and max error (S), mean pulses and reads per cell, converged fraction, energy
        (J): over ``active`` cells (all when None)."""
        m = torch.ones_like(self.converged) if active is None else active
        n = max(int(m.sum()), 1)
        err = self.error[m]
        return dict(rms_error=float(err.pow(2).mean().sqrt()) if err.numel() else 0.0,
                    max_error=float(err.max()) if err.numel() else 0.0,
                    pulses_per_cell=float(self.pulses[m].sum()) / n,
                    reads_per_cell=float(self.reads[m].sum()) / n,
                    converged=float(self.converged[m].sum()) / n, energy=self.energy)


def nominal_steps(device: Device) -> tuple[float, float]:
    """Nominal conductance change (S) of one potentiating / one depressing pulse:
    ``device.nominal_step`` when the model defines it (S, or an up/down pair), otherwise
    :func:`memxbar.crossbar.tile.probe_steps`."""
    nom = getattr(device, "nominal_step", None)
    if nom is not None:
        up, down = (nom, nom) if isinstance(nom, (int, float)) else nom
    else:
        up, down = probe_steps(device)
    if not (up > 0 and down > 0 and math.isfinite(up) and math.isfinite(down)):
        raise ConfigError(f"program_verify: device {type(device).__name__} has nominal steps "
                         f"up = {up!r} S, down = {down!r} S; closed-loop correction needs both "
                         "> 0")
    return float(up), float(down)


def _positive(name: str, value: object, integer: bool = False, most: float = math.inf) -> None:
    if not (isinstance(value, (int, float)) and not isinstance(value, bool)
            and (isinstance(value, int) or not integer) and 0 <= value <= most
            and value < math.inf):
        kind = "an integer" if integer else "a finite number"
        top = "" if most == math.inf else f" and <= {most:g}"
        raise ConfigError(f"program_verify: {name} = {value!r} is not allowed; allowed: {kind} "
                         f">= 0{top}")


def _rewrite(device: Device, state: CellState, target: Tensor, mask: Tensor,
             generator: torch.Generator | None) -> CellState:
    """Re-program the ``mask`` cells of ``state`` to ``target``; the fault map and the write
    count (one more write per re-programmed cell, which may wear cells out) are kept."""
    new = device.program(target[mask], generator=generator)
    g = state.g.clone()
    g[mask] = new.g.to(g.dtype)
    latent = {}
    for k, v in state.latent.items():
        if k in new.latent:
            v = v.clone()
            v[mask] = new.latent[k].to(v.dtype)
        latent[k] = v
    stuck = state.latent.get("stuck")
    if stuck is not None:
        g = torch.where(stuck == STUCK_ON, device.g_max, g)
        g = torch.where(stuck == STUCK_OFF, device.g_min, g)
    return endurance.add_cycles(device, CellState(g, latent), mask.to(torch.int64), generator)


def _check_target(device: Device, g_target: Tensor) -> Tensor:
    try:
        target = torch.as_tensor(g_target)
    except (TypeError, ValueError, RuntimeError):
        raise ConfigError("program_verify: g_target must be a tensor of conductances (S); got "
                          f"{type(g_target).__name__}") from None
    if target.is_complex() or target.dtype == torch.bool:
        raise ConfigError(f"program_verify: g_target has dtype {target.dtype}; conductances "
                          "are real numbers (S)")
    if not target.is_floating_point():
        target = target.to(torch.get_default_dtype())
    if not bool(torch.isfinite(target).all()) or (target.numel() and (
            float(target.min()) < device.g_min - 1e-6 * device.g_max
            or float(target.max()) > device.g_max * (1 + 1e-6))):
        raise ConfigError(f"program_verify: targets must be finite conductances within the "
                         f"device range [{device.g_min:.4g}, {device.g_max:.4g}] S")
    return target.clamp(device.g_min, device.g_max)


@torch.no_grad()
def program_verify(device: Device, g_target: Tensor, *, tolerance: float,
                   method: Literal["program", "pulses"] = "program", max_pulses: int = 100,
                   max_iterations: int = 100, pulses_per_iteration: int = 1,
                   reads_per_verify: int = 1, state: CellState | None = None,
                   active: Tensor | None = None, t_read: float = 0.0,
                   steps: tuple[float, float] | None = None,
                   generator: torch.Generator | None = None,
                   cost_model: CostModel | None = None) -> VerifyResult:
    """Write ``g_target`` (S, any shape) to within ``tolerance`` (S) by write-verify.

    ``state``: start from these cells (e.g. a refresh of written cells) instead of an initial
    ``device.program(g_target)`` of every cell (which counts one pulse per cell). ``active``
    (bool, targets' shape; with ``state``): only these cells are verified and re-written
    (default all). ``method``: "program" or "pulses" (module doc). ``max_pulses``: pulse budget
    per cell after the initial write; ``max_iterations``: verify rounds; ``pulses_per_iteration``
    ("pulses"): largest burst; ``reads_per_verify``: reads averaged per verify (beats read noise
    down by its square root). ``t_read``: time (s since programming) of the verify reads.
    ``steps`` ("pulses"): nominal (up, down) step in S (default :func:`nominal_steps`).
    ``tolerance = 0`` spends the budget. Returns a :class:`VerifyResult`.
    """
    if not isinstance(device, Device):
        raise ConfigError(f"program_verify: device = {device!r} is not allowed; allowed: a "
                          "memxbar Device")
    if method not in METHODS:
        raise ConfigError(f"program_verify: method = {method!r} is not allowed; allowed: "
                         f"{', '.join(METHODS)}")
    tolerance, max_pulses, max_iterations, pulses_per_iteration, reads_per_verify, t_read = (
        plain_value(v) for v in (tolerance, max_pulses, max_iterations, pulses_per_iteration,
                                 reads_per_verify, t_read))
    _positive("tolerance", tolerance, most=1.0)  # S: beyond any cell's conductance range
    tolerance = float(tolerance)
    _positive("max_pulses", max_pulses, integer=True, most=MAX_PULSES)
    _positive("max_iterations", max_iterations, integer=True, most=MAX_ITERATIONS)
    _positive("pulses_per_iteration", pulses_per_iteration, integer=True, most=MAX_PULSES)
    _positive("reads_per_verify", reads_per_verify, integer=True, most=MAX_ITERATIONS)
    if pulses_per_iteration < 1 or reads_per_verify < 1:
        raise ConfigError("program_verify: pulses_per_iteration and reads_per_verify must be "
                         ">= 1")
    target = _check_target(device, g_target)
    if active is not None and state is None:
        raise ConfigError("program_verify: active selects cells of a given state; pass state= "
                         "too (a fresh write programs every cell)")
    if active is None:
        active = torch.ones(target.shape, dtype=torch.bool, device=target.device)
    elif active.shape != target.shape or active.dtype != torch.bool:
        raise ConfigError(f"program_verify: active must be a bool tensor of the targets' shape "
                         f"{tuple(target.shape)}, got {active.dtype} {tuple(active.shape)}")
    pulses = torch.zeros(target.shape, dtype=torch.int64, device=target.device)
    if state is None:
        state = device.program(target, generator=generator)
        pulses = active.to(torch.int64)
    elif state.g.shape != target.shape:
        raise ConfigError(f"program_verify: state has shape {tuple(state.g.shape)}, targets "
                         f"{tuple(target.shape)}")
    writer = device
    if method == "program" and (device.stuck_on_fraction or device.stuck_off_fraction):
        writer = dataclasses.replace(device, stuck_on_fraction=0.0, stuck_off_fraction=0.0)
    if method == "pulses":
        nom = steps if steps is not None else nominal_steps(device)
        up0 = torch.full_like(target, nom[0])
        down0 = torch.full_like(target, nom[1])
        s_up, s_down = up0.clone(), down0.clone()
    reads = torch.zeros_like(pulses)
    left = torch.where(active, max_pulses, 0).to(torch.int64)
    open_ = active.clone()
    converged = torch.zeros_like(active)
    last = None  # (reads before the burst, burst) of the previous iteration ("pulses")
    for it in range(max_iterations + 1):
        if not bool(open_.any()):
            break
        g = device.read(state, t_read, generator=generator)
        for _ in range(reads_per_verify - 1):
            g = g + device.read(state, t_read, generator=generator)
        g = g / reads_per_verify
        reads += open_.to(torch.int64) * reads_per_verify
        if last is not None:  # learn each cell's step from its last burst
            g_before, n_before = last
            moved = (g - g_before) * torch.sign(n_before)
            obs = moved / n_before.abs().clamp_min(1)
            learn = open_ & (n_before != 0) & (moved > 0)
            up_dir = n_before > 0
            s_up = torch.where(learn & up_dir, (0.5 * (s_up + obs)).clamp(
                up0 / STEP_RANGE, up0 * STEP_RANGE), s_up)
            s_down = torch.where(learn & ~up_dir, (0.5 * (s_down + obs)).clamp(
                down0 / STEP_RANGE, down0 * STEP_RANGE), s_down)
        err = target - g
        ok = open_ & (err.abs() <= tolerance)
        converged |= ok
        open_ &= ~ok & (left > 0)
        if it == max_iterations or not bool(open_.any()):
            break
        if method == "program":
            state = _rewrite(writer, state, target, open_, generator)
            n = open_.to(torch.int64)
        else:
            want = torch.round(err / torch.where(err > 0, s_up, s_down)).abs().clamp_min(1)
            cap = left.clamp(max=pulses_per_iteration).to(want.dtype)
            n = torch.where(open_, torch.minimum(want, cap).to(torch.int64)
                            * torch.sign(err).to(torch.int64), 0)
            state = device.pulse(state, n, generator=generator)
            last = (g, n)
        pulses += n.abs()
        left -= n.abs()
    error = (device.read_mean(state, t_read) - target).abs()
    cost = program_cost(device, target.clamp_min(0.0), pulses=pulses.to(torch.float64),
                        verify_iterations=reads.to(torch.float64), model=cost_model)
    worn = int(endurance.worn_out(device, state).sum())
    return VerifyResult(state=state, error=error, pulses=pulses, reads=reads,
                        converged=converged, energy=cost.energy, time=cost.time, worn_out=worn)
