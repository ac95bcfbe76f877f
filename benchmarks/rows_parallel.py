"""Rows read at once (``rows_parallel``): the IR-drop error the simulator sees, and the energy and
latency the cost model charges for the same design, in one run.

A 128x128 differential tile (two arrays) with 1 ohm wire segments, random weights in [-1, 1] and
random inputs in [-1, 1], ideal DAC/ADC and no read noise, so the error against ``x @ W`` is the
IR drop alone. Each row group is its own read of the array (the other rows' access transistors
off), with its own IR drop and conversion. Prints a table and writes ``rows_parallel.png``.

    python benchmarks/rows_parallel.py
"""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as memxbar sets it, before torch loads
import torch  # noqa: E402

from memxbar.crossbar.cost import CostModel, mvm_cost  # noqa: E402
from memxbar.crossbar.periphery import ADC, DAC  # noqa: E402
from memxbar.crossbar.tile import Tile, TileConfig  # noqa: E402
from memxbar.devices import presets  # noqa: E402

ROWS, BATCH, R_WIRE = 128, 64, 1.0
GROUPS = (8, 16, 32, 64, 128)
DEVICES = ("pcm-joshi2020", "rram-falcone2025", "mtj-neurosim", "dw-hsin2025")


def main() -> None:
    gen = torch.Generator().manual_seed(0)
    W = torch.rand(ROWS, ROWS, generator=gen, dtype=torch.float64) * 2 - 1
    x = torch.rand(BATCH, ROWS, generator=gen, dtype=torch.float64) * 2 - 1
    ref = x @ W
    print(f"{ROWS}x{ROWS} differential tile, {R_WIRE} ohm segments, batch {BATCH}; relative "
          "error |y - x@W| / |x@W| (IR drop only); cost with an 8-bit ADC, 8-bit DAC")
    print(f"{'device':18s} " + " ".join(f"{k:>8d}" for k in GROUPS))
    fig, (ax_e, ax_c) = plt.subplots(1, 2, figsize=(10, 4))
    for name in DEVICES:
        errs, energy = [], []
        for k in GROUPS:
            sim = TileConfig(rows=ROWS, cols=ROWS, device=presets.get(name), layout="arrays",
                             r_row=R_WIRE, r_col=R_WIRE, read_noise="off", rows_parallel=k)
            tile = Tile(sim)
            tile.program(W, generator=torch.Generator().manual_seed(1))
            y = tile.mvm(x)
            errs.append(float((y - ref).norm() / ref.norm()))
            costed = TileConfig(rows=ROWS, cols=ROWS, device=presets.get(name), layout="arrays",
                                rows_parallel=k, dac=DAC(bits=8),
                                adc=ADC(bits=8, range_mode="fixed", full_scale=float(k)))
            priced = Tile(costed)
            priced.program(W, generator=torch.Generator().manual_seed(1))
            c = mvm_cost(priced, x, CostModel())
            energy.append(c.total / BATCH)
        print(f"{name:18s} " + " ".join(f"{e:8.4f}" for e in errs)
              + "   energy/MVM (nJ): " + " ".join(f"{e * 1e9:.3g}" for e in energy))
        ax_e.plot(GROUPS, errs, "o-", label=name)
        ax_c.plot(GROUPS, [e * 1e9 for e in energy], "o-", label=name)
    ax_e.set(xscale="log", yscale="log", xlabel="rows read at once", ylabel="relative MVM error",
             title=f"IR drop, {R_WIRE:g} ohm segments")
    ax_c.set(xscale="log", yscale="log", xlabel="rows read at once",
             ylabel="energy per MVM (nJ)", title="cost of the same design")
    ax_e.set_xticks(GROUPS, [str(k) for k in GROUPS])
    ax_c.set_xticks(GROUPS, [str(k) for k in GROUPS])
    ax_e.legend(fontsize=8)
    fig.tight_layout()
    out = Path(__file__).with_name("rows_parallel.png")
    fig.savefig(out, dpi=120)
    print(f"plot: {out}")


if __name__ == "__main__":
    main()
