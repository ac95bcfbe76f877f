"""Physics checks of the spintronic models (issue 13): MTJ retention time against Delta, MTJ
read-disturb probability against the read current, and domain-wall depinning statistics.

Every curve is the model's closed form; the markers are Monte-Carlo estimates from the device
API itself (``program`` + ``read_mean`` for retention, ``disturb`` for reads, ``pulse`` for
the wall), so the sampler is checked against the law it claims. Published anchors: Hayakawa,
Ikeda et al. (Delta > 60 gives > 10-year retention), the survey's 10-year retention
specification, and NeuroSim's / NVSim's own read voltages. Writes
``benchmarks/physics_mtj_retention.png``, ``benchmarks/physics_mtj_read_disturb.png`` and
``benchmarks/physics_dw_depinning.png`` and prints the numbers quoted in BENCHMARKS.md.

    python benchmarks/physics_spintronic.py
"""

from __future__ import annotations

import dataclasses
import math
import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as memxbar sets it, before torch loads
import torch  # noqa: E402

from memxbar.devices import presets  # noqa: E402
from memxbar.devices.domain_wall import DomainWall  # noqa: E402
from memxbar.devices.mtj import MTJ  # noqa: E402

OUT = Path(__file__).parent
N = 20000
TEN_YEARS = 3.15e8  # s
TEMPS = (300.0, 358.15, 398.15)  # 27, 85, 125 C


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def retention() -> None:
    base = MTJ(tmr_v_half=None)
    deltas = torch.linspace(2.0, 80.0, 400, dtype=torch.float64)
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    for temp, colour in zip(TEMPS, ("C0", "C1", "C3"), strict=True):
        dev = dataclasses.replace(base, temperature=temp)
        scale = dev.delta_t / dev.delta  # Delta(T) / Delta(300 K)
        tau = 1e-9 * torch.exp(deltas * scale)
        label = f"{temp - 273.15:.0f} C: mean tau0 exp(Delta(T))"
        ax.semilogy(deltas, tau, colour, label=label)
        ax.semilogy(deltas, tau * 1e-9, colour, ls="--",
                    label=f"{temp - 273.15:.0f} C: 1e-9 of the bits flipped")
    # Monte Carlo: the sampler's flipped fraction f at t, inverted as tau = -t / ln(1 - f)
    print("retention: Delta, tau_law (s), tau_MC (s)")
    for k, d in enumerate((4.0, 8.0, 12.0, 16.0)):
        dev = dataclasses.replace(base, delta=d)
        state = dev.program(torch.full((N,), dev.g_max, dtype=torch.float64), generator=gen(k))
        t = dev.tau_ret
        f = float((dev.read_mean(state, t) != state.g).double().mean())
        tau_mc = -t / math.log1p(-f)
        print(f"  {d:5.1f} {dev.tau_ret:10.4g} {tau_mc:10.4g}")
        ax.semilogy([d], [tau_mc], "ko", ms=5, label="Monte Carlo (program + read_mean)"
                    if k == 0 else None)
    ax.axhline(TEN_YEARS, color="gray", lw=0.8)
    ax.text(3, TEN_YEARS * 2, "10 years (survey retention spec, 85-220 C)", fontsize=8)
    ax.plot([60], [TEN_YEARS], "r*", ms=12, label="Hayakawa, Ikeda et al.: Delta > 60 -> > 10 y")
    ax.set(xlabel="thermal stability factor Delta at 300 K", ylabel="retention time (s)",
           title="MTJ retention vs Delta (Néel–Brown, tau0 = 1 ns, E_b ~ Ms(T)^2)",
           ylim=(1e-9, 1e30))
    ax.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    fig.savefig(OUT / "physics_mtj_retention.png", dpi=130)
    plt.close(fig)
    for temp in TEMPS:
        dev = dataclasses.replace(presets.get("mtj-neurosim", MTJ), temperature=temp)
        print(f"  mtj-neurosim at {temp:.2f} K: Delta {dev.delta_t:.2f}, tau_ret "
              f"{dev.tau_ret:.3g} s, I_c0 {dev.i_c0_t * 1e6:.1f} uA, 1e9-read limit "
              f"{dev.max_read_voltage(1e9, 1e-6):.3f} V")


