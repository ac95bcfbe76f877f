"""Analog layers: the protocol (:mod:`.base`), linear, convolutions, attention, and the registry
that maps digital module types to their analog replacements (:mod:`.registry`)."""

from __future__ import annotations

from torch import nn

from memxbar.crossbar.tile import TileConfig
from memxbar.mapping.config import MappingConfig
from memxbar.mapping.layers.attention import (
    DIGITAL_PARTS,
    AnalogMultiheadAttention,
    AnalogTransformerEncoderLayer,
)
from memxbar.mapping.layers.base import PHASES, AnalogLayer, CalibrationPhase, analog_layers
from memxbar.mapping.layers.conv import AnalogConv, AnalogConv1d, AnalogConv2d, AnalogConv3d
from memxbar.mapping.layers.linear import AnalogLinear
from memxbar.mapping.layers.registry import (
    Converter,
    Unsupported,
    converter_for,
    register,
    registered,
    replacing,
)

_AnalogBase = AnalogLayer  # the former private name, kept for callers that still use it


def _encoder_layer(layer: nn.Module, hardware: TileConfig, mapping: MappingConfig | None
                   ) -> nn.Module:
    """Keep a transformer encoder layer off PyTorch's fast path (which reads its weights
    directly): same modules, a forward that calls them."""
    cls = type(layer)
    if cls.forward is not nn.TransformerEncoderLayer.forward:
        raise Unsupported(f"{cls.__name__} has its own forward; its sub-modules are converted")
    layer.__class__ = (AnalogTransformerEncoderLayer if cls is nn.TransformerEncoderLayer else
                       type(f"Analog{cls.__name__}", (AnalogTransformerEncoderLayer, cls), {}))
    return layer


def _encoder(encoder: nn.TransformerEncoder, hardware: TileConfig,
             mapping: MappingConfig | None) -> nn.Module:
    """Keep ``nn.TransformerEncoder`` off its nested-tensor path (it reads the first layer's
    weights directly)."""
    encoder.use_nested_tensor = False
    return encoder


register(nn.Linear, replacing(nn.Linear, AnalogLinear.from_digital))
register(nn.Conv1d, replacing(nn.Conv1d, AnalogConv1d.from_digital))
register(nn.Conv2d, replacing(nn.Conv2d, AnalogConv2d.from_digital))
register(nn.Conv3d, replacing(nn.Conv3d, AnalogConv3d.from_digital))
register(nn.MultiheadAttention,
         replacing(nn.MultiheadAttention, AnalogMultiheadAttention.from_digital))
register(nn.TransformerEncoderLayer, _encoder_layer)
register(nn.TransformerEncoder, _encoder)

__all__ = ["DIGITAL_PARTS", "PHASES", "AnalogConv", "AnalogConv1d", "AnalogConv2d",
           "AnalogConv3d", "AnalogLayer", "AnalogLinear", "AnalogMultiheadAttention",
           "AnalogTransformerEncoderLayer", "CalibrationPhase", "Converter", "Unsupported",
           "analog_layers", "converter_for", "register", "registered", "replacing"]
