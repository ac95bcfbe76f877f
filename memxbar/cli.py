"""The ``memxbar`` command line. Bad arguments print one line and exit with code 2."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rich.console import Console
from rich.table import Table

console = Console()


class UserError(Exception):
    """A problem with what the user asked for: printed as one line, exit code 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit code 2, no usage dump
        raise UserError(f"{message} (see: {self.prog} --help)")


def _devices_list(args: argparse.Namespace) -> None:
    from memxbar.devices import presets

    table = Table("name", "technology", "summary", "source")
    for name in presets.names():
        p = presets.preset(name)
        table.add_row(name, p.technology, p.summary, p.source)
    console.print(table)


def _devices_show(args: argparse.Namespace) -> None:
    from memxbar.devices import presets

    print(presets.describe(args.name))


def _devices_plot(args: argparse.Namespace) -> None:
    from memxbar.devices import presets
    from memxbar.devices.plots import plot_device

    if args.out.suffix.lower() not in (".png", ".svg"):
        raise UserError(f"--out {args.out}: the file must end in .png or .svg")
    p = presets.preset(args.name)
    path = plot_device(p.build(), args.out, title=f"{args.name}: {p.summary}",
                       n_pulses=args.pulses, seed=args.seed)
    print(f"wrote {path}")
    if p.technology == "measured":
        from memxbar.devices.measured import plot_fit, preset_report

        report = preset_report(args.name)
        fit_path = args.out.with_name(f"{args.out.stem}-fit{args.out.suffix}")
        plot_fit(report, fit_path)
        print(report.summary())
        print(f"wrote {fit_path}")


def _spice_check(args: argparse.Namespace) -> None:
    from memxbar.crossbar.spice import spice_check

    res = spice_check(args.rows, args.cols, seed=args.seed, r_row=args.r_row, r_col=args.r_col)
    table = Table("column", "memxbar I (A)", "ngspice I (A)")
    for j, (a, b) in enumerate(zip(res["memxbar"], res["ngspice"], strict=True)):
        table.add_row(str(j), f"{a:.9e}", f"{b:.9e}")
    console.print(table)
    print(f"max relative error {res['max_rel_error']:.3e}; memxbar {res['memxbar_s'] * 1e3:.2f} ms,"
          f" ngspice {res['ngspice_s'] * 1e3:.1f} ms")


def _demo(args: argparse.Namespace) -> None:
    from memxbar.studies.report import results_table, write_report
    from memxbar.studies.runner import load_study, run_study

    summary = run_study("quickstart", output=args.out)
    print(summary.describe())
    files = write_report(summary.output)
    study, spec = load_study(summary.output)
    df = results_table(study, spec)
    df = df[df.state == "COMPLETE"]
    labels = list(dict.fromkeys(df.t_label))
    table = Table("device", "ADC bits", "drift comp.", *[f"acc. {t}" for t in labels],
                  "energy/inference", "area")
    keys = ["device", "adc_bits", "drift_compensation"]
    for key, g in df.groupby(keys, sort=True):
        acc = dict(zip(g.t_label, g.accuracy, strict=True))
        first = g.iloc[0]
        table.add_row(*[str(k) for k in key], *[f"{acc[t]:.3f}" for t in labels],
                      f"{first.energy_per_inference * 1e9:.3g} nJ",
                      f"{first.area * 1e6:.3g} mm²")
    Console(width=max(console.width, 150)).print(table)
    print(f"plots, tables and report.md: {files['report.md'].parent}")


