"""Column (or, in the transposed MVM, row) converter (ADC): quantization, ranging, and its
conversion time, energy and area from a registered model (:mod:`.adc_models`) given the
technology parameters (:class:`memxbar.crossbar.cost.CostModel`).

The tile (:mod:`memxbar.crossbar.tile`), hardware-aware training (:mod:`memxbar.training.hwa`)
and the cost model (:mod:`memxbar.crossbar.cost`) all call this object: what is simulated is
what is costed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import torch
from torch import Tensor

from memxbar.crossbar.periphery.adc_models import ADC_MODELS, ADCModel
from memxbar.crossbar.periphery.quantize import (
    MAX_BITS,
    check_bits,
    check_tech,
    check_values,
    quantize,
)
from memxbar.devices.base import Parametrized, param
from memxbar.errors import ConfigError

if TYPE_CHECKING:
    from memxbar.crossbar.cost import CostModel

RANGE_MODES = ("fixed", "calibrated", "per_column")


@dataclass(frozen=True)
class ADC(Parametrized):
    """Signed, saturating converter of analog outputs (units U = V_read*(g_max-g_min), see
    :mod:`.quantize`).

    - ``bits``: resolution including the sign (0 = ideal: no quantization, no saturation).
    - ``range_mode``: "fixed": full scale ``full_scale`` for every converter; "calibrated": one
      full scale per tile, the largest ``|output|`` seen on example inputs
      (``Tile.calibrate_adc``); "per_column": one full scale per converter
      (:meth:`full_scales`).
    - ``model``: the converter design costed (a key of :data:`ADC_MODELS`): "survey" (measured
      converters, Murmann's survey) or "neurosim" (NeuroSim's SAR fit).

    Cost (``tech``: a CostModel): :meth:`conversion_energy`, :meth:`area` and
    :meth:`conversion_time` at :meth:`cost_bits` (an ideal ADC is costed at
    ``tech.default_adc_bits``).
    """

    bits: int = param(0, unit="bit", integer=True, ge=0, le=MAX_BITS,
                      doc="ADC resolution including the sign; 0 = ideal (no quantization, no "
                          "saturation); 1 is not allowed",
                      source="aihwkit's default: 9-bit ADC")
    range_mode: Literal["fixed", "calibrated", "per_column"] = param(
        "fixed", options=RANGE_MODES,
        doc="full scale: fixed (full_scale), calibrated (one per tile) or per_column (one per "
            "converter), the latter two from example inputs")
    full_scale: float | None = param(
        None, unit="U", gt=0.0, le=float(1 << 20), nullable=True,
        doc="full scale of range_mode='fixed', in units of V_read*(g_max-g_min) (a column of R "
            "fully-on cells under full input gives R; at most the 2^20 rows of the largest "
            "array, crossbar.tile.MAX_ROWS)")
    model: str = param("survey", options=tuple(ADC_MODELS),
                       doc="ADC model costed: survey (measured converters, Walden FOM) or "
                           "neurosim (NeuroSim's SAR fit)",
                       source="crossbar/periphery/adc_models.py")

    def _check(self) -> None:
        check_bits("ADC", self.bits)
        fs = self.full_scale
        if self.bits > 0 and self.range_mode == "fixed" and fs is None:
            raise ConfigError("ADC.full_scale = None is not allowed with range_mode='fixed' and "
                              f"bits = {self.bits}; allowed: a finite number > 0")
        if self.bits == 0 and fs is not None:
            raise ConfigError(f"ADC.full_scale = {fs!r} is not allowed with bits = 0 (an ideal "
                              "ADC does not saturate, so the full scale would be ignored); "
                              "allowed: None, or bits >= 2")
        if self.range_mode != "fixed" and fs is not None:
            raise ConfigError(f"ADC.full_scale = {fs!r} is not allowed with range_mode="
                              f"'{self.range_mode}' (the range comes from calibration); allowed: "
                              "None")

    # ------------------------------------------------------------------ quantization
    @property
    def levels(self) -> int:
        """Positive levels ``n`` (0 when ideal)."""
        return 0 if self.bits == 0 else 2 ** (self.bits - 1) - 1

    def quantize(self, y: Tensor, full_scale: float | Tensor, *, ste: bool = False) -> Tensor:
        """Quantized, saturated ``y`` (units U) for the given full scale (broadcast); ``ste``:
        straight-through gradient (hardware-aware training)."""
        return quantize(y, self.bits, full_scale, ste=ste)

    def to_codes(self, y: Tensor) -> Tensor:
        """``y`` already in code units (``y * levels / full_scale``) rounded to the integer
        codes and saturated at ``+-levels``, in place; unchanged for an ideal ADC."""
        check_values("ADC.to_codes", y)
        n = self.levels
        return y.round_().clamp_(-n, n) if n else y

    # ------------------------------------------------------------------ ranging
    def full_scales(self, amax: Tensor) -> Tensor:
        """Full scales (units U) from the largest ``|output|`` of each converter, ``amax``
        ``(..., K)``: the last dimension holds the K converters of one tile, leading dimensions
        index tiles. Returns a new tensor of ``amax``'s shape: "fixed": ``full_scale`` (1 for an
        ideal ADC without one); "calibrated": the tile's largest value for all its converters;
        "per_column": each converter's own value. A value of 0 (a converter, or a whole tile,
        that saw only zeros) is replaced by the tile's largest value, or 1."""
        check_values("ADC.full_scales", amax)
        if amax.dim() == 0 or amax.shape[-1] == 0:
            raise ConfigError(f"ADC.full_scales: amax has shape {tuple(amax.shape)}; allowed: "
                              "(..., K) with K >= 1 converters")
        if not bool(((amax >= 0) & (amax < float("inf"))).all()):
            raise ConfigError("ADC.full_scales: amax holds values < 0 or not finite; allowed: "
                              "the largest |output| of each converter, finite and >= 0")
        if self.range_mode == "fixed":
            return torch.full_like(amax, 1.0 if self.full_scale is None else
                                   float(self.full_scale))
        tile = amax.amax(dim=-1, keepdim=True)
        tile = torch.where(tile > 0, tile, torch.ones_like(tile))
        if self.range_mode == "calibrated":
            return tile.expand_as(amax).clone()
        return torch.where(amax > 0, amax, tile)

    # ------------------------------------------------------------------ cost
    @property
    def design(self) -> ADCModel:
        """The registered model of :attr:`model`."""
        return ADC_MODELS[self.model]

    def cost_bits(self, tech: CostModel) -> int:
        """Resolution costed: ``bits``, or ``tech.default_adc_bits`` for an ideal ADC."""
        check_tech("ADC", tech)
        return self.bits or tech.default_adc_bits

    def check_cost(self, tech: CostModel) -> None:
        """Raise :class:`ConfigError` when this ADC's model cannot be costed with ``tech``
        (e.g. NeuroSim's fit at a node it does not tabulate)."""
        self.design.check(tech)

    def conversion_energy(self, tech: CostModel) -> float:
        """Energy (J) of one conversion."""
        return self.design.energy(self.cost_bits(tech), tech)

    def area(self, tech: CostModel) -> float:
        """Area (m^2) of one converter."""
        return self.design.area(self.cost_bits(tech), tech)

    def conversion_time(self, tech: CostModel) -> float:
        """Time (s) of one conversion."""
        return self.design.conversion_time(self.cost_bits(tech), tech)
