"""Whole models onto crossbar hardware: convert, program, age, report."""

from __future__ import annotations

import copy
from collections.abc import Iterable, Iterator, Mapping

import pandas as pd
import torch
from torch import Tensor, nn

from ..crossbar.tile import TileConfig
from ..errors import ConfigError
from .compensation import calibrate
from .layers import AnalogConv2d, AnalogLinear, _AnalogBase
from .tiler import MappingConfig, TiledMatrix

Override = TileConfig | None


def to_analog(model: nn.Module, hardware: TileConfig, *, mapping: MappingConfig | None = None,
              overrides: Mapping[str, Override] | None = None) -> nn.Module:
    """A converted deep copy of ``model``: every ``nn.Linear`` and ``nn.Conv2d`` (groups = 1)
    becomes an analog layer on ``hardware``.

    ``overrides`` maps qualified module names (as in ``model.named_modules()``) to another
    :class:`TileConfig` (another tile size or device) or to ``None`` (keep the layer digital).
    The copy is not programmed yet: call :func:`program`.
    """
    overrides = dict(overrides or {})
    names = {n for n, _ in model.named_modules()}
    unknown = sorted(set(overrides) - names)
    if unknown:
        raise ConfigError(f"to_analog: overrides name unknown modules {unknown}; known: "
                         f"{sorted(n for n in names if n)}")
    new = copy.deepcopy(model)
    if isinstance(new, (nn.Linear, nn.Conv2d)) and not isinstance(new, _AnalogBase):
        wrapper = nn.Sequential(new)
        return to_analog(wrapper, hardware, mapping=mapping,
                         overrides={f"0.{k}" if k else "0": v for k, v in overrides.items()})[0]
    for name, module in list(new.named_modules()):
        for child_name, child in list(module.named_children()):
            qual = f"{name}.{child_name}" if name else child_name
            hw = overrides.get(qual, hardware)
            if hw is None or not isinstance(child, (nn.Linear, nn.Conv2d)):
                continue
            if isinstance(child, _AnalogBase):
                continue
            if isinstance(child, nn.Conv2d):
                if child.groups != 1:
                    continue  # grouped convolutions stay digital
                setattr(module, child_name, AnalogConv2d.from_digital(child, hw, mapping))
            else:
                setattr(module, child_name, AnalogLinear.from_digital(child, hw, mapping))
    return new


def analog_layers(model: nn.Module) -> Iterator[tuple[str, _AnalogBase]]:
    """(qualified name, layer) of every analog layer, in module order."""
    for name, m in model.named_modules():
        if isinstance(m, _AnalogBase):
            yield name, m


def _layers(model: nn.Module) -> list[tuple[str, _AnalogBase]]:
    layers = list(analog_layers(model))
    if not layers:
        raise ConfigError("the model has no analog layers; convert it with to_analog() first")
    return layers


@torch.no_grad()
def program(model: nn.Module, *, generator: torch.Generator | None = None,
            calibration: Tensor | Iterable[Tensor] | None = None) -> nn.Module:
    """Program every analog layer with its current weights (t = 0).

    ``calibration``: example model inputs (a tensor or batches) used to set ADC ranges when a
    layer's ADC range is "calibrated" or "per_column", and input ranges when its input scaling
    is "calibrated". Returns ``model``.
    """
    for _, layer in _layers(model):
        layer.program(generator=generator)
    needs = [layer for _, layer in _layers(model)
             if (layer.hardware.adc.bits and layer.hardware.adc.range_mode != "fixed")
             or layer.mapping.input_scaling == "calibrated"]
    if needs:
        if calibration is None:
            raise ConfigError("program: an ADC range mode is 'calibrated' or 'per_column', or the "
                             "input scaling is 'calibrated'; pass calibration=<example inputs> "
                             "to set the ranges")
        calibrate(model, calibration)
    return model


@torch.no_grad()
def drift(model: nn.Module, t: float, *, generator: torch.Generator | None = None) -> nn.Module:
    """Read every analog layer ``t`` seconds after programming. Returns ``model``."""
    for _, layer in _layers(model):
        layer.drift(t, generator=generator)
    return model


def mapping_report(model: nn.Module) -> pd.DataFrame:
    """One row per analog layer: shape, tiles, arrays, cells used and utilization."""
    rows = []
    for name, layer in _layers(model):
        hw = layer.hardware
        out_f, in_f = layer.matrix_shape
        rep = (layer.tiled or TiledMatrix(hw, in_f, out_f, layer.mapping)).report()
        rows.append(dict(layer=name, kind=type(layer).__name__, inputs=in_f, outputs=out_f,
                         device=type(hw.device).__name__, tile=f"{hw.rows}x{hw.cols}",
                         encoding=hw.encoding, cells_per_weight=hw.cells_per_weight, **rep))
    return pd.DataFrame(rows)
