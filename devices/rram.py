"""Filamentary RRAM (HfOx and related): inference statistics, pulse response, I-V, faults.

:class:`RRAM` is one cell (1T1R) built from three pluggable, cited parts:

- ``inference``: what programming and time do to the conductance
  - :class:`CMOStatistics` — analog CMO/HfOx ReRAM, IBM Zurich (Falcone et al., arXiv 2502.04524
    (2025); Lombardo et al., DRC 2024), as in aihwkit ``ReRamCMONoiseModel`` and its docs
    ``reram_inference.rst`` (device-parameters.md §2.2, §2.4). With ``g`` in uS:
    programming ``sigma = a + b*g_T`` (acceptance range 2 %: a = 0.0112185, b = 0.0112903;
    0.2 %: a = 0.00081107, b = 0.00106879); relaxation of the mean ``-0.08900206*ln(t)`` and a
    spread ``sigma_r = 0.04201137*ln(t) + 0.41183342`` (fitted at 50 uS, independent of G); read
    noise ``sigma_n = 0.0277316*log10(g)*sqrt(ln((t + t_r)/(2 t_r)))`` with g in uS (aihwkit
    works in uS throughout) and t_r = 1 us, the read pulse of the characterisation; programmed
    and mean conductances are clipped to [g_min, g_max] (a read adds its noise after that).
  - :class:`NeuRRAMStatistics` — NeuRRAM chip (Wan et al., Nature 608:504 (2022)), aihwkit
    ``ReRamWan2022NoiseModel``: spread of the conductance around its target, a 4th-order
    polynomial of ``g_T / 40 uS`` at 1 s, 1 day and 2 days; no drift of the mean, no read noise.
  - :class:`MiloStatistics` — HfO2 RRAM programmed with the IGVVA-100 algorithm (Milo et al.,
    IRPS 2021), CrossSim ``RRAM_Milo``: ``sigma = max(4.782321 - 0.009107*G, 0)`` uS, G in uS.
- ``update``: a pulse-response family of :mod:`.pulsed` (soft bounds, exp-step, ...), fitted to
  measured RRAM by aihwkit's presets (Gong et al., Nat. Commun. 9:2102 (2018); Gong & Rasch et
  al., IEDM 2022), device-parameters.md §2.3.
- ``iv``: optional cubic I-V nonlinearity :class:`MiloIV` (Milo et al., IRPS 2021, as fitted by
  CrossSim ``RRAM_Milo``): ``I = G*V + NL2(G)*V**2 + NL3(G)*V**3`` for ``|V| <= 0.5 V``.
- ``read_disturb``: read disturb over many reads, :class:`~memxbar.devices.disturb.
  PowerLawReadDisturb` (Jiang et al., IEEE TED 2021): the filament conductance decays as a
  power law of the accumulated read stress after a transition time that falls double-
  exponentially with the read voltage (:meth:`RRAM.disturb`; None = no read disturb).

Time conventions (t = seconds since programming ended, t = 0 is the programmed state):

- CMO: the fits start at 1 s. The mean shift is ``-0.089*ln(max(t, 1 s))`` uS; the relaxation
  spread grows linearly from 0 at t = 0 to its 1-s value 0.4118 uS, then follows the fit. Each
  cell draws one standard-normal ``relax_z`` at programming, so ``read_mean(t) = clip(g_prog +
  shift(t) + sigma_r(t)*relax_z)`` is deterministic given the state (aihwkit draws afresh at
  every call). Read noise is 0 for ``t <= t_r`` (the log term is clamped at 0), so a read at
  t = 0 returns the programmed state. ``t_r = 1 us`` is a constant of the noise fit
  (``CMOStatistics.read_t_r``, the read pulse of the characterisation), not the array's read
  pulse ``RRAM.read_time`` (9.8 ns, the RRAM survey's median), which sets the read energy and
  latency.
- NeuRRAM: ``sigma(G_T, t)`` is interpolated linearly in ``ln t`` between the three fits, held at
  its 1-s value below 1 s and at its 2-day value beyond 2 days (the 1-day and 2-day fits nearly
  coincide, so the spread has saturated). Programming draws ``g_prog = g_T + sigma(G_T, 1 s)*z1``;
  relaxation adds an independent ``sqrt(sigma(t)**2 - sigma(1 s)**2)*relax_z``, so the spread
  around the target at time t is ``sigma(G_T, t)`` as published. The polynomial is in absolute
  conductance (``x = g_T / 40 uS``), valid for ``g_max <= 40 uS``; unlike aihwkit's intent it
  is not rescaled to other ranges.

Temperature: relaxation (CMO, NeuRRAM) is thermally activated; ``t`` seconds at
``temperature`` T relax as ``a t`` at 300 K, ``a = arrhenius_factor(relaxation_activation_energy,
T)``; E_a = 1.56 eV is an Arrhenius fit to HfOx bake tests at 200-300 C (Lammie et al. 2021,
Fig. 3B: ``benchmarks/physics_published.py``), so 85 C runs about 1.8e4 times the 300 K clock.
The read-noise band stays on the physical clock.

Stuck cells: aihwkit's array presets of Gong & Rasch (IEDM 2022) report 13.48 % (optimised
material) and 9.77 % (baseline HfO2) corrupt devices, which aihwkit pins at a random conductance.
memxbar's fault model has only stuck-ON (g_max) and stuck-OFF (g_min); no ON/OFF split is given in
the sources read, so the presets split the fraction equally.

Pulses move the persistent normalised state (latent ``pulse_x``); a written cell shows it plus
fresh write noise, clipped to the window. d2d pulse latents are drawn at ``program``. A pulsed
NeuRRAM cell's relaxation refers to its new conductance (``t`` counts from the last write).
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import TypedDict

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
    randn,
)
from memxbar.devices.disturb import PowerLawReadDisturb
from memxbar.devices.pulsed import ExpStep, PulseResponse, SoftBounds
from memxbar.errors import ConfigError

uS = 1e-6
ns = 1e-9

_CMO = ("Falcone et al., arXiv 2502.04524 (2025); aihwkit ReRamCMONoiseModel and "
        "docs/source/reram_inference.rst (device-parameters.md §2.2, §2.4)")
_CMO_READ = ("Lombardo et al., DRC 2024, as fitted in aihwkit ReRamCMONoiseModel "
             "(device-parameters.md §2.2)")
_WAN = ("Wan et al., Nature 608:504 (2022); aihwkit ReRamWan2022NoiseModel "
        "(device-parameters.md §2.2)")
_MILO = ("Milo et al., IRPS 2021 (Fig. 4, IGVVA-100); CrossSim RRAM_Milo "
         "(device-parameters.md §2.2)")
_MILO_IV = ("Milo et al., IRPS 2021 (Fig. 1, I-V at 62.5-110 uS); CrossSim RRAM_Milo fit "
            "(device-parameters.md §2.1)")
_GONG18 = ("Gong et al., Nat. Commun. 9:2102 (2018); aihwkit presets/devices.py "
           "(device-parameters.md §2.3)")
_GONG22 = ("Gong & Rasch et al., IEDM 2022; aihwkit presets/devices.py "
           "(device-parameters.md §2.3, §2.5)")
_NEUROSIM = ("NeuroSim TaOx/HfOx preset (W. Wu et al., VLSI 2018), MELISO yaml / MLP_NeuroSim "
             "Cell.cpp (device-parameters.md §2.5)")
_SURVEY = "NVMExplorer RRAM survey, n = 18 (device-parameters.md §2.5)"
_READ_T = ("NVMExplorer RRAM survey (shared/data/surveys/nvm/RRAM.csv): median read time "
           "9.8 ns (n = 9, 3.3 ns - 2 us)")
_READ_V = ("NVMExplorer RRAM survey: read voltage 0.4-0.7 V (n = 4, median 0.65 V); 0.5 V is the "
           "read of Jain et al. ISSCC 2019 (Intel 22FFL, a survey row: '10 ns read @ 0.5 V'), the "
           "measured pair nearest the median read time, and the edge of the Milo I-V fit; "
           "NeuroSim's RRAM presets read at 0.5 V too (device-parameters.md §2.5)")
_LOOP = ("derived from Falcone et al. 2025: the CMO states are set by an identical-pulse "
         "closed loop with a verify read after every pulse (aihwkit reram_inference.rst), and "
         "about 35 pulse-addressable states span 10-90 uS (device-parameters.md §2.1 [S]); a "
         "target uniform over the window lies 35 / 2 = 17.5, i.e. 18, pulses from its edge on "
         "average [D]; the 0.2 % acceptance needs more, not counted (lower bound)")
_LOOP_OTHER = ("the paper's write-verify (NeuRRAM incremental pulses; Milo IGVVA) gives no mean "
               "iteration count in the sources read (NeuRRAM's is in Wan 2022 Extended Data "
               "Fig. 3f, not readable; its chip software, github.com/weierwan/Neurram_48core "
               "python/wupdate_control.py, caps the loop at 30 pulses per direction and 20-50 "
               "iterations); memxbar uses the CMO loop's 18 pulses + 18 verify reads [U]")
_ENERGY = ("derived: NeuroSim 1T1R formula E = V_w^2 * G * t_w at G = g_max "
           "(device-parameters.md §2.5)")

_RETENTION = ("[D] Arrhenius fit here of the time to a 10x rise of the LRS resistance of HfOx "
              "and HfAlOx RRAM baked at 200, 250 and 300 C (Lammie et al., Semicond. Sci. "
              "Technol. 36:065003 (2021) Fig. 3B, github.com/coreylammie/SST-Reproducibility "
              "3B_LRS_{O,Al}_*.csv): 1.56 eV (3x and 5x rises, less well resolved: 1.85 and "
              "1.78 eV; benchmarks/physics_published.py); assumes the vacancy diffusion that "
              "fails the LRS at 200-300 C also sets the analog relaxation (one E_a for "
              "retention and switching: hourglass model, doi:10.1016/j.mee.2017.04.032); "
              "was 1.1 eV, unsourced")

# time anchors of the Wan 2022 fits (s)
_DAY = 86400.0


# ====================================================================== inference statistics
@dataclass(frozen=True, kw_only=True)
class RRAMStatistics(Parametrized, ABC):
    """Programming, relaxation and read-noise statistics of one RRAM technology."""

    @abstractmethod
    def program(self, g_target: Tensor, g_min: float, g_max: float,
                generator: torch.Generator | None) -> tuple[Tensor, dict[str, Tensor]]:
        """Programmed conductance (S) and the per-cell latents later reads need."""

    def mean(self, state: CellState, t: Tensor, g_min: float, g_max: float) -> Tensor:
        """Expected conductance (S) at ``t`` s after programming; default: no change."""
        return state.g

    def std(self, state: CellState, mean: Tensor, t: Tensor, t_read: float) -> Tensor:
        """Read-noise std (S) at ``t`` for cells of mean conductance ``mean``; default: 0."""
        return torch.zeros_like(mean)

    def rewritten(self, state: CellState, g: Tensor, touched: Tensor) -> dict[str, Tensor]:
        """Latents to replace after pulses set the conductance of ``touched`` cells to ``g``."""
        return {}

    def frozen_fraction(self, t: float, t_read: float, conversion_interval: float) -> float:
        """Frozen fraction of the read-noise variance (see :meth:`Device.read_noise_split`);
        default 0 (white, or no read noise)."""
        return 0.0

    def validate(self, device: RRAM) -> None:
        """Raise ``ValueError`` when ``device``'s range lies outside this model's fit."""

    def noise_read_time(self, read_time: float) -> float:
        """Read pulse (s) that sets the read-noise bandwidth: the array's ``read_time`` unless
        the noise fit holds its own."""
        return read_time


@dataclass(frozen=True, kw_only=True)
class CMOStatistics(RRAMStatistics):
    """Analog CMO/HfOx ReRAM (Falcone 2025): linear programming noise, log-time relaxation,
    logarithmic 1/f read noise. Default: 2 % acceptance range of the program-and-verify loop."""

    prog_sigma_offset: float = param(0.0112185391 * uS, unit="S", ge=0.0,
                                     doc="programming-noise std at g = 0 (acceptance 2 %; "
                                         "0.2 %: 0.00081107 uS)", source=_CMO)
    prog_sigma_slope: float = param(0.01129027418, ge=0.0,
                                    doc="programming-noise std per unit g (acceptance 2 %; "
                                        "0.2 %: 0.00106879)", source=_CMO)
    relax_mean_per_ln_t: float = param(-0.08900206 * uS, unit="S",
                                       doc="shift of the mean per unit ln(t / 1 s)", source=_CMO)
    relax_std_per_ln_t: float = param(0.04201137 * uS, unit="S", ge=0.0,
                                      doc="growth of the relaxation spread per unit ln(t / 1 s)",
                                      source=_CMO)
    relax_std_1s: float = param(0.41183342 * uS, unit="S", ge=0.0,
                                doc="relaxation spread at t = 1 s", source=_CMO)
    t_fit: float = param(1.0, unit="s", gt=0.0,
                         doc="start of the relaxation fit; below it the spread ramps from 0",
                         source="memxbar choice (the fit uses ln t, t in s)")
    read_k: float = param(0.0277316483 * uS, unit="S", ge=0.0,
                          doc="read-noise std per decade of g/g_ref at unit log term",
                          source=_CMO_READ)
    read_g_ref: float = param(1.0 * uS, unit="S", gt=0.0,
                              doc="conductance unit inside the read-noise log10 (fit in uS)",
                              source=_CMO_READ)
    read_t_r: float = param(1e-6, unit="s", gt=0.0,
                            doc="t_r of the read-noise fit: the read pulse of the noise "
                                "characterisation (a constant of the fit, not the array's "
                                "read pulse RRAM.read_time)",
                            source=_CMO_READ + "; aihwkit reram_inference.rst: 'characterization "
                            "of the noise was performed using read pulses of 1 us'")

    def noise_read_time(self, read_time: float) -> float:
        return self.read_t_r

    def program(self, g_target: Tensor, g_min: float, g_max: float,
                generator: torch.Generator | None) -> tuple[Tensor, dict[str, Tensor]]:
        sigma = self.prog_sigma_offset + self.prog_sigma_slope * g_target
        g = (g_target + sigma * randn(g_target, generator)).clamp(g_min, g_max)
        return g, {"relax_z": randn(g_target, generator)}

    def relax_shift(self, t: Tensor) -> Tensor:
        """Shift of the mean conductance (S) at ``t`` s (0 for ``t <= t_fit``)."""
        return self.relax_mean_per_ln_t * torch.log(t.clamp_min(self.t_fit) / self.t_fit)

    def relax_std(self, t: Tensor) -> Tensor:
        """Relaxation spread (S) at ``t`` s: the fit above ``t_fit``, a linear ramp below."""
        fit = self.relax_std_1s + self.relax_std_per_ln_t * torch.log(
            t.clamp_min(self.t_fit) / self.t_fit)
        return torch.where(t < self.t_fit, self.relax_std_1s * t / self.t_fit, fit)

    def mean(self, state: CellState, t: Tensor, g_min: float, g_max: float) -> Tensor:
        g = state.g + self.relax_shift(t) + self.relax_std(t) * state.latent["relax_z"]
        return g.clamp(g_min, g_max)

    def std(self, state: CellState, mean: Tensor, t: Tensor, t_read: float) -> Tensor:
        decades = torch.log10(mean.clamp_min(self.read_g_ref) / self.read_g_ref)
        log_term = torch.log((t + t_read) / (2.0 * t_read)).clamp_min(0.0)
        return self.read_k * decades * torch.sqrt(log_term)

    def frozen_fraction(self, t: float, t_read: float, conversion_interval: float) -> float:
        """1/f noise integrated over ``[1/(t + t_r), 1/(2 t_r)]``: the part below ``1 /
        conversion_interval`` is frozen (:func:`memxbar.devices.base.frozen_fraction`)."""
        return frozen_fraction(math.log(max((t + t_read) / (2.0 * t_read), 1.0)),
                               conversion_interval, t_read)


@dataclass(frozen=True, kw_only=True)
class NeuRRAMStatistics(RRAMStatistics):
    """NeuRRAM (Wan 2022): state-dependent spread at 1 s, 1 day, 2 days; no drift of the mean."""

    g_ref: float = param(40.0 * uS, unit="S", gt=0.0,
                         doc="g_max of the fit; the polynomials are in x = g_T / g_ref",
                         source=_WAN)
    coeffs_1s: tuple[float, ...] = param(
        (0.348 * uS, 16.030 * uS, -43.853 * uS, 45.393 * uS, -16.815 * uS), unit="S",
        doc="spread at 1 s, polynomial in x (ascending powers)", source=_WAN)
    coeffs_1d: tuple[float, ...] = param(
        (0.701 * uS, 22.086 * uS, -50.773 * uS, 47.095 * uS, -16.458 * uS), unit="S",
        doc="spread at 1 day, polynomial in x (ascending powers)", source=_WAN)
    coeffs_2d: tuple[float, ...] = param(
        (0.782 * uS, 20.274 * uS, -43.507 * uS, 37.062 * uS, -11.934 * uS), unit="S",
        doc="spread at 2 days, polynomial in x (ascending powers)", source=_WAN)

    def _check(self) -> None:
        for name in ("coeffs_1s", "coeffs_1d", "coeffs_2d"):
            if len(getattr(self, name)) == 0:
                raise ConfigError(f"{type(self).__name__}.{name} must not be empty")

    def validate(self, device: RRAM) -> None:
        if device.g_max > self.g_ref * (1 + 1e-9):
            raise ConfigError(f"{type(device).__name__}: g_max = {device.g_max:.4g} S exceeds "
                             f"the NeuRRAM fit range (g <= {self.g_ref:.4g} S)")

    def sigma(self, g_target: Tensor, t: float | Tensor) -> Tensor:
        """Spread (S) of cells with target ``g_target`` around it at ``t`` s (see module doc)."""
        x = g_target / self.g_ref
        s = [_polyval(c, x).clamp_min(0.0) for c in (self.coeffs_1s, self.coeffs_1d,
                                                     self.coeffs_2d)]
        lt = torch.log(torch.as_tensor(t, dtype=g_target.dtype, device=g_target.device)
                       .clamp(1.0, 2 * _DAY))
        w1 = (lt / math.log(_DAY)).clamp(0.0, 1.0)
        w2 = ((lt - math.log(_DAY)) / math.log(2.0)).clamp(0.0, 1.0)
        return torch.where(lt <= math.log(_DAY), s[0] + w1 * (s[1] - s[0]),
                           s[1] + w2 * (s[2] - s[1]))

    def program(self, g_target: Tensor, g_min: float, g_max: float,
                generator: torch.Generator | None) -> tuple[Tensor, dict[str, Tensor]]:
        g = (g_target + self.sigma(g_target, 1.0) * randn(g_target, generator)).clamp_min(0.0)
        return g, {"g_target": g_target.clone(), "relax_z": randn(g_target, generator)}

    def mean(self, state: CellState, t: Tensor, g_min: float, g_max: float) -> Tensor:
        g_t = state.latent["g_target"]
        extra = (self.sigma(g_t, t) ** 2 - self.sigma(g_t, 1.0) ** 2).clamp_min(0.0).sqrt()
        return (state.g + extra * state.latent["relax_z"]).clamp_min(0.0)

    def rewritten(self, state: CellState, g: Tensor, touched: Tensor) -> dict[str, Tensor]:
        return {"g_target": torch.where(touched, g, state.latent["g_target"])}


@dataclass(frozen=True, kw_only=True)
class MiloStatistics(RRAMStatistics):
    """HfO2 RRAM with IGVVA-100 programming (Milo 2021): programming noise only."""

    prog_sigma_offset: float = param(4.782321 * uS, unit="S", ge=0.0,
                                     doc="programming-noise std extrapolated to g = 0",
                                     source=_MILO)
    prog_sigma_slope: float = param(-0.009107, doc="programming-noise std per unit g",
                                    source=_MILO)
    g_fit_min: float = param(50.0 * uS, unit="S", ge=0.0, doc="lowest conductance of the fit",
                             source=_MILO)
    g_fit_max: float = param(225.0 * uS, unit="S", gt=0.0, doc="highest conductance of the fit",
                             source=_MILO)

    def validate(self, device: RRAM) -> None:
        _check_window(device, self.g_fit_min, self.g_fit_max, "Milo programming-noise fit")

    def program(self, g_target: Tensor, g_min: float, g_max: float,
                generator: torch.Generator | None) -> tuple[Tensor, dict[str, Tensor]]:
        sigma = (self.prog_sigma_offset + self.prog_sigma_slope * g_target).clamp_min(0.0)
        return (g_target + sigma * randn(g_target, generator)).clamp_min(0.0), {}


# ====================================================================== I-V nonlinearity
@dataclass(frozen=True, kw_only=True)
class MiloIV(Parametrized):
    """Cubic I-V of HfO2 RRAM (Milo 2021): ``I = G*V + NL2(G)*V**2 + NL3(G)*V**3``.

    ``NL2``, ``NL3`` are polynomials of ``L = log10(G / 1 S)`` fitted by CrossSim to the I-V
    curves at 62.5, 76.2, 93.9 and 110 uS plus an assumed linear point (NL = 0) at 225 uS.
    Outside ``[g_lo, g_hi]`` the coefficients are taken at the nearest end, and below ``g_lo``
    scaled by ``G / g_lo`` so that a zero-conductance cell carries no current (memxbar choice).
    """

    nl2_coeffs: tuple[float, ...] = param((7.063e-3, 5.711e-3, 1.541e-3, 1.388e-4),
                                          unit="A/V^2",
                                          doc="NL2 polynomial in log10(G/S), ascending powers",
                                          source=_MILO_IV)
    nl3_coeffs: tuple[float, ...] = param((1.2968e-3, 6.7919e-4, 8.871e-5), unit="A/V^3",
                                          doc="NL3 polynomial in log10(G/S), ascending powers",
                                          source=_MILO_IV)
    g_lo: float = param(50.0 * uS, unit="S", gt=0.0, doc="lowest conductance of the fit",
                        source=_MILO_IV)
    g_hi: float = param(225.0 * uS, unit="S", gt=0.0, doc="highest conductance of the fit",
                        source=_MILO_IV)
    v_max: float = param(0.5, unit="V", gt=0.0, doc="largest |V| of the fit", source=_MILO_IV)

    def _check(self) -> None:
        if not self.g_lo < self.g_hi:
            raise ConfigError(f"MiloIV: g_lo = {self.g_lo} S must be below g_hi = {self.g_hi} S")
        if not self.nl2_coeffs or not self.nl3_coeffs:
            raise ConfigError("MiloIV: nl2_coeffs and nl3_coeffs must not be empty")

    def coefficients(self, g: Tensor) -> tuple[Tensor, Tensor]:
        """``(NL2, NL3)`` in A/V^2 and A/V^3 for conductances ``g`` (S)."""
        gc = g.clamp(self.g_lo, self.g_hi)
        lg = torch.log10(gc)
        shrink = (g.clamp_min(0.0) / self.g_lo).clamp_max(1.0)
        return _polyval(self.nl2_coeffs, lg) * shrink, _polyval(self.nl3_coeffs, lg) * shrink

    def current(self, g: Tensor, v: Tensor) -> Tensor:
        """Current (A) at voltage ``v`` (V, ``|v| <= v_max``) for low-field conductance ``g``."""
        v = torch.as_tensor(v, dtype=g.dtype, device=g.device)
        vmax = float(v.detach().abs().max()) if v.numel() else 0.0
        if vmax > self.v_max * (1 + 1e-6):
            raise ConfigError(f"MiloIV.current: |V| up to {vmax:.4g} V exceeds "
                             f"the fitted range |V| <= {self.v_max} V")
        nl2, nl3 = self.coefficients(g)
        return g * v + nl2 * v * v + nl3 * v * v * v

    def slope(self, g: Tensor, v: Tensor) -> Tensor:
        """Differential conductance ``dI/dV = G + 2 NL2 V + 3 NL3 V**2`` (S) at ``v`` (V)."""
        v = torch.as_tensor(v, dtype=g.dtype, device=g.device)
        nl2, nl3 = self.coefficients(g)
        return g + 2.0 * nl2 * v + 3.0 * nl3 * v * v


# ====================================================================== device
@dataclass(frozen=True, kw_only=True)
class RRAM(Device):
    """Filamentary RRAM cell (1T1R). Default: CMO/HfOx of Falcone 2025 (2 % acceptance), with
    the soft-bounds pulse response fitted to Gong 2018 HfO2 RRAM (aihwkit ``ReRamSBPresetDevice``).

    The CMO model is the default because it is the only RRAM fit in the sources read that covers
    programming noise, relaxation and read noise of one array; its 8-90 uS window and ~1000-pulse
    soft-bound response are typical of analog filamentary RRAM.
    """

    technology = "rram"
    cell_type = "1T1R"

    g_min: float = param(8e-6, unit="S", ge=0.0, doc="lowest programmable conductance",
                         source=_CMO)
    g_max: float = param(90e-6, unit="S", gt=0.0, doc="highest programmable conductance",
                         source=_CMO)
    read_voltage: float = param(0.5, unit="V", gt=0.0, doc="read voltage applied on a row",
                                source=_READ_V)
    read_time: float = param(9.8e-9, unit="s", gt=0.0,
                             doc="duration of one array read pulse (sets read energy and "
                                 "latency; the CMO noise fit keeps its own t_r)",
                             source=_READ_T)
    write_voltage: float = param(1.5, unit="V", gt=0.0, doc="amplitude of a programming pulse",
                                 source="Falcone et al. 2025 abstract: switching below 1.5 V")
    write_time: float = param(50e-9, unit="s", gt=0.0, doc="duration of one programming pulse",
                              source=_NEUROSIM)
    write_energy: float = param(1.5**2 * 90e-6 * 50e-9, unit="J", ge=0.0,
                                doc="energy of one programming pulse", source=_ENERGY)
    endurance: float = param(1e6, unit="cycles", gt=0.0, doc="write cycles before wear-out",
                             source=_SURVEY + " (median)")
    program_iterations: float = param(
        18.0, ge=1.0, doc="write pulses per cell when it is programmed (mean over targets; one "
                          "per iteration of the closed loop)", source=_LOOP)
    verify_reads: float = param(18.0, ge=0.0, doc="verify reads per programmed cell (one per "
                                "iteration of the closed loop)", source=_LOOP)
    relaxation_activation_energy: float = param(
        1.56, unit="eV", ge=0.0,
        doc="activation energy of conductance relaxation (oxygen-vacancy diffusion in the "
            "filament): t seconds at temperature T relax as arrhenius_factor(E_a, T) * t do "
            "at 300 K",
        source=_RETENTION)
    inference: RRAMStatistics = field(default_factory=CMOStatistics)
    update: PulseResponse = field(default_factory=lambda: _gong2018_sb())
    iv: MiloIV | None = None
    read_disturb: PowerLawReadDisturb | None = field(default_factory=PowerLawReadDisturb)

    def _check(self) -> None:
        super()._check()
        owner = type(self).__name__
        if not isinstance(self.inference, RRAMStatistics):
            raise ConfigError(f"{owner}.inference = {self.inference!r} must be an RRAMStatistics "
                             "(CMOStatistics, NeuRRAMStatistics or MiloStatistics)")
        if not isinstance(self.update, PulseResponse):
            raise ConfigError(f"{owner}.update = {self.update!r} must be a pulsed.PulseResponse "
                             "(SoftBounds, ExpStep, LinearStep or PowStep)")
        if self.iv is not None and not isinstance(self.iv, MiloIV):
            raise ConfigError(f"{owner}.iv = {self.iv!r} must be None or a MiloIV")
        if self.read_disturb is not None and not isinstance(self.read_disturb,
                                                            PowerLawReadDisturb):
            raise ConfigError(f"{owner}.read_disturb = {self.read_disturb!r} must be None or a "
                             "PowerLawReadDisturb")
        self.inference.validate(self)
        if self.iv is not None:
            _check_window(self, self.iv.g_lo, self.iv.g_hi, "Milo I-V fit")
            if self.read_voltage > self.iv.v_max:
                raise ConfigError(f"{owner}: read_voltage = {self.read_voltage} V exceeds the I-V "
                                 f"fit range |V| <= {self.iv.v_max} V")
        if not self.read_current < self.switching_current:
            raise ConfigError(f"{owner}: a read would switch the cell: read current "
                             f"{self.read_current:.4g} A (read_voltage = {self.read_voltage} V at "
                             f"g_max) is not below the switching current "
                             f"{self.switching_current:.4g} A (write_voltage = "
                             f"{self.write_voltage} V at g_max); lower read_voltage or raise "
                             "write_voltage")

    @property
    def read_current(self) -> float:
        """Largest read current (A): a cell at ``g_max`` read at ``read_voltage`` (through the
        cubic I-V when ``iv`` is set)."""
        g = torch.tensor(self.g_max, dtype=torch.float64)
        return float(self.current(g, torch.tensor(self.read_voltage, dtype=torch.float64)))

    @property
    def switching_current(self) -> float:
        """Current (A) of the weakest programming pulse through the same cell: ohmic
        ``write_voltage * g_max``, a lower bound (a filamentary cell's I-V is superlinear).
        Filamentary switching is set by the cell voltage, so a read below it, at the same
        conductance, is below the switching threshold."""
        return self.write_voltage * self.g_max

    # ----------------------------------------------------------------- contract
    def _program(self, g_target: Tensor, generator: torch.Generator | None) -> CellState:
        g, latent = self.inference.program(g_target, self.g_min, self.g_max, generator)
        latent.update(self.update.sample(g, generator))
        latent["pulse_x"] = self._to_x(g)
        return CellState(g, latent)

    @property
    def relaxation_acceleration(self) -> float:
        """How many times faster relaxation runs at ``temperature`` than at 300 K."""
        return arrhenius_factor(self.relaxation_activation_energy, self.temperature)

    def _mean(self, state: CellState, t: Tensor) -> Tensor:
        a = self.relaxation_acceleration
        return self.inference.mean(state, t if a == 1.0 else t * a, self.g_min, self.g_max)

    def _read_noise_split(self, t: float, conversion_interval: float) -> float:
        """Frozen fraction of the read noise: the CMO noise is 1/f (see
        :meth:`CMOStatistics.frozen_fraction`); the other fits have no read noise."""
        return self.inference.frozen_fraction(t, self.inference.noise_read_time(self.read_time),
                                              conversion_interval)

    def _read_std(self, state: CellState, t: Tensor, mean: Tensor) -> Tensor:
        return self.inference.std(state, mean, t, self.inference.noise_read_time(self.read_time))

    def _pulse(self, state: CellState, n: Tensor, generator: torch.Generator | None) -> CellState:
        x = self.update.apply(state.latent["pulse_x"], n, state.latent, generator)
        touched = n != 0
        seen = self.update.observe(x, generator).clamp(0.0, 1.0)
        g = torch.where(touched, self._from_x(seen), state.g)
        latent = {"pulse_x": x, **self.inference.rewritten(state, g, touched)}
        return state.replace(g=g, **latent)

    def disturb(self, state: CellState, reads: float | Tensor, *, voltage: float | None = None,
                generator: torch.Generator | None = None) -> CellState:
        """The cells after ``reads`` reads of ``read_time`` at ``voltage`` (V, default
        ``read_voltage``): the filament conductance above ``g_min`` decays by ``read_disturb``'s
        power law of the accumulated read stress (:mod:`memxbar.devices.disturb`; deterministic,
        ``generator`` unused); ``read_disturb=None``: unchanged. The pulse state follows."""
        if self.read_disturb is None:
            return super().disturb(state, reads, voltage=voltage, generator=generator)
        n, v = self._disturb_args(state, reads, voltage, generator,
                                  f"{type(self).__name__}.disturb")
        out = self.read_disturb.apply(self, state, n, v)
        moved = out.g != state.g
        return out.replace(pulse_x=torch.where(moved, self._to_x(out.g), out.latent["pulse_x"]))

    def current(self, g: Tensor, v: Tensor) -> Tensor:
        """Cell current (A) at ``v`` (V): ohmic, or Milo's cubic I-V when ``iv`` is set."""
        return g * v if self.iv is None else self.iv.current(g, v)

    def slope(self, g: Tensor, v: Tensor) -> Tensor:
        """``dI/dV`` (S) of :meth:`current` at ``v`` (V)."""
        return super().slope(g, v) if self.iv is None else self.iv.slope(g, v)

    @property
    def is_ohmic(self) -> bool:
        """True unless the cubic I-V (``iv``) is enabled."""
        return self.iv is None

    # ----------------------------------------------------------------- helpers
    def _to_x(self, g: Tensor) -> Tensor:
        return (g - self.g_min) / (self.g_max - self.g_min)

    def _from_x(self, x: Tensor) -> Tensor:
        return self.g_min + x * (self.g_max - self.g_min)


def _polyval(coeffs: tuple[float, ...], x: Tensor) -> Tensor:
    """``sum_i coeffs[i] * x**i`` (ascending powers), by Horner's rule."""
    out = torch.zeros_like(x)
    for c in reversed(coeffs):
        out = out * x + c
    return out


def _check_window(device: Device, lo: float, hi: float, what: str) -> None:
    tol = 1e-9 * hi
    if device.g_min < lo - tol or device.g_max > hi + tol:
        raise ConfigError(f"{type(device).__name__}: range [{device.g_min:.4g}, "
                         f"{device.g_max:.4g}] S lies outside the {what} [{lo:.4g}, {hi:.4g}] S")


# ====================================================================== presets
def cmo_statistics(acceptance: float = 0.02) -> CMOStatistics:
    """Falcone 2025 statistics for the program-and-verify acceptance range 0.02 or 0.002."""
    if acceptance == 0.02:
        return CMOStatistics()
    if acceptance == 0.002:
        return CMOStatistics(prog_sigma_offset=0.00081107 * uS, prog_sigma_slope=0.00106879)
    raise ConfigError(f"cmo_statistics: acceptance = {acceptance!r}; fitted values are 0.02 "
                     "(2 %) and 0.002 (0.2 %)")


def _gong2018_sb() -> SoftBounds:
    """aihwkit ReRamSBPresetDevice (loose soft-bounds fit to Gong 2018), in x units."""
    return SoftBounds.from_aihwkit(
        w_min=-0.75, w_max=1.25, dw_min=0.002, up_down=0.0, dw_min_dtod=0.3, up_down_dtod=0.01,
        w_max_dtod=0.3 / 1.25, w_min_dtod=0.3 / 0.75, dw_min_std=3.75, write_noise_std=56.0,
        mult_noise=False)


def _gong2018_es() -> ExpStep:
    """aihwkit ReRamESPresetDevice (exp-step fit to Gong 2018), in x units."""
    return ExpStep.from_aihwkit(
        w_min=-1.0, w_max=1.0, dw_min=0.00135, up_down=0.259359, a=-0.5, b=-0.5, gamma_up=5.0,
        gamma_down=5.0, A_up=-1.18445, A_down=-0.081404, dw_min_dtod=0.2, up_down_dtod=0.05,
        w_max_dtod=0.3, w_min_dtod=0.3, dw_min_std=5.0, write_noise_std=75.0)


def _gong2022(dw_min: float, dw_min_dtod: float, w_max_dtod: float, w_min_dtod: float,
              dw_min_std: float, write_noise_std: float) -> SoftBounds:
    """aihwkit ReRamArray{OM,HfO2}PresetDevice (soft bounds, log-normal step d2d, w in [-1, 1])."""
    return SoftBounds.from_aihwkit(
        w_min=-1.0, w_max=1.0, dw_min=dw_min, up_down=0.0, dw_min_dtod=dw_min_dtod,
        dw_min_dtod_log_normal=True, up_down_dtod=0.01, w_max_dtod=w_max_dtod,
        w_min_dtod=w_min_dtod, dw_min_std=dw_min_std, write_noise_std=write_noise_std,
        mult_noise=False)


class _Costs(TypedDict):
    write_voltage: float
    write_time: float
    write_energy: float


def _costs(v_write: float, g_max: float, t_write: float = 50 * ns) -> _Costs:
    return _Costs(write_voltage=v_write, write_time=t_write,
                  write_energy=v_write**2 * g_max * t_write)


def _falcone(acceptance: float) -> RRAM:
    return RRAM(inference=cmo_statistics(acceptance))


def _wan() -> RRAM:
    return RRAM(g_min=0.0, g_max=40.0 * uS, inference=NeuRRAMStatistics(),
                **_costs(1.6, 40.0 * uS))


def _milo() -> RRAM:
    return RRAM(g_min=50.0 * uS, g_max=225.0 * uS, inference=MiloStatistics(), iv=MiloIV(),
                **_costs(1.6, 225.0 * uS))


def _gong(update: PulseResponse, stuck: float = 0.0) -> RRAM:
    return RRAM(update=update, inference=cmo_statistics(0.02), stuck_on_fraction=stuck / 2,
                stuck_off_fraction=stuck / 2, **_costs(1.6, 90.0 * uS))


_BORROWED = ("; conductance window, inference statistics and read settings borrowed from "
             "rram-falcone2025 (" + _CMO + "), write pulse " + _NEUROSIM + ", endurance "
             + _SURVEY)
_COSTS = ("; read 0.5 V (" + _READ_V + "), 9.8 ns (" + _READ_T + "), write 1.6 V / 50 ns ("
          + _NEUROSIM + "), energy " + _ENERGY + ", endurance " + _SURVEY
          + "; programming loop: " + _LOOP_OTHER)

PRESETS = [
    Preset("rram-falcone2025", "rram", lambda: _falcone(0.02),
           _CMO + "; read noise " + _CMO_READ + "; pulse response " + _GONG18
           + " (ReRamSBPresetDevice); write 1.5 V (Falcone 2025 abstract), 50 ns ("
           + _NEUROSIM + "); " + _ENERGY + "; endurance " + _SURVEY,
           "CMO/HfOx analog ReRAM, 8-90 uS, 2 % program-verify acceptance, log-time relaxation, "
           "1/f read noise; soft-bound pulse response (default RRAM())"),
    Preset("rram-falcone2025-acc0p2", "rram", lambda: _falcone(0.002),
           _CMO + "; otherwise as rram-falcone2025",
           "as rram-falcone2025 with the 0.2 % acceptance range (about 10x lower programming "
           "noise)"),
    Preset("rram-wan2022", "rram", _wan,
           _WAN + "; g_min 0 as aihwkit's SinglePairConductanceConverter; pulse response "
           + _GONG18 + " (ReRamSBPresetDevice)" + _COSTS,
           "NeuRRAM RRAM, 0-40 uS: state-dependent spread at 1 s / 1 day / 2 days (log-time "
           "interpolated), no mean drift, no read noise"),
    Preset("rram-milo2021", "rram", _milo,
           _MILO + "; I-V " + _MILO_IV + "; pulse response " + _GONG18
           + " (ReRamSBPresetDevice)" + _COSTS,
           "HfO2 RRAM, 50-225 uS, IGVVA-100 programming noise, cubic I-V (|V| <= 0.5 V)"),
    Preset("rram-gong2018-es", "rram", lambda: _gong(_gong2018_es()),
           _GONG18 + " (ReRamESPresetDevice)" + _BORROWED,
           "HfO2 RRAM exp-step pulse response: ~1000 steps, up/down asymmetry 0.26, c2c 5x step, "
           "write noise 5 % of range"),
    Preset("rram-gong2018-sb", "rram", lambda: _gong(_gong2018_sb()),
           _GONG18 + " (ReRamSBPresetDevice)" + _BORROWED,
           "HfO2 RRAM soft-bounds pulse response (loose fit): ~1000 steps, write noise 5.6 % of "
           "range"),
    Preset("rram-gong2022-om", "rram",
           lambda: _gong(_gong2022(0.0949, 0.7829, 0.3499, 0.5695, 0.4158, 1.4113), 0.1348),
           _GONG22 + " (ReRamArrayOMPresetDevice, weight range [-1, 1] as shipped; "
           "compliance-adjusted [-0.6192, 1.4839] noted there); 13.48 % corrupt devices split "
           "equally stuck-ON/OFF" + _BORROWED,
           "optimised-material RRAM array: ~21 soft-bound steps, log-normal step d2d 78 %, "
           "13.5 % stuck cells"),
    Preset("rram-gong2022-hfo2", "rram",
           lambda: _gong(_gong2022(0.4622, 0.7125, 0.4295, 0.5990, 0.2174, 0.5841), 0.0977),
           _GONG22 + " (ReRamArrayHfO2PresetDevice, weight range [-1, 1] as shipped; "
           "compliance-adjusted [-1.0284, 1.1490] noted there); 9.77 % corrupt devices split "
           "equally stuck-ON/OFF" + _BORROWED,
           "baseline HfO2 RRAM array: ~4 soft-bound steps, log-normal step d2d 71 %, 9.8 % stuck "
           "cells"),
]
