"""Ferroelectric FET (FeFET) cell: multi-domain nucleation-limited switching (Deng, VLSI 2020).

Physics, per cell of ``n_domains`` ferroelectric domains (all formulas in SI units):

* **Switching kinetics (NLS with accumulation).** Domain i has an activation voltage
  ``E_a,i ~ N(ea_mean, ea_std)`` (V; clipped at 0). In the Deng model ``E_a`` is compared with
  the voltage across the ferroelectric layer ``V_FE`` (boltma/Scalable-FeFET ``FeFET.va``:
  ``taus = tauo*exp(pow(r_Ea/|vswitch|, alpha))``, ``vswitch`` the FE voltage in volts), so it
  is an activation *voltage*; across the t_FE = 8 nm film of that model 2.3 V is an activation
  field of 2.9 MV/cm (the MATLAB scripts label it "MV/cm"; the code uses volts). Under a pulse
  of width ``dt`` a domain accumulates ``h_i += dt / tau_i`` with
  ``tau_i = tau0 * exp[(E_a,i/|V_FE|)^alpha]``;
  a domain that has not yet switched switches during the pulse with probability
  ``P = 1 - exp(h_prev^beta - h^beta)`` and its ``h`` restarts at 0. A pulse of the polarity that
  holds a domain in its present state lowers its ``h`` by the same ``dt/tau_i`` (floor 0), as in
  the Deng model. From the erased state, ``k`` identical pulses therefore switch domain i with
  probability ``1 - exp(-(k*dt/tau_i)^beta)``: the classic NLS law with pulse accumulation.
* **Gate to ferroelectric voltage.** ``|V_FE| = fe_coupling * (|V_write| - fe_offset_voltage)``,
  a linear fit (made for this module) of the model's mean switched fraction to the memory-window
  vs pulse-width/amplitude data that calibrates the Deng model (see ``fe_coupling``).
* **Conductance.** ``f = sum_i w_i * s_i`` is the switched polarization fraction (``s_i`` in
  {0, 1}, domain weights ``w_i`` sum to 1; ``w_i`` spread with ``domain_size_std``). The
  polarization shifts the threshold voltage linearly, ``V_T = V_T,erased - f * memory_window``
  (charge-sheet picture: the switched polarization charge adds linearly to the gate charge), and
  the channel conductance at the read bias follows the EKV/ACM-type interpolation
  ``G = G_0 * ln(1 + exp((V_ov0 + f*memory_window)/V_s))`` with ``V_s = SS/ln(10)``: exponential
  in ``V_T`` in subthreshold (G log-linear in f) and linear in ``V_G - V_T`` above threshold (G
  linear in f, MOSFET linear region ``I_D = mu*C*(W/L)*(V_G - V_T)*V_D``). ``G_0`` and the erased
  overdrive ``V_ov0`` (the implicit read gate bias) are solved so that ``G(0) = g_min`` and
  ``G(1) = g_max``. With a wide window (1.5 V) and a 45-100x range the read is mostly above
  threshold and G is nearly linear in f; a window close to ``SS*log10(g_max/g_min)`` gives the
  subthreshold, log-linear limit.
* **Threshold-voltage spread (state-dependent).** Every cell has device-to-device offsets
  drawn when it is programmed and kept: ``vt_d2d ~ N(0, s_n)``, the offset of the narrower
  saturated state, and a memory-window scatter ``vt_window ~ N(0, sqrt(s_w^2 - s_n^2))``, s_n
  and s_w the smaller and the larger of ``vt_sigma_d2d`` (erased state) and
  ``vt_sigma_d2d_programmed`` (fully programmed state). The D2D offset at switched fraction f
  is ``vt_d2d + d(f) * vt_window`` with ``d = 1 - f`` when the erased state is the wider one
  (``d = f`` otherwise): the cell's V_T is that of its narrow state plus its own window times
  the distance from it (erased wider: ``V_T = V_T,prog + (1 - f)(MW + dMW)``, D2D std
  ``sqrt(s_p^2 + (1 - f)^2 (s_e^2 - s_p^2))``: s_e at f = 0, s_p at f = 1). Each cell keeps
  its two standard-normal draws, so a pulse that moves f moves its offset along the same
  line. Why: the window scatters from device to device with the coercive field and film
  thickness (Preisach + MVS Monte Carlo, MDPI Electronics [A]), and measured 28 nm HKMG
  FeFETs are widest erased and narrowest fully programmed (Soliman et al. 2023, Fig. 1g: 44 /
  48 / 38 / <= 16 mV); ``vt_sigma_d2d_programmed = None`` keeps the state-independent offset.
  A cycle-to-cycle offset ``vt_c2c ~ N(0, vt_sigma_c2c)`` is drawn anew by every write
  (program, and each ``pulse`` call that pulses the cell: trapped interface charge differs
  from write to write). The read sees ``G = G_0 * softplus(x0 + m*f - V_off/V_s)``, so the
  spread of G is state-dependent through the read-out curve too: large in subthreshold (low
  G, e.g. +-50 mV is x3.1 / x0.22 at g_min of the default cell), small above threshold. At
  intermediate levels the domain-size scatter of f adds (``domain_size_std``).
* **Programming** (``program``): every cell starts erased (all domains in the high-V_T state) and
  is written to ``k = round(f* * n_domains)`` switched domains, f* being the fraction of the
  target conductance on the nominal read-out curve; this idealises an incremental program pulse
  train stopped at the nominal level (the write does not see the cell's own V_T offset). Which
  ``k`` domains switch follows the NLS law at the write voltage: switching times
  ``t_i = tau_i * (-ln U_i)^(1/beta)`` (exact samples of the NLS distribution) are drawn and the
  first ``k`` switch. Granularity is ``1/n_domains`` of the switched fraction; unequal domain
  sizes (``domain_size_std``) scatter the polarization of the chosen ``k`` domains, and the V_T
  offsets scatter every level, the erased and fully switched ones included.
* **Update pulses.** Identical pulses of ``write_voltage`` (``write_voltage_end = None``), or an
  amplitude-modulated scheme (Dutta et al., Nat. Commun. 2022 and the incremental-amplitude
  analog FeFET synapses before it): a pulse's amplitude rises linearly with the cell's switched
  fraction in the pulse's direction, ``|V| = write_voltage + (write_voltage_end -
  write_voltage) * f_dir`` (``f_dir = f`` to potentiate, ``1 - f`` to depress), so the weaker
  domains switch first and later pulses reach the harder ones instead of saturating.
* **Retention.** Log-time depolarization: ``f(t) = f * (1 - retention_loss_per_decade *
  log10(1 + a_T t / retention_t0))`` (floor 0), stated at 300 K; ``a_T = exp(E_r/k_B (1/300 K
  - 1/T))`` is the Arrhenius acceleration at ``Device.temperature`` with the activation energy
  ``retention_activation_energy``. The erased state is the stable reference.
* **Read noise.** ``sigma_G^2 = (read_noise * G)^2 + q G / (V_read t_read)``: a relative
  channel-noise part (assumption) and the shot-noise floor of a read that integrates
  ``I = G V_read`` for ``t_read`` (``N = I t / q`` electrons, Poisson: ``sigma_I^2 = q I /
  t_read``, i.e. ``2 q I Delta_f`` with the integrator's noise bandwidth ``1 / (2 t_read)``).
* **Write energy** per pulse: ``V^2 (gate_capacitance + wire_capacitance) + 2 P_r A_FE V`` at
  the pulse amplitude ``V`` (``write_voltage``; the mean of the two ends with amplitude
  modulation): gate and word-line charging (NeuroSim) plus the charge of a full polarization
  reversal of the ferroelectric area (an upper bound for partial pulses); derived, not free.

Latents (trailing dim ``n_domains``): ``ea`` (V), ``switched`` (bool), ``h`` (dimensionless NLS
accumulation); ``weight`` (domain weights) only when ``domain_size_std > 0``; per cell:
``vt_d2d``, ``vt_window`` and ``vt_c2c`` (V) when their sigmas are > 0. ``E_a``, ``vt_d2d`` and
``vt_window`` are sampled when a cell is programmed and kept through pulses.

Choices between sources (also in :meth:`FeFET.describe`): the Deng kinetics with NeuroSim's
cell electrical values; the D2D V_T sigmas (erased 43 mV, fully programmed 10 mV) are a fit to
the measured 28 nm HKMG FeFETs of Soliman 2023 Fig. 1g (device-parameters.md has no number),
the C2C sigma (10 mV) an assumption; the 60/64-domain presets take a domain-size spread of
0.2 fitted to the same figure's intermediate states, fefet-deng2020 keeps Deng's 0.27; the
retention activation energy is
the polarization switching barrier of the Heracles HfO2 model; P_r is Deng's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
import torch
from torch import Tensor

from memxbar.devices.base import (
    CellState,
    Device,
    Preset,
    arrhenius_factor,
    param,
    pulse_train,
    randn,
    real_values,
)
from memxbar.errors import ConfigError

_DENG = "Deng et al., VLSI 2020; boltma/Scalable-FeFET FeFET.va/README.md defaults"
_NEUROSIM = "DNN_NeuroSim_V2.1 Param.cpp FeFET cell (memcelltype 3), device-parameters.md §4"
_FIT = ("[D] least-squares fit here of this model's mean switched fraction (Deng E_a, tau0, "
        "alpha, beta) to memory window vs pulse width 50 ns-10 us x gate 2-4.5 V, "
        "boltma/Scalable-FeFET matlab/FeFET/MW_v2_clean_global_short.csv (Deng calibration "
        "data, provenance [U]); rms 0.10 V of a 1.5 V window")
_SOLIMAN = ("Soliman et al., Nat. Commun. 14:6348 (2023), Fig. 1g: V_th histograms of 28 nm HKMG "
            "FeFETs in 4 states, digitised here 44 / 48 / 38 / <= 16 mV erased to fully "
            "programmed (benchmarks/physics_published.py)")
_VT_ERASED = (f"fit to Soliman 2023 Fig. 1g: erased-state std 44 mV = sqrt(43^2 + 10^2), with the "
              f"10 mV C2C sigma; {_SOLIMAN}")
_VT_PROG = (f"fit to Soliman 2023 Fig. 1g: fully programmed std <= 16 mV (an upper bound) allows "
            f"<= 12.5 mV with the 10 mV C2C sigma; 10 mV taken (14 mV in all); window scatter "
            f"from E_C / t_FE dispersion: Preisach+MVS Monte Carlo, MDPI Electronics [A]; "
            f"{_SOLIMAN}")
_VT_C2C = ("assumption inside the tens-of-mV V_T spreads of 28 nm HKMG FeFETs (state-dependent D2D "
           "and C2C conductance spread measured by Manna et al., IEEE TED 71:2963 (2024); no "
           "C2C number in the shared references)")
Q_E = 1.602176634e-19  # elementary charge, C (SI 2019)
EPS0 = 8.8541878128e-12  # vacuum permittivity, F/m (CODATA 2018)
_EPS_FE, _T_FE = 28.0, 8e-9  # Deng 2020 stack: eps_FE 28, t_FE 8 nm
_C_GATE = 2.1717e-18  # F, NeuroSim gateCapFeFET
_WIRE = 0.2e-9 * math.sqrt(12.5) * 22e-9  # F: 0.2 fF/um x pitch of a 12.5 F^2 cell at 22 nm

FRACTION_SLACK = 0.01
"""How far outside [0, 1] a switched fraction given to :meth:`FeFET.conductance` may lie (then
clipped): digitised states and rounding (Soliman et al. 2023 Fig. 1g's fully programmed V_T lies
0.4 % past the 1.5 V window)."""


def _log_softplus(x: float) -> float:
    """ln(ln(1 + e^x)), stable for any real x."""
    return x if x < -30.0 else math.log(math.log1p(math.exp(x)) if x < 30.0 else x)


def _solve_overdrive(m: float, log_ratio: float) -> float:
    """x0 with softplus(x0 + m) / softplus(x0) = exp(log_ratio); needs m > log_ratio > 0."""
    lo, hi = -m - 40.0, 10.0 * m + 10.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if _log_softplus(mid + m) - _log_softplus(mid) > log_ratio:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


@dataclass(frozen=True, kw_only=True)
class FeFET(Device):
    """Multi-domain FeFET synapse (Deng 2020 NLS kinetics); defaults: DNN+NeuroSim FeFET cell."""

    technology = "fefet"
    cell_type = "1FeFET"

    # ---------------------------------------------------------------- cell electrical
    g_min: float = param(1.0 / (240e3 * 100.0), unit="S", gt=0.0,
                         doc="erased-state (high-V_T) conductance at the read bias",
                         source=f"R_on 240 kOhm / on-off 100: {_NEUROSIM}")
    g_max: float = param(1.0 / 240e3, unit="S", gt=0.0,
                         doc="fully switched (low-V_T) conductance at the read bias",
                         source=f"R_on 240 kOhm: {_NEUROSIM}")
    levels: int = param(0, ge=0, integer=True,
                        doc="programmable levels; 0 = continuous (domains still quantize)")
    read_voltage: float = param(0.5, unit="V", gt=0.0, doc="read (drain) voltage",
                                source=_NEUROSIM)
    read_time: float = param(10e-9, unit="s", gt=0.0, doc="read pulse width", source=_NEUROSIM)
    write_voltage: float = param(4.0, unit="V", gt=0.0, doc="gate write pulse amplitude "
                                 "(+ potentiate, - depress)", source=_NEUROSIM)
    write_time: float = param(50e-9, unit="s", gt=0.0, doc="write pulse width", source=_NEUROSIM)
    write_voltage_end: float | None = param(
        None, unit="V", gt=0.0, nullable=True,
        doc="amplitude-modulated updates: pulse amplitude once the cell is fully switched in "
            "the pulse's direction (rises linearly with the switched fraction from "
            "write_voltage); None = identical pulses",
        source="Dutta et al., Nat. Commun. 2022 (amplitude-modulated FeFET update pulses); "
               "None: NeuroSim's identical pulses")
    gate_capacitance: float = param(_C_GATE, unit="F", ge=0.0, doc="FeFET gate capacitance",
                                    source=f"gateCapFeFET: {_NEUROSIM}")
    wire_capacitance: float = param(
        _WIRE, unit="F", ge=0.0, doc="word-line wire capacitance of one cell, charged per write "
                                     "pulse",
        source="[D] 0.2 fF/um (NeuroSim SubArray.cpp wire capacitance) x cell pitch "
               "sqrt(12.5 F^2) at F = 22 nm (1FeFET cell, CostModel.cell_area_1fefet) = "
               "1.56e-17 F")
    remanent_polarization: float = param(0.25, unit="C/m^2", ge=0.0,
                                         doc="remanent polarization P_r of the ferroelectric",
                                         source=f"Pr = 25 uC/cm^2: {_DENG} (NeuroSim: 20)")
    fe_area: float = param(
        _C_GATE * _T_FE / (EPS0 * _EPS_FE), unit="m^2", ge=0.0,
        doc="ferroelectric (gate) area whose polarization a write reverses",
        source="[D] C_gate * t_FE / (eps0 * eps_FE) = 7.0e-17 m^2: NeuroSim's gate capacitance "
               "with Deng's stack (eps_FE 28, t_FE 8 nm)")
    write_energy: float = param(0.0, unit="J", ge=0.0,
                                doc="derived: V^2*(gate_capacitance + wire_capacitance) + "
                                    "2*remanent_polarization*fe_area*V at the pulse amplitude "
                                    "V; a value passed in is replaced",
                                source="gate + wire charging: MLP_NeuroSim Cell.cpp / "
                                       "DNN_NeuroSim_V2.1 FeFET write energy; + polarization "
                                       "reversal charge 2 P_r A (issue 13 item 5)")
    endurance: float = param(1e5, unit="cycles", gt=0.0,
                             doc="characteristic program/erase cycles N_e: the read window is "
                                 "half closed (wear law, devices/endurance.py)",
                             source="Duenkel et al., IEDM 2017 (22 nm FDSOI eFeFET, P/E up to "
                                    "1e5) [A]; 28 nm FeFET eNVM ~1e5 [S]")

    # ---------------------------------------------------------------- NLS switching (Deng 2020)
    n_domains: int = param(20, ge=1, integer=True, doc="ferroelectric domains per cell",
                           source=f"ndom = 20: {_DENG}")
    ea_mean: float = param(2.3, unit="V", gt=0.0,
                           doc="mean domain activation voltage across the FE layer",
                           source=f"a = 2.3 (compared with V_FE in volts): {_DENG}")
    ea_std: float = param(0.4, unit="V", ge=0.0, doc="std of the domain activation voltage",
                          source=f"b = 0.4: {_DENG}")
    tau0: float = param(1.9e-8, unit="s", gt=0.0, doc="NLS attempt time",
                        source=f"tauo = 1.9e-8 s: {_DENG}")
    alpha: float = param(3.0, gt=0.0, doc="field exponent of tau = tau0*exp[(E_a/V)^alpha]",
                         source=f"alpha = 3: {_DENG}")
    beta: float = param(2.0, gt=0.0, doc="NLS (Weibull) exponent of P = 1-exp(h0^b - h^b)",
                        source=f"beta = 2: {_DENG}")
    fe_coupling: float = param(0.95, gt=0.0, le=1.0,
                               doc="dV_FE/dV_gate during a write pulse", source=_FIT)
    fe_offset_voltage: float = param(1.54, unit="V", ge=0.0,
                                     doc="gate voltage not dropped on the FE layer: "
                                         "|V_FE| = fe_coupling*(|V_write| - offset)", source=_FIT)
    domain_size_std: float = param(0.27, ge=0.0,
                                   doc="relative std of the domain linear size (weight = "
                                       "size^2, normalised); gives programming noise",
                                   source="Deng model, FeFET_accumulation.m: domain size "
                                          "spread normrnd(1, 0.27)^2 (get_FE_state.m uses "
                                          "equal weights, 0); fefet-jerry2017 and "
                                          "fefet-neurosim: 0.2, fit to Soliman 2023 Fig. 1g "
                                          "(states 1 and 2)")
    vt_sigma_d2d: float = param(0.043, unit="V", ge=0.0,
                                doc="device-to-device std of the threshold voltage in the erased "
                                    "state (fixed per cell)", source=_VT_ERASED)
    vt_sigma_d2d_programmed: float | None = param(
        0.010, unit="V", ge=0.0, nullable=True,
        doc="device-to-device std of the threshold voltage in the fully programmed state; "
            "between the two the memory window scatters (module doc); None = vt_sigma_d2d "
            "(state-independent offset)", source=_VT_PROG)
    vt_sigma_c2c: float = param(0.01, unit="V", ge=0.0,
                                doc="cycle-to-cycle std of the threshold voltage (new at "
                                    "every write)", source=_VT_C2C)

    # ---------------------------------------------------------------- read-out
    memory_window: float = param(1.5, unit="V", gt=0.0,
                                 doc="V_T shift between erased and fully switched",
                                 source="Duenkel et al., IEDM 2017: memory window 1.5 V [A]; "
                                        "saturated window ~1.5 V in MW_v2_clean_global_short.csv")
    subthreshold_swing: float = param(0.066, unit="V/decade", gt=0.0,
                                      doc="subthreshold swing SS of the read transistor",
                                      source="[D] SS = (1 + C_dep/C_stack)*ln10*kT/q = 66 mV/dec "
                                             "at 300 K from the Deng stack (N_a 3e17 cm^-3, "
                                             "eps_FE 28, t_FE 8 nm, t_IL 1 nm)")
    retention_loss_per_decade: float = param(0.007, ge=0.0, lt=1.0,
                                             doc="fraction of the switched polarization lost "
                                                 "per decade of time",
                                             source="assumption: 6 % after 10 y (t0 = 1 s), the "
                                                    "middle of the 2/6/10 %-in-10-y scenarios of "
                                                    "Peng et al., IEDM 2019 [S]; consistent with "
                                                    ">10 y retention (Duenkel IEDM 2017 [A]; 28 nm "
                                                    "eNVM 10 y at 105 C [S])")
    retention_activation_energy: float = param(
        1.05, unit="eV", ge=0.0,
        doc="activation energy of depolarization (Arrhenius time acceleration above 300 K)",
        source="polarization switching barrier W_b = 1.05 eV of HfO2 (Heracles, Fehlings et al. "
               "2024, IIT Bombay data; device-parameters.md §4); with it 10 y at 85 C lose "
               "7.9 % (6 % at 300 K), consistent with 10-y retention at 85-105 C (Ni IEDM 2018; "
               "28 nm eNVM)")
    retention_t0: float = param(1.0, unit="s", gt=0.0,
                                doc="onset time of log-time depolarization",
                                source="assumption (NeuroSim drift reference time t0 = 1 s)")
    read_noise: float = param(0.005, ge=0.0,
                              doc="relative std of one read (G_mean units) above the shot-noise "
                                  "floor q*G/(V_read*t_read), which is always added",
                              source="assumption: no FeFET read-noise number in "
                                     "device-parameters.md; sub-percent FET channel noise")

    def __post_init__(self) -> None:
        v = self.write_voltage
        if self.write_voltage_end is not None:
            v = 0.5 * (v + self.write_voltage_end)
        energy = (v ** 2 * (self.gate_capacitance + self.wire_capacitance)
                  + 2.0 * self.remanent_polarization * self.fe_area * v)
        object.__setattr__(self, "write_energy", energy)
        super().__post_init__()

    def _check(self) -> None:
        super()._check()
        name = type(self).__name__
        if self.write_voltage <= self.fe_offset_voltage:
            raise ConfigError(f"{name}: write_voltage = {self.write_voltage} V must exceed "
                             f"fe_offset_voltage = {self.fe_offset_voltage} V, or no voltage "
                             "reaches the ferroelectric and pulses never switch")
        end = self.write_voltage_end
        if end is not None and end <= self.fe_offset_voltage:
            raise ConfigError(f"{name}: write_voltage_end = {end} V must exceed "
                             f"fe_offset_voltage = {self.fe_offset_voltage} V")
        m = self.memory_window * math.log(10.0) / self.subthreshold_swing
        if m <= math.log(self.g_max / self.g_min) * (1.0 + 1e-9):
            raise ConfigError(
                f"{name}: memory_window = {self.memory_window} V is too small for "
                f"g_max/g_min = {self.g_max / self.g_min:.4g}; even a pure subthreshold read "
                f"needs memory_window > subthreshold_swing*log10(g_max/g_min) = "
                f"{self.subthreshold_swing * math.log10(self.g_max / self.g_min):.4g} V")

    # ---------------------------------------------------------------- physics helpers
    @property
    def fe_voltage(self) -> float:
        """Voltage across the ferroelectric during a ``write_voltage`` pulse, |V_FE| (V)."""
        return self.fe_coupling * (self.write_voltage - self.fe_offset_voltage)

    @cached_property
    def _read_curve(self) -> tuple[float, float, float]:
        """(G_0 in S, erased overdrive x0 and window m, both in units of V_s) of the read-out."""
        m = self.memory_window * math.log(10.0) / self.subthreshold_swing
        x0 = _solve_overdrive(m, math.log(self.g_max / self.g_min))
        return self.g_min / math.exp(_log_softplus(x0)), x0, m

    def conductance(self, fraction: float | Tensor,
                    vt_shift: float | Tensor | None = None) -> Tensor:
        """Channel conductance (S) at the read bias for a switched polarization fraction (in
        [0, 1]; up to :data:`FRACTION_SLACK` outside is clipped) and a threshold-voltage offset
        ``vt_shift`` (V, default 0; positive lowers G)."""
        where = f"{type(self).__name__}.conductance"
        f = real_values(fraction, "fraction", where, lo=-FRACTION_SLACK,
                        hi=1.0 + FRACTION_SLACK).clamp(0.0, 1.0)
        shift = None if vt_shift is None else real_values(vt_shift, "vt_shift", where, unit="V")
        return self._conductance(f, shift)

    def _conductance(self, fraction: Tensor, vt_shift: Tensor | None = None) -> Tensor:
        g0, x0, m = self._read_curve
        x = x0 + m * fraction
        if vt_shift is not None:
            x = x - vt_shift * (math.log(10.0) / self.subthreshold_swing)
        return g0 * torch.nn.functional.softplus(x)

    def switched_fraction(self, g: float | Tensor) -> Tensor:
        """Inverse of :meth:`conductance` (no V_T offset): switched fraction in [0, 1] for
        ``g`` (S, >= 0; clipped to the range)."""
        return self._switched_fraction(real_values(g, "g", f"{type(self).__name__}."
                                                   "switched_fraction", lo=0.0, unit="S"))

    def _switched_fraction(self, g: Tensor) -> Tensor:
        g0, x0, m = self._read_curve
        y = (g / g0).clamp_min(torch.finfo(g.dtype).tiny)
        x = torch.where(y > 20.0, y + torch.log(-torch.expm1(-y.clamp_min(20.0))),
                        torch.log(torch.expm1(y.clamp_max(20.0))))
        return ((x - x0) / m).clamp(0.0, 1.0)

    def expected_fraction(self, n_pulses: float | Tensor) -> Tensor:
        """Mean switched fraction after ``n_pulses`` identical ``write_voltage`` pulses from
        the erased state.

        ``E[1 - exp(-(n*dt/tau(E_a))^beta)]`` over the Gaussian ``E_a`` (80-node Gauss-Hermite
        quadrature, float64): the NLS accumulation law that :meth:`pulse` samples.
        """
        n = real_values(n_pulses, "n_pulses", f"{type(self).__name__}.expected_fraction",
                        lo=0.0).to(torch.float64)
        x, w = np.polynomial.hermite_e.hermegauss(80)
        ea = (self.ea_mean + self.ea_std * torch.from_numpy(x)).clamp_min(0.0)
        rate = self._rate(ea)
        p = -torch.expm1(-(n[..., None] * rate) ** self.beta)
        return (p * torch.from_numpy(w / w.sum())).sum(-1)

    def _rate(self, ea: Tensor, v_fe: Tensor | float | None = None) -> Tensor:
        """dt/tau per write pulse for activation voltages ``ea`` (V) at the FE voltage ``v_fe``
        (V; default :attr:`fe_voltage`)."""
        v = self.fe_voltage if v_fe is None else v_fe
        return (self.write_time / self.tau0) * torch.exp(-(ea / v) ** self.alpha)

    def polarization(self, state: CellState) -> Tensor:
        """Switched polarization fraction ``f`` of each cell (0: erased, 1: fully switched),
        from its domain states."""
        return self._fraction(state)

    def _fraction(self, state: CellState) -> Tensor:
        s = state.latent["switched"].to(state.g.dtype)
        w = state.latent.get("weight")
        return s.mean(-1) if w is None else (w * s).sum(-1)

    @property
    def _vt_sigmas(self) -> tuple[float, float]:
        """(std of ``vt_d2d``, std of ``vt_window``) in V: the narrower saturated state's D2D
        sigma and the window scatter that widens the other one to its sigma."""
        s_e = self.vt_sigma_d2d
        s_p = s_e if self.vt_sigma_d2d_programmed is None else self.vt_sigma_d2d_programmed
        lo, hi = min(s_e, s_p), max(s_e, s_p)
        return lo, math.sqrt(hi * hi - lo * lo)

    def vt_offset(self, state: CellState, fraction: Tensor | None = None) -> Tensor:
        """Total V_T offset (V; positive lowers G) of each cell at switched fraction
        ``fraction`` (default: the cell's own): D2D ``vt_d2d + d(f) * vt_window`` plus the C2C
        offset of its last write (module doc); zeros when the model has no V_T spread."""
        f = self._fraction(state) if fraction is None else fraction
        out = torch.zeros_like(f)
        lat = state.latent
        if "vt_d2d" in lat:
            out = out + lat["vt_d2d"]
        if "vt_window" in lat:
            s_p = self.vt_sigma_d2d_programmed
            erased_wider = s_p is None or s_p <= self.vt_sigma_d2d
            out = out + (1.0 - f if erased_wider else f) * lat["vt_window"]
        if "vt_c2c" in lat:
            out = out + lat["vt_c2c"]
        return out

    def _g(self, state: CellState, fraction: Tensor | None = None) -> Tensor:
        f = self._fraction(state) if fraction is None else fraction
        return self._conductance(f, self.vt_offset(state, f))

    def describe(self) -> str:
        """Parameters with units and sources, and the choices made between sources."""
        return (super().describe() + "\n  choices: NLS kinetics of Deng 2020 with NeuroSim's cell "
                "electrical values; program() writes round(f*N) domains on the nominal curve "
                "(blind to the cell's V_T offset); state-dependent D2D V_T spread: each cell's "
                "window scatters, so the D2D sigma runs from vt_sigma_d2d (erased) to "
                "vt_sigma_d2d_programmed (fully programmed); the presets' 43 / 10 mV are a fit "
                "to Soliman 2023 Fig. 1g (28 nm HKMG: 44 / 48 / 38 / <= 16 mV erased to fully "
                "programmed, C2C 10 mV included; the C2C sigma is an assumption); domain-size "
                "spread: Deng's 0.27 in fefet-deng2020 (its 20 domains give 1.7-2.2x the "
                "measured spread at intermediate states), 0.2 fitted to Soliman Fig. 1g in the "
                "60/64-domain presets (within 15 % at all four states; compared in absolute V_T, "
                "so with the 1.5 V window against Soliman's 1.10 V the 0.2 partly stands for "
                "the window ratio); retention "
                "activation energy = the Heracles HfO2 switching barrier (1.05 eV); read noise "
                "includes the shot-noise floor q*G/(V_read*t_read); write energy includes "
                "word-line charging and a full polarization reversal 2*P_r*A*V per pulse")

    # ---------------------------------------------------------------- contract
    def _program(self, g_target: Tensor, generator: torch.Generator | None) -> CellState:
        shape = g_target.shape + (self.n_domains,)
        kw: dict[str, Any] = dict(generator=generator, dtype=g_target.dtype,
                                  device=g_target.device)
        ea = (self.ea_mean + self.ea_std * torch.randn(shape, **kw)).clamp_min(0.0)
        latent: dict[str, Tensor] = {}
        if self.domain_size_std > 0.0:
            a = (1.0 + self.domain_size_std * torch.randn(shape, **kw)) ** 2
            latent["weight"] = a / a.sum(-1, keepdim=True).clamp_min(torch.finfo(a.dtype).tiny)
        k = torch.round(self._switched_fraction(g_target) * self.n_domains)
        # NLS switching order at the write voltage: log t_i = log tau_i + ln(-ln U)/beta
        u = torch.rand(shape, **kw)
        key = (ea / self.fe_voltage) ** self.alpha + torch.log(-torch.log(u)) / self.beta
        # the k earliest domains switch: threshold at the k-th smallest key (one sort)
        kth = key.sort(dim=-1).values.gather(-1, (k.long() - 1).clamp_min(0)[..., None])
        switched = (key <= kth) & (k[..., None] > 0)
        latent.update(ea=ea, switched=switched, h=torch.zeros_like(ea))
        s_narrow, s_window = self._vt_sigmas
        if s_narrow > 0.0:
            latent["vt_d2d"] = s_narrow * randn(g_target, generator)
        if self.vt_sigma_c2c > 0.0:
            latent["vt_c2c"] = self.vt_sigma_c2c * randn(g_target, generator)
        if s_window > 0.0:  # drawn last: configurations without it keep their draws
            latent["vt_window"] = s_window * randn(g_target, generator)
        state = CellState(g_target, latent)
        return state.replace(g=self._g(state))

    def _pulse(self, state: CellState, n: Tensor, generator: torch.Generator | None) -> CellState:
        s, h, ea = state.latent["switched"], state.latent["h"], state.latent["ea"]
        v0, v1 = self.write_voltage, self.write_voltage_end
        tensors = {"s": s, "h": h, "ea": ea, "up": (n > 0)[..., None]}
        if v1 is None:
            tensors["rate"] = self._rate(ea)
        weight = state.latent.get("weight")
        if weight is not None:
            tensors["w"] = weight

        def one_pulse(c: dict[str, Tensor]) -> dict[str, Tensor]:
            s, h, up = c["s"], c["h"], c["up"]
            if v1 is None:
                rate = c["rate"]
            else:  # amplitude from the switched fraction in the pulse's direction
                sf = s.to(h.dtype)
                f = sf.mean(-1, keepdim=True) if "w" not in c else (c["w"] * sf).sum(
                    -1, keepdim=True)
                v = v0 + (v1 - v0) * torch.where(up, f, 1.0 - f)
                rate = self._rate(c["ea"], self.fe_coupling * (v - self.fe_offset_voltage))
            toward = s != up  # the field drives these domains to the other state
            h_new = torch.where(toward, h + rate, (h - rate).clamp_min(0.0))
            p = -torch.expm1(h ** self.beta - h_new ** self.beta)
            flip = toward & (torch.rand(h.shape, generator=generator, dtype=h.dtype,
                                        device=h.device) < p)
            return {"s": s ^ flip, "h": torch.where(flip, 0.0, h_new)}

        out = pulse_train(n.abs(), tensors, one_pulse)
        new = state.replace(switched=out["s"], h=out["h"])
        c2c = state.latent.get("vt_c2c")
        if c2c is not None:  # every write traps a new interface charge
            fresh = self.vt_sigma_c2c * randn(c2c, generator)
            new = new.replace(vt_c2c=torch.where(n != 0, fresh, c2c))
        return new.replace(g=self._g(new))

    def retention_acceleration(self) -> float:
        """Arrhenius factor ``a_T`` of depolarization at ``temperature`` over 300 K."""
        return arrhenius_factor(self.retention_activation_energy, self.temperature)

    def retained_fraction(self, t: float | Tensor) -> Tensor:
        """Share of the switched polarization left ``t`` s (>= 0) after writing (log-time loss
        at ``temperature``)."""
        return self._retained_fraction(real_values(t, "t", f"{type(self).__name__}."
                                                   "retained_fraction", lo=0.0, unit="s"))

    def _retained_fraction(self, t: Tensor) -> Tensor:
        a = self.retention_acceleration()
        loss = self.retention_loss_per_decade * torch.log10(1.0 + a * t / self.retention_t0)
        return (1.0 - loss).clamp_min(0.0)

    def _mean(self, state: CellState, t: Tensor) -> Tensor:
        return self._g(state, self._fraction(state) * self._retained_fraction(t))

    def _read_std(self, state: CellState, t: Tensor, mean: Tensor) -> Tensor:
        shot = Q_E * mean.clamp_min(0.0) / (self.read_voltage * self.read_time)
        return ((self.read_noise * mean) ** 2 + shot).sqrt()


# domain-size spread of the 60/64-domain presets: fit to Soliman 2023 Fig. 1g, states 1 and 2
# (38-48 mV with the 43/10 mV D2D and 10 mV C2C offsets); Deng's normrnd(1, 0.27) gives
# +32-37 % at state 2
_DOMAIN_STD_FIT = 0.2


def _jerry2017() -> FeFET:
    return FeFET(g_min=39.73e-9, g_max=1.788e-6, levels=32, n_domains=64, write_time=75e-9,
                 write_voltage=2.8, write_voltage_end=3.7, domain_size_std=_DOMAIN_STD_FIT)


def _neurosim() -> FeFET:
    return FeFET(n_domains=60, levels=32, domain_size_std=_DOMAIN_STD_FIT)


def _deng2020() -> FeFET:
    return FeFET()


PRESETS = [
    Preset("fefet-deng2020", "fefet", _deng2020,
           f"switching: {_DENG}; V_FE coupling {_FIT}; cell electrical (240 kOhm, on/off 100, "
           f"4 V/50 ns write, 0.5 V read, C_gate): {_NEUROSIM}",
           "20-domain NLS FeFET (E_a ~ N(2.3, 0.4) V, tau0 19 ns, alpha 3, beta 2); "
           "41.7 nS-4.17 uS x100; 4 V/50 ns pulses switch ~60 % of the domains per pulse; "
           "V_T spread 43 mV erased -> 10 mV programmed (fit to Soliman 2023 Fig. 1g), Deng's "
           "domain sizes"),
    Preset("fefet-jerry2017", "fefet", _jerry2017,
           "Jerry et al., IEDM 2017 (32 levels, 45x range, 75 ns update pulses) [A/S]; G range "
           "39.73 nS-1.788 uS from a NeuroSim fork main.cpp [S]; 64 domains chosen here so 32 "
           "linear levels are resolved; amplitude-modulated 75 ns update pulses (Dutta et al., "
           "Nat. Commun. 2022 style) rising 2.8 -> 3.7 V with the switched fraction, chosen "
           "here [D] (grid fit) so that the mean switched fraction after k of 31 pulses is "
           "within 0.045 rms of k/31 (0.02 after the first, 0.31 after 10, 0.95 after 31; "
           "identical 3.3 V pulses gave 0.23 after the first and saturated in 10-20; Jerry's "
           "pulse amplitudes are not in the reference); switching kinetics Deng 2020",
           "analog FeFET synapse: 32 levels, 45x (39.7 nS-1.79 uS), 75 ns pulses of 2.8-3.7 V "
           "(amplitude-modulated), 64 domains; V_T spread and domain sizes fitted to Soliman "
           "2023 Fig. 1g"),
    Preset("fefet-neurosim", "fefet", _neurosim,
           f"{_NEUROSIM}: R_on 240 kOhm, on/off 100, 60 LTP/LTD levels (-> 60 domains), cellBit 5 "
           "(-> 32 programmed levels), write 4 V/50 ns, read 0.5 V/10 ns, C_gate 2.1717e-18 F; "
           "switching kinetics Deng 2020",
           "DNN+NeuroSim default FeFET cell: 41.7 nS-4.17 uS x100, 32 levels, 60 domains; "
           "V_T spread and domain sizes fitted to Soliman 2023 Fig. 1g"),
]
