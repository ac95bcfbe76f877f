"""Endurance wear-out as cell state: each cell counts its write cycles, its conductance window
closes and its chance of failing (becoming stuck) grows with them.

State. Latent ``cycles`` (int64, the cells' shape): write cycles the cell has had; a state
without it has had one (the program write). :meth:`Device.pulse` adds ``|n|`` (each pulse is a
write at the full write amplitude, so it counts as one cycle: an upper bound for partial
updates), program-and-verify (:mod:`memxbar.training.verify`) adds one per re-write. Latent
``worn`` (bool) marks the cells that failed by wear; they also carry a ``stuck`` code.

Law, per technology (:data:`WEAR_LAWS`), with ``N_e = Device.endurance`` the characteristic
cycle count:

* **Window closure.** ``w(c) = 1 / (1 + (c / N_e)^s)`` of the fresh window ``g_max - g_min``
  is left after ``c`` cycles (``s = 0``: no gradual closure): half at ``N_e``; from 90 % to
  10 % between ``N_e / 9`` and ``9 N_e`` (1.9 decades) for ``s = 1``, and a log-log slope of
  ``-s`` late in life, the power-law degradation after onset of the empirical metal-oxide
  endurance model (MemTorch, Lammie et al., SST 2021). The window closes toward the point
  ``P = g_min + p R`` of the fresh range ``R``: every read of a worn cell sees
  ``G_read = P + (G - P) w(c)`` (the cell's own state, its offsets and spread included, is
  kept; the read-out contrast shrinks, as interface charge screens the polarization of a
  cycled FeFET while its ferroelectric still switches, Fraunhofer 2026). ``g_min``/``g_max``
  thus move to ``lo = g_min + (1 - w) p R`` and ``hi = g_max - (1 - w)(1 - p) R``, and
  program-and-verify cannot reach targets outside them.
* **Failure.** Cycles to failure are lognormal, ``ln C_f ~ N(ln(r N_e), sigma^2)``; a cell
  alive after ``c1`` cycles fails during the writes up to ``c2`` with probability
  ``1 - S(c2) / S(c1)`` (``S`` the survival function) and is then stuck at ``g_max`` or
  ``g_min`` (the technology's failure mode). Failure draws are made only for cells whose
  failure probability by ``c2`` exceeds :data:`FAIL_EPS` (1e-9), so writes far from the
  endurance draw no random numbers (and leave the random streams of the models as they were).

A cell is **worn out** (:func:`worn_out`) when it has failed or its window is below half.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from memxbar.devices.base import STUCK_OFF, STUCK_ON, CellState, Device, real_values

FAIL_EPS = 1e-9
"""Failure probabilities below this are not sampled (bias <= 1e-9 per cell)."""

_Z_EPS = -6.0  # Phi(-6.0) = 9.9e-10 <= FAIL_EPS


@dataclass(frozen=True)
class WearLaw:
    """Wear-out law of one technology (module doc). ``window_slope`` s (0: no gradual
    closure); ``window_point`` p in [0, 1]: where the window closes to (0: g_min, 1: g_max);
    ``fail_ratio`` r: median cycles to failure / endurance; ``fail_sigma``: lognormal spread
    of cycles to failure (natural log); ``fail_state``: stuck code of a failed cell."""

    window_slope: float
    window_point: float
    fail_ratio: float
    fail_sigma: float
    fail_state: int
    source: str


_SIGMA = ("lognormal cycles-to-failure spread sigma_ln = 1 (a factor 10 spans +-1.15 sigma): "
          "assumption, no per-cell distribution in device-parameters.md")
WEAR_LAWS: dict[str, WearLaw | None] = {
    "fefet": WearLaw(
        1.0, 0.5, 10.0, 1.0, STUCK_OFF,
        "memory-window collapse from interface trap generation, both V_T states converging "
        "(Yurchuk et al., IEEE TED 63:3501 (2016); Fraunhofer 'endurance paradox', 2026: "
        "window closure after ~1e4-1e5 cycles while the ferroelectric still switches), "
        "endurance 1e5 P/E (Duenkel et al., IEDM 2017); later interlayer breakdown (Ni et al., "
        "VLSI 2018: 5e6 cycles ended by IL breakdown) -> failure median 10 N_e, cell stuck "
        "erased (choice here); s = 1: closure over ~2 decades [D shape]; " + _SIGMA),
    "rram": WearLaw(
        0.5, 0.17, 1.0, 1.0, STUCK_ON,
        "window shape fitted to a published curve: LRS/HRS resistance vs cycles of 10 nm and "
        "20 nm TiN/Hf(Al)O/Hf/TiN cells, Lammie, Rahimi Azghadi & Ielmini, Semicond. Sci. "
        "Technol. 36:065003 (2021), Fig. 2A (data points of the authors' repository, benchmarks/"
        "physics_published.py): free fits s = 0.53 / 0.43 (s = 1: 2.4x / 1.4x their rms error), "
        "closure point p = 0.15 / 0.18 of the fresh range above g_min, i.e. the LRS loses "
        "more conductance than the HRS gains (LRS degradation by filament shrinkage: "
        "'Statistical assessment of endurance degradation in high and low resistive states of "
        "the HfO2-based RRAM', 2013, abstract); s = 0.5, p = 0.17 (means) [D]; end of life by "
        "reset failure, stuck LRS (B. Chen et al., IEDM 2011, 'Physical mechanisms of "
        "endurance degradation in TMO-RRAM'); " + _SIGMA),
    "pcm": WearLaw(
        0.0, 0.5, 1.0, 1.0, STUCK_ON,
        "window kept until abrupt failure; stuck-SET (void formation / Sb-Te segregation) the "
        "common end of life (Burr et al., JVST B 28:223 (2010), endurance section); " + _SIGMA),
    "mtj": WearLaw(
        0.0, 0.5, 1.0, 1.0, STUCK_ON,
        "TMR kept until MgO barrier breakdown (time-dependent dielectric breakdown), which "
        "shorts the junction: stuck low resistance (Kan et al., IEDM 2016: endurance limited by "
        "barrier breakdown); " + _SIGMA),
    "domain-wall": WearLaw(
        0.0, 0.5, 1.0, 1.0, STUCK_ON,
        "as mtj: read MTJ barrier breakdown ends life; " + _SIGMA),
    "measured": WearLaw(
        1.0, 0.5, 1.0, 1.0, STUCK_OFF,
        "generic law for measured pulse data (no wear in the data): symmetric closure, s = 1; "
        + _SIGMA),
    "ideal": None,
}
GENERIC = WEAR_LAWS["measured"]


def wear_law(device: Device) -> WearLaw | None:
    """The device's wear law: ``device.wear`` when the class defines one, else by technology
    (None: the device does not wear)."""
    own = getattr(device, "wear", None)
    if isinstance(own, WearLaw):
        return own
    return WEAR_LAWS.get(device.technology, GENERIC)


def cycles(state: CellState) -> Tensor:
    """Write cycles per cell (int64, the cells' shape); 1 where the state does not count them."""
    c = state.latent.get("cycles")
    if c is None:
        return torch.ones(state.g.shape, dtype=torch.int64, device=state.g.device)
    return c


def window_fraction(device: Device, c: Tensor | float) -> Tensor:
    """Share ``w(c)`` of the fresh window left after ``c`` cycles (>= 0; ``c``'s float dtype,
    float64 for numbers and integer counts)."""
    return _window_fraction(device, real_values(c, "c", "window_fraction", lo=0.0,
                                                unit="cycles"))


def _window_fraction(device: Device, c: Tensor | float) -> Tensor:
    c = _float(c)
    law = wear_law(device)
    if law is None or law.window_slope == 0.0:
        return torch.ones_like(c)
    return 1.0 / (1.0 + (c / device.endurance) ** law.window_slope)


def window(device: Device, c: Tensor | float) -> tuple[Tensor, Tensor]:
    """Lowest and highest conductance (S) a read sees after ``c`` cycles (nominal cell)."""
    w = window_fraction(device, c)
    law = wear_law(device)
    p = 0.5 if law is None else law.window_point
    r = device.g_max - device.g_min
    return device.g_min + (1.0 - w) * p * r, device.g_max - (1.0 - w) * (1.0 - p) * r


def failure_probability(device: Device, c: Tensor | float) -> Tensor:
    """Probability that a cell has failed after ``c`` cycles (lognormal CDF; 0 without a law)."""
    c = _float(real_values(c, "c", "failure_probability", lo=0.0, unit="cycles"))
    law = wear_law(device)
    if law is None:
        return torch.zeros_like(c)
    return torch.special.ndtr(_z(device, law, c))


def _float(c: Tensor | float) -> Tensor:
    """Cycle counts as a float tensor (float64 for numbers and integer tensors)."""
    if isinstance(c, Tensor) and c.is_floating_point():
        return c
    return torch.as_tensor(c, dtype=torch.float64)


def _z(device: Device, law: WearLaw, c: Tensor) -> Tensor:
    median = law.fail_ratio * device.endurance
    return (torch.log(c.clamp_min(1.0)) - math.log(median)) / law.fail_sigma


def _matters(device: Device, c_max: int) -> bool:
    """Whether ``c_max`` cycles change the window by at least 1e-7 of the fresh range."""
    law = wear_law(device)
    return law is not None and law.window_slope > 0.0 and (
        (c_max / device.endurance) ** law.window_slope > 1e-7)


def compress(device: Device, state: CellState, g: Tensor) -> Tensor:
    """What a read sees of conductances ``g`` (S, the cells' shape) of worn cells:
    ``P + (g - P) w(c)`` (module doc). Unchanged when the state does not count cycles or no
    cell is worn enough to matter. Apply once, to a read (not to the stored state)."""
    c = state.latent.get("cycles")
    if c is None or not c.numel() or not _matters(device, int(c.max())):
        return g
    law = wear_law(device)
    assert law is not None  # _matters
    point = device.g_min + law.window_point * (device.g_max - device.g_min)
    return point + (g - point) * _window_fraction(device, c.to(g.dtype))


def add_cycles(device: Device, state: CellState, n: Tensor,
               generator: torch.Generator | None) -> CellState:
    """Count ``|n|`` more write cycles per cell (int, broadcastable), fail cells by the law
    (random draws only near the endurance, module doc), and return the state with ``g`` of
    failed cells at their stuck value (the window closure acts on reads, :func:`compress`)."""
    n = torch.broadcast_to(torch.as_tensor(n, device=state.g.device).abs().to(torch.int64),
                           state.g.shape)
    before = cycles(state)
    after = before + n
    latent: dict[str, Tensor] = {"cycles": after}
    law = wear_law(device)
    g = state.g
    safe = 0.0 if law is None else law.fail_ratio * device.endurance * math.exp(
        law.fail_sigma * _Z_EPS)  # below this count P_fail < FAIL_EPS
    if law is not None and after.numel() and int(after.max()) > safe:
        z2 = _z(device, law, after.to(torch.float64))
        old = state.latent.get("stuck")
        alive = torch.ones_like(n, dtype=torch.bool) if old is None else old == 0
        risk = alive & (n > 0) & (z2 > _Z_EPS)
        if bool(risk.any()):
            z1 = _z(device, law, before[risk].to(torch.float64))
            # 1 - S(c2)/S(c1) with log-survival log S = log_ndtr(-z)
            p = -torch.expm1(torch.special.log_ndtr(-z2[risk]) - torch.special.log_ndtr(-z1))
            u = torch.rand(p.shape, generator=generator, dtype=torch.float64,
                           device=p.device)
            fail = torch.zeros_like(risk)
            fail[risk] = u < p
            if bool(fail.any()):
                stuck = (torch.zeros(g.shape, dtype=torch.int8, device=g.device)
                         if old is None else old.clone())
                stuck[fail] = law.fail_state
                worn = state.latent.get("worn")
                worn = fail if worn is None else worn | fail
                latent.update(stuck=stuck, worn=worn)
    new = state.replace(**latent)
    now = new.latent.get("stuck")
    if now is not None:
        g = torch.where(now == STUCK_ON, device.g_max, g)
        g = torch.where(now == STUCK_OFF, device.g_min, g)
    return new.replace(g=g)


def worn_out(device: Device, state: CellState) -> Tensor:
    """Bool per cell: failed by wear, or its window below half of the fresh one."""
    worn = state.latent.get("worn")
    c = state.latent.get("cycles")
    out = torch.zeros(state.g.shape, dtype=torch.bool, device=state.g.device)
    if c is not None and c.numel() and _matters(device, int(c.max())):
        out = _window_fraction(device, c.to(torch.float64)) < 0.5
    return out if worn is None else out | worn
