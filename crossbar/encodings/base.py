"""The interface every weight encoding provides, and the arithmetic they share.

An encoding maps normalised weights ``w`` in ``[-1, 1]`` to cell conductances and back. The
integer weight code is ``q = w`` for analog weights (``weight_bits = 0``, ``n_w = 1``),
otherwise ``q = round(w * n_w)`` with ``n_w = 2^(weight_bits-1) - 1`` (symmetric, sign
included). From ``q`` an encoding makes non-negative *codes*, one plane per polarity ``P``
(``codes``); the codes are split into *digits* on ``n_slices`` cells (one digit, the code
itself, unless bit-sliced: :class:`~memxbar.crossbar.encodings.sliced.BitSlices`); a digit
``d in [0, d_max]`` is programmed to ``g_min + d * (g_max - g_min) / d_max``.

Tensors of per-weight cells are ``(..., P, n_slices, rows, weight_cols)``; physical cell
tensors ``(..., n_arrays, rows, used_cols)``. The read path folds physical conductances into
the analog matrix ``(..., rows, adc_cols)`` of the converters in units
U = V_read*(g_max-g_min); the converters of one tile are ordered weight column j, then slice s,
then the encoding's digital reference columns (``reference_cols``; the offset encoding has
one, subtracted digitally with the coefficient ``kappa``). Converter outputs become weight
columns by the shift-add with ``slice_coefficients``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import Tensor


class Encoding(ABC):
    """A weight encoding: conductance targets, physical layout, fold of conductances into
    converters, recombination into weights, digital reference term and pulse mapping.

    Concrete encodings declare the class attributes and implement the abstract members; the
    slicing members (``n_slices``, ``digit_max``, ``slice_base``, ``digits``) describe one
    cell per code unless :class:`BitSlices` overrides them.
    """

    name: ClassVar[str]  # registry key, the value of TileConfig.encoding
    LAYOUTS: ClassVar[tuple[str, ...]]  # layouts this encoding supports (first: default)
    LAYOUT_NOTE: ClassVar[str] = ""  # why other layouts are refused (error messages)
    polarities: ClassVar[int]  # cells per weight and slice (a G+/G- pair: 2)
    reference_cols: ClassVar[int] = 0  # converters per tile holding a digital reference

    weight_bits: int
    g_min: float  # S
    g_max: float  # S
    layout: str

    # ------------------------------------------------------------ declared by each encoding
    @property
    def n_arrays(self) -> int:
        """Physical arrays per tile."""
        return 1

    @property
    @abstractmethod
    def magnitude_bits(self) -> int:
        """Bits of the stored code (what bit slices split)."""

    @property
    @abstractmethod
    def code_max(self) -> int:
        """Largest code (maps to g_max when one cell holds the whole code)."""

    @abstractmethod
    def codes(self, q: Tensor) -> Tensor:
        """Weight codes ``(..., R, wc)`` -> non-negative codes ``(..., P, R, wc)``."""

    @abstractmethod
    def arrange(self, cells: Tensor, ref: Tensor | None = None) -> Tensor:
        """Per-weight cells ``(..., P, ns, R, wc)`` -> physical ``(..., n_arrays, R,
        used_cols)``; ``ref`` ``(..., R, reference_cols)`` fills the reference columns (zeros
        when None)."""

    @abstractmethod
    def unarrange(self, m: Tensor, n_slices: int) -> Tensor:
        """Physical ``(..., n_arrays, R, used_cols)`` -> per-weight cells ``(..., P,
        n_slices, R, wc)`` (reference columns left out); inverse of :meth:`arrange`."""

    @abstractmethod
    def fold(self, m: Tensor, var: bool = False) -> Tensor:
        """Physical conductances ``(..., n_arrays, R, used_cols)`` -> analog matrix ``(..., R,
        adc_cols)`` in units U; ``var``: read stds -> variances (U^2) of each converter."""

    @abstractmethod
    def pulses(self, inc: Tensor, dec: Tensor) -> tuple[list[Tensor], Tensor]:
        """Pulse counts that increase / decrease each weight ``(..., R, wc)`` (int64, >= 0)
        -> (signed physical pulse tensors, applied one after the other; physical pulse
        counts per cell). Positive pulses potentiate, negative ones depress."""

    @abstractmethod
    def pulse_steps(self, up: float, down: float) -> tuple[float, float]:
        """Nominal conductance change (S) of one potentiating / depressing pulse -> change
        of the encoded conductance by a pulse that increases / decreases the weight."""

    def kappa_for(self, digit_max: float, slice_sum: float) -> float:
        """Coefficient of the reference columns for digits up to ``digit_max`` and slice
        weights summing to ``slice_sum`` (0 without reference columns)."""
        return 0.0

    # ------------------------------------------------------------ digits (see BitSlices)
    @property
    def bits_per_cell(self) -> int:
        """Bits per cell (0: one cell holds the whole code)."""
        return 0

    @property
    def n_slices(self) -> int:
        """Cells (per polarity) that hold one weight."""
        return 1

    @property
    def digit_max(self) -> int:
        """Largest digit on one cell (maps to g_max)."""
        return self.code_max

    @property
    def slice_base(self) -> int:
        """Digital weight ratio of neighbouring slices."""
        return 1

    def digits(self, planes: Tensor) -> Tensor:
        """Codes ``(..., P, R, wc)`` -> digits ``(..., P, n_slices, R, wc)``."""
        return planes.unsqueeze(-3)

    # ------------------------------------------------------------ shared arithmetic
    @property
    def weight_levels(self) -> int:
        """``n_w``: weights are ``q / n_w`` with integer ``|q| <= n_w`` (1 when analog)."""
        return 1 if self.weight_bits == 0 else 2 ** (self.weight_bits - 1) - 1

    @property
    def cells_per_weight(self) -> int:
        """Cells per weight (without shared reference columns)."""
        return self.n_slices * self.polarities

    def weight_cols(self, cols: int) -> int:
        """Weight columns (logical outputs) an array of ``cols`` columns holds."""
        return (cols - self.reference_cols) // (self.cells_per_weight // self.n_arrays)

    def used_cols_for(self, weight_cols: int) -> int:
        """Physical columns per array used by ``weight_cols`` weight columns."""
        return weight_cols * (self.cells_per_weight // self.n_arrays) + self.reference_cols

    def adc_cols(self, weight_cols: int) -> int:
        """Converters per read cycle for ``weight_cols`` weight columns (slices and the
        reference columns)."""
        return weight_cols * self.n_slices + self.reference_cols

    def weights_per_tile(self, rows: int, cols: int) -> tuple[int, int]:
        """``(inputs, outputs)``: the weight matrix one tile of ``rows`` x ``cols`` holds."""
        return rows, self.weight_cols(cols)

    @property
    def label(self) -> str:
        """Short name, e.g. ``"differential, columns"`` or ``"offset, columns, 4 slices x 2
        bits"``."""
        text = f"{self.name}, {self.layout}"
        if self.bits_per_cell:
            ns, c = self.n_slices, self.bits_per_cell
            text += f", {ns} slice{'s' * (ns > 1)} x {c} bit{'s' * (c > 1)}"
        return text

    def describe(self, rows: int, cols: int) -> str:
        """One line with the weights per tile, e.g. ``"256x256, differential, columns:
        256x128 weights per tile"``."""
        r, c = self.weights_per_tile(rows, cols)
        arrays = f" ({self.n_arrays} arrays)" if self.n_arrays > 1 else ""
        return f"{rows}x{cols}{arrays}, {self.label}: {r}x{c} weights per tile"

    @property
    def g_ref(self) -> float:
        """Conductance of reference cells, S (mid-range)."""
        return 0.5 * (self.g_min + self.g_max)

    @property
    def slice_sum(self) -> int:
        """``S = sum_s base^s``: the digital weight of all slices at digit 1."""
        return sum(self.slice_base ** s for s in range(self.n_slices))

    @property
    def slice_coefficients(self) -> list[float]:
        """Digital weight of slice s per unit U: ``base^s * d_max / n_w``."""
        return [self.slice_base ** s * self.digit_max / self.weight_levels
                for s in range(self.n_slices)]

    @property
    def kappa(self) -> float:
        """Coefficient of the reference columns (units U -> weight*input; 0 without)."""
        return self.kappa_for(self.digit_max, self.slice_sum)

    @property
    def weight_per_siemens(self) -> float:
        """Nominal change of a normalised weight per siemens of one of its cells."""
        return self.digit_max / (self.weight_levels * (self.g_max - self.g_min))

    def quantize(self, W: Tensor) -> Tensor:
        """Normalised weights (clamped to [-1, 1]) -> weight codes ``q``."""
        return W if self.weight_bits == 0 else torch.round(W * self.weight_levels)

    def targets(self, W: Tensor) -> Tensor:
        """Normalised weights ``(..., R, wc)`` in [-1, 1] -> conductance targets (S)
        ``(..., n_arrays, R, used_cols)``, reference cells at ``g_ref``."""
        return self.conductances(self.quantize(W))

    def conductances(self, q: Tensor) -> Tensor:
        """Weight codes ``(..., R, wc)`` -> conductance targets (S), physical layout."""
        digits = self.digits(self.codes(q))
        g = self.g_min + digits * ((self.g_max - self.g_min) / self.digit_max)
        ref = (q.new_full((*q.shape[:-1], self.reference_cols), self.g_ref)
               if self.reference_cols else None)
        return self.arrange(g, ref)

    def cells(self, m: Tensor) -> Tensor:
        """Physical ``(..., n_arrays, R, used_cols)`` -> per-weight cells ``(..., P,
        n_slices, R, wc)``."""
        return self.unarrange(m, self.n_slices)

    def recombine(self, a: Tensor, square: bool = False) -> Tensor:
        """Converter values ``(..., adc_cols)`` -> weight columns ``(..., wc)`` by the digital
        shift-add and reference term (``square``: of variances, squared coefficients)."""
        coef = a.new_tensor(self.slice_coefficients)
        if square:
            coef = coef * coef
        n = a.shape[-1] - self.reference_cols
        y = a[..., :n].unflatten(-1, (-1, self.n_slices)) @ coef
        if self.reference_cols:
            k = self.kappa * self.kappa if square else -self.kappa
            y = y + k * a[..., n:].sum(-1, keepdim=True)
        return y

    def converter_coefficients(self, weight_cols: int, like: Tensor) -> Tensor:
        """Digital coefficient of every converter ``(adc_cols,)`` (dtype/device of
        ``like``): slice coefficients per weight column, ``-kappa`` per reference column."""
        col = like.new_tensor(self.slice_coefficients).repeat(weight_cols)
        if self.reference_cols:
            col = torch.cat([col, col.new_full((self.reference_cols,), -self.kappa)])
        return col

    def combine(self, y: Tensor) -> Tensor:
        """Converter outputs already scaled by :meth:`converter_coefficients` ``(...,
        adc_cols)`` -> weight columns ``(..., wc)`` (slices and reference columns summed)."""
        if self.n_slices == 1 and not self.reference_cols:
            return y
        n = y.shape[-1] - self.reference_cols
        out = y[..., :n]
        if self.n_slices > 1:
            out = out.unflatten(-1, (-1, self.n_slices)).sum(-1)
        if self.reference_cols:
            out = out + y[..., n:].sum(-1, keepdim=True)
        return out

    def correct_transposed(self, y: Tensor, wa: Tensor, dsum: Callable[[], Tensor]) -> Tensor:
        """Transposed MVM outputs ``(..., B, R)`` minus the reference term ``kappa *
        sum_j d_j * wa_ref`` (``dsum()``: the input sums ``(..., B)`` in DAC volts times
        range; ``wa`` the analog matrix ``(..., R, adc_cols)``). Identity without reference
        columns."""
        if not self.reference_cols:
            return y
        ref = wa[..., wa.shape[-1] - self.reference_cols:].sum(-1)
        return y - self.kappa * dsum().unsqueeze(-1) * ref.unsqueeze(-2)


@dataclass(frozen=True, kw_only=True)
class StoredEncoding(Encoding):
    """An encoding that writes its own codes to cells (not a wrapper such as
    :class:`BitSlices`): the weight resolution, the device's conductance range and the
    layout."""

    weight_bits: int
    g_min: float  # S
    g_max: float  # S
    layout: str = "columns"
