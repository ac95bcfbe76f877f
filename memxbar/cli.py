"""The ``memxbar`` command line.

Exit codes: 0 done; 2 a bad argument, configuration or input (:class:`memxbar.ConfigError`,
printed as one line); 1 an internal error (a bug: printed with its traceback and a request to
report it); 130 interrupted (Ctrl-C, at any moment: one line). ``study run`` adds its own.
Importing this module loads only the standard library; each command imports what it needs
inside :func:`main`'s handlers, so Ctrl-C while torch loads is one line too.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

from memxbar.errors import ConfigError, figure_path

INTERRUPTED = ("memxbar: interrupted; finished trials are kept: run the same command again to "
               "continue")
BUG_REPORT = ("memxbar: internal error (a bug in memxbar, not a problem with your input): "
              "please report it with the command you ran and the traceback above")


class UserError(ConfigError):
    """A problem with what the user asked for: printed as one line, exit code 2."""


class _Rows:
    """A table for the console (see :func:`_show`)."""

    def __init__(self, *columns: str) -> None:
        self.columns: list[str] = list(columns)
        self.rows: list[list[str]] = []

    def add_row(self, *cells: object) -> None:
        self.rows.append([str(c) for c in cells])


def _table(*columns: str) -> _Rows:
    return _Rows(*columns)


def _show(table: _Rows, width: int | None = None) -> None:
    """Print ``table``: on a terminal as a rich table whose first column (names) is never cut
    or wrapped; piped or redirected as tab-separated plain text, so every name can be copied
    or parsed whole. ``width``: the least terminal width to lay the table out for."""
    if not sys.stdout.isatty():
        for row in [table.columns, *table.rows]:
            print("\t".join(row))
        return
    from rich.console import Console
    from rich.table import Table

    console = Console()
    if width is not None:
        console = Console(width=max(console.width, width))
    out = Table()
    first = max([len(table.columns[0]), *(len(r[0]) for r in table.rows)])
    out.add_column(table.columns[0], no_wrap=True, min_width=first)
    for name in table.columns[1:]:
        out.add_column(name, overflow="fold")
    for row in table.rows:
        out.add_row(*row)
    console.print(out)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line, exit code 2, no usage dump
        raise UserError(f"{message} (see: {self.prog} --help)")


def _devices_list(args: argparse.Namespace) -> None:
    from memxbar.devices import presets

    table = _table("name", "technology", "summary", "source")
    for name in presets.names():
        p = presets.preset(name)
        table.add_row(name, p.technology, p.summary, p.source)
    _show(table)


def _devices_show(args: argparse.Namespace) -> None:
    from memxbar.devices import presets

    print(presets.describe(args.name))


def _devices_plot(args: argparse.Namespace) -> None:
    from memxbar.devices import presets
    from memxbar.devices.plots import plot_device

    figure_path(args.out, "--out")
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
    table = _table("column", "memxbar I (A)", "ngspice I (A)")
    for j, (a, b) in enumerate(zip(res["memxbar"], res["ngspice"], strict=True)):
        table.add_row(str(j), f"{a:.9e}", f"{b:.9e}")
    _show(table)
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
    table = _table("device", "ADC bits", "drift comp.", *[f"acc. {t}" for t in labels],
                   "energy/inference", "area")
    keys = ["device", "adc_bits", "drift_compensation"]
    for key, g in df.groupby(keys, sort=True):
        half = (g.accuracy_ci_high - g.accuracy_ci_low) / 2  # 95 % CI over the repeats
        acc = {t: f"{a * 100:.1f}" + (f" ± {h * 100:.1f}" if h == h else "")
               for t, a, h in zip(g.t_label, g.accuracy, half, strict=True)}
        first = g.iloc[0]
        table.add_row(*[str(k) for k in key], *[f"{acc[t]} %" for t in labels],
                      f"{first.energy_per_inference * 1e9:.3g} nJ",
                      f"{first.area * 1e6:.3g} mm²")
    _show(table, width=150)
    print(f"plots, tables and report.md: {files['report.md'].parent}")


def _toml_value(text: str) -> Any:
    """A command-line value as TOML (number, true/false, "string"); else the bare text."""
    from memxbar.studies.spec import tomllib

    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def _cost(args: argparse.Namespace) -> None:
    from memxbar.studies.devicefields import PREFIX, device_dims
    from memxbar.studies.evaluate import design_cost
    from memxbar.studies.hardware import BY_NAME, Fixed
    from memxbar.studies.spec import Choices, Range, cost_model, load_spec

    if args.plot is not None:
        figure_path(args.plot, "--plot")
    spec = load_spec(args.file)
    chosen = {}
    for item in args.set:
        name, sep, value = item.partition("=")
        if not sep:
            raise UserError(f"--set {item!r}: expected NAME=VALUE")
        chosen[name] = value
    searched, overrides = {}, {}
    for name, dim in spec.search_space().items():
        if isinstance(dim, Range) and dim.continuous:
            value = _toml_value(chosen[name]) if name in chosen else dim.low
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not (
                    dim.low <= value <= dim.high):
                raise UserError(f"--set {name}={chosen[name]}: allowed: a number in "
                                f"[{dim.low:g}, {dim.high:g}]")
            searched[name] = float(value)
            continue
        options = list(dim.values) if isinstance(dim, Choices) else dim.points()
        if name in chosen:
            match = [o for o in options if str(o) == chosen[name]]
            if not match:
                raise UserError(f"--set {name}={chosen[name]}: allowed: "
                                f"{', '.join(map(str, options))}")
            searched[name] = match[0]
        else:
            searched[name] = options[0]
    device_set = sorted(n for n in set(chosen) - set(searched) if n.startswith(PREFIX))
    for name in sorted(set(chosen) - set(searched) - set(device_set)):
        if name not in BY_NAME:  # a hardware field the study does not search: any value
            raise UserError(f"--set {name}: not a hardware field; allowed: "
                            f"{', '.join(BY_NAME)}, or device.<parameter> "
                            "(memxbar study fields)")
        try:
            overrides[name] = BY_NAME[name].domain.check(_toml_value(chosen[name]))
        except ConfigError as e:
            raise UserError(f"--set {name}={chosen[name]}: {e}") from None
    params = {**spec.resolve(searched), **overrides}
    for name in device_set:  # a device parameter, checked against the design's device model
        try:
            given = device_dims({name[len(PREFIX):]: _toml_value(chosen[name])},
                                [params["device"]], list(spec.hardware.measured))[name]
        except ConfigError as e:
            raise UserError(f"--set {name}={chosen[name]}: {e}") from None
        if not isinstance(given, Fixed):
            raise UserError(f"--set {name}={chosen[name]}: give one value, not a search")
        params[name] = overrides[name] = given.value
    if "tile_rows" in overrides and "tile_cols" not in chosen and \
            spec.fixed_params().get("tile_cols", 0) is None:  # tile_cols follows tile_rows
        params["tile_cols"] = params["tile_rows"]
    spec.build_hardware(params)  # refusals name the field
    fields = dict(spec.cost)
    for item in args.cost:
        name, sep, value = item.partition("=")
        if not sep:
            raise UserError(f"--cost {item!r}: expected NAME=VALUE")
        fields[name] = _toml_value(value)
    try:
        model = cost_model(fields)
    except ConfigError as e:
        raise UserError(f"--cost: {e}") from None
    print("design: " + ", ".join(f"{k}={v}" for k, v in {**searched, **overrides}.items()))
    if fields:
        print("cost model: " + ", ".join(f"{k}={v}" for k, v in fields.items()))
    design_cost(spec, params, cache_dir=spec.output_dir / "cache", plot=args.plot,
                cost_model=model)


def _study_list(args: argparse.Namespace) -> None:
    from memxbar.studies.spec import load_spec, ready_studies

    table = _table("name", "sampler", "trials", "searched", "file")
    for name, path in ready_studies().items():
        spec = load_spec(path)
        table.add_row(name, spec.sampler.kind, str(spec.n_trials),
                      ", ".join(spec.search_space()), str(path))
    _show(table)


def _study_fields(args: argparse.Namespace) -> None:
    from memxbar.studies.devicefields import device_field_rows
    from memxbar.studies.hardware import field_rows

    rows = [*field_rows(), *device_field_rows()]
    if args.format == "markdown":
        keys = list(rows[0])
        print("| " + " | ".join(keys) + " |")
        print("|" + "---|" * len(keys))
        for r in rows:
            print("| " + " | ".join(r[k].replace("|", "\\|") for k in keys) + " |")
        return
    table = _table(*rows[0])
    for r in rows:
        table.add_row(*r.values())
    _show(table, width=200)


def _study_run(args: argparse.Namespace) -> None:
    from memxbar.studies.runner import EXIT_FAILED_DESIGNS, run_study

    # in_process=False: trials run in child workers, so a design that kills its worker
    # (out of memory) is recorded and retried while the study goes on
    summary = run_study(args.file, trials=args.trials, workers=args.workers,
                        storage=args.storage, output=args.output, in_process=False,
                        max_retries=args.max_retries, retry_failed=args.retry_failed,
                        code_path=[str(p) for p in args.path])
    print(summary.describe())
    if summary.failed:
        raise SystemExit(EXIT_FAILED_DESIGNS)


def _study_worker(args: argparse.Namespace) -> None:
    from memxbar.studies.runner import EXIT_FAILED_DESIGNS, join_worker

    summary = join_worker(args.file, args.storage, output=args.output,
                          max_retries=args.max_retries, code_path=[str(p) for p in args.path])
    print(summary.describe())
    if summary.failed:
        raise SystemExit(EXIT_FAILED_DESIGNS)


def _study_report(args: argparse.Namespace) -> None:
    from memxbar.studies.report import write_report

    files = write_report(args.dir, storage=args.storage)
    print(f"wrote {len(files)} files to {files['report.md'].parent} (open report.md)")


def _study_dashboard(args: argparse.Namespace) -> None:
    from memxbar.studies.runner import open_dashboard

    open_dashboard(args.dir, storage=args.storage, host=args.host, port=args.port)


def _int_range(lo: int, hi: int) -> Callable[[str], int]:
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
    plot.add_argument("--out", type=Path, required=True, help="output image (.png, .svg or .pdf)")
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
    fields = ssub.add_parser("fields", help="every [hardware] field: type, unit, allowed "
                                            "values, default, what it sets, source")
    fields.add_argument("--format", choices=("table", "markdown"), default="table")
    fields.set_defaults(func=_study_fields)
    codes = ("exit codes: 0 every design done; 2 bad input, or a full disk or read-only storage "
             "(finished trials are kept); 3 designs failed (listed; --retry-failed runs them "
             "again); 130 interrupted")
    retries: dict[str, Any] = dict(
        type=_int_range(0, 100), default=2, metavar="N",
        help="runs again of a design whose worker died, e.g. killed when out of memory "
             "(default 2), before it is recorded as failed")
    run = ssub.add_parser("run", help="run a study file, or continue it", epilog=codes)
    run.add_argument("file", help="study TOML file, or a ready-made study's name (quickstart)")
    run.add_argument("--trials", type=_int_range(1, 10_000_000),
                     help="trial budget (default: [study] trials, or the grid size)")
    run.add_argument("--workers", type=_int_range(0, 1024), default=1,
                     help="local worker processes (default 1; 0: only create the study)")
    run.add_argument("--storage", help="Optuna storage URL, e.g. postgresql://user@host/db "
                                       "(default: SQLite file in the output folder)")
    run.add_argument("--output", type=Path, help="output folder (default: [study] output)")
    run.add_argument("--max-retries", **retries)
    run.add_argument("--retry-failed", action="store_true",
                     help="run the study's failed designs again")
    code_path: dict[str, Any] = dict(
        type=Path, action="append", default=[], metavar="DIR",
        help="a folder with your model, dataset or device code ('module:function' in the "
             "study file), searched after the study file's folder; repeatable")
    run.add_argument("--path", **code_path)
    run.set_defaults(func=_study_run)
    wk = ssub.add_parser("worker", help="join a study on a shared storage (another machine)",
                         epilog=codes)
    wk.add_argument("file", help="the same study file as the run")
    wk.add_argument("--storage", required=True, help="the study's storage URL")
    wk.add_argument("--output", type=Path, help="output folder on this machine")
    wk.add_argument("--max-retries", **retries)
    wk.add_argument("--path", **code_path)
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
                      help="value of a searched field (default: its first value), of any "
                           "other [hardware] field, e.g. rows_parallel=32, adc_model=neurosim, "
                           "or of a device parameter, e.g. device.read_time=5e-9")
    cost.add_argument("--cost", action="append", default=[], metavar="NAME=VALUE",
                      help="cost-model field over the study's [cost] table, e.g. "
                           "sensing=per_column, buffer_type=register")
    cost.add_argument("--plot", help="write the breakdown plot (.png, .svg or .pdf) here")
    cost.set_defaults(func=_cost)

    demo = sub.add_parser("demo", help="the main job: run the quickstart study and report it")
    demo.add_argument("--out", type=Path, default=Path("runs/quickstart"),
                      help="output folder (default runs/quickstart)")
    demo.set_defaults(func=_demo)
    return parser


class _CtrlC:
    """SIGINT handler: KeyboardInterrupt, as Python's default, remembering that one came."""

    def __init__(self) -> None:
        self.seen = False

    def __call__(self, signum: int, frame: Any) -> None:
        self.seen = True
        raise KeyboardInterrupt


