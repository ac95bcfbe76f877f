"""Tutorial: your own model and dataset (docs/tutorials/own-model.md).

Any ``torch.nn.Module`` and any dataset of ``(input, label)`` pairs: here a small 1-D
convolutional network that tells three kinds of noisy waveform apart (``waves.py`` beside this
script). Part 1, the Python API: train, map onto PCM crossbars, program, read from 1 s to 10
years, cost. Part 2, the same model and dataset in a study file, on two technologies. About
40 s on two cores.
"""

from pathlib import Path

import torch
from torch.utils.data import DataLoader
from waves import load, wavenet  # your code (this script's folder is on sys.path)

from memxbar.crossbar.periphery import ADC, DAC
from memxbar.crossbar.tile import TileConfig
from memxbar.devices import presets
from memxbar.mapping import (
    MappingConfig,
    conversion_report,
    drift,
    estimate_cost,
    mapping_report,
    program,
    to_analog,
)
from memxbar.studies.report import results_table
from memxbar.studies.runner import load_study, run_study
from memxbar.training.digital import evaluate, train

YEAR = 365.25 * 86400.0  # s

if __name__ == "__main__":
    # Part 1: the Python API.
    train_set, test_set = load(seed=0)
    train_loader = DataLoader(train_set, batch_size=64, shuffle=True,
                              generator=torch.Generator().manual_seed(0))
    test_loader = DataLoader(test_set, batch_size=250)
    torch.manual_seed(0)
    model = wavenet((1, 64), 3)
    train(model, train_loader, epochs=10, lr=0.01, generator=0)  # memxbar's plain trainer
    print(f"digital accuracy {evaluate(model, test_loader):.3f}")

    # The hardware: one tile design (device, array size, periphery), one mapping policy.
    hardware = TileConfig(rows=64, cols=64, device=presets.get("pcm-joshi2020"),
                          dac=DAC(bits=8), adc=ADC(bits=8, range_mode="calibrated"),
                          r_row=1.0, r_col=1.0)
    mapping = MappingConfig(compensation="global")  # drift compensation, one factor per layer
    analog = to_analog(model, hardware, mapping=mapping)
    print(conversion_report(analog).to_string())  # which modules run analog, and why
    tiles = mapping_report(analog)                 # tiles per layer, weights per tile, ...
    print(tiles[["layer", "kind", "inputs", "outputs", "tiles", "weights_per_tile",
                 "utilization"]].to_string())

    calibration = train_set.tensors[0][:256]      # example inputs: ADC ranges are set from them
    program(analog, generator=torch.Generator().manual_seed(0), calibration=calibration)
    for label, t in (("1 s", 1.0), ("1 day", 86400.0), ("1 year", YEAR), ("10 years", 10 * YEAR)):
        drift(analog, t)  # every analog layer read t seconds after programming
        print(f"accuracy {label:>8} after programming: {evaluate(analog, test_loader):.3f}")

    drift(analog, 0.0)
    report = estimate_cost(analog, test_set.tensors[0][:32])  # per layer and component
    totals = report.totals()
    print(f"energy per inference {totals['energy_J'] * 1e9:.3f} nJ, latency "
          f"{totals['latency_s'] * 1e6:.2f} us, area {totals['area_m2'] * 1e6:.4f} mm^2")
    print(report.energy_breakdown.map(lambda j: f"{j * 1e12:.2f} pJ").to_string())

    # Part 2: the same model and dataset in a study (own-model.toml names "waves:load" and
    # "waves:wavenet"; the study finds waves.py next to the study file).
    summary = run_study(Path(__file__).with_name("own-model.toml"), progress=False)
    print(summary.describe())
    study, spec = load_study(summary.output)
    table = results_table(study, spec)
    print(table[["device", "t_label", "accuracy", "energy_per_inference"]].to_string(index=False))
