"""Physics checks of the FeFET model and of endurance wear-out (issue 13).

1. FeFET sigma of conductance per programmed level (32 levels, every preset): Monte Carlo of
   ``program`` split into device-to-device (state-dependent V_T offset, domain sizes) and
   cycle-to-cycle (fresh V_T c2c offset of a new write of the same cells), against the
   measured V_T spread of 28 nm HKMG FeFETs in 4 states (Soliman et al. 2023, Fig. 1g:
   ``physics_published.SOLIMAN_VT``) carried through each preset's read-out curve (G of
   normal V_T offsets of the measured sigma at the same switched fraction), and the old
   model's zero spread. Writes
   ``benchmarks/physics_fefet_spread.png``.
2. Window vs write cycles for every technology's wear law: Monte Carlo through ``pulse`` /
   ``read_mean`` (mean read window of 2,000 cell pairs, failed cells included) against the law
   ``w(c) = 1 / (1 + (c/N_e)^s)`` times the survival, with the published endurance counts
   marked. Writes ``benchmarks/physics_endurance.png``.
3. Amplitude-modulated vs identical pulses of the Jerry 2017 preset, Arrhenius retention, the
   write energy and the shot-noise floor: printed numbers quoted in BENCHMARKS.md.

    python benchmarks/physics_fefet.py
"""

from __future__ import annotations

import dataclasses
import math
import os
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as memxbar sets it, before torch loads
import torch  # noqa: E402
from physics_published import SOLIMAN_VT, SOLIMAN_WINDOW  # noqa: E402

from memxbar.devices import IdealDevice, endurance, presets  # noqa: E402
from memxbar.devices.base import Device  # noqa: E402
from memxbar.devices.endurance import WearLaw  # noqa: E402
from memxbar.devices.ferroelectric import Q_E, FeFET  # noqa: E402

OUT = Path(__file__).parent
F64 = torch.float64
FEFETS = ("fefet-deng2020", "fefet-jerry2017", "fefet-neurosim")


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def spread(dev: FeFET, m: int = 1000) -> dict[str, torch.Tensor]:
    """sigma(G)/G per level: total (program), d2d (mean over rewrites), c2c (rewrite spread)."""
    levels = torch.linspace(dev.g_min, dev.g_max, 32, dtype=F64)
    st = dev.program(levels.repeat(m, 1), generator=gen(1))
    total = st.g.std(0) / st.g.mean(0)
    # c2c: the same cells (same domains, E_a and d2d offset) written again: only the fresh c2c
    # offset differs (FeFET._pulse draws it for every pulsed cell); sqrt(2) for the difference
    c2c_only = st.replace(vt_c2c=dev.vt_sigma_c2c * torch.randn(st.g.shape, generator=gen(2),
                                                                dtype=F64))
    again = dev.read_mean(c2c_only)
    c2c = (again - dev.read_mean(st)).std(0) / math.sqrt(2) / st.g.mean(0)
    d2d = (total ** 2 - c2c ** 2).clamp_min(0).sqrt()
    # measured V_T std of the 4 states (Soliman Fig. 1g) through this read-out curve: G of
    # normal V_T offsets at the states' switched fractions (Monte Carlo, as the model is read)
    f_meas = torch.tensor([(SOLIMAN_VT[0][0] - v) / SOLIMAN_WINDOW for v, _ in
                           SOLIMAN_VT.values()], dtype=F64)
    s_meas = torch.tensor([sd for _, sd in SOLIMAN_VT.values()], dtype=F64)
    g_meas = dev.conductance(f_meas).clamp(dev.g_min, dev.g_max)
    x_meas = 31 * (g_meas - dev.g_min) / (dev.g_max - dev.g_min)
    old = dataclasses.replace(dev, domain_size_std=0.0, vt_sigma_d2d=0.0, vt_sigma_c2c=0.0,
                              vt_sigma_d2d_programmed=None)
    g_old = old.program(levels.repeat(m, 1), generator=gen(3)).g
    z = torch.randn(20000, 1, generator=gen(7), dtype=F64)
    g_vt = dev.conductance(f_meas.expand(20000, 4), z * s_meas)
    return dict(levels=levels, total=total, d2d=d2d, c2c=c2c, x_meas=x_meas,
                meas=g_vt.std(0) / g_vt.mean(0), old=g_old.std(0) / g_old.mean(0))


