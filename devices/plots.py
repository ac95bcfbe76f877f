"""Pictures of one device model: pulse response, programmed-level distributions, drift."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from memxbar.devices.base import Device  # noqa: E402
from memxbar.errors import ConfigError, figure_path, plain_value, seed_value  # noqa: E402

US = 1e6  # siemens -> microsiemens for axis labels
YEAR = 365.25 * 86400.0
MAX_TRACE_PULSES = 100_000  # pulses of one trace (a figure shows a few hundred)
MAX_TRACE_CELLS = 1 << 20
MAX_TRACE_VALUES = 1 << 25  # (pulses + 1) x cells of one trace: 256 MiB of float64


def _count(where: str, name: str, value: object, lo: int, hi: int) -> int:
    value = plain_value(value)
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise ConfigError(f"{where}: {name} = {value!r} is not allowed; allowed: an integer in "
                          f"[{lo}, {hi}]")
    return value


def _check_device(where: str, device: object) -> None:
    if not isinstance(device, Device):
        raise ConfigError(f"{where}: device = {device!r} is not a memxbar Device (e.g. "
                          "memxbar.devices.presets.get(name))")


def pulse_trace(device: Device, n_up: int, n_down: int, *, cells: int = 64,
                generator: torch.Generator | None = None) -> np.ndarray:
    """Conductance (S) of ``cells`` cells after each of ``n_up`` up then ``n_down`` down pulses.

    Cells start programmed at ``g_min``. Returns an array (n_up + n_down + 1, cells).
    """
    _check_device("pulse_trace", device)
    n_up = _count("pulse_trace", "n_up", n_up, 0, MAX_TRACE_PULSES)
    n_down = _count("pulse_trace", "n_down", n_down, 0, MAX_TRACE_PULSES - n_up)
    cells = _count("pulse_trace", "cells", cells, 1, MAX_TRACE_CELLS)
    if (n_up + n_down + 1) * cells > MAX_TRACE_VALUES:
        raise ConfigError(f"pulse_trace: n_up = {n_up}, n_down = {n_down}, cells = {cells} make "
                          f"{(n_up + n_down + 1) * cells} readings; allowed: (n_up + n_down + 1) "
                          f"* cells <= {MAX_TRACE_VALUES} (fewer cells or pulses)")
    state = device.program(torch.full((cells,), device.g_min, dtype=torch.float64),
                           generator=generator)
    trace = [state.g.clone()]
    for k in range(n_up + n_down):
        n = torch.full((cells,), 1 if k < n_up else -1, dtype=torch.int64)
        state = device.pulse(state, n, generator=generator)
        trace.append(state.g.clone())
    return torch.stack(trace).numpy()


def plot_device(device: Device, path: str | Path, *, title: str = "", n_pulses: int = 400,
                seed: int = 0) -> Path:
    """Three panels: pulse response, programmed distributions per level, G versus time.

    Written to ``path`` (.png, .svg or .pdf, by suffix). ``n_pulses`` up then as many down
    pulses.
    """
    _check_device("plot_device", device)
    n_pulses = _count("plot_device", "n_pulses", n_pulses, 1, MAX_TRACE_PULSES // 2)
    out = figure_path(path, "plot_device: path")
    gen = torch.Generator().manual_seed(seed_value(seed, "plot_device"))
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))

    ax = axes[0]
    tr = pulse_trace(device, n_pulses, n_pulses, generator=gen) * US
    k = np.arange(tr.shape[0])
    for j in range(min(5, tr.shape[1])):
        ax.plot(k, tr[:, j], lw=0.6, alpha=0.5)
    ax.plot(k, tr.mean(axis=1), "k", lw=1.8, label=f"mean of {tr.shape[1]} cells")
    ax.axvline(n_pulses, color="grey", ls=":", lw=1)
    ax.set(xlabel="pulse number (up, then down)", ylabel="conductance G (µS)",
           title="pulse response")
    ax.legend(loc="best", fontsize=8)

    ax = axes[1]
    n_lv = device.levels if 2 <= device.levels <= 8 else 6
    targets = torch.linspace(device.g_min, device.g_max, n_lv, dtype=torch.float64)
    cells = 4000
    state = device.program(targets.repeat_interleave(cells), generator=gen)
    g0 = device.read(state, 0.0, generator=gen).reshape(n_lv, cells) * US
    g_day = device.read(state, 86400.0, generator=gen).reshape(n_lv, cells) * US
    bins = np.linspace(min(g0.min().item(), g_day.min().item()),
                       max(g0.max().item(), g_day.max().item()), 120)
    for i in range(n_lv):
        color = f"C{i}"
        ax.hist(g0[i].numpy(), bins=bins, color=color, alpha=0.55,
                label="t = 0" if i == 0 else None)
        ax.hist(g_day[i].numpy(), bins=bins, color=color, histtype="step", lw=1.2,
                label="t = 1 day" if i == 0 else None)
        ax.axvline(targets[i] * US, color=color, ls=":", lw=0.8)
    ax.set(xlabel="conductance G (µS)", ylabel="cells",
           title=f"programmed levels ({cells} cells each; dotted: target)")
    ax.legend(fontsize=8)

    ax = axes[2]
    t = np.logspace(0, np.log10(10 * YEAR), 60)
    for i in np.unique(np.linspace(0, n_lv - 1, 4).round().astype(int)):
        st = device.program(torch.full((2000,), float(targets[i]), dtype=torch.float64),
                            generator=gen)
        g = np.stack([device.read_mean(st, float(tt)).numpy() for tt in t]) * US
        lo, med, hi = np.percentile(g, [10, 50, 90], axis=1)
        ax.semilogx(t, med, color=f"C{i}", label=f"target {targets[i] * US:.3g} µS")
        ax.fill_between(t, lo, hi, color=f"C{i}", alpha=0.2)
    for label, sec in (("1 h", 3600), ("1 day", 86400), ("1 y", YEAR), ("10 y", 10 * YEAR)):
        ax.axvline(sec, color="grey", lw=0.5, ls=":")
        ax.text(sec, 0.99, label, fontsize=7, ha="center", va="top",
                transform=ax.get_xaxis_transform())
    ax.set(xlabel="time since programming t (s)", ylabel="expected conductance (µS)",
           title="drift / retention (median, 10-90 %)")
    ax.legend(fontsize=8)

    fig.suptitle(title or f"{type(device).__name__} ({device.technology})")
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out
