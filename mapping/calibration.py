"""ADC range (and calibrated input range) calibration of a whole model.

Drives every analog layer's :meth:`~memxbar.mapping.layers.AnalogLayer.calibration` protocol:
the model runs on example inputs, and each layer sets its ranges from the inputs it sees — the
outputs of the layers before it, calibrated on the same batch.
"""

from __future__ import annotations

from collections.abc import Iterable
from contextlib import ExitStack

import torch
from torch import Tensor, nn

from memxbar.errors import ConfigError
from memxbar.mapping.layers.base import analog_layers


@torch.no_grad()
def calibrate(model: nn.Module, batches: Tensor | Iterable[Tensor]) -> None:
    """Set the ADC ranges (and "calibrated" input ranges) of every analog layer from example
    model inputs, covering every batch (a tensor, or batches; a ``(inputs, labels)`` pair's
    first element is used). With "calibrated" input scaling a first pass over the batches
    sets the input ranges and a second the ADC ranges (ADC ranges depend on them)."""
    layers = [layer for _, layer in analog_layers(model)]
    if not layers:
        raise ConfigError("calibrate: the model has no analog layers; convert it with "
                         "to_analog() first")
    two = any(layer.mapping.input_scaling == "calibrated" for layer in layers)
    if isinstance(batches, Tensor):
        batches = [batches]
    elif not isinstance(batches, Iterable) or isinstance(batches, (str, bytes)):
        raise ConfigError(f"calibrate: batches of type {type(batches).__name__} are not "
                          "allowed; allowed: a tensor or an iterable of batches (a DataLoader, "
                          "a list)")
    elif two:
        batches = list(batches)  # read twice
    was = model.training
    model.eval()
    try:
        for phase in ("inputs", "adc") if two else ("inputs",):
            seen = 0
            with ExitStack() as stack:
                for layer in layers:
                    stack.enter_context(layer.calibration(phase))
                for xb in batches:
                    x = xb[0] if isinstance(xb, (tuple, list)) else xb
                    if isinstance(x, Tensor) and x.numel() == 0:
                        raise ConfigError(f"calibrate: batch {seen} is empty (shape "
                                          f"{tuple(x.shape)}); allowed: batches of >= 1 "
                                          "example inputs")
                    model(x)
                    seen += 1
            if seen == 0:
                raise ConfigError("calibrate: no calibration batches were given")
    finally:
        model.train(was)
