"""API reference pages, one per stage, listing every module of the stage found on disk.

Each page holds one mkdocstrings block per module, so a new module is documented without
editing the docs. Run: ``python -m docs.gen.api``.
"""

from __future__ import annotations

from docs.gen.common import OUT, ROOT, write_if_changed

STAGES = {
    "devices": "One memory cell, vectorized over any tensor shape: the device contract "
               "(`program` / `read` / `pulse`), every technology and the presets.",
    "crossbar": "One array and its periphery: IR-drop solve, ngspice check, weight encodings, "
                "ADC/DAC, the tile and the cost model.",
    "mapping": "A PyTorch model onto arrays: tiling, analog layers, conversion, calibration, "
               "drift compensation, mapping and cost reports.",
    "training": "Weights that survive the hardware: digital, hardware-aware and online "
                "training, program-and-verify.",
    "studies": "Sweeps and searches from a study file, stored in an Optuna RDB storage, and "
               "their reports.",
}
FACE = [("memxbar", True), ("memxbar.errors", False), ("memxbar.cli", False)]


def modules(stage: str) -> list[tuple[str, bool]]:
    """(dotted name, is a package) of every module of ``stage``, in name order."""
    found = []
    for path in (ROOT / stage).rglob("*.py"):
        parts = path.relative_to(ROOT).with_suffix("").parts
        package = parts[-1] == "__init__"
        found.append((".".join(("memxbar", *(parts[:-1] if package else parts))), package))
    return sorted(found)


def page(title: str, intro: str, names: list[tuple[str, bool]]) -> str:
    """One API page: a mkdocstrings block per module; a package shows its docstring only (its
    re-exports are documented in the modules that define them)."""
    lines = [f"# API: {title}", "", intro, "",
             "Generated from the docstrings (mkdocstrings), every module of the stage.", ""]
    for name, package in names:
        lines += [f"::: {name}"] + (["    options:", "      members: false"] if package else [])
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    for stage, intro in STAGES.items():
        write_if_changed(OUT / "api" / f"{stage}.md", page(stage, intro, modules(stage)))
    write_if_changed(OUT / "api" / "memxbar.md",
                     page("memxbar", "The package face: lazy re-exports, the one error type "
                          "and the command line.", FACE))


if __name__ == "__main__":
    main()
