"""Program + drift of ``AnalogLinear(512, 512)`` (no IR drop) against earlier trees, one process.

The layer of ``benchmarks/mapping.py`` (256 x 256 PCM tiles, differential pairs on two columns,
2 x 4 tiles, 524,288 cells, 8-bit DAC/ADC, read noise per MVM): ``program`` then ``drift`` to
1 day, against one ``nn.Linear(512, 512)`` forward at batch 256. Each ``--against`` revision
is extracted with ``git archive`` and imported under its own module tree in this process, so
the working tree, the revisions and ``nn.Linear`` run in turn, round after round, under the
same load. 1 thread: thread CPU time; more: wall time. Prints medians and minima (ms). The
row "2 normal draws" is the floor of the PCM model's statistics: one standard normal per cell
for the programming error and one for the drift exponent, drawn from one generator as the
model draws them (torch's CPU sampler; no other work). The row "device arithmetic, whole
tensors" is the PCM model's programming and read statistics on all cells at once, no blocks and
no tile: the device's floor in eager torch. ``--blocks k ...``: the working tree once more with
device blocks of ``2^k`` cells.

Run: ``python benchmarks/program_drift.py --threads 1 2 --against 1d732e3 --blocks 15 16 18``
"""

from __future__ import annotations

import argparse
import importlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as memxbar sets it, before torch loads
import torch
from torch import nn

ROOT = Path(__file__).resolve().parent.parent
STAGES = ("devices", "crossbar", "mapping", "training", "studies")
DAY = 86400.0


def extract(rev: str, into: Path) -> Path:
    """The tree at ``rev`` as an importable ``memxbar`` package under ``into``."""
    tree = into / "tree"
    tree.mkdir()
    archive = subprocess.run(["git", "archive", rev, "memxbar", *STAGES], cwd=ROOT,
                             capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(tree)], input=archive, check=True)
    pkg = into / "pkg" / "memxbar"
    pkg.mkdir(parents=True)
    for f in (tree / "memxbar").glob("*.py"):
        (pkg / f.name).write_bytes(f.read_bytes())
    for stage in STAGES:  # links, as in the working tree (older trees had an import hook)
        (pkg / stage).unlink(missing_ok=True)
        (pkg / stage).symlink_to(tree / stage, target_is_directory=True)
    return pkg.parent


Maker = Callable[..., Callable[[], None]]


def load(root: Path) -> Maker:
    """Import memxbar from ``root``; returns a maker of the program + drift call for a digital
    layer (``block``: the device blocks' size, ``devices.base.BLOCK``, set around each call).
    The modules are taken out of ``sys.modules`` afterwards (the objects keep them)."""
    sys.path.insert(0, str(root))
    try:
        base = importlib.import_module("memxbar.devices.base")
        mapping = importlib.import_module("memxbar.mapping")
        periphery = importlib.import_module("memxbar.crossbar.periphery")
        tile = importlib.import_module("memxbar.crossbar.tile")
        presets = importlib.import_module("memxbar.devices").presets
        hw = tile.TileConfig(rows=256, cols=256, device=presets.get("pcm-joshi2020"),
                             dac=periphery.DAC(bits=8),
                             adc=periphery.ADC(bits=8, range_mode="calibrated"),
                             r_row=0.0, r_col=0.0, read_noise="per_mvm")
        layer_class = mapping.AnalogLinear
    finally:
        sys.path.remove(str(root))
        for name in [m for m in sys.modules if m == "memxbar" or m.startswith("memxbar.")]:
            del sys.modules[name]

    def make(dig: nn.Linear, block: int | None = None) -> Callable[[], None]:
        layer = layer_class.from_digital(dig, hw)
        gen = torch.Generator().manual_seed(0)
        default = getattr(base, "BLOCK")  # noqa: B009

        def life() -> None:
            setattr(base, "BLOCK", block or default)  # noqa: B010 (a module of any tree)
            try:
                layer.program(generator=gen)
                layer.drift(DAY, generator=gen)
            finally:
                setattr(base, "BLOCK", default)  # noqa: B010
        return life
    return make


def device_floor(cells: int) -> Callable[[], None]:
    """The PCM model's own arithmetic for ``cells`` cells on whole tensors: programming (the
    two draws included) and the read statistics at 1 day, no blocks, no tile."""
    from memxbar.devices import presets

    dev = presets.get("pcm-joshi2020")
    target = torch.rand(cells, generator=torch.Generator().manual_seed(3)) * dev.g_max
    gen = torch.Generator().manual_seed(4)
    day = torch.tensor(DAY)

    def run() -> None:
        dev._stats(dev._program(target, gen), day)
    return run


def measure(fns: dict[str, Callable[[], object]], threads: int, rounds: int
            ) -> dict[str, list[float]]:
    torch.set_num_threads(threads)
    clock = time.thread_time if threads == 1 else time.perf_counter
    times: dict[str, list[float]] = {k: [] for k in fns}
    with torch.no_grad():
        for fn in fns.values():
            fn()
            fn()
        for _ in range(rounds):
            for k, fn in fns.items():
                t0 = clock()
                fn()
                times[k].append(clock() - t0)
    return times


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--against", nargs="*", default=["HEAD"], help="git revisions")
    ap.add_argument("--threads", nargs="*", type=int, default=[1, 2])
    ap.add_argument("--rounds", type=int, default=25)
    ap.add_argument("--blocks", nargs="*", type=int, default=[],
                    help="also the working tree with device blocks of 2^k cells, for these k")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        makers = {}
        for i, rev in enumerate(args.against):
            (Path(tmp) / str(i)).mkdir()
            makers[rev] = load(extract(rev, Path(tmp) / str(i)))
        makers["working tree"] = load(ROOT)
        torch.manual_seed(0)
        dig = nn.Linear(512, 512)
        x = torch.rand(256, 512, generator=torch.Generator().manual_seed(1))
        fns: dict[str, Callable[[], object]] = {k: make(dig) for k, make in makers.items()}
        fns.update({f"working tree, blocks of 2^{k}": makers["working tree"](dig, 1 << k)
                    for k in args.blocks})
        fns["nn.Linear"] = lambda: dig(x)
        cells = 2 * 512 * 512  # differential pairs
        fns["device arithmetic, whole tensors"] = device_floor(cells)
        draws, gen = torch.empty(cells), torch.Generator().manual_seed(2)
        fns["2 normal draws"] = lambda: [torch.randn(cells, generator=gen, out=draws)
                                         for _ in range(2)]
        print(f"program + drift to 1 day, AnalogLinear(512, 512), torch {torch.__version__}, "
              f"{args.rounds} rounds, load average {os.getloadavg()[0]:.1f}")
        for threads in args.threads:
            t = measure(fns, threads, args.rounds)
            med = {k: statistics.median(v) for k, v in t.items()}
            low = {k: min(v) for k, v in t.items()}
            kind = "thread CPU time" if threads == 1 else "wall time"
            print(f"\n{threads} thread(s), {kind}\n\n| tree | median ms (x nn.Linear) | "
                  "min ms (x nn.Linear) |\n|---|---:|---:|")
            for k in fns:
                print(f"| {k} | {med[k] * 1e3:.2f} ({med[k] / med['nn.Linear']:.2f}x) | "
                      f"{low[k] * 1e3:.2f} ({low[k] / low['nn.Linear']:.2f}x) |")


if __name__ == "__main__":
    main()
