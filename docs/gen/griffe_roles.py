"""A griffe extension for the API pages: memxbar's docstrings use Sphinx roles
(:class:`~memxbar.x.Y`, :func:`fit`, :meth:`.pulse`); Markdown shows them as code (`Y`, `fit`,
`pulse`) instead of the raw role text. Loaded by mkdocs.yml (mkdocstrings ``extensions``)."""

from __future__ import annotations

import re
from typing import Any

import griffe

ROLE = re.compile(r":(?:class|func|meth|mod|attr|data|obj|exc|const):`~?\.?([^`]+)`")


def plain(text: str) -> str:
    """Every Sphinx role replaced by inline code of its target's last dotted part for ``~``
    targets, its full target otherwise."""
    def code(m: re.Match[str]) -> str:
        target = m.group(1)
        short = target.rsplit(".", 1)[-1] if m.group(0).split("`")[1].startswith("~") else target
        return f"`{short}`"
    return ROLE.sub(code, text)


class SphinxRoles(griffe.Extension):
    """Rewrite Sphinx roles in every docstring as it is loaded."""

    def on_object(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = plain(obj.docstring.value)
