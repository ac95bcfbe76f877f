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
* **Programming** (``program``): every cell starts erased (all domains in the high-V_T state) and
  is written to ``k = round(f* * n_domains)`` switched domains, f* being the fraction of the
  target conductance; this idealises an incremental program pulse train stopped at the nominal
  level. Which ``k`` domains switch follows the NLS law at the write voltage: switching times
  ``t_i = tau_i * (-ln U_i)^(1/beta)`` (exact samples of the NLS distribution) are drawn and the
  first ``k`` switch. Granularity is therefore ``1/n_domains`` of the switched fraction, and with
  unequal domain sizes the conductance of the chosen ``k`` domains scatters (programming noise).
* **Retention.** Log-time depolarization: ``f(t) = f * (1 - retention_loss_per_decade *
  log10(1 + t / retention_t0))`` (floor 0); the erased state is the stable reference.
* **Read noise.** Gaussian, ``read_noise * G_mean(t)`` (assumption; see ``read_noise``).
* **Write energy** per pulse (NeuroSim): ``write_voltage^2 * (gate_capacitance +
  wire_capacitance)``; derived, not free.

Latents (trailing dim ``n_domains``): ``ea`` (V), ``switched`` (bool), ``h`` (dimensionless NLS
accumulation); ``weight`` (domain weights) only when ``domain_size_std > 0``. ``E_a`` is sampled
when a cell is programmed and kept through pulses.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import torch
from torch import Tensor

from memxbar.devices.base import CellState, Device, Preset, param, pulse_train
from memxbar.errors import ConfigError

