"""IR drop at network scale: one layer's read times, and a ResNet-18-sized model.

1. ``AnalogLinear(512, 512)`` on 256 x 256 PCM tiles (2 x 4 tiles), 1 ohm segments, 8-bit
   DAC/ADC, read noise per MVM: program plus the first read (1 s), and a drift to each further
   read time (1 h, 1 day), against one ``nn.Linear`` forward (batch 256), with the effective
   matrices solved by nested dissection (the default, mixed precision; ``--float64``: also in
   float64 throughout; ``--baseline FILE``: also by another version of ``crossbar/nested.py``,
   and with ``--resnet`` the model's read times alternately with it; ``--sweep``: also by the
   row sweep, the old path; interleaved); the largest relative difference of the two paths'
   effective conductances, and the tiles' own achieved error (``Tile.ir_error``, against CG).
2. ``--resnet``: a ResNet-18-sized model (11.7M weights; the torchvision-free definition of
   ``benchmarks/mapping.py``) on 256 x 256 PCM tiles, with 1 ohm segments and without IR drop:
   program plus the first read (t = 0, the ADC calibration on two 3 x 64 x 64 images), and each
   further read time, in seconds; the effective conductances of the last tile of the first and
   of the last layer checked against the row sweep (relative error), and the largest achieved
   error the layers report (``mapping_report(...).ir_error``).

``--arrays N``: one 256 x 256 and one 512 x 512 array (and 8 on two threads), the mixed and
the float64 nested dissection interleaved N times, and the mixed path's error per geometry.

``--first-order``: also the first-order approximation (``TileConfig(ir_drop="first_order")``),
its time and its achieved error against the exact solve.

Run: ``python benchmarks/network_scale.py [--resnet] [--sweep] [--float64] [--baseline FILE]
[--first-order]`` (prints Markdown tables).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import importlib.util
import inspect
import os
import statistics
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Literal

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as memxbar sets it, before torch loads
import torch  # noqa: E402
from torch import nn

sys.path.insert(0, str(Path(__file__).parent))
from _timing import header  # noqa: E402

from mapping import hardware, resnet18  # noqa: E402
from memxbar.crossbar import circuit  # noqa: E402
from memxbar.mapping import AnalogLinear, drift, mapping_report, program, to_analog  # noqa: E402
from memxbar.mapping.layers.base import analog_layers  # noqa: E402

READS = (3600.0, 86400.0)  # further read times, s


class _Sweep:
    """Context: every effective matrix by the row sweep (the path before nested dissection)."""

    def __enter__(self) -> None:
        self.saved = circuit._NESTED_MIN_CELLS
        circuit._NESTED_MIN_CELLS = 1 << 62

    def __exit__(self, *exc: object) -> None:
        circuit._NESTED_MIN_CELLS = self.saved


class _Baseline:
    """Context: nested dissection by another version of ``crossbar/nested.py`` (a file, e.g.
    ``git show e5dfcba:crossbar/nested.py > /tmp/nested_before.py``)."""

    def __init__(self, path: str) -> None:
        spec = importlib.util.spec_from_file_location("nested_baseline", path)
        assert spec is not None and spec.loader is not None, path
        self.module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(self.module)

    def __enter__(self) -> None:
        self.saved = circuit.effective_nested
        old = self.module.effective_nested
        takes_mixed = "mixed" in inspect.signature(old).parameters

        def baseline(G: torch.Tensor, g_r: float, g_c: float, *, mixed: bool = False
                     ) -> torch.Tensor:  # the mixed path where that version has it
            return old(G, g_r, g_c, mixed=mixed) if takes_mixed else old(G, g_r, g_c)

        circuit.effective_nested = baseline

    def __exit__(self, *exc: object) -> None:
        circuit.effective_nested = self.saved


class _Float64:
    """Context: nested dissection in float64 throughout (the path before the mixed one)."""

    def __enter__(self) -> None:
        self.saved = circuit.effective_nested
        nested = self.saved

        def float64(G: torch.Tensor, g_r: float, g_c: float, *, mixed: bool = False
                    ) -> torch.Tensor:
            return nested(G, g_r, g_c)

        circuit.effective_nested = float64

    def __exit__(self, *exc: object) -> None:
        circuit.effective_nested = self.saved


def _time(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def layer_case(rounds: int, sweep: bool, baseline: str | None, first_order: bool,
               float64: bool) -> None:
    gen = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    dig = nn.Linear(512, 512)
    x = torch.rand(256, 512, generator=gen)
    layer = AnalogLinear.from_digital(dig, hardware("per_mvm", 1.0))
    times: dict[str, list[float]] = {}
    paths: dict[str, contextlib.AbstractContextManager[None]] = {
        "nested": contextlib.nullcontext()}
    approx = AnalogLinear.from_digital(
        dig, dataclasses.replace(hardware("per_mvm", 1.0), ir_drop="first_order"))
    if float64:
        paths["float64 nested"] = _Float64()
    if baseline:
        paths["baseline nested"] = _Baseline(baseline)
    if sweep:
        paths["sweep"] = _Sweep()
    for _ in range(rounds):
        for path, ctx in paths.items():
            with ctx:
                t = _time(lambda: (layer.program(generator=gen), layer.drift(1.0, generator=gen)))
                times.setdefault(f"{path} program + first read", []).append(t)
                for tr in READS:
                    times.setdefault(f"{path} drift to a further read time", []).append(
                        _time(partial(layer.drift, tr, generator=gen)))
        if first_order:
            approx.program(generator=gen)
            approx.drift(1.0, generator=gen)
            times.setdefault("first_order drift to a further read time", []).append(
                _time(partial(approx.drift, READS[0], generator=gen)))
        with torch.no_grad():
            times.setdefault("nn.Linear forward", []).append(
                min(_time(lambda: dig(x)) for _ in range(20)))
    lin = statistics.median(times["nn.Linear forward"])
    print("\n| AnalogLinear(512, 512), 1 ohm, PCM | median s | ratio to nn.Linear |")
    print("|---|---:|---:|")
    for name, ts in times.items():
        m = statistics.median(ts)
        print(f"| {name} | {m:.4f} | {m / lin:.0f}x |")
    g = layer.tiled.tile.state.g.float()  # type: ignore[union-attr]
    M = circuit.effective_conductance(g, 1.0, 1.0).double()  # as the tiles solve it
    with _Sweep():
        ref = circuit.effective_conductance(g.double(), 1.0, 1.0)
    err = float((M - ref).abs().max() / ref.abs().max())
    print(f"\nnested vs row sweep, effective conductances of the 8 tiles: max rel. error "
          f"{err:.2e}; achieved error reported by the tile (vs CG): "
          f"{layer.tiled.tile.ir_error:.1e}")  # type: ignore[union-attr]
    if first_order:
        print(f"first_order: achieved error (Tile.ir_error, vs CG) "
              f"{approx.tiled.tile.ir_error:.1e}")  # type: ignore[union-attr]


def resnet_case(r_wire: float, reads: tuple[float, ...],
                ir_drop: Literal["exact", "first_order"] = "exact", label: str = "") -> None:
    torch.manual_seed(0)
    model = resnet18()
    analog = to_analog(model, dataclasses.replace(hardware("per_mvm", r_wire), ir_drop=ir_drop))
    gen = torch.Generator().manual_seed(0)
    images = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    t0 = time.perf_counter()
    program(analog, generator=gen, calibration=images)  # reads the cells at t = 0
    first = time.perf_counter() - t0
    c0 = time.process_time()
    further = [_time(partial(drift, analog, tr, generator=gen)) for tr in reads]
    cpu = (time.process_time() - c0) / len(reads)  # CPU seconds of all threads, per read
    layers = [layer for _, layer in analog_layers(analog)]
    tiles = sum(int(layer.tiled.tile.shape.numel()) for layer in layers)  # type: ignore
    err = 0.0
    if r_wire:  # the last tile of the first and the last layer, against the row sweep
        for layer in (layers[0], layers[-1]):
            g = layer.tiled.tile.state.g.float()  # type: ignore[union-attr]
            one = g.reshape(-1, *g.shape[-3:])[-1]
            M = circuit.effective_conductance(one, r_wire, r_wire).double()  # as the tiles do
            with _Sweep():
                ref = circuit.effective_conductance(one.double(), r_wire, r_wire)
            err = max(err, float((M - ref).abs().max() / ref.abs().max()))
    ir = f"{r_wire:g} ohm segments, {ir_drop}{label}" if r_wire else "no IR drop"
    achieved = mapping_report(analog).ir_error.max() if r_wire else 0.0
    print(f"| ResNet-18-sized, {tiles} tiles, {ir} | {first:.1f} | "
          f"{', '.join(f'{t:.1f}' for t in further)} | {cpu:.1f} | {err:.1e} | "
          f"{achieved:.1e} |")


def resnet_alternating(baseline: str, order: str = "ABBAAB") -> None:
    """The ResNet's further read times (1 ohm), alternately with this tree's nested dissection
    (A) and with ``baseline`` (B) in one process (this VM's speed drifts within minutes)."""
    torch.manual_seed(0)
    analog = to_analog(resnet18(), hardware("per_mvm", 1.0))
    gen = torch.Generator().manual_seed(0)
    program(analog, generator=gen, calibration=torch.rand(
        2, 3, 64, 64, generator=torch.Generator().manual_seed(1)))
    times: dict[str, list[float]] = {"A": [], "B": []}
    tr = READS[0]
    for k in order:
        with _Baseline(baseline) if k == "B" else contextlib.nullcontext():
            times[k].append(_time(partial(drift, analog, tr, generator=gen)))
        tr *= 1.5
    a, b = (statistics.median(times[k]) for k in "AB")
    print(f"\nResNet further read times, alternated {order}: this tree "
          f"{', '.join(f'{t:.1f}' for t in times['A'])} s, baseline "
          f"{', '.join(f'{t:.1f}' for t in times['B'])} s; median ratio {b / a:.2f}x")


def _column_error(G: torch.Tensor, M: torch.Tensor, r: float) -> float:
    """Tile._check_ir's metric: column currents, all rows at 1 V, against CG (float64)."""
    v = torch.ones(1, G.shape[-2], dtype=torch.float64)
    ref = circuit.solve(G, v, r, r, method="cg")
    return float((v @ M.double() - ref).abs().max() / ref.abs().max())


def array_case(repeats: int) -> None:
    """One array: the mixed and the float64 nested dissection interleaved (1 torch thread,
    thread CPU time; 8 arrays on 2 threads, wall), and the mixed path's error per geometry."""
    from memxbar.crossbar.nested import effective_nested

    gen = torch.Generator().manual_seed(0)
    print("\n| arrays | float64 min / median (s) | mixed min / median (s) | speed-up (min, "
          "median) |")
    print("|---|---:|---:|---:|")
    saved = torch.get_num_threads()
    for n, stack, threads, clock in ((256, 1, 1, time.thread_time),
                                     (512, 1, 1, time.thread_time),
                                     (256, 8, 2, time.perf_counter)):
        torch.set_num_threads(threads)
        G = 1e-6 * 100 ** torch.rand(stack, n, n, generator=gen, dtype=torch.float64)
        ts: dict[bool, list[float]] = {False: [], True: []}
        for _ in range(repeats):
            for mixed in (False, True):
                t0 = clock()
                effective_nested(G, 1.0, 1.0, mixed=mixed)
                ts[mixed].append(clock() - t0)
        (a, b), (c, d) = ((min(v), statistics.median(v)) for v in ts.values())
        what = "thread CPU" if clock is time.thread_time else "wall"
        print(f"| {stack} x {n} x {n}, {threads} thread(s), {what} | {a:.3f} / {b:.3f} | "
              f"{c:.3f} / {d:.3f} | {a / c:.2f}x, {b / d:.2f}x |")
    torch.set_num_threads(saved)
    print("\n| mixed path's error: column currents (all rows at 1 V) vs CG / largest entry "
          "error vs float64 nested, over the largest entry | 0.1 ohm | 1 ohm | 4 ohm |")
    print("|---|---:|---:|---:|")
    for n in (256, 512):
        for lo, hi in ((0.25e-6, 25e-6), (4e-6, 100e-6)):
            G = lo * (hi / lo) ** torch.rand(n, n, generator=gen, dtype=torch.float64)
            errs = []
            for r in (0.1, 1.0, 4.0):
                M, ref = (effective_nested(G, 1 / r, 1 / r, mixed=m) for m in (True, False))
                entry = float((M - ref).abs().max() / ref.abs().max())
                errs.append(f"{_column_error(G, M, r):.1e} / {entry:.1e}")
            print(f"| {n} x {n}, {lo * 1e6:g}-{hi * 1e6:g} uS | " + " | ".join(errs) + " |")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--resnet", action="store_true", help="also the ResNet-18-sized model")
    ap.add_argument("--rounds", type=int, default=3, help="rounds of the layer case")
    ap.add_argument("--reads", type=int, default=len(READS), choices=range(1, len(READS) + 1),
                    help="further read times of the model case (the last ones of 1 h, 1 day)")
    ap.add_argument("--no-layer", action="store_true", help="skip the layer case")
    ap.add_argument("--sweep", action="store_true",
                    help="time the layer case with the row sweep too (about 10x slower)")
    ap.add_argument("--first-order", action="store_true",
                    help="also the first-order IR-drop approximation (TileConfig.ir_drop)")
    ap.add_argument("--float64", action="store_true",
                    help="also the float64 nested dissection (the layer case interleaved; "
                         "the model once more)")
    ap.add_argument("--baseline", metavar="NESTED_PY",
                    help="time the layer case with this version of crossbar/nested.py "
                         "too (interleaved), and the model's read times alternately")
    ap.add_argument("--arrays", type=int, metavar="REPEATS", default=0,
                    help="also one array: mixed against float64 nested dissection, and the "
                         "mixed path's error per geometry")
    args = ap.parse_args()
    print(header("network-scale IR drop"))
    if args.arrays:
        array_case(args.arrays)
    if not args.no_layer:
        layer_case(args.rounds, args.sweep, args.baseline, args.first_order, args.float64)
    if args.resnet:
        print("\n| model | program + first read (s) | each further read time (s) | its CPU "
              "time, all threads (s) | max rel. error vs row sweep | max achieved error "
              "(ir_error) |")
        print("|---|---:|---:|---:|---:|---:|")
        for r in (0.0, 1.0):
            resnet_case(r, READS[-args.reads:])
        if args.baseline:
            resnet_alternating(args.baseline)
        if args.float64:
            with _Float64():
                resnet_case(1.0, READS[-args.reads:], label=", float64 nested")
        if args.first_order:
            resnet_case(1.0, READS[-args.reads:], "first_order")


if __name__ == "__main__":
    main()
