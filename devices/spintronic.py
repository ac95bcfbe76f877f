"""Spintronic cells: the binary stochastic MTJ, a compound synapse of k MTJs in parallel, and the
multi-state domain-wall MTJ.

Physics used here (every number's source is given next to it):

* **Two resistance states.** An MTJ is parallel (P, low resistance ``R_P``) or antiparallel
  (AP, ``R_AP = R_P (1 + TMR)``), so ``g_max = 1/R_P`` and ``g_min = 1/R_AP`` per junction.
* **Switching probability of one current pulse** (amplitude ``I``, width ``t_w``), two channels
  treated as independent, ``P_sw = 1 - (1 - P_th)(1 - P_prec)``:

  - thermally activated (Néel–Brown with a current-lowered barrier; Taniguchi & Imamura,
    J. Nanosci. Nanotechnol. 12, 7520 (2012)):
    ``P_th = 1 - exp(-(t_w/tau0) exp(-Delta (1 - I/I_c0)^b))``; above ``I_c0`` the barrier is
    clamped at zero, so this channel saturates at ``1 - exp(-t_w/tau0)`` (a plateau of P_sw
    between I_c0 and the onset of precessional switching: the clamp, stated, not measured);
  - precessional, for ``I > I_c0`` (Sun, PRB 62, 570 (2000); thermally distributed initial angle,
    Sun et al., Proc. SPIE 5359, 445 (2004), justified by He, Sun & Zhang, JAP 101, 09A501
    (2007)): the small-angle precession grows as ``theta(t) = theta0 exp((I/I_c0 - 1) t/tau_D)``
    with ``tau_D = (1 + alpha^2)/(alpha gamma mu0 H_k)``; the junction has switched when
    ``theta`` reaches pi/2, and ``theta0^2`` is Boltzmann-distributed with mean ``1/Delta``, so
    ``P_prec = exp(-(pi^2 Delta/4) exp(-2 (I/I_c0 - 1) t_w/tau_D))`` (our derivation of the
    macrospin result; the two channels meeting at ``I_c0`` is a modelling choice).
* **Retention** (Néel–Brown): each junction leaves its state after an exponentially distributed
  time of mean ``tau_ret = tau0 exp(Delta)``. The flip time is drawn at programming as a latent,
  so a read at ``t`` is deterministic given the latents; the flip goes to the opposite state (the
  barrier is taken equal for P and AP; stray-field asymmetry is neglected) and only the first flip
  is modelled, which is exact while ``t << tau_ret``.
* **Read noise**: shot noise of a tunnel barrier with Fano factor 1, which becomes Johnson noise at
  low bias: ``S_I = 2 e I coth(eV/2kT)`` (Blanter & Büttiker, Phys. Rep. 336, 1 (2000), eq. for a
  tunnel junction), integrated over the bandwidth ``1/(2 t_read)`` of one read, plus an optional
  relative term for 1/f or telegraph noise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from memxbar.devices.base import (
    MAX_PULSES_CLOSED_FORM,
    CellState,
    Device,
    Preset,
    param,
    rand,
    randn,
)
from memxbar.errors import ConfigError

_E = 1.602176634e-19  # elementary charge, C
_KB = 1.380649e-23  # Boltzmann constant, J/K
_GAMMA = 1.76085963e11  # electron gyromagnetic ratio, rad/(s T)

uS = 1e-6
kOhm = 1e3

_NEUROSIM = "MLP_NeuroSim_V3.0 documents/Cell.cpp, DigitalNVM (device-parameters.md §5)"
_NVSIM = "NVSim/NVMExplorer data/cell_cfgs/STTRAM.cell (device-parameters.md §5)"
_SURVEY = "NVMExplorer STTRAM_data.pkl survey, n = 29 (shared/data/surveys/nvm/STTRAM.csv)"
_SOT_MODEL = "zhuzibn/SOT_STT_compact_model README defaults (device-parameters.md §5)"
_SANDIA = ("cross-sim-data lookup_tables/DWMTJ_SOT/300K/dG_increasing0.txt G bins "
           "64.06-160.5 uS (MuMax3 simulation; device-parameters.md §5)")
_SIDDIQUI = "Siddiqui et al., Nano Lett. 20, 1033 (2020), abstract"
_HSIN = "Hsin et al., Adv. Sci. 12, 2417735 (2025), abstract"


def _derived(default: Any, *, unit: str = "", doc: str, source: str, **bounds: Any) -> Any:
    """A parameter computed from others in ``_check`` (not a constructor argument)."""
    f = param(default, unit=unit, doc=doc, source=source, **bounds)
    f.init = False
    return f


def _as_f64(x: float | Tensor, name: str, *, positive: bool) -> Tensor:
    t = torch.as_tensor(x, dtype=torch.float64)
    bad = ~torch.isfinite(t) | ((t <= 0) if positive else (t < 0))
    if bool(bad.any()):
        allowed = "finite and > 0" if positive else "finite and >= 0"
        raise ConfigError(f"{name} = {x!r} is not allowed; it must be {allowed}")
    return t


@dataclass(frozen=True, kw_only=True)
class _TunnelJunction(Device):
    """Shared read-noise model of cells read through an MgO tunnel barrier."""

    cell_type = "1T1MTJ"
    max_pulses = MAX_PULSES_CLOSED_FORM  # MTJ and domain wall: a train in one step
    temperature: float = param(300.0, unit="K", doc="device temperature for read noise",
                               source="room temperature (assumption)", gt=0.0)
    read_noise_rel: float = param(
        0.0, doc="extra relative read-noise std (1/f, telegraph) on top of shot noise",
        source="0: no measured value in the sources read (device-parameters.md §5)",
        ge=0.0, le=1.0)

    def _read_std(self, state: CellState, t: Tensor, mean: Tensor) -> Tensor:
        g = mean
        v = self.read_voltage
        coth = 1.0 / math.tanh(_E * v / (2.0 * _KB * self.temperature))
        bandwidth = 1.0 / (2.0 * self.read_time)
        var = 2.0 * _E * g * coth * bandwidth / v + (self.read_noise_rel * g) ** 2
        return var.clamp_min(0.0).sqrt()


@dataclass(frozen=True, kw_only=True)
class MTJ(_TunnelJunction):
    """Binary, stochastic STT-MTJ cell (one junction per cell).

    Latents (trailing dimension = junctions per cell, 1 here): ``parallel`` (bool, P state),
    ``g_p`` (S, P-state conductance with device-to-device spread of R_P) and ``t_flip`` (s, time
    of the retention flip). ``program`` writes the nearest state with one pulse of
    ``write_current`` for ``write_time``; it fails (the junction ends in the other state) with
    probability ``1 - P_sw`` (the write error rate of a switching attempt, i.e. as if the cell
    started in the opposite state). ``pulse``: each + pulse switches an AP junction to P, each
    − pulse a P junction to AP, with probability ``P_sw(pulse_current, pulse_width)``; pulses are
    applied at t = 0 and leave the retention latents unchanged (memoryless).
    """

    technology = "mtj"
    r_p: float = param(8 * kOhm, unit="Ohm", doc="parallel-state (low) resistance",
                       source=f"Ron 8 kOhm, {_NEUROSIM}", gt=0.0)
    tmr: float = param(2.0, doc="tunnel magnetoresistance (R_AP - R_P)/R_P as a ratio (2 = 200 %)",
                       source=f"Roff/Ron = 24/8 kOhm, {_NEUROSIM}", gt=0.0, le=100.0)
    r_p_sigma: float = param(
        0.0, doc="device-to-device relative std of R_P (Gaussian, R_AP follows via TMR)",
        source=f"0 by default; NeuroSim offers 7 %, {_NEUROSIM}", ge=0.0, le=0.3)
    delta: float = param(60.0, doc="thermal stability factor E_b/(k_B T)",
                         source="E/k_BT > 60 for > 10 y retention: Hayakawa, Ikeda et al., "
                                "CoFeB SyF free layers, abstract (device-parameters.md §5)",
                         gt=0.0, le=200.0)
    tau0: float = param(1e-9, unit="s", doc="attempt time of thermal switching",
                        source="conventional 1 ns (device-parameters.md §5, retention law)",
                        gt=0.0, le=1e-6)
    i_c0: float = param(
        50e-6, unit="A", doc="critical switching current at 0 K",
        source="derived: J_c0 = 4 MA/cm^2 (Hayakawa, Ikeda et al., abstract) x pi (20 nm)^2; "
               "matches the commonly quoted 49 uA at 40 nm (Ikeda 2010, not verified)", gt=0.0)
    b_exponent: float = param(2.0, doc="exponent b of (1 - I/I_c0)^b in the switching barrier",
                              source="b = 1 or 2, undetermined by experiment: Taniguchi & "
                                     "Imamura, J. Nanosci. Nanotechnol. 12, 7520 (2012)",
                              ge=1.0, le=2.0)
    damping: float = param(0.01, doc="Gilbert damping alpha (precessional regime)",
                           source=_SOT_MODEL, gt=0.0, le=1.0)
    anisotropy_field: float = param(1.5, unit="T", doc="anisotropy field mu0 H_k (precessional "
                                    "regime)", source=_SOT_MODEL, gt=0.0, le=20.0)
    write_current: float = param(80e-6, unit="A", doc="programming pulse current",
                                 source=f"set/reset current 80 uA, {_NVSIM}", gt=0.0)
    pulse_current: float = param(80e-6, unit="A", doc="current of one update (training) pulse",
                                 source=f"= write current, {_NVSIM}", gt=0.0)
    pulse_width: float = param(10e-9, unit="s", doc="width of one update (training) pulse",
                               source=f"= write time 10 ns, {_NEUROSIM}", gt=0.0)
    write_voltage: float = param(1.0, unit="V", doc="amplitude of a programming pulse",
                                 source=_NEUROSIM, gt=0.0)
    write_time: float = param(10e-9, unit="s", doc="width of one programming pulse",
                              source=_NEUROSIM, gt=0.0)
    write_energy: float = param(1.25e-12, unit="J", doc="energy of one programming pulse",
                                source="derived: V_w^2 t_w / R_P = (1 V)^2 10 ns / 8 kOhm "
                                       f"({_NEUROSIM}); survey range 0.6-4.5 pJ", ge=0.0)
    read_voltage: float = param(0.5, unit="V", doc="read voltage applied on a row",
                                source=_NEUROSIM, gt=0.0)
    read_time: float = param(10e-9, unit="s", doc="duration of one read",
                             source=f"median read time 10 ns, {_SURVEY}", gt=0.0)
    endurance: float = param(1e6, unit="cycles", doc="write cycles before wear-out",
                             source=f"median 1e6 (range 1e5-1e15), {_SURVEY}", gt=0.0)
    g_min: float = _derived(1 / 24e3, unit="S", doc="AP conductance of the cell, "
                            "n_junctions / (R_P (1 + TMR))", source="derived from r_p, tmr",
                            ge=0.0)
    g_max: float = _derived(1 / 8e3, unit="S", doc="P conductance of the cell, n_junctions / R_P",
                            source="derived from r_p", gt=0.0)
    levels: int = _derived(2, doc="levels = n_junctions + 1", source="derived", ge=0,
                           integer=True)

    def _check(self) -> None:
        k = self.n_junctions
        object.__setattr__(self, "g_max", k / self.r_p)
        object.__setattr__(self, "g_min", k / (self.r_p * (1.0 + self.tmr)))
        object.__setattr__(self, "levels", k + 1)
        super()._check()

    # ------------------------------------------------------------------ physics
    @property
    def n_junctions(self) -> int:
        """MTJs in parallel per cell (1 for the binary cell)."""
        return 1

    @property
    def r_ap(self) -> float:
        """Antiparallel-state resistance R_P (1 + TMR) (Ohm)."""
        return self.r_p * (1.0 + self.tmr)

    @property
    def tau_ret(self) -> float:
        """Mean retention time tau0 exp(Delta) of one junction (s)."""
        return self.tau0 * math.exp(self.delta)

    @property
    def tau_d(self) -> float:
        """Precessional time constant (1 + alpha^2) / (alpha gamma mu0 H_k) (s)."""
        return (1.0 + self.damping ** 2) / (self.damping * _GAMMA * self.anisotropy_field)

    def switching_probability(self, current: float | Tensor, width: float | Tensor) -> Tensor:
        """Probability (float64) that one pulse of ``current`` (A) for ``width`` (s) switches a
        junction that is in the opposite state (see the module docstring for the law)."""
        p_sw, _ = self._switching(current, width)
        return p_sw

    def write_error_rate(self, current: float | Tensor | None = None,
                         width: float | Tensor | None = None) -> Tensor:
        """``1 - P_sw`` (float64, accurate when tiny); defaults to the programming pulse."""
        _, fail = self._switching(self.write_current if current is None else current,
                                  self.write_time if width is None else width)
        return fail

    def _switching(self, current: float | Tensor, width: float | Tensor) -> tuple[Tensor, Tensor]:
        i = _as_f64(current, "pulse current (A)", positive=False) / self.i_c0
        tw = _as_f64(width, "pulse width (s)", positive=True)
        x_th = tw / self.tau0 * torch.exp(-self.delta * (1.0 - i).clamp_min(0.0)
                                          ** self.b_exponent)
        c = math.pi ** 2 * self.delta / 4.0
        y = c * torch.exp(-2.0 * (i - 1.0) * tw / self.tau_d)
        over = i > 1.0
        p_prec = torch.where(over, torch.exp(-y), 0.0)
        no_prec = torch.where(over, -torch.expm1(-y), 1.0)
        stay = torch.exp(-x_th)
        p_sw = -torch.expm1(-x_th) + stay * p_prec
        return p_sw, stay * no_prec

    def _g_cell(self, parallel: Tensor, g_p: Tensor) -> Tensor:
        return torch.where(parallel, g_p, g_p / (1.0 + self.tmr)).sum(-1)

    # ------------------------------------------------------------------ contract
    def _program(self, g_target: Tensor, generator: torch.Generator | None) -> CellState:
        k = self.n_junctions
        like = g_target.unsqueeze(-1).expand(*g_target.shape, k).contiguous()
        step = 1.0 / self.r_p - 1.0 / self.r_ap
        m = torch.round((g_target - self.g_min) / step).clamp(0, k)
        idx = torch.arange(k, device=g_target.device, dtype=g_target.dtype)
        parallel = idx < m.unsqueeze(-1)
        wer = float(self.write_error_rate())
        if wer > 0.0:
            parallel = parallel ^ (rand(like, generator) < wer)
        g_p = torch.full_like(like, 1.0 / self.r_p)
        if self.r_p_sigma > 0.0:
            g_p = g_p / (1.0 + self.r_p_sigma * randn(like, generator)).clamp_min(0.1)
        tau = min(self.tau_ret, torch.finfo(like.dtype).max)
        t_flip = -torch.log1p(-rand(like, generator)) * tau
        return CellState(self._g_cell(parallel, g_p),
                         {"parallel": parallel, "g_p": g_p, "t_flip": t_flip})

    def _mean(self, state: CellState, t: Tensor) -> Tensor:
        parallel, t_flip = state.latent["parallel"], state.latent["t_flip"]
        if not bool((t > 0).any()):
            return state.g
        tt = t.unsqueeze(-1) if t.dim() else t
        return self._g_cell(parallel ^ (tt > t_flip), state.latent["g_p"])

    def _pulse(self, state: CellState, n: Tensor, generator: torch.Generator | None) -> CellState:
        parallel, g_p = state.latent["parallel"], state.latent["g_p"]
        p = float(self.switching_probability(self.pulse_current, self.pulse_width))
        m = n.unsqueeze(-1).abs().to(g_p.dtype)
        if p >= 1.0:
            q = (m > 0).to(g_p.dtype)
        else:
            q = -torch.expm1(m * math.log1p(-p))  # 1 - (1 - p)^|n|
        switch = rand(g_p, generator) < q
        nn = n.unsqueeze(-1)
        parallel = torch.where(switch & (nn > 0), True, parallel)
        parallel = torch.where(switch & (nn < 0), False, parallel)
        return state.replace(g=self._g_cell(parallel, g_p), parallel=parallel)


@dataclass(frozen=True, kw_only=True)
class CompoundMTJ(MTJ):
    """Compound synapse of ``n_mtj`` binary MTJs in parallel: ``n_mtj + 1`` evenly spaced levels
    (Vincent et al., ISCAS 2014, stochastic binary synapses). ``program`` sets the first ``m``
    junctions to P for level ``m``; every junction sees each update pulse and switches
    independently with ``P_sw`` (the pulse current is taken per junction)."""

    n_mtj: int = param(4, doc="binary MTJs in parallel per synapse",
                       source="Vincent et al., ISCAS 2014 (10.1109/ISCAS.2014.6865325); "
                              "k = 4 is a choice", ge=1, le=256, integer=True)

    @property
    def n_junctions(self) -> int:
        return self.n_mtj


@dataclass(frozen=True, kw_only=True)
class DomainWall(_TunnelJunction):
    """Domain-wall MTJ with ``n_states`` pinned wall positions along the free-layer track.

    The cell conducts through its P and AP parts in parallel, so G is linear in the wall
    position x in [0, 1]: ``G = g_min + x (g_max - g_min)`` (Lequeux et al., Sci. Rep. 6, 31510
    (2016): intermediate states set by the wall position). Stochastic model (ours): the wall
    sits at notch ``s`` (latent ``state``), i.e. x = s/(n_states - 1), plus a Gaussian jitter
    of ``c2c_sigma`` (fraction of the full range) drawn afresh at every write (programming or
    pulse) and clamped to the track; the jitter does not accumulate because the notches re-pin
    the wall. Each pulse moves the wall one notch, stopping at the ends. No retention loss.
    """

    technology = "domain-wall"
    g_min: float = param(64 * uS, unit="S", doc="conductance with the wall at the AP end",
                         source=_SANDIA, ge=0.0)
    g_max: float = param(160 * uS, unit="S", doc="conductance with the wall at the P end",
                         source=_SANDIA, gt=0.0)
    n_states: int = param(11, doc="pinned wall positions (conductance states)",
                          source=f"11-state memory, {_HSIN}", ge=2, le=10000, integer=True)
    c2c_sigma: float = param(
        0.02, doc="cycle-to-cycle std of the wall position per write, fraction of the range",
        source=f"2 % CTC variation, {_HSIN} (read as a fraction of the range: assumption)",
        ge=0.0, le=0.5)
    write_voltage: float = param(1.1, unit="V", doc="amplitude of a programming pulse",
                                 source=f"stand-in: STT-MRAM median 1.1 V, {_SURVEY}", gt=0.0)
    write_time: float = param(8e-9, unit="s", doc="width of one programming pulse",
                              source=f"8 ns current pulses, {_SIDDIQUI}", gt=0.0)
    write_energy: float = param(16e-12, unit="J", doc="energy of one weight modulation",
                                source=f"<= 16 pJ per weight modulation, {_SIDDIQUI}", ge=0.0)
    read_voltage: float = param(0.25, unit="V", doc="read voltage applied on a row",
                                source=f"stand-in: STT cell read 0.25 V, {_NVSIM}", gt=0.0)
    read_time: float = param(10e-9, unit="s", doc="duration of one read",
                             source=f"stand-in: median read time 10 ns, {_SURVEY}", gt=0.0)
    endurance: float = param(1e11, unit="cycles", doc="write cycles before wear-out",
                             source="SOT up to 1e11, NVMExplorer 2016-2020 endurance summary "
                                    "(device-parameters.md §5); write current bypasses the "
                                    "barrier", gt=0.0)
    levels: int = _derived(11, doc="levels = n_states", source="derived", ge=0, integer=True)

    def _check(self) -> None:
        object.__setattr__(self, "levels", self.n_states)
        super()._check()

    def _g_of(self, s: Tensor, like: Tensor, generator: torch.Generator | None) -> Tensor:
        x = s.to(like.dtype) / (self.n_states - 1)
        if self.c2c_sigma > 0.0:
            x = (x + self.c2c_sigma * randn(like, generator)).clamp(0.0, 1.0)
        return self.g_min + x * (self.g_max - self.g_min)

    def _program(self, g_target: Tensor, generator: torch.Generator | None) -> CellState:
        step = (self.g_max - self.g_min) / (self.n_states - 1)
        s = torch.round((g_target - self.g_min) / step).clamp(0, self.n_states - 1)
        s = s.to(torch.int16)
        return CellState(self._g_of(s, g_target, generator), {"state": s})

    def _pulse(self, state: CellState, n: Tensor, generator: torch.Generator | None) -> CellState:
        s = state.latent["state"]
        s_new = (s.to(torch.int64) + n).clamp(0, self.n_states - 1).to(torch.int16)
        g = torch.where(n != 0, self._g_of(s_new, state.g, generator), state.g)
        return state.replace(g=g, state=s_new)


def _vincent_compound() -> CompoundMTJ:
    return CompoundMTJ(n_mtj=4, r_p_sigma=0.07, pulse_current=0.75 * 50e-6,
                       write_energy=4 * 1.25e-12)


PRESETS = [
    Preset("mtj-neurosim", "mtj", lambda: MTJ(r_p_sigma=0.07),
           f"{_NEUROSIM}: Ron 8 kOhm, Roff 24 kOhm, write 1 V 10 ns, read 0.5 V, sigma 7 %; "
           "switching: Delta 60 (Hayakawa/Ikeda abstract), I_c0 50 uA [derived], write 80 uA "
           f"({_NVSIM}); survey medians ({_SURVEY})",
           "binary STT-MTJ, 41.7/125 uS, 7 % d2d R_P spread, deterministic 80 uA pulses"),
    Preset("mtj-nvsim", "mtj",
           lambda: MTJ(r_p=3 * kOhm, tmr=1.0, write_energy=1e-12, write_voltage=1.25,
                       read_voltage=0.25),
           f"{_NVSIM}: Ron 3 kOhm, Roff 6 kOhm, 80 uA, 10 ns, 1 pJ, read 0.25 V; write voltage "
           "derived 1 pJ / (80 uA x 10 ns) = 1.25 V",
           "binary STT-MTJ, 167/333 uS, TMR 100 %, NVSim default cell"),
    Preset("mtj-vincent2014-compound4", "mtj", _vincent_compound,
           "Vincent et al., ISCAS 2014 (stochastic binary MTJ synapses); junctions as "
           f"mtj-neurosim ({_NEUROSIM}); update pulses 0.75 I_c0 x 10 ns (P_sw ~ 0.21, a "
           "design choice); write energy 4 x 1.25 pJ [derived]",
           "4 MTJs in parallel: 5 levels 0.167-0.5 mS, stochastic sub-critical updates"),
    Preset("dw-hsin2025", "domain-wall", DomainWall,
           f"{_HSIN}: 11 states, 2 % CTC; G range {_SANDIA}; write 8 ns, <= 16 pJ ({_SIDDIQUI})",
           "domain-wall MTJ, 11 states over 64-160 uS, 2 % cycle-to-cycle spread"),
    Preset("dw-siddiqui2020", "domain-wall", lambda: DomainWall(n_states=25),
           f"{_SIDDIQUI}: 8 ns pulses, <= 16 pJ; G range {_SANDIA}; 25 states derived from the "
           "same table (median dG ~ 4 uS per pulse near CDF 0.5 over a 96 uS range); CTC 2 % "
           f"stand-in from {_HSIN}",
           "domain-wall MTJ, 25 states over 64-160 uS, 8 ns / 16 pJ writes"),
]
