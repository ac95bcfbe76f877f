"""Program plus read of 1M cells per device technology, against ``torch.randn`` of the same size.

Run: ``python benchmarks/devices.py`` (prints a Markdown table; ratios are measured in the
same run, so they hold across machines better than the times).
"""

from __future__ import annotations

import os
import sys
from functools import partial
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as memxbar sets it, before torch loads
import torch

sys.path.insert(0, str(Path(__file__).parent))
from _timing import best_time, header  # noqa: E402

from memxbar.devices import presets  # noqa: E402

N = 1_000_000
PRESETS = ["ideal", "pcm-joshi2020", "rram-falcone2025", "rram-wan2022", "fefet-jerry2017",
           "mtj-neurosim", "mtj-vincent2014-compound4", "dw-hsin2025", "measured-gong2018-hfo2"]


def main() -> None:
    print(header(f"devices: program + read of {N:,} cells (float32)"))
    gen = torch.Generator().manual_seed(0)
    base = best_time(lambda: torch.randn(N, generator=gen))
    print(f"\nbaseline torch.randn({N:,}): {base * 1e3:.2f} ms\n")
    print("| preset | program (ms) | read at 1 day (ms) | program + read / randn |")
    print("|---|---:|---:|---:|")
    for name in PRESETS:
        dev = presets.get(name)
        target = torch.rand(N, generator=gen) * (dev.g_max - dev.g_min) + dev.g_min
        t_prog = best_time(partial(dev.program, target, generator=gen), repeat=3)
        state = dev.program(target, generator=gen)
        t_read = best_time(partial(dev.read, state, 86400.0, generator=gen), repeat=3)
        print(f"| {name} | {t_prog * 1e3:.1f} | {t_read * 1e3:.1f} | "
              f"{(t_prog + t_read) / base:.1f}x |")


if __name__ == "__main__":
    main()
