"""Physics check (issue 13): read disturb accumulated over inferences, end to end.

Every cell of a bit-serial design (8-bit DAC: 7 read cycles per input vector) is read once per
cycle in which its row's code is non-zero. The curves are the device laws evaluated at
``reads = 7 x inferences`` (full-scale inputs, every bit set); the markers come from
:func:`memxbar.mapping.disturb.apply_read_disturb` on a programmed 256 x 256 layer fed such
inputs, so the read counting, the polarity and the device update are checked against the law
they claim:

* MTJ (``MTJ.read_disturb_probability``): negative inputs read at ``-V_read`` and flip P
  junctions to AP; shown at 300 K and at 85 C (``Device.temperature``), the presets' own read
  voltages. The markers use the presets without their device-to-device R_P spread (nominal
  junctions: the law's assumption); the table also gives the presets as shipped.
* RRAM (``PowerLawReadDisturb.retained``, Jiang et al., IEEE TED 2021): the conductance above
  ``g_min`` kept by ``rram-falcone2025`` cells read at 0.2, 0.3 and 0.5 V (the preset's).

A third panel runs the whole path on a trained digits MLP (standardised pixels, so the first
layer's inputs are signed; the real test-set activations are ``example_input``, so the read
counts are the data's, not the full-scale bound): test accuracy after N inferences. Writes
``benchmarks/physics_disturb.png`` and prints the numbers quoted in BENCHMARKS.md.

    python benchmarks/physics_disturb.py
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as memxbar sets it, before torch loads
import torch  # noqa: E402
from torch import nn  # noqa: E402
from torch.utils.data import TensorDataset  # noqa: E402

from memxbar.crossbar.periphery import DAC  # noqa: E402
from memxbar.crossbar.tile import TileConfig  # noqa: E402
from memxbar.devices import presets  # noqa: E402
from memxbar.devices.base import CellState, Device  # noqa: E402
from memxbar.devices.mtj import MTJ  # noqa: E402
from memxbar.devices.rram import RRAM  # noqa: E402
from memxbar.mapping import analog_layers, program, to_analog  # noqa: E402
from memxbar.mapping.disturb import apply_read_disturb  # noqa: E402
from memxbar.studies import workloads  # noqa: E402
from memxbar.training.digital import evaluate, train  # noqa: E402

OUT = Path(__file__).parent
CYCLES = 7  # 8-bit bit-serial DAC
SIZE = 256
HOT = 358.15  # 85 C
INFERENCES = np.logspace(3, 14, 45)
MARKS = (1e6, 1e8, 1e10, 1e12, 1e14)


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def hardware(device: Device, rows: int = SIZE, cols: int = 2 * SIZE) -> TileConfig:
    return TileConfig(rows=rows, cols=cols, device=device, read_noise="off",
                      dac=DAC(bits=CYCLES + 1, bit_serial=True))


def layer(device: Device) -> nn.Module:
    torch.manual_seed(0)
    return program(to_analog(nn.Sequential(nn.Linear(SIZE, SIZE)), hardware(device)),
                   generator=gen(0))


def cells(net: nn.Module) -> CellState:
    """The cells of the one analog layer of ``net``."""
    ((_, analog),) = analog_layers(net)
    assert analog.tiled is not None and analog.tiled.tile.state is not None
    return analog.tiled.tile.state


def mtj_panel(ax: plt.Axes) -> None:
    print("MTJ read disturb, -V_read (P -> AP), 7 reads per inference")
    print(f"{'preset':<28} {'T (K)':>7} {'V (V)':>6} {'inferences':>10} {'p law':>10} "
          f"{'nominal MC':>10} {'preset MC':>10}")
    styles = {"mtj-neurosim": "C0", "mtj-nvsim": "C1", "mtj-vincent2014-compound4": "C2"}
    for name, colour in styles.items():
        for temp, ls in ((300.0, "-"), (HOT, "--")):
            shipped = dataclasses.replace(presets.get(name, MTJ), temperature=temp)
            nominal = dataclasses.replace(shipped, r_p_sigma=0.0)
            v = shipped.read_voltage
            law = [nominal.read_disturb_probability(CYCLES * n, voltage=-v) for n in INFERENCES]
            if name != "mtj-vincent2014-compound4":  # its junctions share neurosim's law
                ax.loglog(INFERENCES, np.maximum(law, 1e-14), colour, ls=ls,
                          label=f"{name}, {temp - 273.15:.0f} C, {v:g} V")
            for n in MARKS:
                p = nominal.read_disturb_probability(CYCLES * n, voltage=-v)
                if p < 1e-4:
                    continue
                frac = []
                for dev in (nominal, shipped):
                    net = layer(dev)
                    before = cells(net).latent["parallel"].clone()
                    apply_read_disturb(net, n, -torch.ones(4, SIZE), generator=gen(1))
                    after = cells(net).latent["parallel"]
                    frac.append(float((before & ~after).sum()) / float(before.sum()))
                print(f"{name:<28} {temp:>7.2f} {v:>6.3f} {n:>10.0e} {p:>10.3g} "
                      f"{frac[0]:>10.3g} {frac[1]:>10.3g}")
                if name != "mtj-vincent2014-compound4":
                    ax.loglog([n], [frac[0]], "o", color=colour, ms=5, mfc="none")
    ax.plot([], [], "ko", mfc="none", label="apply_read_disturb (256x256 layer)")
    ax.set_ylim(1e-13, 2.0)
    ax.set_xlabel("inferences (7 reads each)")
    ax.set_ylabel("P junctions flipped")
    ax.set_title("MTJ: read at -V_read")
    ax.legend(fontsize=6.5, loc="lower right")


def rram_panel(ax: plt.Axes) -> None:
    print("\nRRAM read disturb (rram-falcone2025 cells, g_max), 7 reads of 9.8 ns per inference")
    print(f"{'V (V)':>6} {'t_T (s)':>10} {'p':>7} {'inferences':>10} {'kept law':>9} "
          f"{'kept MC':>9}")
    base = presets.get("rram-falcone2025", RRAM)
    for v, colour in ((0.2, "C0"), (0.3, "C1"), (0.5, "C3")):
        dev = dataclasses.replace(base, read_voltage=v)
        law = dev.read_disturb
        assert law is not None
        kept = [float(law.retained(CYCLES * n * dev.read_time, v)) for n in INFERENCES]
        t_t = float(law.log_transition_time(v).exp())
        ax.semilogx(INFERENCES, kept, colour, label=f"{v:g} V (t_T = {t_t:.2g} s of stress)")
        for n in MARKS:
            net = layer(dev)
            g0 = cells(net).g.double().clone()
            apply_read_disturb(net, n, torch.ones(2, SIZE))
            g = cells(net).g.double()
            top = g0 > 0.5 * (dev.g_min + dev.g_max)
            mc = float(((g - dev.g_min)[top] / (g0 - dev.g_min)[top]).mean())
            want = float(law.retained(CYCLES * n * dev.read_time, v))
            print(f"{v:>6.2f} {t_t:>10.3g} {float(law.exponent(v)):>7.4f} {n:>10.0e} {want:>9.4f} "
                  f"{mc:>9.4f}")
            ax.semilogx([n], [mc], "o", color=colour, ms=5, mfc="none")
    ax.plot([], [], "ko", mfc="none", label="apply_read_disturb (256x256 layer)")
    ax.set_ylim(0.0, 1.05)
    ax.set_xlabel("inferences (7 reads of 9.8 ns each)")
    ax.set_ylabel("(G - g_min) / (G0 - g_min)")
    ax.set_title("RRAM (Jiang 2021 law): conductance kept")
    ax.legend(fontsize=7, loc="lower left")


def accuracy_panel(ax: plt.Axes) -> None:
    raw_train, raw_test = workloads.digits(seed=0)
    # standardised pixels (zero mean, unit std per pixel over the training set): the first
    # layer's inputs are signed, so its rows are read at both +V_read and -V_read
    mean = raw_train.tensors[0].mean(dim=0)
    std = raw_train.tensors[0].std(dim=0).clamp_min(1e-3)
    train_set, test_set = ((TensorDataset((d.tensors[0] - mean) / std, d.tensors[1]))
                           for d in (raw_train, raw_test))
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))
    loader, test_loader = workloads.loaders(train_set, test_set, 64, seed=0)
    train(model, loader, epochs=30, lr=3e-3, generator=0)
    model.eval()
    x_test = test_set.tensors[0]
    print(f"\ndigits MLP 64-64-10, digital accuracy {evaluate(model, test_loader):.4f}")
    print(f"{'device':<36} {'inferences':>10} {'reads/inf (max)':>15} {'changed':>8} "
          f"{'accuracy':>8}")
    cases = (("mtj-vincent2014-compound4", 300.0, None, "C2", "-"),
             ("mtj-vincent2014-compound4", HOT, None, "C2", "--"),
             ("rram-falcone2025", 300.0, 0.3, "C1", "-"),
             ("rram-falcone2025", 300.0, None, "C3", "-"))
    points = (0.0, 1e6, 1e8, 1e10, 1e12, 1e14)
    for name, temp, volt, colour, ls in cases:
        dev = dataclasses.replace(presets.get(name), temperature=temp)
        if volt is not None:
            dev = dataclasses.replace(dev, read_voltage=volt)
        accs = []
        for n in points:
            hw = dataclasses.replace(hardware(dev, rows=64, cols=128), read_noise="physical")
            analog = program(to_analog(model, hw), generator=gen(0),
                             calibration=train_set.tensors[0][:256])
            report = apply_read_disturb(analog, n, x_test, generator=gen(2))
            acc = evaluate(analog, test_loader)
            accs.append(acc)
            label = f"{name} {temp - 273.15:.0f} C {dev.read_voltage:g} V"
            print(f"{label:<36} {n:>10.0e} {report.layers['reads_per_inference'].max():>15.2f} "
                  f"{report.changed_fraction:>8.4f} {acc:>8.4f}")
        x = [max(p, 1e4) for p in points]
        ax.semilogx(x, accs, colour, ls=ls, marker="o", ms=4,
                    label=f"{name.replace('-compound4', '-c4')}, "
                          f"{temp - 273.15:.0f} C, {dev.read_voltage:g} V")
    ax.set_xlabel("inferences (0 plotted at 1e4)")
    ax.set_ylabel("test accuracy")
    ax.set_title("digits MLP after N inferences")
    ax.set_ylim(0.0, 1.02)
    ax.legend(fontsize=6.5, loc="lower left")


def main() -> None:
    fig, axes = plt.subplots(1, 3, figsize=(15.5, 4.6))
    mtj_panel(axes[0])
    rram_panel(axes[1])
    accuracy_panel(axes[2])
    fig.suptitle("Read disturb accumulated over inferences (8-bit bit-serial DAC)")
    fig.tight_layout()
    fig.savefig(OUT / "physics_disturb.png", dpi=130)
    print(f"\nwrote {OUT / 'physics_disturb.png'}")


if __name__ == "__main__":
    main()
