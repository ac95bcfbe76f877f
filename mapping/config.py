"""How a layer's weights and inputs are scaled onto tiles, and drift compensation.

Every field is declared once with :func:`memxbar.devices.base.param` (type, allowed values,
range, doc); the checks, ``parameters()`` and the study schema are generated from these
declarations.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from memxbar.devices.base import Parametrized, param
from memxbar.errors import ConfigError

WEIGHT_SCALING = ("column", "layer")
WEIGHT_CLIP = ("max", "percentile", "fixed")
INPUT_SCALING = ("dynamic", "fixed", "calibrated")
COMPENSATION = ("none", "global", "column")


@dataclass(frozen=True)
class MappingConfig(Parametrized):
    """How a layer's weights and inputs are scaled onto tiles, and drift compensation.

    - ``weight_scaling``: one bound per output column ("column") or per layer ("layer").
    - ``weight_clip``: the bound is the largest ``|W|`` ("max"), the ``clip_value``-th
      percentile of ``|W|`` ("percentile", e.g. 99.5), or ``clip_value`` itself ("fixed",
      weight units); weights beyond it saturate at the device range.
    - ``input_scaling``: "dynamic" (the default: per input vector, largest magnitude; a
      convolution's vectors are its patches), "fixed" (``input_range`` in activation units;
      larger inputs saturate at the DAC range) or "calibrated" (a fixed range per layer: the
      largest ``|input|`` seen in calibration, as a chip quantizes activations to one range
      per layer; refused with a ConfigError naming ``calibrate`` until one ran). "dynamic" is
      aihwkit's default too (``IOParameters.noise_management = ABS_MAX``), and the default is
      kept so results do not change. With "fixed" or "calibrated" and a one-shot DAC,
      convolutions run without unfolding (see ``forward_conv``); "dynamic" convolutions
      gather their patches once (see :class:`~memxbar.mapping.layers.conv.AnalogConv`).
    - ``compensation``: drift compensation by a reference read (see
      :mod:`memxbar.mapping.compensation`): "none", "global" (one factor per layer) or
      "column" (one factor per output).
    """

    weight_scaling: Literal["column", "layer"] = param(
        "column", options=WEIGHT_SCALING,
        doc="one weight bound per output column or one per layer")
    weight_clip: Literal["max", "percentile", "fixed"] = param(
        "max", options=WEIGHT_CLIP,
        doc="weight bound: the largest |W|, a percentile of |W|, or clip_value itself")
    clip_value: float = param(
        99.5, gt=0.0, doc="percentile of |W| (weight_clip 'percentile', in (0, 100]) or the "
        "bound in weight units (weight_clip 'fixed')")
    input_scaling: Literal["dynamic", "fixed", "calibrated"] = param(
        "dynamic", options=INPUT_SCALING,
        doc="input full scale: per input vector, fixed (input_range) or calibrated per layer",
        source="aihwkit 1.2 IOParameters.noise_management default ABS_MAX (per input vector)")
    input_range: float = param(
        1.0, gt=0.0, unit="activation units",
        doc="input full scale for input_scaling 'fixed'; larger inputs saturate")
    compensation: Literal["none", "global", "column"] = param(
        "none", options=COMPENSATION,
        doc="drift compensation by a reference read: none, one factor per layer or per output")

    def _check(self) -> None:
        if self.weight_clip == "percentile" and not 0 < self.clip_value <= 100:
            raise ConfigError(f"MappingConfig.clip_value = {self.clip_value!r} is not allowed "
                             "with weight_clip='percentile'; allowed: (0, 100]")
