"""A weight matrix on a grid of crossbar tiles.

The matrix ``W`` (out, in) of a layer is stored transposed on the arrays: inputs drive rows,
outputs are read on columns. Inputs are split into row blocks of ``rows`` and outputs into column
blocks of ``weight_cols`` (the encoding's logical columns per tile: a 256 x 256 tile holds
256 x 128 weights with differential pairs on two columns, 256 x 256 with pairs on two arrays,
256 x 255 with an offset reference column; bit slices divide the columns by the slice count);
the blocks form one stacked :class:`~memxbar.crossbar.tile.Tile` of shape ``(n_row_blocks,
n_col_blocks)`` and run as one batched matmul. Each tile digitizes its own partial sums (its
ADCs), and the partial sums of the row blocks are added digitally, as on chip.

Grouped matrices (grouped and depthwise convolutions): ``groups = G`` independent matrices of
``(out / G, in)``, each on its own tiles, stacked as a leading tile dimension ``(G,
n_row_blocks, n_col_blocks)`` (still one batched matmul). Inputs are ``(B, G * in)``.

Scaling: weights are divided by a per-layer or per-output-column bound (clipped by the largest
magnitude, a percentile, or a fixed value) to the tile's normalised range [-1, 1]; inputs are
divided by their largest magnitude per input vector ("dynamic", a digital pre-scale as in
aihwkit's absolute-max noise management) or by a fixed full scale, so they fit the DAC range.
Outputs are multiplied back digitally.

The scales, calibrated input range and compensation state are buffers: ``.to()``,
``state_dict()`` and ``load_state_dict()`` carry them.
"""

from __future__ import annotations

import dataclasses
import math

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from memxbar.crossbar.tile import Tile, TileConfig
from memxbar.crossbar.tilestate import memory_limit
from memxbar.errors import ConfigError, plain_value
from memxbar.mapping.compensation import compensation_factors, reference_magnitudes
from memxbar.mapping.config import MappingConfig
from memxbar.mapping.insitu import InSituOps

BYTES_PER_CELL = 40  # conductance, latents, pulse count, read matrix and plans of one cell
_CONV = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}


def check_allocation(owner: str, what: str, nbytes: int) -> None:
    """Refuse an allocation of ``nbytes`` beyond what this process can allocate
    (:func:`memxbar.crossbar.tilestate.memory_limit`), before making it."""
    have = memory_limit()
    if nbytes > have:
        raise ConfigError(f"{owner}: {what} would need {nbytes / 2**30:.3g} GiB, more than "
                         f"the {have / 2**30:.3g} GiB this process can allocate; allowed: "
                         "smaller layers or tiles")


def percentile(x: Tensor, p: float) -> Tensor:
    """The ``p``-th percentile (0..100) of ``x`` along its last dimension, interpolated
    linearly as ``torch.quantile`` does, by sorting (``torch.quantile`` refuses inputs of more
    than 2^24 elements)."""
    v = x.sort(dim=-1).values
    pos = p / 100 * (v.shape[-1] - 1)
    lo = math.floor(pos)
    hi = min(lo + 1, v.shape[-1] - 1)
    return torch.lerp(v[..., lo], v[..., hi], pos - lo)