def _cost(args: argparse.Namespace) -> None:
    from memxbar.studies.evaluate import design_cost
    from memxbar.studies.spec import Choices, cost_model, load_spec, tomllib

    spec = load_spec(args.file)
    chosen = {}
    for item in args.set:
        name, sep, value = item.partition("=")
        if not sep:
            raise UserError(f"--set {item!r}: expected NAME=VALUE")
        chosen[name] = value
    searched = {}
    for name, dim in spec.search_space().items():
        options = list(dim.values) if isinstance(dim, Choices) else dim.points()
        if name in chosen:
            match = [o for o in options if str(o) == chosen[name]]
            if not match:
                raise UserError(f"--set {name}={chosen[name]}: allowed: "
                                f"{', '.join(map(str, options))}")
            searched[name] = match[0]
        else:
            searched[name] = options[0]
    unknown = sorted(set(chosen) - set(searched))
    if unknown:
        raise UserError(f"--set {', '.join(unknown)}: not searched by this study; searched: "
                        f"{', '.join(spec.search_space()) or 'none'}")
    fields = dict(spec.cost)
    for item in args.cost:
        name, sep, value = item.partition("=")
        if not sep:
            raise UserError(f"--cost {item!r}: expected NAME=VALUE")
        try:  # a TOML value (number, true/false, "string"); else the bare text
            fields[name] = tomllib.loads(f"v = {value}")["v"]
        except tomllib.TOMLDecodeError:
            fields[name] = value
    try:
        model = cost_model(fields)
    except ValueError as e:
        raise UserError(f"--cost: {e}") from None
    print("design: " + ", ".join(f"{k}={v}" for k, v in searched.items()))
    if fields:
        print("cost model: " + ", ".join(f"{k}={v}" for k, v in fields.items()))
    design_cost(spec, spec.resolve(searched), cache_dir=spec.output_dir / "cache",
                plot=args.plot, cost_model=model)


def _study_list(args: argparse.Namespace) -> None:
    from memxbar.studies.spec import load_spec, ready_studies

    table = Table("name", "sampler", "trials", "searched", "file")
    for name, path in ready_studies().items():
        spec = load_spec(path)
        table.add_row(name, spec.sampler.kind, str(spec.n_trials),
                      ", ".join(spec.search_space()), str(path))
    console.print(table)


def _study_run(args: argparse.Namespace) -> None:
    from memxbar.studies.runner import run_study

    summary = run_study(args.file, trials=args.trials, workers=args.workers,
                        storage=args.storage, output=args.output)
    print(summary.describe())


def _study_worker(args: argparse.Namespace) -> None:
    from memxbar.studies.runner import join_worker

    print(join_worker(args.file, args.storage, output=args.output).describe())


def _study_report(args: argparse.Namespace) -> None:
    from memxbar.studies.report import write_report

    files = write_report(args.dir, storage=args.storage)
    print(f"wrote {len(files)} files to {files['report.md'].parent} (open report.md)")


def _study_dashboard(args: argparse.Namespace) -> None:
    from memxbar.studies.runner import open_dashboard

    open_dashboard(args.dir, storage=args.storage, host=args.host, port=args.port)


def _int_range(lo: int, hi: int):
    def conv(text: str) -> int:
        try:
            v = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        if not lo <= v <= hi:
            raise argparse.ArgumentTypeError(f"{v} is outside the allowed range {lo}..{hi}")
        return v
    return conv


