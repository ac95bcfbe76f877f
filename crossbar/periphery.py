"""Periphery of one crossbar: input DAC, output ADC, and the digital shift-add.

Units. The tile works in normalised units: an input of 1 is the full read voltage ``V_read`` on a
row; an analog column output of 1 is the current of one cell at full conductance range
(``g_max - g_min``) under full input, ``U = V_read * (g_max - g_min)``. ADC full scales are given
in these units U (a column of R fully-on cells under full input gives R U).

Quantizers are symmetric, mid-tread and uniform: ``bits`` b gives the 2^b - 1 signed levels
``k * fs / n`` with ``k in [-n, n]``, ``n = 2^(b-1) - 1`` (aihwkit's convention of 2^b - 2 steps
over ``[-bound, bound]``), so zero is exact and the levels are symmetric. Values beyond the full
scale saturate at +-fs. ``bits = 0`` means an ideal converter: no quantization, no saturation.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor

from ..errors import ConfigError

SIGNED_MODES = ("voltage", "two_phase")
RANGE_MODES = ("fixed", "calibrated", "per_column")
MAX_BITS = 24


def _check_bits(owner: str, bits: int) -> None:
    if isinstance(bits, bool) or not isinstance(bits, int) or not (bits == 0 or
                                                                   2 <= bits <= MAX_BITS):
        raise ConfigError(f"{owner}.bits = {bits!r} is not allowed; allowed: 0 (ideal) or an "
                         f"integer in [2, {MAX_BITS}] (signed converter: sign + magnitude)")


def signed_levels(bits: int) -> int:
    """Number ``n`` of positive levels of a signed ``bits``-bit quantizer, ``2^(bits-1) - 1``."""
    _check_bits("quantizer", bits)
    return 2 ** (bits - 1) - 1


def straight_through(x: Tensor, q: Tensor) -> Tensor:
    """``q`` in the forward pass; the gradient passes to ``x`` unchanged (straight-through)."""
    return x + (q - x).detach()


def quantize(x: Tensor, bits: int, full_scale: float | Tensor, *, ste: bool = False) -> Tensor:
    """Signed uniform quantization of ``x`` to ``2^bits - 1`` levels on ``[-fs, fs]``.

    Returns the level values (same units as ``x``); saturates at +-``full_scale`` (broadcast
    against ``x``, > 0). ``bits = 0``: ``x`` unchanged. ``ste``: straight-through gradient.
    """
    _check_bits("quantizer", bits)
    if bits == 0:
        return x
    n = 2 ** (bits - 1) - 1
    q = torch.round(x * (n / full_scale)).clamp(-n, n) * (full_scale / n)
    return straight_through(x, q) if ste else q


def shift_add(parts: Tensor, weights: Sequence[float] | Tensor, dim: int = 0) -> Tensor:
    """Digital recombination ``sum_k weights[k] * parts[k]`` along ``dim`` (bit-serial cycles,
    bit slices: weights are powers of two times a scale)."""
    w = torch.as_tensor(weights, dtype=parts.dtype, device=parts.device)
    return parts.movedim(dim, -1) @ w


@dataclass(frozen=True)
class DAC:
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
    """

    bits: int = 0
    input_range: float = 1.0
    bit_serial: bool = False
    signed: Literal["voltage", "two_phase"] = "voltage"

    def __post_init__(self) -> None:
        _check_bits("DAC", self.bits)
        r = self.input_range
        if isinstance(r, bool) or not isinstance(r, (int, float)) or not 0 < float(r) < float(
                "inf"):
            raise ConfigError(f"DAC.input_range = {r!r} is not allowed; allowed: a finite "
                             "number > 0")
        if not isinstance(self.bit_serial, bool):
            raise ConfigError(f"DAC.bit_serial = {self.bit_serial!r} is not allowed; allowed: "
                             "True or False")
        if self.bit_serial and self.bits == 0:
            raise ConfigError("DAC.bit_serial = True needs bits >= 2 (got bits = 0); allowed: "
                             "bit_serial=False for an ideal DAC")
        if self.signed not in SIGNED_MODES:
            raise ConfigError(f"DAC.signed = {self.signed!r} is not allowed; allowed: "
                             f"{', '.join(SIGNED_MODES)}")

    @property
    def n_cycles(self) -> int:
        """Array read cycles per MVM."""
        per_sign = self.bits - 1 if self.bit_serial else 1
        return per_sign * (2 if self.signed == "two_phase" else 1)

    def quantize(self, x: Tensor, *, ste: bool = False) -> Tensor:
        """The input value the DAC actually realises (same units as ``x``)."""
        return quantize(x, self.bits, self.input_range, ste=ste)

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
        ir = float(self.input_range)
        two = self.signed == "two_phase"
        n = 1 if self.bits == 0 else 2 ** (self.bits - 1) - 1
        if scale is None or isinstance(scale, (int, float)):
            gain = n / ir / (1.0 if scale is None else scale)
        else:
            gain = scale.reciprocal().mul_(n / ir)
        if self.bits == 0:
            k, volt = (x if isinstance(gain, float) and gain == 1.0 else x * gain), 1.0
        else:
            k = torch.mul(x, gain).round_().clamp_(-n, n)
            volt = 1.0 / n
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


@dataclass(frozen=True)
class ADC:
    """Column (or, in the transposed MVM, row) converter; signed output, saturating.

    - ``bits``: resolution including the sign (0 = ideal: no quantization, no saturation).
    - ``range_mode``: "fixed": full scale ``full_scale`` (in units U, see the module doc) for
      every converter; "calibrated": one full scale per tile, the largest ``|output|`` seen on
      example inputs (``Tile.calibrate_adc``); "per_column": one full scale per converter.
    """

    bits: int = 0
    range_mode: Literal["fixed", "calibrated", "per_column"] = "fixed"
    full_scale: float | None = None

    def __post_init__(self) -> None:
        _check_bits("ADC", self.bits)
        if self.range_mode not in RANGE_MODES:
            raise ConfigError(f"ADC.range_mode = {self.range_mode!r} is not allowed; allowed: "
                             f"{', '.join(RANGE_MODES)}")
        fs = self.full_scale
        if fs is not None and (isinstance(fs, bool) or not isinstance(fs, (int, float))
                               or not 0 < float(fs) < float("inf")):
            raise ConfigError(f"ADC.full_scale = {fs!r} is not allowed; allowed: None or a finite "
                             "number > 0 (units of V_read*(g_max-g_min))")
        if self.bits > 0 and self.range_mode == "fixed" and fs is None:
            raise ConfigError("ADC.full_scale = None is not allowed with range_mode='fixed' and "
                             f"bits = {self.bits}; allowed: a finite number > 0")
        if self.range_mode != "fixed" and fs is not None:
            raise ConfigError(f"ADC.full_scale = {fs!r} is not allowed with range_mode="
                             f"'{self.range_mode}' (the range comes from calibration); allowed: "
                             "None")

    @property
    def levels(self) -> int:
        """Positive levels ``n`` (0 when ideal)."""
        return 0 if self.bits == 0 else 2 ** (self.bits - 1) - 1

    def convert(self, y: Tensor, full_scale: float | Tensor, *, ste: bool = False) -> Tensor:
        """Quantized, saturated ``y`` (units U) for the given full scale (broadcast)."""
        return quantize(y, self.bits, full_scale, ste=ste)
