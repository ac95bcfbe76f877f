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
    from memxbar.devices import presets
    from memxbar.devices.plots import plot_device

    _devices_list(args)
    args.out.mkdir(parents=True, exist_ok=True)
    for name in presets.names():
        p = presets.preset(name)
        path = plot_device(p.build(), args.out / f"{name}.png", title=f"{name}: {p.summary}")
        print(f"wrote {path}")


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

    demo = sub.add_parser("demo", help="the main job")
    demo.add_argument("--out", type=Path, default=Path("runs/demo"), help="output folder")
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
    return 0


if __name__ == "__main__":
    sys.exit(main())
