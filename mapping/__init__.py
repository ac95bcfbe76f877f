"""Mapping: networks onto crossbar arrays — tiling, analog layers, conversion, compensation,
cost reports."""

from .compensation import calibrate
from .convert import analog_layers, drift, mapping_report, program, to_analog
from .cost import CostReport, estimate_cost, plot_breakdown
from .layers import AnalogConv2d, AnalogLinear
from .tiler import MappingConfig, TiledMatrix

__all__ = ["AnalogConv2d", "AnalogLinear", "CostReport", "MappingConfig", "TiledMatrix",
           "analog_layers", "calibrate", "drift", "estimate_cost", "mapping_report",
           "plot_breakdown", "program", "to_analog"]
