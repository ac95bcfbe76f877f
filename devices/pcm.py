"""Phase-change memory (GST, mushroom cell): statistical inference model and pulse response.

Inference statistics (Joshi et al., Nat. Commun. 11:2473 (2020); fitted on measured devices by
Nandakumar et al., ICECS 2019; formulas as documented for aihwkit ``PCMLikeNoiseModel``), with
``x = g / g_max`` and the target ``g_T``:

- programming:  ``g_prog = max(g_T + sigma_prog(x_T) * xi, 0)``; ``sigma_prog`` is a polynomial
  fitted in uS at a reference ``g_ref`` and scaled by ``g_max / g_ref`` for other ranges;
- drift:        ``nu ~ |N(mu_nu(x_T), sigma_nu(x_T))|`` drawn once per cell (latent ``"nu"``),
  ``G(t) = g_prog * ((t + t0) / t0) ** -nu``, ``t`` = seconds since programming ended, so
  ``t = 0`` is the programmed state (DESIGN.md convention; aihwkit passes ``t_inference + t0``);
- read noise:   ``sigma(t) = G(t) * Q_s(x_prog) * sqrt(ln((T + t_read) / (2 t_read)))``, the 1/f
  noise (PSD ``S_G/G^2 = Q/f``) integrated from ``1/T`` to ``1/(2 t_read)``. ``T = t + t0`` is the
  time since the start of programming measured on the fit's clock (the first read of the fit
  is at ``t0``), so the noise is finite and positive at ``t = 0``; ``t_read`` is the device's
  ``read_time``, so a longer read integrates less bandwidth and is less noisy. ``Q_s`` is taken
  at the programmed conductance ``state.g``, as aihwkit does (``g_prog = g_T`` within
  ``sigma_prog``), which also covers cells whose conductance was set by pulses.

Temperature: drift is structural relaxation, a thermally activated process, so ``t`` seconds
at ``temperature`` T drift as ``a t`` at 300 K (the fit's room temperature), ``a =
arrhenius_factor(drift_activation_energy, T)`` (Ielmini et al., APL 2008); the 1/f noise band
stays on the physical clock. Crystallisation of the amorphous phase (the digital retention
failure, 10 years at 85-110 C; effective E_a 2.34 eV at slow heating, "Effect of heating rate on
the activation energy for crystallization of amorphous Ge2Sb2Te5 thin film", abstract) is
slower than drift at these temperatures and is not modelled. The drift exponent does not
depend on temperature, as measured (nu ~ 0.11 for amorphous GST from RT to 100 C, Wang et al.,
Nat. Mater. 2025); below room temperature the Arrhenius clock suppresses early drift, which
measurements down to 125 K do not show (Khan et al., arXiv, abstract), so PCM refuses a
``temperature`` below :data:`MIN_TEMPERATURE` (25 C, the lowest, room-temperature point of the
drift-exponent data it is checked against) while ``drift_activation_energy > 0``.

The statistics are a pluggable nested parameter group: :class:`JoshiStatistics` (default) or
:class:`HermesStatistics` (IBM HERMES chip, Le Gallo et al., Nat. Electron. 2023; one or two
PCM devices per cell).

Pulse response for online training (Nandakumar et al., Front. Neurosci. 14:406 (2020), as the
aihwkit ``PCMPresetDevice`` ExpStep fit), in normalised units ``x = (g - g_min)/(g_max - g_min)``
(the preset's weight range ``w in [0, 2]`` is ``x = w / 2``): each SET pulse crystallises a little,

    dx = dx_min * s_i * max(1 - A * exp(gamma * (2 a x + b)), 0)
    x <- clip(x + dx + dx_std * (|dx| + dx_std_add + dx_std_slope * x) * xi, 0, x_sat_i)

(gradual, shrinking steps, saturating at the per-cell bound ``x_sat_i``), while any depression
request is one RESET that re-amorphises the cell to ``clip(x_reset_i + reset_std * xi, 0,
x_sat_i)``, near ``g_min``. ``s_i``, ``x_reset_i``, ``x_sat_i`` are device-to-device latents drawn
at :meth:`PCM.program`. A pulsed cell is re-written: its drift exponent is redrawn for its new
conductance and its drift clock restarts (``t`` counts from the last write).
"""

from __future__ import annotations

import functools
import math
from abc import ABC, abstractmethod
from dataclasses import dataclass, field

