"""IR drop: the opt-in first-order approximation (TileConfig.ir_drop = "first_order") against
the exact network solve, versus the wire resistance per segment.

Arrays of 64x64, 128x128 and 256x256 cells, G uniform in [0.25, 25] uS (a PCM-like range),
all rows driven at 1 V: relative error of the column currents (max |I_approx - I_exact| over
max |I_exact|) and the signal gain sum(I) / sum(I without wires). Writes ir_first_order.png.

Run: ``python benchmarks/ir_first_order.py``
"""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib
import matplotlib.ticker

matplotlib.use("Agg")
import matplotlib.pyplot as plt

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as memxbar sets it, before torch loads
import torch

from memxbar.crossbar.circuit import effective_conductance, effective_first_order

WIRES = (0.125, 0.25, 0.5, 1.0, 2.0, 4.0)  # ohm per segment
SIZES = (64, 128, 256)


def main() -> None:
    gen = torch.Generator().manual_seed(0)
    rows = []
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 4))
    for n in SIZES:
        G = (0.25e-6 + 24.75e-6 * torch.rand(n, n, generator=gen, dtype=torch.float64))
        ideal = float(G.sum())
        errs, g_exact, g_first = [], [], []
        for r in WIRES:
            exact = effective_conductance(G, r, r).double()
            first = effective_first_order(G, r, r).double()
            i_exact, i_first = exact.sum(0), first.sum(0)  # all rows at 1 V
            errs.append(float((i_first - i_exact).abs().max() / i_exact.abs().max()))
            g_exact.append(float(i_exact.sum()) / ideal)
            g_first.append(float(i_first.sum()) / ideal)
            rows.append((n, r, g_exact[-1], g_first[-1], errs[-1]))
        a1.loglog(WIRES, errs, "o-", label=f"{n}x{n}")
        line, = a2.semilogx(WIRES, g_exact, "o-", label=f"{n}x{n} exact")
        a2.semilogx(WIRES, g_first, "x--", color=line.get_color(), label=f"{n}x{n} first order")
    a1.loglog(WIRES, [1e-3 * (r / WIRES[0]) ** 2 for r in WIRES], "k:", label="slope 2")
    a1.set_xlabel("wire resistance per segment (ohm)")
    a1.set_ylabel("max column-current error / max current")
    a1.set_title("first-order IR drop vs exact solve")
    a1.legend(fontsize="small")
    a1.grid(alpha=0.3, which="both")
    a2.set_xlabel("wire resistance per segment (ohm)")
    a2.set_ylabel("signal gain (all rows at 1 V)")
    a2.set_title("signal gain")
    a2.legend(fontsize="x-small")
    a2.grid(alpha=0.3, which="both")
    for ax in (a1, a2):
        ax.set_xticks(WIRES, [f"{r:g}" for r in WIRES])
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    fig.tight_layout()
    out = Path(__file__).with_suffix(".png")
    fig.savefig(out, dpi=120)
    print("| array | r (ohm) | gain, exact | gain, first order | max rel. error |")
    print("|---|---:|---:|---:|---:|")
    for n, r, ge, gf, e in rows:
        print(f"| {n}x{n} | {r} | {ge:.4f} | {gf:.4f} | {e:.1e} |")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
