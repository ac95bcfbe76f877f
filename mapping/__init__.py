"""Mapping: networks onto crossbar arrays — tiling, analog layers, conversion, compensation,
calibration, cost reports."""

from .calibration import calibrate
from .config import MappingConfig
from .convert import conversion_report, drift, mapping_report, program, to_analog
from .cost import CostReport, estimate_cost, plot_breakdown
from .layers import (
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
from .tiler import TiledMatrix

__all__ = ["AnalogConv", "AnalogConv1d", "AnalogConv2d", "AnalogConv3d", "AnalogLayer",
           "AnalogLinear", "AnalogMultiheadAttention", "CostReport", "MappingConfig",
           "TiledMatrix", "analog_layers", "calibrate", "conversion_report", "drift",
           "estimate_cost", "mapping_report", "plot_breakdown", "program", "register",
           "to_analog"]
