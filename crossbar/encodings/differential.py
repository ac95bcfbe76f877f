"""Differential pair: ``q+ = max(q, 0)`` on cell G+, ``q- = max(-q, 0)`` on cell G- (the unused
cell of a pair sits at g_min); the pair's currents are subtracted in the analog domain before
the ADC, one conversion per pair.

Layout "columns": G+/G- are neighbouring columns of one array (physical columns ordered weight
column j, then slice s, then polarity); "arrays": G+ in array 0, G- in array 1, same position.
A weight increase potentiates G+, a decrease potentiates G- (depression is never used).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import Tensor

from memxbar.crossbar.encodings.base import StoredEncoding


@dataclass(frozen=True, kw_only=True)
class Differential(StoredEncoding):
    """Two cells per weight (and slice): G+ and G-, in two columns or two arrays."""

    name: ClassVar[str] = "differential"
    LAYOUTS: ClassVar[tuple[str, ...]] = ("columns", "arrays")
    polarities: ClassVar[int] = 2

    @property
    def n_arrays(self) -> int:
        return 2 if self.layout == "arrays" else 1

    @property
    def magnitude_bits(self) -> int:
        """``|q|`` has ``weight_bits - 1`` bits (the sign picks the cell)."""
        return self.weight_bits - 1

    @property
    def code_max(self) -> int:
        return self.weight_levels

    def codes(self, q: Tensor) -> Tensor:
        return torch.stack([q.clamp(min=0), (-q).clamp(min=0)], dim=-3)

    def conductances(self, q: Tensor) -> Tensor:
        # one cell per polarity: G+ / G- written straight into the physical layout
        k = (self.g_max - self.g_min) / self.code_max
        arrays = self.layout == "arrays"
        out = q.new_empty((*q.shape[:-2], 2, *q.shape[-2:]) if arrays else (*q.shape, 2))
        pos, neg = (out[..., 0, :, :], out[..., 1, :, :]) if arrays else (out[..., 0],
                                                                          out[..., 1])
        torch.mul(q, k, out=pos)
        torch.mul(q, -k, out=neg)
        out.clamp_(min=0.0)
        if self.g_min:
            out.add_(self.g_min)
        return out if arrays else out.flatten(-2).unsqueeze(-3)

    def arrange(self, cells: Tensor, ref: Tensor | None = None) -> Tensor:
        lead, rows = cells.shape[:-4], cells.shape[-2]
        if self.layout == "arrays":
            return cells.movedim(-3, -1).reshape(*lead, 2, rows, -1)
        return cells.movedim(-4, -1).movedim(-4, -2).reshape(*lead, rows, -1).unsqueeze(-3)

    def unarrange(self, m: Tensor, n_slices: int) -> Tensor:
        if self.layout == "arrays":
            return m.unflatten(-1, (-1, n_slices)).movedim(-1, -3)
        a = m[..., 0, :, :].unflatten(-1, (-1, n_slices, 2))  # (..., R, wc, ns, P)
        return a.movedim(-1, -4).movedim(-1, -3)

    def fold(self, m: Tensor, var: bool = False) -> Tensor:
        rng = self.g_max - self.g_min
        if self.layout == "arrays":
            p, n = m[..., 0, :, :], m[..., 1, :, :]
        else:
            pair = m[..., 0, :, :].unflatten(-1, (-1, 2))
            p, n = pair[..., 0], pair[..., 1]
        if var:
            return torch.mul(p, p).addcmul_(n, n).mul_(1.0 / (rng * rng))
        return torch.sub(p, n).mul_(1.0 / rng)

    def pulses(self, inc: Tensor, dec: Tensor) -> tuple[list[Tensor], Tensor]:
        n = self.arrange(torch.stack([inc, dec], dim=-3).unsqueeze(-3))  # G+ up, G- up
        return [n], n

    def pulse_steps(self, up: float, down: float) -> tuple[float, float]:
        return up, up
