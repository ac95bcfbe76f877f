"""Device models: one memory cell, vectorized over any tensor shape (SI units)."""

from . import presets
from .base import CellState, Device, Preset
from .ideal import IdealDevice

__all__ = ["CellState", "Device", "IdealDevice", "Preset", "presets"]