def read_disturb() -> None:
    dev = MTJ(tmr_v_half=None)
    i = torch.linspace(0.0, 1.8, 900, dtype=torch.float64)
    fig, (ax, ax_mc) = plt.subplots(1, 2, figsize=(11.5, 4.6))
    for b, ls in ((1.0, "-"), (2.0, ":")):
        d_b = dataclasses.replace(dev, b_exponent=b)
        for reads, colour in ((1.0, "C0"), (1e9, "C3")):
            p = -torch.expm1(reads * d_b._log_stay(i * d_b.i_c0, d_b.read_time))
            ax.semilogy(i, p.clamp_min(1e-30), colour, ls=ls,
                        label=f"{reads:.0e} reads of 10 ns, b = {b:.0f}")
    hot = dataclasses.replace(dev, temperature=358.15)
    p_hot = -torch.expm1(1e9 * hot._log_stay(i * dev.i_c0, dev.read_time))
    ax.semilogy(i, p_hot.clamp_min(1e-30), "C1", label="1e9 reads at 85 C, b = 1")
    marks = (("mtj-neurosim", -0.1, "0.1 V (new)"), ("mtj-nvsim", -0.05, "0.05 V (new)"),
             ("mtj-neurosim", -0.5, "0.5 V (NeuroSim, old)"),
             ("mtj-nvsim", -0.25, "0.25 V (NVSim, old)"))
    for name, v, text in marks:
        d = presets.get(name, MTJ)
        x = abs(v) / (d.r_p + d.access_resistance) / d.i_c0  # P junction + access transistor
        p_flip = d.read_disturb_probability(1e9, voltage=v)
        ax.axvline(x, color="gray", lw=0.6, ls="--")
        old = "old" in text  # old marks: text from the top, where no curve runs at I > I_c0
        ax.text(x, 1e-3 if old else 1e-29, f" {name} {text}", fontsize=6, rotation=90,
                va="top" if old else "bottom")
        print(f"  {name} read {v} V: I_P/I_c0 = {x:.3f}, p(1e9 reads) = {p_flip:.3g}, "
              f"p(1 read) = {d.read_disturb_probability(1, voltage=v):.3g}")
    ax.set(xlabel="read current through a P junction / I_c0 (300 K)",
           ylabel="probability that the reads flip the junction",
           title="law: 1 - exp(-N t_read / tau(I)), Delta 60, tau0 1 ns", ylim=(1e-30, 3.0),
           xlim=(0, 1.8))
    ax.legend(fontsize=7, loc="lower right")
    # Monte Carlo through MTJ.disturb (negative reads flip P cells), each against its own law
    print("read disturb (P cells, V < 0): I/I_c0, reads, p_law, p_MC")
    first = True
    for k, reads in enumerate((1e12, 1e9, 1e6, 1e3, 1.0)):
        p_law = -torch.expm1(reads * dev._log_stay(i * dev.i_c0, dev.read_time))
        ax_mc.plot(i, p_law, f"C{k}", label=f"{reads:.0e} reads")
        for x in (0.35, 0.55, 0.75, 0.95):
            p_flip = dev.read_disturb_probability(reads, voltage=-x * dev.i_c0 * dev.r_p)
            if not 0.03 < p_flip < 0.97:
                continue
            state = dev.program(torch.full((N,), dev.g_max, dtype=torch.float64),
                                generator=gen(k))
            after = dev.disturb(state, reads, voltage=-x * dev.i_c0 * dev.r_p,
                                generator=gen(100 + k))
            f = float((~after.latent["parallel"]).double().mean())
            print(f"  {x:4.2f} {reads:8.0e} {p_flip:.4f} {f:.4f}")
            ax_mc.plot([x], [f], "ks", ms=5, label="Monte Carlo (MTJ.disturb)" if first else None)
            first = False
        # the informative point of each curve: where it crosses one half
        x_half = float(i[torch.argmin((p_law - 0.5).abs())])
        state = dev.program(torch.full((N,), dev.g_max, dtype=torch.float64), generator=gen(k))
        after = dev.disturb(state, reads, voltage=-x_half * dev.i_c0 * dev.r_p,
                            generator=gen(200 + k))
        f = float((~after.latent["parallel"]).double().mean())
        print(f"  {x_half:4.2f} {reads:8.0e} (p = 1/2 point) {f:.4f}")
        ax_mc.plot([x_half], [f], "ks", ms=5)
    ax_mc.set(xlabel="read current through a P junction / I_c0", ylabel="flipped fraction",
              title=f"Monte Carlo ({N} junctions per point) against the law", xlim=(0.2, 1.05))
    ax_mc.legend(fontsize=7, loc="upper left")
    fig.suptitle("MTJ read disturb versus read current (b = 1 default)")
    fig.tight_layout()
    fig.savefig(OUT / "physics_mtj_read_disturb.png", dpi=130)
    plt.close(fig)


