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
programming and reads; pulse updates (online training) use the wrapped model unchanged. Reads
take the wrapped model's mean of the cells as it wrote them (latent ``unscaled_g``) times ``g /
g_unscaled``, so models that rebuild the read mean from their latents (FeFET, MTJ) see the
scaled programming noise too; a cell that a pulse or read disturb changes takes the wrapped
model's own ``g``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from functools import cached_property
from typing import Any, cast

import torch
from torch import Tensor

from memxbar.devices.base import CellState, Device, check_param, param
from memxbar.errors import ConfigError, plain_value

MAX_SCALE = 100.0  # largest noise or drift factor
SCALES = ("prog_noise_scale", "read_noise_scale", "drift_scale")
UNSCALED = "unscaled_g"  # latent: the wrapped model's own written g (S), before scaling


def _as_written(before: CellState, after: CellState) -> CellState:
    """``after``, the wrapped model's pulse or disturb of ``before``: a cell whose conductance
    it changed takes the model's own ``g`` (``unscaled_g = g``); one it left as it was (``g``
    or ``unscaled_g`` within 1e-6) keeps its scaled write."""
    g_u = before.latent.get(UNSCALED)
    if g_u is None:
        return after
    kept = (torch.isclose(after.g, before.g, rtol=1e-6, atol=0.0)
            | torch.isclose(after.g, g_u, rtol=1e-6, atol=0.0))
    return after.replace(g=torch.where(kept, before.g, after.g),
                         **{UNSCALED: torch.where(kept, g_u, after.g)})


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

    def _read_noise_split(self, t: float, conversion_interval: float) -> float:
        return self.inner._read_noise_split(t, conversion_interval)

    def disturb(self, state: CellState, reads: float | Tensor, *, voltage: float | None = None,
                generator: torch.Generator | None = None) -> CellState:
        """Read disturb is the wrapped model's (its latents, its law)."""
        self._check_state(state, f"{type(self).__name__}.disturb")
        after = self.inner.disturb(state, reads, voltage=voltage, generator=generator)
        if after is state:  # no read-disturb model
            return state
        out = _as_written(state, after)
        out.trusted = self
        return out

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

    @cached_property
    def _latent_layout(self) -> dict[str, tuple[str, tuple[int, ...]]]:
        """The wrapped model's latents: ``unscaled_g`` is optional, so that states the wrapped
        model wrote (or saved before it existed) still read, as the wrapped model's."""
        layout = cast(Any, Device._latent_layout).func(self)  # (the property's function)
        return {k: v for k, v in layout.items() if k != UNSCALED}

    # ----------------------------------------------------------------- the scaled physics
    def _program(self, g_target: Tensor, generator: torch.Generator | None) -> CellState:
        state = self.inner._program(g_target, generator)
        if self.prog_noise_scale == 1.0:
            return state
        g = (g_target + self.prog_noise_scale * (state.g - g_target)).clamp_min(0.0)
        return state.replace(g=g, **{UNSCALED: state.g})

    def _inner_mean(self, state: CellState, t: Tensor) -> Tensor:
        """The wrapped model's mean (S) of the cells as it wrote them (latent ``unscaled_g``,
        S), moved to the scaled write: times ``g / g_unscaled`` (plus ``g - g_unscaled`` where
        either is 0). Also right for models that rebuild G from latents (FeFET domains, MTJ
        junctions), which ignore ``state.g``. Without the latent: the wrapped model's mean."""
        g_u = state.latent.get(UNSCALED)
        if g_u is None:
            return self.inner._mean(state, t)
        mean = self.inner._mean(state.replace(g=g_u), t)
        g = state.g
        positive = (g_u > 0) & (mean > 0)
        ratio = g / torch.where(positive, g_u, 1.0)
        return torch.where(positive, mean * ratio, mean + (g - g_u)).clamp_min(0.0)

    def _mean(self, state: CellState, t: Tensor) -> Tensor:
        mean = self._inner_mean(state, t)
        if self.drift_scale == 1.0:
            return mean
        g, s = state.g, self.drift_scale
        positive = (g > 0) & (mean > 0)
        ratio = torch.where(positive, mean, 1.0) / torch.where(positive, g, 1.0)
        return torch.where(positive, g * ratio.pow(s), g + s * (mean - g)).clamp_min(0.0)

    def _read_std(self, state: CellState, t: Tensor, mean: Tensor) -> Tensor:
        if self.read_noise_scale == 0.0:
            return torch.zeros_like(state.g)
        inner_mean = mean if self.drift_scale == 1.0 else self._inner_mean(state, t)
        return self.read_noise_scale * self.inner._read_std(state, t, inner_mean)

    def _pulse(self, state: CellState, n: Tensor, generator: torch.Generator | None) -> CellState:
        return _as_written(state, self.inner._pulse(state, n, generator))


def scaled(device: Device, *, prog_noise_scale: float = 1.0, read_noise_scale: float = 1.0,
           drift_scale: float = 1.0) -> Device:
    """``device`` with its programming noise, read noise and drift scaled (:class:`ScaledDevice`;
    ``device`` itself when every factor is 1). A ScaledDevice is re-wrapped, factors
    multiplied."""
    if not isinstance(device, Device):
        raise ConfigError(f"scaled: device = {device!r}; allowed: a Device model")
    factors: dict[str, Any] = {"prog_noise_scale": prog_noise_scale,
                               "read_noise_scale": read_noise_scale, "drift_scale": drift_scale}
    meta = {f.name: f.metadata["param"] for f in dataclasses.fields(ScaledDevice)
            if f.name in SCALES}
    factors = {k: plain_value(v) for k, v in factors.items()}
    for k, v in factors.items():  # before multiplying by a wrapped model's factors
        check_param("scaled", k, v, meta[k])
    if isinstance(device, ScaledDevice):
        factors = {k: v * getattr(device, k) for k, v in factors.items()}
        device = device.inner
    if all(v == 1.0 for v in factors.values()):
        return device
    base = {f.name: getattr(device, f.name) for f in dataclasses.fields(Device) if f.init}
    return ScaledDevice(inner=device, **base, **factors)