def _import_torch(ctrl_c: _CtrlC) -> None:
    """Import torch (seconds) with a Ctrl-C held until it is done: raised inside torch's C++
    module set-up, the KeyboardInterrupt aborts the process (std::terminate, exit -6)."""
    def hold(signum: int, frame: Any) -> None:
        ctrl_c.seen = True

    signal.signal(signal.SIGINT, hold)
    try:
        import torch.utils.data  # noqa: F401  (torch and its data loaders, with torch.distributed)
    finally:
        signal.signal(signal.SIGINT, ctrl_c)
    if ctrl_c.seen:
        raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    """Entry point: run a command. A :class:`ConfigError` becomes one line on stderr and exit
    code 2; any other exception is an internal error (traceback, bug-report line, exit 1);
    Ctrl-C is one line and exit code 130, also when the error it leads to is another one (a
    Ctrl-C inside an import, e.g. numpy's while torch loads, leaves an ImportError behind)."""
    ctrl_c = _CtrlC()
    ours = (threading.current_thread() is threading.main_thread()
            and signal.getsignal(signal.SIGINT) is signal.default_int_handler)
    if ours:
        signal.signal(signal.SIGINT, ctrl_c)
    try:
        try:
            args = build_parser().parse_args(argv)
            if ours:
                _import_torch(ctrl_c)
            args.func(args)
        except ConfigError as e:
            print(f"memxbar: error: {e}", file=sys.stderr)
            return 2
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException:
            if ctrl_c.seen:  # the error is the Ctrl-C's doing
                raise KeyboardInterrupt from None
            traceback.print_exc()
            print(BUG_REPORT, file=sys.stderr)
            return 1
    except KeyboardInterrupt:
        print(INTERRUPTED, file=sys.stderr)
        return 130
    finally:
        if ours:
            signal.signal(signal.SIGINT, signal.default_int_handler)
    return 0


def run() -> NoReturn:
    """The ``memxbar`` command: :func:`main`, then exit. After a Ctrl-C (everything already
    cleaned up by then) the process ends at once with 130: after an interrupt that landed
    inside an import (torch's, seconds long) the interpreter's finalization exited by SIGINT
    (-2) instead in about 1 in 20 runs."""
    code = main()
    if code == 130:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)


if __name__ == "__main__":
    run()