class TiledMatrix(InSituOps, nn.Module):
    """The weights of one layer, ``(out_features, in_features)`` (``in_features`` per group),
    on a stacked tile grid."""

    scale: Tensor | None  # (out,) weight bound per output column
    ref: Tensor | None  # (out,) reference-read magnitudes at t = 0
    alpha: Tensor | None  # (out,) drift-compensation factors
    x_range: Tensor | None  # () calibrated input range ("calibrated" scaling)

    def __init__(self, hardware: TileConfig, in_features: int, out_features: int,
                 mapping: MappingConfig | None = None, *, groups: int = 1) -> None:
        super().__init__()
        if not isinstance(hardware, TileConfig):
            raise ConfigError(f"TiledMatrix: hardware = {hardware!r} is not a TileConfig")
        if mapping is not None and not isinstance(mapping, MappingConfig):
            raise ConfigError(f"TiledMatrix: mapping = {mapping!r} is not a MappingConfig")
        in_features, out_features = plain_value(in_features), plain_value(out_features)
        groups = plain_value(groups)
        for name, v in (("in_features", in_features), ("out_features", out_features),
                        ("groups", groups)):
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ConfigError(f"TiledMatrix: {name} = {v!r} is not allowed; allowed: an "
                                 "integer >= 1")
        if out_features % groups:
            raise ConfigError(f"TiledMatrix: out_features = {out_features} is not a multiple of "
                             f"groups = {groups}")
        self.hardware = hardware
        self.mapping = mapping or MappingConfig()
        self.groups = groups
        self.in_features, self.out_features = in_features, out_features
        self.group_out = out_features // groups
        self.n_row_blocks = -(-in_features // hardware.rows)
        self.n_col_blocks = -(-self.group_out // hardware.weight_cols)
        self.stack = ((groups,) if groups > 1 else ()) + (self.n_row_blocks, self.n_col_blocks)
        self.sim = self._simulated(hardware)
        check_allocation("TiledMatrix", f"{math.prod(self.stack)} tiles of "
                         f"{hardware.rows}x{hardware.cols}",
                         math.prod(self.stack) * math.prod(self.sim.physical_shape)
                         * BYTES_PER_CELL)
        rows, wc = self.sim.rows, self.sim.weight_cols
        used_rows = torch.tensor([min(rows, in_features - b * rows)
                                  for b in range(self.n_row_blocks)])[:, None]
        used_cols = torch.tensor([min(wc, self.group_out - b * wc)
                                  for b in range(self.n_col_blocks)])
        # only the converters and rows that hold weights count in tile.adc_conversions
        self.tile = Tile(self.sim, self.stack, used_weight_cols=used_cols, used_rows=used_rows)
        for name in ("scale", "ref", "alpha", "x_range"):
            self.register_buffer(name, None)

    def _simulated(self, hw: TileConfig) -> TileConfig:
        """The arrays as simulated: a layer smaller than one tile is simulated on its used
        rows and columns only (unused cells are never driven or read, so with ideal wires the
        result is identical and the padding costs no flops). With wire resistance the whole
        array is kept, since the unused cells load the wires."""
        if hw.r_row > 0 or hw.r_col > 0:
            return hw
        rows = self.in_features if self.n_row_blocks == 1 else hw.rows
        cols = hw.used_cols_for(self.group_out) if self.n_col_blocks == 1 else hw.cols
        return dataclasses.replace(hw, rows=rows, cols=cols)

    # ----------------------------------------------------------------- layout
    @property
    def padded(self) -> tuple[int, int]:
        """(inputs, outputs) of one group after padding to whole tiles."""
        return (self.n_row_blocks * self.sim.rows, self.n_col_blocks * self.sim.weight_cols)

    @property
    def weights_per_tile(self) -> tuple[int, int]:
        """(inputs, outputs): the weights one physical tile holds with this encoding and
        layout (a 256 x 256 tile: 256 x 128 with differential pairs on two columns)."""
        hw = self.hardware
        return hw.scheme.weights_per_tile(hw.rows, hw.cols)

    def _lead(self, t: Tensor) -> Tensor:
        """Drop the group dimension of ``(G, ...)`` when there is one group."""
        return t if self.groups > 1 else t[0]

    def _to_blocks(self, wt: Tensor) -> Tensor:
        """(in, out) -> (*stack, rows, weight_cols), zero padded."""
        pin, pout = self.padded
        G, og = self.groups, self.group_out
        wt = wt.reshape(wt.shape[0], G, og).transpose(0, 1)
        wt = F.pad(wt, (0, pout - og, 0, pin - wt.shape[1]))
        rows, wc = self.sim.rows, self.sim.weight_cols
        return self._lead(wt.reshape(G, self.n_row_blocks, rows, self.n_col_blocks, wc)
                          .transpose(2, 3))

    def _from_blocks(self, blocks: Tensor) -> Tensor:
        """(*stack, rows, weight_cols) -> (in, out), padding removed."""
        pin, pout = self.padded
        b = blocks if self.groups > 1 else blocks[None]
        wt = b.transpose(2, 3).reshape(self.groups, pin, pout)
        wt = wt[:, : self.in_features, : self.group_out]
        return wt.transpose(0, 1).reshape(self.in_features, self.out_features)

    def weight_bounds(self, weight: Tensor) -> Tensor:
        """Per-output-column scaling bound (out,) by the mapping's scaling and clip rules."""
        m = self.mapping
        a = weight.detach().abs()
        if m.weight_clip == "fixed":
            bound = torch.full((weight.shape[0],), float(m.clip_value), dtype=weight.dtype)
        elif m.weight_scaling == "column":
            bound = (a.amax(dim=1) if m.weight_clip == "max"
                     else percentile(a.double(), m.clip_value).to(a.dtype))
        else:
            b = a.max() if m.weight_clip == "max" else percentile(a.double().flatten(),
                                                                  m.clip_value)
            bound = torch.full((weight.shape[0],), float(b), dtype=weight.dtype)
        tiny = torch.finfo(weight.dtype).tiny
        return torch.where(bound > tiny, bound, torch.ones_like(bound)).to(weight.device)

    # ----------------------------------------------------------------- hardware life cycle
    @property
    def programmed(self) -> bool:
        return self.scale is not None

    def _programmed(self, op: str) -> Tile:
        if self.scale is None:
            raise ConfigError(f"TiledMatrix.{op}: not programmed; call program() first")
        return self.tile

    @torch.no_grad()
    def program(self, weight: Tensor, *, generator: torch.Generator | None = None) -> None:
        """Program ``weight`` (out, in); resets read time, ADC calibration and the drift
        compensation (whose reference is read now, at t = 0)."""
        want = (self.out_features, self.in_features)
        if not isinstance(weight, Tensor) or tuple(weight.shape) != want:
            shape = tuple(weight.shape) if isinstance(weight, Tensor) else type(weight).__name__
            raise ConfigError(f"TiledMatrix.program: weight has shape {shape}; expected {want}")
        if not weight.is_floating_point() or not _all_finite(weight.detach()):
            raise ConfigError("TiledMatrix.program: weight must be finite floating-point values")
        self.scale = self.weight_bounds(weight)
        w = (weight.detach() / self.scale[:, None]).clamp(-1.0, 1.0)
        self.tile.program(self._to_blocks(w.t()), generator=generator)
        self.alpha = self.ref = self.x_range = None
        if self.mapping.compensation != "none":
            self.ref = self._reference_read(0.0)

    @torch.no_grad()
    def set_time(self, t: float, *, generator: torch.Generator | None = None) -> None:
        """Read the cells ``t`` s after programming; refresh drift compensation."""
        self._programmed("set_time").set_time(t, generator=generator)
        if self.mapping.compensation == "none":
            self.alpha = None
            return
        if self.ref is None:
            self.ref = self._reference_read(0.0)
        now = self._reference_read(self.tile.t)
        self.alpha = compensation_factors(self.ref, now, self.mapping.compensation)

    def _reference_read(self, t: float) -> Tensor:
        """Reference-read magnitudes (out,) at ``t`` s (see :mod:`.compensation`): the probe
        vectors against the normalised weights at ``t``, before the ADCs. At the tile's own
        read time the reference is a real read of that read period: it sees the installed read
        (with "physical" or "per_read" read noise, its frozen sample), and costs no second
        IR-drop solve; at another time, the expected weights."""
        now = t == self.tile.t
        w = self._from_blocks(self.tile.weights(None if now else t))  # (in, out)
        return reference_magnitudes(w.reshape(self.in_features, self.groups, self.group_out)
                                    .transpose(0, 1))

    @torch.no_grad()
    def calibrate_adc(self, x: Tensor, *, accumulate: bool = False,
                      input_range: bool = True) -> None:
        """Set ADC ranges (and, for "calibrated" input scaling with ``input_range``, the input
        range first) from example layer inputs ``x`` (N, groups * in); ``accumulate`` widens
        the ranges of an earlier call."""
        self._programmed("calibrate_adc")
        self._check_x(x, "calibrate_adc")
        if x.shape[0] == 0:
            raise ConfigError("TiledMatrix.calibrate_adc: x is an empty batch (0 rows); "
                             "allowed: >= 1 example input vectors")
        if self.mapping.input_scaling == "calibrated" and (input_range or self.x_range is None):
            r = float(x.abs().max()) if x.numel() else 0.0
            if not math.isfinite(r):
                raise ConfigError("TiledMatrix.calibrate_adc: x has non-finite values")
            if accumulate and self.x_range is not None:
                r = max(r, float(self.x_range))
            self.x_range = self._scale().new_tensor(r if r > 0 else 1.0)
        self.tile.calibrate_adc(self.tile_inputs(x)[0], accumulate=accumulate)

    # ----------------------------------------------------------------- MVMs
    def _check_x(self, x: Tensor, op: str) -> None:
        n = self.groups * self.in_features
        if not isinstance(x, Tensor) or x.dim() != 2 or x.shape[1] != n:
            shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
            raise ConfigError(f"TiledMatrix.{op}: input has shape {shape}; expected "
                             f"(batch, {n})")
        s = self.scale
        if s is not None and x.dtype != s.dtype:
            raise ConfigError(f"TiledMatrix.{op}: input dtype {x.dtype} differs from the "
                             f"matrix's {s.dtype}; inputs are not cast: convert the input "
                             f"(x.to({s.dtype})) or the matrix (.to(dtype))")

    def tile_inputs(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Layer inputs ``x`` (B, groups * in) -> what the tiles receive, as :meth:`forward`
        drives them: normalised, zero-padded row blocks (*stack[:-1], 1, B, rows), and the
        digital input scale (B, groups). They are in [-1, 1] but for an ideal DAC under
        fixed or calibrated scaling, which drives larger inputs unclipped (DAC doc); a
        quantizing DAC clips its codes itself."""
        xn, a = self._scale_inputs(x, clip=self._clips_inputs())
        return self._input_blocks(xn), a

    def _clips_inputs(self) -> bool:
        """Whether inputs are clipped to the input scale before the DAC: a fixed or
        calibrated range beyond which the DAC's own range (``input_range`` > 1) would reach."""
        return (self.mapping.input_scaling != "dynamic"
                and float(self.hardware.dac.input_range) > 1.0)

    def input_range(self, op: str = "forward") -> float:
        """The fixed input range (activation units) of "fixed" or "calibrated" scaling."""
        if self.mapping.input_scaling == "fixed":
            return float(self.mapping.input_range)
        if self.x_range is None:
            raise ConfigError(f"TiledMatrix.{op}: input_scaling='calibrated' needs a calibration;"
                             " run memxbar.mapping.calibrate(model, batches) (or program(..., "
                             "calibration=...)) first")
        return float(self.x_range)

    def _input_scale(self, x: Tensor, input_amax: Tensor | None = None) -> Tensor:
        """Digital input scale (B, groups) of layer inputs ``x`` (B, groups * in): the fixed
        or calibrated range, or each vector's largest ``|x|`` (``input_amax`` if given; 1 for
        zeros)."""
        if self.mapping.input_scaling != "dynamic":
            return torch.full((x.shape[0], self.groups), self.input_range(), dtype=x.dtype,
                              device=x.device)
        if input_amax is None:
            input_amax = x.reshape(x.shape[0], self.groups, -1).abs().amax(dim=2)
        return torch.where(input_amax > 0, input_amax, torch.ones_like(input_amax))

    def _scale_inputs(self, x: Tensor, clip: bool = True) -> tuple[Tensor, Tensor]:
        """``(x / scale, scale)``; ``clip``: the normalised inputs clipped to [-1, 1]."""
        a = self._input_scale(x)
        xn = x.reshape(x.shape[0], self.groups, -1) / a[..., None]
        return (xn.clamp(-1.0, 1.0) if clip else xn).reshape(x.shape), a

    def _input_blocks(self, xn: Tensor) -> Tensor:
        """(B, groups * in) -> (*stack[:-1], 1, B, rows), zero padded."""
        B = xn.shape[0]
        xg = F.pad(xn.reshape(B, self.groups, -1), (0, self.padded[0] - self.in_features))
        xg = xg.reshape(B, self.groups, self.n_row_blocks, self.sim.rows).permute(1, 2, 0, 3)
        return self._lead(xg[:, :, None])

    def _mvm(self, x: Tensor, generator: torch.Generator | None,
             input_amax: Tensor | None = None) -> Tensor:
        """Scaled, DAC-quantized row blocks through the tiles (input scaling fused with the
        DAC), partial sums of the row blocks added digitally, outputs rescaled."""
        B, G = x.shape[0], self.groups
        a = self._input_scale(x, input_amax)  # (B, G)
        xg = x.reshape(B, G, self.in_features)
        if self._clips_inputs():
            xg = torch.minimum(torch.maximum(xg, -a[..., None]), a[..., None])
        pin = self.padded[0]
        if pin != self.in_features:
            xg = F.pad(xg, (0, pin - self.in_features))
        blocks = xg.reshape(B, G, self.n_row_blocks, self.sim.rows).permute(1, 2, 0, 3)
        if G == 1:
            y = self.tile.mvm_rows(blocks[0], a, generator=generator)  # (n_rb, B, n_cb * wc)
            y = self._accumulate(y).mul_(a)
        else:
            y = self.tile.mvm_rows(blocks, a.t()[:, None, :, None], generator=generator)
            y = self._accumulate(y).mul_(a.t()[..., None])  # (G, B, out / G)
            y = y.transpose(0, 1).reshape(B, self.out_features)
        return y.mul_(self._scale())

    def _accumulate(self, y: Tensor) -> Tensor:
        """Row blocks' partial sums ``(*lead, n_rb, B, n_cb * wc)`` added digitally ->
        ``(*lead, B, out / groups)``."""
        acc = y.select(-3, 0)
        for k in range(1, self.n_row_blocks):
            acc.add_(y.select(-3, k))
        return acc if acc.shape[-1] == self.group_out else acc[..., : self.group_out]

    def _compensate(self, y: Tensor) -> Tensor:
        return y if self.alpha is None else y.mul_(self.alpha)

    @property
    def custom_ready(self) -> bool:
        """True when the tile's :meth:`~memxbar.crossbar.tile.Tile.mvm_custom` can run the
        matrix: a one-shot DAC and ohmic cells."""
        return self.hardware.dac.n_cycles == 1 and self.hardware.device.is_ohmic

    @property
    def conv_ready(self) -> bool:
        """True when :meth:`forward_conv` applies: :attr:`custom_ready` and a fixed or
        calibrated input range (the DAC codes are then per pixel, independent of the patch)."""
        return self.custom_ready and self.mapping.input_scaling != "dynamic"

    @torch.no_grad()
    def forward_conv(self, x: Tensor, kernel_size: tuple[int, ...], stride: tuple[int, ...],
                     padding: tuple[int, ...], dilation: tuple[int, ...], *,
                     generator: torch.Generator | None = None) -> Tensor:
        """A 1-, 2- or 3-D convolution through the hardware without unfolding the input:
        ``x`` (N, C, *spatial) -> (N, out, *out_spatial). The rows of row block b of group g
        hold that group's unfolded inputs ``[b R, (b+1) R)`` in (channel, kernel) order; each
        block's dot products are one (grouped) convolution of the DAC codes of its channels
        with its conductances, digitized by its own ADCs as in :meth:`forward`. Needs
        :attr:`conv_ready`."""
        self._programmed("forward_conv")
        if not self.conv_ready:
            raise ConfigError("TiledMatrix.forward_conv: needs input_scaling 'fixed' or "
                             "'calibrated' and a one-shot DAC; use forward() on unfolded inputs")
        nd, per_c = len(kernel_size), math.prod(kernel_size)
        G, R, nrb = self.groups, self.sim.rows, self.n_row_blocks
        cg = self.in_features // per_c
        if x.dim() != nd + 2 or x.shape[1] != G * cg or cg * per_c != self.in_features:
            raise ConfigError(f"TiledMatrix.forward_conv: input has shape {tuple(x.shape)}; "
                             f"expected (N, {G * cg}, *spatial) with {nd} spatial dims")
        fs = self.input_range("forward_conv")
        if self._clips_inputs():  # conv_ready: fixed or calibrated scaling
            x = x.clamp(-fs, fs)  # the tile's inputs are normalised to [-1, 1]
        out_shape: list[int] = []
        conv = _CONV[nd]

        def mac(codes: Tensor, A: Tensor) -> Tensor:
            A = A if G > 1 else A[None]  # (G, n_rb, rows, cols)
            cols, outs = A.shape[-1], []
            for b in range(nrb):
                lo, hi = b * R, min((b + 1) * R, self.in_features)
                c0, c1 = lo // per_c, -(-hi // per_c)
                k = A.new_zeros((G, (c1 - c0) * per_c, cols))
                k[:, lo - c0 * per_c: hi - c0 * per_c] = A[:, b, : hi - lo]
                k = k.transpose(1, 2).reshape(G * cols, c1 - c0, *kernel_size)
                xin = (codes.unflatten(1, (G, cg))[:, :, c0:c1].flatten(1, 2) if G > 1
                       else codes[:, c0:c1])
                outs.append(conv(xin, k, None, stride, padding, dilation, G))
            y = torch.stack(outs)  # (n_rb, N, G * cols, *out_spatial)
            out_shape[:] = [y.shape[1], *y.shape[3:]]
            y = y.unflatten(2, (G, cols)).movedim(3, -1).movedim(2, 0)
            return self._lead(y.reshape(G, nrb, -1, cols))

        y = self._accumulate(self.tile.mvm_custom(x, mac, fs,
                                                  generator=generator))
        if G > 1:
            y = y.transpose(0, 1).reshape(-1, self.out_features)
        s = self._scale() * fs if self.alpha is None else self._scale() * self.alpha * fs
        n, *osp = out_shape
        return y.mul_(s).reshape(n, *osp, self.out_features).movedim(-1, 1)

    @torch.no_grad()
    def forward(self, x: Tensor, *, generator: torch.Generator | None = None,
                input_amax: Tensor | None = None) -> Tensor:
        """``x`` (B, groups * in) -> ``y`` (B, out) ≈ ``x @ W.T`` (per group) through the
        hardware. ``input_amax`` (B, groups): the largest ``|x|`` of each row and group when
        the caller has it cheaper (a convolution's patches: max pooling of the image);
        "dynamic" input scaling."""
        self._programmed("forward")
        self._check_x(x, "forward")
        if x.shape[0] == 0:  # an empty batch: an empty output, as nn.Linear gives
            return x.new_zeros(0, self.out_features)
        return self._compensate(self._mvm(x, generator, input_amax=input_amax))

    @torch.no_grad()
    def effective_weight(self, t: float | None = None) -> Tensor:
        """The weights (out, in) the hardware realises on average (read means, IR drop,
        compensation), in the layer's units."""
        tile = self._programmed("effective_weight")
        w = self._from_blocks(tile.weights(t)).t() * self._scale()[:, None]
        return w if self.alpha is None else w * self.alpha[:, None]

    @torch.no_grad()
    def weight_variance(self) -> Tensor:
        """Read-noise variance (out, in) of each effective weight at the current read time, in
        the layer's units squared (compensation included)."""
        v = self._from_blocks(self._programmed("weight_variance").weight_variance()).t()
        s = self._scale()
        v = v * (s * s)[:, None]
        return v if self.alpha is None else v * (self.alpha * self.alpha)[:, None]

    # ----------------------------------------------------------------- bookkeeping
    def report(self) -> dict[str, float | int | str]:
        """Tiles, arrays and cells used by this matrix, the weights one tile holds, cell
        utilization, and ``ir_error``: the achieved relative error of the tile's last IR-drop
        solve (NaN without wire resistance or before the first read)."""
        hw = self.hardware
        tiles = math.prod(self.stack)
        cells_total = tiles * hw.n_arrays * hw.rows * hw.cols
        cells_used = self.in_features * self.out_features * hw.cells_per_weight
        cells_used += (self.in_features * self.n_col_blocks * self.groups
                       * hw.scheme.reference_cols)
        rows, wc = self.weights_per_tile
        return dict(groups=self.groups, row_blocks=self.n_row_blocks,
                    col_blocks=self.n_col_blocks, tiles=tiles, arrays=tiles * hw.n_arrays,
                    weights_per_tile=f"{rows}x{wc}", weight_rows_per_tile=rows,
                    weight_cols_per_tile=wc, cells_used=cells_used, cells_total=cells_total,
                    utilization=cells_used / cells_total,
                    ir_error=math.nan if self.tile.ir_error is None else self.tile.ir_error)

    def extra_repr(self) -> str:
        groups = f", groups={self.groups}" if self.groups > 1 else ""
        return (f"out={self.out_features}, in={self.in_features}{groups}, tiles "
                f"{tuple(self.stack)}, {'programmed' if self.programmed else 'not programmed'}")

    # ----------------------------------------------------------------- state_dict
    def _load_from_state_dict(self, state_dict: dict, prefix: str, local_metadata: dict,
                              strict: bool, missing_keys: list, unexpected_keys: list,
                              error_msgs: list) -> None:
        """Materialise the buffers that are None before programming from the saved ones,
        checked: ``scale`` must be there (with any other key), shapes and values must fit."""
        mine = {k[len(prefix):]: v for k, v in state_dict.items() if k.startswith(prefix)}
        if mine and "scale" not in mine:
            raise ConfigError(f"load_state_dict: {prefix}scale is missing (a programmed analog "
                             "layer needs its weight scales)")
        out = (self.out_features,)
        for name, shape, lo in (("scale", out, "> 0"), ("ref", out, ">= 0"),
                                ("alpha", out, "> 0"), ("x_range", (), "> 0")):
            if name not in mine:
                continue
            v = mine[name]
            ok = isinstance(v, Tensor) and v.is_floating_point() and tuple(v.shape) == shape
            ok = ok and bool(torch.isfinite(v).all()) and bool(
                (v > 0).all() if lo == "> 0" else (v >= 0).all())
            if not ok:
                got = (f"{v.dtype} of shape {tuple(v.shape)}" if isinstance(v, Tensor)
                       else type(v).__name__)
                raise ConfigError(f"load_state_dict: {prefix}{name} is {got}; expected finite "
                                 f"floating-point values {lo} of shape {shape}")
            dtype = self.scale.dtype if self.scale is not None else v.dtype
            self._buffers[name] = v.detach().clone().to(dtype)
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys,
                                      unexpected_keys, error_msgs)


def _all_finite(x: Tensor) -> bool:
    """Whether every element of ``x`` is finite: one sum (NaN and inf make it non-finite),
    and the element-wise check only when the sum overflowed."""
    return bool(torch.isfinite(x.sum())) or bool(torch.isfinite(x).all())
