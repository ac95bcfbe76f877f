"""memxbar: device-to-system co-design of memristive crossbar accelerators."""

import os

# OpenMP threads that spin while waiting stall badly when the cores are shared (several study
# workers, other jobs): one IR-drop solve went from 1 s to 18 s on 2 busy cores. Passive
# waiting costs nothing on an idle machine. Must be set before torch is imported.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from memxbar.errors import ConfigError  # noqa: I001  (first: every stage imports it)
from memxbar.devices import CellState, Device, IdealDevice, presets

__version__ = "0.1.0"
__all__ = ["CellState", "ConfigError", "Device", "IdealDevice", "__version__", "presets"]
