"""Study results: a tidy table, plots and a Markdown report, from the storage alone.

:func:`write_report` writes into ``<output>/report/``:

- ``results.csv`` / ``results.parquet``: one row per trial x evaluation time, with the trial's
  state, seed, worker, every design parameter, its technology, the time since programming
  (``t_s``, ``t_label``), the accuracy at that time, every other metric, whether the design is
  on the Pareto front of the study's objectives, and the error of a failed trial.
- ``energy_breakdown.csv`` / ``.parquet``: one row per trial x energy component, when the
  objective returned ``breakdown["energy_per_inference"]``.
- plots, each as PNG and SVG: ``pareto`` (accuracy versus energy per inference, coloured by
  device, ADC bits or technology), ``accuracy_vs_time`` (per technology), ``energy_breakdown``
  (Pareto-optimal designs and the most accurate design of each technology), ``technology``
  (best accuracy per time and lowest cost per technology).
- ``report.md``: a short summary that embeds the plots and lists the failed designs.

A full disk or a read-only folder raises :class:`~memxbar.studies.runner.StorageError`.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pandas as pd
from optuna.trial import FrozenTrial, TrialState

from memxbar.studies.runner import load_study
from memxbar.studies.spec import METRIC_UNITS, METRICS, StudySpec, accuracy_key, time_label
from memxbar.studies.trials import StorageError, _live, storage_fault, trial_seed

PLOTS = ("pareto", "accuracy_vs_time", "energy_breakdown", "technology")
FORMATS = ("png", "svg")
COST_METRICS = tuple(m for m in METRICS if m != "accuracy")


# --------------------------------------------------------------------------- tables


def _params(t: FrozenTrial, spec: StudySpec) -> dict[str, Any]:
    """Every design parameter of a trial (stored by the runner; rebuilt if it failed early)."""
    if "params" in t.user_attrs:
        return dict(t.user_attrs["params"])
    searched = {**t.system_attrs.get("fixed_params", {}), **t.params}
    try:
        return spec.resolve({k: searched[k] for k in spec.search_space() if k in searched})
    except ValueError:
        return {**spec.fixed_params(), **searched}


def _pareto_numbers(trials: list[FrozenTrial], spec: StudySpec) -> set[int]:
    """Numbers of the complete trials that no other complete trial dominates."""
    done = [t for t in trials if t.state == TrialState.COMPLETE]
    if not done:
        return set()
    sign = np.array([-1.0 if o.sense == "maximize" else 1.0 for o in spec.objectives])
    v = np.array([t.values for t in done]) * sign  # all minimised
    keep = set()
    for i, t in enumerate(done):
        dominated = np.any(np.all(v <= v[i], axis=1) & np.any(v < v[i], axis=1))
        if not dominated:
            keep.add(t.number)
    return keep


def _error(t: FrozenTrial, retried: dict[int, int]) -> str:
    if t.state != TrialState.FAIL:
        return ""
    if "error" in t.user_attrs:
        text = str(t.user_attrs["error"])
    else:
        text = "worker stopped during the trial (no heartbeat)"
    if t.number in retried:
        text += f"; run again as trial {retried[t.number]}"
    return text


def results_table(study: optuna.Study, spec: StudySpec) -> pd.DataFrame:
    """The tidy table: one row per trial x evaluation time (see the module docstring)."""
    trials = [t for t in study.get_trials(deepcopy=False) if t.state != TrialState.WAITING]
    retried = {int(t.user_attrs["retry_of"]): t.number for t in trials
               if "retry_of" in t.user_attrs}
    pareto = _pareto_numbers(trials, spec)
    rows = []
    for t in trials:
        params = _params(t, spec)
        metrics = t.user_attrs.get("metrics", {})
        base = {
            "study": spec.name, "trial": t.number, "state": t.state.name,
            "attempt": t.user_attrs.get("attempt", 1), "retry_of": t.user_attrs.get("retry_of"),
            "seed": t.user_attrs.get("seed", spec.study.seed),
            "sampler_seed": trial_seed(spec.study.seed, t.number),
            "worker": t.user_attrs.get("worker"),
            "datetime_start": t.datetime_start, "datetime_complete": t.datetime_complete,
            "duration_s": t.user_attrs.get("duration_s"),
            **params,
            "technology": t.user_attrs.get("technology") or _technology(spec, params),
        }
        extra = {k: v for k, v in metrics.items() if not k.startswith("accuracy@")}
        for t_s in spec.evaluation.times:
            rows.append({**base, "t_s": t_s, "t_label": time_label(t_s),
                         "accuracy": metrics.get(accuracy_key(t_s), math.nan),
                         **{m: extra.get(m, math.nan) for m in COST_METRICS},
                         **{k: v for k, v in extra.items() if k not in COST_METRICS},
                         "pareto": t.number in pareto, "error": _error(t, retried)})
    columns = ["study", "trial", "state", "attempt", "retry_of", "seed", "sampler_seed",
               "worker", "datetime_start", "datetime_complete", "duration_s",
               *spec.dims(), "technology", "t_s", "t_label", "accuracy", *COST_METRICS,
               "pareto", "error"]
    df = pd.DataFrame(rows)
    if df.empty:
        return pd.DataFrame(columns=columns)
    order = [c for c in columns if c in df.columns] + [c for c in df.columns if c not in columns]
    return df[order]


def _technology(spec: StudySpec, params: dict[str, Any]) -> str | None:
    try:
        return spec.technology(params["device"])
    except (KeyError, ValueError):
        return None


def breakdown_table(study: optuna.Study) -> pd.DataFrame:
    """One row per complete trial x energy component (J) of ``breakdown.energy_per_inference``."""
    rows = []
    for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        parts = (t.user_attrs.get("breakdown") or {}).get("energy_per_inference")
        if isinstance(parts, dict):
            for name, value in parts.items():
                if isinstance(value, (int, float)) and not isinstance(value, bool):
                    rows.append({"trial": t.number, "component": str(name),
                                 "energy_J": float(value)})
    return pd.DataFrame(rows, columns=["trial", "component", "energy_J"])


# --------------------------------------------------------------------------- plots


def _main_time(spec: StudySpec) -> float:
    """Evaluation time of the (first) accuracy objective, else the last evaluation time."""
    for obj in spec.objectives:
        if obj.metric == "accuracy":
            return float(obj.time)
    return spec.evaluation.times[-1]


def _colour_by(spec: StudySpec, trials: pd.DataFrame) -> str:
    for name in ("device", "adc_bits"):
        if name in trials and trials[name].nunique() > 1:
            return name
    return "technology"


def _save(fig: Any, folder: Path, name: str) -> list[Path]:
    paths = []
    for fmt in FORMATS:
        path = folder / f"{name}.{fmt}"
        fig.savefig(path, dpi=150, bbox_inches="tight")
        paths.append(path)
    import matplotlib.pyplot as plt

    plt.close(fig)
    return paths


def _label(metric: str) -> str:
    unit = METRIC_UNITS[metric]
    return metric.replace("_", " ") + ("" if unit == "1" else f" ({unit})")


def _per_trial(df: pd.DataFrame, t_s: float) -> pd.DataFrame:
    done = df[(df["state"] == "COMPLETE") & (df["t_s"] == t_s)]
    return done.drop_duplicates("trial").set_index("trial")


def plot_pareto(df: pd.DataFrame, spec: StudySpec, folder: Path) -> list[Path]:
    """Accuracy at the objective time versus energy per inference, Pareto front marked."""
    import matplotlib.pyplot as plt

    t_main = _main_time(spec)
    d = _per_trial(df, t_main).dropna(subset=["accuracy", "energy_per_inference"])
    if d.empty:
        return []
    key = _colour_by(spec, d)
    from matplotlib.ticker import NullFormatter

    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    cmap = plt.get_cmap("tab10")
    for i, (value, group) in enumerate(d.groupby(key, sort=True)):
        ax.scatter(group["energy_per_inference"], group["accuracy"], s=28, color=cmap(i % 10),
                   label=f"{key} = {value}", alpha=0.85, edgecolors="none")
    # Pareto front of these two quantities: lowest energy for each accuracy level.
    pts = d.sort_values(["energy_per_inference", "accuracy"], ascending=[True, False])
    front, best = [], -math.inf
    for e, a in zip(pts["energy_per_inference"], pts["accuracy"], strict=True):
        if a > best:
            front.append((e, a))
            best = a
    fe, fa = zip(*front, strict=True)
    ax.step(fe, fa, where="post", color="black", lw=1.0, label="Pareto front")
    ax.scatter(fe, fa, s=70, facecolors="none", edgecolors="black", lw=1.0)
    ax.set_xscale("log")
    if d["energy_per_inference"].max() > 10 * d["energy_per_inference"].min():
        ax.xaxis.set_minor_formatter(NullFormatter())  # decades are labelled: enough
    ax.tick_params(axis="x", which="both", labelsize=7, labelrotation=30)
    ax.set_xlabel(_label("energy_per_inference"))
    ax.set_ylabel(f"accuracy at {time_label(t_main)} after programming")
    ax.set_title(f"{spec.name}: accuracy versus energy ({len(d)} designs)")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8, loc="best")
    return _save(fig, folder, "pareto")


def plot_accuracy_vs_time(df: pd.DataFrame, spec: StudySpec, folder: Path) -> list[Path]:
    """Accuracy versus time since programming: every design thin, per technology the design
    with the best accuracy at the objective time bold."""
    import matplotlib.pyplot as plt

    done = df[df["state"] == "COMPLETE"].dropna(subset=["accuracy"])
    if done.empty:
        return []
    t_main = _main_time(spec)
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    cmap = plt.get_cmap("tab10")
    for i, (tech, group) in enumerate(done.groupby("technology", sort=True)):
        colour = cmap(i % 10)
        for _, curve in group.groupby("trial"):
            curve = curve.sort_values("t_s")
            ax.plot(curve["t_s"], curve["accuracy"], color=colour, lw=0.6, alpha=0.35)
        at_main = group[group["t_s"] == t_main]
        best = int(at_main.loc[at_main["accuracy"].idxmax(), "trial"])
        curve = group[group["trial"] == best].sort_values("t_s")
        ax.plot(curve["t_s"], curve["accuracy"], color=colour, lw=2.2, marker="o", ms=4,
                label=f"{tech} (best: trial {best})")
    times = spec.evaluation.times
    if times[0] == 0.0:
        ax.set_xscale("symlog", linthresh=max(min(t for t in times if t > 0) if len(times) > 1
                                              else 1.0, 1e-9))
    else:
        ax.set_xscale("log")
    ax.set_xticks(times)
    ax.set_xticklabels([time_label(t) for t in times], rotation=30, fontsize=8)
    ax.minorticks_off()
    ax.set_xlabel("time since programming")
    ax.set_ylabel("accuracy")
    ax.set_title(f"{spec.name}: accuracy after programming, per technology")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    return _save(fig, folder, "accuracy_vs_time")


def chosen_designs(df: pd.DataFrame, spec: StudySpec) -> list[int]:
    """Trials worth a closer look: the Pareto-optimal designs and, per technology, the design
    with the best accuracy at the objective time."""
    done = df[df["state"] == "COMPLETE"]
    chosen = set(done[done["pareto"]]["trial"])
    at = _per_trial(df, _main_time(spec)).dropna(subset=["accuracy"])
    for _, group in at.groupby("technology"):
        chosen.add(int(group["accuracy"].idxmax()))
    return sorted(int(t) for t in chosen)


def plot_energy_breakdown(df: pd.DataFrame, parts: pd.DataFrame, spec: StudySpec,
                          folder: Path, limit: int = 12) -> list[Path]:
    """Stacked energy per inference by component for the chosen designs
    (:func:`chosen_designs`)."""
    import matplotlib.pyplot as plt

    if parts.empty:
        return []
    chosen = df[df["trial"].isin(chosen_designs(df, spec))].drop_duplicates("trial")
    chosen = chosen[chosen["trial"].isin(parts["trial"])]
    if chosen.empty:
        return []
    chosen = chosen.sort_values("energy_per_inference").head(limit)
    table = parts.pivot_table(index="trial", columns="component", values="energy_J",
                              aggfunc="sum").reindex(chosen["trial"]).fillna(0.0)
    searched = list(spec.search_space())
    labels = [f"#{int(r.trial)} " + ", ".join(f"{k}={getattr(r, k)}" for k in searched)
              for r in chosen.itertuples()]
    fig, ax = plt.subplots(figsize=(7.0, 0.45 * len(labels) + 1.6))
    left = np.zeros(len(labels))
    cmap = plt.get_cmap("tab20")
    for i, comp in enumerate(table.columns):
        ax.barh(labels, table[comp].to_numpy(), left=left, color=cmap(i % 20), label=comp)
        left += table[comp].to_numpy()
    ax.invert_yaxis()
    ax.set_xlabel("energy per inference (J)")
    ax.set_title(f"{spec.name}: energy breakdown of chosen designs")
    ax.tick_params(axis="y", labelsize=7)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.grid(alpha=0.3, axis="x")
    return _save(fig, folder, "energy_breakdown")


def plot_technology(df: pd.DataFrame, spec: StudySpec, folder: Path) -> list[Path]:
    """Per technology: best accuracy at each evaluation time, and the lowest value of each
    cost metric over its designs (each bar its own best design)."""
    import matplotlib.pyplot as plt

    done = df[df["state"] == "COMPLETE"]
    if done.empty:
        return []
    techs = sorted(done["technology"].dropna().unique())
    costs = [m for m in COST_METRICS if done[m].notna().any()]
    n = 1 + len(costs)
    ncols = min(n, 3)
    nrows = math.ceil(n / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.4 * ncols, 3.8 * nrows), squeeze=False)
    flat = list(axes.flat)
    for ax in flat[n:]:
        ax.set_visible(False)
    ax = flat[0]
    times = spec.evaluation.times
    width = 0.8 / len(times)
    cmap = plt.get_cmap("viridis")
    for k, t_s in enumerate(times):
        best = [done[(done["technology"] == tech) & (done["t_s"] == t_s)]["accuracy"].max()
                for tech in techs]
        bars = ax.bar(np.arange(len(techs)) + (k - (len(times) - 1) / 2) * width, best, width,
                      color=cmap(k / max(len(times) - 1, 1)), label=time_label(t_s))
        ax.bar_label(bars, fmt="%.3f", fontsize=5, rotation=90, padding=2)
    ax.set_xticks(np.arange(len(techs)))
    ax.set_xticklabels(techs, rotation=20)
    ax.set_ylim(0, 1.15)
    ax.set_ylabel("best accuracy")
    ax.set_title("accuracy after programming")
    ax.legend(fontsize=7, title="time", title_fontsize=7)
    ax.grid(alpha=0.3, axis="y")
    per_trial = done.drop_duplicates("trial")
    for ax, metric in zip(flat[1:n], costs, strict=True):
        low = [per_trial[per_trial["technology"] == tech][metric].min() for tech in techs]
        bars = ax.bar(techs, low, color=plt.get_cmap("tab10")(np.arange(len(techs)) % 10))
        ax.bar_label(bars, fmt="%.3g", fontsize=6)
        if np.nanmin(low) > 0 and np.nanmax(low) > 10 * np.nanmin(low):  # spans decades
            ax.set_yscale("log")
        ax.set_ylabel(f"lowest {_label(metric)}")
        ax.set_title(metric.replace("_", " "))
        ax.tick_params(axis="x", rotation=20)
        ax.grid(alpha=0.3, axis="y", which="both")
    fig.suptitle(f"{spec.name}: technology comparison")
    fig.tight_layout()
    return _save(fig, folder, "technology")


# --------------------------------------------------------------------------- report


def _md_table(df: pd.DataFrame) -> str:
    if df.empty:
        return "(none)\n"
    cols = list(df.columns)
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for row in df.itertuples(index=False):
        cells = [f"{v:.4g}" if isinstance(v, float) else str(v) for v in row]
        lines.append("| " + " | ".join(c.replace("|", "/") for c in cells) + " |")
    return "\n".join(lines) + "\n"


def _other_studies(study: optuna.Study, folder: Path) -> list[str]:
    """Other studies in the folder's own SQLite file (possible in a folder written before a
    second study in one output folder was refused)."""
    url = str(getattr(getattr(study._storage, "_backend", None), "url", ""))
    if url != f"sqlite:///{folder.resolve() / 'study.db'}":
        return []
    return sorted(s.study_name for s in study._storage.get_all_studies()
                  if s.study_name != study.study_name)


def _markdown(study: optuna.Study, spec: StudySpec, df: pd.DataFrame,
              plots: dict[str, list[Path]], tables: list[Path], folder: Path) -> str:
    trials = study.get_trials(deepcopy=False)
    live = _live(trials)
    count = {s: sum(t.state == s for t in live) for s in TrialState}
    others = _other_studies(study, folder)
    searched = list(spec.search_space())
    fixed = {k: v for k, v in spec.fixed_params().items() if v is not None}
    w = spec.workload
    lines = [
        f"# Study `{spec.name}`", "",
        f"- workload: {w.dataset}, model {w.model}"
        f"{' ' + str(w.model_options) if w.model_options else ''}, training recipe "
        f"{' or '.join(map(str, _values(spec.dims()['recipe'])))}, {w.training.epochs} epochs",
        f"- searched: {', '.join(searched) or 'nothing'}; sampler {spec.sampler.kind}, "
        f"budget {spec.n_trials} trials, seed {spec.study.seed}",
        f"- fixed: {', '.join(f'{k}={v}' for k, v in fixed.items())}",
        "- cost model: " + (", ".join(f"{k}={v}" for k, v in spec.cost.items())
                            or "memxbar's defaults"),
        f"- evaluation times: {', '.join(time_label(t) for t in spec.evaluation.times)}",
        "- objectives: " + ", ".join(f"{o.sense} {o.label}" for o in spec.objectives),
        f"- trials: {count[TrialState.COMPLETE]} complete, {count[TrialState.FAIL]} failed, "
        f"{count[TrialState.RUNNING] + count[TrialState.WAITING]} not finished",
        "- tables: " + ", ".join(f"[{p.name}]({p.name})" for p in tables),
    ]
    if count[TrialState.FAIL]:
        lines.append(f"- {count[TrialState.FAIL]} failed designs (see Failed trials): "
                     "`memxbar study run FILE --retry-failed` runs them again")
    if others:
        lines.append(f"- the study database also holds {', '.join(map(repr, others))}, not in "
                     "this report (one output folder should hold one study)")
    lines.append("")
    per_trial = df.drop_duplicates("trial")
    best = per_trial[per_trial["pareto"]]
    if not best.empty:
        cols = ["trial", *searched]
        values = {}
        for obj in spec.objectives:
            if obj.metric == "accuracy":
                at = df[(df["t_s"] == obj.time) & df["pareto"]].set_index("trial")["accuracy"]
                values[obj.label] = best["trial"].map(at)
            else:
                values[obj.label] = best[obj.metric]
        table = best[cols].assign(**values)
        lines += ["## Pareto-optimal designs", "", _md_table(table)]
    captions = {
        "pareto": "Accuracy versus energy per inference; the black line is the Pareto front.",
        "accuracy_vs_time": "Accuracy versus time since programming; bold: best design of "
                            "each technology at the objective time.",
        "energy_breakdown": "Energy per inference by component: the Pareto-optimal designs "
                            "and the most accurate design of each technology.",
        "technology": "Per technology: best accuracy at each time; lowest cost of each kind "
                      "(each bar is the best design for that metric, not one design).",
    }
    for name in PLOTS:
        paths = plots.get(name) or []
        if paths:
            lines += [f"## {name.replace('_', ' ').capitalize()}", "", captions[name], "",
                      f"![{name}]({paths[0].name})", f"([SVG]({paths[-1].name}))", ""]
        else:
            lines += [f"## {name.replace('_', ' ').capitalize()}", "",
                      "No data for this plot (no complete trial returned what it needs).", ""]
    failed = per_trial[per_trial["state"] == "FAIL"]
    if not failed.empty:
        lines += ["## Failed trials", "", _md_table(failed[["trial", *searched, "error"]])]
    return "\n".join(lines)


def _values(dim: Any) -> list[Any]:
    return [dim.value] if hasattr(dim, "value") else list(getattr(dim, "values", ()))


def write_report(folder: str | Path, storage: str | None = None) -> dict[str, Path]:
    """Write tables, plots and ``report.md`` for the study in output folder ``folder`` into
    ``folder/report``; ``storage`` overrides the recorded storage URL. Returns name -> path
    of every file written."""
    import matplotlib

    matplotlib.use("Agg")
    study, spec = load_study(folder, storage)
    out = Path(folder) / "report"
    try:
        return _write(study, spec, Path(folder), out)
    except OSError as e:
        what = storage_fault(e)
        if what is None:
            raise
        raise StorageError(f"study {spec.name!r}: cannot write its report: {what} (folder "
                           f"{out}); free space or make it writable, then run `memxbar study "
                           "report` again") from None


def _write(study: optuna.Study, spec: StudySpec, folder: Path, out: Path) -> dict[str, Path]:
    out.mkdir(parents=True, exist_ok=True)
    df = results_table(study, spec)
    parts = breakdown_table(study)
    written: dict[str, Path] = {}
    tables = []
    for name, table in (("results", df), ("energy_breakdown", parts)):
        if name == "energy_breakdown" and table.empty:
            continue
        for fmt in ("csv", "parquet"):
            path = out / f"{name}.{fmt}"
            if fmt == "csv":
                table.to_csv(path, index=False)
            else:
                table.to_parquet(path, index=False)
            written[f"{name}.{fmt}"] = path
            tables.append(path)
    plots = {
        "pareto": plot_pareto(df, spec, out),
        "accuracy_vs_time": plot_accuracy_vs_time(df, spec, out),
        "energy_breakdown": plot_energy_breakdown(df, parts, spec, out),
        "technology": plot_technology(df, spec, out),
    }
    for paths in plots.values():
        for p in paths:
            written[p.name] = p
    md = out / "report.md"
    md.write_text(_markdown(study, spec, df, plots, tables, folder), encoding="utf-8")
    written["report.md"] = md
    return written
