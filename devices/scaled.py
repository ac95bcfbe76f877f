"""A device with its programming noise, read noise and drift scaled: the knob of a "how good
must my device be" sweep, on any device model.

:class:`ScaledDevice` wraps a device model and changes three things only, each by a factor
(1 = the wrapped model, 0 = none of it):

- programming noise: the programmed conductance ``g`` becomes ``q + s_prog * (g - q)``, ``q``
  the quantized target (so the write error's spread scales by ``s_prog``);
- read noise: the standard deviation of one read scales by ``s_read``;
- drift: the mean ``m(t)`` of a cell programmed to ``g`` becomes ``g * (m(t) / g) ** s_drift``,
  which scales the exponent of power-law drift ``g (t / t0) ** -nu`` exactly (``nu ->
  s_drift * nu``, Ielmini et al., IEEE TED 54(2), 2007, Eq. 1) and, for any other relaxation,
  its logarithmic size; where ``g`` or ``m(t)`` is 0 the change ``m(t) - g`` scales linearly.

Chosen over scaling each model's own noise parameters (``sigma_prog`` of PCM, the relaxation
table of RRAM...): one mechanism that means the same for every technology, user models
included. Everything else (range, levels, faults, pulses, energies, I-V) is the wrapped model's.
Latents are the wrapped model's, drawn at its unscaled write, so the scales describe
programming and reads; pulse updates (online training) use the wrapped model unchanged.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from memxbar.devices.base import CellState, Device, param
from memxbar.errors import ConfigError

MAX_SCALE = 100.0  # largest noise or drift factor
SCALES = ("prog_noise_scale", "read_noise_scale", "drift_scale")


@dataclass(frozen=True, kw_only=True)
class ScaledDevice(Device):
    """``inner`` with programming noise, read noise and drift scaled (see the module doc).
    Build it with :func:`scaled`, which copies ``inner``'s range, voltages and times."""

    # default None so that a missing model gets _check's clear ConfigError ([assignment])
    inner: Device = dataclasses.field(default=None)  # type: ignore[assignment]
    prog_noise_scale: float = param(1.0, doc="factor on the programming (write) error",
                                    ge=0.0, le=MAX_SCALE)
    read_noise_scale: float = param(1.0, doc="factor on the standard deviation of one read",
                                    ge=0.0, le=MAX_SCALE)
    drift_scale: float = param(1.0, doc="factor on the drift exponent (log of m(t)/g)",
                               ge=0.0, le=MAX_SCALE)

    def _check(self) -> None:
        if not isinstance(self.inner, Device):
            raise ConfigError(f"ScaledDevice.inner = {self.inner!r}; allowed: a Device model")
        for f in dataclasses.fields(Device):
            if f.init and getattr(self, f.name) != getattr(self.inner, f.name):
                raise ConfigError(f"ScaledDevice.{f.name} = {getattr(self, f.name)!r} differs "
                                  f"from the wrapped model's {getattr(self.inner, f.name)!r}; "
                                  "build it with memxbar.devices.scaled.scaled()")
        super()._check()

    # the wrapped model's identity and electrical behaviour (read-only views of the base's
    # class attributes: mypy flags a property over them, [override], which is the intent)
    @property
    def technology(self) -> str:  # type: ignore[override]
        return self.inner.technology

    @property
    def cell_type(self) -> str:  # type: ignore[override]
        return self.inner.cell_type

    @property
    def max_pulses(self) -> int:  # type: ignore[override]
        return self.inner.max_pulses

    @property
    def is_ohmic(self) -> bool:
        return self.inner.is_ohmic

    def current(self, g: Tensor, v: Tensor) -> Tensor:
        return self.inner.current(g, v)

    def slope(self, g: Tensor, v: Tensor) -> Tensor:
        return self.inner.slope(g, v)

    def read_noise_split(self, t: float, conversion_interval: float) -> float:
        return self.inner.read_noise_split(t, conversion_interval)

    def disturb(self, state: CellState, reads: float | Tensor, *, voltage: float | None = None,
                generator: torch.Generator | None = None) -> CellState:
        """Read disturb is the wrapped model's (its latents, its law)."""
        return self.inner.disturb(state, reads, voltage=voltage, generator=generator)

    def quantize(self, g: Tensor) -> Tensor:
        return self.inner.quantize(g)

    def __getattr__(self, name: str) -> Any:  # nominal_step and other optional model data
        if name.startswith("_") or name == "inner":
            raise AttributeError(name)
        return getattr(self.inner, name)

    def parameters(self) -> list[dict[str, Any]]:
        rows = [r for r in super().parameters() if r["name"] in SCALES]
        return [*self.inner.parameters(), *rows]

    def describe(self) -> str:
        scales = ", ".join(f"{k} = {getattr(self, k):g}" for k in SCALES)
        return f"{self.inner.describe()}\n  scaled by ScaledDevice: {scales}"

    # ----------------------------------------------------------------- the scaled physics
    def _program(self, g_target: Tensor, generator: torch.Generator | None) -> CellState:
        state = self.inner._program(g_target, generator)
        if self.prog_noise_scale == 1.0:
            return state
        g = (g_target + self.prog_noise_scale * (state.g - g_target)).clamp_min(0.0)
        return state.replace(g=g)

    def _mean(self, state: CellState, t: Tensor) -> Tensor:
        mean = self.inner._mean(state, t)
        if self.drift_scale == 1.0:
            return mean
        g, s = state.g, self.drift_scale
        positive = (g > 0) & (mean > 0)
        ratio = torch.where(positive, mean, 1.0) / torch.where(positive, g, 1.0)
        return torch.where(positive, g * ratio.pow(s), g + s * (mean - g)).clamp_min(0.0)

    def _read_std(self, state: CellState, t: Tensor, mean: Tensor) -> Tensor:
        if self.read_noise_scale == 0.0:
            return torch.zeros_like(state.g)
        inner_mean = mean if self.drift_scale == 1.0 else self.inner._mean(state, t)
        return self.read_noise_scale * self.inner._read_std(state, t, inner_mean)

    def _pulse(self, state: CellState, n: Tensor, generator: torch.Generator | None) -> CellState:
        return self.inner._pulse(state, n, generator)


def scaled(device: Device, *, prog_noise_scale: float = 1.0, read_noise_scale: float = 1.0,
           drift_scale: float = 1.0) -> Device:
    """``device`` with its programming noise, read noise and drift scaled (:class:`ScaledDevice`;
    ``device`` itself when every factor is 1). A ScaledDevice is re-wrapped, factors
    multiplied."""
    if not isinstance(device, Device):
        raise ConfigError(f"scaled: device = {device!r}; allowed: a Device model")
    factors: dict[str, Any] = {"prog_noise_scale": prog_noise_scale,
                               "read_noise_scale": read_noise_scale, "drift_scale": drift_scale}
    if isinstance(device, ScaledDevice):
        factors = {k: v * getattr(device, k) for k, v in factors.items()}
        device = device.inner
    if all(v == 1.0 for v in factors.values()):
        return device
    base = {f.name: getattr(device, f.name) for f in dataclasses.fields(Device) if f.init}
    return ScaledDevice(inner=device, **base, **factors)
