"""The files and folders a study file names, checked when it is loaded: paths that can be
looked at and written to, and measured pulse files read in full, fitted and hashed.

A measured file is fitted once per content (cached by its SHA-256); a study remembers the hash
taken at load, so a file changed at the same path is refused, not silently mixed in.
"""

from __future__ import annotations

import csv
import hashlib
import os
import stat
from pathlib import Path

from memxbar.devices.base import Device
from memxbar.errors import ConfigError
from memxbar.studies.hardware import short_repr

MEASURED_FORMATS = {
    ("up_pulse_response", "down_pulse_response"): "gong2018",
    ("phase", "pulse_number", "conductance_s"): "jo2010",
}


def expand_path(value: str, what: str) -> Path:
    """``Path(value).expanduser()``; a ``~user`` without a home is a ConfigError."""
    if "\0" in value:
        raise ConfigError(f"{what} {value!r} contains a NUL character")
    try:
        return Path(value).expanduser()
    except RuntimeError as e:  # "Could not determine home directory"
        raise ConfigError(f"{what} {value!r}: {e}; allowed: a path without ~user, or with "
                          "the name of a user that has a home folder") from None


def path_kind(path: Path, what: str = "path") -> str:
    """"dir", "file", "other" or "missing"; a path the system refuses to look at (a name too
    long, no permission) is a ConfigError."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return "missing"
    except NotADirectoryError:
        return "missing"
    except (OSError, ValueError) as e:
        reason = e.strerror if isinstance(e, OSError) else e
        raise ConfigError(f"{what} {short_repr(str(path))}: {reason}; allowed: a path this "
                          "machine can look at") from None
    return "dir" if stat.S_ISDIR(mode) else "file" if stat.S_ISREG(mode) else "other"


def writable_folder(folder: Path, what: str) -> None:
    """Refuse a folder that exists as a file, or whose nearest existing parent memxbar
    cannot write into (the folder itself is made when the study runs)."""
    if path_kind(folder, what) not in ("dir", "missing"):
        raise ConfigError(f"{what} {folder} is a file, not a folder; allowed: a folder that "
                          "does not exist yet or an existing folder")
    probe = folder
    while path_kind(probe, what) == "missing":
        if probe.parent == probe:
            break
        probe = probe.parent
    kind = path_kind(probe, what)
    if kind not in ("dir", "missing"):
        raise ConfigError(f"{what} {folder}: {probe} is a file, not a folder; allowed: a "
                          "folder path whose parents are folders")
    if kind == "dir" and not os.access(probe, os.W_OK | os.X_OK):
        raise ConfigError(f"{what} {folder}: the folder {probe} is not writable; allowed: a "
                          "folder you can write to")


_FITTED: dict[tuple, Device] = {}


def fit_measured(file: str, sha256: str | None, g_min: float | None,
                 g_max: float | None) -> Device:
    """The :class:`~memxbar.devices.measured.MeasuredDevice` fitted to a pulse file (read in
    full: numbers, finite, enough readings, not constant); refused when ``sha256`` is given
    and the file's content no longer has it."""
    from memxbar.devices import measured

    path = Path(file)
    try:
        content = path.read_bytes()
    except OSError as e:
        raise ConfigError(f"cannot read {path}: {e}") from None
    digest = hashlib.sha256(content).hexdigest()
    if sha256 is not None and digest != sha256:
        raise ConfigError(f"{path} changed since the study was loaded (sha256 {digest[:12]}..., "
                          f"was {sha256[:12]}...); a changed file is a different study: use "
                          "another [study] name, or restore the file")
    key = (str(path), digest, g_min, g_max)
    if key not in _FITTED:
        reader = {"gong2018": measured.read_gong2018, "jo2010": measured.read_jo2010}
        data = reader[measured_format(path)](path)
        _FITTED[key] = measured.fit(data.potentiation, data.depression, units=data.units,
                                    g_min=g_min, g_max=g_max)
    return _FITTED[key]


def measured_format(path: Path) -> str:
    """Format of a measured pulse file from its CSV header (:data:`MEASURED_FORMATS`)."""
    try:
        with path.open(encoding="utf-8", newline="") as fh:
            header = next(csv.reader(fh), [])
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise ConfigError(f"cannot read {path}: {e}") from None
    cols = tuple(c.strip() for c in header)
    for known, name in MEASURED_FORMATS.items():
        if set(known) <= set(cols):
            return name
    allowed = " or ".join("(" + ", ".join(k) + ")" for k in MEASURED_FORMATS)
    raise ConfigError(f"{path}: CSV columns {short_repr(list(cols))} are not a known pulse-file "
                      f"format; allowed: columns {allowed}")
