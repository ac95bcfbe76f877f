"""In-situ operations of a tiled matrix for online training: the transposed MVM, the outer-
product pulse update and direct pulses (single-group matrices only)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

import torch
from torch import Tensor
from torch.nn import functional as F

from memxbar.errors import ConfigError

if TYPE_CHECKING:
    from memxbar.crossbar.tile import Tile, TileConfig


class InSituOps:
    """Mixed into :class:`~memxbar.mapping.tiler.TiledMatrix` (uses its layout helpers)."""

    scale: Tensor | None
    alpha: Tensor | None
    tile: Tile
    groups: int
    in_features: int
    out_features: int
    n_col_blocks: int
    sim: TileConfig

    if TYPE_CHECKING:  # layout helpers of TiledMatrix
        @property
        def padded(self) -> tuple[int, int]: ...
        def _programmed(self, op: str) -> Tile: ...
        def _scale_inputs(self, x: Tensor, clip: bool = True) -> tuple[Tensor, Tensor]: ...
        def _input_blocks(self, xn: Tensor) -> Tensor: ...
        def _to_blocks(self, wt: Tensor) -> Tensor: ...

    def _ungrouped(self, op: str) -> Tile:
        tile = self._programmed(op)
        if self.groups > 1:
            raise ConfigError(f"TiledMatrix.{op}: not supported for grouped matrices (groups = "
                             f"{self.groups}); allowed: groups = 1")
        return tile

    @torch.no_grad()
    def backward(self, d: Tensor, *, generator: torch.Generator | None = None) -> Tensor:
        """Transposed MVM through the same cells: ``d`` (B, out) -> (B, in) ≈ ``d @ W``."""
        tile = self._ungrouped("backward")
        dn, a = self._grad_blocks(d)
        if not tile.adc_calibrated_transposed:
            # the row ADCs of the backward pass are ranged on the first gradients they see
            tile.calibrate_adc(d=dn)
        y = tile.mvm_t(dn, generator=generator)  # (n_rb, n_cb, B, rows)
        y = y.sum(dim=1).permute(1, 0, 2).reshape(d.shape[0], -1)[:, : self.in_features]
        return y * a

    def _grad_blocks(self, d: Tensor) -> tuple[Tensor, Tensor]:
        """Output gradients ``d`` (B, out) -> what the transposed MVM's DACs receive, blocks
        (1, n_cb, B, weight_cols) normalised per vector, and the digital scale (B, 1)."""
        s = self._scale()
        ds = d * s if self.alpha is None else d * s * self.alpha
        a = ds.abs().amax(dim=1, keepdim=True)
        a = torch.where(a > 0, a, torch.ones_like(a))
        dn = F.pad(ds / a, (0, self.padded[1] - self.out_features))
        dn = dn.reshape(d.shape[0], self.n_col_blocks, self.sim.weight_cols).permute(1, 0, 2)
        return dn[None], a

    @torch.no_grad()
    def calibrate_adc_transposed(self, d: Tensor) -> None:
        """Set the ranges of the transposed MVM's (row) ADCs from output gradients ``d``
        (B, out)."""
        self._ungrouped("calibrate_adc_transposed").calibrate_adc(d=self._grad_blocks(d)[0])

    def _output_blocks(self, d: Tensor) -> Tensor:
        """(B, out) -> (1, n_cb, B, weight_cols), zero padded."""
        d = F.pad(d, (0, self.padded[1] - self.out_features))
        return d.reshape(d.shape[0], self.n_col_blocks, self.sim.weight_cols).permute(
            1, 0, 2)[None]

    def _scale(self) -> Tensor:
        """(out,) weight bound per output column, set by ``program()`` (callers have checked
        that the matrix is programmed)."""
        assert self.scale is not None
        return self.scale

    def _weight_units(self) -> Tensor:
        """(out,) layer-weight change per unit change of a normalised tile weight."""
        s = self._scale()
        return s if self.alpha is None else s * self.alpha

    @torch.no_grad()
    def update(self, x: Tensor, d: Tensor, lr: float, *, generator: torch.Generator | None = None,
               mode: Literal["stochastic", "counts"] = "stochastic", bl: int = 31) -> int:
        """SGD step ``W -= lr * d.T @ x`` of the layer's weights (out, in) as device pulses
        (:meth:`Tile.update`): layer inputs ``x`` (B, in) and output gradients ``d`` (B, out).
        Inputs are scaled as in the forward pass; ``d`` is rescaled so that the step is ``lr``
        times the gradient in the layer's weight units. Returns the pulses applied."""
        tile = self._ungrouped("update")
        if x.dim() != 2 or x.shape[1] != self.in_features or d.dim() != 2 or (
                d.shape != (x.shape[0], self.out_features)):
            raise ConfigError(f"TiledMatrix.update: x {tuple(x.shape)} and d {tuple(d.shape)}; "
                             f"expected (B, {self.in_features}) and (B, {self.out_features})")
        xn, a = self._scale_inputs(x)
        dn = d * a / self._weight_units()
        n = tile.update(self._input_blocks(xn), self._output_blocks(dn), lr,
                        generator=generator, mode=mode, bl=bl)
        return int(n.sum())

    @torch.no_grad()
    def pulse_steps(self) -> tuple[Tensor, Tensor]:
        """Nominal change (out,) of each layer weight by one pulse that increases / decreases
        it (:meth:`Tile.weight_steps` in the layer's units)."""
        up, down = self._programmed("pulse_steps").weight_steps()
        u = self._weight_units()
        return up * u, down * u

    @torch.no_grad()
    def apply_pulses(self, n: Tensor, *, generator: torch.Generator | None = None) -> int:
        """Apply signed pulse counts ``n`` (out, in) to the layer's weights (``n > 0``
        increases a weight; :meth:`Tile.apply_pulses`). Returns the pulses applied."""
        tile = self._programmed("apply_pulses")
        if tuple(n.shape) != (self.out_features, self.in_features):
            raise ConfigError(f"TiledMatrix.apply_pulses: n has shape {tuple(n.shape)}; expected "
                             f"{(self.out_features, self.in_features)}")
        return int(tile.apply_pulses(self._to_blocks(n.t()),
                                     generator=generator).sum())
