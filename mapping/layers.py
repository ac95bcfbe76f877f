"""Drop-in analog layers: ``AnalogLinear`` and ``AnalogConv2d``.

Each layer keeps a digital master copy of its weights (``weight``, ``bias`` parameters, used for
training and for reprogramming) and, once programmed, a :class:`TiledMatrix` holding the device
states of its arrays. The forward pass runs through the simulated hardware; biases are added
digitally. Gradients (for chip-in-the-loop training) flow as for ``y = x @ W_eff.T``: the input
gradient uses the transposed MVM through the same arrays when ``backward_analog`` is set,
otherwise the effective weights, and the weight gradient is ``grad_y.T @ x``.

The device states are saved by ``state_dict()`` and restored by ``load_state_dict()``.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from ..crossbar.tile import TileConfig
from ..errors import ConfigError
from .tiler import MappingConfig, TiledMatrix

_PREFIX = "analog."


class _HardwareMatmul(torch.autograd.Function):
    """``y = hardware(x)`` with the gradients of ``x @ W_eff.T``."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, weight: Tensor, layer: _AnalogBase,
                input_amax: Tensor | None = None) -> Tensor:
        ctx.layer = layer
        ctx.save_for_backward(x)
        return layer.tiled.forward(x, generator=layer.generator, input_amax=input_amax)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, Tensor | None, None, None]:
        (x,) = ctx.saved_tensors
        layer = ctx.layer
        gx = gw = None
        if ctx.needs_input_grad[0]:
            if layer.backward_analog:
                gx = layer.tiled.backward(grad, generator=layer.generator)
            else:
                gx = grad @ layer.tiled.effective_weight().to(grad.dtype)
        if ctx.needs_input_grad[1]:
            gw = grad.t() @ x
        return gx, gw, None, None


