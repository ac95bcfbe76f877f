"""Multi-state domain-wall MTJ: a wall pinned at one of ``n_states`` notches along the free
layer, moved by stochastic depinning and lost by thermal hopping.

* **Conductance**: the cell conducts through its P and AP parts in parallel, so G is linear in
  the wall position x in [0, 1]: ``G = g_min + x (g_max - g_min)`` (Lequeux et al., Sci. Rep. 6,
  31510 (2016): intermediate states set by the wall position).
* **Stochastic depinning** (per pulse): a pulse of drive ``i = I/I_dep`` below the depinning
  current frees the wall from its notch by thermal activation over the current-lowered pinning
  barrier, ``P_move = 1 - exp(-(t_w/tau0) exp(-Delta_pin (1 - i)))`` (the Arrhenius law of
  current-assisted depinning, e.g. Burrowes et al., Nat. Phys. 6, 17 (2010), not verified here;
  b = 1 as for the MTJ); at or above ``I_dep`` the wall moves on every pulse. A moved wall
  stops at the next notch. ``n`` pulses move it ``Binomial(|n|, P_move)`` notches, stopping at
  the ends.
* **Device-to-device notch spread**: each cell's depinning current is ``I_dep (1 + sigma z)``
  (``depin_sigma``, drawn at programming), so cells differ in ``P_move``.
* **Cycle-to-cycle position jitter** (``c2c_sigma``): a Gaussian of the wall position drawn
  afresh at every write that moves the wall, clamped to the track; it does not accumulate
  because the notches re-pin the wall.
* **Retention loss**: the pinned wall hops to a neighbouring notch (either side with equal
  probability, none past the ends) after a time of mean ``tau0 exp(Delta_pin(T))``,
  ``Delta_pin(T) = Delta_pin(300 K) 300 K / T`` (temperature-independent pinning energy, a
  choice). The hop fires when ``t / tau_hop`` exceeds a unit exponential hazard drawn at
  programming; only the first hop is modelled (exact for ``t << tau_hop``).
* TMR bias dependence and read disturb by the read current are not modelled for the wall
  (the write current of the three-terminal cell flows in the track, not through the barrier).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from memxbar.devices.base import CellState, Preset, param, rand, randn, real_values
from memxbar.devices.spintronic import (
    HSIN,
    READ_BIAS,
    SANDIA,
    SIDDIQUI,
    SURVEY,
    T_REF,
    TunnelJunction,
    derived,
    exponential_hazard,
    thermal_rate,
    uS,
)

_CHOICES = (
    "depinning barrier linear in the drive (b = 1); deterministic moves at or above I_dep",
    "pinning barrier, drive and notch spread are assumptions (no measured values in the "
    "sources read); the defaults give near-deterministic moves with rare slow notches",
    "retention: only the first thermal hop, either side with equal probability",
    "TMR bias dependence and read disturb by the read current not modelled",
)


@dataclass(frozen=True, kw_only=True)
class DomainWall(TunnelJunction):
    """Domain-wall MTJ with ``n_states`` pinned wall positions along the free-layer track.

    Latents: ``state`` (int16 notch index), ``hop_hazard`` (unit exponential), ``hop_up`` (bool:
    the first thermal hop goes towards the P end) and, when ``depin_sigma > 0``, ``i_dep``
    (the cell's depinning current relative to the nominal one).
    """

    technology = "domain-wall"
    g_min: float = param(64 * uS, unit="S", doc="conductance with the wall at the AP end",
                         source=SANDIA, ge=0.0)
    g_max: float = param(160 * uS, unit="S", doc="conductance with the wall at the P end",
                         source=SANDIA, gt=0.0)
    n_states: int = param(11, doc="pinned wall positions (conductance states)",
                          source=f"11-state memory, {HSIN}", ge=2, le=10000, integer=True)
    c2c_sigma: float = param(
        0.02, doc="cycle-to-cycle std of the wall position per write, fraction of the range",
        source=f"2 % CTC variation, {HSIN} (read as a fraction of the range: assumption)",
        ge=0.0, le=0.5)
    pin_delta: float = param(
        60.0, doc="pinning barrier of a notch over k_B T at 300 K (retention and depinning)",
        source="assumption: the 10-year design point Delta = 60 of MTJ free layers (Hayakawa, "
               "Ikeda et al., abstract, device-parameters.md §5); no DW value in the sources",
        gt=0.0, le=200.0)
    tau0: float = param(1e-9, unit="s", doc="attempt time of thermal depinning",
                        source="conventional 1 ns, as for the MTJ (device-parameters.md §5)",
                        gt=0.0, le=1e-6)
    pulse_drive: float = param(
        1.1, doc="write-pulse current over the nominal depinning current, I/I_dep",
        source="assumption: pulses 10 % above depinning (deterministic for a nominal notch)",
        gt=0.0, le=10.0)
    depin_sigma: float = param(
        0.05, doc="device-to-device relative std of the depinning current (notch strength)",
        source="assumption: 5 % (no measured notch spread in the sources read)", ge=0.0,
        le=0.5)
    write_voltage: float = param(1.1, unit="V", doc="amplitude of a programming pulse",
                                 source=f"stand-in: STT-MRAM median 1.1 V, {SURVEY}", gt=0.0)
    write_time: float = param(8e-9, unit="s", doc="width of one programming or update pulse",
                              source=f"8 ns current pulses, {SIDDIQUI}", gt=0.0)
    write_energy: float = param(16e-12, unit="J", doc="energy of one weight modulation",
                                source=f"<= 16 pJ per weight modulation, {SIDDIQUI}", ge=0.0)
    read_voltage: float = param(0.1, unit="V", doc="read voltage across the MTJ",
                                source=f"as the MTJ read: {READ_BIAS}", gt=0.0)
    read_time: float = param(10e-9, unit="s", doc="duration of one read",
                             source=f"stand-in: median read time 10 ns, {SURVEY}", gt=0.0)
    endurance: float = param(1e11, unit="cycles", doc="write cycles before wear-out",
                             source="SOT up to 1e11, NVMExplorer 2016-2020 endurance summary "
                                    "(device-parameters.md §5); write current bypasses the "
                                    "barrier", gt=0.0)
    levels: int = derived(11, doc="levels = n_states", source="derived", ge=0, integer=True)

    def _check(self) -> None:
        object.__setattr__(self, "levels", self.n_states)
        super()._check()

    def describe(self) -> str:
        """Parameters with units and sources, the derived physics at ``temperature``, then the
        modelling choices."""
        derived_line = (f"Delta_pin(T) = {self.pin_delta_t:.4g}, tau_hop = {self.tau_hop:.4g} s, "
                        f"P_move of a nominal notch = {float(self.move_probability()):.4g}")
        return (super().describe() + f"\n  derived:\n    - {derived_line}\n  choices:\n"
                + "\n".join(f"    - {c}" for c in _CHOICES))

    # ------------------------------------------------------------------ physics
    @property
    def pin_delta_t(self) -> float:
        """Pinning barrier over k_B T at the device temperature."""
        return self.pin_delta * T_REF / self.temperature

    @property
    def tau_hop(self) -> float:
        """Mean time (s) before a pinned wall hops thermally, ``tau0 exp(Delta_pin(T))``."""
        return self.tau0 * math.exp(self.pin_delta_t)

    def move_probability(self, i_dep: float | Tensor = 1.0) -> Tensor:
        """Probability (float64) that one pulse frees the wall from a notch whose depinning
        current is ``i_dep`` (> 0) times the nominal one."""
        return self._move_probability(real_values(
            i_dep, "i_dep", f"{type(self).__name__}.move_probability", lo=0.0, lo_open=True))

    def _move_probability(self, i_dep: float | Tensor) -> Tensor:
        i = self.pulse_drive / torch.as_tensor(i_dep, dtype=torch.float64)
        p = -torch.expm1(-self.write_time / self.tau0 * thermal_rate(i, self.pin_delta_t, 1.0))
        return torch.where(i >= 1.0, 1.0, p)

    # ------------------------------------------------------------------ contract
    def _g_of(self, s: Tensor, like: Tensor, generator: torch.Generator | None) -> Tensor:
        x = s.to(like.dtype) / (self.n_states - 1)
        if self.c2c_sigma > 0.0:
            x = (x + self.c2c_sigma * randn(like, generator)).clamp(0.0, 1.0)
        return self.g_min + x * (self.g_max - self.g_min)

    def _program(self, g_target: Tensor, generator: torch.Generator | None) -> CellState:
        step = (self.g_max - self.g_min) / (self.n_states - 1)
        s = torch.round((g_target - self.g_min) / step).clamp(0, self.n_states - 1)
        s = s.to(torch.int16)
        latent = {"state": s, "hop_hazard": exponential_hazard(g_target, generator),
                  "hop_up": rand(g_target, generator) < 0.5}
        if self.depin_sigma > 0.0:
            z = randn(g_target, generator)
            latent["i_dep"] = (1.0 + self.depin_sigma * z).clamp_min(0.05)
        return CellState(self._g_of(s, g_target, generator), latent)

    def _mean(self, state: CellState, t: Tensor) -> Tensor:
        rate = 1.0 / self.tau_hop  # 0.0 when tau_hop overflows: no hop
        if rate == 0.0 or not bool((t > 0).any()):
            return state.g
        hopped = t * rate > state.latent["hop_hazard"]
        s = state.latent["state"].to(torch.int64)
        shift = torch.where(state.latent["hop_up"], 1, -1) * hopped
        moved = (s + shift).clamp(0, self.n_states - 1) - s
        step = (self.g_max - self.g_min) / (self.n_states - 1)
        return (state.g + moved.to(state.g.dtype) * step).clamp(self.g_min, self.g_max)

    def _pulse(self, state: CellState, n: Tensor, generator: torch.Generator | None) -> CellState:
        s = state.latent["state"].to(torch.int64)
        i_dep = state.latent.get("i_dep")
        p = self._move_probability(1.0 if i_dep is None else i_dep.double())
        count = n.abs()
        if bool((p < 1.0).any()):
            prob = torch.broadcast_to(p, count.shape).to(state.g.device, torch.float64)
            count = torch.binomial(count.to(torch.float64), prob, generator=generator)
            count = count.to(torch.int64)
        s_new = (s + torch.sign(n) * count).clamp(0, self.n_states - 1)
        moved = s_new != s
        g = torch.where(moved, self._g_of(s_new, state.g, generator), state.g)
        return state.replace(g=g, state=s_new.to(torch.int16))


PRESETS = [
    Preset("dw-hsin2025", "domain-wall", DomainWall,
           f"{HSIN}: 11 states, 2 % CTC; G range {SANDIA}; write 8 ns, <= 16 pJ ({SIDDIQUI}); "
           "depinning, notch spread and pinning barrier: stated assumptions",
           "domain-wall MTJ, 11 states over 64-160 uS, 2 % cycle-to-cycle spread"),
    Preset("dw-siddiqui2020", "domain-wall", lambda: DomainWall(n_states=25),
           f"{SIDDIQUI}: 8 ns pulses, <= 16 pJ; G range {SANDIA}; 25 states derived from the "
           "same table (median dG ~ 4 uS per pulse near CDF 0.5 over a 96 uS range); CTC 2 % "
           f"stand-in from {HSIN}",
           "domain-wall MTJ, 25 states over 64-160 uS, 8 ns / 16 pJ writes"),
]
