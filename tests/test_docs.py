"""The documentation site's generators (docs/gen): API pages, device library, tutorial list.

The docs build itself (``make docs-build``: every tutorial run, ``mkdocs build --strict``) runs
in ``.ci/run``; these tests check what the generators write, quickly and without drawing."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the docs/gen package lives in the repository, not the install

from docs.gen import api, devices, griffe_roles, tutorials  # noqa: E402
from docs.gen.common import write_if_changed  # noqa: E402
from memxbar.devices import presets  # noqa: E402


def test_api_pages_document_every_module_of_every_stage() -> None:
    for stage in api.STAGES:
        names = dict(api.modules(stage))
        files = list((ROOT / stage).rglob("*.py"))
        assert len(names) == len(files)
        assert names[f"memxbar.{stage}"] is True  # the package: its docstring only
        page = api.page(stage, "", list(names.items()))
        for name, package in names.items():
            block = f"::: {name}\n" + ("    options:\n      members: false\n" if package else "")
            assert block in page
    assert "memxbar.mapping.layers.registry" in dict(api.modules("mapping"))


def test_device_library_lists_every_preset_and_parameter_with_unit_and_source() -> None:
    page = devices.page(figures=False)
    for name in presets.names():
        assert f"\n## {name}\n" in page
        assert f"(devices/{name}.png)" in page
        for r in presets.get(name).parameters():
            row = f"| `{r['name']}` | {devices.fmt(r['value'])} | {devices.cell(r['unit'])} |"
            assert row in page, (name, r["name"])
    table_rows = [ln for ln in page.splitlines() if ln.startswith("| `")]
    assert all(len(re.findall(r"(?<!\\)\|", ln)) == 6 for ln in table_rows)  # 5 cells each


@pytest.mark.parametrize(("value", "text"), [(2.5e-05, "2.5e-05"), (0.0, "0"), (1 / 3, "0.3333"),
                                               ((1e-6, 2), "(1e-06, 2)"), (True, "True"),
                                               (None, "None"), (float("inf"), "inf")])
def test_parameter_values_are_printed_to_four_digits(value: object, text: str) -> None:
    assert devices.fmt(value) == text


def test_sphinx_roles_become_inline_code() -> None:
    text = ":class:`~memxbar.crossbar.tile.Tile` and :func:`fit`, :meth:`.pulse`, :mod:`.pulsed`"
    assert griffe_roles.plain(text) == "`Tile` and `fit`, `pulse`, `pulsed`"
    assert griffe_roles.plain(":class:`memxbar.devices.base.Device`") == (
        "`memxbar.devices.base.Device`")


def test_every_tutorial_script_runs_in_the_build_and_has_a_page_in_the_nav() -> None:
    scripts = {p.name for p in (ROOT / "docs" / "tutorials").glob("*.py")}
    assert scripts == set(tutorials.TUTORIALS.values()) | tutorials.MODULES
    nav = (ROOT / "mkdocs.yml").read_text()
    for name in tutorials.TUTORIALS:
        assert f"tutorials/{name}.md" in nav
        assert (ROOT / "docs" / "tutorials" / f"{name}.md").is_file()
    for page in re.findall(r":\s+(\S+\.md)$", nav, flags=re.M):  # every hand-written nav page
        assert page.startswith("generated/") or (ROOT / "docs" / page).is_file(), page


def test_write_if_changed_leaves_an_unchanged_file_alone(tmp_path: Path) -> None:
    path = tmp_path / "a" / "page.md"
    assert write_if_changed(path, "one")
    mtime = path.stat().st_mtime_ns
    assert not write_if_changed(path, "one")
    assert path.stat().st_mtime_ns == mtime
    assert write_if_changed(path, b"two") and path.read_text() == "two"
