"""The device library page, generated from the presets (``memxbar.devices.presets``).

For every preset: its summary and source, every declared parameter (``Device.parameters()``:
name, value, unit, meaning, source) and one figure drawn by ``memxbar.devices.plots.plot_device``
(pulse response, programmed levels, drift). A figure is redrawn only when the preset's
parameters, the device or plotting code or matplotlib change (a key file beside the PNG), so
a rebuild after a docs-only change is quick. Run: ``python -m docs.gen.devices``.
"""

from __future__ import annotations

import hashlib
import math
from typing import Any

import matplotlib

from docs.gen.common import OUT, ROOT, write_if_changed
from memxbar.devices import plots, presets

IMG = OUT / "devices"
# every device model's code and the plotting code: a physics change redraws the figures
CODE = "".join(p.read_text() for p in sorted((ROOT / "devices").glob("*.py")))
N_PULSES = 200  # up, then as many down pulses, in the pulse-response panel
PHYSICS = {"pcm": "pcm.md", "rram": "rram.md", "fefet": "fefet.md", "mtj": "spintronic.md",
           "domain-wall": "spintronic.md", "measured": "measured.md"}


def fmt(value: Any) -> str:
    """A parameter value for a table cell: floats to 4 significant digits."""
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, float):
        return "0" if value == 0 else (f"{value:.4g}" if math.isfinite(value) else str(value))
    if isinstance(value, tuple):
        return "(" + ", ".join(fmt(v) for v in value) + ")"
    return str(value)


def cell(text: str) -> str:
    """Markdown table cell text: pipes escaped, no line breaks."""
    return str(text).replace("|", "\\|").replace("\n", " ")


def figure(name: str) -> None:
    """Draw the preset's figure ``IMG/<name>.png`` unless it is up to date."""
    device = presets.get(name)
    key = hashlib.sha256("\n".join([device.describe(), repr(device), CODE,
                                    matplotlib.__version__, str(N_PULSES)]).encode()).hexdigest()
    png, key_file = IMG / f"{name}.png", IMG / f"{name}.key"
    if not (png.exists() and key_file.exists() and key_file.read_text() == key):
        plots.plot_device(device, png, title=f"{name} ({type(device).__name__})",
                          n_pulses=N_PULSES, seed=0)
        key_file.write_text(key)


def section(name: str, figures: bool = True) -> list[str]:
    """The preset's heading, summary, source, figure (drawn if ``figures``) and parameters."""
    if figures:
        figure(name)
    p = presets.preset(name)
    device = p.build()
    physics = PHYSICS.get(p.technology)
    model = f"`{type(device).__module__}.{type(device).__name__}`"
    lines = [f"## {name}", "", f"**{p.summary}**", "",
             f"- technology: `{p.technology}`, cell `{device.cell_type}`, model {model}"
             + (f" ([physics](../physics/{physics}))" if physics else ""),
             f"- source: {p.source}", "",
             f"![{name}: pulse response, programmed levels, drift](devices/{name}.png)", "",
             "| parameter | value | unit | meaning | source |", "|---|---|---|---|---|"]
    for r in device.parameters():
        lines.append("| " + " | ".join(cell(x) for x in (f"`{r['name']}`", fmt(r["value"]),
                                                         r["unit"], r["doc"], r["source"])) + " |")
    return lines + [""]


def page(figures: bool = True) -> str:
    """The whole device library page (``figures=False``: the figures are not drawn)."""
    lines = ["# Device library", "",
             "Every preset of `memxbar.devices.presets`, generated from the code at each docs "
             "build: the parameters are `Device.parameters()` (each declared with `param()`: "
             "unit, meaning, source), the figures are `memxbar.devices.plots.plot_device` with "
             f"seed 0 ({N_PULSES} up then {N_PULSES} down pulses on 64 cells from `g_min`; "
             "4000 cells programmed to each level, read at t = 0 and after a day; the expected "
             "conductance of 2000 cells from 1 s to 10 years). The same page in a terminal: "
             "`memxbar devices show NAME`; the figure: `memxbar devices plot NAME --out f.png`.",
             "", "| preset | technology | summary |", "|---|---|---|"]
    for name in presets.names():
        p = presets.preset(name)
        lines.append(f"| [{name}](#{name}) | {p.technology} | {cell(p.summary)} |")
    lines.append("")
    for name in presets.names():
        lines += section(name, figures)
    return "\n".join(lines)


def main() -> None:
    IMG.mkdir(parents=True, exist_ok=True)
    write_if_changed(OUT / "device-library.md", page())


if __name__ == "__main__":
    main()
