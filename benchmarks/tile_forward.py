"""Tile forward MVM with every non-ideality on, versus the plain matmul ``x @ W`` in the same run.

Setup: PCM (memxbar.devices.pcm.PCM, Joshi 2020 statistics: programming noise, drift, 1/f read
noise) read 1 h after programming, differential pair on two 256 x 256 arrays (W is 256 x 256),
one-shot 8-bit DAC, 8-bit ADC calibrated per tile, IR drop with 1 ohm per wire segment (an
illustrative value, not from a source), batch 256, float32. The IR-drop solve and the read
happen once per read time (``set_time``), not per MVM, so they are timed separately.

Run: ``.venv/bin/python benchmarks/tile_forward.py`` (prints a table; ratios are what to quote).
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable
from functools import partial

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as memxbar sets it, before torch loads
import torch

from memxbar.crossbar.periphery import ADC, DAC
from memxbar.crossbar.tile import ReadNoise, Tile, TileConfig
from memxbar.devices.pcm import PCM

N, BATCH, R_WIRE, T_READ = 256, 256, 1.0, 3600.0


def _median_time(fn: Callable[[], object], reps: int) -> float:
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def bench_tile_forward(reps: int = 60, seed: int = 0) -> list[dict]:
    """One row per read-noise mode: median forward time of the tile and of ``x @ W`` (same
    inputs, interleaved in the same run), the median of their per-round ratios, the target,
    the relative RMS error of the tile output versus ``x @ W`` (raw, and after one global
    drift-compensation factor), and the once-per-read-time ``set_time`` cost. ``floor`` is the
    least a "per_mvm" forward can cost by design, measured in the same rounds: the matmul, the
    variance matmul and one ``torch.randn`` per output ((2 matmul + randn) / matmul)."""
    gen = torch.Generator().manual_seed(seed)
    W = torch.rand(N, N, generator=gen) * 2 - 1
    x = torch.rand(BATCH, N, generator=gen) * 2 - 1
    rows = []
    cases: tuple[tuple[ReadNoise, float], ...] = (("per_read", 1.5), ("per_mvm", 2.5))
    for mode, target in cases:
        cfg = TileConfig(rows=N, cols=N, device=PCM(), encoding="differential", layout="arrays",
                         r_row=R_WIRE, r_col=R_WIRE, dac=DAC(bits=8),
                         adc=ADC(bits=8, range_mode="calibrated"), read_noise=mode)
        tile = Tile(cfg)
        tile.program(W, generator=gen)
        t0 = time.perf_counter()
        tile.set_time(T_READ, generator=gen)
        t_set = time.perf_counter() - t0
        tile.calibrate_adc(x)
        ref = x @ W
        y = tile.mvm(x, generator=gen)
        err = float((y - ref).square().mean().sqrt() / ref.square().mean().sqrt())
        alpha = float((y * ref).sum() / (y * y).sum())  # global drift compensation
        err_gdc = float((alpha * y - ref).square().mean().sqrt() / ref.square().mean().sqrt())
        for _ in range(5):  # warm-up
            tile.mvm(x, generator=gen)
            x @ W
        t_mm, t_tile, ratio, floor = [], [], [], []
        for _ in range(reps):  # interleaved, so load changes hit both alike
            t_mm.append(_median_time(lambda: x @ W, 3))
            t_tile.append(_median_time(partial(tile.mvm, x, generator=gen), 3))
            ratio.append(t_tile[-1] / t_mm[-1])
            if mode == "per_mvm":  # the design's own floor: two matmuls + one normal per output
                t_rng = _median_time(lambda: torch.randn(BATCH, N, generator=gen), 3)
                floor.append(2.0 + t_rng / t_mm[-1])
        rows.append(dict(read_noise=mode, matmul_us=statistics.median(t_mm) * 1e6,
                         tile_us=statistics.median(t_tile) * 1e6, ratio=statistics.median(ratio),
                         target=target, floor=statistics.median(floor) if floor else 1.0,
                         set_time_ms=t_set * 1e3, rel_rms_err=err,
                         rel_rms_err_gdc=err_gdc, threads=torch.get_num_threads()))
    return rows


def main() -> None:
    rows = bench_tile_forward()
    print(f"tile forward, {N}x{N} (differential, 2 arrays), batch {BATCH}, float32, "
          f"PCM at t = {T_READ:.0f} s, 8-bit DAC/ADC, IR drop {R_WIRE} ohm, "
          f"{rows[0]['threads']} threads")
    print(f"{'read_noise':<10} {'x@W us':>9} {'tile us':>9} {'ratio':>6} {'target':>7} "
          f"{'floor':>6} "
          f"{'set_time ms':>12} {'rel err':>8} {'err GDC':>8}")
    for r in rows:
        print(f"{r['read_noise']:<10} {r['matmul_us']:9.1f} {r['tile_us']:9.1f} "
              f"{r['ratio']:6.2f} {r['target']:7.1f} {r['floor']:6.2f} {r['set_time_ms']:12.1f} "
              f"{r['rel_rms_err']:8.3f} {r['rel_rms_err_gdc']:8.3f}")


if __name__ == "__main__":
    main()
