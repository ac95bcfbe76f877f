"""MkDocs hook (mkdocs.yml ``hooks``): refuse to build without the generated pages, with the
command that makes them, instead of a list of missing-file warnings."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from mkdocs.exceptions import PluginError

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # `mkdocs` run from its script
from docs.gen.common import OUT  # noqa: E402
from docs.gen.tutorials import TUTORIALS  # noqa: E402

NEEDED = ["device-library.md", "api/devices.md", *(f"tutorials/{n}.txt" for n in TUTORIALS)]


def on_pre_build(config: Any, **kwargs: Any) -> None:
    missing = [name for name in NEEDED if not (OUT / name).is_file()]
    if missing:
        raise PluginError(f"docs/generated/ lacks {', '.join(missing)}: run `make docs-build` "
                          "(or python -m docs.gen.api, docs.gen.devices, docs.gen.tutorials) "
                          "before mkdocs build")
