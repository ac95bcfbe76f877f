"""The issue-15 cases on one torch device (a CUDA GPU by default), against their digital
baselines on the same device, in one run.

1. ``AnalogLinear(512, 512)`` on 256 x 256 PCM tiles (the layer of ``benchmarks/mapping.py``:
   8-bit DAC/ADC, calibrated ADC range, 1 ohm segments), forward at batch 256 and 16384 with
   read noise physical / per_read / per_mvm, against ``nn.Linear`` at the same batch.
2. Its program plus drift to 1 day without and with IR drop, and a drift to a further read
   time with IR drop (exact; and the first-order approximation), against one ``nn.Linear``
   forward at batch 256.
3. LeNet on 3 x 32 x 32, batch 64, per-patch ("dynamic", the default) and calibrated input
   scaling, against its digital forward.
4. ``--resnet``: the ResNet-18-sized model (11.7M weights, 370 tiles of 256 x 256) with 1 ohm
   segments and without IR drop: program plus the first read (ADC calibration on two
   3 x 64 x 64 images) and each further read time (1 h, 1 day), in seconds, and the largest
   achieved IR-drop error the layers report, a forward of 32 images of 3 x 64 x 64 against
   the digital model's, and the peak GPU memory allocated; ``--batch-entries N ...`` repeats
   the further read times with :data:`memxbar.crossbar.nested.BATCH_ENTRIES_ACCELERATOR` = N.

Every timed call ends with a device synchronisation. Medians / minima over the rounds.
Run: ``python benchmarks/gpu.py [--device cuda] [--resnet]`` (prints Markdown tables);
``--device cpu --rounds 2`` checks the script on a machine without a GPU.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Literal

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as memxbar sets it, before torch loads
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).parent))
from mapping import DAY, ReadNoise, Scaling, hardware, resnet18  # noqa: E402
from memxbar.crossbar import nested  # noqa: E402
from memxbar.mapping import (  # noqa: E402
    AnalogLinear,
    MappingConfig,
    calibrate,
    drift,
    mapping_report,
    program,
    to_analog,
)
from memxbar.studies.workloads import LeNet  # noqa: E402

IrDrop = Literal["exact", "first_order"]
NOISE: tuple[ReadNoise, ...] = ("physical", "per_read", "per_mvm")
READS = (3600.0, DAY)  # further read times of the model case, s


class Clock:
    """Wall time of calls on ``device``, each followed by a synchronisation."""

    def __init__(self, device: torch.device) -> None:
        self.device = device

    def sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def once(self, fn: Callable[[], object]) -> float:
        self.sync()
        t0 = time.perf_counter()
        fn()
        self.sync()
        return time.perf_counter() - t0

    def rounds(self, fns: dict[str, Callable[[], object]], rounds: int,
               warmup: int = 2) -> dict[str, tuple[float, float]]:
        """(median, minimum) s of each function, called in turn ``rounds`` times."""
        for _ in range(warmup):
            for fn in fns.values():
                self.once(fn)
        ts: dict[str, list[float]] = {k: [] for k in fns}
        for _ in range(rounds):
            for k, fn in fns.items():
                ts[k].append(self.once(fn))
        return {k: (statistics.median(v), min(v)) for k, v in ts.items()}


def _row(name: str, t: tuple[float, float], base: tuple[float, float] | None,
         unit: float = 1e3) -> str:
    ratio = "baseline" if base is None else f"{t[0] / base[0]:.1f}x"
    return f"| {name} | {t[0] * unit:.3f} / {t[1] * unit:.3f} | {ratio} |"


def _life(layer: AnalogLinear, gen: torch.Generator) -> None:
    layer.program(generator=gen)
    layer.drift(DAY, generator=gen)  # reads the cells at 1 day (and solves IR drop)


def _reread(layer: AnalogLinear, times: Iterator[float], gen: torch.Generator) -> None:
    layer.drift(next(times), generator=gen)


def layer_cases(dev: torch.device, clock: Clock, rounds: int) -> None:
    gen = torch.Generator(device=dev).manual_seed(0)
    torch.manual_seed(0)
    dig = nn.Linear(512, 512).to(dev)
    print("\n| AnalogLinear(512, 512), PCM, 1 ohm | median / min (ms) | ratio to nn.Linear |")
    print("|---|---:|---:|")
    with torch.no_grad():
        for batch in (256, 16384):
            x = torch.rand(batch, 512, generator=gen, device=dev)
            fns: dict[str, Callable[[], object]] = {"digital": partial(dig, x)}
            for mode in NOISE:
                layer = AnalogLinear.from_digital(dig, hardware(mode)).to(dev)
                layer.program(generator=gen)
                calibrate(layer, x[:256])
                layer.drift(DAY, generator=gen)
                fns[mode] = partial(layer, x)
            t = clock.rounds(fns, rounds * 4)
            print(_row(f"nn.Linear forward, batch {batch}", t["digital"], None))
            for mode in NOISE:
                print(_row(f"forward, batch {batch}, read noise {mode}", t[mode], t["digital"]))
        x = torch.rand(256, 512, generator=gen, device=dev)
        life: dict[str, Callable[[], object]] = {"digital": lambda: dig(x)}
        layers = {}
        cases: tuple[tuple[str, float, IrDrop], ...] = (
            ("no IR drop", 0.0, "exact"), ("IR drop, exact", 1.0, "exact"),
            ("IR drop, first order", 1.0, "first_order"))
        for name, r, ir in cases:
            hw = dataclasses.replace(hardware("per_mvm", r), ir_drop=ir)
            layer = AnalogLinear.from_digital(dig, hw).to(dev)
            layers[name] = layer
            life[f"program + drift to 1 day, {name}"] = partial(_life, layer, gen)
        t = clock.rounds(life, rounds)
        for k, v in t.items():
            if k != "digital":
                print(_row(k, v, t["digital"]))
        reads: dict[str, Callable[[], object]] = {"digital": lambda: dig(x)}
        times = iter(DAY * 1.5 ** k for k in range(1, 1000))
        for name in ("IR drop, exact", "IR drop, first order"):
            layers[name].program(generator=gen)
            reads[f"drift to a further read time, {name}"] = partial(_reread, layers[name],
                                                                       times, gen)
        t = clock.rounds(reads, rounds)
        for k, v in t.items():
            if k != "digital":
                print(_row(k, v, t["digital"]))
        err = layers["IR drop, exact"].tiled.tile.ir_error  # type: ignore[union-attr]
        print(f"\nachieved IR-drop error of the exact layer (Tile.ir_error, vs CG): {err:.1e}")


def conv_cases(dev: torch.device, clock: Clock, rounds: int) -> None:
    gen = torch.Generator(device=dev).manual_seed(0)
    torch.manual_seed(0)
    net = LeNet((3, 32, 32), 10).eval().to(dev)
    x = torch.rand(64, 3, 32, 32, generator=gen, device=dev)
    scalings: tuple[Scaling, ...] = ("dynamic", "calibrated")
    fns: dict[str, Callable[[], object]] = {"digital": lambda: net(x)}
    for noise in NOISE:
        for scaling in scalings:
            analog = to_analog(net, hardware(noise, 0.0),
                               mapping=MappingConfig(input_scaling=scaling)).to(dev)
            program(analog, generator=gen, calibration=x)
            drift(analog, DAY, generator=gen)
            fns[f"read noise {noise}, {scaling} input scaling"] = partial(analog, x)
    with torch.no_grad():
        t = clock.rounds(fns, rounds * 4)
    print("\n| LeNet 3x32x32, batch 64, PCM, 8-bit DAC/ADC, no IR drop | median / min (ms) | "
          "ratio to digital |")
    print("|---|---:|---:|")
    for k, v in t.items():
        print(_row("digital forward" if k == "digital" else k, v,
                   None if k == "digital" else t["digital"]))


def resnet_case(dev: torch.device, clock: Clock, r_wire: float,
                batch_entries: tuple[int, ...]) -> None:
    torch.manual_seed(0)
    if dev.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(dev)
    model = resnet18().eval().to(dev)
    analog = to_analog(model, hardware("per_mvm", r_wire)).to(dev)
    gen = torch.Generator(device=dev).manual_seed(0)
    images = torch.rand(2, 3, 64, 64, generator=gen, device=dev)
    first = clock.once(lambda: program(analog, generator=gen, calibration=images))
    further = [clock.once(partial(drift, analog, tr, generator=gen)) for tr in READS]
    achieved = float(mapping_report(analog).ir_error.max()) if r_wire else 0.0
    batch = torch.rand(32, 3, 64, 64, generator=gen, device=dev)
    with torch.no_grad():
        t = clock.rounds({"digital": partial(model, batch), "analog": partial(analog, batch)}, 5)
    ir = f"{r_wire:g} ohm segments, exact" if r_wire else "no IR drop"
    peak = (f"{torch.cuda.max_memory_allocated(dev) / 2**30:.1f}" if dev.type == "cuda"
            else "-")
    print(f"| ResNet-18-sized, 370 tiles, {ir} | {first:.2f} | "
          f"{', '.join(f'{s:.2f}' for s in further)} | {achieved:.1e} | "
          f"{t['analog'][0] * 1e3:.1f} ({t['analog'][0] / t['digital'][0]:.1f}x) | {peak} |")
    if not r_wire:
        return
    saved = nested.BATCH_ENTRIES_ACCELERATOR
    for n in batch_entries:
        nested.BATCH_ENTRIES_ACCELERATOR = n
        ts = [clock.once(partial(drift, analog, DAY * 2.0 ** k, generator=gen)) for k in (1, 2)]
        print(f"| the same, BATCH_ENTRIES_ACCELERATOR = 2^{n.bit_length() - 1} | | "
              f"{', '.join(f'{x:.2f}' for x in ts)} | | | |")
    nested.BATCH_ENTRIES_ACCELERATOR = saved


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cuda", help="torch device (default cuda)")
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--resnet", action="store_true", help="also the ResNet-18-sized model")
    ap.add_argument("--batch-entries", nargs="*", type=int, default=[],
                    help="ResNet further reads again with these accelerator batch sizes")
    ap.add_argument("--no-layer", action="store_true", help="skip the layer and conv cases")
    args = ap.parse_args()
    dev = torch.device(args.device)
    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else "CPU"
    print(f"memxbar on {dev} ({name}) — torch {torch.__version__}, "
          f"{torch.get_num_threads()} CPU threads")
    clock = Clock(dev)
    if not args.no_layer:
        layer_cases(dev, clock, args.rounds)
        conv_cases(dev, clock, args.rounds)
    if args.resnet:
        print("\n| model | program + first read (s) | each further read time (s) | max "
              "achieved error (ir_error) | forward, 32 x 3 x 64 x 64 (ms; ratio to digital) | "
              "peak GPU memory (GiB) |")
        print("|---|---:|---:|---:|---:|---:|")
        for r in (0.0, 1.0):
            resnet_case(dev, clock, r, tuple(args.batch_entries))


if __name__ == "__main__":
    main()