import torch
from torch import Tensor

from memxbar.devices.base import (
    CellState,
    Device,
    Parametrized,
    Preset,
    arrhenius_factor,
    frozen_fraction,
    param,
    pulse_train,
    randn,
    resolve_generator,
)
from memxbar.errors import ConfigError

_LOOP = ("the statistics are those of closed-loop iterative write-read-verify programming "
         "(aihwkit pcm_inference.rst, after Papandreou et al., ISCAS 2011; HERMES: Le Gallo et "
         "al. 2023), whose mean iteration count is not given in the sources read; memxbar uses "
         "the count derived for the CMO RRAM loop (18 pulses, one verify read each, "
         "devices/rram.py) [U]")
_X_FLOOR = 1e-7  # normalised-conductance floor before logs and powers (aihwkit uses 1e-7 too)
MIN_TEMPERATURE = 298.15
"""Lowest temperature (K, 25 C) of a drifting PCM: the room-temperature point of the drift
exponent data (nu ~ 0.11 from RT to 100 C, Wang et al., Nat. Mater. 2025) that
benchmarks/physics_published.py checks the model against at 25 C and 85 C."""
_JOSHI = "Joshi et al., Nat. Commun. 11:2473 (2020); aihwkit inference/noise/pcm.py"
_HERMES = ("Le Gallo et al., Nat. Electron. 6:680 (2023); aihwkit inference/noise/hermes.py "
           "(device-parameters.md §3.2)")
_NANDA = ("Nandakumar et al., Front. Neurosci. 14:406 (2020); aihwkit PCMPresetDevice "
          "(device-parameters.md §3.3)")
_SURVEY = "NVMExplorer PCM survey, shared/data/surveys/nvm/PCM.csv"
_IELMINI = ("Ielmini, Lavizzari, Sharma & Lacaita, Appl. Phys. Lett. 92:193511 (2008): structural "
            "relaxation of amorphous GST is thermally activated (Arrhenius time-temperature "
            "acceleration of drift)")


def _polyval(coeffs: tuple[float, ...], x: Tensor) -> Tensor:
    """``sum_i coeffs[i] * x**i`` (ascending powers), by Horner's rule."""
    if len(coeffs) == 1:
        return torch.full_like(x, coeffs[0])
    out = torch.mul(x, coeffs[-1]).add_(coeffs[-2])
    for c in reversed(coeffs[:-2]):
        out = out.mul_(x).add_(c)
    return out


def _clipped_log(x: Tensor, slope_offset: tuple[float, float],
                 lo_hi: tuple[float, float]) -> Tensor:
    """``clip(slope * ln x + offset, lo, hi)``."""
    return _linear_clip(torch.clamp_min(x, _X_FLOOR).log_(), slope_offset, lo_hi)


def _linear_clip(ln: Tensor, slope_offset: tuple[float, float],
                 lo_hi: tuple[float, float]) -> Tensor:
    """``clip(slope * ln + offset, lo, hi)`` for a given ``ln = ln x``."""
    slope, offset = slope_offset
    return torch.mul(ln, slope).add_(offset).clamp_(*lo_hi)


@functools.lru_cache(maxsize=64)
def _number_on(v: float, dtype: torch.dtype, device: torch.device) -> Tensor:
    return torch.tensor(v, dtype=dtype, device=device)


def _number(v: float, like: Tensor) -> Tensor:
    """``v`` as a 0-d tensor of ``like``'s dtype and device (made once), for ``torch.add(c, x,
    alpha=a)``: ``c + a x`` in one pass."""
    return _number_on(v, like.dtype, like.device)


def _log2(v: float) -> float:
    """``log2(v)``, ``-inf`` for ``v <= 0`` (``2**-inf = 0``)."""
    return math.log2(v) if v > 0.0 else -math.inf


def _check_pair(owner: str, name: str, value: tuple, ordered: bool = False) -> None:
    if len(value) != 2:
        raise ConfigError(f"{owner}.{name} = {value!r} must have 2 entries")
    if ordered and not value[0] <= value[1]:
        raise ConfigError(f"{owner}.{name} = {value!r} must be (lower, upper) with lower <= upper")


