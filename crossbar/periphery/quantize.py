"""Signed uniform quantizers and the digital shift-add shared by the DAC, the ADC and
hardware-aware training.

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

import torch
from torch import Tensor

from memxbar.errors import ConfigError, plain_value

MAX_BITS = 24


def check_bits(owner: str, bits: int) -> None:
    """Raise :class:`ConfigError` unless ``bits`` is 0 (ideal) or an integer in
    ``[2, MAX_BITS]``; ``owner`` names the field (e.g. "ADC")."""
    if isinstance(bits, bool) or not isinstance(bits, int) or not (bits == 0 or
                                                                   2 <= bits <= MAX_BITS):
        raise ConfigError(f"{owner}.bits = {bits!r} is not allowed; allowed: 0 (ideal) or an "
                          f"integer in [2, {MAX_BITS}] (signed converter: sign + magnitude)")


def signed_levels(bits: int) -> int:
    """Number ``n`` of positive levels of a signed ``bits``-bit quantizer, ``2^(bits-1) - 1``."""
    check_bits("quantizer", bits)
    return 2 ** (bits - 1) - 1


def check_values(owner: str, x: object) -> None:
    """Refuse converter inputs that are not a real floating-point tensor (their values are not
    checked here: the tile checks its inputs once, before any converter sees them)."""
    if not isinstance(x, Tensor) or not x.is_floating_point():
        what = f"a tensor of dtype {x.dtype}" if isinstance(x, Tensor) else type(x).__name__
        raise ConfigError(f"{owner}: the values are {what}; allowed: a real floating-point "
                          "torch.Tensor")


def check_tech(owner: str, tech: object) -> None:
    """Refuse a cost model that is not a :class:`memxbar.crossbar.cost.CostModel`."""
    from memxbar.crossbar.cost import CostModel  # (it imports the periphery)

    if not isinstance(tech, CostModel):
        raise ConfigError(f"{owner}: tech = {tech!r} is not allowed; allowed: a CostModel")


def check_scale(owner: str, name: str, value: object, x: Tensor) -> float | Tensor:
    """A converter's scale ``value`` (a full scale, a digital pre-scale) as it is applied: a
    finite number > 0, or a floating-point tensor of finite values > 0 that broadcasts against
    ``x`` without changing its shape; otherwise a :class:`ConfigError` naming ``owner`` and
    ``name``. (A zero, negative or NaN scale would give zero, sign-flipped or NaN levels.)"""
    v = plain_value(value)
    if isinstance(v, Tensor):
        if not (v.is_floating_point() and v.dim() <= x.dim() and all(
                a in (1, b) for a, b in zip(reversed(v.shape), reversed(x.shape), strict=False))):
            raise ConfigError(f"{owner}: {name} is a tensor of shape {tuple(v.shape)} and dtype "
                              f"{v.dtype} for values of shape {tuple(x.shape)}; allowed: a "
                              "floating-point tensor that broadcasts against the values")
        d = v.detach()
        lo, hi = torch.aminmax(d) if d.numel() else (d.new_ones(()), d.new_ones(()))
        if not (float(lo) > 0 and float(hi) < float("inf")):  # NaN fails both
            bad = d[~((d > 0) & (d < float("inf")))]
            raise ConfigError(f"{owner}: {name} holds {bad.numel()} value(s) <= 0 or not finite "
                              f"(e.g. {float(bad[0]):g}); allowed: finite values > 0")
        return v
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 < v < float("inf"):
        raise ConfigError(f"{owner}: {name} = {value!r} is not allowed; allowed: a finite "
                          "number > 0 or a tensor of them")
    return float(v)


def straight_through(x: Tensor, q: Tensor) -> Tensor:
    """``q`` in the forward pass; the gradient passes to ``x`` unchanged (straight-through)."""
    return x + (q - x).detach()


def quantize(x: Tensor, bits: int, full_scale: float | Tensor, *, ste: bool = False) -> Tensor:
    """Signed uniform quantization of ``x`` to ``2^bits - 1`` levels on ``[-fs, fs]``.

    Returns the level values (same units as ``x``); saturates at +-``full_scale`` (broadcast
    against ``x``, > 0). ``bits = 0``: ``x`` unchanged. ``ste``: straight-through gradient.
    """
    check_bits("quantizer", bits)
    check_values("quantize", x)
    full_scale = check_scale("quantize", "full_scale", full_scale, x)
    if bits == 0:
        return x
    n = 2 ** (bits - 1) - 1
    q = torch.round(x * (n / full_scale)).clamp(-n, n) * (full_scale / n)
    return straight_through(x, q) if ste else q


def shift_add(parts: Tensor, weights: Sequence[float] | Tensor, dim: int = 0) -> Tensor:
    """Digital recombination ``sum_k weights[k] * parts[k]`` along ``dim`` (bit-serial cycles,
    bit slices: weights are powers of two times a scale)."""
    if not isinstance(parts, Tensor) or isinstance(dim, bool) or not isinstance(dim, int) or \
            not -parts.dim() <= dim < parts.dim():
        raise ConfigError(f"shift_add: dim = {dim!r} for parts of shape "
                          f"{tuple(getattr(parts, 'shape', ()))}; allowed: a tensor and a "
                          "dimension index inside its shape")
    w = torch.as_tensor(weights, dtype=parts.dtype, device=parts.device)
    if w.shape != (parts.shape[dim],):
        raise ConfigError(f"shift_add: {tuple(w.shape)} weights for {parts.shape[dim]} parts "
                          f"along dim {dim}; allowed: one weight per part")
    return parts.movedim(dim, -1) @ w
