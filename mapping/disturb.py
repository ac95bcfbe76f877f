"""Read disturb accumulated over inferences: every analog layer's cells after the deployed
network has answered ``inferences`` queries (issue 13, missing physics 5).

Reads per cell. An input vector drives each row of a layer's tiles once in every DAC read
cycle in which the row's code is non-zero (``TileConfig.dac``: one cycle one-shot, one per
magnitude bit bit-serial; "voltage" signing drives negative inputs at ``-V_read``,
"two_phase" drives them at ``+V_read`` in a second phase), and every cell of a driven row is
read: all columns, both arrays of a differential pair, the offset reference column. Row
groups (``rows_parallel``) read a row once per cycle as well; they multiply the conversions,
not the reads of a cell. A linear layer sees one vector per inference, a convolution one per
output position. The counts come from the DAC codes of real layer inputs (``example_input``
through :func:`memxbar.mapping.cost.capture_inputs`, the scaling and codes the simulation
uses), per row and polarity, averaged per inference; then ``reads = inferences x reads per
inference`` go to the device's :meth:`~memxbar.devices.base.Device.disturb` (MTJ: switching by
the read current; RRAM: filament decay; other technologies: no read-disturb model, cells
untouched).

Stated approximations: every non-zero drive counts as a read at the full ``+-V_read`` (exact
for bit-serial and binary drives, an upper bound for the lower voltages of a multi-level
one-shot DAC); the ``+V_read`` reads are applied before the ``-V_read`` reads (the MTJ's two
disturb directions act in sequence, not interleaved: exact to first order in the flip
probabilities); transposed reads of online training are not counted.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
import torch
from torch import Tensor, nn

from memxbar.errors import ConfigError, plain_value
from memxbar.mapping.cost import LayerInputs, capture_inputs
from memxbar.mapping.layers import AnalogConv, AnalogLayer, analog_layers

CHUNK = 8192  # input vectors encoded at once (bounds the memory of the DAC planes)
MAX_INFERENCES = 1e18


@dataclass
class DisturbReport:
    """What :func:`apply_read_disturb` did: ``inferences`` and, per analog layer (index: its
    name), ``cells`` (simulated cells), ``reads_per_inference`` (the most reads any cell gets
    per inference) and ``reads_mean`` (over cells), ``changed`` (cells whose conductance
    changed: flipped MTJ junctions, decayed RRAM filaments) and ``changed_fraction``, and
    ``window_shift`` (mean |change of G| over the cells, in units of ``g_max - g_min``)."""

    inferences: float
    layers: pd.DataFrame

    @property
    def changed(self) -> int:
        """Cells changed in the whole model."""
        return int(self.layers["changed"].sum()) if len(self.layers) else 0

    @property
    def changed_fraction(self) -> float:
        """Changed cells / all simulated cells of the model."""
        cells = int(self.layers["cells"].sum()) if len(self.layers) else 0
        return self.changed / cells if cells else 0.0


def _matrix_inputs(layer: AnalogLayer, x: Tensor) -> Tensor:
    """The (vectors, inputs) matrix the layer's arrays see for layer input ``x``."""
    if isinstance(layer, AnalogConv):
        return layer.patches(x)[0]
    return x.reshape(-1, layer.matrix_shape[1])


@torch.no_grad()
def reads_per_inference(layer: AnalogLayer, inputs: list[Tensor], inferences: int
                        ) -> tuple[Tensor, Tensor]:
    """Reads at ``+V_read`` and at ``-V_read`` per inference of every row of the layer's tiles
    (float64, ``(*stack[:-1], 1, rows)`` each, the shape of :meth:`TiledMatrix.tile_inputs`'s
    blocks without the vector dimension), from the layer's ``inputs`` over ``inferences``
    inferences."""
    tiled = layer.tiled
    assert tiled is not None  # programmed layers only
    dac = tiled.tile.config.dac
    pos: Tensor | float = 0.0
    neg: Tensor | float = 0.0
    for x in inputs:
        X = _matrix_inputs(layer, x)
        for start in range(0, X.shape[0], CHUNK):
            xb = tiled.tile_inputs(X[start:start + CHUNK])[0]
            planes = dac.encode(xb.to(torch.float64))[0]  # (cycles, *lead, 1, B, rows)
            pos = pos + (planes > 0).sum(dim=(0, -2)).to(torch.float64)
            neg = neg + (planes < 0).sum(dim=(0, -2)).to(torch.float64)
    lead = (*tiled.stack[:-1], 1, tiled.sim.rows)
    state = tiled.tile.state
    zero = torch.zeros(lead, dtype=torch.float64,
                       device=None if state is None else state.g.device)
    return zero + pos / inferences, zero + neg / inferences


