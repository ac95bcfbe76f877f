"""Crossbar: one array and its periphery — IR-drop circuit, SPICE reference, DAC/ADC, tiles,
cost per operation."""

from memxbar.crossbar.cost import CostModel
from memxbar.crossbar.periphery import ADC, DAC
from memxbar.crossbar.tile import Tile, TileConfig

__all__ = ["ADC", "DAC", "CostModel", "Tile", "TileConfig"]
