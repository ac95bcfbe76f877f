"""Crossbar: one array and its periphery — IR-drop circuit, SPICE reference, DAC/ADC, tiles,
cost per operation."""

from .cost import CostModel
from .periphery import ADC, DAC
from .tile import Tile, TileConfig

__all__ = ["ADC", "DAC", "CostModel", "Tile", "TileConfig"]
