"""memxbar: device-to-system co-design of memristive crossbar accelerators."""

from memxbar.devices import CellState, Device, IdealDevice, presets

__version__ = "0.1.0"
__all__ = ["CellState", "Device", "IdealDevice", "__version__", "presets"]