def _nonneg_float(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not v >= 0.0:
        raise argparse.ArgumentTypeError(f"{v} must be >= 0")
    return v


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every ``memxbar`` command."""
    parser = _Parser(prog="memxbar",
                     description="memxbar: co-design of memristive crossbar accelerators.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    dev = sub.add_parser("devices", help="the device library: list, show, plot")
    dsub = dev.add_subparsers(dest="action", required=True, parser_class=_Parser)
    dsub.add_parser("list", help="list device presets").set_defaults(func=_devices_list)
    show = dsub.add_parser("show", help="parameters of a preset with units and sources")
    show.add_argument("name")
    show.set_defaults(func=_devices_show)
    plot = dsub.add_parser("plot", help="pulse response, level distributions and drift")
    plot.add_argument("name")
    plot.add_argument("--out", type=Path, required=True, help="output image (.png or .svg)")
    plot.add_argument("--pulses", type=_int_range(1, 100_000), default=400,
                      help="up pulses, then as many down pulses (default 400)")
    plot.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    plot.set_defaults(func=_devices_plot)

    sc = sub.add_parser("spice-check", help="compare the IR-drop solver with ngspice")
    sc.add_argument("--rows", type=_int_range(1, 128), default=16)
    sc.add_argument("--cols", type=_int_range(1, 128), default=16)
    sc.add_argument("--r-row", type=_nonneg_float, default=1.0, help="row segment (ohm)")
    sc.add_argument("--r-col", type=_nonneg_float, default=1.0, help="column segment (ohm)")
    sc.add_argument("--seed", type=int, default=0)
    sc.set_defaults(func=_spice_check)

    st = sub.add_parser("study", help="run, join, report and inspect studies")
    ssub = st.add_subparsers(dest="action", required=True, parser_class=_Parser)
    ssub.add_parser("list", help="ready-made study files").set_defaults(func=_study_list)
    run = ssub.add_parser("run", help="run a study file, or continue it")
    run.add_argument("file", help="study TOML file, or a ready-made study's name (quickstart)")
    run.add_argument("--trials", type=_int_range(1, 10_000_000),
                     help="trial budget (default: [study] trials, or the grid size)")
    run.add_argument("--workers", type=_int_range(0, 1024), default=1,
                     help="local worker processes (default 1; 0: only create the study)")
    run.add_argument("--storage", help="Optuna storage URL, e.g. postgresql://user@host/db "
                                       "(default: SQLite file in the output folder)")
    run.add_argument("--output", type=Path, help="output folder (default: [study] output)")
    run.set_defaults(func=_study_run)
    wk = ssub.add_parser("worker", help="join a study on a shared storage (another machine)")
    wk.add_argument("file", help="the same study file as the run")
    wk.add_argument("--storage", required=True, help="the study's storage URL")
    wk.add_argument("--output", type=Path, help="output folder on this machine")
    wk.set_defaults(func=_study_worker)
    rep = ssub.add_parser("report", help="tables (CSV, Parquet), plots and report.md")
    rep.add_argument("dir", type=Path, help="the study's output folder")
    rep.add_argument("--storage", help="storage URL (default: the one the run recorded)")
    rep.set_defaults(func=_study_report)
    dash = ssub.add_parser("dashboard", help="open optuna-dashboard on the study's storage")
    dash.add_argument("dir", type=Path, help="the study's output folder")
    dash.add_argument("--storage", help="storage URL (default: the one the run recorded)")
    dash.add_argument("--host", default="127.0.0.1")
    dash.add_argument("--port", type=_int_range(1, 65535), default=8080)
    dash.set_defaults(func=_study_dashboard)
    cost = sub.add_parser("cost", help="energy, latency and area of one design of a study")
    cost.add_argument("file", help="study file or ready-made study name")
    cost.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                      help="value of a searched field (default: its first value)")
    cost.add_argument("--cost", action="append", default=[], metavar="NAME=VALUE",
                      help="cost-model field over the study's [cost] table, e.g. "
                           "sensing=per_column, rows_parallel=32, adc_model=neurosim")
    cost.add_argument("--plot", help="write the breakdown plot (.png or .svg) here")
    cost.set_defaults(func=_cost)

    demo = sub.add_parser("demo", help="the main job: run the quickstart study and report it")
    demo.add_argument("--out", type=Path, default=Path("runs/quickstart"),
                      help="output folder (default runs/quickstart)")
    demo.set_defaults(func=_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point: run a command; user errors become one line on stderr and exit code 2."""
    try:
        args = build_parser().parse_args(argv)
        args.func(args)
    except (UserError, ValueError, FileNotFoundError) as e:
        print(f"memxbar: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("memxbar: interrupted; finished trials are kept: run the same command again to "
              "continue", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