# ------------------------------------------------------------------- inference statistics
@dataclass(frozen=True, kw_only=True)
class PCMStatistics(Parametrized, ABC):
    """Measured programming, drift and read-noise statistics of one PCM technology.

    Subclasses give ``nu_mean``, ``nu_std`` and ``q_s`` as functions of ``x = g / g_max``.
    """

    g_ref: float = param(25e-6, unit="S", gt=0.0,
                         doc="g_max at which the programming-noise polynomial was fitted",
                         source=_JOSHI)
    t0: float = param(20.0, unit="s", gt=0.0, doc="drift reference time (first read of the fit)",
                      source=_JOSHI)
    prog_coeffs: tuple[float, ...] = param(
        (0.26348e-6, 1.9650e-6, -1.1731e-6), unit="S",
        doc="sigma_prog polynomial in x, ascending powers, at g_max = g_ref", source=_JOSHI)

    def _check(self) -> None:
        if len(self.prog_coeffs) == 0:
            raise ConfigError(f"{type(self).__name__}.prog_coeffs must not be empty")

    def sigma_prog(self, x: Tensor, g_max: float) -> Tensor:
        """Programming-noise std (S) at target ``x = g_T / g_max`` for a device of ``g_max``."""
        k = g_max / self.g_ref
        return _polyval(tuple(c * k for c in self.prog_coeffs), x).clamp_min_(0.0)

    def nu_params(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """``(nu_mean(x), nu_std(x))``; subclasses may share work between the two."""
        return self.nu_mean(x), self.nu_std(x)

    def programming(self, g: Tensor, g_max: float) -> tuple[Tensor, Tensor, Tensor]:
        """``(sigma_prog, nu_mean, nu_std)`` at targets ``g`` (S) of a device of ``g_max``;
        subclasses may compute them from ``g`` directly."""
        x = g / g_max
        return (self.sigma_prog(x, g_max), *self.nu_params(x))

    @abstractmethod
    def nu_mean(self, x: Tensor) -> Tensor:
        """Mean of the drift exponent before folding, at ``x = g_T / g_max``."""

    @abstractmethod
    def nu_std(self, x: Tensor) -> Tensor:
        """Std of the drift exponent before folding, at ``x = g_T / g_max``."""

    @abstractmethod
    def q_s(self, x: Tensor) -> Tensor:
        """1/f read-noise amplitude (relative, dimensionless) at ``x = g / g_max``."""

    def noise_amplitude(self, g: Tensor, g_max: float, scale: float) -> Tensor:
        """``scale * q_s(g / g_max)`` for conductances ``g`` (S) of a device of ``g_max``: the
        relative read-noise std at one bandwidth factor ``scale`` (a new tensor)."""
        return self.q_s(g / g_max).mul_(scale)


@dataclass(frozen=True, kw_only=True)
class JoshiStatistics(PCMStatistics):
    """Joshi et al. 2020 fit (reference g_max 25 uS, t0 = 20 s)."""

    nu_mean_log: tuple[float, float] = param(
        (-0.0155, 0.0244), doc="mu_nu = clip(slope*ln x + offset): (slope, offset)",
        source=_JOSHI)
    nu_mean_clip: tuple[float, float] = param((0.049, 0.1), ge=0.0, doc="mu_nu clip (lo, hi)",
                                              source=_JOSHI)
    nu_std_log: tuple[float, float] = param(
        (-0.0125, -0.0059), doc="sigma_nu = clip(slope*ln x + offset): (slope, offset)",
        source=_JOSHI)
    nu_std_clip: tuple[float, float] = param((0.008, 0.045), ge=0.0,
                                             doc="sigma_nu clip (lo, hi)", source=_JOSHI)
    q_s_scale: float = param(0.0088, ge=0.0, doc="Q_s = min(scale / x**exponent, max)",
                             source=_JOSHI)
    q_s_exponent: float = param(0.65, ge=0.0, doc="Q_s power-law exponent", source=_JOSHI)
    q_s_max: float = param(0.2, ge=0.0, doc="Q_s ceiling", source=_JOSHI)

    def _check(self) -> None:
        super()._check()
        owner = type(self).__name__
        for name in ("nu_mean_log", "nu_std_log"):
            _check_pair(owner, name, getattr(self, name))
        for name in ("nu_mean_clip", "nu_std_clip"):
            _check_pair(owner, name, getattr(self, name), ordered=True)

    def nu_mean(self, x: Tensor) -> Tensor:
        return _clipped_log(x, self.nu_mean_log, self.nu_mean_clip)

    def nu_std(self, x: Tensor) -> Tensor:
        return _clipped_log(x, self.nu_std_log, self.nu_std_clip)

    def nu_params(self, x: Tensor) -> tuple[Tensor, Tensor]:
        ln = torch.clamp_min(x, _X_FLOOR).log_()  # one logarithm for both fits
        mean = _linear_clip(ln, self.nu_mean_log, self.nu_mean_clip)
        slope, offset = self.nu_std_log
        return mean, ln.mul_(slope).add_(offset).clamp_(*self.nu_std_clip)  # ln's memory

    def programming(self, g: Tensor, g_max: float) -> tuple[Tensor, Tensor, Tensor]:
        # in g itself: 1 / g_max folded into the polynomial's coefficients and, as -ln g_max,
        # into the fits' offsets (one pass fewer than x = g / g_max, one fewer per fit)
        k = g_max / self.g_ref
        sigma = _polyval(tuple(c * k / g_max**i for i, c in enumerate(self.prog_coeffs)), g)
        ln = torch.clamp_min(g, _X_FLOOR * g_max).log_()  # ln g = ln x + ln g_max
        l0 = math.log(g_max)
        (a1, b1), (a2, b2) = self.nu_mean_log, self.nu_std_log
        mean = torch.add(_number(b1 - a1 * l0, ln), ln, alpha=a1).clamp_(*self.nu_mean_clip)
        std = ln.mul_(a2).add_(b2 - a2 * l0).clamp_(*self.nu_std_clip)
        return sigma.clamp_min_(0.0), mean, std

    def q_s(self, x: Tensor) -> Tensor:
        # scale * x^-exponent as one exp of a log: a float power costs 2.5x exp + log on CPU
        ln = torch.clamp_min(x, _X_FLOOR).log_().mul_(-self.q_s_exponent)
        log_scale = math.log(self.q_s_scale) if self.q_s_scale > 0 else -math.inf
        return ln.add_(log_scale).exp_().clamp_max_(self.q_s_max)

    def noise_amplitude(self, g: Tensor, g_max: float, scale: float) -> Tensor:
        # scale * min(s x^-e, q_max) = 2^min(log2(scale s) - e log2 x, log2(scale q_max)): one
        # log2 and one exp2 (exp2 costs half an exp on CPU), the scale and 1 / g_max folded in
        e = self.q_s_exponent
        c = _log2(scale * self.q_s_scale) + e * math.log2(g_max)
        lg = torch.clamp_min(g, _X_FLOOR * g_max).log2_()
        y = torch.add(_number(c, lg), lg, alpha=-e)
        return y.clamp_max_(_log2(scale * self.q_s_max)).exp2_()


@dataclass(frozen=True, kw_only=True)
class HermesStatistics(PCMStatistics):
    """IBM HERMES chip fit: clipped log below a breakpoint, polynomial above.

    Defaults are the one-device-per-weight fit (g_max 10.35 uS, t0 = 200 s);
    :meth:`two_devices` gives the two-devices-per-weight (MSF programming) fit.
    """

    g_ref: float = param(10.35e-6, unit="S", gt=0.0,
                         doc="g_max at which the programming-noise polynomial was fitted",
                         source=_HERMES)
    t0: float = param(200.0, unit="s", gt=0.0, doc="drift reference time (first read of the fit)",
                      source=_HERMES)
    prog_coeffs: tuple[float, ...] = param(
        (0.15781817e-6, 2.32443916e-6, -2.16310839e-6, 0.68841818e-6), unit="S",
        doc="sigma_prog polynomial in x, ascending powers, at g_max = g_ref", source=_HERMES)
    nu_mean_break: float = param(0.0945, ge=0.0, doc="x below which mu_nu is the log branch",
                                 source=_HERMES)
    nu_mean_log: tuple[float, float] = param((-0.0387, -0.0182), doc="mu_nu log branch "
                                             "(slope, offset)", source=_HERMES)
    nu_mean_clip: tuple[float, float] = param((0.072, 0.13), ge=0.0, doc="mu_nu log-branch clip",
                                              source=_HERMES)
    nu_mean_poly: tuple[float, ...] = param((0.0736, -0.0126, -0.0436), doc="mu_nu polynomial "
                                            "branch, ascending powers", source=_HERMES)
    nu_std_break: float = param(0.3039, ge=0.0, doc="x below which sigma_nu is the log branch",
                                source=_HERMES)
    nu_std_log: tuple[float, float] = param((-0.0120, -0.0023), doc="sigma_nu log branch "
                                            "(slope, offset)", source=_HERMES)
    nu_std_clip: tuple[float, float] = param((0.0124, 0.04), ge=0.0,
                                             doc="sigma_nu log-branch clip", source=_HERMES)
    nu_std_poly: tuple[float, ...] = param((0.0104, 0.0116, -0.0165), doc="sigma_nu polynomial "
                                           "branch, ascending powers", source=_HERMES)
    q_s_break: float = param(0.1591, ge=0.0, doc="x below which Q_s is the log branch",
                             source=_HERMES)
    q_s_log: tuple[float, float] = param((-0.0078, 0.0038), doc="Q_s log branch (slope, offset)",
                                         source=_HERMES)
    q_s_clip: tuple[float, float] = param((0.0179, 0.04), ge=0.0, doc="Q_s log-branch clip",
                                          source=_HERMES)
    q_s_poly: tuple[float, ...] = param((0.0088, 0.0768, -0.1352, 0.0664), doc="Q_s polynomial "
                                        "branch, ascending powers", source=_HERMES)

    @classmethod
    def two_devices(cls) -> HermesStatistics:
        """Two PCM devices per weight, MSF programming (Vasilopoulos et al., TED 2023)."""
        return cls(g_ref=20.7e-6, t0=300.0,
                   prog_coeffs=(0.16603222e-6, 4.71806468e-6, -8.48101252e-6,
                                4.68961419e-6),
                   nu_std_break=0.3055, nu_std_log=(-0.0117, -0.0057), nu_std_clip=(0.0091, 0.04),
                   nu_std_poly=(0.0073, 0.0093, -0.0118),
                   q_s_break=0.16, q_s_log=(-0.0117, -0.0069), q_s_clip=(0.015, 0.04),
                   q_s_poly=(0.0123, 0.0211, -0.0280, 0.0069))

    def _check(self) -> None:
        super()._check()
        owner = type(self).__name__
        for part in ("nu_mean", "nu_std", "q_s"):
            _check_pair(owner, f"{part}_log", getattr(self, f"{part}_log"))
            _check_pair(owner, f"{part}_clip", getattr(self, f"{part}_clip"), ordered=True)
            if len(getattr(self, f"{part}_poly")) == 0:
                raise ConfigError(f"{owner}.{part}_poly must not be empty")

    def _piecewise(self, part: str, x: Tensor) -> Tensor:
        low = _clipped_log(x, getattr(self, f"{part}_log"), getattr(self, f"{part}_clip"))
        high = _polyval(getattr(self, f"{part}_poly"), x)
        return torch.where(x < getattr(self, f"{part}_break"), low, high)

    def nu_mean(self, x: Tensor) -> Tensor:
        return self._piecewise("nu_mean", x)

    def nu_std(self, x: Tensor) -> Tensor:
        return self._piecewise("nu_std", x).clamp_min(0.0)

    def q_s(self, x: Tensor) -> Tensor:
        return self._piecewise("q_s", x).clamp_min(0.0)


# ------------------------------------------------------------------- pulse response
@dataclass(frozen=True, kw_only=True)
class PCMPulseResponse(Parametrized):
    """Uni-directional PCM update: gradual SET steps (ExpStep), abrupt RESET.

    All quantities are in ``x = (g - g_min)/(g_max - g_min)``; the source preset's weight range
    is ``w in [0, 2]``, so its absolute numbers are halved here.
    """

    dx_min: float = param(0.005, gt=0.0, doc="step scale (preset dw_min 0.01 on w in [0, 2])",
                          source=_NANDA)
    a: float = param(-1.0, doc="ExpStep a: z = 2*a*x + b", source=_NANDA)
    b: float = param(0.0, doc="ExpStep b", source=_NANDA)
    gamma: float = param(2.5, doc="ExpStep gamma_up", source=_NANDA)
    A: float = param(-27.235, doc="ExpStep A_up: dx = dx_min*max(1 - A*exp(gamma*z), 0)",
                     source=_NANDA)
    dx_min_dtod: float = param(0.2, ge=0.0, doc="device-to-device relative spread of dx_min",
                               source=_NANDA)
    dx_std: float = param(0.6, ge=0.0, doc="cycle-to-cycle noise factor (dw_min_std)",
                          source=_NANDA)
    dx_std_add: float = param(0.021, ge=0.0, doc="additive c2c noise term (0.042 on w / 2)",
                              source=_NANDA)
    dx_std_slope: float = param(0.108, ge=0.0, doc="c2c noise growth with x (dw_min_std_slope)",
                                source=_NANDA)
    x_max_dtod: float = param(0.1, ge=0.0, doc="device-to-device relative spread of the "
                              "saturation bound (w_max_dtod)", source=_NANDA)
    reset: float = param(0.005, doc="mean RESET level (0.01 on w / 2)", source=_NANDA)
    reset_dtod: float = param(0.01, ge=0.0, doc="device-to-device spread of the RESET level "
                              "(0.02 on w / 2)", source=_NANDA)
    reset_std: float = param(0.005, ge=0.0, doc="cycle-to-cycle spread of each RESET (aihwkit "
                             "PulsedDevice default 0.01 on w / 2)", source=_NANDA)

    def sample(self, like: Tensor, generator: torch.Generator | None) -> dict[str, Tensor]:
        """Device-to-device latents: step scale, RESET level, saturation bound (normalised)."""
        generator = resolve_generator(generator, like)
        return {
            "dx_scale": (1.0 + self.dx_min_dtod * randn(like, generator)).clamp_min(0.0),
            "x_reset": self.reset + self.reset_dtod * randn(like, generator),
            "x_sat": (1.0 + self.x_max_dtod * randn(like, generator)).clamp_min(0.0),
        }

    def mean_step(self, x: Tensor, scale: Tensor) -> Tensor:
        """Expected SET step (normalised) at ``x`` for per-cell step scale ``scale``."""
        y = 1.0 - self.A * torch.exp(self.gamma * (2.0 * self.a * x + self.b))
        return self.dx_min * scale * y.clamp_min(0.0)

    def step_std(self, x: Tensor, dx: Tensor) -> Tensor:
        """Cycle-to-cycle std (normalised) of one SET step of mean ``dx`` at ``x``."""
        return self.dx_std * (dx.abs() + self.dx_std_add + self.dx_std_slope * x.abs())


# ------------------------------------------------------------------- device
@dataclass(frozen=True, kw_only=True)
class PCM(Device):
    """GST phase-change memory cell (default: Joshi et al. 2020 statistics, 0-25 uS).

    ``g_min`` is 0: Joshi's differential mapping programs the unused device of a pair to a 0 uS
    target (its RESET state), and the fit's ``sigma_prog(0) = 0.26 uS`` already describes where
    such a cell lands; a non-zero ``g_min`` (CrossSim uses 0.25 uS for an on/off ratio of 100)
    only narrows the usable range.
    """

    technology = "pcm"
    cell_type = "1T1R"

    g_min: float = param(0.0, unit="S", ge=0.0, doc="lowest programmable conductance (RESET)",
                         source=_JOSHI + ": unused device of a pair programmed to 0")
    g_max: float = param(25e-6, unit="S", gt=0.0, doc="highest programmable conductance",
                         source=_JOSHI + ": g_max = 25 uS (HERMES presets: 10.35, 20.7 uS)")
    statistics: PCMStatistics = field(default_factory=JoshiStatistics)
    pulse_response: PCMPulseResponse = field(default_factory=PCMPulseResponse)
    read_voltage: float = param(0.2, unit="V", gt=0.0, doc="read voltage applied on a row",
                                source="[U] sub-threshold analog PCM read; the survey's one "
                                "value (1.0 V, digital read) is too close to threshold switching")
    read_time: float = param(250e-9, unit="s", gt=0.0,
                             doc="read (integration) time; sets the 1/f noise bandwidth",
                             source=_JOSHI + ": t_read = 250 ns (HERMES presets: 512 ns)")
    write_voltage: float = param(2.05, unit="V", gt=0.0, doc="SET (potentiation) pulse amplitude",
                                 source=_SURVEY + ": median SET voltage (n = 2: 0.4, 3.7 V)")
    write_time: float = param(100e-9, unit="s", gt=0.0, doc="SET pulse duration",
                              source=_SURVEY + ": median SET time (n = 11)")
    write_energy: float = param(12.3e-12, unit="J", ge=0.0,
                                doc="energy of one SET pulse, V_set * I_set * t_set",
                                source=_SURVEY + ": medians 2.05 V x 60 uA (n = 7) x 100 ns "
                                "[derived]")
    endurance: float = param(1e8, unit="cycles", gt=0.0, doc="write cycles before wear-out",
                             source=_SURVEY + ": median endurance (n = 13)")
    program_iterations: float = param(
        18.0, ge=1.0, doc="write pulses per device when it is programmed (mean over targets; one "
                          "per iteration of the closed loop)", source=_LOOP)
    verify_reads: float = param(18.0, ge=0.0, doc="verify reads per programmed device (one per "
                                "iteration of the closed loop)", source=_LOOP)
    drift_activation_energy: float = param(
        1.5, unit="eV", ge=0.0,
        doc="activation energy of the structural relaxation behind drift: t seconds at "
            "temperature T drift as arrhenius_factor(E_a, T) * t do at 300 K",
        source=_IELMINI + "; the 1.5 eV value is a memxbar choice within the 1-2 eV range "
               "reported for GST relaxation, not read from that paper's figures [U]; the "
               "temperature independence of the drift exponent that this Arrhenius clock "
               "implies is checked against amorphous GST, nu ~ 0.11 from RT to 100 C (Wang et "
               "al., Nat. Mater. 2025; benchmarks/physics_published.py), the time shift is not "
               "(no published time-temperature pair in the sources read)")

    def _check(self) -> None:
        super()._check()
        name = type(self).__name__
        if not isinstance(self.statistics, PCMStatistics):
            raise ConfigError(f"{name}.statistics must be a PCMStatistics (JoshiStatistics, "
                             f"HermesStatistics), got {type(self.statistics).__name__}")
        if not isinstance(self.pulse_response, PCMPulseResponse):
            raise ConfigError(f"{name}.pulse_response must be a PCMPulseResponse, got "
                             f"{type(self.pulse_response).__name__}")
        if self.drift_activation_energy > 0.0 and self.temperature < MIN_TEMPERATURE - 1e-9:
            raise ConfigError(f"{name}.temperature = {self.temperature!r} K is not allowed; "
                              f"allowed: >= {MIN_TEMPERATURE} K (25 C) while "
                              "drift_activation_energy > 0: below room temperature the "
                              "Arrhenius drift clock suppresses drift that measurements down "
                              "to 125 K do not show (module doc)")
        if not self.statistics.t0 > self.read_time:
            raise ConfigError(f"{name}: statistics.t0 = {self.statistics.t0} s must exceed "
                             f"read_time = {self.read_time} s (1/f noise bandwidth)")

    # ----------------------------------------------------------------- model
    def _draw_nu(self, g_t: Tensor, generator: torch.Generator | None) -> Tensor:
        """Drift exponents of cells (re)written to ``g_t`` by pulses."""
        mean, std = self.statistics.nu_params(g_t / self.g_max)
        return mean.addcmul_(std, randn(g_t, generator)).abs_()

    def _program(self, g_target: Tensor, generator: torch.Generator | None) -> CellState:
        sigma, mean, std = self.statistics.programming(g_target, self.g_max)
        g = torch.addcmul(g_target, sigma, randn(g_target, generator)).clamp_min_(0.0)
        return CellState(g, {"nu": mean.addcmul_(std, randn(g_target, generator)).abs_()})

    @property
    def drift_acceleration(self) -> float:
        """How many times faster the drift clock runs at ``temperature`` than at 300 K."""
        return arrhenius_factor(self.drift_activation_energy, self.temperature)

    def _mean(self, state: CellState, t: Tensor) -> Tensor:
        t0 = self.statistics.t0 / self.drift_acceleration  # (a t + t0) / t0 = t / (t0 / a) + 1
        # g * ((a t + t0) / t0) ** -nu = g * 2 ** (-nu log2((a t + t0) / t0)): one exp2 of a
        # scaled tensor (a read time for all cells: the factor is one number)
        if _one_time(t):
            y = torch.mul(state.latent["nu"], -math.log1p(float(t) / t0) / math.log(2.0))
        else:
            y = torch.mul(state.latent["nu"], torch.log1p(t / t0).mul_(-1.0 / math.log(2.0)))
        return y.exp2_().mul_(state.g)

    def _read_std(self, state: CellState, t: Tensor, mean: Tensor) -> Tensor:
        # ln(f_max / f_min), f_min = 1 / (t + t0 + t_read), f_max = 1 / (2 t_read); physical
        # time: the noise band does not age with the temperature
        t_read, t0 = self.read_time, self.statistics.t0
        if _one_time(t):
            bandwidth = math.sqrt(math.log((float(t) + t0 + t_read) / (2.0 * t_read)))
            return self.statistics.noise_amplitude(state.g, self.g_max, bandwidth).mul_(mean)
        bandwidth_t = torch.log((t + t0 + t_read) / (2.0 * t_read)).sqrt_()
        return mean * self.statistics.q_s(state.g / self.g_max) * bandwidth_t

    def _read_noise_split(self, t: float, conversion_interval: float) -> float:
        """Frozen fraction of the 1/f read noise: the variance below ``f_c = 1 /
        conversion_interval``, ``ln(f_c / f_min) / ln(f_max / f_min)`` (clipped to [0, 1];
        the band from ``f_c`` to ``f_max`` decorrelates between conversions)."""
        t_read = self.read_time
        total = math.log((t + self.statistics.t0 + t_read) / (2.0 * t_read))
        return frozen_fraction(total, conversion_interval, t_read)

    def _pulse(self, state: CellState, n: Tensor, generator: torch.Generator | None) -> CellState:
        pr = self.pulse_response
        if "nu" not in state.latent:
            raise ConfigError("PCM.pulse: state lacks latents ['nu']; program the cells with "
                             "PCM.program first")
        if not {"dx_scale", "x_reset", "x_sat"} <= state.latent.keys():
            # pulse-response latents are drawn at the first pulse after programming (inference
            # never needs them; they are independent of everything drawn before)
            state = state.replace(**pr.sample(state.g, generator))
        lat = state.latent
        span = self.g_max - self.g_min
        x_sat = lat["x_sat"]
        x = (state.g - self.g_min) / span
        reset = (lat["x_reset"] + pr.reset_std * randn(x, generator)).clamp_min(0.0)
        x = torch.where(n < 0, torch.minimum(reset, x_sat), x)

        def set_pulse(c: dict[str, Tensor]) -> dict[str, Tensor]:
            dx = pr.mean_step(c["x"], c["scale"])
            x_new = c["x"] + dx + pr.step_std(c["x"], dx) * randn(dx, generator)
            return {"x": torch.minimum(x_new.clamp_min(0.0), c["x_sat"])}

        x = pulse_train(n.clamp_min(0), {"x": x, "scale": lat["dx_scale"], "x_sat": x_sat},
                        set_pulse)["x"]
        g = torch.where(n != 0, self.g_min + x * span, state.g)
        nu = torch.where(n != 0, self._draw_nu(g, generator), lat["nu"])
        return state.replace(g=g, nu=nu)


def _one_time(t: Tensor) -> bool:
    """True for one read time (a 0-d CPU tensor) shared by all cells: its factors are numbers."""
    return t.dim() == 0 and t.device.type == "cpu"


# ------------------------------------------------------------------- presets
def _hermes(two_devices: bool) -> PCM:
    stats = HermesStatistics.two_devices() if two_devices else HermesStatistics()
    return PCM(g_max=stats.g_ref, statistics=stats, read_time=512e-9,
               devices_per_cell=2 if two_devices else 1)


PRESETS = [
    Preset("pcm-joshi2020", "pcm", PCM,
           _JOSHI + "; pulse response " + _NANDA + "; costs " + _SURVEY,
           "GST PCM, 0-25 uS, state-dependent programming noise, power-law drift (t0 = 20 s), "
           "1/f read noise; gradual SET, abrupt RESET"),
    Preset("pcm-legallo2023-1dev", "pcm", lambda: _hermes(False),
           _HERMES + " (one device per weight); pulse response " + _NANDA,
           "IBM HERMES chip PCM, one device per weight: 0-10.35 uS, t0 = 200 s, t_read = 512 ns"),
    Preset("pcm-legallo2023-2dev", "pcm", lambda: _hermes(True),
           _HERMES + " (two devices per weight, MSF programming, Vasilopoulos et al. TED 2023); "
           "pulse response " + _NANDA,
           "IBM HERMES chip PCM, two devices per weight as one 0-20.7 uS cell: t0 = 300 s, "
           "t_read = 512 ns; costed as two 1T1R devices per cell (devices_per_cell = 2: area, "
           "programming and verify reads of both)"),
]
