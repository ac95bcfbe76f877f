"""Mapping: networks onto crossbar arrays — tiling, analog layers, conversion, compensation,
calibration, cost reports, read disturb over inferences."""

from memxbar.mapping.calibration import calibrate
from memxbar.mapping.config import MappingConfig
from memxbar.mapping.convert import conversion_report, drift, mapping_report, program, to_analog
from memxbar.mapping.cost import CostReport, estimate_cost, plot_breakdown
from memxbar.mapping.disturb import DisturbReport, apply_read_disturb
from memxbar.mapping.layers import (
    AnalogConv,
    AnalogConv1d,
    AnalogConv2d,
    AnalogConv3d,
    AnalogLayer,
    AnalogLinear,
    AnalogMultiheadAttention,
    analog_layers,
    register,
)
from memxbar.mapping.tiler import TiledMatrix

__all__ = ["AnalogConv", "AnalogConv1d", "AnalogConv2d", "AnalogConv3d", "AnalogLayer",
           "AnalogLinear", "AnalogMultiheadAttention", "CostReport", "DisturbReport",
           "MappingConfig", "TiledMatrix", "analog_layers", "apply_read_disturb", "calibrate",
           "conversion_report", "drift", "estimate_cost", "mapping_report", "plot_breakdown",
           "program", "register", "to_analog"]