class _AnalogBase(nn.Module):
    """Shared life cycle of analog layers: program, drift, calibrate, state_dict."""

    weight: nn.Parameter
    bias: nn.Parameter | None

    def _init_hardware(self, hardware: TileConfig, mapping: MappingConfig | None,
                       in_features: int, out_features: int) -> None:
        if not isinstance(hardware, TileConfig):
            raise ConfigError(f"{type(self).__name__}: hardware = {hardware!r} is not a "
                             "TileConfig")
        self.hardware = hardware
        self.mapping = mapping or MappingConfig()
        self.matrix_shape = (out_features, in_features)
        self.tiled: TiledMatrix | None = None
        self.generator: torch.Generator | None = None
        self.backward_analog = False
        self._calibrating: str | None = None  # calibration pass: "inputs" or "adc"
        self._calibrated_batches = 0  # batches seen in the current pass

    @torch.no_grad()
    def _copy_from(self, layer: nn.Linear | nn.Conv2d) -> None:
        """Take ``layer``'s weight and bias, and its device and dtype."""
        self.weight.copy_(layer.weight)
        if layer.bias is not None:
            self.bias.copy_(layer.bias)  # type: ignore[union-attr]
        self.to(layer.weight.device, layer.weight.dtype)

    def _matrix(self) -> Tensor:
        """The weight as the (out, in) matrix the arrays hold."""
        return self.weight.reshape(self.matrix_shape)

    @property
    def programmed(self) -> bool:
        return self.tiled is not None

    @torch.no_grad()
    def program(self, *, generator: torch.Generator | None = None) -> None:
        """Write the current ``weight`` onto the arrays (t = 0). ``generator`` is kept for the
        noise of later reads and MVMs."""
        out_f, in_f = self.matrix_shape
        self.tiled = TiledMatrix(self.hardware, in_f, out_f, self.mapping)
        self.tiled.program(self._matrix().detach(), generator=generator)
        self.generator = generator

    @torch.no_grad()
    def drift(self, t: float, *, generator: torch.Generator | None = None) -> None:
        """Read the arrays ``t`` seconds after programming (drift, read noise, compensation)."""
        self._require("drift").set_time(t, generator=generator or self.generator)

    def _require(self, op: str) -> TiledMatrix:
        if self.tiled is None:
            raise ConfigError(f"{type(self).__name__}.{op}: the layer is not programmed; call "
                             "memxbar.mapping.program(model, generator=...) first")
        return self.tiled

    def _hardware_mvm(self, x: Tensor, input_amax: Tensor | None = None) -> Tensor:
        tiled = self._require("forward")
        if self._calibrating:
            with torch.no_grad():
                tiled.calibrate_adc(x.detach(), accumulate=self._calibrated_batches > 0,
                                    input_range=self._calibrating == "inputs")
            self._calibrated_batches += 1
        if not torch.is_grad_enabled():  # inference: no autograd node to record
            return tiled.forward(x, generator=self.generator, input_amax=input_amax)
        return _HardwareMatmul.apply(x, self._matrix(), self, input_amax)

    # ----------------------------------------------------------------- state_dict
    def _save_to_state_dict(self, destination: dict, prefix: str, keep_vars: bool) -> None:
        super()._save_to_state_dict(destination, prefix, keep_vars)
        if self.tiled is not None:
            for k, v in self.tiled.tensors().items():
                destination[prefix + _PREFIX + k] = v

    def _load_from_state_dict(self, state_dict: dict, prefix: str, local_metadata: dict,
                              strict: bool, missing_keys: list, unexpected_keys: list,
                              error_msgs: list) -> None:
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys,
                                      unexpected_keys, error_msgs)
        mine = {k[len(prefix + _PREFIX):]: v for k, v in state_dict.items()
                if k.startswith(prefix + _PREFIX)}
        unexpected_keys[:] = [k for k in unexpected_keys if not k.startswith(prefix + _PREFIX)]
        if mine:
            out_f, in_f = self.matrix_shape
            self.tiled = TiledMatrix(self.hardware, in_f, out_f, self.mapping)
            self.tiled.load_tensors({k: v.clone() for k, v in mine.items()},
                                    generator=self.generator)

    def extra_repr(self) -> str:
        hw = self.hardware
        dev = type(hw.device).__name__
        state = "programmed" if self.programmed else "not programmed"
        return (f"{super().extra_repr()}, tiles {hw.rows}x{hw.cols}, {dev}, "
                f"{hw.encoding}, {state}")


