"""Registry of ADC models: energy per conversion, area and conversion time of one converter as
functions of its resolution and the technology (a :class:`memxbar.crossbar.cost.CostModel`:
node, logic density, clock, survey selection).

- "survey" (:class:`SurveyADC`, default): measured converters from B. Murmann's ADC survey,
  Walden figure of merit ``E = FOM * 2^bits`` and area per conversion step, both the
  ``adc_percentile`` over the designs the cost model's filter selects (architecture tag, year,
  ENOB window, time interleaving). Used as measured (not scaled with the node).
- "neurosim" (:class:`NeuroSimSAR`): NeuroSim V1.4's SAR-ADC fit (HP roadmap), at the nodes it
  tabulates; area from its transistor count at the node's logic density.

To add a model: subclass :class:`ADCModel` here (``name``, ``source``, ``energy``, ``area``,
optionally ``conversion_time`` and ``check``) and add an instance to :data:`ADC_MODELS`; the
field ``ADC.model`` and the study schema generated from it then offer it.
"""

from __future__ import annotations

import functools
import importlib.resources
from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, ClassVar

import numpy as np
import pandas as pd

from memxbar.crossbar.periphery.quantize import MAX_BITS
from memxbar.errors import ConfigError, plain_value

if TYPE_CHECKING:
    from memxbar.crossbar.cost import CostModel

SURVEY_SOURCE = ("B. Murmann, ADC Performance Survey 1997-2025 (crossbar/data/"
                 "adc_survey_murmann.csv, BSD-3)")
NEUROSIM_SOURCE = "DNN+NeuroSim V1.4 (Peng/Lee et al.), Inference_pytorch/NeuroSIM"

# NeuroSim V1.4 SarADC.cpp GetColumnPower, HP roadmap: power = (a * bits + b) uW (+ a column
# term that is the cell current, counted by the cost model as "cells"), energy = power *
# (bits + 1) * 1 ns.
NEUROSIM_SAR_HP: dict[int, tuple[float, float]] = {
    130: (6.4806, 49.047), 90: (4.3474, 31.782), 65: (2.9503, 22.047), 45: (2.1843, 11.931),
    32: (1.0157, 7.6286), 22: (0.7213, 3.3041), 14: (0.4710, 1.9529), 10: (0.3076, 1.1543),
    7: (0.2008, 0.6823),
}


def _check_bits(what: str, bits: int) -> int:
    bits = plain_value(bits)
    if isinstance(bits, bool) or not isinstance(bits, int) or not 1 <= bits <= MAX_BITS:
        raise ConfigError(f"{what}: bits = {bits!r} is not allowed; allowed: an integer in "
                          f"[1, {MAX_BITS}]")
    return bits


class ADCModel(ABC):
    """One ADC design family. ``tech`` is the cost model (technology-node parameters)."""

    name: ClassVar[str]
    source: ClassVar[str]

    def check(self, tech: CostModel) -> None:
        """Raise :class:`ConfigError` when ``tech`` lacks what this model needs (none here)."""
        return None

    @abstractmethod
    def energy(self, bits: int, tech: CostModel) -> float:
        """Energy (J) of one conversion at ``bits`` bits."""

    @abstractmethod
    def area(self, bits: int, tech: CostModel) -> float:
        """Area (m^2) of one converter at ``bits`` bits."""

    def conversion_time(self, bits: int, tech: CostModel) -> float:
        """Time (s) of one conversion: ``(bits + 1) / adc_clock`` (a SAR converter resolves one
        bit per clock plus one sampling cycle; NeuroSim SarADC.cpp CalculateLatency)."""
        bits = _check_bits(f"{type(self).__name__}.conversion_time", bits)
        return (bits + 1) / tech.adc_clock


# ====================================================================== survey
@functools.cache
def adc_survey() -> pd.DataFrame:
    """The ADC survey shipped with the package (725 designs; columns as in its README)."""
    path = importlib.resources.files("memxbar.crossbar") / "data" / "adc_survey_murmann.csv"
    with path.open("r", encoding="utf-8") as fh:
        return pd.read_csv(fh)


def adc_survey_selection(tech: CostModel) -> pd.DataFrame:
    """Survey designs that match the cost model's ADC filter (architecture tag, year, ENOB
    window, time interleaving), with a Walden FOM."""
    return _select(*_filter_key(tech)[:5])


def adc_survey_figures(tech: CostModel) -> tuple[float, float, int, int]:
    """``(J per conversion step, m^2 per conversion step, designs, designs with area)``: the
    ``adc_percentile`` of the Walden FOM and of ``area / 2^ENOB`` over the selected designs."""
    return _survey_figures(*_filter_key(tech))


def _filter_key(tech: CostModel) -> tuple[str, bool, int, float, float, float]:
    return (tech.adc_architecture.strip().upper(), tech.adc_time_interleaved,
            tech.adc_since, tech.adc_enob_min, tech.adc_enob_max, tech.adc_percentile)


