"""Bit slices: the code of another encoding (differential ``|q|``, ``weight_bits - 1`` bits, or
offset ``u``, ``weight_bits`` bits) split into base-``2^c`` digits on ``n_slices`` separate
cells (``c = bits_per_cell``; neighbouring columns, ordered weight column j then slice s),
each converted by its own ADC and recombined by the digital shift-add with weights
``2^(c s)``. A digit ``d in [0, 2^c - 1]`` is programmed to ``g_min + d * range / (2^c - 1)``.

The wrapped encoding keeps the polarities, the physical arrangement, the fold and the
reference column; pulse updates are refused (one pulse would move one digit, not the weight).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from memxbar.crossbar.encodings.base import Encoding
from memxbar.errors import ConfigError


@dataclass(frozen=True)
class BitSlices(Encoding):
    """``inner``'s codes on ``n_slices`` cells of ``cell_bits`` bits each."""

    inner: Encoding
    cell_bits: int

    # ------------------------------------------------------------ from the wrapped encoding
    # read-only views of the wrapped encoding's fields; mypy flags a property over a base-class
    # attribute ([override]), which is the intent here
    @property
    def name(self) -> str:  # type: ignore[override]
        return self.inner.name

    @property
    def polarities(self) -> int:  # type: ignore[override]
        return self.inner.polarities

    @property
    def reference_cols(self) -> int:  # type: ignore[override]
        return self.inner.reference_cols

    @property
    def weight_bits(self) -> int:  # type: ignore[override]
        return self.inner.weight_bits

    @property
    def g_min(self) -> float:  # type: ignore[override]
        return self.inner.g_min

    @property
    def g_max(self) -> float:  # type: ignore[override]
        return self.inner.g_max

    @property
    def layout(self) -> str:  # type: ignore[override]
        return self.inner.layout

    @property
    def n_arrays(self) -> int:
        return self.inner.n_arrays

    @property
    def magnitude_bits(self) -> int:
        return self.inner.magnitude_bits

    @property
    def code_max(self) -> int:
        return self.inner.code_max

    def codes(self, q: Tensor) -> Tensor:
        return self.inner.codes(q)

    def arrange(self, cells: Tensor, ref: Tensor | None = None) -> Tensor:
        return self.inner.arrange(cells, ref)

    def unarrange(self, m: Tensor, n_slices: int) -> Tensor:
        return self.inner.unarrange(m, n_slices)

    def fold(self, m: Tensor, var: bool = False) -> Tensor:
        return self.inner.fold(m, var)

    def kappa_for(self, digit_max: float, slice_sum: float) -> float:
        return self.inner.kappa_for(digit_max, slice_sum)

    # ------------------------------------------------------------ the slicing
    @property
    def bits_per_cell(self) -> int:
        return self.cell_bits

    @property
    def n_slices(self) -> int:
        return -(-self.magnitude_bits // self.cell_bits)

    @property
    def digit_max(self) -> int:
        return 2 ** self.cell_bits - 1

    @property
    def slice_base(self) -> int:
        return 2 ** self.cell_bits

    def digits(self, planes: Tensor) -> Tensor:
        base = self.slice_base
        return torch.stack([torch.div(planes, base ** s, rounding_mode="floor").remainder(base)
                            for s in range(self.n_slices)], dim=-3)

    def pulses(self, inc: Tensor, dec: Tensor) -> tuple[list[Tensor], Tensor]:
        if self.n_slices == 1:
            return self.inner.pulses(inc, dec)
        raise ConfigError(f"pulse updates need bits_per_cell = 0 or one slice (got "
                          f"{self.n_slices} slices); reprogram bit-sliced weights instead")

    def pulse_steps(self, up: float, down: float) -> tuple[float, float]:
        return self.inner.pulse_steps(up, down)