def depinning() -> None:
    dev = DomainWall(c2c_sigma=0.0, depin_sigma=0.0)
    drive = torch.linspace(0.85, 1.12, 300, dtype=torch.float64)
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    for temp, colour in ((300.0, "C0"), (358.15, "C1")):
        d = dataclasses.replace(dev, temperature=temp)
        p = torch.stack([dataclasses.replace(d, pulse_drive=x).move_probability()
                         for x in drive.tolist()])
        ax.plot(drive, p, colour, label=f"P_move per 8 ns pulse, {temp - 273.15:.0f} C")
    print("domain wall: drive, P_law, mean moves per pulse (MC, 4 pulses / 4)")
    first = True
    for k, x in enumerate((0.93, 0.95, 0.97, 0.99)):
        d = dataclasses.replace(dev, pulse_drive=x)
        state = d.program(torch.full((N,), 64e-6 + 96e-6 * 0.3, dtype=torch.float64),
                          generator=gen(k))
        moved = d.pulse(state, torch.tensor(4), generator=gen(50 + k))
        mean = float((moved.latent["state"] - state.latent["state"]).double().mean()) / 4
        print(f"  {x:.2f} {float(d.move_probability()):.4f} {mean:.4f}")
        ax.plot([x], [mean], "ks", ms=5, label="Monte Carlo (pulse, 4 pulses)" if first else None)
        first = False
    hsin = presets.get("dw-hsin2025", DomainWall)
    state = hsin.program(torch.full((200000,), 112e-6), generator=gen(9))
    p_cells = hsin.move_probability(state.latent["i_dep"].double())
    ax.axvline(hsin.pulse_drive, color="gray", ls="--", lw=0.8)
    ax.text(hsin.pulse_drive - 0.045, 0.3, f"dw-hsin2025 drive {hsin.pulse_drive}\nmean P_move "
            f"{float(p_cells.mean()):.4f}\n(5 % notch spread)", fontsize=7)
    print(f"  dw-hsin2025: mean P_move {float(p_cells.mean()):.4f}, cells < 0.99: "
          f"{float((p_cells < 0.99).double().mean()):.4f}")
    ax.set(xlabel="pulse current / depinning current", ylabel="probability the wall moves",
           title="Domain-wall stochastic depinning (Delta_pin = 60, tau0 = 1 ns)")
    ax.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    fig.savefig(OUT / "physics_dw_depinning.png", dpi=130)
    plt.close(fig)


def main() -> None:
    torch.set_num_threads(1)
    retention()
    read_disturb()
    depinning()


if __name__ == "__main__":
    main()
