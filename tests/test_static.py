"""Static tools read the package as it is laid out: the editor-style check of issue 17.

mypy (the project's type checker, run the way an editor's language server runs it: from the
repository root, with the project's config) resolves ``memxbar.mapping.layers`` to the file
``mapping/layers/__init__.py`` and reveals the type of a class imported from it, without
running any memxbar code (``memxbar/<stage>`` are links to the top-level stage folders and
every import is absolute; README, "Package layout").
"""

import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PROBE = "from memxbar.mapping.layers import AnalogLinear\nreveal_type(AnalogLinear)\n"


def _mypy_verbose(probe: Path) -> str:
    """mypy's verbose log and messages for ``probe``. Imported modules are analysed but their
    own errors silenced (``make typecheck`` reports those); a cache of its own under
    .mypy_cache keeps a second run fast (the first one, cold, analyses torch: ~20-50 s)."""
    cmd = [sys.executable, "-m", "mypy", "--verbose", "--follow-imports=silent",
           "--no-warn-unused-configs", "--cache-dir", str(REPO / ".mypy_cache" / "test_static"),
           str(probe)]
    run = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr[-3000:]
    return run.stdout + run.stderr


def _file_of(log: str, module: str) -> Path:
    """The file mypy read for ``module`` (from its verbose log)."""
    found = re.findall(rf"^LOG:  (?:Parsing|Silencing) (\S+) \({re.escape(module)}\)$", log,
                       flags=re.MULTILINE)
    assert found, f"mypy did not resolve {module}"
    return Path(found[0]).resolve()


@pytest.mark.slow
def test_mypy_resolves_the_stage_folders_and_reveals_an_imported_class(tmp_path: Path) -> None:
    probe = tmp_path / "probe.py"
    probe.write_text(PROBE, encoding="utf-8")
    log = _mypy_verbose(probe)
    revealed = re.findall(r'probe\.py:2: note: Revealed type is "(.*)"', log)
    assert len(revealed) == 1, log[-3000:]
    # the class itself (its constructor's signature), not Any: mypy followed the import
    assert revealed[0].startswith("def (in_features: int, out_features: int")
    assert revealed[0].endswith("-> memxbar.mapping.layers.linear.AnalogLinear")
    assert _file_of(log, "memxbar.mapping.layers") == REPO / "mapping" / "layers" / "__init__.py"
    assert (_file_of(log, "memxbar.mapping.layers.linear")
            == REPO / "mapping" / "layers" / "linear.py")
    # the package's own modules, not a copy in site-packages or a build folder
    assert _file_of(log, "memxbar.errors") == REPO / "memxbar" / "errors.py"
