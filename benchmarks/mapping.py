"""Analog layers against their digital counterparts, measured in the same run.

1. ``AnalogLinear(512, 512)`` on 256 x 256 tiles (differential pairs on two columns, so 2 x 4
   tiles), batch 256, PCM (Joshi 2020) read 1 day after programming, 8-bit DAC, 8-bit ADC
   (calibrated range), IR drop (1 ohm per segment), forward versus ``nn.Linear`` forward, with
   read noise frozen per read time plus its white part per conversion ("physical", the
   default), drawn once per read time ("per_read") and for every MVM ("per_mvm").
2. Program plus drift (read at 1 day) of that layer versus one ``nn.Linear`` forward, without
   and with IR drop (the IR-drop solve happens once per read time).
3. A small conv net (LeNet-style on 3 x 32 x 32, batch 64) forward versus its digital forward,
   with per-patch ("dynamic", the default) input scaling (patch codes written once, channel-major,
   one batched matmul) and with one input range per layer calibrated on the batch
   ("calibrated": the convolution runs as conv2d of the DAC codes, no unfolding); read noise
   "physical" (the default), once per read time and per MVM.
4. Peak memory of converting and programming a ResNet-18-sized model (11.7M weights) onto
   256 x 256 PCM tiles, in a fresh process (ru_maxrss).

Baselines and candidates are timed in turn (``best_times``), so both see the same load.
Run: ``python benchmarks/mapping.py`` (prints a Markdown table).
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Literal

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as memxbar sets it, before torch loads
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).parent))
from _timing import best_time, best_times, header  # noqa: E402

from memxbar.crossbar.periphery import ADC, DAC  # noqa: E402
from memxbar.crossbar.tile import ReadNoise, TileConfig  # noqa: E402
from memxbar.devices import presets  # noqa: E402
from memxbar.mapping import (  # noqa: E402
    AnalogLinear,
    MappingConfig,
    calibrate,
    drift,
    program,
    to_analog,
)
from memxbar.studies.workloads import LeNet  # noqa: E402

DAY = 86400.0
Scaling = Literal["dynamic", "fixed", "calibrated"]


def hardware(read_noise: ReadNoise, r_wire: float = 1.0) -> TileConfig:
    return TileConfig(rows=256, cols=256, device=presets.get("pcm-joshi2020"), dac=DAC(bits=8),
                      adc=ADC(bits=8, range_mode="calibrated"), r_row=r_wire, r_col=r_wire,
                      read_noise=read_noise)


class _Block(nn.Module):
    """ResNet basic block: two 3x3 convolutions and a (projection) shortcut."""

    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.ReLU(),
                                  nn.Conv2d(cout, cout, 3, 1, 1, bias=False))
        self.short = (nn.Conv2d(cin, cout, 1, stride, bias=False)
                      if stride != 1 or cin != cout else nn.Identity())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.body(x) + self.short(x))


def resnet18(n_classes: int = 1000) -> nn.Module:
    """A ResNet-18-shaped network (11.7M weights) for the memory measurement."""
    layers: list[nn.Module] = [nn.Conv2d(3, 64, 7, 2, 3, bias=False), nn.ReLU()]
    cin = 64
    for cout, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
        layers += [_Block(cin, cout, stride), _Block(cout, cout, 1)]
        cin = cout
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(512, n_classes)]
    return nn.Sequential(*layers)


def memory_child() -> None:
    model = resnet18()
    n = sum(p.numel() for p in model.parameters())
    analog = to_analog(model, hardware("per_mvm", 0.0))
    program(analog, generator=torch.Generator().manual_seed(0),
            calibration=torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(1)))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB -> GiB
    print(f"{n} {peak:.3f}")


def main() -> None:
    print(header("mapping benchmarks"))
    gen = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    dig = nn.Linear(512, 512)
    x = torch.rand(256, 512, generator=gen)
    rows: list[tuple[str, float, float | None, float | None]] = []
    modes: tuple[ReadNoise, ...] = ("physical", "per_read", "per_mvm")
    with torch.no_grad():
        layers = {}
        for mode in modes:
            layer = AnalogLinear.from_digital(dig, hardware(mode))
            layer.program(generator=gen)
            calibrate(layer, x)
            layer.drift(DAY, generator=gen)
            layers[mode] = layer
        fns: dict[str, Callable[[], object]] = {"digital": lambda: dig(x)}
        fns.update({mode: partial(layer, x) for mode, layer in layers.items()})
        for r_wire in (0.0, 1.0):
            layer = AnalogLinear.from_digital(dig, hardware("per_mvm", r_wire))

            def life(layer: AnalogLinear = layer) -> None:
                layer.program(generator=gen)
                layer.drift(DAY, generator=gen)  # reads the cells at 1 day (and solves IR drop)
            fns[f"life{r_wire}"] = life
        t = best_times({k: f for k, f in fns.items() if k != "life1.0"}, repeat=20)
        t["life1.0"] = best_time(fns["life1.0"], repeat=3)
        t_lin = t["digital"]
        rows.append(("nn.Linear(512, 512) forward, batch 256", t_lin, None, None))
        for mode, target in (("physical", 1.5), ("per_read", 1.5), ("per_mvm", 2.5)):
            rows.append((f"AnalogLinear forward, read noise {mode}", t[mode], t[mode] / t_lin,
                         target))
        for r_wire in (0.0, 1.0):
            ir = "with IR drop" if r_wire else "no IR drop"
            rows.append((f"program + drift to 1 day, {ir}", t[f"life{r_wire}"],
                         t[f"life{r_wire}"] / t_lin, None if r_wire else 5.0))  # issue 15

        torch.manual_seed(0)
        net = LeNet((3, 32, 32), 10).eval()
        xi = torch.rand(64, 3, 32, 32, generator=gen)
        scalings: tuple[Scaling, ...] = ("dynamic", "calibrated")
        cases = [(noise, scaling) for noise in modes for scaling in scalings]
        conv: dict[str, Callable[[], object]] = {"digital": lambda: net(xi)}
        for noise, scaling in cases:
            analog = to_analog(net, hardware(noise, 0.0),
                               mapping=MappingConfig(input_scaling=scaling))
            program(analog, generator=gen, calibration=xi)
            drift(analog, DAY, generator=gen)
            conv[f"{noise} {scaling}"] = partial(analog, xi)
        t = best_times(conv, repeat=10)
        rows.append(("LeNet 3x32x32 forward, batch 64 (digital)", t["digital"], None, None))
        how = {"dynamic": "per-patch input scaling, patch codes written once",
               "calibrated": "calibrated input range per layer, conv2d of DAC codes"}
        for noise, scaling in cases:
            rows.append((f"LeNet analog forward (PCM, 8-bit DAC/ADC, read noise {noise}, no IR "
                         f"drop; {how[scaling]})", t[f"{noise} {scaling}"],
                         t[f"{noise} {scaling}"] / t["digital"], 3.0))

    print("\n| case | time (ms) | ratio to digital | target |")
    print("|---|---:|---:|---:|")
    for name, seconds, ratio, goal in rows:
        r = f"{ratio:.2f}x" if ratio is not None else "baseline"
        tg = f"<= {goal}x" if goal is not None else ""
        print(f"| {name} | {seconds * 1e3:.2f} | {r} | {tg} |")

    out = subprocess.run([sys.executable, __file__, "--memory-child"], capture_output=True,
                         text=True, check=True).stdout.split()
    print(f"\nResNet-18-sized model ({int(out[0]) / 1e6:.1f}M weights) converted and programmed "
          f"on 256x256 PCM tiles: peak memory {float(out[1]):.2f} GiB (target < 4 GiB)")


if __name__ == "__main__":
    if "--memory-child" in sys.argv:
        memory_child()
    else:
        main()
