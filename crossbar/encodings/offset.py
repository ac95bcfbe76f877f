"""Offset: one cell per weight holds ``u = q + z`` (zero code ``z = n_w``, so ``u in [0, 2 n_w]``)
and a shared reference column (the last column of the array, every cell at ``g_ref = (g_min +
g_max) / 2``) is converted by its own ADC and subtracted digitally with the fixed coefficient
``kappa``, which removes both the zero code and the g_min floor of every slice.

Only the "columns" layout exists (one cell per weight needs no second array). A weight
increase potentiates the cell, a decrease depresses it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import Tensor

from memxbar.crossbar.encodings.base import StoredEncoding


@dataclass(frozen=True, kw_only=True)
class Offset(StoredEncoding):
    """One cell per weight (and slice) plus one reference column per array."""

    name: ClassVar[str] = "offset"
    LAYOUTS: ClassVar[tuple[str, ...]] = ("columns",)
    LAYOUT_NOTE: ClassVar[str] = "one cell per weight"
    polarities: ClassVar[int] = 1
    reference_cols: ClassVar[int] = 1

    @property
    def magnitude_bits(self) -> int:
        """``u`` has ``weight_bits`` bits."""
        return self.weight_bits

    @property
    def code_max(self) -> int:
        return 2 * self.weight_levels

    def codes(self, q: Tensor) -> Tensor:
        return (q + self.weight_levels).unsqueeze(-3)

    def kappa_for(self, digit_max: float, slice_sum: float) -> float:
        """``kappa = (d_max * S * g_min + z * range) / g_ref / n_w``."""
        z = self.weight_levels
        rng = self.g_max - self.g_min
        return (digit_max * slice_sum * self.g_min + z * rng) / self.g_ref / self.weight_levels

    def arrange(self, cells: Tensor, ref: Tensor | None = None) -> Tensor:
        lead, rows = cells.shape[:-4], cells.shape[-2]
        if ref is None:
            ref = cells.new_zeros((*lead, rows, 1))
        a = cells[..., 0, :, :, :].movedim(-3, -1).reshape(*lead, rows, -1)
        return torch.cat([a, ref], dim=-1).unsqueeze(-3)

    def unarrange(self, m: Tensor, n_slices: int) -> Tensor:
        a = m[..., 0, :, :-1].unflatten(-1, (-1, n_slices))  # (..., R, wc, ns)
        return a.movedim(-1, -3).unsqueeze(-4)

    def fold(self, m: Tensor, var: bool = False) -> Tensor:
        rng = self.g_max - self.g_min
        a = m[..., 0, :, :]
        return a * a * (1.0 / (rng * rng)) if var else a * (1.0 / rng)

    def pulses(self, inc: Tensor, dec: Tensor) -> tuple[list[Tensor], Tensor]:
        up = self.arrange(inc[..., None, None, :, :])
        down = self.arrange(dec[..., None, None, :, :])
        return [up, -down], self.arrange((inc + dec)[..., None, None, :, :])

    def pulse_steps(self, up: float, down: float) -> tuple[float, float]:
        return up, down
