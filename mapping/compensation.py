"""Drift compensation and ADC range calibration.

Drift compensation as on chip: right after programming, a fixed set of reference inputs is read
through each layer's arrays and the output magnitudes are stored digitally; at a later read the
same reference read gives the factor that restores them (Joshi et al., Nat. Commun. 11:2473
(2020) global drift compensation; "column" keeps one factor per output).
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import Tensor, nn

from ..errors import ConfigError

PROBE_VECTORS = 32


def probe_inputs(n_inputs: int, dtype: torch.dtype, device: torch.device | str = "cpu") -> Tensor:
    """The fixed reference inputs: ``PROBE_VECTORS`` random +-1 vectors (seed 0)."""
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 2, (PROBE_VECTORS, n_inputs), generator=g) * 2 - 1
    return x.to(dtype=dtype, device=device)


def compensation_factors(ref: Tensor, now: Tensor, mode: str) -> Tensor:
    """Per-output factors (out,) that bring the reference-read magnitudes ``now`` back to
    ``ref`` (both (out,)): one shared ratio ("global") or one per output ("column")."""
    tiny = torch.finfo(now.dtype).tiny
    if mode == "global":
        return (ref.sum() / now.sum().clamp_min(tiny)).expand_as(now).clone()
    if mode == "column":
        return torch.where(now > tiny, ref / now.clamp_min(tiny), torch.ones_like(now))
    raise ConfigError(f"drift compensation mode {mode!r} is not allowed; allowed: global, column")


@torch.no_grad()
def calibrate(model: nn.Module, batches: Tensor | Iterable[Tensor]) -> None:
    """Set the ADC ranges (and "calibrated" input ranges) of every analog layer from example
    model inputs, covering every batch; each layer sees the outputs of the layers before it,
    calibrated on the same batch. With "calibrated" input scaling a first pass over the
    batches sets the input ranges and a second the ADC ranges (ADC ranges depend on them)."""
    from .convert import analog_layers

    layers = [layer for _, layer in analog_layers(model)]
    if not layers:
        raise ConfigError("calibrate: the model has no analog layers; convert it with "
                         "to_analog() first")
    two = any(layer.mapping.input_scaling == "calibrated" for layer in layers)
    if isinstance(batches, Tensor):
        batches = [batches]
    elif two:
        batches = list(batches)  # read twice
    was = model.training
    model.eval()
    try:
        for phase in ("inputs", "adc") if two else ("inputs",):
            for layer in layers:
                layer._calibrating, layer._calibrated_batches = phase, 0
            seen = 0
            for xb in batches:
                model(xb[0] if isinstance(xb, (tuple, list)) else xb)
                seen += 1
            if seen == 0:
                raise ConfigError("calibrate: no calibration batches were given")
    finally:
        for layer in layers:
            layer._calibrating = None
        model.train(was)