class AnalogLinear(_AnalogBase):
    """``nn.Linear`` on crossbar arrays: ``y = hardware(x) + bias``."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True, *,
                 hardware: TileConfig, mapping: MappingConfig | None = None) -> None:
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.weight = nn.Parameter(torch.empty(out_features, in_features))
        self.bias = nn.Parameter(torch.zeros(out_features)) if bias else None
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        self._init_hardware(hardware, mapping, in_features, out_features)

    @classmethod
    def from_digital(cls, layer: nn.Linear, hardware: TileConfig,
                     mapping: MappingConfig | None = None) -> AnalogLinear:
        """An analog copy of ``layer`` with the same weights (not yet programmed)."""
        new = cls(layer.in_features, layer.out_features, layer.bias is not None,
                  hardware=hardware, mapping=mapping)
        new._copy_from(layer)
        return new

    def forward(self, x: Tensor) -> Tensor:
        lead = x.shape[:-1]
        y = self._hardware_mvm(x.reshape(-1, self.in_features))
        y = y.reshape(*lead, self.out_features)
        if self.bias is None:
            return y
        return y + self.bias if torch.is_grad_enabled() else y.add_(self.bias)

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None}, " + super().extra_repr())


class AnalogConv2d(_AnalogBase):
    """``nn.Conv2d`` (groups = 1) on crossbar arrays: unfold, tiled MVM, fold back."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int | tuple[int, int],
                 stride: int | tuple[int, int] = 1, padding: int | tuple[int, int] = 0,
                 dilation: int | tuple[int, int] = 1, bias: bool = True, *,
                 hardware: TileConfig, mapping: MappingConfig | None = None) -> None:
        super().__init__()
        pair = nn.modules.utils._pair
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size, self.stride = pair(kernel_size), pair(stride)
        self.padding, self.dilation = pair(padding), pair(dilation)
        if isinstance(padding, str):
            raise ConfigError("AnalogConv2d: padding must be integers, not "
                             f"{padding!r}; allowed: int or (int, int)")
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels, *self.kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        k = in_channels * self.kernel_size[0] * self.kernel_size[1]
        self._init_hardware(hardware, mapping, k, out_channels)

    @classmethod
    def from_digital(cls, layer: nn.Conv2d, hardware: TileConfig,
                     mapping: MappingConfig | None = None) -> AnalogConv2d:
        """An analog copy of ``layer`` (groups = 1, zero padding) with the same weights."""
        if layer.groups != 1:
            raise ConfigError(f"AnalogConv2d: groups = {layer.groups} is not supported; allowed: "
                             "1 (keep grouped convolutions digital with an override)")
        if layer.padding_mode != "zeros" or isinstance(layer.padding, str):
            raise ConfigError(f"AnalogConv2d: padding {layer.padding!r} / padding_mode "
                             f"{layer.padding_mode!r} is not supported; allowed: integer zero "
                             "padding")
        new = cls(layer.in_channels, layer.out_channels, layer.kernel_size, layer.stride,
                  layer.padding, layer.dilation, layer.bias is not None, hardware=hardware,
                  mapping=mapping)
        new._copy_from(layer)
        return new

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ConfigError(f"AnalogConv2d: input has shape {tuple(x.shape)}; expected "
                             f"(batch, {self.in_channels}, H, W)")
        tiled = self._require("forward")
        needs_grad = torch.is_grad_enabled() and (x.requires_grad or self.weight.requires_grad)
        if tiled.conv_ready and not needs_grad and not self._calibrating:
            y = tiled.forward_conv(x, self.kernel_size, self.stride, self.padding,
                                   self.dilation, generator=self.generator)
        else:
            n = x.shape[0]
            cols, oh, ow = self.patches(x)
            amax = None
            if self.mapping.input_scaling == "dynamic":  # largest |x| of each patch, pooled
                (ph, pw) = self.padding
                amax = F.pad(x.detach().abs().amax(1, keepdim=True), (pw, pw, ph, ph))
                amax = F.max_pool2d(amax, self.kernel_size, self.stride, 0, self.dilation)
                amax = amax.reshape(-1, 1)
            y = self._hardware_mvm(cols, amax)
            y = y.reshape(n, oh, ow, self.out_channels).permute(0, 3, 1, 2)
        return y if self.bias is None else y + self.bias[:, None, None]

    def patches(self, x: Tensor) -> tuple[Tensor, int, int]:
        """The matrix the arrays see for input ``x`` (N, C, H, W): unfolded patches
        (N * OH * OW, C * kh * kw) in (channel, kh, kw) order, and OH, OW."""
        n, _, h, w = x.shape
        (kh, kw), (sh, sw) = self.kernel_size, self.stride
        (ph, pw), (dh, dw) = self.padding, self.dilation
        oh = (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1
        ow = (w + 2 * pw - dw * (kw - 1) - 1) // sw + 1
        if (dh, dw) == (1, 1):  # a strided view of the padded image, gathered once
            xp = F.pad(x, (pw, pw, ph, ph)) if ph or pw else x
            cols = xp.permute(0, 2, 3, 1).unfold(1, kh, sh).unfold(2, kw, sw)
            return cols.reshape(n * oh * ow, -1), oh, ow
        cols = F.unfold(x, self.kernel_size, self.dilation, self.padding, self.stride)
        return cols.transpose(1, 2).reshape(n * oh * ow, -1), oh, ow

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}, padding={self.padding}, " + super().extra_repr())