def _check_inferences(inferences: object) -> float:
    inferences = plain_value(inferences)
    if isinstance(inferences, bool) or not isinstance(inferences, (int, float)) or not (
            0 <= inferences <= MAX_INFERENCES):
        raise ConfigError(f"apply_read_disturb: inferences = {inferences!r} is not allowed; "
                          f"allowed: a number in [0, {MAX_INFERENCES:g}]")
    return float(inferences)


@torch.no_grad()
def apply_read_disturb(model: nn.Module, inferences: float,
                       example_input: Tensor | LayerInputs, *,
                       generator: torch.Generator | None = None) -> DisturbReport:
    """Disturb the cells of every analog layer of the programmed ``model`` by the reads of
    ``inferences`` inferences (module doc) and return what changed per layer.

    ``example_input``: a batch of typical inputs (its batch dimension counts the inferences),
    or the :class:`~memxbar.mapping.cost.LayerInputs` of :func:`capture_inputs`, from which the
    reads per cell and inference are counted. ``generator``: the random draws of stochastic
    disturb (MTJ); None = torch's default generator. Layers whose cells changed are read
    again at their current read time (``tiled.set_time``: drift compensation and the frozen
    read-noise sample follow); layers with no change keep their read as it was.
    """
    n_inf = _check_inferences(inferences)
    if generator is not None and not isinstance(generator, torch.Generator):
        raise ConfigError(f"apply_read_disturb: generator must be a torch.Generator or None; "
                          f"got {type(generator).__name__}")
    captured = (example_input if isinstance(example_input, LayerInputs)
                else capture_inputs(model, example_input))
    rows = []
    for name, layer in analog_layers(model):
        tiled = layer.tiled
        if tiled is None or not layer.programmed or name not in captured.inputs:
            raise ConfigError(f"apply_read_disturb: layer {name!r} is not programmed or was not "
                              "run by example_input; program the model and pass inputs that "
                              "reach every analog layer")
        tile = tiled.tile
        state = tile.state
        assert state is not None  # programmed
        dev = tile.config.device
        pos, neg = reads_per_inference(layer, captured.inputs[name], captured.inferences)
        cells = pos.unsqueeze(-2).unsqueeze(-1), neg.unsqueeze(-2).unsqueeze(-1)
        new = state
        for per, sign in zip(cells, (1.0, -1.0), strict=True):
            if n_inf > 0 and bool((per > 0).any()):
                new = dev.disturb(new, n_inf * per, voltage=sign * dev.read_voltage,
                                  generator=generator)
        moved = new.g != state.g
        changed = int(moved.sum())
        shift = float((new.g - state.g).abs().double().mean()) / (dev.g_max - dev.g_min)
        if new is not state:
            tile.state = new  # the buffers; latents such as read_stress are kept
            if changed:
                tiled.set_time(tile.t, generator=generator)
        total = torch.broadcast_to(cells[0] + cells[1], state.g.shape)
        rows.append({"layer": name, "cells": state.g.numel(),
                     "reads_per_inference": float(total.max()),
                     "reads_mean": float(total.mean()), "changed": changed,
                     "changed_fraction": changed / max(1, state.g.numel()),
                     "window_shift": shift})
    return DisturbReport(n_inf, pd.DataFrame(rows).set_index("layer") if rows else
                         pd.DataFrame(columns=["cells", "reads_per_inference", "reads_mean",
                                               "changed", "changed_fraction", "window_shift"]))
