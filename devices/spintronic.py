"""What the spintronic cells share: physical constants, the sources they cite, the Néel–Brown
switching law of a thermally activated barrier, and the read noise of a tunnel barrier.

The cells themselves live in :mod:`memxbar.devices.mtj` (binary and compound STT-MTJ) and
:mod:`memxbar.devices.domain_wall` (multi-state domain-wall MTJ).

* **Thermally activated escape over a barrier lowered by a current** (Néel–Brown; spin-torque
  form of Koch, Katine & Sun, PRL 92, 088302 (2004); exponent ``b`` discussed by Taniguchi &
  Imamura, J. Nanosci. Nanotechnol. 12, 7520 (2012)): the mean escape time is
  ``tau(I) = tau0 exp(Delta (1 - I/I_c)^b)`` for ``I < I_c``, so ``N`` independent stresses of
  width ``t`` leave the state with probability ``1 - exp(-N t / tau(I))``: closed form in N.
* **Read noise**: shot noise of a tunnel barrier with Fano factor 1, which becomes Johnson noise
  at low bias: ``S_I = 2 e I coth(eV/2kT)`` (Blanter & Büttiker, Phys. Rep. 336, 1 (2000), the
  tunnel-junction limit), integrated over the bandwidth ``1/(2 t_read)`` of one read, plus an
  optional relative term for 1/f or telegraph noise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from memxbar.devices.base import MAX_PULSES_CLOSED_FORM, CellState, Device, param
from memxbar.errors import ConfigError

E_CHARGE = 1.602176634e-19  # elementary charge, C
K_B = 1.380649e-23  # Boltzmann constant, J/K
GAMMA_E = 1.76085963e11  # electron gyromagnetic ratio, rad/(s T)
T_REF = 300.0  # K: temperature at which the presets quote Delta and the pinning barriers

uS = 1e-6
kOhm = 1e3

NEUROSIM = "MLP_NeuroSim_V3.0 documents/Cell.cpp, DigitalNVM (device-parameters.md §5)"
NVSIM = "NVSim/NVMExplorer data/cell_cfgs/STTRAM.cell (device-parameters.md §5)"
SURVEY = "NVMExplorer STTRAM_data.pkl survey, n = 29 (shared/data/surveys/nvm/STTRAM.csv)"
SOT_MODEL = "zhuzibn/SOT_STT_compact_model README defaults (device-parameters.md §5)"
SANDIA = ("cross-sim-data lookup_tables/DWMTJ_SOT/300K/dG_increasing0.txt G bins "
          "64.06-160.5 uS (MuMax3 simulation; device-parameters.md §5)")
SIDDIQUI = "Siddiqui et al., Nano Lett. 20, 1033 (2020), abstract"
HSIN = "Hsin et al., Adv. Sci. 12, 2417735 (2025), abstract"
KOCH = "Koch, Katine & Sun, PRL 92, 088302 (2004): thermally activated STT switching"
READ_BIAS = ("0.1 V class MTJ read bias: 0.08 V read in the survey row 10.1109/VLSIT.2014.6894357 "
             f"({SURVEY}; the other rows' 0.6-1.25 V 'read voltages' equal their write/supply "
             "voltage, not the junction bias); chosen below the read-disturb limit "
             "(MTJ.max_read_voltage)")


def derived(default: Any, *, unit: str = "", doc: str, source: str, **bounds: Any) -> Any:
    """A parameter computed from others in ``_check`` (not a constructor argument)."""
    f = param(default, unit=unit, doc=doc, source=source, **bounds)
    f.init = False
    return f


def as_f64(x: float | Tensor, name: str, *, positive: bool) -> Tensor:
    """``x`` as a float64 tensor; refuses non-finite values and values <= 0 (or < 0)."""
    t = torch.as_tensor(x, dtype=torch.float64)
    bad = ~torch.isfinite(t) | ((t <= 0) if positive else (t < 0))
    if bool(bad.any()):
        allowed = "finite and > 0" if positive else "finite and >= 0"
        raise ConfigError(f"{name} = {x!r} is not allowed; it must be {allowed}")
    return t


def thermal_rate(i: Tensor, delta: float | Tensor, b: float) -> Tensor:
    """Escape attempts that succeed per attempt time: ``exp(-Delta (1 - i)^b)`` for the
    current ``i`` in units of the critical current (the barrier is clamped at 0 above 1)."""
    return torch.exp(-delta * (1.0 - i).clamp_min(0.0) ** b)


def exponential_hazard(like: Tensor, generator: torch.Generator | None) -> Tensor:
    """Unit-mean exponential samples (the hazard at which a thermally activated event fires)."""
    u = torch.rand(like.shape, generator=generator, dtype=like.dtype, device=like.device)
    return -torch.log1p(-u)


@dataclass(frozen=True, kw_only=True)
class TunnelJunction(Device):
    """Shared read-noise model of cells read through an MgO tunnel barrier (at the device's
    ``temperature``)."""

    cell_type = "1T1MTJ"
    max_pulses = MAX_PULSES_CLOSED_FORM  # MTJ and domain wall: a train in one step
    read_noise_rel: float = param(
        0.0, doc="extra relative read-noise std (1/f, telegraph) on top of shot noise",
        source="0: no measured value in the sources read (device-parameters.md §5)",
        ge=0.0, le=1.0)

    def _read_std(self, state: CellState, t: Tensor, mean: Tensor) -> Tensor:
        g = mean
        v = self.read_voltage
        coth = 1.0 / math.tanh(E_CHARGE * v / (2.0 * K_B * self.temperature))
        bandwidth = 1.0 / (2.0 * self.read_time)
        var = 2.0 * E_CHARGE * g * coth * bandwidth / v + (self.read_noise_rel * g) ** 2
        return var.clamp_min(0.0).sqrt()
