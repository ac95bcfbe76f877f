"""Energy and area breakdown of the digits MLP on RRAM and PCM crossbars.

Workload: scikit-learn's 8x8 digits (memxbar.studies.workloads.digits, seed 0), MLP with one
hidden layer of 64 (memxbar.studies.workloads.MLP), trained digitally (memxbar.training.digital
.train: Adam, lr 3e-3, 10 epochs, seed 0), converted to analog with one tile configuration and
programmed (seed 0). Hardware: 64 x 64 arrays, differential pairs on neighbouring columns,
bit-serial 8-bit DAC (7 read cycles), 8-bit ADCs calibrated per tile on the training images,
8 columns per ADC, memxbar's default cost model (22 nm, survey ADC energy and area).
Devices: presets "rram-falcone2025" (CMO/HfOx RRAM, 8-90 uS, 0.5 V, 9.8 ns read) and
"pcm-joshi2020" (PCM, 0-25 uS, 0.2 V, 250 ns read). The cost is estimated on the first 256
test images; the test accuracy of the analog model right after programming is printed too.

Run: ``.venv/bin/python benchmarks/energy_breakdown.py [out.png]`` (default
benchmarks/energy_breakdown.png); prints the per-layer, per-component tables.
"""

from __future__ import annotations

import os
import sys

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as memxbar sets it, before torch loads
import torch

from memxbar.crossbar.periphery import ADC, DAC
from memxbar.crossbar.tile import TileConfig
from memxbar.devices import presets
from memxbar.mapping import program, to_analog
from memxbar.mapping.cost import estimate_cost, plot_breakdown
from memxbar.studies.workloads import MLP, digits, loaders
from memxbar.training.digital import evaluate, train

DEVICES = {"RRAM": "rram-falcone2025", "PCM": "pcm-joshi2020"}


def main(path: str = "benchmarks/energy_breakdown.png") -> dict:
    train_set, test_set = digits(seed=0)
    train_loader, test_loader = loaders(train_set, test_set, 32, seed=0)
    torch.manual_seed(0)
    model = MLP((1, 8, 8), 10, hidden=(64,))
    train(model, train_loader, epochs=10, lr=3e-3, generator=0)
    model.eval()
    x_cal = train_set.tensors[0][:256]
    x = test_set.tensors[0][:256]
    reports = {}
    for label, preset in DEVICES.items():
        hw = TileConfig(rows=64, cols=64, device=presets.get(preset),
                        dac=DAC(bits=8, bit_serial=True), adc=ADC(bits=8,
                                                                  range_mode="calibrated"))
        analog = to_analog(model, hw)
        program(analog, generator=torch.Generator().manual_seed(0), calibration=x_cal)
        acc = evaluate(analog, test_loader)
        rep = estimate_cost(analog, x)
        reports[label] = rep
        t = rep.totals()
        print(f"=== {label}: {preset}, test accuracy {100 * acc:.1f} % "
              f"(digital {100 * evaluate(model, test_loader):.1f} %)")
        print(f"energy {t['energy_J'] * 1e9:.4g} nJ/inference, {t['TOPS_per_W']:.4g} TOPS/W, "
              f"latency {t['latency_s'] * 1e6:.4g} us, area {t['area_mm2']:.4g} mm^2, "
              f"programming {t['program_energy_J'] * 1e9:.4g} nJ")
        print("energy per inference (nJ):")
        print((rep.energy_breakdown * 1e9).assign(total=lambda d: d.sum(axis=1)).to_string(
            float_format=lambda v: f"{v:.4g}"))
        print("area (mm^2):")
        print((rep.area_breakdown * 1e6).assign(total=lambda d: d.sum(axis=1)).to_string(
            float_format=lambda v: f"{v:.4g}"))
        print()
    plot_breakdown(reports, path)
    print(f"plot: {path}")
    return reports


if __name__ == "__main__":
    main(*sys.argv[1:2])
