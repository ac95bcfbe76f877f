"""Read disturb of filamentary RRAM: the conductance a cell loses under accumulated read bias.

Law (Jiang et al., "An Analytical Model of Read-Disturb Failure Time in a Post-Cycling
Resistive Switching Memory", IEEE TED 2021, IEEE Xplore 9580480): a low-resistance (filament)
cell under a read bias ``V`` keeps its conductance ``G0`` for a transition time ``t_T``, then
loses it as a power law of the accumulated stress time ``t`` (reads x ``read_time``)::

    G(t) = G0                      t <= t_T
    G(t) = G0 (t / t_T)^(-p)       t >  t_T
    p(V)  = c1 exp(a |V| / k_B T)
    t_T   = t0 (F (1 - k N^m))^(1 / p)

``N`` is the cell's write (set/reset) cycles before the reads: the endurance latent ``cycles``
of :mod:`memxbar.devices.endurance` (absent = 1, the program write), so cycled cells disturb
sooner. The constants are the paper's fit as used by the CIM-Explorer simulator (Pelke et al.,
arXiv 2505.14303, 2025; ``F`` read from the paper's figures there): ``t0 = 15.5 ns``, ``F =
1.43339``, ``c1 = 0.0068``, ``a = 0.11`` (with ``k_B T`` in eV), ``k = 0.003``, ``m = 0.41``.
The law is double-exponential in ``V``: at 300 K a freshly programmed cell (N = 1) has
``t_T`` = 8.1 us of read stress at 0.5 V (820 reads of 9.8 ns), 36 ms at 0.3 V and 85 s at
0.2 V; ``p`` is 0.057 at 0.5 V, so 1e9 reads of 9.8 ns at 0.5 V leave 45 % of ``G0``.

Choices (stated, not from the source):

* The paper's cells are binary; an analog cell keeps its floor: ``g -> g_min + (g - g_min)
  G(t)/G0``, so an HRS cell at ``g_min`` is not disturbed (as in the source, which disturbs the
  LRS only) and a cell at ``g_max`` follows the law up to its ``g_min`` offset.
* The law is even in ``V`` (the source uses ``|V|``), so both read polarities disturb alike.
* ``V`` is the bias across the cell; with an ``access_resistance`` R_s in series the filament
  sees its ohmic share ``V / (1 + g R_s)`` (per cell), so high-G cells are disturbed less.
* ``k_B T`` is held at 300 K, the fit's temperature: the fit's temperature dependence is not
  validated (``Device.temperature`` does not change the law).
* Latent ``read_stress`` (s, float, absent = 0) accumulates the stress time per cell, so that
  several calls add up to one: exact when every read has the same ``|V|`` (the tile reads at
  ``+-V_read``); for mixed voltages the retained fraction is re-evaluated at each call's
  voltage from the total stress (an approximation).
* No device-to-device spread of ``t_T`` (the source gives none): the law is deterministic.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from memxbar.devices.base import K_B_EV, T_REF, CellState, Parametrized, param

if TYPE_CHECKING:
    from memxbar.devices.base import Device

JIANG = ("Jiang et al., 'An Analytical Model of Read-Disturb Failure Time in a Post-Cycling "
         "Resistive Switching Memory', IEEE TED 2021 (IEEE Xplore 9580480)")
_FIT = JIANG + "; constants as used by CIM-Explorer (Pelke et al., arXiv 2505.14303, 2025)"


@dataclass(frozen=True, kw_only=True)
class PowerLawReadDisturb(Parametrized):
    """Voltage-accelerated power-law loss of filament conductance under read bias (module
    doc). Used by :class:`memxbar.devices.rram.RRAM` (``RRAM.read_disturb``)."""

    t0: float = param(1.55e-8, unit="s", gt=0.0,
                      doc="prefactor of the transition time t_T = t0 (F (1 - k N^m))^(1/p)",
                      source=_FIT)
    f: float = param(1.43339, gt=0.0, doc="base F of the transition time",
                     source=_FIT + ", read from the paper's figures")
    c1: float = param(0.0068, gt=0.0, doc="power-law exponent p at zero bias, p = c1 exp(a "
                                          "|V| / k_B T)", source=_FIT)
    a: float = param(0.11, ge=0.0, doc="voltage acceleration of p (k_B T in eV, V in volts)",
                     source=_FIT)
    k: float = param(0.003, ge=0.0, doc="cycling term of t_T: factor (1 - k N^m)^(1/p), N = "
                                        "write cycles", source=_FIT)
    m: float = param(0.41, ge=0.0, doc="exponent of the write cycles N in the cycling term",
                     source=_FIT)

    def exponent(self, voltage: float | Tensor) -> Tensor:
        """Power-law exponent ``p`` (float64) of the conductance loss at the read bias
        ``voltage`` (V) across the device."""
        v = torch.as_tensor(voltage, dtype=torch.float64)
        return self.c1 * torch.exp(self.a * v.abs() / (K_B_EV * T_REF))

    def log_transition_time(self, voltage: float | Tensor, cycles: Tensor | float = 1.0
                            ) -> Tensor:
        """``ln t_T`` (t_T in s, float64) at ``voltage`` (V) after ``cycles`` write cycles;
        ``-inf`` where the cycling term reaches 0 (the cell disturbs at once)."""
        n = torch.as_tensor(cycles, dtype=torch.float64)
        wear = (1.0 - self.k * n.clamp_min(0.0) ** self.m).clamp_min(0.0)
        top, p = math.log(self.f) + torch.log(wear), self.exponent(voltage)
        # p overflows to inf at large |V|: t_T -> t0 (-inf stays -inf; no inf / inf = NaN)
        late = torch.where(torch.isinf(p), torch.where(torch.isinf(top), top, 0.0), top / p)
        return math.log(self.t0) + late

    def retained(self, stress: Tensor | float, voltage: float | Tensor,
                 cycles: Tensor | float = 1.0) -> Tensor:
        """``G(t) / G0`` (float64) after ``stress`` s of read bias at ``voltage`` (V)."""
        t = torch.as_tensor(stress, dtype=torch.float64)
        return torch.exp(self._log_retained(t, self.log_transition_time(voltage, cycles),
                                            self.exponent(voltage)))

    @staticmethod
    def _log_retained(t: Tensor, log_tt: Tensor, p: Tensor) -> Tensor:
        over = torch.where(t > 0, torch.log(t) - log_tt, torch.zeros_like(t))
        return torch.where(over > 0, -p * over, 0.0)  # p = inf before t_T: 0, not -inf * 0

    def apply(self, device: Device, state: CellState, reads: Tensor, voltage: float
              ) -> CellState:
        """``state`` after ``reads`` (float64 counts, the cells' shape) more reads of
        ``device.read_time`` at ``voltage`` (V, across the cell): conductances scaled above
        ``g_min`` by the retained fraction of the added stress, latent ``read_stress``
        advanced. The device sees ``V / (1 + g R_s)`` in series with its
        ``access_resistance`` R_s (ohmic share). Stuck cells keep their value."""
        from memxbar.devices import endurance  # lazy: endurance imports base

        lo, r_s = device.g_min, device.access_resistance
        dt = reads * device.read_time

        def run(st: CellState, dt: Tensor, gen: None) -> CellState:
            old = st.latent.get("read_stress")
            s0 = torch.zeros_like(dt) if old is None else old.to(torch.float64)
            s1 = s0 + dt
            u = voltage / (1.0 + st.g.to(torch.float64) * r_s) if r_s else voltage
            p = self.exponent(u)
            log_tt = self.log_transition_time(u, endurance.cycles(st))
            a1, a0 = self._log_retained(s1, log_tt, p), self._log_retained(s0, log_tt, p)
            ratio = torch.where(torch.isinf(a1), 0.0, torch.exp(a1 - a0))  # -inf: all lost
            g = (lo + (st.g.to(torch.float64) - lo) * ratio).to(st.g.dtype)
            new = st.replace(read_stress=s1.to(st.g.dtype))
            return new.replace(g=device._hold_stuck(new, g))

        out = device._blockwise(run, state, (dt,), None, device._width_of(state))
        out.trusted = device
        return out
