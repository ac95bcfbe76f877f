"""Study results: a tidy table, plots and a Markdown report, from the storage alone.

:func:`write_report` writes into ``<output>/report/``:

- ``results.csv`` / ``results.parquet``: one row per trial x evaluation time, with the trial's
  state, seed, worker, every design parameter (searched device fields as ``device.<field>``),
  its technology, the time since programming (``t_s``, ``t_label``), the mean accuracy at that
  time with its spread over the programming repeats (``accuracy_std``, ddof 1; ``repeats``;
  ``accuracy_ci_low`` / ``accuracy_ci_high``, the 95 % confidence interval of the mean,
  Student's t), every other metric (``test_examples``: the test-set size), whether the design
  is on the Pareto front of the study's objectives, and the error of a failed trial.
- ``summary.csv`` / ``.parquet``: one row per complete trial x metric (x time): mean, std, n
  and the 95 % interval.
- ``energy_breakdown.csv`` / ``.parquet``: one row per trial x energy component, when the
  objective returned ``breakdown["energy_per_inference"]``.
- figures (:mod:`.figures`), each as PNG, SVG and PDF: ``objectives`` (the designs in the
  study's objectives, Pareto front), ``accuracy_vs_time`` (per technology, confidence bands),
  ``energy_breakdown`` (shares per component of the chosen designs), ``technology`` (best
  accuracy per time and lowest cost per technology) and, for a ``sweep`` study,
  ``sensitivity`` (accuracy against each field, the others at the reference).
- ``report.md``: a summary that embeds the figures, lists the Pareto-optimal designs with
  their intervals, flags designs whose accuracies the study cannot tell apart (the interval of
  their difference holds 0), warns when the test set is too small for the differences shown,
  states what a sweep says about a ``target_accuracy``, and lists the failed designs.

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

from memxbar.studies import figures
from memxbar.studies.runner import load_study
from memxbar.studies.spec import METRICS, StudySpec, accuracy_key, time_label
from memxbar.studies.trials import (
    OBJECTIVE_ATTR,
    StorageError,
    _live,
    distinct,
    storage_fault,
    trial_seed,
)

PLOTS = ("objectives", "accuracy_vs_time", "energy_breakdown", "technology")
FORMATS = figures.FORMATS
COST_METRICS = tuple(m for m in METRICS if m != "accuracy")
CONFIDENCE = 0.95  # level of every interval in the report


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
    """The tidy table: one row per trial x evaluation time (see the module docstring); a trial
    that reused the result of an earlier one (the sampler proposed its design again) is left
    out, so each design is listed once."""
    trials = [t for t in distinct(study.get_trials(deepcopy=False))
              if t.state != TrialState.WAITING]
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
                         **_spread(t, spec, accuracy_key(t_s), metrics),
                         **{m: extra.get(m, math.nan) for m in COST_METRICS},
                         **{k: v for k, v in extra.items() if k not in COST_METRICS},
                         "pareto": t.number in pareto, "error": _error(t, retried)})
    columns = ["study", "trial", "state", "attempt", "retry_of", "seed", "sampler_seed",
               "worker", "datetime_start", "datetime_complete", "duration_s",
               *spec.dims(), "technology", "t_s", "t_label", "accuracy", "accuracy_std",
               "repeats", "accuracy_ci_low", "accuracy_ci_high", *COST_METRICS,
               "pareto", "error"]
    df = pd.DataFrame(rows)
    if df.empty:
        return pd.DataFrame(columns=columns)
    order = [c for c in columns if c in df.columns] + [c for c in df.columns if c not in columns]
    return df[order]


def _spread(t: FrozenTrial, spec: StudySpec, key: str,
            metrics: dict[str, float]) -> dict[str, Any]:
    """Standard deviation over the repeats, their number and the 95 % interval of the mean
    accuracy ``key`` of a trial (from ``breakdown.accuracy_repeats``, else
    ``breakdown.accuracy_std`` with ``evaluation.repeats``; one draw: no interval)."""
    extra = t.user_attrs.get("breakdown") or {}
    draws = (extra.get("accuracy_repeats") or {}).get(key)
    mean = metrics.get(key, math.nan)
    if isinstance(draws, list) and draws:
        n = len(draws)
        std = float(np.std(draws, ddof=1)) if n > 1 else 0.0
    else:
        std = (extra.get("accuracy_std") or {}).get(key, math.nan)
        n = spec.evaluation.repeats if isinstance(std, (int, float)) and math.isfinite(
            std) else 1
        std = float(std) if n > 1 else 0.0
    low, high = interval(mean, std, n)
    return {"accuracy_std": std, "repeats": n,  # an accuracy lies in [0, 1]: so does its CI
            "accuracy_ci_low": max(low, 0.0) if low == low else low,
            "accuracy_ci_high": min(high, 1.0) if high == high else high}


def _technology(spec: StudySpec, params: dict[str, Any]) -> str | None:
    try:
        return spec.technology(params["device"])
    except (KeyError, ValueError):
        return None


def breakdown_table(study: optuna.Study) -> pd.DataFrame:
    """One row per complete trial x energy component (J) of ``breakdown.energy_per_inference``."""
    rows = []
    for t in distinct(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))):
        parts = (t.user_attrs.get("breakdown") or {}).get("energy_per_inference")
        if isinstance(parts, dict):
            for name, value in parts.items():
                if isinstance(value, (int, float)) and not isinstance(value, bool):
                    rows.append({"trial": t.number, "component": str(name),
                                 "energy_J": float(value)})
    return pd.DataFrame(rows, columns=["trial", "component", "energy_J"])


# --------------------------------------------------------------------------- statistics


def _main_time(spec: StudySpec) -> float:
    """Evaluation time of the (first) accuracy objective, else the last evaluation time."""
    for obj in spec.objectives:
        if obj.metric == "accuracy" and obj.time is not None:
            return float(obj.time)
    return spec.evaluation.times[-1]


def interval(mean: float, std: float, n: int, level: float = CONFIDENCE) -> tuple[float, float]:
    """Two-sided ``level`` confidence interval of a mean of ``n`` draws with sample standard
    deviation ``std`` (Student's t, n - 1 degrees of freedom); NaN for fewer than 2 draws."""
    if n < 2 or not math.isfinite(std):
        return math.nan, math.nan
    from scipy.stats import t as student

    half = float(student.ppf(0.5 + level / 2, n - 1)) * std / math.sqrt(n)
    return mean - half, mean + half


def sampling_margin(accuracy: float, n_test: float, level: float = CONFIDENCE) -> float:
    """Half-width of the ``level`` interval of one accuracy measured on ``n_test`` examples
    (normal approximation of the binomial: ``z * sqrt(p (1 - p) / n)``): how far the finite
    test set alone can move it."""
    if not (n_test > 0 and math.isfinite(accuracy)):
        return math.nan
    from scipy.stats import norm

    p = min(max(accuracy, 0.5 / n_test), 1 - 0.5 / n_test)
    return float(norm.ppf(0.5 + level / 2)) * math.sqrt(p * (1 - p) / n_test)


def summary_table(df: pd.DataFrame, spec: StudySpec) -> pd.DataFrame:
    """One row per complete trial x metric (x evaluation time for accuracy): mean, std (over
    the repeats, ddof 1), n, and the 95 % confidence interval (Student's t; cost metrics are
    computed once per design, so n = 1 and no interval)."""
    done = df[df["state"] == "COMPLETE"]
    rows = []
    for _, r in done.iterrows():
        fields = {"trial": r["trial"], **{k: r[k] for k in spec.search_space() if k in r}}
        rows.append({**fields, "metric": "accuracy", "t_s": r["t_s"], "t_label": r["t_label"],
                     "mean": r["accuracy"], "std": r.get("accuracy_std", math.nan),
                     "n": r.get("repeats", 1), "ci95_low": r.get("accuracy_ci_low", math.nan),
                     "ci95_high": r.get("accuracy_ci_high", math.nan)})
    for _, r in done.drop_duplicates("trial").iterrows():
        fields = {"trial": r["trial"], **{k: r[k] for k in spec.search_space() if k in r}}
        for m in COST_METRICS:
            if m in r and pd.notna(r[m]):
                rows.append({**fields, "metric": m, "t_s": math.nan, "t_label": "",
                             "mean": r[m], "std": 0.0, "n": 1, "ci95_low": math.nan,
                             "ci95_high": math.nan})
    columns = ["trial", *spec.search_space(), "metric", "t_s", "t_label", "mean", "std", "n",
               "ci95_low", "ci95_high"]
    return pd.DataFrame(rows, columns=columns)


def chosen_designs(df: pd.DataFrame, spec: StudySpec) -> list[int]:
    """Trials worth a closer look: the Pareto-optimal designs and, per technology, the design
    with the best accuracy at the objective time."""
    done = df[df["state"] == "COMPLETE"]
    chosen = set(done[done["pareto"]]["trial"])
    at = _per_trial(df, _main_time(spec)).dropna(subset=["accuracy"])
    for _, group in at.groupby("technology"):
        chosen.add(int(group["accuracy"].idxmax()))
    return sorted(int(t) for t in chosen)


def _per_trial(df: pd.DataFrame, t_s: float) -> pd.DataFrame:
    done = df[(df["state"] == "COMPLETE") & (df["t_s"] == t_s)]
    return done.drop_duplicates("trial").set_index("trial")


def _ties(best: pd.DataFrame, df: pd.DataFrame, t_s: float) -> dict[int, list[int]]:
    """Per Pareto-optimal trial, the other Pareto-optimal trials whose accuracy at ``t_s`` is
    not distinguishable from its own: the 95 % interval of the difference of the two means
    (Welch: std_a² / n_a + std_b² / n_b, Student's t) holds 0. Only with repeats."""
    at = _per_trial(df, t_s)
    rows = at.loc[[t for t in best["trial"] if t in at.index]]
    if rows.empty or "repeats" not in rows or (rows["repeats"] < 2).all():
        return {}
    from scipy.stats import t as student

    out: dict[int, list[int]] = {}
    for a, ra in rows.iterrows():
        for b, rb in rows.iterrows():
            if a == b or ra["repeats"] < 2 or rb["repeats"] < 2:
                continue
            va, vb = ra["accuracy_std"] ** 2 / ra["repeats"], rb["accuracy_std"] ** 2 / rb[
                "repeats"]
            se = math.sqrt(va + vb)
            if se == 0.0:
                tied = ra["accuracy"] == rb["accuracy"]
            else:
                dof = (va + vb) ** 2 / ((va ** 2 / (ra["repeats"] - 1) if va else 0.0)
                                        + (vb ** 2 / (rb["repeats"] - 1) if vb else 0.0))
                tied = abs(ra["accuracy"] - rb["accuracy"]) <= float(
                    student.ppf(0.5 + CONFIDENCE / 2, dof)) * se
            if tied:
                out.setdefault(int(a), []).append(int(b))
    return out


def _test_set_warning(best: pd.DataFrame, df: pd.DataFrame, t_s: float) -> str | None:
    """A warning when the finite test set alone moves an accuracy by more than the smallest
    difference between two Pareto-optimal designs."""
    at = _per_trial(df, t_s)
    rows = at.loc[[t for t in best["trial"] if t in at.index]]
    if "test_examples" not in rows or rows["test_examples"].isna().all() or len(rows) < 2:
        return None
    n_test = float(rows["test_examples"].max())
    acc = np.sort(rows["accuracy"].dropna().unique())
    if len(acc) < 2:
        return None
    gap = float(np.min(np.diff(acc)))
    margin = sampling_margin(float(acc.mean()), n_test)
    if not margin > gap:
        return None
    return (f"**The test set is small for these differences**: {int(n_test)} test examples "
            f"measure one accuracy to +-{margin * 100:.2g} points (95 %, binomial), more than "
            f"the smallest gap between two Pareto-optimal designs ({gap * 100:.2g} points at "
            f"{time_label(t_s)}). Rank them on a larger test set (workload.limit, dataset).")


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


def _code_lines(spec: StudySpec) -> list[str]:
    """Where your code comes from: reference, file and the hash in the study's identity."""
    return [f"- code: `{ref}` from {Path(src.get('file', '?')).name} (sha256 "
            f"{src.get('sha256', '?')[:12]}...)" for ref, src in spec.code.items()]


def _statistics_line(spec: StudySpec, df: pd.DataFrame) -> str:
    n = spec.evaluation.repeats
    text = (f"- statistics: {n} programming draw{'s' if n > 1 else ''} per design (each "
            "programs the arrays again and reads them with fresh read noise); accuracy is the "
            "mean")
    text += (" with a 95 % confidence interval (Student's t over the draws)" if n > 1 else
             "; one draw gives no interval: set evaluation.repeats >= 3")
    if "test_examples" in df and df["test_examples"].notna().any():
        n_test = float(df["test_examples"].max())
        acc = float(df["accuracy"].mean()) if df["accuracy"].notna().any() else 0.9
        text += (f"; {int(n_test)} test examples, which alone measure an accuracy to "
                 f"+-{sampling_margin(acc, n_test) * 100:.2g} points (95 %, binomial)")
    return text


def _accuracy_text(row: pd.Series) -> str:
    if pd.notna(row.get("accuracy_ci_low")):
        return (f"{row['accuracy'] * 100:.2f} % [{row['accuracy_ci_low'] * 100:.2f}, "
                f"{row['accuracy_ci_high'] * 100:.2f}]")
    return f"{row['accuracy'] * 100:.2f} %"


def _pareto_section(spec: StudySpec, df: pd.DataFrame) -> list[str]:
    per_trial = df.drop_duplicates("trial")
    best = per_trial[per_trial["pareto"]]
    if best.empty:
        return []
    searched = list(spec.search_space())
    table = best[["trial", *searched]].copy()
    t_main = _main_time(spec)
    for obj in spec.objectives:
        if obj.metric == "accuracy" and obj.time is not None:
            at = _per_trial(df, obj.time)
            table[f"{obj.label} (95 % CI)"] = [_accuracy_text(at.loc[t]) for t in best["trial"]]
        else:
            table[obj.label] = [figures.format_value(obj.metric, v) for v in best[obj.metric]]
    ties = _ties(best, df, t_main)
    if ties:
        table[f"same accuracy @ {time_label(t_main)} as (95 %)"] = [
            ", ".join(f"#{b}" for b in ties.get(int(t), [])) or "-" for t in best["trial"]]
    lines = ["## Pareto-optimal designs", "", _md_table(table)]
    if ties:
        lines += ["Designs listed as having the same accuracy differ by less than the 95 % "
                  "interval of the difference (Welch): the study cannot rank them on accuracy "
                  "at this number of repeats.", ""]
    warning = _test_set_warning(best, df, t_main)
    if warning:
        lines += [warning, ""]
    return lines


def _sensitivity_section(spec: StudySpec, curves: dict[str, pd.DataFrame]) -> list[str]:
    target = spec.evaluation.target_accuracy
    if not curves:
        return []
    t_main = _main_time(spec)
    lines = ["## Sensitivity (one field at a time)", ""]
    if target is not None:
        bound = ("lower 95 % bound" if spec.evaluation.repeats > 1 else
                 "the one draw's accuracy: no bound without evaluation.repeats >= 2")
        lines += [f"Target: accuracy >= {target * 100:.3g} % at {time_label(t_main)} ({bound}), "
                  "every other field at the reference design:", ""]
        lines += [f"- {figures.requirement(c, k, target)}" for k, c in curves.items()]
        lines.append("")
    for field, curve in curves.items():
        lines += [f"{field}:", "", _md_table(pd.DataFrame({
            field: curve[field], "trial": curve["trial"],
            f"accuracy @ {time_label(t_main)} (95 % CI)": [
                _accuracy_text(r) for _, r in curve.iterrows()]}))]
    return lines


CAPTIONS = {
    "objectives": "The designs in the study's objectives (two: the black line is the Pareto "
                  "front; three or more: each pair; ringed: Pareto-optimal in all). Error "
                  "bars: 95 % CI of the mean accuracy over the programming draws.",
    "accuracy_vs_time": "Accuracy versus time since programming; bold: best design of each "
                        "technology at the objective time, with its 95 % confidence band.",
    "energy_breakdown": "Energy per inference by component (shares of the total, printed at "
                        "the right): the Pareto-optimal designs and the most accurate design "
                        "of each technology.",
    "technology": "Per technology: best accuracy at each time (95 % CI); lowest cost of each "
                  "kind (each bar is the best design for that metric, not one design).",
    "sensitivity": "Accuracy against each swept field, the others at the reference design "
                   "(star); band: 95 % CI over the programming draws; dashed: the target.",
}


def _markdown(study: optuna.Study, spec: StudySpec, df: pd.DataFrame,
              plots: dict[str, list[Path]], tables: list[Path], folder: Path,
              curves: dict[str, pd.DataFrame]) -> str:
    trials = study.get_trials(deepcopy=False)
    live = distinct(_live(trials))
    count = {s: sum(t.state == s for t in live) for s in TrialState}
    reused = len(trials) - len(distinct(trials))
    others = _other_studies(study, folder)
    searched = list(spec.search_space())
    fixed = {k: v for k, v in spec.fixed_params().items() if v is not None}
    w = spec.workload
    objective = study.user_attrs.get(OBJECTIVE_ATTR)
    lines = [
        f"# Study `{spec.name}`", "",
        f"- workload: dataset {w.dataset}, model {w.model}"
        f"{' ' + str(w.model_options) if w.model_options else ''}, training recipe "
        f"{' or '.join(map(str, _values(spec.dims()['recipe'])))}, {w.training.epochs} epochs",
        *_code_lines(spec),
        *([f"- objective function: `{objective}`"] if objective else []),
        f"- searched: {', '.join(searched) or 'nothing (one design)'}; sampler "
        f"{spec.sampler.kind}, budget {spec.n_trials} designs"
        + (f" (study.trials = {spec.study.trials}; the space holds {spec.n_trials})"
           if (spec.study.trials or 0) > spec.n_trials else "") + f", seed {spec.study.seed}",
        f"- fixed: {', '.join(f'{k}={v}' for k, v in fixed.items())}",
        "- cost model: " + (", ".join(f"{k}={v}" for k, v in spec.cost.items())
                            or "memxbar's defaults"),
        f"- evaluation times: {', '.join(time_label(t) for t in spec.evaluation.times)}",
        _statistics_line(spec, df[df["state"] == "COMPLETE"]),
        "- objectives: " + ", ".join(f"{o.sense} {o.label}" for o in spec.objectives),
        f"- designs: {count[TrialState.COMPLETE]} complete, {count[TrialState.FAIL]} failed, "
        f"{count[TrialState.RUNNING] + count[TrialState.WAITING]} not finished"
        + (f" ({reused} more trials proposed a design again and reused its result)"
           if reused else ""),
        "- tables: " + ", ".join(f"[{p.name}]({p.name})" for p in tables),
    ]
    if count[TrialState.FAIL]:
        lines.append(f"- {count[TrialState.FAIL]} failed designs (see Failed trials): "
                     "`memxbar study run FILE --retry-failed` runs them again")
    if others:
        lines.append(f"- the study database also holds {', '.join(map(repr, others))}, not in "
                     "this report (one output folder should hold one study)")
    lines.append("")
    lines += _pareto_section(spec, df)
    lines += _sensitivity_section(spec, curves)
    names = [*PLOTS, *(["sensitivity"] if curves else [])]
    for name in names:
        paths = plots.get(name) or []
        lines += [f"## {name.replace('_', ' ').capitalize()}", ""]
        if paths:
            links = ", ".join(f"[{p.suffix[1:].upper()}]({p.name})" for p in paths[1:])
            lines += [CAPTIONS[name], "", f"![{name}]({paths[0].name})", f"({links})", ""]
        else:
            lines += ["No data for this plot (no complete trial returned what it needs).", ""]
    per_trial = df.drop_duplicates("trial")
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
    for name, table in (("results", df), ("summary", summary_table(df, spec)),
                        ("energy_breakdown", parts)):
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
    t_main = _main_time(spec)
    chosen = df[df["trial"].isin(chosen_designs(df, spec))].drop_duplicates("trial")
    curves = figures.sweep_curves(df, spec, t_main)
    digital = (float(df["accuracy_digital"].max()) if "accuracy_digital" in df
               and df["accuracy_digital"].notna().any() else None)
    plots = {
        "objectives": figures.plot_objectives(df, spec, out),
        "accuracy_vs_time": figures.plot_accuracy_vs_time(df, spec, out, t_main),
        "energy_breakdown": figures.plot_energy_breakdown(chosen, parts, spec, out)
        if not parts.empty else [],
        "technology": figures.plot_technology(df, spec, out),
        "sensitivity": figures.plot_sensitivity(curves, spec, out, t_main,
                                                spec.evaluation.target_accuracy, digital),
    }
    for paths in plots.values():
        for p in paths:
            written[p.name] = p
    md = out / "report.md"
    md.write_text(_markdown(study, spec, df, plots, tables, folder, curves), encoding="utf-8")
    written["report.md"] = md
    return written
