"""Training that compensates the hardware, on scikit-learn's digits (8x8, 1347 train / 450 test
images) with the reference MLP (64 inputs, 64 hidden ReLU units, 10 outputs), fixed seeds.
Every figure is measured in this run against its baseline:

1. Hardware-aware training versus plain digital training (same recipe: Adam, lr 3e-3, 20
   epochs, batch 32), programmed on PCM (64 x 128 tiles, differential pairs, global drift
   compensation) and read one year later; mean +- std over 8 seeds, each seed the mean of 10
   programming draws (with 5 seeds of 3 draws the digital baseline moved by 0.65 points under
   a mere change of random-draw order, more than the effect measured).
2. Online training from scratch on the arrays (RRAM Gong 2018 presets and the model fitted to
   the measured Gong 2018 data; differential pairs with refresh): plain analog SGD (stochastic
   pulse trains, BL 31) versus mixed precision; test accuracy, pulses, energy, endurance.
3. Device asymmetry (mean |up - down| / mean step of 16-pulse trains at x = 0.3 .. 0.7 of the
   range, 4096 cells) and, on one bidirectional cell per weight (offset encoding), where the
   asymmetry acts on every update: plain SGD versus mixed precision, each at its best of three
   learning rates.
4. Chip-in-the-loop fine-tuning of a digitally trained MLP programmed onto RRAM with 10 %
   stuck cells (5 % on, 5 % off), 3 programming draws.
5. Program-and-verify versus single-shot programming: RMS error and pulses per cell against
   the tolerance (4096 random targets per device).
6. Online training with a real 8-bit DAC and ADC: ADC ranges calibrated once on the initial
   weights versus re-ranged every 10 steps (``AnalogSGD(recalibrate_every=10)``), against the
   ideal periphery of section 2.

Run: ``python benchmarks/training.py [SECTION ...]`` (sections: hwa online asymmetry
chip-in-the-loop verify adc; default all; prints Markdown tables; a few minutes on 2 cores).
"""

from __future__ import annotations

import dataclasses
import os
import statistics
import sys
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as memxbar sets it, before torch loads
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).parent))
from _timing import header  # noqa: E402

from memxbar.crossbar.cost import program_cost  # noqa: E402
from memxbar.crossbar.periphery import ADC, DAC  # noqa: E402
from memxbar.crossbar.tile import TileConfig  # noqa: E402
from memxbar.devices import presets  # noqa: E402
from memxbar.mapping import MappingConfig, program, to_analog  # noqa: E402
from memxbar.studies.workloads import MLP, digits, loaders  # noqa: E402
from memxbar.training.digital import evaluate, train  # noqa: E402
from memxbar.training.hwa import analog_accuracy, hardware_aware_train  # noqa: E402
from memxbar.training.online import AnalogSGD, chip_in_the_loop, train_online  # noqa: E402
from memxbar.training.verify import program_verify  # noqa: E402

YEAR = 365 * 86400.0
DIGITS = digits(seed=0)
WORKERS = min(2, os.cpu_count() or 1)
HWA_DEVICES = ("pcm-legallo2023-1dev", "pcm-joshi2020")
SEEDS = 8
DRAWS = 10
EPOCHS = 20
LR = 3e-3
ONLINE = dict(epochs=15, lr_decay=0.9, clip=0.5, threshold=32.0)
ONLINE_LR = dict(sgd=0.1, mixed=0.2)  # each its best of 0.05 / 0.1 / 0.2 (section 3 sweeps)
ONLINE_SEEDS = 3
ASYM_LRS = (0.05, 0.1, 0.2)
CITL = dict(epochs=10, lr=0.1, lr_decay=0.9, threshold=32.0)
ONLINE_DEVICES = ("rram-gong2018-es", "rram-gong2018-sb", "measured-gong2018-hfo2")


def data(seed: int = 0) -> tuple:
    """Fresh (train, test) loaders; the training batches are shuffled from ``seed``."""
    tr, te = DIGITS
    return loaders(tr, te, 32, seed=seed)


