"""Your own code in a study file: a model, a dataset or a device named ``"module:function"``.

A reference ``"package.module:function"`` is looked up, in order, as the file
``package/module.py`` (or ``package/module/__init__.py``) in the study file's folder, in each
folder given with ``--path``, then as an installed module. A module found in a folder is loaded
from its file under a private name (two studies with a ``mymodels.py`` each do not mix), with
that folder on ``sys.path`` while it runs, so it can import its neighbours. The file's SHA-256
enters the study's identity: a changed file is a different study, not a silent resume.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from memxbar.errors import ConfigError

REF = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*:[A-Za-z_][A-Za-z0-9_.]*")
_LOADED: dict[tuple[str, str], Any] = {}  # (file, sha256) -> module


def is_ref(value: object) -> bool:
    """Whether ``value`` is written as a ``"module:function"`` reference."""
    return isinstance(value, str) and ":" in value


def _check(ref: str, what: str) -> tuple[str, str]:
    if not REF.fullmatch(ref):
        raise ConfigError(f"{what} = {ref!r} is not a reference; allowed: "
                          "'package.module:function' (Python names, e.g. 'mymodels:tiny_cnn')")
    module, _, name = ref.partition(":")
    return module, name


def locate(ref: str, folders: Sequence[str | Path], what: str) -> dict[str, str]:
    """``{"file", "sha256"}`` of the source file that defines ``ref`` (see the module doc);
    ConfigError when the module cannot be found or read."""
    module, _ = _check(ref, what)
    parts = module.split(".")
    for folder in folders:
        for candidate in (Path(folder, *parts).with_suffix(".py"),
                          Path(folder, *parts, "__init__.py")):
            if candidate.is_file():
                return {"file": str(candidate.resolve()), "sha256": _sha256(candidate, what),
                        "root": str(Path(folder).resolve())}
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        spec = None
    if spec is None or spec.origin is None or not Path(spec.origin).is_file():
        looked = ", ".join(str(Path(f).resolve()) for f in folders) or "no folder"
        raise ConfigError(f"{what} = {ref!r}: module {module!r} not found (looked for "
                          f"{'/'.join(parts)}.py in {looked}, then among installed modules); "
                          "put it next to the study file or pass its folder with --path")
    return {"file": str(Path(spec.origin).resolve()), "sha256": _sha256(Path(spec.origin), what),
            "root": ""}


def _sha256(path: Path, what: str) -> str:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError as e:
        raise ConfigError(f"{what}: cannot read {path}: {e.strerror}") from None


def resolve(ref: str, source: dict[str, str], what: str) -> Callable[..., Any]:
    """The callable ``ref`` names, from the file recorded in ``source`` (by :func:`locate`);
    refused when the file changed since (another hash) or does not define a callable."""
    module_name, name = _check(ref, what)
    path = Path(source["file"])
    digest = _sha256(path, what)
    if digest != source["sha256"]:
        raise ConfigError(f"{what} = {ref!r}: {path} changed since the study was loaded "
                          f"(sha256 {digest[:12]}..., was {source['sha256'][:12]}...); a "
                          "changed file is a different study: use another [study] name, or "
                          "restore the file")
    key = (str(path), digest)
    if key not in _LOADED:
        _LOADED[key] = _load(module_name, path, source.get("root", ""), what)
    obj: Any = _LOADED[key]
    for part in name.split("."):
        obj = getattr(obj, part, None)
        if obj is None:
            raise ConfigError(f"{what} = {ref!r}: {path} defines no {name!r}")
    if not callable(obj):
        raise ConfigError(f"{what} = {ref!r}: {name!r} in {path} is not callable")
    return obj


def _load(module_name: str, path: Path, root: str, what: str) -> Any:
    if not root:  # an installed module
        return importlib.import_module(module_name)
    private = f"memxbar_user_{hashlib.sha256(str(path).encode()).hexdigest()[:12]}_" \
              f"{module_name.replace('.', '_')}"
    spec = importlib.util.spec_from_file_location(private, path)
    if spec is None or spec.loader is None:
        raise ConfigError(f"{what}: {path} cannot be loaded as a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, root)
    sys.modules[private] = module
    try:
        spec.loader.exec_module(module)
    except Exception as e:  # the user's module failed while importing
        del sys.modules[private]
        raise ConfigError(f"{what}: importing {path} failed: {type(e).__name__}: {e}") from None
    finally:
        if sys.path and sys.path[0] == root:
            del sys.path[0]
    return module