def _select(arch: str, ti: bool, since: int, lo: float, hi: float) -> pd.DataFrame:
    d = adc_survey()
    tags = d["architecture"].fillna("").str.split(",").map(lambda t: {s.strip().upper()
                                                                      for s in t})
    keep = tags.map(lambda t: arch in t)
    if not ti:
        keep &= ~tags.map(lambda t: "TI" in t)
    keep &= (d["year"] >= since) & d["enob_bits"].between(lo, hi)
    keep &= d["fom_walden_fj_per_step"].notna()
    return d[keep]


@functools.cache
def _survey_figures(arch: str, ti: bool, since: int, lo: float, hi: float,
                    pct: float) -> tuple[float, float, int, int]:
    s = _select(arch, ti, since, lo, hi)
    what = (f"architecture {arch!r}, year >= {since}, ENOB in [{lo}, {hi}]"
            f"{'' if ti else ', not time-interleaved'}")
    if len(s) == 0:
        raise ConfigError(f"CostModel: no ADC in the survey matches {what}; widen the filter")
    fom = float(np.percentile(s["fom_walden_fj_per_step"].to_numpy(), pct)) * 1e-15
    a = (s["area_mm2"] * 1e-6 / 2.0 ** s["enob_bits"]).dropna().to_numpy()
    if len(a) == 0:
        raise ConfigError(f"CostModel: no ADC matching {what} reports an area; widen the filter")
    return fom, float(np.percentile(a, pct)), len(s), len(a)


class SurveyADC(ADCModel):
    """Measured converters (module doc). Energy ``FOM * 2^bits`` (Walden, ENOB taken equal to
    ``bits``); area per conversion step times ``2^bits``.

    Why ``FOM * 2^bits``: the survey holds no single-channel SAR ADC published since 2010 below
    ENOB 5.26; the three between ENOB 5.26 and 6 measure 0.78-5 pJ per conversion (40 and
    28 nm, 0.2-1 GS/s), and the median energy per conversion is flat at about 3 pJ from ENOB 5
    to 9, so measured converters do not halve their energy per bit removed at low resolution
    (comparator, logic and reference overheads dominate). A fit to "designs near the requested
    resolution" would rest on three designs and cost a 4-bit conversion at about 1 pJ or more,
    an extrapolation no better founded than the Walden scaling, which keeps the cost monotonic
    in ``bits`` for sweeps and reads as an optimistic figure for standalone converters at 4
    bits. Restricting the selection to nodes <= 45 nm leaves the median FOM unchanged (25.4 vs
    25.2 fJ/step), so the node is not a filter either."""

    name = "survey"
    source = SURVEY_SOURCE

    def check(self, tech: CostModel) -> None:
        adc_survey_figures(tech)

    def energy(self, bits: int, tech: CostModel) -> float:
        bits = _check_bits("SurveyADC.energy", bits)
        return adc_survey_figures(tech)[0] * 2.0 ** bits

    def area(self, bits: int, tech: CostModel) -> float:
        bits = _check_bits("SurveyADC.area", bits)
        return adc_survey_figures(tech)[1] * 2.0 ** bits


# ====================================================================== NeuroSim
def sar_transistors(bits: int) -> float:
    """Transistors of NeuroSim's SAR ADC (SarADC.cpp CalculateUnitArea: NMOS 269 + 109 (b-1),
    PMOS 209 + 73 (b-1))."""
    bits = _check_bits("sar_transistors", bits)
    return 269 + 109 * (bits - 1) + 209 + 73 * (bits - 1)


class NeuroSimSAR(ADCModel):
    """NeuroSim V1.4's SAR ADC: energy ``(a * bits + b) uW * (bits + 1) ns`` with the HP
    coefficients of the node (22 nm: 0.7213, 3.3041); area :func:`sar_transistors` logic
    transistors of ``logic_transistor_area * node^2`` each."""

    name = "neurosim"
    source = NEUROSIM_SOURCE + " SarADC.cpp (GetColumnPower, CalculateUnitArea)"

    def coefficients(self, tech: CostModel) -> tuple[float, float]:
        """NeuroSim's ``(a, b)`` (uW per bit, uW) at the cost model's node."""
        node = tech.node
        nm = round(node * 1e9)
        if abs(node * 1e9 - nm) > 1e-6 or nm not in NEUROSIM_SAR_HP:
            raise ConfigError(f"CostModel.node = {node!r} m is not allowed with ADC.model = "
                              "'neurosim'; allowed: the nodes NeuroSim tabulates, "
                              f"{', '.join(f'{k}e-9' for k in sorted(NEUROSIM_SAR_HP))} m")
        return NEUROSIM_SAR_HP[nm]

    def check(self, tech: CostModel) -> None:
        self.coefficients(tech)

    def energy(self, bits: int, tech: CostModel) -> float:
        bits = _check_bits("NeuroSimSAR.energy", bits)
        a, b = self.coefficients(tech)
        return (a * bits + b) * 1e-6 * (bits + 1) * 1e-9

    def area(self, bits: int, tech: CostModel) -> float:
        bits = _check_bits("NeuroSimSAR.area", bits)
        return sar_transistors(bits) * tech.logic_transistor_area * tech.node ** 2


ADC_MODELS: dict[str, ADCModel] = {m.name: m for m in (SurveyADC(), NeuroSimSAR())}
