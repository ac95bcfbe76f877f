"""Binary stochastic STT-MTJ cells and the compound synapse of k MTJs in parallel.

Physics used here (every number's source is given next to it):

* **Two resistance states.** A junction is parallel (P, ``R_P``) or antiparallel (AP,
  ``R_AP = R_P (1 + TMR)``), so ``g_max = k/R_P`` and ``g_min = k/R_AP`` for k junctions.
* **Bias-dependent TMR**: ``TMR(V) = TMR0 / (1 + (V/V_h)^2)`` (the IEF/Spintec PMA-MTJ compact
  model, Zhang, Zhao et al., IEEE Trans. Electron Devices 59, 819 (2012), V_h = 0.5 V;
  issue 13: V_h = 0.4-0.5 V); R_P is taken bias independent. The law is even in V, so a negative
  read gives the opposite current (the measured polarity asymmetry of V_h is not modelled).
* **Switching probability of one current pulse** (``I``, ``t_w``), two channels treated as
  independent, ``P_sw = 1 - (1 - P_th)(1 - P_prec)``: the thermal channel of
  :mod:`memxbar.devices.spintronic` (``P_th = 1 - exp(-(t_w/tau0) exp(-Delta (1 - I/I_c0)^b))``,
  barrier clamped at 0 above I_c0: a plateau of P_sw between I_c0 and precessional switching,
  stated, not measured) and, for ``I > I_c0``, precessional switching (Sun, PRB 62, 570 (2000);
  Boltzmann initial angle, Sun et al., Proc. SPIE 5359, 445 (2004)):
  ``P_prec = exp(-(pi^2 Delta/4) exp(-2 (I/I_c0 - 1) t_w/tau_D))``,
  ``tau_D = (1 + alpha^2)/(alpha gamma mu0 H_k)`` (our derivation of the macrospin result).
* **Read disturb**: a read at V > 0 drives current in the AP->P write direction (as a + pulse),
  so it can flip AP junctions (current ``V/R_AP(V)``); a read at V < 0 can flip P junctions
  (``|V|/R_P``). ``N`` reads of ``read_time`` flip a junction with ``1 - (1 - P_sw)^N``, i.e.
  ``1 - exp(-N t_read/tau(I))`` below I_c0 (:meth:`MTJ.disturb`, closed form in N).
* **Temperature** (``Device.temperature``): ``Delta(T) = E_b(T)/(k_B T)`` with
  ``E_b(T) = E_b(300 K) (M_s(T)/M_s(300 K))^n`` and Bloch's ``M_s(T) = M_s(0)(1 - (T/T_C)^1.5)``;
  ``I_c0`` scales with ``E_b`` (``I_c0 = (4 e alpha / hbar eta) E_b`` for a perpendicular free
  layer, Sun 2000). Retention ``tau_ret = tau0 exp(Delta(T))``.
* **Retention** (Néel–Brown): each junction leaves its state once ``t / tau_ret(T)`` exceeds a
  unit exponential hazard drawn at programming (so reads are deterministic given the latents,
  and a warmer device reads the same cells with a faster clock); the flip goes to the opposite
  state (equal barriers for P and AP) and only the first flip is modelled (exact for
  ``t << tau_ret``).
* **Variability**: device-to-device spread of R_P, TMR and I_c0 (Gaussian, per junction, drawn at
  programming) is kept apart from the cycle-to-cycle stochasticity of every write (P_sw).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from memxbar.devices.base import (
    CellState,
    Preset,
    param,
    rand,
    randn,
    real_values,
    resolve_generator,
)
from memxbar.devices.spintronic import (
    GAMMA_E,
    KOCH,
    NEUROSIM,
    NVSIM,
    READ_BIAS,
    SOT_MODEL,
    SURVEY,
    T_REF,
    TunnelJunction,
    as_f64,
    derived,
    exponential_hazard,
    kOhm,
    thermal_rate,
)
from memxbar.errors import ConfigError

_ZHANG = "Zhang, Zhao et al., IEEE TED 59, 819 (2012), IEF PMA-MTJ compact model (V_h = 0.5 V)"
_CHOICES = (
    "thermal barrier exponent b = 1 (Koch 2004; Taniguchi & Imamura 2012 leave b = 1 or 2 open)",
    "TMR(V) even in V: no polarity asymmetry of V_h; R_P bias independent",
    "read_iv='chord': the tile reads the chord conductance I(V_read)/V_read, exact for drives of "
    "0 or +-V_read (bit-serial), approximate for multi-level drives; 'nonlinear' solves I(V)",
    "Delta(T) from E_b ~ M_s(T)^n with Bloch's law (T_C an assumption); I_c0 ~ E_b(T); tau_D "
    "and TMR0 held at their 300 K values",
    "write energy I_w^2 R t_w of the junction, mean of the P and AP states (R_AP at its write "
    "bias, solved self-consistently); drivers and access transistor not included",
    "only the first retention flip is modelled; read disturb and pulses are memoryless and "
    "leave the retention hazards unchanged",
)


@dataclass(frozen=True, kw_only=True)
class MTJ(TunnelJunction):
    """Binary, stochastic STT-MTJ cell (one junction per cell).

    Latents (trailing dimension = junctions per cell, 1 here): ``parallel`` (bool, P state),
    ``g_p`` (S, P conductance with the device-to-device spread of R_P), ``flip_hazard`` (unit
    exponential retention hazard), and, when their spreads are set, ``tmr`` and ``ic0`` (per
    junction TMR0 and critical current relative to ``i_c0``). ``program`` writes the nearest
    state with one pulse of ``write_current`` for ``write_time``; it fails with probability
    ``1 - P_sw`` (the write error rate). ``pulse``: each + pulse switches an AP junction to P,
    each − pulse a P junction to AP, with probability ``P_sw(pulse_current, pulse_width)``;
    pulses and reads leave the retention latents unchanged (memoryless).
    """

    technology = "mtj"
    r_p: float = param(8 * kOhm, unit="Ohm", doc="parallel-state (low) resistance",
                       source=f"Ron 8 kOhm, {NEUROSIM}", gt=0.0)
    tmr: float = param(2.0, doc="zero-bias tunnel magnetoresistance (R_AP - R_P)/R_P (2 = 200 %)",
                       source=f"Roff/Ron = 24/8 kOhm, {NEUROSIM}", gt=0.0, le=100.0)
    tmr_v_half: float | None = param(
        0.5, unit="V", doc="bias V_h at which TMR halves, TMR(V) = TMR0/(1 + (V/V_h)^2); None = "
        "bias-independent TMR", source=_ZHANG, gt=0.0, le=10.0, nullable=True)
    read_iv: str = param(
        "chord", doc="how the tile reads the bias-dependent cell: 'chord' = I(V_read)/V_read as a "
        "linear conductance (exact for 0/+-V_read drives), 'nonlinear' = I(V) solved per MVM",
        source="modelling choice (see describe())", options=("chord", "nonlinear"))
    r_p_sigma: float = param(
        0.0, doc="device-to-device relative std of R_P (Gaussian, R_AP follows via TMR)",
        source=f"0 by default; NeuroSim offers 7 %, {NEUROSIM}", ge=0.0, le=0.3)
    tmr_sigma: float = param(
        0.0, doc="device-to-device relative std of TMR0 (Gaussian, per junction)",
        source="0: no measured spread in the sources read (device-parameters.md §5)",
        ge=0.0, le=0.3)
    ic0_sigma: float = param(
        0.0, doc="device-to-device relative std of the critical current I_c0 (per junction)",
        source="0: no measured spread in the sources read (device-parameters.md §5)",
        ge=0.0, le=0.3)
    delta: float = param(60.0, doc="thermal stability factor E_b/(k_B T) at 300 K",
                         source="E/k_BT > 60 for > 10 y retention: Hayakawa, Ikeda et al., "
                                "CoFeB SyF free layers, abstract (device-parameters.md §5)",
                         gt=0.0, le=200.0)
    curie_temperature: float = param(
        1000.0, unit="K", doc="Curie temperature T_C of the free layer in Bloch's M_s(T) law",
        source="assumption: CoFeB free layer, ~1000 K (no value in the sources read)",
        ge=600.0, le=2000.0)
    barrier_ms_exponent: float = param(
        2.0, doc="n in E_b(T) ~ M_s(T)^n (0 = temperature-independent barrier)",
        source="M_s^2 scaling of the anisotropy energy: Zhang et al., arXiv 2105.07801 (2021), "
               "abstract", ge=0.0, le=4.0)
    tau0: float = param(1e-9, unit="s", doc="attempt time of thermal switching",
                        source="conventional 1 ns (device-parameters.md §5, retention law)",
                        gt=0.0, le=1e-6)
    i_c0: float = param(
        50e-6, unit="A", doc="critical switching current at 300 K",
        source="derived: J_c0 = 4 MA/cm^2 (Hayakawa, Ikeda et al., abstract) x pi (20 nm)^2; "
               "matches the commonly quoted 49 uA at 40 nm (Ikeda 2010, not verified)", gt=0.0)
    b_exponent: float = param(1.0, doc="exponent b of (1 - I/I_c0)^b in the switching barrier",
                              source=f"b = 1, {KOCH}; b = 1 or 2 undetermined: Taniguchi & "
                                     "Imamura, J. Nanosci. Nanotechnol. 12, 7520 (2012)",
                              ge=1.0, le=2.0)
    damping: float = param(0.01, doc="Gilbert damping alpha (precessional regime)",
                           source=SOT_MODEL, gt=0.0, le=1.0)
    anisotropy_field: float = param(
        0.3, unit="T", doc="effective anisotropy field mu0 H_k,eff (precessional regime)",
        source="a few kOe for CoFeB/MgO PMA free layers (Ikeda et al., Nat. Mater. 9, 721 "
               "(2010), not verified); gives tau_D = 1.9 ns, in the 1-3 ns of PMA devices "
               "(issue 13)", gt=0.0, le=20.0)
    write_current: float = param(80e-6, unit="A", doc="programming pulse current",
                                 source=f"set/reset current 80 uA, {NVSIM}", gt=0.0)
    pulse_current: float = param(80e-6, unit="A", doc="current of one update (training) pulse",
                                 source=f"= write current, {NVSIM}", gt=0.0)
    pulse_width: float = param(10e-9, unit="s", doc="width of one update (training) pulse",
                               source=f"= write time 10 ns, {NEUROSIM}", gt=0.0)
    write_voltage: float = param(1.0, unit="V", doc="driver amplitude of a programming pulse "
                                 "(junction plus access transistor)", source=NEUROSIM, gt=0.0)
    write_time: float = param(10e-9, unit="s", doc="width of one programming pulse",
                              source=NEUROSIM, gt=0.0)
    write_energy: float = derived(
        0.0, unit="J", doc="energy of one programming pulse in the junctions, n_junctions x "
        "I_w^2 t_w (R_P + R_AP(V_AP))/2", source="derived: I^2 R t (issue 13); survey range "
        f"0.6-4.5 pJ per bit with periphery ({SURVEY})", ge=0.0)
    read_voltage: float = param(0.1, unit="V", doc="read voltage across the junction",
                                source=READ_BIAS, gt=0.0)
    read_time: float = param(10e-9, unit="s", doc="duration of one read",
                             source=f"median read time 10 ns, {SURVEY}", gt=0.0)
    endurance: float = param(1e6, unit="cycles", doc="write cycles before wear-out",
                             source=f"median 1e6 (range 1e5-1e15), {SURVEY}", gt=0.0)
    g_min: float = derived(1 / 24e3, unit="S", doc="zero-bias AP conductance of the cell, "
                           "n_junctions / (R_P (1 + TMR))", source="derived from r_p, tmr",
                           ge=0.0)
    g_max: float = derived(1 / 8e3, unit="S", doc="P conductance of the cell, n_junctions / R_P",
                           source="derived from r_p", gt=0.0)
    levels: int = derived(2, doc="levels = n_junctions + 1", source="derived", ge=0,
                          integer=True)

    def _check(self) -> None:
        k = self.n_junctions
        object.__setattr__(self, "g_max", k / self.r_p)
        object.__setattr__(self, "g_min", k / (self.r_p * (1.0 + self.tmr)))
        object.__setattr__(self, "levels", k + 1)
        i, t = self.write_current, self.write_time
        v_ap = self._ap_bias(i)
        energy = k * i * i * t * 0.5 * (self.r_p + v_ap / i)
        object.__setattr__(self, "write_energy", energy)
        super()._check()

    def describe(self) -> str:
        """Parameters with units and sources, the derived physics at ``temperature``, then the
        modelling choices."""
        derived_lines = [
            f"Delta(T) = {self.delta_t:.4g}, I_c0(T) = {self.i_c0_t:.4g} A, tau_ret = "
            f"{self.tau_ret:.4g} s, tau_D = {self.tau_d:.4g} s",
            f"write error rate = {float(self.write_error_rate()):.3g}, update P_sw = "
            f"{float(self.switching_probability(self.pulse_current, self.pulse_width)):.3g}",
            f"read disturb after 1e9 reads: {self.read_disturb_probability(1e9):.3g} (+V), "
            f"{self.read_disturb_probability(1e9, -self.read_voltage):.3g} (-V); largest read "
            f"bias for 1e-6 after 1e9 reads: {self.max_read_voltage():.4g} V",
        ]
        return (super().describe() + "\n  derived:\n"
                + "\n".join(f"    - {c}" for c in derived_lines)
                + "\n  choices:\n" + "\n".join(f"    - {c}" for c in _CHOICES))

    # ------------------------------------------------------------------ physics
    @property
    def n_junctions(self) -> int:
        """MTJs in parallel per cell (1 for the binary cell)."""
        return 1

    @property
    def r_ap(self) -> float:
        """Zero-bias antiparallel-state resistance R_P (1 + TMR) (Ohm)."""
        return self.r_p * (1.0 + self.tmr)

    def tmr_at(self, v: float | Tensor) -> float | Tensor:
        """TMR at the junction bias ``v`` (V): ``TMR0 / (1 + (v/V_h)^2)``."""
        if self.tmr_v_half is None:
            return self.tmr if isinstance(v, float) else torch.full_like(v, self.tmr)
        return self.tmr / (1.0 + (v / self.tmr_v_half) ** 2)

    @property
    def barrier_ratio(self) -> float:
        """``E_b(T) / E_b(300 K)`` from ``M_s(T)^n`` and Bloch's law."""
        def m(t: float) -> float:
            return 1.0 - (t / self.curie_temperature) ** 1.5
        return (m(self.temperature) / m(T_REF)) ** self.barrier_ms_exponent

    @property
    def delta_t(self) -> float:
        """Thermal stability factor at the device temperature, ``E_b(T)/(k_B T)``."""
        return self.delta * self.barrier_ratio * T_REF / self.temperature

    @property
    def i_c0_t(self) -> float:
        """Critical current at the device temperature (A), ``I_c0 E_b(T)/E_b(300 K)``."""
        return self.i_c0 * self.barrier_ratio

    @property
    def tau_ret(self) -> float:
        """Mean retention time ``tau0 exp(Delta(T))`` of one junction (s)."""
        return self.tau0 * math.exp(self.delta_t)

    @property
    def tau_d(self) -> float:
        """Precessional time constant (1 + alpha^2) / (alpha gamma mu0 H_k) (s)."""
        return (1.0 + self.damping ** 2) / (self.damping * GAMMA_E * self.anisotropy_field)

    def switching_probability(self, current: float | Tensor, width: float | Tensor) -> Tensor:
        """Probability (float64) that one pulse of ``current`` (A) for ``width`` (s) switches a
        nominal junction that is in the opposite state (see the module docstring)."""
        return -torch.expm1(self._log_stay(current, width))

    def write_error_rate(self, current: float | Tensor | None = None,
                         width: float | Tensor | None = None) -> Tensor:
        """``1 - P_sw`` (float64, accurate when tiny); defaults to the programming pulse."""
        return torch.exp(self._log_stay(self.write_current if current is None else current,
                                        self.write_time if width is None else width))

    def read_disturb_probability(self, reads: float = 1.0, voltage: float | None = None) -> float:
        """Probability that ``reads`` reads at ``voltage`` (V, signed, across the cell:
        junction and ``access_resistance`` in series; default ``read_voltage``) flip a nominal
        junction in the state they disturb: AP for V > 0 (current ``V/(R_AP(V_j) + R_s)``,
        ``V_j`` the junction's zero-bias share of V), P for V < 0 (``|V|/(R_P + R_s)``).
        ``|V| <= write_voltage``: the sub-critical thermal law is a law of reads (see
        :meth:`Device.disturb`)."""
        where = f"{type(self).__name__}.read_disturb_probability"
        v = self.read_voltage if voltage is None else real_values(
            voltage, "voltage", where, lo=-self.write_voltage, hi=self.write_voltage, unit="V")
        if isinstance(v, Tensor):
            if v.numel() != 1:
                raise ConfigError(f"{where}: voltage has {v.numel()} values; allowed: one "
                                  "number of volts")
            v = float(v)
        n = float(as_f64(reads, "reads", positive=False))
        r_s = self.access_resistance
        if v > 0:
            v_j = v * self.r_ap / (self.r_ap + r_s)
            current = v / (self.r_p * (1.0 + self.tmr_at(v_j)) + r_s)
        else:
            current = -v / (self.r_p + r_s)
        if n == 0.0:
            return 0.0
        return float(-torch.expm1(n * self._log_stay(current, self.read_time)))

    def max_read_voltage(self, reads: float = 1e9, p: float = 1e-6) -> float:
        """Largest read bias |V| (V) at which ``reads`` reads of ``read_time`` flip a nominal
        junction with probability at most ``p``, in either polarity (the sub-critical thermal
        law solved for I; 0 if retention alone exceeds ``p`` over that time); the bias is across
        the cell, junction plus ``access_resistance``."""
        n = float(as_f64(reads, "reads", positive=True))
        if not 0.0 < p < 1.0:
            raise ConfigError(f"MTJ.max_read_voltage: p = {p!r} is not allowed; 0 < p < 1")
        x = math.log(n * self.read_time / (self.tau0 * -math.log1p(-p)))
        if x >= self.delta_t:
            return 0.0
        i_max = self.i_c0_t * (1.0 - (max(x, 0.0) / self.delta_t) ** (1.0 / self.b_exponent))
        drop = i_max * self.access_resistance  # across the access transistor
        return min(i_max * self.r_p, self._ap_bias(i_max)) + drop

    def _ap_bias(self, current: float) -> float:
        """Bias (V) across a zero-spread AP junction carrying ``current`` (A):
        ``V = I R_P (1 + TMR(V))``, solved by bisection (the left side minus the right grows
        with V)."""
        lo, hi = 0.0, current * self.r_ap
        for _ in range(80):
            mid = 0.5 * (lo + hi)
            tmr = float(self.tmr_at(mid))
            lo, hi = (mid, hi) if mid < current * self.r_p * (1.0 + tmr) else (lo, mid)
        return 0.5 * (lo + hi)

    def _log_stay(self, current: float | Tensor, width: float | Tensor,
                  ic0: float | Tensor = 1.0) -> Tensor:
        """``log(1 - P_sw)`` (float64) of one pulse; ``ic0``: per-junction I_c0 factor."""
        i = as_f64(current, "pulse current (A)", positive=False) / (self.i_c0_t * ic0)
        tw = as_f64(width, "pulse width (s)", positive=True)
        x_th = tw / self.tau0 * thermal_rate(i, self.delta_t, self.b_exponent)
        y = math.pi ** 2 * self.delta_t / 4.0 * torch.exp(-2.0 * (i - 1.0) * tw / self.tau_d)
        log_no_prec = torch.where(i > 1.0, torch.log(-torch.expm1(-y)), 0.0)
        return -x_th + log_no_prec

    # ------------------------------------------------------------------ cells
    def _junction(self, state: CellState, name: str, default: float) -> Tensor | float:
        x = state.latent.get(name)
        return default if x is None else x

    def _g_cell(self, state: CellState, parallel: Tensor, bias: float = 0.0) -> Tensor:
        """Cell conductance (S) with the junctions in ``parallel`` at junction bias ``bias``."""
        g_p = state.latent["g_p"]
        tmr = self._junction(state, "tmr", self.tmr)
        if bias and self.tmr_v_half is not None:
            tmr = tmr / (1.0 + (bias / self.tmr_v_half) ** 2)
        return torch.where(parallel, g_p, g_p / (1.0 + tmr)).sum(-1)

    def _read_bias(self) -> float:
        """Junction bias at which reads see the cell: V_read in 'chord' mode, else 0."""
        chord = self.read_iv == "chord" and self.tmr_v_half is not None
        return self.read_voltage if chord else 0.0

    def current(self, g: Tensor, v: Tensor) -> Tensor:
        """Cell current (A) at ``v`` (V). 'chord': ``g v`` (``g`` is already the chord
        conductance at V_read); 'nonlinear': ``g`` is the zero-bias conductance, split into P
        and AP junctions by the nominal levels, and the AP part scaled by
        ``r(v) = (1 + TMR0)/(1 + TMR(v))`` (exact for cells without device-to-device spread)."""
        if self.is_ohmic:
            return g * v
        share, r, _ = self._bias_terms(g, v)
        return g * v * (share + (1.0 - share) * r)

    def slope(self, g: Tensor, v: Tensor) -> Tensor:
        """``dI/dV`` (S) of :meth:`current` (> 0: TMR falls with |V|)."""
        if self.is_ohmic:
            return super().slope(g, v)
        share, r, dr = self._bias_terms(g, v)
        return g * (share + (1.0 - share) * (r + v * dr))

    def _bias_terms(self, g: Tensor, v: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """P share of the zero-bias conductance ``g``, ``r(v)`` and ``dr/dv``."""
        assert self.tmr_v_half is not None  # non-ohmic only with a bias dependence
        k, t0, vh = self.n_junctions, self.tmr, self.tmr_v_half
        g_p, g_a = 1.0 / self.r_p, 1.0 / self.r_ap
        m = ((g - k * g_a) / (g_p - g_a)).clamp(0.0, float(k))
        share = (m * g_p / g.clamp_min(1e-30)).clamp(0.0, 1.0)
        x = 1.0 + (v / vh) ** 2
        tmr_v = t0 / x
        r = (1.0 + t0) / (1.0 + tmr_v)
        dr = (1.0 + t0) * t0 * 2.0 * v / (vh * vh * x * x * (1.0 + tmr_v) ** 2)
        return share, r, dr

    @property
    def is_ohmic(self) -> bool:
        """True unless TMR depends on bias and ``read_iv`` is 'nonlinear'."""
        return self.tmr_v_half is None or self.read_iv == "chord"

    def disturb(self, state: CellState, reads: float | Tensor, *, voltage: float | None = None,
                generator: torch.Generator | None = None) -> CellState:
        """The cells after ``reads`` reads (a count >= 0, or a tensor of counts broadcastable to
        the cells) of ``read_time`` at ``voltage`` (V, signed, across the cell; default
        ``read_voltage``).

        V > 0 pushes AP junctions towards P, V < 0 P junctions towards AP; each junction of the
        disturbed state flips with ``1 - (1 - P_sw(I, t_read))^reads`` (closed form), where I
        is its own read current (its R_P, TMR(V) and I_c0, in series with
        ``access_resistance``; for k > 1 junctions per cell each junction is taken with its own
        series resistor, an approximation). Stuck cells keep their state.
        """
        n, v = self._disturb_args(state, reads, voltage, generator,
                                  f"{type(self).__name__}.disturb")
        gen = resolve_generator(generator, state.g)

        def run(st: CellState, n: Tensor, gen: torch.Generator | None) -> CellState:
            parallel = st.latent["parallel"]
            g_p = st.latent["g_p"].double()
            r_s = self.access_resistance  # in series with the junction
            if v > 0:
                tmr = self._junction(st, "tmr", self.tmr)
                v_j = v / (1.0 + g_p / (1.0 + tmr) * r_s)  # the junction's zero-bias share
                tmr_v = tmr / (1.0 + (v_j / self.tmr_v_half) ** 2) if self.tmr_v_half else tmr
                g_j = g_p / (1.0 + tmr_v)
                current, exposed = v * g_j / (1.0 + g_j * r_s), ~parallel
            else:
                current, exposed = -v * g_p / (1.0 + g_p * r_s), parallel
            ic0 = self._junction(st, "ic0", 1.0)
            log_stay = self._log_stay(current, self.read_time,
                                      ic0.double() if isinstance(ic0, Tensor) else ic0)
            m = n.unsqueeze(-1).to(log_stay.dtype)
            q = torch.where(m > 0, -torch.expm1(m * log_stay), 0.0).to(g_p.device)
            flip = exposed & (rand(st.latent["g_p"], gen) < q.to(st.latent["g_p"].dtype))
            new = parallel ^ flip
            out = st.replace(g=self._g_cell(st, new), parallel=new)
            return out.replace(g=self._hold_stuck(st, out.g))

        out = self._blockwise(run, state, (n,), gen, self._width_of(state), random=True)
        out.trusted = self
        return out

    # ------------------------------------------------------------------ contract
    def _program(self, g_target: Tensor, generator: torch.Generator | None) -> CellState:
        k = self.n_junctions
        like = g_target.unsqueeze(-1).expand(*g_target.shape, k).contiguous()
        step = 1.0 / self.r_p - 1.0 / self.r_ap
        m = torch.round((g_target - self.g_min) / step).clamp(0, k)
        idx = torch.arange(k, device=g_target.device, dtype=g_target.dtype)
        parallel = idx < m.unsqueeze(-1)
        latent: dict[str, Tensor] = {}
        g_p = torch.full_like(like, 1.0 / self.r_p)
        if self.r_p_sigma > 0.0:
            g_p = g_p / (1.0 + self.r_p_sigma * randn(like, generator)).clamp_min(0.1)
        latent["g_p"] = g_p
        if self.tmr_sigma > 0.0:
            latent["tmr"] = self.tmr * (1.0 + self.tmr_sigma * randn(like, generator)).clamp_min(
                0.05)
        ic0: float | Tensor = 1.0
        if self.ic0_sigma > 0.0:
            ic0 = latent["ic0"] = (1.0 + self.ic0_sigma * randn(like, generator)).clamp_min(0.1)
        ic0_64 = ic0.double() if isinstance(ic0, Tensor) else ic0
        wer = torch.exp(self._log_stay(self.write_current, self.write_time, ic0_64))
        if bool((wer > 0.0).any()):
            parallel = parallel ^ (rand(like, generator) < wer.to(like.dtype))
        latent["flip_hazard"] = exponential_hazard(like, generator)
        latent["parallel"] = parallel
        state = CellState(torch.zeros_like(g_target), latent)
        return state.replace(g=self._g_cell(state, parallel))

    def _mean(self, state: CellState, t: Tensor) -> Tensor:
        bias = self._read_bias()
        if not bias and not bool((t > 0).any()):
            return state.g
        parallel = state.latent["parallel"]
        rate = 1.0 / self.tau_ret  # 0.0 when tau_ret overflows: no flip
        if rate > 0.0 and bool((t > 0).any()):
            tt = t.unsqueeze(-1) if t.dim() else t
            parallel = parallel ^ (tt * rate > state.latent["flip_hazard"])
        return self._g_cell(state, parallel, bias)

    def _pulse(self, state: CellState, n: Tensor, generator: torch.Generator | None) -> CellState:
        parallel, g_p = state.latent["parallel"], state.latent["g_p"]
        ic0 = self._junction(state, "ic0", 1.0)
        log_stay = self._log_stay(self.pulse_current, self.pulse_width,
                                  ic0.double() if isinstance(ic0, Tensor) else ic0)
        m = n.unsqueeze(-1).abs().to(torch.float64)
        q = torch.where(m > 0, -torch.expm1(m * log_stay), 0.0)  # 1 - (1 - p)^|n|
        switch = rand(g_p, generator) < q.to(g_p.dtype)
        nn = n.unsqueeze(-1)
        parallel = torch.where(switch & (nn > 0), True, parallel)
        parallel = torch.where(switch & (nn < 0), False, parallel)
        return state.replace(g=self._g_cell(state, parallel), parallel=parallel)


@dataclass(frozen=True, kw_only=True)
class CompoundMTJ(MTJ):
    """Compound synapse of ``n_mtj`` binary MTJs in parallel: ``n_mtj + 1`` evenly spaced levels
    (Vincent et al., ISCAS 2014, stochastic binary synapses). ``program`` sets the first ``m``
    junctions to P for level ``m``; every junction sees each update pulse and read and switches
    independently (the pulse current is taken per junction)."""

    n_mtj: int = param(4, doc="binary MTJs in parallel per synapse",
                       source="Vincent et al., ISCAS 2014 (10.1109/ISCAS.2014.6865325); "
                              "k = 4 is a choice", ge=1, le=256, integer=True)

    @property
    def n_junctions(self) -> int:
        return self.n_mtj


def _vincent_compound() -> CompoundMTJ:
    return CompoundMTJ(n_mtj=4, r_p_sigma=0.07, pulse_current=0.9375 * 50e-6)


PRESETS = [
    Preset("mtj-neurosim", "mtj", lambda: MTJ(r_p_sigma=0.07, access_resistance=5e3),
           f"{NEUROSIM}: Ron 8 kOhm, Roff 24 kOhm, access transistor 5 kOhm in series (the "
           "junction resistances are the bare MTJ's), write 1 V 10 ns, sigma 7 %; read 0.1 V "
           f"({READ_BIAS}; NeuroSim's 0.5 V drives 1.25 I_c0 and switches the cell); switching: "
           f"Delta 60 (Hayakawa/Ikeda abstract), I_c0 50 uA [derived], write 80 uA ({NVSIM}); "
           f"TMR(V) ({_ZHANG}); survey medians ({SURVEY})",
           "binary STT-MTJ, 41.7/125 uS junction (cell 34.5/76.9 uS with its 5 kOhm access "
           "transistor), 7 % d2d R_P spread, 0.1 V reads, 80 uA writes"),
    Preset("mtj-nvsim", "mtj",
           lambda: MTJ(r_p=3 * kOhm, tmr=1.0, write_voltage=1.25, read_voltage=0.05),
           f"{NVSIM}: Ron 3 kOhm, Roff 6 kOhm, 80 uA, 10 ns; write voltage 1 pJ / (80 uA x 10 ns) "
           "= 1.25 V [derived]; read 0.05 V, below the disturb limit of a 3 kOhm junction "
           "(NVSim's 0.25 V drives 83 uA, above its own 80 uA write current)",
           "binary STT-MTJ, 167/333 uS, TMR 100 %, NVSim default cell, 0.05 V reads"),
    Preset("mtj-vincent2014-compound4", "mtj", _vincent_compound,
           "Vincent et al., ISCAS 2014 (stochastic binary MTJ synapses); junctions as "
           f"mtj-neurosim ({NEUROSIM}); update pulses 0.9375 I_c0 x 10 ns (P_sw ~ 0.21 with b = "
           "1, a design choice; 3.75x the 12.5 uA read current of a P junction)",
           "4 MTJs in parallel: 5 levels 0.167-0.5 mS, stochastic sub-critical updates"),
]
