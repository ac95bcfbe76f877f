"""The figures of a study report, ready for a paper.

Each figure is written as PNG (150 dpi), SVG (text kept as text, ``svg.fonttype = "none"``)
and PDF (TrueType fonts embedded). Conventions:

- engineering units: accuracy in %, energies in fJ..mJ, times in ps..s, areas in µm² or mm²
  (the prefix that puts the median value between 1 and 1000);
- the objectives decide the main plot (:func:`plot_objectives`): two give a scatter with the
  Pareto front, three or more every pair of objectives in panels, one the objective against
  the designs;
- every searched field is visible: the first by colour, the second by marker, the third by
  size (the rest are listed and the Pareto-optimal points numbered, see the report's table);
- accuracy carries 95 % confidence intervals over the programming repeats (error bars,
  bands) whenever a design was evaluated more than once;
- colours from the Okabe-Ito palette (Okabe & Ito 2008, "Color Universal Design"), which
  stays distinguishable for colour-blind readers; energy breakdowns show only the non-zero
  components, as shares of the total.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from memxbar.studies.spec import METRICS, StudySpec, time_label

FORMATS = ("png", "svg", "pdf")
RC = {"svg.fonttype": "none", "pdf.fonttype": 42, "font.size": 9, "axes.titlesize": 9,
      "axes.labelsize": 9, "legend.fontsize": 7, "xtick.labelsize": 8, "ytick.labelsize": 8,
      "legend.title_fontsize": 7, "axes.formatter.useoffset": False}
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442",
           "#000000")  # Okabe & Ito 2008
HATCHES = ("", "//", "..", "xx", "\\\\", "++", "oo", "--")
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*", "<", ">")
MINOR_SHARE = 0.5  # %: energy components below this in every design are drawn as one
SIZES = (14.0, 90.0)  # points², smallest and largest marker of a size channel
NAMES = {"accuracy": "accuracy", "energy_per_inference": "energy per inference",
         "latency": "latency", "area": "area", "programming_energy": "programming energy"}
_BASE = {"energy_per_inference": "J", "latency": "s", "programming_energy": "J", "area": "m²"}
_PREFIXES = ((1e-15, "f"), (1e-12, "p"), (1e-9, "n"), (1e-6, "µ"), (1e-3, "m"), (1.0, ""))
_AREA = ((1e-12, "µm²"), (1e-6, "mm²"), (1.0, "m²"))


# --------------------------------------------------------------------------- units


def unit_scale(metric: str, values: Any) -> tuple[float, str]:
    """``(factor, unit)``: multiply values of ``metric`` by factor to show them in unit (% for
    accuracy; the SI prefix that puts the median of the non-zero magnitudes in [1, 1000))."""
    if metric == "accuracy" or metric.startswith("accuracy"):
        return 100.0, "%"
    base = _BASE.get(metric)
    if base is None:
        return 1.0, ""
    v = np.abs(np.asarray(values, dtype=float))
    v = v[np.isfinite(v) & (v > 0)]
    if not len(v):
        return 1.0, base
    median = float(np.median(v))
    if metric == "area":  # mm² down to 0.001 mm², the unit of chip areas; then µm²
        size, unit = next(((p, u) for p, u in reversed(_AREA) if median >= 1e-3 * p),
                          _AREA[0])
        return 1.0 / size, unit
    size, unit = _PREFIXES[0][0], f"{_PREFIXES[0][1]}{base}"
    for p, prefix in _PREFIXES:
        if median >= p:
            size, unit = p, f"{prefix}{base}"
    return 1.0 / size, unit


def axis_label(metric: str, unit: str, t_s: float | None = None) -> str:
    """``"accuracy at 1 y (%)"``, ``"energy per inference (pJ)"``."""
    name = NAMES.get(metric, metric.replace("_", " "))
    if t_s is not None:
        name += f" at {time_label(t_s)}"
    return f"{name} ({unit})" if unit else name


def format_value(metric: str, value: float) -> str:
    """One value in engineering units (``"12.3 pJ"``, ``"91.2 %"``)."""
    factor, unit = unit_scale(metric, [value])
    return f"{value * factor:.3g} {unit}".strip()


# --------------------------------------------------------------------------- common


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    params: Any = plt.rcParams  # typed with literal keys only
    params.update(RC)
    return plt


def save(fig: Any, folder: Path, name: str) -> list[Path]:
    """Write ``fig`` as PNG, SVG and PDF; returns the paths (PNG first)."""
    paths = []
    for fmt in FORMATS:
        path = folder / f"{name}.{fmt}"
        fig.savefig(path, dpi=150, bbox_inches="tight")
        paths.append(path)
    _plt().close(fig)
    return paths


def colours(n: int) -> list[Any]:
    """``n`` distinguishable colours: Okabe-Ito, then tab20 beyond eight."""
    if n <= len(PALETTE):
        return list(PALETTE[:n])
    cmap = _plt().get_cmap("tab20")
    return [cmap(i % 20) for i in range(n)]


def ci_errors(d: pd.DataFrame, factor: float = 100.0,
              column: str = "accuracy") -> np.ndarray | None:
    """Asymmetric error bars (2, N) from the ``<column>_ci_low/high`` columns around
    ``column``, scaled; None when no design has an interval."""
    lo, hi = f"{column}_ci_low", f"{column}_ci_high"
    if lo not in d.columns or not d[lo].notna().any():
        return None
    low = (d[column] - d[lo]).fillna(0.0).clip(lower=0.0)
    high = (d[hi] - d[column]).fillna(0.0).clip(lower=0.0)
    return np.vstack([low.to_numpy(), high.to_numpy()]) * factor


def _short(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


class Encoding:
    """How the searched fields show on a scatter: colour, marker, size (in that order, for
    the fields that vary among the plotted designs); the rest are listed in ``others``."""

    def __init__(self, spec: StudySpec, d: pd.DataFrame) -> None:
        fields = [k for k in spec.search_space() if k in d and d[k].nunique(dropna=False) > 1]
        self.colour = fields[0] if fields else None
        self.marker = fields[1] if len(fields) > 1 else None
        self.size = fields[2] if len(fields) > 2 else None
        self.others = fields[3:]
        self.values = {k: sorted(d[k].dropna().unique(), key=_order) for k in fields[:3]}
        n = len(self.values.get(self.colour, [])) if self.colour else 0
        self.continuous = (self.colour is not None and n > len(PALETTE)
                           and all(_order(v)[0] == 0 for v in self.values[self.colour]))
        self._colours = colours(n) if n else []

    def colour_of(self, value: Any) -> Any:
        if self.colour is None:
            return PALETTE[0]
        values = self.values[self.colour]
        if self.continuous:
            lo, hi = float(min(values)), float(max(values))
            return _plt().get_cmap("viridis")((float(value) - lo) / (hi - lo or 1.0))
        return self._colours[values.index(value)]

    def marker_of(self, value: Any) -> str:
        if self.marker is None:
            return "o"
        return MARKERS[self.values[self.marker].index(value) % len(MARKERS)]

    def size_of(self, value: Any) -> float:
        if self.size is None:
            return 30.0
        values = self.values[self.size]
        k = values.index(value)
        return SIZES[0] + (SIZES[1] - SIZES[0]) * k / max(len(values) - 1, 1)

    def draw(self, ax: Any, d: pd.DataFrame, x: np.ndarray, y: np.ndarray,
             yerr: np.ndarray | None = None, xerr: np.ndarray | None = None) -> None:
        """Scatter the designs ``d`` at ``(x, y)`` (already scaled), error bars first."""
        if yerr is not None or xerr is not None:
            ax.errorbar(x, y, yerr=yerr, xerr=xerr, fmt="none", ecolor="0.55", elinewidth=0.7,
                        capsize=1.5, zorder=1)
        for i, (_, row) in enumerate(d.iterrows()):
            ax.scatter(x[i], y[i], s=self.size_of(row[self.size]) if self.size else 30.0,
                       marker=self.marker_of(row[self.marker]) if self.marker else "o",
                       color=self.colour_of(row[self.colour]) if self.colour else PALETTE[0],
                       edgecolors="white", linewidths=0.4, zorder=2, alpha=0.9)

    def legend(self, ax: Any, extra: Sequence[Any] = ()) -> None:
        """Legends of the channels (one block per field) and ``extra`` handles."""
        from matplotlib.lines import Line2D

        handles: list[Any] = list(extra)
        for channel, field in (("colour", self.colour), ("marker", self.marker),
                               ("size", self.size)):
            if field is None or (channel == "colour" and self.continuous):
                continue
            handles.append(Line2D([], [], linestyle="none", label=f"{field}:"))
            for v in self.values[field]:
                kw: dict[str, Any] = dict(marker="o", color="0.4", markersize=5.5,
                                          linestyle="none", label=f"  {_short(v)}")
                if channel == "colour":
                    kw["color"] = self.colour_of(v)
                elif channel == "marker":
                    kw["marker"] = self.marker_of(v)
                else:
                    kw["markersize"] = math.sqrt(self.size_of(v))
                handles.append(Line2D([], [], **kw))
        if self.colour is not None and self.continuous:
            import matplotlib as mpl

            values = self.values[self.colour]
            norm = mpl.colors.Normalize(float(min(values)), float(max(values)))
            bar = ax.figure.colorbar(mpl.cm.ScalarMappable(norm, "viridis"), ax=ax, pad=0.02)
            bar.set_label(self.colour)
        title = f"also searched: {', '.join(self.others)}" if self.others else None
        if handles:
            ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0),
                      frameon=False, title=title, handletextpad=0.3, borderaxespad=0.0)


def _order(value: Any) -> tuple[int, Any]:
    numeric = isinstance(value, (int, float, np.number)) and not isinstance(value, bool)
    return (0, float(value)) if numeric else (1, str(value))


def _log_if_wide(ax: Any, values: np.ndarray, axis: str) -> None:
    """Log scale when the values span more than a decade, ticks as plain numbers."""
    v = values[np.isfinite(values) & (values > 0)]
    if len(v) and v.min() > 0 and v.max() > 10 * v.min():
        from matplotlib.ticker import FuncFormatter, NullFormatter

        (ax.set_xscale if axis == "x" else ax.set_yscale)("log")
        which = ax.xaxis if axis == "x" else ax.yaxis
        which.set_major_formatter(FuncFormatter(lambda x, _: f"{x:g}"))
        if v.max() < 1e3 * v.min():  # a few decades: label 2x and 5x too
            which.set_minor_formatter(FuncFormatter(
                lambda x, _: f"{x:g}" if f"{x:.0e}"[0] in "25" else ""))
        else:
            which.set_minor_formatter(NullFormatter())


# --------------------------------------------------------------------------- objectives


def _objective_columns(spec: StudySpec, d: pd.DataFrame) -> list[tuple[str, str, Any]]:
    """Per objective: (column of the per-trial table, metric, time)."""
    out = []
    for obj in spec.objectives:
        column = f"accuracy@{obj.time}" if obj.metric == "accuracy" else obj.metric
        out.append((column, obj.metric, obj.time))
    return out


def per_trial_objectives(df: pd.DataFrame, spec: StudySpec) -> pd.DataFrame:
    """One row per complete trial: its fields, cost metrics, ``pareto``, and per accuracy
    objective the columns ``accuracy@<t>``, ``accuracy@<t>_ci_low`` and ``_ci_high``."""
    done = df[df["state"] == "COMPLETE"]
    if done.empty:
        return done
    base = done.drop_duplicates("trial").set_index("trial")
    for obj in spec.objectives:
        if obj.metric != "accuracy":
            continue
        at = done[done["t_s"] == obj.time].set_index("trial")
        base[f"accuracy@{obj.time}"] = at["accuracy"]
        for side in ("low", "high"):
            column = f"accuracy_ci_{side}"
            base[f"accuracy@{obj.time}_ci_{side}"] = at[column] if column in at else math.nan
    return base.reset_index()


def plot_objectives(df: pd.DataFrame, spec: StudySpec, folder: Path) -> list[Path]:
    """The designs in the study's objectives: two objectives, a scatter with the Pareto front;
    three or more, every pair in its own panel (Pareto-optimal designs ringed); one, the
    objective of every design, sorted."""
    plt = _plt()
    d = per_trial_objectives(df, spec)
    cols = _objective_columns(spec, d)
    if d.empty or any(c not in d or d[c].isna().all() for c, _, _ in cols):
        return []
    d = d.dropna(subset=[c for c, _, _ in cols]).reset_index(drop=True)
    enc = Encoding(spec, d)
    senses = [o.sense for o in spec.objectives]
    if len(cols) == 1:
        fig, ax = plt.subplots(figsize=(6.0, 3.6))
        column, metric, t = cols[0]
        order = d.sort_values(column, ascending=senses[0] == "minimize").reset_index(drop=True)
        factor, unit = unit_scale(metric, order[column])
        x = np.arange(len(order), dtype=float)
        enc.draw(ax, order, x, order[column].to_numpy() * factor,
                 yerr=_objective_err(order, metric, t, factor))
        ax.set_xticks(x)
        ax.set_xticklabels([f"#{int(n)}" for n in order["trial"]], rotation=90, fontsize=6)
        ax.set_xlabel("design (trial), best first")
        ax.set_ylabel(axis_label(metric, unit, t))
        enc.legend(ax)
        ax.grid(alpha=0.3)
        ax.set_title(f"{spec.name}: {len(order)} designs")
        return save(fig, folder, "objectives")
    pairs = [(1, 0)] if len(cols) == 2 else [(j, i) for i in range(len(cols))
                                             for j in range(i + 1, len(cols))]
    if len(cols) == 2 and cols[1][1] == "accuracy" and cols[0][1] != "accuracy":
        pairs = [(0, 1)]  # accuracy on the y axis
    n = len(pairs)
    ncols = min(n, 3)
    nrows = math.ceil(n / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.0 * ncols + 1.8, 3.3 * nrows),
                             squeeze=False)
    for ax in list(axes.flat)[n:]:
        ax.set_visible(False)
    ringed = d[d["pareto"]]
    for ax, (xi, yi) in zip(axes.flat, pairs, strict=False):
        (xc, xm, xt), (yc, ym, yt) = cols[xi], cols[yi]
        fx, ux = unit_scale(xm, d[xc])
        fy, uy = unit_scale(ym, d[yc])
        x, y = d[xc].to_numpy() * fx, d[yc].to_numpy() * fy
        enc.draw(ax, d, x, y, yerr=_objective_err(d, ym, yt, fy),
                 xerr=_objective_err(d, xm, xt, fx))
        _log_if_wide(ax, x, "x")
        _log_if_wide(ax, y, "y")
        if len(cols) == 2:
            front = _front(x, y, senses[xi], senses[yi])
            where = "post" if (senses[xi] == "minimize") == (senses[yi] == "maximize") else "pre"
            ax.step(x[front], y[front], where=where, color="black", lw=0.9, zorder=3)
        ax.scatter(ringed[xc] * fx, ringed[yc] * fy, s=75, facecolors="none",
                   edgecolors="black", lw=0.9, zorder=4)
        if enc.others or len(cols) > 2:
            for _, r in ringed.iterrows():
                ax.annotate(f"{int(r['trial'])}", (r[xc] * fx, r[yc] * fy), fontsize=6,
                            xytext=(3, 3), textcoords="offset points")
        ax.set_xlabel(axis_label(xm, ux, xt))
        ax.set_ylabel(axis_label(ym, uy, yt))
        ax.grid(alpha=0.3, which="both")
    from matplotlib.lines import Line2D

    ring = Line2D([], [], marker="o", markerfacecolor="none", markeredgecolor="black",
                  linestyle="-" if len(cols) == 2 else "none", color="black", markersize=8,
                  label="Pareto-optimal" + (" (front)" if len(cols) == 2 else ""))
    enc.legend(list(axes.flat)[min(ncols, n) - 1], [ring])
    has_ci = any(m == "accuracy" and _objective_err(d, m, t, 1.0) is not None
                 for _, m, t in cols)
    fig.suptitle(f"{spec.name}: {len(d)} designs, {len(ringed)} Pareto-optimal"
                 + (" (error bars: 95 % CI over repeats)" if has_ci else ""), fontsize=9)
    fig.tight_layout()
    return save(fig, folder, "objectives")


def _objective_err(d: pd.DataFrame, metric: str, t: Any, factor: float) -> np.ndarray | None:
    return ci_errors(d, factor, f"accuracy@{t}") if metric == "accuracy" else None


def _front(x: np.ndarray, y: np.ndarray, sx: str, sy: str) -> np.ndarray:
    """Indices of the points no other point beats in both coordinates, sorted by x."""
    v = np.column_stack([x if sx == "minimize" else -x, y if sy == "minimize" else -y])
    keep = [i for i in range(len(v)) if not np.any(np.all(v <= v[i], axis=1)
                                                  & np.any(v < v[i], axis=1))]
    return np.array(sorted(keep, key=lambda i: x[i]), dtype=int)


# --------------------------------------------------------------------------- accuracy in time


def _time_axis(ax: Any, times: Sequence[float]) -> None:
    if times[0] == 0.0:
        positive = [t for t in times if t > 0]
        ax.set_xscale("symlog", linthresh=max(min(positive) if positive else 1.0, 1e-9))
    else:
        ax.set_xscale("log")
    ax.set_xticks(list(times))
    ax.set_xticklabels([time_label(t) for t in times], rotation=30)
    ax.minorticks_off()
    ax.set_xlabel("time since programming")


def plot_accuracy_vs_time(df: pd.DataFrame, spec: StudySpec, folder: Path,
                          main_time: float) -> list[Path]:
    """Accuracy (%) versus time since programming: every design thin, per technology the most
    accurate design at ``main_time`` bold with its 95 % confidence band; the digitally trained
    model's accuracy dotted."""
    plt = _plt()
    done = df[df["state"] == "COMPLETE"].dropna(subset=["accuracy"])
    if done.empty:
        return []
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    techs = sorted(done["technology"].dropna().unique())
    for colour, tech in zip(colours(len(techs)), techs, strict=True):
        group = done[done["technology"] == tech]
        for _, curve in group.groupby("trial"):
            curve = curve.sort_values("t_s")
            ax.plot(curve["t_s"], curve["accuracy"] * 100, color=colour, lw=0.6, alpha=0.3)
        at_main = group[group["t_s"] == main_time]
        if at_main.empty:
            continue
        best = int(at_main.loc[at_main["accuracy"].idxmax(), "trial"])
        curve = group[group["trial"] == best].sort_values("t_s")
        ax.plot(curve["t_s"], curve["accuracy"] * 100, color=colour, lw=2.0, marker="o", ms=3.5,
                label=f"{tech} (best: trial {best})")
        if "accuracy_ci_low" in curve and curve["accuracy_ci_low"].notna().any():
            ax.fill_between(curve["t_s"], curve["accuracy_ci_low"] * 100,
                            curve["accuracy_ci_high"] * 100, color=colour, alpha=0.2, lw=0)
    if "accuracy_digital" in done and done["accuracy_digital"].notna().any():
        ax.axhline(float(done["accuracy_digital"].max()) * 100, color="black", ls=":", lw=1.0,
                   label="digital (software) model")
    _time_axis(ax, spec.evaluation.times)
    ax.set_ylabel("accuracy (%)")
    ax.set_title(f"{spec.name}: accuracy after programming"
                 + (" (bands: 95 % CI over repeats)" if spec.evaluation.repeats > 1 else
                    " (one draw per design: no confidence band)"))
    ax.grid(alpha=0.3)
    ax.legend(loc="best")
    return save(fig, folder, "accuracy_vs_time")