def mlp(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return MLP((1, 8, 8), 10, hidden=(64,))


def tiles(device: str, **kw: object) -> TileConfig:
    dev = presets.get(device) if isinstance(device, str) else device
    return TileConfig(rows=64, cols=128, device=dev, **kw)  # type: ignore[arg-type]


def ms(values: list[float]) -> str:
    return f"{100 * statistics.mean(values):.2f} ± {100 * statistics.stdev(values):.2f}"


# ----------------------------------------------------------------------------- parallel runs
def _init_worker() -> None:
    torch.set_num_threads(1)


def pmap(fn: Callable[..., Any], jobs: list[tuple]) -> list:
    """``[fn(*job) for job in jobs]`` on up to WORKERS processes (one thread each)."""
    if WORKERS == 1:
        return [fn(*job) for job in jobs]
    with ProcessPoolExecutor(WORKERS, initializer=_init_worker) as pool:
        return list(pool.map(fn, *zip(*jobs, strict=True)))


# ----------------------------------------------------------------------------- 1. HWA
def hwa_run(kind: str, device: str, seed: int) -> dict[str, tuple[float, float, float]]:
    """Train one model (digital, or hardware-aware for ``device``); per PCM preset evaluated
    (digital accuracy, accuracy at 1 s, at 1 year)."""
    trl, tel = data(seed)  # the same batches for both recipes
    model = mlp(seed)
    if kind == "digital":
        train(model, trl, epochs=EPOCHS, lr=LR, generator=seed)
    else:
        hardware_aware_train(model, tiles(device), trl, epochs=EPOCHS, lr=LR,
                             t_inference=YEAR, generator=seed)
    dig = evaluate(model, tel)
    out = {}
    for dev in (HWA_DEVICES if kind == "digital" else (device,)):
        accs = [statistics.mean(analog_accuracy(
            model, tiles(dev), tel, t=t, repeats=DRAWS,
            generator=torch.Generator().manual_seed(100 + seed))) for t in (1.0, YEAR)]
        out[dev] = (dig, accs[0], accs[1])
    return out


def hwa_section() -> None:
    print("\n## 1. Hardware-aware training, PCM read one year after programming\n")
    print(f"MLP 64-64-10, Adam lr {LR}, {EPOCHS} epochs; 64 x 128 tiles, differential pairs, "
          "global drift compensation; HWA: device noise at t = 1 year, noise scale 1, clip "
          f"2.5 sigma. Accuracy in %, mean ± std over {SEEDS} seeds (each the mean of {DRAWS} "
          "programming draws).\n")
    print("| PCM preset | training | digital accuracy | accuracy at 1 s | accuracy at 1 year |")
    print("|---|---|---|---|---|")
    jobs = [("digital", "", seed) for seed in range(SEEDS)]
    jobs += [("hardware-aware", dev, seed) for dev in HWA_DEVICES for seed in range(SEEDS)]
    results = pmap(hwa_run, jobs)
    verdicts = []
    for device in HWA_DEVICES:
        rows = {}
        for kind in ("digital", "hardware-aware"):
            got = [r[device] for (k, _, _), r in zip(jobs, results, strict=True)
                   if k == kind and device in r]
            rows[kind] = [list(col) for col in zip(*got, strict=True)]
            dig, t1, year = rows[kind]
            print(f"| {device} | {kind} | {ms(dig)} | {ms(t1)} | {ms(year)} |")
        d, h = rows["digital"][2], rows["hardware-aware"][2]
        gain = statistics.mean(h) - statistics.mean(d)
        spread = max(statistics.stdev(d), statistics.stdev(h))
        verdicts.append(f"{device}: HWA gain at 1 year {100 * gain:+.2f} points, largest "
                        f"seed-to-seed std {100 * spread:.2f} points -> "
                        f"{'margin > spread' if gain > spread else 'NOT above the spread'}")
    print()
    for v in verdicts:
        print(f"- {v}")


# ----------------------------------------------------------------------------- 2/3. online
def online_run(device: str, algorithm: str, encoding: str, seed: int,
               lr: float) -> tuple[float, dict, float]:
    """Train the MLP (init ``seed``) from scratch on the arrays; (test accuracy, cost, s)."""
    t0 = time.perf_counter()
    trl, tel = data(seed)
    hw = tiles(device, encoding=encoding)
    analog = to_analog(mlp(seed), hw, mapping=MappingConfig(weight_clip="fixed",
                                                            clip_value=ONLINE["clip"]))
    gen = torch.Generator().manual_seed(seed)
    program(analog, generator=gen)
    opt = AnalogSGD(analog, lr, algorithm=algorithm,  # type: ignore[arg-type]
                    mode="stochastic" if algorithm == "sgd" else "counts",
                    threshold=ONLINE["threshold"] if algorithm == "mixed" else 1.0,
                    refresh_every=10, generator=gen)
    train_online(analog, trl, opt, epochs=int(ONLINE["epochs"]), lr_decay=ONLINE["lr_decay"])
    return evaluate(analog, tel), opt.cost().as_dict(), time.perf_counter() - t0


def online_section() -> None:
    print("\n## 2. Online training from scratch on the arrays\n")
    print(f"MLP 64-64-10 initialised as digital, programmed once, then trained only by pulses: "
          f"{ONLINE['epochs']} epochs, lr {ONLINE_LR['sgd']} (SGD) / {ONLINE_LR['mixed']} "
          f"(mixed) decaying x{ONLINE['lr_decay']} per epoch, batch 32; weights mapped with a "
          f"fixed bound {ONLINE['clip']} (headroom); "
          "differential pairs, refresh check every 10 steps (pairs with a cell above 90 % of "
          "the range re-written by program-and-verify, 2 % tolerance). SGD: stochastic pulse "
          "trains (BL 31); mixed: Nandakumar 2020 mixed precision (pulse counts), a weight is "
          f"written once its accumulated update reaches {ONLINE['threshold']:g} nominal steps. "
          f"Accuracy: mean ± std (min) over {ONLINE_SEEDS} seeds (init, batches, devices); "
          "costs of seed 0. Energy: device write energy per pulse plus verify reads.\n")
    print("| device | algorithm | test accuracy % | pulses | refresh writes | max pulses/cell "
          "| write energy (J) | time/run (s) |")
    print("|---|---|---|---|---|---|---|---|")
    checks = []
    jobs = [(device, algorithm, "differential", seed, ONLINE_LR[algorithm])
            for device in ONLINE_DEVICES for algorithm in ("sgd", "mixed")
            for seed in range(ONLINE_SEEDS)]
    results = dict(zip(jobs, pmap(online_run, jobs), strict=True))
    for device in ONLINE_DEVICES:
        for algorithm in ("sgd", "mixed"):
            runs = [r for job, r in results.items() if job[:2] == (device, algorithm)]
            accs = [a for a, _, _ in runs]
            c = runs[0][1]
            dt = statistics.mean(t for _, _, t in runs)
            print(f"| {device} | {algorithm} | {ms(accs)} ({100 * min(accs):.2f}) | "
                  f"{c['pulses']:,} | {c['refresh_pulses']:,} | {c['max_cell_pulses']:,} | "
                  f"{c['energy']:.3g} | {dt:.1f} |")
            if algorithm == "mixed":
                checks.append(f"{device}: mixed precision, worst seed {100 * min(accs):.2f} % "
                              f"({'>= 90 %' if min(accs) >= 0.9 else 'BELOW 90 %'})")
    print()
    for c in checks:
        print(f"- {c}")


def asymmetry(device: str, k: int = 16, cells: int = 4096) -> float:
    """Mean |up - down| over the mean step, 16-pulse trains at x = 0.3 .. 0.7 of the range."""
    dev = presets.get(device)
    g = torch.Generator().manual_seed(0)
    span = dev.g_max - dev.g_min
    diff = total = 0.0
    for x in (0.3, 0.4, 0.5, 0.6, 0.7):
        st = dev.program(torch.full((cells,), dev.g_min + x * span, dtype=torch.float64),
                         generator=g)
        up = float((dev.pulse(st, torch.full((cells,), k), generator=g).g - st.g).mean())
        down = float((st.g - dev.pulse(st, torch.full((cells,), -k), generator=g).g).mean())
        diff += abs(up - down)
        total += 0.5 * (up + down)
    return diff / total


def asymmetry_section() -> None:
    print("\n## 3. Asymmetric devices: one bidirectional cell per weight (offset encoding)\n")
    print("Same recipe as section 2, but each weight is one cell that is potentiated and "
          "depressed, so the up/down asymmetry of the device acts on every update. SGD gets "
          f"its best learning rate of {', '.join(map(str, ASYM_LRS))}, mixed precision the "
          f"section-2 setting (lr {ONLINE_LR['mixed']}); lr shown in brackets. Seed 0. "
          "Asymmetry: mean |up - down| / mean step, 16-pulse trains from x = 0.3 .. 0.7.\n")
    print("| device | asymmetry | SGD accuracy % (lr) | mixed accuracy % (lr) | SGD pulses | "
          "mixed pulses |")
    print("|---|---|---|---|---|---|")
    jobs = [(device, "sgd", "offset", 0, lr) for device in ONLINE_DEVICES for lr in ASYM_LRS]
    jobs += [(device, "mixed", "offset", 0, ONLINE_LR["mixed"]) for device in ONLINE_DEVICES]
    runs = list(zip(jobs, pmap(online_run, jobs), strict=True))
    results = []
    for device in ONLINE_DEVICES:
        a = asymmetry(device)
        best = {alg: max(((r[0], r[1], job[4]) for job, r in runs if job[:2] == (device, alg)),
                         key=lambda x: x[0]) for alg in ("sgd", "mixed")}
        (acc_s, c_s, lr_s), (acc_m, c_m, lr_m) = best["sgd"], best["mixed"]
        results.append((a, device, acc_s, acc_m))
        print(f"| {device} | {a:.2f} | {100 * acc_s:.2f} ({lr_s}) | {100 * acc_m:.2f} ({lr_m}) "
              f"| {c_s['pulses']:,} | {c_m['pulses']:,} |")
    a, device, acc_s, acc_m = max(results)
    print(f"\n- most asymmetric: {device} (asymmetry {a:.2f}): mixed {100 * acc_m:.2f} % vs "
          f"SGD {100 * acc_s:.2f} % -> {'mixed wins' if acc_m > acc_s else 'SGD WINS'}")


# ----------------------------------------------------------------------------- 4. CITL
def citl_section() -> None:
    print("\n## 4. Chip-in-the-loop fine-tuning on faulty hardware\n")
    trl, tel = data(0)
    model = mlp(0)
    train(model, trl, epochs=EPOCHS, lr=LR, generator=0)
    dig = evaluate(model, tel)
    base = presets.get("rram-falcone2025")
    dev = dataclasses.replace(base, stuck_on_fraction=0.05, stuck_off_fraction=0.05)
    hw = tiles(dev)  # type: ignore[arg-type]
    print(f"Digital MLP ({100 * dig:.2f} %) programmed on rram-falcone2025 with 10 % stuck "
          "cells (5 % at g_max, 5 % at g_min), differential pairs, per-column weight scaling; "
          "then mixed-precision training through the same arrays (forward and "
          f"backward MVMs on the faulty tiles, pulse updates, refresh skips stuck pairs): "
          f"{CITL['epochs']} epochs, lr {CITL['lr']} decaying x{CITL['lr_decay']} per epoch, "
          f"threshold {CITL['threshold']:g} steps. "
          "Recovered = (tuned - faulty) / (digital - faulty).\n")
    print("| draw | faulty % | fine-tuned % | recovered | pulses | write energy (J) |")
    print("|---|---|---|---|---|---|")
    rec = []
    for seed in range(3):
        analog = to_analog(model, hw)
        gen = torch.Generator().manual_seed(seed)
        program(analog, generator=gen)
        faulty = evaluate(analog, tel)
        _, cost = chip_in_the_loop(analog, trl, epochs=int(CITL["epochs"]), lr=CITL["lr"],
                                   lr_decay=CITL["lr_decay"], algorithm="mixed", mode="counts",
                                   threshold=CITL["threshold"], refresh_every=10,
                                   generator=gen)
        tuned = evaluate(analog, tel)
        r = (tuned - faulty) / max(dig - faulty, 1e-9)
        rec.append(r)
        print(f"| {seed} | {100 * faulty:.2f} | {100 * tuned:.2f} | {100 * r:.0f} % | "
              f"{cost.pulses:,} | {cost.energy:.3g} |")
    print(f"\n- mean recovered fraction {100 * statistics.mean(rec):.0f} % "
          f"({'>= half' if min(rec) >= 0.5 else 'BELOW half for some draw'})")


# ----------------------------------------------------------------------------- 5. P&V
def verify_section() -> None:
    print("\n## 5. Program-and-verify versus single-shot programming\n")
    print("4096 targets uniform over each device's range; re-program until a verify read (the "
          "mean of `reads` reads, averaging read noise) is within the tolerance; budget 200 "
          "re-writes, 200 rounds. Errors are of the read mean, % of the range; pulses per cell "
          "include the first write; energy per cell from crossbar.cost.program_cost.\n")
    print("| device | reads | tolerance % | RMS error % | pulses/cell | verify reads/cell | "
          "converged | energy/cell (J) |")
    print("|---|---|---|---|---|---|---|---|")
    checks = []
    for device, reads in (("rram-falcone2025", 1), ("pcm-joshi2020", 8),
                          ("measured-gong2018-hfo2", 16)):
        dev = presets.get(device)
        span = dev.g_max - dev.g_min
        g = torch.Generator().manual_seed(0)
        target = dev.g_min + span * torch.rand(4096, generator=g, dtype=torch.float64)
        once = dev.program(target, generator=torch.Generator().manual_seed(1))
        single = dict(rms_error=float((dev.read_mean(once) - target).pow(2).mean().sqrt()),
                      energy=program_cost(dev, target, pulses=1.0).energy)
        print(f"| {device} | – | single shot | {100 * single['rms_error'] / span:.2f} | 1 | – "
              f"| – | {single['energy'] / 4096:.3g} |")
        errs, pulses = [], []
        for tol in (0.04, 0.02, 0.01, 0.005):
            s = program_verify(dev, target, tolerance=tol * span, max_pulses=200,
                               max_iterations=200, reads_per_verify=reads,
                               generator=torch.Generator().manual_seed(1)).summary()
            errs.append(s["rms_error"])
            pulses.append(s["pulses_per_cell"])
            print(f"| {device} | {reads} | {100 * tol:g} | {100 * s['rms_error'] / span:.2f} | "
                  f"{s['pulses_per_cell']:.2f} | {s['reads_per_cell']:.1f} | "
                  f"{100 * s['converged']:.1f} % | {s['energy'] / 4096:.3g} |")
        better = min(errs) < single["rms_error"]
        grows = all(b >= a for a, b in zip(pulses[:-1], pulses[1:], strict=True))
        verdict = "lower" if better else "NOT lower"
        checks.append(f"{device}: best P&V error {100 * min(errs) / span:.2f} % vs single shot "
                      f"{100 * single['rms_error'] / span:.2f} % ({verdict}); pulses grow as "
                      f"the tolerance tightens: {grows}")
    print()
    for c in checks:
        print(f"- {c}")


# ----------------------------------------------------------------------------- 6. ADC ranging
ADC_DEVICE = "rram-gong2018-es"


def adc_run(adc_bits: int, recalibrate_every: int, seed: int) -> float:
    """Section 2's mixed-precision run on ADC_DEVICE with an ``adc_bits`` ADC (calibrated
    range) and 8-bit DAC (ideal periphery for 0); test accuracy."""
    trl, tel = data(seed)
    periphery = dict(adc=ADC(bits=adc_bits, range_mode="calibrated"), dac=DAC(bits=8)) \
        if adc_bits else {}
    analog = to_analog(mlp(seed), tiles(ADC_DEVICE, **periphery),
                       mapping=MappingConfig(weight_clip="fixed", clip_value=ONLINE["clip"]))
    gen = torch.Generator().manual_seed(seed)
    program(analog, generator=gen, calibration=DIGITS[0].tensors[0][:256] if adc_bits else None)
    opt = AnalogSGD(analog, ONLINE_LR["mixed"], algorithm="mixed", mode="counts",
                    threshold=ONLINE["threshold"], refresh_every=10,
                    recalibrate_every=recalibrate_every, generator=gen)
    train_online(analog, trl, opt, epochs=int(ONLINE["epochs"]), lr_decay=ONLINE["lr_decay"])
    return evaluate(analog, tel)


def adc_section() -> None:
    print("\n## 6. Online training with a real ADC: calibrated once versus re-ranged\n")
    print(f"Section 2's mixed-precision recipe on {ADC_DEVICE}; 8-bit DAC and 8-bit ADC with "
          "one range per tile, calibrated on 256 training images right after programming; "
          f"mean ± std (min) over {ONLINE_SEEDS} seeds.\n")
    print("| periphery | ADC ranges | test accuracy % |")
    print("|---|---|---|")
    cases = [(0, 0, "ideal"), (8, 0, "calibrated once"), (8, 10, "re-ranged every 10 steps")]
    jobs = [(bits, every, seed) for bits, every, _ in cases for seed in range(ONLINE_SEEDS)]
    accs = pmap(adc_run, jobs)
    for bits, every, label in cases:
        got = [a for (b, e, _), a in zip(jobs, accs, strict=True) if (b, e) == (bits, every)]
        periphery = "ideal DAC/ADC" if bits == 0 else "8-bit DAC, 8-bit ADC"
        print(f"| {periphery} | {label} | {ms(got)} ({100 * min(got):.2f}) |")


SECTIONS = {"hwa": "hwa_section", "online": "online_section", "asymmetry": "asymmetry_section",
            "chip-in-the-loop": "citl_section", "verify": "verify_section", "adc": "adc_section"}


def main(names: list[str]) -> None:
    unknown = sorted(set(names) - set(SECTIONS))
    if unknown:
        raise SystemExit(f"unknown sections {unknown}; allowed: {', '.join(SECTIONS)}")
    torch.set_num_threads(1)  # tiny tensors: one thread is fastest (and 2x+ on a busy machine)
    print(header("training benchmarks (digits MLP)"))
    for name in names or list(SECTIONS):
        section = globals()[SECTIONS[name]]
        t0 = time.perf_counter()
        section()
        print(f"\n({name}: {time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    main(sys.argv[1:])