_DENG = "Deng et al., VLSI 2020; boltma/Scalable-FeFET FeFET.va/README.md defaults"
_NEUROSIM = "DNN_NeuroSim_V2.1 Param.cpp FeFET cell (memcelltype 3), device-parameters.md §4"
_FIT = ("[D] least-squares fit here of this model's mean switched fraction (Deng E_a, tau0, "
        "alpha, beta) to memory window vs pulse width 50 ns-10 us x gate 2-4.5 V, "
        "boltma/Scalable-FeFET matlab/FeFET/MW_v2_clean_global_short.csv (Deng calibration "
        "data, provenance [U]); rms 0.10 V of a 1.5 V window")


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
    gate_capacitance: float = param(2.1717e-18, unit="F", ge=0.0, doc="FeFET gate capacitance",
                                    source=f"gateCapFeFET: {_NEUROSIM}")
    wire_capacitance: float = param(0.0, unit="F", ge=0.0,
                                    doc="word-line wire capacitance charged per write pulse "
                                        "(0: left to the crossbar cost model)",
                                    source="NeuroSim write energy V_w^2*(C_gate + C_wire)")
    write_energy: float = param(0.0, unit="J", ge=0.0,
                                doc="derived: write_voltage^2*(gate_capacitance + "
                                    "wire_capacitance); a value passed in is replaced",
                                source="MLP_NeuroSim Cell.cpp / DNN_NeuroSim_V2.1 FeFET write "
                                       "energy formula")
    endurance: float = param(1e5, unit="cycles", gt=0.0, doc="program/erase cycles",
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
    domain_size_std: float = param(0.0, ge=0.0,
                                   doc="relative std of the domain linear size (weight = "
                                       "size^2, normalised); gives programming noise",
                                   source="Deng model default: equal domain weights "
                                          "(get_FE_state.m); FeFET_accumulation.m carries a "
                                          "commented size spread normrnd(1, 0.27)^2")

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
    retention_t0: float = param(1.0, unit="s", gt=0.0,
                                doc="onset time of log-time depolarization",
                                source="assumption (NeuroSim drift reference time t0 = 1 s)")
    read_noise: float = param(0.005, ge=0.0,
                              doc="relative std of one read (G_mean units)",
                              source="assumption: no FeFET read-noise number in "
                                     "device-parameters.md; sub-percent FET channel noise")

    def __post_init__(self) -> None:
        energy = self.write_voltage ** 2 * (self.gate_capacitance + self.wire_capacitance)
        object.__setattr__(self, "write_energy", energy)
        super().__post_init__()

    def _check(self) -> None:
        super()._check()
        name = type(self).__name__
        if self.write_voltage <= self.fe_offset_voltage:
            raise ConfigError(f"{name}: write_voltage = {self.write_voltage} V must exceed "
                             f"fe_offset_voltage = {self.fe_offset_voltage} V, or no voltage "
                             "reaches the ferroelectric and pulses never switch")
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
        """Voltage across the ferroelectric during a write pulse, |V_FE| (V)."""
        return self.fe_coupling * (self.write_voltage - self.fe_offset_voltage)

    @cached_property
    def _read_curve(self) -> tuple[float, float, float]:
        """(G_0 in S, erased overdrive x0 and window m, both in units of V_s) of the read-out."""
        m = self.memory_window * math.log(10.0) / self.subthreshold_swing
        x0 = _solve_overdrive(m, math.log(self.g_max / self.g_min))
        return self.g_min / math.exp(_log_softplus(x0)), x0, m

    def conductance(self, fraction: Tensor) -> Tensor:
        """Channel conductance (S) at the read bias for a switched polarization fraction."""
        g0, x0, m = self._read_curve
        return g0 * torch.nn.functional.softplus(x0 + m * fraction)

    def switched_fraction(self, g: Tensor) -> Tensor:
        """Inverse of :meth:`conductance`: switched fraction in [0, 1] for ``g`` (S)."""
        g0, x0, m = self._read_curve
        y = (g / g0).clamp_min(torch.finfo(g.dtype).tiny)
        x = torch.where(y > 20.0, y + torch.log(-torch.expm1(-y.clamp_min(20.0))),
                        torch.log(torch.expm1(y.clamp_max(20.0))))
        return ((x - x0) / m).clamp(0.0, 1.0)

    def expected_fraction(self, n_pulses: int | Tensor) -> Tensor:
        """Mean switched fraction after ``n_pulses`` write pulses from the erased state.

        ``E[1 - exp(-(n*dt/tau(E_a))^beta)]`` over the Gaussian ``E_a`` (80-node Gauss-Hermite
        quadrature, float64): the NLS accumulation law that :meth:`pulse` samples.
        """
        n = torch.as_tensor(n_pulses, dtype=torch.float64)
        x, w = np.polynomial.hermite_e.hermegauss(80)
        ea = (self.ea_mean + self.ea_std * torch.from_numpy(x)).clamp_min(0.0)
        rate = self._rate(ea)
        p = -torch.expm1(-(n[..., None] * rate) ** self.beta)
        return (p * torch.from_numpy(w / w.sum())).sum(-1)

    def _rate(self, ea: Tensor) -> Tensor:
        """dt/tau per write pulse for activation voltages ``ea`` (V)."""
        return (self.write_time / self.tau0) * torch.exp(-(ea / self.fe_voltage) ** self.alpha)

    def _fraction(self, state: CellState) -> Tensor:
        s = state.latent["switched"].to(state.g.dtype)
        w = state.latent.get("weight")
        return s.mean(-1) if w is None else (w * s).sum(-1)

    # ---------------------------------------------------------------- contract
    def _program(self, g_target: Tensor, generator: torch.Generator | None) -> CellState:
        shape = g_target.shape + (self.n_domains,)
        kw = dict(generator=generator, dtype=g_target.dtype, device=g_target.device)
        ea = (self.ea_mean + self.ea_std * torch.randn(shape, **kw)).clamp_min(0.0)
        latent: dict[str, Tensor] = {}
        if self.domain_size_std > 0.0:
            a = (1.0 + self.domain_size_std * torch.randn(shape, **kw)) ** 2
            latent["weight"] = a / a.sum(-1, keepdim=True).clamp_min(torch.finfo(a.dtype).tiny)
        k = torch.round(self.switched_fraction(g_target) * self.n_domains)
        # NLS switching order at the write voltage: log t_i = log tau_i + ln(-ln U)/beta
        u = torch.rand(shape, **kw)
        key = (ea / self.fe_voltage) ** self.alpha + torch.log(-torch.log(u)) / self.beta
        # the k earliest domains switch: threshold at the k-th smallest key (one sort)
        kth = key.sort(dim=-1).values.gather(-1, (k.long() - 1).clamp_min(0)[..., None])
        switched = (key <= kth) & (k[..., None] > 0)
        latent.update(ea=ea, switched=switched, h=torch.zeros_like(ea))
        state = CellState(g_target, latent)
        return state.replace(g=self.conductance(self._fraction(state)))

    def _pulse(self, state: CellState, n: Tensor, generator: torch.Generator | None) -> CellState:
        s, h, ea = state.latent["switched"], state.latent["h"], state.latent["ea"]

        def one_pulse(c: dict[str, Tensor]) -> dict[str, Tensor]:
            s, h, rate = c["s"], c["h"], c["rate"]
            toward = s != c["up"]  # the field drives these domains to the other state
            h_new = torch.where(toward, h + rate, (h - rate).clamp_min(0.0))
            p = -torch.expm1(h ** self.beta - h_new ** self.beta)
            flip = toward & (torch.rand(h.shape, generator=generator, dtype=h.dtype,
                                        device=h.device) < p)
            return {"s": s ^ flip, "h": torch.where(flip, 0.0, h_new)}

        out = pulse_train(n.abs(), {"s": s, "h": h, "rate": self._rate(ea),
                                    "up": (n > 0)[..., None]}, one_pulse)
        new = state.replace(switched=out["s"], h=out["h"])
        return new.replace(g=self.conductance(self._fraction(new)))

    def retained_fraction(self, t: Tensor) -> Tensor:
        """Share of the switched polarization left ``t`` s after writing (log-time loss)."""
        loss = self.retention_loss_per_decade * torch.log10(1.0 + t / self.retention_t0)
        return (1.0 - loss).clamp_min(0.0)

    def _mean(self, state: CellState, t: Tensor) -> Tensor:
        return self.conductance(self._fraction(state) * self.retained_fraction(t))

    def _read_std(self, state: CellState, t: Tensor, mean: Tensor) -> Tensor:
        return self.read_noise * mean


def _jerry2017() -> FeFET:
    return FeFET(g_min=39.73e-9, g_max=1.788e-6, levels=32, n_domains=64, write_time=75e-9,
                 write_voltage=3.3)


def _neurosim() -> FeFET:
    return FeFET(n_domains=60, levels=32)


def _deng2020() -> FeFET:
    return FeFET()


PRESETS = [
    Preset("fefet-deng2020", "fefet", _deng2020,
           f"switching: {_DENG}; V_FE coupling {_FIT}; cell electrical (240 kOhm, on/off 100, "
           f"4 V/50 ns write, 0.5 V read, C_gate): {_NEUROSIM}",
           "20-domain NLS FeFET (E_a ~ N(2.3, 0.4) V, tau0 19 ns, alpha 3, beta 2); "
           "4.2-417 nS x100; 4 V/50 ns pulses switch ~60 % of the domains per pulse"),
    Preset("fefet-jerry2017", "fefet", _jerry2017,
           "Jerry et al., IEDM 2017 (32 levels, 45x range, 75 ns update pulses) [A/S]; G range "
           "39.73 nS-1.788 uS from a NeuroSim fork main.cpp [S]; 64 domains chosen here so 32 "
           "linear levels are resolved; write 3.3 V chosen here [D] so that 31 identical 75 ns "
           "pulses give a mean switched fraction of 0.92 (0.23 after the first; Jerry's pulse "
           "amplitudes are not in the reference); switching kinetics Deng 2020",
           "analog FeFET synapse: 32 levels, 45x (39.7 nS-1.79 uS), 75 ns/3.3 V pulses, "
           "64 domains"),
    Preset("fefet-neurosim", "fefet", _neurosim,
           f"{_NEUROSIM}: R_on 240 kOhm, on/off 100, 60 LTP/LTD levels (-> 60 domains), cellBit 5 "
           "(-> 32 programmed levels), write 4 V/50 ns, read 0.5 V/10 ns, C_gate 2.1717e-18 F; "
           "switching kinetics Deng 2020",
           "DNN+NeuroSim default FeFET cell: 4.2-417 nS x100, 32 levels, 60 domains"),
]
