"""Device models: one memory cell, vectorized over any tensor shape (SI units)."""

from memxbar.devices import presets
from memxbar.devices.base import CellState, Device, Preset
from memxbar.devices.ideal import IdealDevice

__all__ = ["CellState", "Device", "IdealDevice", "Preset", "presets"]
