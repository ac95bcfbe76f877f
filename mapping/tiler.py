"""A weight matrix on a grid of crossbar tiles.

The matrix ``W`` (out, in) of a layer is stored transposed on the arrays: inputs drive rows,
outputs are read on columns. Inputs are split into row blocks of ``rows`` and outputs into column
blocks of ``weight_cols`` (the encoding's logical columns per tile); the blocks form one stacked
:class:`~memxbar.crossbar.tile.Tile` of shape ``(n_row_blocks, n_col_blocks)`` and run as one
batched matmul. Each tile digitizes its own partial sums (its ADCs), and the partial sums of the
row blocks are added digitally, as on chip.

Scaling: weights are divided by a per-layer or per-output-column bound (clipped by the largest
magnitude, a percentile, or a fixed value) to the tile's normalised range [-1, 1]; inputs are
divided by their largest magnitude per input vector ("dynamic", a digital pre-scale as in
aihwkit's absolute-max noise management) or by a fixed full scale, so they fit the DAC range.
Outputs are multiplied back digitally.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor
from torch.nn import functional as F

from ..crossbar.tile import Tile, TileConfig
from ..errors import ConfigError
from .compensation import compensation_factors, probe_inputs

WEIGHT_SCALING = ("column", "layer")
WEIGHT_CLIP = ("max", "percentile", "fixed")
INPUT_SCALING = ("dynamic", "fixed", "calibrated")
COMPENSATION = ("none", "global", "column")


@dataclass(frozen=True)
class MappingConfig:
    """How a layer's weights and inputs are scaled onto tiles, and drift compensation.

    - ``weight_scaling``: one bound per output column ("column") or per layer ("layer").
    - ``weight_clip``: the bound is the largest ``|W|`` ("max"), the ``clip_value``-th
      percentile of ``|W|`` ("percentile", e.g. 99.5), or ``clip_value`` itself ("fixed",
      weight units); weights beyond it saturate at the device range.
    - ``input_scaling``: "dynamic" (per input vector, largest magnitude), "fixed"
      (``input_range`` in activation units; larger inputs saturate at the DAC range) or
      "calibrated" (a fixed range per layer: the largest ``|input|`` seen in ADC calibration,
      as a chip quantizes activations to one range per layer). With "fixed" or "calibrated"
      and a one-shot DAC, convolutions run without unfolding (see ``forward_conv``).
    - ``compensation``: drift compensation by a reference read (see
      :mod:`memxbar.mapping.compensation`): "none", "global" (one factor per layer) or
      "column" (one factor per output).
    """

    weight_scaling: Literal["column", "layer"] = "column"
    weight_clip: Literal["max", "percentile", "fixed"] = "max"
    clip_value: float = 99.5
    input_scaling: Literal["dynamic", "fixed", "calibrated"] = "dynamic"
    input_range: float = 1.0
    compensation: Literal["none", "global", "column"] = "none"

    def __post_init__(self) -> None:
        for name, allowed in (("weight_scaling", WEIGHT_SCALING), ("weight_clip", WEIGHT_CLIP),
                              ("input_scaling", INPUT_SCALING), ("compensation", COMPENSATION)):
            if getattr(self, name) not in allowed:
                raise ConfigError(f"MappingConfig.{name} = {getattr(self, name)!r} is not allowed;"
                                 f" allowed: {', '.join(allowed)}")
        for name in ("clip_value", "input_range"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 < v < math.inf:
                raise ConfigError(f"MappingConfig.{name} = {v!r} is not allowed; allowed: a "
                                 "finite number > 0")
        if self.weight_clip == "percentile" and not 0 < self.clip_value <= 100:
            raise ConfigError(f"MappingConfig.clip_value = {self.clip_value!r} is not allowed "
                             "with weight_clip='percentile'; allowed: (0, 100]")


class TiledMatrix:
    """The weights of one layer, ``(out_features, in_features)``, on a stacked tile grid."""

    def __init__(self, hardware: TileConfig, in_features: int, out_features: int,
                 mapping: MappingConfig | None = None) -> None:
        if not isinstance(hardware, TileConfig):
            raise ConfigError(f"TiledMatrix: hardware = {hardware!r} is not a TileConfig")
        self.hardware = hardware
        self.mapping = mapping or MappingConfig()
        self.in_features, self.out_features = int(in_features), int(out_features)
        self.n_row_blocks = -(-self.in_features // hardware.rows)
        self.n_col_blocks = -(-self.out_features // hardware.weight_cols)
        self.sim = self._simulated(hardware)
        self.tile = Tile(self.sim, (self.n_row_blocks, self.n_col_blocks))
        self.scale: Tensor | None = None  # (out,) weight bound per output column
        self.ref: Tensor | None = None  # (out,) reference-read magnitudes at t = 0
        self.alpha: Tensor | None = None  # (out,) drift-compensation factors
        self.x_range: float | None = None  # calibrated input range ("calibrated" scaling)

    def _simulated(self, hw: TileConfig) -> TileConfig:
        """The arrays as simulated: a layer smaller than one tile is simulated on its used
        rows and columns only (unused cells are never driven or read, so with ideal wires the
        result is identical and the padding costs no flops). With wire resistance the whole
        array is kept, since the unused cells load the wires."""
        if hw.r_row > 0 or hw.r_col > 0:
            return hw
        rows = self.in_features if self.n_row_blocks == 1 else hw.rows
        cols = hw.used_cols_for(self.out_features) if self.n_col_blocks == 1 else hw.cols
        return dataclasses.replace(hw, rows=rows, cols=cols)

    # ----------------------------------------------------------------- layout
    @property
    def padded(self) -> tuple[int, int]:
        """(inputs, outputs) after padding to whole tiles."""
        return (self.n_row_blocks * self.sim.rows, self.n_col_blocks * self.sim.weight_cols)

    def _to_blocks(self, wt: Tensor) -> Tensor:
        """(in, out) -> (n_rb, n_cb, rows, weight_cols), zero padded."""
        pin, pout = self.padded
        wt = torch.nn.functional.pad(wt, (0, pout - wt.shape[1], 0, pin - wt.shape[0]))
        rows, wc = self.sim.rows, self.sim.weight_cols
        return wt.reshape(self.n_row_blocks, rows, self.n_col_blocks, wc).transpose(1, 2)

    def _from_blocks(self, blocks: Tensor) -> Tensor:
        """(n_rb, n_cb, rows, weight_cols) -> (in, out), padding removed."""
        pin, pout = self.padded
        wt = blocks.transpose(1, 2).reshape(pin, pout)
        return wt[: self.in_features, : self.out_features]

    def weight_bounds(self, weight: Tensor) -> Tensor:
        """Per-output-column scaling bound (out,) by the mapping's scaling and clip rules."""
        m = self.mapping
        a = weight.detach().abs()
        if m.weight_clip == "fixed":
            bound = torch.full((weight.shape[0],), float(m.clip_value), dtype=weight.dtype)
        elif m.weight_scaling == "column":
            bound = (a.amax(dim=1) if m.weight_clip == "max"
                     else torch.quantile(a.double(), m.clip_value / 100, dim=1).to(a.dtype))
        else:
            b = a.max() if m.weight_clip == "max" else torch.quantile(a.double().flatten(),
                                                                      m.clip_value / 100)
            bound = torch.full((weight.shape[0],), float(b), dtype=weight.dtype)
        tiny = torch.finfo(weight.dtype).tiny
        return torch.where(bound > tiny, bound, torch.ones_like(bound)).to(weight.device)

    # ----------------------------------------------------------------- hardware life cycle
    @torch.no_grad()
    def program(self, weight: Tensor, *, generator: torch.Generator | None = None) -> None:
        """Program ``weight`` (out, in); resets read time, compensation and ADC calibration."""
        want = (self.out_features, self.in_features)
        if tuple(weight.shape) != want:
            raise ConfigError(f"TiledMatrix.program: weight has shape {tuple(weight.shape)}; "
                             f"expected {want}")
        if not bool(torch.isfinite(weight).all()):
            raise ConfigError("TiledMatrix.program: weight has non-finite values")
        self.scale = self.weight_bounds(weight)
        w = (weight.detach() / self.scale[:, None]).clamp(-1.0, 1.0)
        self.tile.program(self._to_blocks(w.t()), generator=generator)
        self.alpha = None
        self.ref = None
        if self.mapping.compensation != "none" and self.tile.adc_calibrated:
            self.ref = self._reference_read(generator)

    @torch.no_grad()
    def set_time(self, t: float, *, generator: torch.Generator | None = None) -> None:
        """Read the cells ``t`` s after programming; refresh drift compensation."""
        self.tile.set_time(t, generator=generator)
        if self.mapping.compensation == "none":
            self.alpha = None
            return
        if self.ref is None:
            self.ref = self._ref_at_zero(generator)
        now = self._reference_read(generator)
        self.alpha = compensation_factors(self.ref, now, self.mapping.compensation)

    def _ref_at_zero(self, generator: torch.Generator | None) -> Tensor:
        t = self.tile.t
        self.tile.set_time(0.0, generator=generator)
        ref = self._reference_read(generator)
        self.tile.set_time(t, generator=generator)
        return ref

    def _reference_read(self, generator: torch.Generator | None) -> Tensor:
        """Sum over the probe vectors of ``|output|`` per output (out,), through the hardware."""
        x = probe_inputs(self.in_features, self.tile.state.g.dtype,  # type: ignore[union-attr]
                         self.tile.state.g.device)  # type: ignore[union-attr]
        y = self._mvm(x, generator, normalised=True)
        return y.abs().sum(dim=0)

    @torch.no_grad()
    def calibrate_adc(self, x: Tensor, *, accumulate: bool = False,
                      input_range: bool = True) -> None:
        """Set ADC ranges (and, for "calibrated" input scaling with ``input_range``, the input
        range first) from example layer inputs ``x`` (N, in); ``accumulate`` widens the
        ranges of an earlier call."""
        if self.mapping.input_scaling == "calibrated" and (input_range or self.x_range is None):
            r = float(x.abs().max()) if x.numel() else 0.0
            if not math.isfinite(r):
                raise ConfigError("TiledMatrix.calibrate_adc: x has non-finite values")
            if accumulate and self.x_range is not None:
                r = max(r, self.x_range)
            self.x_range = r if r > 0 else 1.0
        self.tile.calibrate_adc(self.tile_inputs(x)[0], accumulate=accumulate)
        if self.mapping.compensation != "none" and self.ref is None:
            self.ref = self._ref_at_zero(None)

    # ----------------------------------------------------------------- MVMs
    def tile_inputs(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Layer inputs ``x`` (B, in) -> what the tiles receive: normalised, zero-padded row
        blocks (n_rb, 1, B, rows) in [-1, 1], and the digital input scale (B, 1)."""
        xn, a = self._scale_inputs(x)
        return self._input_blocks(xn), a

    def input_range(self, op: str = "forward") -> float:
        """The fixed input range (activation units) of "fixed" or "calibrated" scaling."""
        if self.mapping.input_scaling == "fixed":
            return float(self.mapping.input_range)
        if self.x_range is None:
            raise ConfigError(f"TiledMatrix.{op}: input_scaling='calibrated' needs a calibration;"
                             " run memxbar.mapping.calibrate(model, batches) (or program(..., "
                             "calibration=...)) first")
        return self.x_range

    def _input_scale(self, x: Tensor, input_amax: Tensor | None = None) -> Tensor:
        """Digital input scale (B, 1) of layer inputs ``x`` (B, in): the fixed or calibrated
        range, or each vector's largest ``|x|`` (``input_amax`` if given; 1 for zeros)."""
        if self.mapping.input_scaling != "dynamic":
            return torch.full((x.shape[0], 1), self.input_range(), dtype=x.dtype,
                              device=x.device)
        a = x.abs().amax(dim=1, keepdim=True) if input_amax is None else input_amax
        return torch.where(a > 0, a, torch.ones_like(a))

    def _scale_inputs(self, x: Tensor) -> tuple[Tensor, Tensor]:
        a = self._input_scale(x)
        return (x / a).clamp(-1.0, 1.0), a

    def _input_blocks(self, xn: Tensor) -> Tensor:
        """(B, in) -> (n_rb, 1, B, rows), zero padded."""
        pin = self.padded[0]
        xn = torch.nn.functional.pad(xn, (0, pin - xn.shape[1]))
        return xn.reshape(xn.shape[0], self.n_row_blocks, self.sim.rows).permute(1, 0, 2)[
            :, None]

    def _mvm(self, x: Tensor, generator: torch.Generator | None, normalised: bool = False,
             input_amax: Tensor | None = None) -> Tensor:
        """Scaled, DAC-quantized row blocks through the tiles (input scaling fused with the
        DAC), partial sums of the row blocks added digitally, outputs rescaled."""
        a = self._input_scale(x, input_amax)
        if self.mapping.input_scaling != "dynamic" and float(self.hardware.dac.input_range) > 1:
            x = x.clamp(-a, a)  # the tile's inputs are normalised to [-1, 1]
        pin = self.padded[0]
        if pin != x.shape[1]:
            x = torch.nn.functional.pad(x, (0, pin - x.shape[1]))
        blocks = x.reshape(x.shape[0], self.n_row_blocks, self.sim.rows).transpose(0, 1)
        y = self.tile.mvm_rows(blocks, a, generator=generator)  # (n_rb, B, n_cb * wc)
        y = self._accumulate(y).mul_(a)
        return y if normalised else y.mul_(self.scale)

    def _accumulate(self, y: Tensor) -> Tensor:
        """Row blocks' partial sums ``(n_rb, B, n_cb * wc)`` added digitally -> ``(B, out)``."""
        for k in range(1, self.n_row_blocks):
            y[0].add_(y[k])
        y = y[0]
        return y if y.shape[1] == self.out_features else y[:, : self.out_features]

    @property
    def conv_ready(self) -> bool:
        """True when :meth:`forward_conv` applies: a fixed or calibrated input range and a
        one-shot DAC (the DAC codes are then per pixel, independent of the patch)."""
        return self.mapping.input_scaling != "dynamic" and self.hardware.dac.n_cycles == 1

    @torch.no_grad()
    def forward_conv(self, x: Tensor, kernel_size: tuple[int, int], stride: tuple[int, int],
                     padding: tuple[int, int], dilation: tuple[int, int], *,
                     generator: torch.Generator | None = None) -> Tensor:
        """A convolution through the hardware without unfolding the image: ``x`` (N, C, H, W)
        -> (N, out, OH, OW). The rows of row block b hold unfolded inputs ``[b R, (b+1) R)``
        in (channel, kh, kw) order; each block's dot products are one ``conv2d`` of the DAC
        codes of its channels with its conductances, digitized by its own ADCs as in
        :meth:`forward`. Needs :attr:`conv_ready`."""
        if self.scale is None:
            raise ConfigError("TiledMatrix.forward_conv: not programmed; call program() first")
        if not self.conv_ready:
            raise ConfigError("TiledMatrix.forward_conv: needs input_scaling 'fixed' or "
                             "'calibrated' and a one-shot DAC; use forward() on unfolded inputs")
        kh, kw = kernel_size
        per_c, R, nrb = kh * kw, self.sim.rows, self.n_row_blocks
        if x.dim() != 4 or x.shape[1] * per_c != self.in_features:
            raise ConfigError(f"TiledMatrix.forward_conv: input has shape {tuple(x.shape)}; "
                             f"expected (N, {self.in_features // per_c}, H, W)")
        fs = self.input_range("forward_conv")
        if float(self.hardware.dac.input_range) > 1.0:
            x = x.clamp(-fs, fs)  # the tile's inputs are normalised to [-1, 1]
        shape: list[int] = []

        def mac(codes: Tensor, A: Tensor) -> Tensor:
            outs = []
            for b in range(nrb):
                lo, hi = b * R, min((b + 1) * R, self.in_features)
                c0, c1 = lo // per_c, -(-hi // per_c)
                k = A.new_zeros(((c1 - c0) * per_c, A.shape[-1]))
                k[lo - c0 * per_c: hi - c0 * per_c] = A[b, : hi - lo]
                k = k.t().reshape(-1, c1 - c0, kh, kw)
                outs.append(F.conv2d(codes[:, c0:c1], k, None, stride, padding, dilation))
            y = outs[0].unsqueeze(0) if nrb == 1 else torch.stack(outs)  # (n_rb, N, cols, ..)
            shape[:] = [y.shape[1], y.shape[3], y.shape[4]]
            return y.permute(0, 1, 3, 4, 2).reshape(nrb, -1, y.shape[2])

        y = self._accumulate(self.tile.mvm_custom(x, mac, fs, generator=generator))
        s = self.scale * fs if self.alpha is None else self.scale * self.alpha * fs
        n, oh, ow = shape
        return y.mul_(s).reshape(n, oh, ow, self.out_features).permute(0, 3, 1, 2)

    @torch.no_grad()
    def forward(self, x: Tensor, *, generator: torch.Generator | None = None,
                input_amax: Tensor | None = None) -> Tensor:
        """``x`` (B, in) -> ``y`` (B, out) ≈ ``x @ W.T`` through the hardware.
        ``input_amax`` (B, 1): the largest ``|x|`` of each row when the caller has it cheaper
        (a convolution's patches: max pooling of the image); "dynamic" input scaling."""
        if self.scale is None:
            raise ConfigError("TiledMatrix.forward: not programmed; call program() first")
        if x.dim() != 2 or x.shape[1] != self.in_features:
            raise ConfigError(f"TiledMatrix.forward: input has shape {tuple(x.shape)}; expected "
                             f"(batch, {self.in_features})")
        y = self._mvm(x, generator, input_amax=input_amax)
        return y if self.alpha is None else y.mul_(self.alpha)

    @torch.no_grad()
    def backward(self, d: Tensor, *, generator: torch.Generator | None = None) -> Tensor:
        """Transposed MVM through the same cells: ``d`` (B, out) -> (B, in) ≈ ``d @ W``."""
        if self.scale is None:
            raise ConfigError("TiledMatrix.backward: not programmed; call program() first")
        dn, a = self._grad_blocks(d)
        if not self.tile.adc_calibrated_transposed:
            # the row ADCs of the backward pass are ranged on the first gradients they see
            self.tile.calibrate_adc(d=dn)
        y = self.tile.mvm_t(dn, generator=generator)  # (n_rb, n_cb, B, rows)
        y = y.sum(dim=1).permute(1, 0, 2).reshape(d.shape[0], -1)[:, : self.in_features]
        return y * a

    def _grad_blocks(self, d: Tensor) -> tuple[Tensor, Tensor]:
        """Output gradients ``d`` (B, out) -> what the transposed MVM's DACs receive, blocks
        (1, n_cb, B, weight_cols) normalised per vector, and the digital scale (B, 1)."""
        ds = d * self.scale if self.alpha is None else d * self.scale * self.alpha
        a = ds.abs().amax(dim=1, keepdim=True)
        a = torch.where(a > 0, a, torch.ones_like(a))
        dn = torch.nn.functional.pad(ds / a, (0, self.padded[1] - self.out_features))
        dn = dn.reshape(d.shape[0], self.n_col_blocks, self.sim.weight_cols).permute(1, 0, 2)
        return dn[None], a

    @torch.no_grad()
    def calibrate_adc_transposed(self, d: Tensor) -> None:
        """Set the ranges of the transposed MVM's (row) ADCs from output gradients ``d``
        (B, out)."""
        self.tile.calibrate_adc(d=self._grad_blocks(d)[0])

    @torch.no_grad()
    def effective_weight(self, t: float | None = None) -> Tensor:
        """The weights (out, in) the hardware realises on average (read means, IR drop,
        compensation), in the layer's units."""
        w = self._from_blocks(self.tile.weights(t)).t() * self.scale[:, None]  # type: ignore
        return w if self.alpha is None else w * self.alpha[:, None]

    @torch.no_grad()
    def weight_variance(self) -> Tensor:
        """Read-noise variance (out, in) of each effective weight at the current read time, in
        the layer's units squared (compensation included)."""
        v = self._from_blocks(self._programmed("weight_variance").weight_variance()).t()
        v = v * (self.scale * self.scale)[:, None]  # type: ignore[index]
        return v if self.alpha is None else v * (self.alpha * self.alpha)[:, None]

    def _programmed(self, op: str) -> Tile:
        if self.scale is None:
            raise ConfigError(f"TiledMatrix.{op}: not programmed; call program() first")
        return self.tile

    def _output_blocks(self, d: Tensor) -> Tensor:
        """(B, out) -> (1, n_cb, B, weight_cols), zero padded."""
        d = torch.nn.functional.pad(d, (0, self.padded[1] - self.out_features))
        return d.reshape(d.shape[0], self.n_col_blocks, self.sim.weight_cols).permute(
            1, 0, 2)[None]

    def _weight_units(self) -> Tensor:
        """(out,) layer-weight change per unit change of a normalised tile weight."""
        s = self.scale
        return s if self.alpha is None else s * self.alpha  # type: ignore[return-value]

    @torch.no_grad()
    def update(self, x: Tensor, d: Tensor, lr: float, *, generator: torch.Generator | None = None,
               mode: str = "stochastic", bl: int = 31) -> int:
        """SGD step ``W -= lr * d.T @ x`` of the layer's weights (out, in) as device pulses
        (:meth:`Tile.update`): layer inputs ``x`` (B, in) and output gradients ``d`` (B, out).
        Inputs are scaled as in the forward pass; ``d`` is rescaled so that the step is ``lr``
        times the gradient in the layer's weight units. Returns the pulses applied."""
        tile = self._programmed("update")
        if x.dim() != 2 or x.shape[1] != self.in_features or d.dim() != 2 or (
                d.shape != (x.shape[0], self.out_features)):
            raise ConfigError(f"TiledMatrix.update: x {tuple(x.shape)} and d {tuple(d.shape)}; "
                             f"expected (B, {self.in_features}) and (B, {self.out_features})")
        xn, a = self._scale_inputs(x)
        dn = d * a / self._weight_units()
        n = tile.update(self._input_blocks(xn), self._output_blocks(dn), lr,
                        generator=generator, mode=mode, bl=bl)  # type: ignore[arg-type]
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
        return int(tile.apply_pulses(self._to_blocks(n.t()), generator=generator).sum())

    # ----------------------------------------------------------------- bookkeeping
    def report(self) -> dict[str, float]:
        """Tiles, arrays and cells used by this matrix, and cell utilization."""
        hw = self.hardware
        tiles = self.n_row_blocks * self.n_col_blocks
        cells_total = tiles * hw.n_arrays * hw.rows * hw.cols
        cells_used = self.in_features * self.out_features * hw.cells_per_weight
        if hw.encoding == "offset":
            cells_used += self.in_features * self.n_col_blocks
        return dict(row_blocks=self.n_row_blocks, col_blocks=self.n_col_blocks, tiles=tiles,
                    arrays=tiles * hw.n_arrays, cells_used=cells_used, cells_total=cells_total,
                    utilization=cells_used / cells_total)

    def tensors(self) -> dict[str, Tensor]:
        """State for ``state_dict``: tile tensors, scales, compensation references."""
        out = {f"tile.{k}": v for k, v in self.tile.tensors().items()}
        out["scale"] = self.scale  # type: ignore[assignment]
        if self.ref is not None:
            out["ref"] = self.ref
        if self.alpha is not None:
            out["alpha"] = self.alpha
        if self.x_range is not None:
            out["x_range"] = torch.tensor(self.x_range, dtype=torch.float64)
        return out

    def load_tensors(self, tensors: dict[str, Tensor], *,
                     generator: torch.Generator | None = None) -> None:
        """Inverse of :meth:`tensors`."""
        self.tile.load_tensors({k[5:]: v for k, v in tensors.items() if k.startswith("tile.")},
                               generator=generator)
        self.scale = tensors["scale"]
        self.ref = tensors.get("ref")
        self.alpha = tensors.get("alpha")
        self.x_range = float(tensors["x_range"]) if "x_range" in tensors else None