def plot_spread() -> None:
    fig, axes = plt.subplots(1, 3, figsize=(13, 4), sharey=True)
    print("FeFET sigma(G)/G per level (program, 1000 cells per level):")
    print("| preset | level 0 (g_min) | level 8 | level 16 | level 31 (g_max) | "
          "measured V_T std via read curve, states 0 / 1 / 2 / 3 (at level) | old model (max) |")
    print("|---|---|---|---|---|---|---|")
    for ax, name in zip(axes, FEFETS, strict=True):
        dev = presets.get(name)
        assert isinstance(dev, FeFET)
        s = spread(dev)
        x = torch.arange(32)
        ax.semilogy(s["x_meas"][:3], s["meas"][:3], "gs", ms=8, mfc="none",
                    label="measured 28 nm HKMG V_T std (Soliman 2023\nFig. 1g) through "
                          "this read curve")
        ax.semilogy(s["x_meas"][3:], s["meas"][3:], "gv", ms=8, mfc="none",
                    label="state 3: upper bound (<= 16 mV)")
        ax.semilogy(x, s["total"], "k-o", ms=3, label="model, total (program)")
        ax.semilogy(x, s["d2d"], "b--", label="model, D2D (V_T) + domain sizes")
        ax.semilogy(x, s["c2c"], "r:", label="model, C2C (V_T of each write)")
        ax.text(0.5, 0.04, f"before issue 13: sigma = {float(s['old'].max()):.0e} at every level",
                transform=ax.transAxes, ha="center", fontsize=8, color="g")
        ax.set_title(name)
        ax.set_xlabel("programmed level (g_min ... g_max)")
        ax.grid(True, which="both", alpha=0.3)
        t = s["total"]
        meas = " / ".join(f"{v:.3f} ({x:.1f})" for v, x in zip(s["meas"].tolist(),
                                                             s["x_meas"].tolist(), strict=True))
        print(f"| {name} | {t[0]:.3f} | {t[8]:.3f} | {t[16]:.4f} | {t[31]:.4f} | {meas} | "
              f"{float(s['old'].max()):.1e} |")
    axes[0].set_ylabel("sigma(G) / G")
    axes[0].set_ylim(2e-3, 3)
    axes[2].legend(fontsize=7, loc="upper right")
    fig.suptitle("FeFET programming spread per level: model vs measured V_T spread through the "
                 "read curve")
    fig.tight_layout()
    fig.savefig(OUT / "physics_fefet_spread.png", dpi=120)
    plt.close(fig)


def clean(technology: str, n_e: float) -> Device:
    """An exact, noise-free cell (IdealDevice) wearing by ``technology``'s law, endurance
    ``n_e``: what is read then changes by wear alone."""
    law = endurance.WEAR_LAWS[technology]
    assert isinstance(law, WearLaw)
    cls = dataclasses.make_dataclass(f"Clean_{technology}", [], bases=(IdealDevice,),
                                     frozen=True, kw_only=True, namespace={"wear": law})
    return cls(endurance=n_e, g_min=1e-6)


def window_mc(dev: Device, cycles: list[float], m: int = 2000) -> list[float]:
    """Mean read window / fresh window of m (g_max, g_min) pairs pulsed to ``cycles``."""
    st = dev.program(torch.cat([torch.full((m,), dev.g_max, dtype=F64),
                                torch.full((m,), dev.g_min, dtype=F64)]), generator=gen(4))
    out, done = [], 1
    for i, c in enumerate(cycles):
        k = int(round(c)) - done
        while k > 0:  # pulses that keep each extreme where it is
            step = min(k, dev.max_pulses)
            n = torch.cat([torch.full((m,), step), torch.full((m,), -step)])
            st = dev.pulse(st, n, generator=gen(100 + i))
            k -= step
        done = int(round(c))
        g = dev.read_mean(st)
        out.append(float((g[:m] - g[m:]).mean()) / (dev.g_max - dev.g_min))
    return out


def law_window(dev: Device, c: torch.Tensor) -> torch.Tensor:
    """Expected read window / fresh window: the law's w(c) for live pairs; a failed cell reads
    its stuck value (both failing the same way: window 0)."""
    law = endurance.wear_law(dev)
    assert law is not None
    w = endurance.window_fraction(dev, c)
    p = law.window_point
    lo = (1 - w) * p
    hi = 1 - (1 - w) * (1 - p)
    q = endurance.failure_probability(dev, c)
    stuck = 1.0 if law.fail_state == 1 else 0.0
    return (1 - q) ** 2 * (hi - lo) + q * (1 - q) * ((stuck - lo) + (hi - stuck))


