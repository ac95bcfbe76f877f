"""Generic pulse-response families for online training, in normalised conductance units.

Every family works on ``x = (g - g_min) / (g_max - g_min)`` in [0, 1], so any device model can
reuse it: the device converts its conductance to ``x``, calls :meth:`PulseResponse.apply`, and
converts back. The families are the behavioural models of aihwkit's pulsed devices (IBM aihwkit,
``simulator/configs/devices.py`` and ``rpucuda/rpu_*_device.cpp``; formulas summarised in
device-parameters.md §0.1), rewritten in ``x``:

- :class:`SoftBounds`  step falls linearly to 0 at the cell's bounds (aihwkit ``SoftBoundsDevice``)
- :class:`LinearStep`  step falls linearly with ``x`` by a fraction ``gamma`` at the nominal bound
  (aihwkit ``LinearStepDevice``; ``gamma = 0`` is the constant step)
- :class:`ExpStep`     exponential step fit (aihwkit ``ExpStepDevice``)
- :class:`PowStep`     power-law step of the distance to the bound (aihwkit ``PowStepDevice``,
  after Fusi & Abbott 2007)

Per-cell (device-to-device) variables are drawn once by :meth:`PulseResponse.sample` and kept as
``CellState`` latents (keys starting with ``"pulse_"``); cycle-to-cycle noise is drawn per pulse.

**Per-cell parameters** (as aihwkit ``PulsedDevice.populate``): a gain
``s = 1 + dw_min_dtod*xi`` (or ``exp(dw_min_dtod*xi)`` when ``dw_min_dtod_lognormal``) and an
asymmetry draw ``r = up_down_dtod*xi`` give the step sizes at ``x_ref``::

    dw_up   = |min(up_down, 0) + s + r| * dw_min
    dw_down = |-max(up_down, 0) + s - r| * dw_min

so ``up_down > 0`` makes potentiation the stronger direction (the weaker one is reduced by
``|up_down|``, as aihwkit's implementation does; its docstring's ``1 +/- up_down`` form differs).
The cell's bounds are ``x_lo = x_min_dtod*xi`` and ``x_hi = 1 + x_max_dtod*xi``, folded to the
correct side of ``x_ref`` (aihwkit ``enforce_consistency``) and then clipped into [0, 1]:
``g_min``/``g_max`` are the outer limits of the conductance window, so a cell whose drawn bound
lies outside keeps the nominal one (a choice of memxbar; aihwkit lets such cells exceed the
nominal range). About half of the cells therefore have the full window and half a narrower one.

**Pulse loop**: for pulse ``k < |n|`` of each cell, ``x <- clip(x + d * step, x_lo, x_hi)``
with ``d = sign(n)`` and the family's noisy step; cells with fewer pulses are masked. Write noise
(aihwkit ``write_noise_std``) is not part of the persistent state: :meth:`PulseResponse.observe`
adds a fresh ``N(0, write_noise)`` to the state each time a cell is written, and the device shows
that apparent value until the next write.

**From aihwkit weight units** (``w`` in ``[w_min, w_max]``, ``R = w_max - w_min``, with
``w_min <= 0 <= w_max``): ``x = (w - w_min) / R``; aihwkit's ``w = 0`` (where the step equals
``dw_min``) is ``x_ref = -w_min / R``; ``dw_min_x = dw_min / R``; the relative bound spreads become
absolute ones in ``x``: ``x_min_dtod = w_min_dtod * |w_min| / R``, ``x_max_dtod = w_max_dtod *
w_max / R``; ``write_noise = write_noise_std * dw_min / R`` (aihwkit scales write noise by
``dw_min``); ExpStep's additive noise ``dw_min_std_add / R``. Relative parameters (``up_down``,
``*_dtod`` of steps, ``dw_min_std``, ExpStep's ``a, b, gamma, A``, ``dw_min_std_slope``,
LinearStep's and PowStep's exponents) are unchanged. :meth:`PulseResponse.from_aihwkit` does this.
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar

import torch
from torch import Tensor

from memxbar.devices.base import Parametrized, param, pulse_train, randn, resolve_generator
from memxbar.errors import ConfigError

_P = TypeVar("_P", bound="PulseResponse")  # from_aihwkit returns the family it is called on
_AIHWKIT = "aihwkit simulator/configs/devices.py (device-parameters.md §0.1)"
_AIHWKIT_DEF = ("aihwkit PulsedDevice model; default = aihwkit's default (w in [-0.6, 0.6], "
                "dw_min 0.001, dtod 0.3, ctoc 0.3, up_down_dtod 0.01) in x; presets cite their fit")
_EPS = 1e-12  # floor for widths in denominators (x units)
_EXP_MAX = 80.0  # cap of exponent arguments, below float32 overflow


def flag(default: bool, *, doc: str, source: str = "") -> Any:
    """Declare a boolean switch of a pulse-response model (listed by ``parameters()``)."""
    return field(default=default, metadata={"flag": dict(doc=doc, source=source)})


@dataclass(frozen=True, kw_only=True)
class PulseResponse(Parametrized, ABC):
    """A pulse-response family in normalised units ``x`` in [0, 1] (see module docstring).

    Subclasses give the mean step magnitude (``_mean_step``) and may change the
    cycle-to-cycle noise (``_noisy_step``) and add per-cell latents (``_sample_extra``).
    """

    dw_min: float = param(0.001 / 1.2, gt=0.0, le=1.0,
                          doc="step at x_ref as a fraction of the range (mean over cells)",
                          source=_AIHWKIT_DEF)
    up_down: float = param(0.0, gt=-1.0, lt=1.0,
                           doc="up/down asymmetry: >0 weakens down steps by this fraction, "
                               "<0 weakens up steps", source=_AIHWKIT_DEF)
    dw_min_dtod: float = param(0.3, ge=0.0, doc="device-to-device spread of the step (relative)",
                               source=_AIHWKIT_DEF)
    dw_min_dtod_lognormal: bool = flag(False, doc="step gain exp(dtod*xi) instead of 1+dtod*xi",
                                       source=_AIHWKIT)
    up_down_dtod: float = param(0.01, ge=0.0,
                                doc="device-to-device spread of the asymmetry (relative to dw_min)",
                                source=_AIHWKIT_DEF)
    x_min_dtod: float = param(0.15, ge=0.0, doc="device-to-device spread of the lower bound (x)",
                              source=_AIHWKIT_DEF)
    x_max_dtod: float = param(0.15, ge=0.0, doc="device-to-device spread of the upper bound (x)",
                              source=_AIHWKIT_DEF)
    x_ref: float = param(0.5, ge=0.0, le=1.0,
                         doc="state where the step equals dw_min (aihwkit w = 0)",
                         source=_AIHWKIT_DEF)
    dw_min_std: float = param(0.3, ge=0.0, doc="cycle-to-cycle noise of each step (relative)",
                              source=_AIHWKIT_DEF)
    write_noise: float = param(0.0, ge=0.0,
                               doc="std of the apparent state after a write (x units)",
                               source=_AIHWKIT)

    def _check(self) -> None:
        owner = type(self).__name__
        for f in dataclasses.fields(self):
            if "flag" in f.metadata and not isinstance(getattr(self, f.name), bool):
                raise ConfigError(f"{owner}.{f.name} = {getattr(self, f.name)!r} must be True or "
                                 "False")

    def parameters(self) -> list[dict[str, Any]]:
        """Declared parameters plus the boolean switches."""
        rows = super().parameters()
        for f in dataclasses.fields(self):
            if "flag" in f.metadata:
                m = f.metadata["flag"]
                rows.append(dict(name=f.name, value=getattr(self, f.name), unit="",
                                 doc=m["doc"], source=m["source"]))
        return rows

    # ----------------------------------------------------------------- aihwkit conversion
    @classmethod
    def from_aihwkit(cls: type[_P], *, w_min: float, w_max: float, dw_min: float,
                     up_down: float = 0.0, dw_min_dtod: float = 0.0,
                     dw_min_dtod_log_normal: bool = False,
                     up_down_dtod: float = 0.0, w_min_dtod: float = 0.0, w_max_dtod: float = 0.0,
                     dw_min_std: float = 0.0, write_noise_std: float = 0.0,
                     **family: Any) -> _P:
        """Build from aihwkit parameters in weight units (``w`` in ``[w_min, w_max]``).

        ``family`` holds the family's own aihwkit parameters (e.g. ``A_up`` for ExpStep,
        ``mult_noise`` for SoftBounds/LinearStep) under their aihwkit names.
        """
        if not (w_min <= 0.0 <= w_max and w_min < w_max):
            raise ConfigError(f"{cls.__name__}.from_aihwkit: need w_min <= 0 <= w_max and "
                             f"w_min < w_max, got w_min = {w_min}, w_max = {w_max}")
        r = w_max - w_min
        common: dict[str, Any] = dict(
                      dw_min=dw_min / r, up_down=up_down, dw_min_dtod=dw_min_dtod,
                      dw_min_dtod_lognormal=bool(dw_min_dtod_log_normal),
                      up_down_dtod=up_down_dtod, x_min_dtod=w_min_dtod * abs(w_min) / r,
                      x_max_dtod=w_max_dtod * w_max / r, x_ref=-w_min / r,
                      dw_min_std=dw_min_std, write_noise=write_noise_std * dw_min / r)
        return cls(**common, **cls._family_from_aihwkit(family, r))

    @classmethod
    def _family_from_aihwkit(cls, family: dict[str, Any], r: float) -> dict[str, Any]:
        """Family parameters from their aihwkit names; ``r`` is the weight range."""
        if family:
            raise ConfigError(f"{cls.__name__}.from_aihwkit: unknown parameters "
                             f"{sorted(family)}")
        return {}

    # ----------------------------------------------------------------- per-cell latents
    def sample(self, like: Tensor, generator: torch.Generator | None) -> dict[str, Tensor]:
        """Device-to-device variables of cells shaped like ``like`` (its dtype and device).

        Keys: ``pulse_dw_up``, ``pulse_dw_down`` (step sizes at ``x_ref``), ``pulse_x_lo``,
        ``pulse_x_hi`` (cell bounds) and the family's own.
        """
        generator = resolve_generator(generator, like)
        like = torch.zeros_like(like)
        if self.dw_min_dtod > 0.0:
            xi = self.dw_min_dtod * randn(like, generator)
            gain = torch.exp(xi) if self.dw_min_dtod_lognormal else 1.0 + xi
        else:
            gain = like + 1.0
        r = self.up_down_dtod * randn(like, generator) if self.up_down_dtod > 0.0 else like
        up = (min(self.up_down, 0.0) + gain + r).abs() * self.dw_min
        down = (-max(self.up_down, 0.0) + gain - r).abs() * self.dw_min
        lo = self.x_min_dtod * randn(like, generator) if self.x_min_dtod > 0.0 else like
        hi = 1.0 + self.x_max_dtod * randn(like, generator) if self.x_max_dtod > 0.0 else like + 1
        lo = (self.x_ref - (self.x_ref - lo).abs()).clamp_min(0.0)
        hi = (self.x_ref + (hi - self.x_ref).abs()).clamp_max(1.0)
        out = {"pulse_dw_up": up, "pulse_dw_down": down, "pulse_x_lo": lo, "pulse_x_hi": hi}
        out.update(self._sample_extra(like, generator))
        return out

    def _sample_extra(self, like: Tensor, generator: torch.Generator | None) -> dict[str, Tensor]:
        """Family-specific per-cell variables (``like`` is a zero tensor)."""
        return {}

    # ----------------------------------------------------------------- response
    def mean_step(self, x: Tensor, up: Tensor | bool, latents: dict[str, Tensor]) -> Tensor:
        """Expected signed change of ``x`` for one pulse (up where ``up``), before clipping."""
        up = torch.as_tensor(up, device=x.device)
        mag = self._mean_step(x, up, latents)
        return torch.where(up, mag, -mag)

    @abstractmethod
    def _mean_step(self, x: Tensor, up: Tensor, latents: dict[str, Tensor]) -> Tensor:
        """Mean step magnitude (>= 0) at ``x`` in the direction ``up`` (bool tensor)."""

    def _noisy_step(self, mag: Tensor, x: Tensor, scale: Tensor, generator: torch.Generator | None
                    ) -> Tensor:
        """Step magnitude with cycle-to-cycle noise; ``scale`` is the cell's step at ``x_ref``.

        Default: multiplicative, ``mag * (1 + dw_min_std * xi)``.
        """
        if self.dw_min_std == 0.0:
            return mag
        return mag * (1.0 + self.dw_min_std * randn(mag, generator))

    def apply(self, x: Tensor, n: Tensor, latents: dict[str, Tensor],
              generator: torch.Generator | None) -> Tensor:
        """Persistent state after ``n`` signed pulses per cell (``+`` potentiate, ``-`` depress).

        ``x`` is first clipped into the cell's bounds, as when aihwkit sets weights.
        """
        generator = resolve_generator(generator, x)
        n = torch.as_tensor(n, device=x.device)
        if n.is_floating_point() or n.is_complex():
            raise ConfigError(f"pulse counts must be an integer tensor, got dtype {n.dtype}")
        n = torch.broadcast_to(n, x.shape)
        lo, hi = latents["pulse_x_lo"], latents["pulse_x_hi"]
        x = torch.minimum(torch.maximum(x, lo), hi)
        up = n > 0
        cells = {k: v for k, v in latents.items() if k.startswith("pulse_") and k != "pulse_x"}
        cells.update(x=x, up=up, sign=torch.where(up, 1.0, -1.0).to(x.dtype),
                     scale=torch.where(up, latents["pulse_dw_up"], latents["pulse_dw_down"]))

        def one_pulse(c: dict[str, Tensor]) -> dict[str, Tensor]:
            x = c["x"]
            mag = self._noisy_step(self._mean_step(x, c["up"], c), x, c["scale"], generator)
            return {"x": torch.minimum(torch.maximum(x + c["sign"] * mag, c["pulse_x_lo"]),
                                       c["pulse_x_hi"])}

        return pulse_train(n.abs(), cells, one_pulse)["x"]

    def observe(self, x: Tensor, generator: torch.Generator | None) -> Tensor:
        """Apparent state right after a write: ``x + write_noise * xi`` (not clipped)."""
        if self.write_noise == 0.0:
            return x
        generator = resolve_generator(generator, x)
        return x + self.write_noise * randn(x, generator)

    @staticmethod
    def _width(latents: dict[str, Tensor]) -> Tensor:
        return (latents["pulse_x_hi"] - latents["pulse_x_lo"]).clamp_min(_EPS)


# ====================================================================== families
@dataclass(frozen=True, kw_only=True)
class _LinearInState(PulseResponse):
    """Families whose step is linear in the state around ``x_ref`` (inside (0, 1)), with
    cycle-to-cycle noise multiplicative or additive (aihwkit ``mult_noise``)."""

    family: ClassVar[str] = ""
    multiplicative_noise: bool = flag(True, doc="c2c noise proportional to the step (else "
                                                "additive, proportional to dw_min)",
                                      source=_AIHWKIT)

    def _check(self) -> None:
        super()._check()
        if not 0.0 < self.x_ref < 1.0:
            raise ConfigError(f"{type(self).__name__}.x_ref = {self.x_ref} must lie strictly "
                             f"inside (0, 1) for {self.family}")

    @classmethod
    def _family_from_aihwkit(cls, family: dict[str, Any], r: float) -> dict[str, Any]:
        out = {}
        if "mult_noise" in family:
            out["multiplicative_noise"] = bool(family.pop("mult_noise"))
        return out | super()._family_from_aihwkit(family, r)

    def _noisy_step(self, mag: Tensor, x: Tensor, scale: Tensor, generator: torch.Generator | None
                    ) -> Tensor:
        if self.multiplicative_noise or self.dw_min_std == 0.0:
            return super()._noisy_step(mag, x, scale, generator)
        return mag + scale * self.dw_min_std * randn(mag, generator)


@dataclass(frozen=True, kw_only=True)
class SoftBounds(_LinearInState):
    """Step falls linearly to zero at the cell's bounds (aihwkit ``SoftBoundsDevice``)::

        up:   dw_up   * (x_hi - x) / (x_hi - x_ref)
        down: dw_down * (x - x_lo) / (x_ref - x_lo)

    Noise: multiplicative ``step * (1 + dw_min_std*xi)``, or additive ``step + dw*dw_min_std*xi``.
    From ``x_ref`` a train of up pulses approaches ``x_hi`` geometrically.
    """

    family = "soft bounds"

    def _mean_step(self, x: Tensor, up: Tensor, latents: dict[str, Tensor]) -> Tensor:
        lo, hi = latents["pulse_x_lo"], latents["pulse_x_hi"]
        frac_up = (hi - x) / (hi - self.x_ref).clamp_min(_EPS)
        frac_down = (x - lo) / (self.x_ref - lo).clamp_min(_EPS)
        return torch.where(up, latents["pulse_dw_up"] * frac_up,
                           latents["pulse_dw_down"] * frac_down).clamp_min(0.0)


@dataclass(frozen=True, kw_only=True)
class LinearStep(_LinearInState):
    """Step falls linearly with ``x`` (aihwkit ``LinearStepDevice``, mean-bound reference)::

        up:   dw_up   * (1 - g_up   * (x - x_ref) / (1 - x_ref))
        down: dw_down * (1 + g_down * (x - x_ref) / x_ref)

    with per-cell ``g = |gamma + gamma_dtod*xi|``: at the nominal bound the step is ``1 - g``
    of its ``x_ref`` value (``gamma = 1`` reaches zero there; ``gamma = 0`` is a constant step).
    Steps never reverse sign (aihwkit ``allow_increasing = False``). Hard bounds at the cell's
    ``x_lo``, ``x_hi``.
    """

    gamma_up: float = param(0.0, ge=0.0, doc="relative step decrease at the upper bound",
                            source=_AIHWKIT)
    gamma_down: float = param(0.0, ge=0.0, doc="relative step decrease at the lower bound",
                              source=_AIHWKIT)
    gamma_up_dtod: float = param(0.05, ge=0.0, doc="device-to-device spread of gamma_up",
                                 source=_AIHWKIT)
    gamma_down_dtod: float = param(0.05, ge=0.0, doc="device-to-device spread of gamma_down",
                                   source=_AIHWKIT)

    family = "the linear step"

    @classmethod
    def _family_from_aihwkit(cls, family: dict[str, Any], r: float) -> dict[str, Any]:
        out = {k: family.pop(k) for k in ("gamma_up", "gamma_down", "gamma_up_dtod",
                                          "gamma_down_dtod") if k in family}
        return out | super()._family_from_aihwkit(family, r)

    def _sample_extra(self, like: Tensor, generator: torch.Generator | None) -> dict[str, Tensor]:
        def draw(mean: float, spread: float) -> Tensor:
            return (mean + spread * randn(like, generator)).abs() if spread > 0 else like + mean
        return {"pulse_gamma_up": draw(self.gamma_up, self.gamma_up_dtod),
                "pulse_gamma_down": draw(self.gamma_down, self.gamma_down_dtod)}

    def _mean_step(self, x: Tensor, up: Tensor, latents: dict[str, Tensor]) -> Tensor:
        rel = x - self.x_ref
        f_up = 1.0 - latents["pulse_gamma_up"] * rel / (1.0 - self.x_ref)
        f_down = 1.0 + latents["pulse_gamma_down"] * rel / self.x_ref
        return torch.where(up, latents["pulse_dw_up"] * f_up,
                           latents["pulse_dw_down"] * f_down).clamp_min(0.0)


@dataclass(frozen=True, kw_only=True)
class ExpStep(PulseResponse):
    """Exponential step fit (aihwkit ``ExpStepDevice``)::

        z    = 2 a (x - x_ref) / (x_hi - x_lo) + b
        up:   dw_up   * max(1 - A_up   * exp( gamma_up   * z), 0)
        down: dw_down * max(1 - A_down * exp(-gamma_down * z), 0)

    Noise: multiplicative ``step * (1 + dw_min_std*xi)``; when ``dw_min_std_add`` or
    ``dw_min_std_slope`` is set, additive with std
    ``dw_min_std * (|step| + dw_min_std_add + dw_min_std_slope * |x - x_ref|)`` (aihwkit's
    "complex noise", in x units).
    """

    a: float = param(0.244, doc="global slope of z", source=_AIHWKIT)
    b: float = param(0.2425, doc="global offset of z", source=_AIHWKIT)
    gamma_up: float = param(12.44625, doc="exponent, up direction", source=_AIHWKIT)
    gamma_down: float = param(12.78785, doc="exponent, down direction", source=_AIHWKIT)
    A_up: float = param(0.00081, doc="prefactor, up direction", source=_AIHWKIT)
    A_down: float = param(0.36833, doc="prefactor, down direction", source=_AIHWKIT)
    dw_min_std_add: float = param(0.0, ge=0.0, doc="additive c2c noise term (x units)",
                                  source=_AIHWKIT)
    dw_min_std_slope: float = param(0.0, ge=0.0, doc="c2c noise growth with |x - x_ref|",
                                    source=_AIHWKIT)

    @classmethod
    def _family_from_aihwkit(cls, family: dict[str, Any], r: float) -> dict[str, Any]:
        out: dict[str, Any] = {k: family.pop(k) for k in ("a", "b", "gamma_up", "gamma_down",
                                                          "A_up", "A_down", "dw_min_std_slope")
                               if k in family}
        if "dw_min_std_add" in family:
            out["dw_min_std_add"] = family.pop("dw_min_std_add") / r
        return out | super()._family_from_aihwkit(family, r)

    def _mean_step(self, x: Tensor, up: Tensor, latents: dict[str, Tensor]) -> Tensor:
        z = 2.0 * self.a * (x - self.x_ref) / self._width(latents) + self.b
        y_up = 1.0 - self.A_up * torch.exp((self.gamma_up * z).clamp(max=_EXP_MAX))
        y_down = 1.0 - self.A_down * torch.exp((-self.gamma_down * z).clamp(max=_EXP_MAX))
        return torch.where(up, latents["pulse_dw_up"] * y_up.clamp_min(0.0),
                           latents["pulse_dw_down"] * y_down.clamp_min(0.0))

    def _noisy_step(self, mag: Tensor, x: Tensor, scale: Tensor, generator: torch.Generator | None
                    ) -> Tensor:
        if self.dw_min_std == 0.0 or (self.dw_min_std_add == 0.0 and self.dw_min_std_slope == 0.0):
            return super()._noisy_step(mag, x, scale, generator)
        std = self.dw_min_std * (mag + self.dw_min_std_add
                                 + self.dw_min_std_slope * (x - self.x_ref).abs())
        return mag + std * randn(mag, generator)


@dataclass(frozen=True, kw_only=True)
class PowStep(PulseResponse):
    """Power-law step (aihwkit ``PowStepDevice``; Fusi & Abbott, Nat. Neurosci. 10:485 (2007)).

    With ``w = (x_hi - x) / (x_hi - x_lo)`` the relative distance to the upper bound::

        up:   dw_up   * w ** gamma_up
        down: dw_down * (1 - w) ** gamma_down

    so ``dw_min`` is the step at the far bound (not at ``x_ref``). Per cell
    ``gamma_up/down = pow_gamma * (1 +/- beta + pow_gamma_dtod*xi)``, ``beta = pow_up_down +
    pow_up_down_dtod*xi'``, floored at 0. ``pow_gamma = 1`` is the soft-bound shape.
    Noise: multiplicative.
    """

    pow_gamma: float = param(1.0, ge=0.0, doc="exponent of the distance to the bound",
                             source=_AIHWKIT)
    pow_gamma_dtod: float = param(0.1, ge=0.0, doc="device-to-device spread of the exponent "
                                                   "(relative)", source=_AIHWKIT)
    pow_up_down: float = param(0.0, doc="up/down bias of the exponent (relative)",
                               source=_AIHWKIT)
    pow_up_down_dtod: float = param(0.0, ge=0.0, doc="device-to-device spread of the exponent "
                                                     "bias", source=_AIHWKIT)

    @classmethod
    def _family_from_aihwkit(cls, family: dict[str, Any], r: float) -> dict[str, Any]:
        out = {k: family.pop(k) for k in ("pow_gamma", "pow_gamma_dtod", "pow_up_down",
                                          "pow_up_down_dtod") if k in family}
        return out | super()._family_from_aihwkit(family, r)

    def _sample_extra(self, like: Tensor, generator: torch.Generator | None) -> dict[str, Tensor]:
        common = self.pow_gamma_dtod * randn(like, generator) if self.pow_gamma_dtod > 0 else like
        beta = like + self.pow_up_down
        if self.pow_up_down_dtod > 0:
            beta = beta + self.pow_up_down_dtod * randn(like, generator)
        return {"pulse_gamma_up": (self.pow_gamma * (1.0 + beta + common)).clamp_min(0.0),
                "pulse_gamma_down": (self.pow_gamma * (1.0 - beta + common)).clamp_min(0.0)}

    def _mean_step(self, x: Tensor, up: Tensor, latents: dict[str, Tensor]) -> Tensor:
        w = ((latents["pulse_x_hi"] - x) / self._width(latents)).clamp(0.0, 1.0)
        return torch.where(up, latents["pulse_dw_up"] * w ** latents["pulse_gamma_up"],
                           latents["pulse_dw_down"] * (1.0 - w) ** latents["pulse_gamma_down"])
