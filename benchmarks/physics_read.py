"""Physics of the read path (issue 13): frozen versus white read noise, temperature, the access
transistor. Prints three tables and writes ``physics_read.png``.

1. Read noise of a PCM tile (pcm-joshi2020, 256 rows, 1 day after programming, inputs uniform
   in [0, 1], the same at every position, ideal ADC): output std one-shot, bit-serial (8-bit
   DAC, 7 cycles) and after average pooling over 49 positions, for "per_mvm" (all white, the
   old default), "per_read" (all frozen) and "physical" (the device's 1/f split) with
   conversions back to back, 1 us and 1 ms apart.
2. PCM drift (mean conductance / programmed) and CMO RRAM relaxation at 25 C and 85 C.
3. Weight transfer through a 1T1R access transistor: ``G_eff = G / (1 + G R_s)``.

    python benchmarks/physics_read.py
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as memxbar sets it, before torch loads
import torch  # noqa: E402

from memxbar.crossbar.periphery import ADC, DAC  # noqa: E402
from memxbar.crossbar.tile import ReadNoise, Tile, TileConfig  # noqa: E402
from memxbar.devices import presets  # noqa: E402
from memxbar.devices.base import CellState  # noqa: E402
from memxbar.devices.pcm import PCM  # noqa: E402
from memxbar.devices.rram import RRAM  # noqa: E402

DAY = 86400.0
ROWS, TRIALS, POSITIONS = 256, 200, 49
C25, C85 = 298.15, 358.15


def _stack(cfg: TileConfig, w: torch.Tensor) -> Tile:
    """TRIALS tiles holding the same programmed cells (each reads its own noise)."""
    one = Tile(cfg)
    one.program(w, generator=torch.Generator().manual_seed(0))
    tile = Tile(cfg, (TRIALS,))
    tile.program(w.expand(TRIALS, *w.shape))
    st = one.state
    assert st is not None

    def rep(v: torch.Tensor) -> torch.Tensor:
        return v.expand(TRIALS, *v.shape).clone()

    tile.set_state(CellState(rep(st.g), {k: rep(v) for k, v in st.latent.items()}))
    return tile


def read_noise_table() -> list[tuple[str, float, float, float]]:
    dev = presets.get("pcm-joshi2020")
    w = torch.rand(ROWS, 8, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    w = w * 2 - 1
    x = torch.rand(ROWS, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    x = x.expand(TRIALS, POSITIONS, ROWS)  # the same input at every position
    rows = []
    modes: tuple[tuple[ReadNoise, float | None], ...] = (
        ("per_mvm", None), ("per_read", None), ("physical", None), ("physical", 1e-6),
        ("physical", 1e-3))
    for mode, interval in modes:
        stds = []
        for dac in (DAC(bits=8), DAC(bits=8, bit_serial=True)):
            cfg = TileConfig(rows=ROWS, cols=16, device=dev, read_noise=mode, dac=dac,
                             adc=ADC(bits=0), conversion_interval=interval)
            tile = _stack(cfg, w)
            gen = torch.Generator().manual_seed(2)
            tile.set_time(DAY, generator=gen)
            y = tile.mvm(x, generator=gen)  # (TRIALS, POSITIONS, 8)
            stds.append((y[:, 0].std(0).mean().item(), y.mean(1).std(0).mean().item()))
        f = tile.frozen_fraction()
        label = mode + ("" if interval is None else f", {interval:g} s") + f" (frozen {f:.3f})"
        rows.append((label, stds[0][0], stds[1][0], stds[0][1]))
    return rows


def main() -> None:
    print(f"1. PCM tile, {ROWS} rows, 1 day, x ~ U[0, 1]: output read-noise std ({TRIALS} "
          "reads)")
    print(f"{'read_noise':38s} {'one-shot':>9s} {'bit-serial':>11s} {'pooled 49':>10s}")
    for label, one, serial, pooled in read_noise_table():
        print(f"{label:38s} {one:9.4f} {serial:11.4f} {pooled:10.4f}")

    fig, (ax_p, ax_r, ax_a) = plt.subplots(1, 3, figsize=(14, 4))
    t = torch.logspace(0, 8.5, 60, dtype=torch.float64)  # 1 s .. 10 years
    print("\n2. drift / relaxation at 25 C and 85 C (Arrhenius-scaled clock)")
    pcm = presets.get("pcm-joshi2020", PCM)
    g = torch.tensor([5e-6, 12.5e-6, 25e-6], dtype=torch.float64)
    state = CellState(g, {"nu": pcm.statistics.nu_mean(g / pcm.g_max)})  # mean drift exponent
    for temp, style in ((C25, "-"), (C85, "--")):
        dev = dataclasses.replace(pcm, temperature=temp)
        mean = torch.stack([dev.read_mean(state, float(s)) for s in t])  # (T, 3)
        for k in range(3):
            ax_p.loglog(t, mean[:, k] * 1e6, style, color=f"C{k}",
                        label=f"{g[k] * 1e6:.1f} uS, {temp - 273.15:.0f} C")
        ten_y = dev.read_mean(state, 3.15e8) / g
        print(f"  PCM {temp - 273.15:3.0f} C: drift factor a = {dev.drift_acceleration:9.3g}; "
              f"G(10 y)/G_prog = " + ", ".join(f"{v:.3f}" for v in ten_y.tolist()))
    ax_p.set(xlabel="time since programming (s)", ylabel="mean conductance (uS)",
             title="PCM drift (Joshi 2020 fit, mean nu)")
    ax_p.legend(fontsize=7)

    rram = presets.get("rram-falcone2025", RRAM)
    g = torch.tensor([20e-6, 50e-6, 80e-6], dtype=torch.float64)
    state = rram.program(g, generator=torch.Generator().manual_seed(0))
    state = state.replace(g=g, relax_z=torch.zeros_like(g))  # the mean cell at its target
    for temp, style in ((C25, "-"), (C85, "--")):
        warm = dataclasses.replace(rram, temperature=temp)
        shift = torch.stack([warm.read_mean(state, float(s)) - g for s in t])
        ax_r.semilogx(t, shift[:, 0] * 1e6, style, color="C3",
                      label=f"{temp - 273.15:.0f} C (the fit is the same at every G)")
        print(f"  RRAM {temp - 273.15:3.0f} C: relaxation factor a = "
              f"{warm.relaxation_acceleration:9.3g}; mean shift at 10 y = "
              f"{float(shift[-1, 0]) * 1e6:.3f} uS")
    ax_r.set(xlabel="time since programming (s)", ylabel="mean shift (uS)",
             title="CMO RRAM relaxation (Falcone 2025 fit)")
    ax_r.legend(fontsize=7)

    print("\n3. 1T1R access transistor: G_eff / G at g_max")
    g = torch.linspace(8e-6, 90e-6, 50, dtype=torch.float64)
    for r_s in (0.0, 2e3, 5e3, 15e3):
        wired = dataclasses.replace(rram, access_resistance=r_s)
        ge = wired.effective_g(g)
        ax_a.plot(g * 1e6, ge * 1e6, label=f"R_s = {r_s / 1e3:g} kOhm")
        print(f"  R_s = {r_s / 1e3:4.0f} kOhm: G_eff(90 uS) = {float(ge[-1]) * 1e6:5.1f} uS "
              f"({float(ge[-1] / g[-1]):.3f}), weight range compressed to "
              f"{float((ge[-1] - ge[0]) / (g[-1] - g[0])):.3f}")
    ax_a.set(xlabel="device conductance G (uS)", ylabel="cell-branch conductance (uS)",
             title="access transistor: G / (1 + G R_s)")
    ax_a.legend(fontsize=7)
    fig.tight_layout()
    out = Path(__file__).with_name("physics_read.png")
    fig.savefig(out, dpi=120)
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
