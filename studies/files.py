"""The files and folders a study file names, checked when it is loaded: paths that can be
looked at and written to, and measured pulse files read in full, fitted and hashed.

A measured file is fitted once per content (cached by its SHA-256); a study remembers the hash
taken at load, so a file changed at the same path is refused, not silently mixed in.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import stat
from collections.abc import Iterator
from pathlib import Path

from memxbar.devices.base import Device
from memxbar.errors import ConfigError
from memxbar.studies.hardware import short_repr


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


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (created if missing) for the block: processes on this
    machine that share the folder (study workers) take turns; the lock goes with the process
    if it dies."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


_FITTED: dict[tuple, Device] = {}


def file_sha256(path: Path, sha256: str | None = None) -> str:
    """The file's sha256 (hex); refused when ``sha256`` is given and the content no longer
    has it."""
    try:
        content = path.read_bytes()
    except OSError as e:
        raise ConfigError(f"cannot read {path}: {e.strerror}") from None
    digest = hashlib.sha256(content).hexdigest()
    if sha256 is not None and digest != sha256:
        raise ConfigError(f"{path} changed since the study was loaded (sha256 {digest[:12]}..., "
                          f"was {sha256[:12]}...); a changed file is a different study: use "
                          "another [study] name, or restore the file")
    return digest


def fit_measured(file: str, sha256: str | None, g_min: float | None, g_max: float | None,
                 units: str | None = None, retention: str | None = None,
                 retention_sha256: str | None = None,
                 retention_units: str | None = None) -> Device:
    """The :class:`~memxbar.devices.measured.MeasuredDevice` fitted to a pulse file (read in
    full by :func:`~memxbar.devices.measured.read_pulse_file`: layout, units from the header
    or ``units``, numbers, enough readings, not constant), with the power-law drift fitted to
    a ``retention`` file when one is given; refused when a hash is given and the file's content
    no longer has it."""
    from memxbar.devices import measured

    path = Path(file)
    digest = file_sha256(path, sha256)
    r_digest = None if retention is None else file_sha256(Path(retention), retention_sha256)
    key = (str(path), digest, g_min, g_max, units, retention, r_digest, retention_units)
    if key not in _FITTED:
        data = measured.read_pulse_file(path, units=units)
        drift = {} if retention is None else measured.fit_retention(
            measured.read_retention_file(retention, units=retention_units)).params()
        _FITTED[key] = measured.fit(data.potentiation, data.depression, units=data.units,
                                    g_min=g_min, g_max=g_max, **drift)
    return _FITTED[key]
