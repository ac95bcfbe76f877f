"""Ideal cell: programs exactly, never drifts, no read noise; linear, symmetric pulse steps."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from memxbar.devices.base import MAX_PULSES_CLOSED_FORM, CellState, Device, Preset, param


@dataclass(frozen=True, kw_only=True)
class IdealDevice(Device):
    """Noise-free, drift-free baseline. Pulses move G by ``(g_max - g_min) / pulse_states``."""

    technology = "ideal"
    max_pulses = MAX_PULSES_CLOSED_FORM
    g_min: float = param(0.0, unit="S", doc="lowest conductance", ge=0.0)
    g_max: float = param(1e-5, unit="S", doc="highest conductance", gt=0.0)
    pulse_states: int = param(1000, doc="pulses from g_min to g_max", ge=1, integer=True)
    write_energy: float = param(0.0, unit="J", doc="energy of one programming pulse", ge=0.0)

    def _program(self, g_target: Tensor, generator: torch.Generator | None) -> CellState:
        return CellState(g_target.clone())

    def _pulse(self, state: CellState, n: Tensor, generator: torch.Generator | None) -> CellState:
        step = (self.g_max - self.g_min) / self.pulse_states
        g = (state.g + n.to(state.g.dtype) * step).clamp(self.g_min, self.g_max)
        return state.replace(g=g)


PRESETS = [
    Preset("ideal", "ideal", IdealDevice,
           "no source: the noise-free reference of every study",
           "exact programming, no drift, no read noise; 0-10 uS"),
]
