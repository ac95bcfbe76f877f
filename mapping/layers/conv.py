"""``AnalogConv1d``, ``AnalogConv2d``, ``AnalogConv3d``: convolutions on crossbar arrays.

A convolution is the MVM of its weight matrix ``(out, in_channels / groups * prod(kernel))``
with every patch of its input. Grouped and depthwise convolutions (``groups = G``) hold G
independent matrices, one per group of channels, stacked as a leading tile dimension (one
batched matmul per layer; each group's tiles see only its own channels). Every padding of
``torch.nn.ConvNd`` is supported: integer, per-dimension, ``"same"``/``"valid"`` and the
padding modes "zeros", "reflect", "replicate", "circular" (asymmetric or non-zero padding is
applied to the input digitally first, as a chip's input buffer would).

Inference with a one-shot DAC on ohmic cells:

- a fixed or calibrated input range runs without unfolding (a convolution of the DAC codes
  with the conductances, :meth:`TiledMatrix.forward_conv`);
- "dynamic" (per-patch) input scaling writes the DAC codes of the patches once, while
  gathering them channel-major (each kernel tap's output positions contiguous, as
  ``F.unfold`` lays them out), scaled by each patch's largest ``|x|`` (separable max pooling
  of the image), and multiplies each row block's codes by its conductances in batched
  matmuls, a few images at a time while their codes are in the cache
  (:meth:`Tile.mvm_custom`). Same codes and conductances as the unfolded MVM, sums in another
  order.

Training, calibration, bit-serial DACs and non-ohmic cells unfold the patches row-major and
run :meth:`TiledMatrix.forward`.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from memxbar.crossbar.tile import TileConfig
from memxbar.devices.base import in_parallel_single_threaded
from memxbar.errors import ConfigError, plain_value
from memxbar.mapping.config import MappingConfig
from memxbar.mapping.layers.base import AnalogLayer
from memxbar.mapping.tiler import TiledMatrix

PADDING_MODES = ("zeros", "reflect", "replicate", "circular")
# patch codes per chunk of images in the per-patch path (2 MiB of float32: written and
# multiplied while in the cache; 2^18-2^20 measured within 10 % of each other)
CHUNK_ELEMENTS = 1 << 19
# the same on an accelerator, which has no such cache to fit and launches each chunk's ~10
# kernels separately: 512 MiB of float32 codes, the whole batch in one chunk as a rule
CHUNK_ELEMENTS_ACCELERATOR = 1 << 27


def _tuple(owner: str, name: str, v: int | tuple[int, ...], nd: int, lo: int) -> tuple[int, ...]:
    v = plain_value(v)
    t = (v,) * nd if isinstance(v, int) else (  # a bool is refused below
        tuple(plain_value(i) for i in v) if isinstance(v, (tuple, list)) else ())
    if len(t) != nd or not all(isinstance(i, int) and not isinstance(i, bool) and i >= lo
                               for i in t):
        raise ConfigError(f"{owner}: {name} = {v!r} is not allowed; allowed: an integer >= "
                         f"{lo} or a tuple of {nd}")
    return t


class AnalogConv(AnalogLayer):
    """An N-dimensional convolution on crossbar arrays (``nd`` set by the subclasses)."""

    nd = 0

    def __init__(self, in_channels: int, out_channels: int,
                 kernel_size: int | tuple[int, ...], stride: int | tuple[int, ...] = 1,
                 padding: str | int | tuple[int, ...] = 0, dilation: int | tuple[int, ...] = 1,
                 groups: int = 1, bias: bool = True, padding_mode: str = "zeros", *,
                 hardware: TileConfig, mapping: MappingConfig | None = None) -> None:
        super().__init__()
        o, nd = type(self).__name__, self.nd
        in_channels, out_channels = plain_value(in_channels), plain_value(out_channels)
        groups, padding = plain_value(groups), plain_value(padding)
        for name, v in (("in_channels", in_channels), ("out_channels", out_channels),
                        ("groups", groups)):
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ConfigError(f"{o}: {name} = {v!r} is not allowed; allowed: an integer >= 1")
        if in_channels % groups or out_channels % groups:
            raise ConfigError(f"{o}: groups = {groups} must divide in_channels = {in_channels} "
                             f"and out_channels = {out_channels}")
        if padding_mode not in PADDING_MODES:
            raise ConfigError(f"{o}: padding_mode = {padding_mode!r} is not allowed; allowed: "
                             f"{', '.join(PADDING_MODES)}")
        self.in_channels, self.out_channels, self.groups = in_channels, out_channels, groups
        self.kernel_size = _tuple(o, "kernel_size", kernel_size, nd, 1)
        self.stride = _tuple(o, "stride", stride, nd, 1)
        self.dilation = _tuple(o, "dilation", dilation, nd, 1)
        self.padding_mode = padding_mode
        self.padding: str | tuple[int, ...]
        if isinstance(padding, str):
            if padding not in ("same", "valid"):
                raise ConfigError(f"{o}: padding = {padding!r} is not allowed; allowed: "
                                 "'same', 'valid', an integer or a tuple")
            if padding == "same" and any(s != 1 for s in self.stride):
                raise ConfigError(f"{o}: padding = 'same' needs stride 1, got {self.stride}")
            self.padding = padding
            total = [0 if padding == "valid" else d * (k - 1)
                     for d, k in zip(self.dilation, self.kernel_size, strict=True)]
            sides = [(t // 2, t - t // 2) for t in total]
        else:
            self.padding = _tuple(o, "padding", padding, nd, 0)
            sides = [(p, p) for p in self.padding]
        # F.pad order: last dimension first
        self._pads = tuple(p for lr in reversed(sides) for p in lr)
        symmetric = all(a == b for a, b in sides)
        self._prepad = padding_mode != "zeros" or not symmetric
        self._conv_padding = (0,) * nd if self._prepad else tuple(a for a, _ in sides)
        per_group = in_channels // groups * math.prod(self.kernel_size)
        self.weight = nn.Parameter(self._allocate(o, out_channels, in_channels // groups,
                                                  *self.kernel_size))
        self.bias = nn.Parameter(self.weight.new_zeros(out_channels)) if bias else None
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        self._init_hardware(hardware, mapping, per_group, out_channels, groups)

    @classmethod
    def from_digital(cls, layer: nn.Conv1d | nn.Conv2d | nn.Conv3d, hardware: TileConfig,
                     mapping: MappingConfig | None = None) -> AnalogConv:
        """An analog copy of ``layer`` (an ``nn.ConvNd`` of the same dimension) with the same
        weights (not yet programmed)."""
        new = cls(layer.in_channels, layer.out_channels, layer.kernel_size, layer.stride,
                  layer.padding, layer.dilation, layer.groups, layer.bias is not None,
                  layer.padding_mode, hardware=hardware, mapping=mapping)
        new._copy_from(layer)
        return new

    def _pad(self, x: Tensor) -> Tensor:
        if not self._prepad:
            return x
        mode = "constant" if self.padding_mode == "zeros" else self.padding_mode
        return F.pad(x, self._pads, mode=mode)

    def _out_spatial(self, x: Tensor) -> list[int]:
        p = self._conv_padding
        return [(n + 2 * p[i] - self.dilation[i] * (self.kernel_size[i] - 1) - 1)
                // self.stride[i] + 1 for i, n in enumerate(x.shape[2:])]

    def forward(self, x: Tensor) -> Tensor:
        self._check_input(x)
        nd, o = self.nd, type(self).__name__
        unbatched = x.dim() == nd + 1
        if unbatched:
            x = x.unsqueeze(0)
        if x.dim() != nd + 2 or x.shape[1] != self.in_channels:
            raise ConfigError(f"{o}: input has shape {tuple(x.shape)}; expected (batch, "
                             f"{self.in_channels}, {nd} spatial dims)")
        tiled = self._require("forward")
        x = self._pad(x)
        if min(self._out_spatial(x)) < 1:
            raise ConfigError(f"{o}: input of shape {tuple(x.shape)} (padded) is smaller than "
                             f"the kernel {self.kernel_size} (dilation {self.dilation})")
        needs_grad = torch.is_grad_enabled() and (x.requires_grad or self.weight.requires_grad)
        # inference that Tile.mvm_custom can run
        one_shot = (not needs_grad and self.calibrating is None and tiled.custom_ready
                    and x.shape[0] > 0)  # an empty batch: the unfolded path's empty output
        if one_shot and tiled.conv_ready:
            y = tiled.forward_conv(x, self.kernel_size, self.stride, self._conv_padding,
                                   self.dilation, generator=self.device_generator(x))
        elif one_shot and self.mapping.input_scaling == "dynamic":
            y = self._forward_patches(x, tiled)
        else:
            cols, osp = self._unfold(x)
            amax = None
            if self.mapping.input_scaling == "dynamic":  # largest |x| of each patch, pooled
                a = self._patch_amax(self._conv_pad(x))
                amax = a.movedim(1, -1).reshape(-1, self.groups)
            y = self._hardware_mvm(cols, amax)
            y = y.reshape(x.shape[0], *osp, self.out_channels).movedim(-1, 1)
        if self.bias is not None:
            y = y + self.bias.reshape(-1, *([1] * nd))
        return y[0] if unbatched else y

    def patches(self, x: Tensor) -> tuple[Tensor, list[int]]:
        """The matrix the arrays see for input ``x`` (N, C, *spatial): unfolded patches
        (N * prod(out_spatial), C * prod(kernel)) in (channel, kernel) order — the channels of
        group g are the g-th slice — and the output spatial sizes."""
        return self._unfold(self._pad(x))

    def _conv_pad(self, x: Tensor) -> Tensor:
        """``x`` (already padded by :meth:`_pad`) with the convolution's zero padding."""
        pads = tuple(p for p in reversed(self._conv_padding) for _ in (0, 1))
        return F.pad(x, pads) if any(pads) else x

    def _window(self, t: Tensor, dim: int, i: int) -> Tensor:
        """``t``'s dimension ``dim`` as the output positions of kernel dimension ``i`` (its
        stride and dilation), the window appended last (a strided view)."""
        d, k = self.dilation[i], self.kernel_size[i]
        t = t.unfold(dim, d * (k - 1) + 1, self.stride[i])
        return t[..., ::d] if d > 1 else t

    def _windows(self, t: Tensor, first: int) -> Tensor:
        """The sliding windows of ``t`` over its ``nd`` dimensions from ``first`` on: a strided
        view, those dimensions become the output positions and the window (kernel) dimensions
        are appended last."""
        for i in range(self.nd):
            t = self._window(t, first + i, i)
        return t

    def _shifted_windows(self, xp: Tensor) -> Tensor:
        """The view of :meth:`_windows` ``(N, C, *out_spatial, *kernel)`` of a zero-padded
        input ``xp``, backed by one copy of ``xp`` per tap of the last kernel dimension (its
        stride and dilation applied), so that the last output dimension has stride 1 and,
        with stride 1 along the one before, the two are one contiguous run: gathering the
        patches then streams whole output planes (1.4x faster for LeNet's conv1 than windows
        of ``xp`` itself, whose runs are one output row long)."""
        nd = self.nd
        t = self._window(xp, -1, nd - 1)  # (N, C, *sp[:-1], OW, K_w)
        t = t.movedim(-1, 2).contiguous()  # (N, C, K_w, *sp[:-1], OW)
        for i in range(nd - 1):  # windows over the other dimensions, appended last
            t = self._window(t, 3 + i, i)
        # (N, C, K_w, *out_spatial, K_0 .. K_{nd-2}) -> (N, C, *out_spatial, *kernel)
        return t.permute(0, 1, *range(3, 3 + nd), *range(3 + nd, 2 + 2 * nd), 2)

    def _patch_amax(self, xp: Tensor) -> Tensor:
        """Largest ``|x|`` of each patch and group, ``(N, groups, *out_spatial)``, of a
        zero-padded input ``xp``: the maximum over the group's channels, then over the window
        one dimension at a time (max pooling is separable; exact)."""
        a = xp.detach().abs().unflatten(1, (self.groups, -1)).amax(2)
        for i in range(self.nd):
            a = self._window(a, 2 + i, i).amax(-1)
        return a

    def _unfold(self, x: Tensor) -> tuple[Tensor, list[int]]:
        """Row-major patches (N * prod(out_spatial), C * prod(kernel)) of an input already
        padded by :meth:`_pad` (a strided view gathered once)."""
        n, osp = x.shape[0], self._out_spatial(x)
        xp = self._windows(self._conv_pad(x).movedim(1, -1), 1)  # (N, *osp, C, *kernel)
        return xp.reshape(n * math.prod(osp), self.in_channels * math.prod(self.kernel_size)), osp

    def _forward_patches(self, x: Tensor, tiled: TiledMatrix) -> Tensor:
        """Inference with per-patch ("dynamic") input scaling, ``x`` padded by :meth:`_pad`
        -> (N, out, *out_spatial).

        The DAC codes of the patches are written once, while gathering them (:meth:`DAC.codes`
        with each patch's largest ``|x|``, :meth:`_patch_amax`: the scale and arithmetic of
        :meth:`TiledMatrix.forward`, so the same codes), a few images at a time
        (:data:`CHUNK_ELEMENTS`; :data:`CHUNK_ELEMENTS_ACCELERATOR` on a GPU), into a buffer
        of one chunk in which each input row's output positions are contiguous: ``(m, in, L)``
        (L output positions) for one group on one row block, else ``(groups, row blocks *
        rows, m * L)`` (a partial last block zero padded).
        Each chunk is multiplied by each row block's conductances (a batched matmul; its
        squares by the variances for the read noise) while it is in the cache
        (:meth:`Tile.mvm_custom` with ``fused=True``), the chunks split between memxbar's
        helper threads (one torch thread each: the same bits for any thread count); the
        tiles' outputs are converted and added as in
        :meth:`TiledMatrix.forward`, then rescaled by the patch scale, the weight scale and the
        drift compensation."""
        nd, G, n = self.nd, self.groups, x.shape[0]
        R, nrb, fin = tiled.sim.rows, tiled.n_row_blocks, tiled.in_features
        dac = tiled.hardware.dac
        xp = self._conv_pad(x)
        osp = self._out_spatial(x)
        L = math.prod(osp)
        amax = self._patch_amax(xp).reshape(n, G, L)
        if not bool(torch.isfinite(amax).all()):  # every input a patch reads is in its amax
            raise ConfigError(f"{type(self).__name__}: input has non-finite values; inputs "
                              "must be finite")
        amax = torch.where(amax > 0, amax, torch.ones_like(amax))  # an all-zero patch: 1
        win = self._shifted_windows(xp)  # (N, C, *osp, *kernel)
        order = (*range(2 + nd, 2 + 2 * nd), *range(2, 2 + nd))  # kernel, then positions
        ones = (1,) * nd
        saturate = float(dac.input_range) < 1.0  # else |codes| <= n already: |x| <= amax
        single = G == 1 and nrb == 1
        P = fin if nrb == 1 else nrb * R  # rows of the row blocks (a partial last one padded)
        if single:  # codes (m, in, L) per chunk of m images; images along dimension 0
            src, scale, axis = win.permute(0, 1, *order), amax.view(n, 1, *ones, *osp), 0
        else:  # codes (G, P, m * L) per chunk; images along dimension 2 + nd
            src = win.permute(1, *order[:nd], 0, *order[nd:]).unflatten(0, (G, -1))
            scale, axis = amax.permute(1, 0, 2).reshape(G, 1, *ones, n, *osp), 2 + nd
        # images per chunk: each chunk's codes are written into a buffer of that size and
        # multiplied while in the cache (writing the whole batch's codes first ran 1.6-3x slower
        # for LeNet's conv1: the 20 MB of codes went through memory twice)
        budget = CHUNK_ELEMENTS if x.device.type == "cpu" else CHUNK_ELEMENTS_ACCELERATOR
        step = max(1, budget // max(1, fin * L))

        def mac(_: Tensor, A: Tensor, V: Tensor | None) -> tuple[Tensor, Tensor | None]:
            """Matrices ``A`` (and ``V``, the read-noise variances) (*lead, R, M) -> the dot
            products of every patch's codes with them, (*lead, N * L, M) each."""
            M, rows = A.shape[-1], min(R, P // nrb)
            if single:  # A (1, R, M): (M, in) @ (m, in, L) -> (m, M, L)
                mats = [a[0, :fin].t() for a in (A, V) if a is not None]
                outs = [A.new_empty(n, M, L) for _ in mats]
            else:  # A (G, nrb, R, M) (or (nrb, R, M) for one group)
                mats = [(a if G > 1 else a[None])[..., :rows, :].transpose(-1, -2)
                        for a in (A, V) if a is not None]
                outs = [A.new_empty(G, nrb, M, n * L) for _ in mats]

            def chunks(run: range) -> None:
                codes = A.new_empty((step, fin, L) if single else (G, P, step * L))
                if not single and P > fin:
                    codes[:, fin:].zero_()
                for c in run:
                    i, m = c * step, min(step, n - c * step)
                    if single:
                        k = codes[:m]
                        dst, cv, part = k.view(m, -1, *self.kernel_size, *osp), k, slice(i, i + m)
                    else:
                        k = codes[..., :m * L]
                        dst = k[:, :fin].view(G, -1, *self.kernel_size, m, *osp)
                        cv, part = k.view(G, nrb, rows, m * L), slice(i * L, (i + m) * L)
                    dac.codes(src.narrow(axis, i, m), scale.narrow(axis, i, m), out=dst,
                              saturate=saturate)
                    for w, (mat, out) in enumerate(zip(mats, outs, strict=True)):
                        if w:  # the variances multiply the squared codes
                            cv = cv.square_()
                        torch.matmul(mat, cv, out=out[part] if single else out[..., part])
            in_parallel_single_threaded(chunks, -(-n // step))
            ys = [o.transpose(1, 2).reshape(1, n * L, M) if single else
                  (o.transpose(-1, -2) if G > 1 else o[0].transpose(-1, -2)) for o in outs]
            return ys[0], ys[1] if len(ys) > 1 else None

        y = tiled.tile.mvm_custom(xp, mac, generator=self.device_generator(x), fused=True)
        y = y.select(-3, 0) if nrb == 1 else y.sum(-3)  # row blocks added digitally
        y = y[..., : tiled.group_out]
        if G > 1:  # (G, N * L, out / G)
            y = y.mul_(amax.permute(1, 0, 2).reshape(G, n * L, 1))
            y = y.transpose(0, 1).reshape(n * L, self.out_channels)
        else:
            y = y.mul_(amax.reshape(n * L, 1))
        assert tiled.scale is not None  # programmed (checked by the caller)
        s = tiled.scale if tiled.alpha is None else tiled.scale * tiled.alpha
        return y.mul_(s).reshape(n, *osp, self.out_channels).movedim(-1, 1)

    def extra_repr(self) -> str:
        text = (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}, padding={self.padding}")
        if self.groups > 1:
            text += f", groups={self.groups}"
        return text + ", " + super().extra_repr()


class AnalogConv1d(AnalogConv):
    """``nn.Conv1d`` on crossbar arrays."""

    nd = 1


class AnalogConv2d(AnalogConv):
    """``nn.Conv2d`` on crossbar arrays (including grouped and depthwise)."""

    nd = 2


class AnalogConv3d(AnalogConv):
    """``nn.Conv3d`` on crossbar arrays."""

    nd = 3
