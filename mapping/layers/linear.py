"""``AnalogLinear``: ``nn.Linear`` on crossbar arrays."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from memxbar.crossbar.tile import TileConfig
from memxbar.errors import ConfigError, plain_value
from memxbar.mapping.config import MappingConfig
from memxbar.mapping.layers.base import AnalogLayer


class AnalogLinear(AnalogLayer):
    """``nn.Linear`` on crossbar arrays: ``y = hardware(x) + bias`` (any leading dims)."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True, *,
                 hardware: TileConfig, mapping: MappingConfig | None = None) -> None:
        super().__init__()
        in_features, out_features = plain_value(in_features), plain_value(out_features)
        self.weight = nn.Parameter(self._allocate("AnalogLinear", out_features, in_features))
        self.in_features, self.out_features = in_features, out_features
        self.bias = nn.Parameter(self.weight.new_zeros(out_features)) if bias else None
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
        self._check_input(x)
        if x.dim() < 1 or x.shape[-1] != self.in_features:
            raise ConfigError(f"AnalogLinear: input has shape {tuple(x.shape)}; expected "
                             f"(..., {self.in_features})")
        lead = x.shape[:-1]
        y = self._hardware_mvm(x.reshape(-1, self.in_features))
        y = y.reshape(*lead, self.out_features)
        if self.bias is None:
            return y
        return y + self.bias if torch.is_grad_enabled() else y.add_(self.bias)

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None}, " + super().extra_repr())
