"""The one exception type for bad configuration and bad input, and the checks all stages share.

Every check that refuses a user's value (a study field, a device parameter, a tensor handed to a
public function, a file) raises :class:`ConfigError`, naming what is wrong, where, and what is
allowed. The command line turns exactly this type into one line and exit code 2; any other
exception is an internal error and is shown with its traceback.

This module imports nothing from memxbar, so every stage may import it.
"""

from __future__ import annotations

import numbers
import os
from pathlib import Path
from typing import Any

FIGURE_SUFFIXES = (".png", ".svg", ".pdf")
"""File types memxbar writes figures in: raster for screens, vector for papers."""

MAX_SEED = 2**64 - 1
"""Largest seed a ``torch.Generator`` takes."""


class ConfigError(ValueError):
    """A bad configuration value, file or input (a ``ValueError``, so existing handlers see it)."""


def figure_path(path: str | os.PathLike[str], what: str) -> Path:
    """``path`` as a :class:`~pathlib.Path` when it names a figure file memxbar can write (a
    suffix of :data:`FIGURE_SUFFIXES`, any case); otherwise a :class:`ConfigError` naming
    ``what`` (the argument) and the allowed suffixes. Checked before the work that the figure
    shows, so a mistyped name costs nothing."""
    if isinstance(path, bool) or not isinstance(path, (str, os.PathLike)):
        raise ConfigError(f"{what} = {path!r} is not a file path; give a str or Path ending in "
                          + ", ".join(FIGURE_SUFFIXES))
    p = Path(path)
    if p.suffix.lower() not in FIGURE_SUFFIXES or not p.stem:
        raise ConfigError(f"{what} = {str(path)!r}: a figure file must end in "
                          + ", ".join(FIGURE_SUFFIXES))
    return p


def plain_value(value: Any) -> Any:
    """``value`` with numpy scalars (``np.float32(0.5)``, ``np.int64(3)``, ``np.bool_``,
    ``np.str_``) turned into the Python number, bool or string they hold, in tuples too; anything
    else unchanged. A value taken from ``np.linspace`` or a pandas column is then checked and
    stored (and shown in reports) like the literal it stands for."""
    if isinstance(value, tuple):
        return tuple(plain_value(v) for v in value)
    if type(value) in (int, float, bool, str) or value is None:
        return value
    if type(value).__module__ == "numpy":
        if type(value).__name__.startswith("bool"):  # np.bool_ (np.bool in numpy 2)
            return bool(value)
        if isinstance(value, numbers.Integral):
            return int(value)
        if isinstance(value, numbers.Real):
            return float(value)
        if isinstance(value, str):
            return str(value)
    return value


def seed_value(seed: Any, where: str) -> int:
    """``seed`` (an int, or a numpy integer) as the Python int a generator is seeded with;
    otherwise a :class:`ConfigError` naming ``where`` and the allowed range [0, MAX_SEED]."""
    seed = plain_value(seed)
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
        raise ConfigError(f"{where}: seed = {seed!r} is not allowed; allowed: an integer in "
                          "[0, 2**64 - 1]")
    return seed