def plot_endurance() -> None:
    # exact cells with each technology's law and a small endurance (the x axis is c / N_e)
    cases = [("fefet", "FeFET (N_e 1e5: Duenkel IEDM 2017)", "C0"),
             ("rram", "RRAM (N_e 1e6: survey median)", "C1"),
             ("pcm", "PCM (N_e 1e8: survey median; MTJ alike)", "C2")]
    rel = [0.01, 0.05, 0.2, 0.5, 1, 2, 5, 10, 30]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    print("\nWindow / fresh window vs cycles / N_e (Monte Carlo 2000 pairs | law):")
    print("| technology | " + " | ".join(f"{r:g} N_e" for r in rel) + " |")
    print("|---|" + "---|" * len(rel))
    for name, label, color in cases:
        n_e = 400.0
        dev = clean(name, n_e)
        c = torch.logspace(-2.5, 1.7, 200, dtype=F64) * n_e
        ax.semilogx(c / n_e, law_window(dev, c), color=color, label=f"{label}: law")
        mc = window_mc(dev, [r * n_e for r in rel])
        ax.semilogx(rel, mc, "o", color=color, ms=5, mfc="none")
        lw = law_window(dev, torch.tensor(rel, dtype=F64) * n_e)
        cells = [f"{a:.3f} ({b:.3f})" for a, b in zip(mc, lw.tolist(), strict=True)]
        print(f"| {name} | " + " | ".join(cells) + " |")
    ax.axvline(1.0, color="0.5", ls="--", lw=1)
    ax.text(1.05, 0.93, "N_e = Device.endurance", fontsize=8, color="0.3")
    ax.axvline(50.0, color="C0", ls=":", lw=1)
    ax.text(7.0, 0.6, "HZO FeFET IL breakdown\nat 5e6 cycles (Ni VLSI\n2018); law: failure\n"
            "median 10 N_e", fontsize=8, color="C0")
    ax.set_xlabel("write cycles / N_e")
    ax.set_ylabel("mean read window / fresh window")
    ax.set_title("Endurance: window vs cycles (circles: Monte Carlo through pulse + read)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="lower left")
    fig.tight_layout()
    fig.savefig(OUT / "physics_endurance.png", dpi=120)
    plt.close(fig)


def numbers() -> None:
    jerry = dataclasses.replace(presets.get("fefet-jerry2017", FeFET), vt_sigma_d2d=0.0,
                                vt_sigma_c2c=0.0, vt_sigma_d2d_programmed=None)
    same = dataclasses.replace(jerry, write_voltage=3.3, write_voltage_end=None)
    print("\nJerry 2017 preset, mean switched fraction after k pulses from erased (1000 cells):")
    for label, dev in (("2.8 -> 3.7 V amplitude-modulated", jerry), ("identical 3.3 V", same)):
        st = dev.program(torch.full((1000,), dev.g_min, dtype=F64), generator=gen(5))
        f = []
        for k in range(31):
            st = dev.pulse(st, torch.ones(1000, dtype=torch.int64), generator=gen(6 + k))
            f.append(float(dev.polarization(st).mean()))
        print(f"  {label}: k=1 {f[0]:.3f}, k=5 {f[4]:.3f}, k=10 {f[9]:.3f}, k=15 {f[14]:.3f}, "
              f"k=20 {f[19]:.3f}, k=31 {f[30]:.3f}")
    print("\nWrite energy per pulse (J): gate | wire | polarization | total")
    for name in FEFETS:
        d = presets.get(name)
        assert isinstance(d, FeFET)
        v = d.write_voltage if d.write_voltage_end is None else 0.5 * (
            d.write_voltage + d.write_voltage_end)
        print(f"  {name}: {v**2 * d.gate_capacitance:.3g} | {v**2 * d.wire_capacitance:.3g} | "
              f"{2 * d.remanent_polarization * d.fe_area * v:.3g} | {d.write_energy:.3g}")
    print("\nShot-noise floor sqrt(q G/(V t))/G at g_min, and 10-y polarization loss:")
    for name in FEFETS:
        d = presets.get(name)
        assert isinstance(d, FeFET)
        shot = math.sqrt(Q_E / (d.g_min * d.read_voltage * d.read_time))
        loss = [1 - float(dataclasses.replace(d, temperature=t).retained_fraction(
            torch.tensor(3.156e8))) for t in (300.0, 358.15, 398.15)]
        print(f"  {name}: shot {shot:.4f}; loss 27 C {loss[0]:.3f}, 85 C {loss[1]:.3f}, "
              f"125 C {loss[2]:.3f}; a_T(85 C) = "
              f"{dataclasses.replace(d, temperature=358.15).retention_acceleration():.0f}")


def main() -> None:
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    plot_spread()
    plot_endurance()
    numbers()
    print(f"\n{time.perf_counter() - t0:.1f} s")


if __name__ == "__main__":
    main()
