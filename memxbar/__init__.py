"""memxbar: device-to-system co-design of memristive crossbar accelerators.

Importing ``memxbar`` (or ``memxbar.cli``) loads no heavy module: the re-exports below are
imported on first use (module ``__getattr__``), so the command line starts, and answers Ctrl-C,
before torch is imported.
"""

import importlib
import os
from typing import Any

# OpenMP threads that spin while waiting stall badly when the cores are shared (several study
# workers, other jobs): one IR-drop solve went from 1 s to 18 s on 2 busy cores. Passive
# waiting costs nothing on an idle machine. Must be set before torch is imported.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from memxbar.errors import ConfigError  # noqa: E402  (first: every stage imports it)

__version__ = "0.1.0"
_LAZY = {"CellState": "memxbar.devices", "Device": "memxbar.devices",
         "IdealDevice": "memxbar.devices", "presets": "memxbar.devices"}
__all__ = ["CellState", "ConfigError", "Device", "IdealDevice", "__version__", "presets"]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'memxbar' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})