# --------------------------------------------------------------------------- energy breakdown


def plot_energy_breakdown(chosen: pd.DataFrame, parts: pd.DataFrame, spec: StudySpec,
                          folder: Path, limit: int = 12) -> list[Path]:
    """Energy per inference of the ``chosen`` designs by component, as shares (%) of each
    design's total (printed at the bar's end); components that are zero in every chosen design
    are left out."""
    plt = _plt()
    chosen = chosen[chosen["trial"].isin(parts["trial"])]
    if chosen.empty:
        return []
    chosen = chosen.sort_values("energy_per_inference").head(limit)
    table = parts.pivot_table(index="trial", columns="component", values="energy_J",
                              aggfunc="sum").reindex(chosen["trial"]).fillna(0.0)
    table = table.loc[:, (table > 0).any(axis=0)]
    table = table[table.sum(axis=0).sort_values(ascending=False).index]
    if table.empty:
        return []
    totals = table.sum(axis=1)
    share = table.div(totals.where(totals > 0, 1.0), axis=0) * 100
    small = [c for c in share.columns if (share[c] < MINOR_SHARE).all()]
    if len(small) > 1:  # too thin to see: one bar segment, named in the legend
        share[f"other ({', '.join(small)}; each < {MINOR_SHARE:g} %)"] = share[small].sum(axis=1)
        share = share.drop(columns=small)
    searched = [k for k in spec.search_space() if k in chosen and chosen[k].nunique() > 1]
    labels = [f"#{int(r['trial'])} " + ", ".join(f"{k}={_short(r[k])}" for k in searched)
              for _, r in chosen.iterrows()]
    fig, ax = plt.subplots(figsize=(7.6, 0.42 * len(labels) + 1.5))
    left = np.zeros(len(labels))
    for i, comp in enumerate(share.columns):
        ax.barh(labels, share[comp].to_numpy(), left=left, color=PALETTE[i % len(PALETTE)],
                hatch=HATCHES[(i // len(PALETTE)) % len(HATCHES)], edgecolor="white",
                linewidth=0.5, label=comp)
        left += share[comp].to_numpy()
    for k, total in enumerate(totals):
        ax.text(101, k, format_value("energy_per_inference", float(total)), va="center",
                fontsize=7)
    ax.set_xlim(0, 100)
    ax.invert_yaxis()
    ax.set_xlabel("share of the energy per inference (%); total at the right")
    ax.set_title(f"{spec.name}: energy breakdown of chosen designs")
    ax.tick_params(axis="y", labelsize=7)
    ax.legend(loc="upper left", bbox_to_anchor=(1.12, 1.0), frameon=False)
    ax.grid(alpha=0.3, axis="x")
    return save(fig, folder, "energy_breakdown")


# --------------------------------------------------------------------------- technologies


def plot_technology(df: pd.DataFrame, spec: StudySpec, folder: Path) -> list[Path]:
    """Per technology: the best accuracy (%) at each evaluation time with its 95 % CI, and
    the lowest value of each cost metric (each bar its own best design), engineering units."""
    plt = _plt()
    done = df[df["state"] == "COMPLETE"]
    if done.empty:
        return []
    techs = sorted(done["technology"].dropna().unique())
    costs = [m for m in METRICS if m != "accuracy" and m in done and done[m].notna().any()]
    n = 1 + len(costs)
    ncols = min(n, 3)
    nrows = math.ceil(n / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.4 * ncols, 3.6 * nrows), squeeze=False)
    flat = list(axes.flat)
    for ax in flat[n:]:
        ax.set_visible(False)
    ax = flat[0]
    times = spec.evaluation.times
    width = 0.8 / len(times)
    cmap = plt.get_cmap("viridis")
    lows = []
    for k, t_s in enumerate(times):
        best: list[float] = []
        err: list[list[float]] = [[], []]
        for tech in techs:
            rows = done[(done["technology"] == tech) & (done["t_s"] == t_s)].dropna(
                subset=["accuracy"])
            if rows.empty:
                best.append(math.nan)
                err[0].append(0.0)
                err[1].append(0.0)
                continue
            r = rows.loc[rows["accuracy"].idxmax()]
            best.append(r["accuracy"] * 100)
            lo = r.get("accuracy_ci_low", math.nan)
            hi = r.get("accuracy_ci_high", math.nan)
            err[0].append(0.0 if pd.isna(lo) else max(0.0, r["accuracy"] - lo) * 100)
            err[1].append(0.0 if pd.isna(hi) else max(0.0, hi - r["accuracy"]) * 100)
            lows.append(best[-1] - err[0][-1])
        ax.bar(np.arange(len(techs)) + (k - (len(times) - 1) / 2) * width, best, width,
               yerr=err, capsize=1.5, error_kw={"elinewidth": 0.7},
               color=cmap(k / max(len(times) - 1, 1)), label=time_label(t_s))
    ax.set_xticks(np.arange(len(techs)))
    ax.set_xticklabels(techs, rotation=20)
    if lows:
        ax.set_ylim(max(0.0, min(lows) - 5.0), 100.0)
    ax.set_ylabel("best accuracy (%)")
    ax.set_title("accuracy after programming")
    ax.legend(title="time since programming", ncols=len(times), loc="upper center",
              bbox_to_anchor=(0.5, -0.2), frameon=False)
    ax.grid(alpha=0.3, axis="y")
    per_trial = done.drop_duplicates("trial")
    for ax, metric in zip(flat[1:n], costs, strict=True):
        low = np.array([per_trial[per_trial["technology"] == tech][metric].min()
                        for tech in techs], dtype=float)
        factor, unit = unit_scale(metric, low)
        bars = ax.bar(techs, low * factor, color=colours(len(techs)))
        ax.bar_label(bars, fmt="%.3g", fontsize=6)
        _log_if_wide(ax, low, "y")
        ax.set_ylabel(f"lowest {axis_label(metric, unit)}")
        ax.set_title(NAMES[metric])
        ax.tick_params(axis="x", rotation=20)
        ax.grid(alpha=0.3, axis="y")
    fig.suptitle(f"{spec.name}: technology comparison (error bars: 95 % CI over repeats)")
    fig.tight_layout()
    return save(fig, folder, "technology")


# --------------------------------------------------------------------------- sensitivity


def sweep_curves(df: pd.DataFrame, spec: StudySpec, t_s: float) -> dict[str, pd.DataFrame]:
    """For a ``sweep`` study: per searched field, the designs that vary it with every other
    field at the reference (the first design), at time ``t_s``, sorted by the field's value."""
    if spec.sampler.kind != "sweep":
        return {}
    done = df[(df["state"] == "COMPLETE") & (df["t_s"] == t_s)].dropna(subset=["accuracy"])
    space = list(spec.search_space())
    if done.empty or not space:
        return {}
    reference = spec.grid()[0]
    out = {}
    for field in space:
        rest = [k for k in space if k != field]
        mask = np.ones(len(done), dtype=bool)
        for k in rest:
            mask &= _equal(done[k], reference[k])
        curve = done[mask].drop_duplicates(field)
        if len(curve) > 1:
            out[field] = curve.sort_values(field, key=lambda s: s.map(_order)).reset_index(
                drop=True)
    return out


def _equal(column: pd.Series, value: Any) -> np.ndarray:
    if isinstance(value, float):
        return np.isclose(column.astype(float), value, rtol=1e-9, atol=0.0)
    return (column == value).to_numpy()


def plot_sensitivity(curves: dict[str, pd.DataFrame], spec: StudySpec, folder: Path,
                     t_s: float, target: float | None, digital: float | None) -> list[Path]:
    """Accuracy (%) at ``t_s`` against each swept field, the others at the reference design
    (star), with the 95 % confidence band over repeats; ``target`` dashed, the digital
    model's accuracy dotted."""
    plt = _plt()
    if not curves:
        return []
    n = len(curves)
    ncols = min(n, 3)
    nrows = math.ceil(n / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.0 * ncols, 3.3 * nrows), squeeze=False,
                             sharey=True)
    for ax in list(axes.flat)[n:]:
        ax.set_visible(False)
    reference = spec.grid()[0]
    for ax, (field, curve) in zip(axes.flat, curves.items(), strict=False):
        y = curve["accuracy"].to_numpy() * 100
        numeric = all(_order(v)[0] == 0 for v in curve[field])
        x = curve[field].to_numpy(dtype=float) if numeric else np.arange(len(curve), dtype=float)
        if "accuracy_ci_low" in curve and curve["accuracy_ci_low"].notna().any():
            ax.fill_between(x, curve["accuracy_ci_low"] * 100, curve["accuracy_ci_high"] * 100,
                            color=PALETTE[0], alpha=0.25, lw=0, label="95 % CI")
        ax.plot(x, y, color=PALETTE[0], marker="o", ms=4, lw=1.5, label="mean over repeats")
        ref = [i for i, v in enumerate(curve[field]) if v == reference[field]]
        ax.plot(x[ref], y[ref], marker="*", ms=11, color=PALETTE[1], linestyle="none",
                label="reference design")
        if target is not None:
            ax.axhline(target * 100, color=PALETTE[3], ls="--", lw=1.0, label="target")
        if digital is not None:
            ax.axhline(digital * 100, color="black", ls=":", lw=1.0, label="digital model")
        if numeric:
            _log_if_wide(ax, x, "x")
            if ax.get_xscale() == "log":  # label the values tried, not the decades
                ax.set_xticks(x)
                ax.set_xticklabels([_short(v) for v in curve[field]])
                ax.minorticks_off()
        else:
            ax.set_xticks(x)
            ax.set_xticklabels([str(v) for v in curve[field]], rotation=20)
        ax.set_xlabel(field)
        ax.grid(alpha=0.3, which="both")
    for row in axes:
        row[0].set_ylabel(f"accuracy at {time_label(t_s)} (%)")
    list(axes.flat)[0].legend(loc="lower left")
    others = ", ".join(f"{k}={_short(v)}" for k, v in reference.items())
    fig.suptitle(f"{spec.name}: one field at a time; reference {others}", fontsize=8)
    fig.tight_layout()
    return save(fig, folder, "sensitivity")


def requirement(curve: pd.DataFrame, field: str, target: float) -> str:
    """The values of ``field`` in a sweep curve whose accuracy's lower 95 % bound (or mean,
    with one repeat) reaches ``target``, in words."""
    low = curve["accuracy_ci_low"] if "accuracy_ci_low" in curve and curve[
        "accuracy_ci_low"].notna().all() else curve["accuracy"]
    ok = [v for v, a in zip(curve[field], low, strict=True) if a >= target]
    if not ok:
        return f"no value of {field} tried reaches it"
    if len(ok) == len(curve):
        return f"every value of {field} tried reaches it"
    return f"{field} in {{{', '.join(_short(v) for v in ok)}}} reaches it"
