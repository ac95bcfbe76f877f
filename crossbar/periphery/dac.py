"""Row driver (DAC): input quantization, the read cycles of one MVM (one-shot or bit-serial,
signed by voltage or in two phases), and its energy and area given the technology parameters
(:class:`memxbar.crossbar.cost.CostModel`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import torch
from torch import Tensor

from memxbar.crossbar.periphery.quantize import (
    MAX_BITS,
    check_bits,
    check_scale,
    check_tech,
    check_values,
    quantize,
)
from memxbar.devices.base import Parametrized, param
from memxbar.errors import ConfigError

if TYPE_CHECKING:
    from memxbar.crossbar.cost import CostModel

SIGNED_MODES = ("voltage", "two_phase")
_ISAAC = ("Shafiee et al., ISAAC, ISCA 2016 (bit-serial 1-bit drivers); aihwkit's default "
          "7-bit one-shot DAC")


@dataclass(frozen=True)
class DAC(Parametrized):
    """Row driver: turns a normalised input in ``[-input_range, input_range]`` into row voltages.

    - ``bits``: resolution including the sign (0 = ideal analog drive, no saturation). The code
      is ``k = round(x / input_range * n)`` clipped to ``[-n, n]``, ``n = 2^(bits-1) - 1``.
    - ``bit_serial``: False (one-shot): the multi-level voltage ``k/n * V_read`` is applied in
      one cycle. True: magnitude bit j of ``|k|`` (j = 0 .. bits-2) is applied in cycle j as
      ``0`` or ``V_read``; the ADC converts every cycle and the results are recombined
      digitally by shift-add with weights ``2^j / n``.
    - ``signed``: "voltage": negative inputs are negative voltages (``-V_read`` ... ``V_read``);
      "two_phase": only ``0 ... V_read`` is applied, positive inputs in phase 1 and magnitudes of
      negative inputs in phase 2, the phase-2 result subtracted digitally (twice the cycles).

    Cost (``tech``: a CostModel): :meth:`energy` per row-driver event, :meth:`area` per row.
    """

    bits: int = param(0, unit="bit", integer=True, ge=0, le=MAX_BITS,
                      doc="DAC resolution including the sign; 0 = ideal analog drive (no "
                          "quantization, no saturation); 1 is not allowed",
                      source=_ISAAC)
    input_range: float = param(1.0, gt=0.0,
                               doc="normalised input applied as the full read voltage V_read "
                                   "(larger inputs saturate)")
    bit_serial: bool = param(False, options=(False, True),
                             doc="apply the input code one magnitude bit per read cycle "
                                 "(bits - 1 cycles) instead of one multi-level voltage",
                             source="Shafiee et al., ISAAC, ISCA 2016")
    signed: Literal["voltage", "two_phase"] = param(
        "voltage", options=SIGNED_MODES,
        doc="negative inputs as negative voltages, or in a second phase of positive voltages "
            "subtracted digitally (twice the cycles)")

    def _check(self) -> None:
        check_bits("DAC", self.bits)
        if self.bit_serial and self.bits == 0:
            raise ConfigError("DAC.bit_serial = True needs bits >= 2 (got bits = 0); allowed: "
                              "bit_serial=False for an ideal DAC")

    # ------------------------------------------------------------------ time
    @property
    def n_cycles(self) -> int:
        """Array read cycles per MVM."""
        per_sign = self.bits - 1 if self.bit_serial else 1
        return per_sign * (2 if self.signed == "two_phase" else 1)

    # ------------------------------------------------------------------ quantization
    def quantize(self, x: Tensor, *, ste: bool = False) -> Tensor:
        """The input value the DAC actually realises (same units as ``x``); ``ste``:
        straight-through gradient (hardware-aware training)."""
        return quantize(x, self.bits, self.input_range, ste=ste)

    @property
    def step_volts(self) -> float:
        """Row voltage of one code step of a one-shot drive, in units of ``V_read``: ``1/n``
        (1 for an ideal DAC, whose codes are the analog values)."""
        return 1.0 if self.bits == 0 else 1.0 / (2 ** (self.bits - 1) - 1)

    def codes(self, x: Tensor, scale: Tensor | float | None = None, *,
              out: Tensor | None = None, saturate: bool = True) -> Tensor:
        """One-shot codes of ``x / scale``: ``k = round(x / scale * n / input_range)`` clipped
        to ``[-n, n]`` (an ideal DAC: ``x / scale / input_range``, not rounded); the codes of
        :meth:`encode`, by the same arithmetic.

        ``scale`` (broadcast against ``x``, > 0; None = 1): the digital pre-scale, applied as
        ``x * (n / input_range / scale)``. ``out``: the codes are written there (one pass;
        ``x`` may be a strided view, gathered by that pass). ``saturate=False`` skips the clip
        where it cannot act: ``|x| <= scale`` and ``input_range >= 1``."""
        check_values("DAC.codes", x)
        if scale is not None:
            scale = check_scale("DAC.codes", "scale", scale, x)
        ir = float(self.input_range)
        n = 1 if self.bits == 0 else 2 ** (self.bits - 1) - 1
        if scale is None or isinstance(scale, (int, float)):
            gain: Tensor | float = n / ir / (1.0 if scale is None else scale)
        else:
            gain = scale.reciprocal().mul_(n / ir)
        if self.bits == 0:
            if out is None and isinstance(gain, float) and gain == 1.0:
                return x
            return torch.mul(x, gain, out=out)
        k = torch.mul(x, gain, out=out).round_()
        return k.clamp_(-n, n) if saturate else k

    def encode(self, x: Tensor, scale: Tensor | float | None = None
               ) -> tuple[Tensor, tuple[float, ...], float]:
        """Cycle inputs of ``x / scale``: ``(planes, weights, volt)``.

        ``scale`` (broadcast against ``x``, > 0; None = 1) is a digital pre-scale fused into the
        code computation, so scaling and quantizing cost one pass over ``x``.

        The row voltage of cycle c is ``planes[c] * volt * V_read`` (``|.| <= 1`` once quantized);
        ``planes`` ``(n_cycles, *x.shape)`` hold integer codes (analog values if bits = 0) and
        ``weights`` (``n_cycles`` floats) the digital shift-add weights. Exact identity:
        ``input_range * volt * sum_c weights[c] * planes[c] == quantize(x)``.
        One-shot: codes ``k``, ``volt = 1/n``; bit-serial: bits of ``|k|`` (signed by ``k`` in
        "voltage" mode), ``volt = 1``, weights ``2^j / n``; two-phase negates phase-2 weights.
        """
        two = self.signed == "two_phase"
        n = 1 if self.bits == 0 else 2 ** (self.bits - 1) - 1
        k, volt = self.codes(x, scale), self.step_volts
        if not self.bit_serial:
            if not two:
                return k.unsqueeze(0), (1.0,), volt
            return torch.stack([k.clamp(min=0), (-k).clamp_(min=0)]), (1.0, -1.0), volt
        nb = self.bits - 1
        pw = tuple(2.0 ** j / n for j in range(nb))
        mag = k.abs()
        bitsj = torch.stack([torch.div(mag, 2 ** j, rounding_mode="floor").remainder_(2)
                             for j in range(nb)])
        if not two:
            return bitsj * torch.sign(k), pw, 1.0
        planes = torch.cat([bitsj * (k > 0), bitsj * (k < 0)])
        return planes, pw + tuple(-w for w in pw), 1.0

    # ------------------------------------------------------------------ cost
    def code_bits(self, tech: CostModel) -> int:
        """Bits of one input code (``tech.default_dac_bits`` for an ideal DAC)."""
        check_tech("DAC", tech)
        return self.bits or tech.default_dac_bits

    def driver_bits(self, tech: CostModel) -> int:
        """Bits one row-driver event applies: 1 per bit-serial cycle, else the code bits."""
        check_tech("DAC", tech)
        return 1 if self.bit_serial else self.code_bits(tech)

    def energy(self, tech: CostModel, cols: int) -> float:
        """Energy (J) of one row-driver event on a row of ``cols`` physical columns:
        ``dac_energy_1bit * 2^(driver_bits-1) * cols / dac_cols * node / dac_node`` (the row's
        load grows with its columns; switched capacitance with the node)."""
        bits = self.driver_bits(tech)
        return tech.dac_energy_1bit * 2.0 ** (bits - 1) * cols / tech.dac_cols * tech.node / (
            tech.dac_node)

    def area(self, tech: CostModel) -> float:
        """Area (m^2) of one row driver: ``dac_area_1bit * 2^(driver_bits-1) * (node /
        dac_node)^2``."""
        bits = self.driver_bits(tech)
        return tech.dac_area_1bit * 2.0 ** (bits - 1) * (tech.node / tech.dac_node) ** 2
