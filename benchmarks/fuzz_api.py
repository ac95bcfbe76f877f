"""Fuzz the Python API with seeded bad and odd calls; count how each one ends.

Each case is rebuilt from ``(seed, index)`` alone: a family (device program / read / pulse,
circuit solvers, ADC / DAC / TileConfig / Tile, a small model through ``to_analog`` /
``program`` / ``drift`` / ``state_dict``, measured pulse and retention files read and fitted,
each training entry point on a tiny model, cost estimates and read disturb under odd cost
models, memxbar's command lines, the analog layers built directly, run, costed and trained,
the dataset readers on damaged files)
and its random arguments (wrong shapes and dtypes,
NaN / inf / negative values, huge counts and sizes, wrong types). Cases run in worker processes
(memory-limited), each under a timeout, and end as one of:

- ``clean``: a ConfigError (one clear message);
- ``ok``: success, every floating tensor of the result finite;
- ``silent_nan``: success with a non-finite tensor in the result;
- ``traceback``: any other exception (its last frames are printed);
- ``hang``: no answer within the timeout (the worker is killed and replaced);
- ``crash``: the worker died (segfault, out of memory).

Run: ``.venv/bin/python benchmarks/fuzz_api.py --cases 3000 --seed 0 --workers 2`` (prints the
counts and one line per bad case). ``tests/test_fuzz_api.py`` runs a few hundred in CI.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import select
import subprocess
import sys
import time
import traceback
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

OUTCOMES = ("clean", "ok", "silent_nan", "traceback", "hang", "crash")
WORKER_MEMORY = 4 << 30  # bytes of address space per worker (RLIMIT_AS)

# ----------------------------------------------------------------------------- odd values


def _odd_number(r: random.Random, typical: float) -> Any:
    import numpy as np

    return r.choice([typical, 0, -typical, math.nan, math.inf, -math.inf, 1e300, -1, 2.5,
                     "1", None, True, [typical], 10**30, typical * 1e-12, np.float32(typical),
                     np.float64(math.nan)])


def _odd_int(r: random.Random, typical: int) -> Any:
    import numpy as np

    return r.choice([typical, 0, -1, 1, 2, 2**31, 2**63 - 1, 2.5, float(typical), "8", None,
                     True, math.nan, typical + 1, np.int64(typical), np.bool_(True)])


def _shape(r: random.Random, base: tuple[int, ...], odd: bool = True) -> tuple[int, ...]:
    if not odd:
        return base
    return r.choice([base, base, (), (0,), base[::-1], base + (2,), (1,) + base, (3,) * 3,
                     tuple(max(0, b - 1) for b in base)])


def _tensor(r: random.Random, shape: tuple[int, ...], lo: float, hi: float, *,
            dtypes: tuple[str, ...] | None = None, odd: bool = True) -> Any:
    """A tensor in [lo, hi] of ``shape``, unless ``odd`` sometimes spoilt (NaN, inf, out of
    range, dtype, not a tensor at all)."""
    import torch

    dtypes = dtypes or ("float32", "float32", "float64", "float16", "bfloat16", "int64", "bool",
                        "complex64")
    dtype = getattr(torch, r.choice(dtypes) if odd else dtypes[0])
    x = lo + (hi - lo) * torch.rand(shape, dtype=torch.float64,
                                    generator=torch.Generator().manual_seed(r.getrandbits(31)))
    spoil = r.random() if odd else 0.5
    if x.numel() and spoil < 0.12:
        x.view(-1)[r.randrange(x.numel())] = r.choice([math.nan, math.inf, -math.inf])
    elif x.numel() and spoil < 0.2:
        x.view(-1)[r.randrange(x.numel())] = r.choice([-abs(hi) - 1, 10 * abs(hi) + 1, -1e30])
    if spoil > 0.97:
        return r.choice([x.tolist(), "tensor", None, x.numpy()])
    try:
        return x.to(dtype)
    except RuntimeError:
        return x


def _generator(r: random.Random) -> Any:
    import torch

    return r.choice([torch.Generator().manual_seed(r.getrandbits(31))] * 6 + [None, 7, "seed"])


# ----------------------------------------------------------------------------- families


def _device(r: random.Random):
    from memxbar.devices import presets

    return presets.get(r.choice(presets.names()))


def _good_state(r: random.Random, dev, shape: tuple[int, ...]):
    import torch

    g = dev.g_min + (dev.g_max - dev.g_min) * torch.rand(shape, generator=torch.Generator()
                                                         .manual_seed(r.getrandbits(31)))
    return dev.program(g, generator=torch.Generator().manual_seed(r.getrandbits(31)))


def _spoil_state(r: random.Random, state):
    import torch

    from memxbar.devices import CellState

    kind = r.randrange(8)
    g = state.g.clone()
    if kind == 0 and g.numel():
        g.view(-1)[0] = r.choice([math.nan, math.inf, -1e-6])
        return state.replace(g=g)
    if kind == 1:
        return state.replace(g=g.to(r.choice([torch.float16, torch.int64, torch.float64])))
    if kind == 2 and state.latent:
        k = r.choice(sorted(state.latent))
        return CellState(g, {n: v for n, v in state.latent.items() if n != k})
    if kind == 3 and state.latent:
        k = r.choice(sorted(state.latent))
        return state.replace(**{k: torch.cat([state.latent[k]] * 2) if state.latent[k].dim()
                                else state.latent[k]})
    if kind == 4:
        return CellState(g.reshape(-1), state.latent)
    if kind == 5:
        return r.choice([g, None, "state", {"g": g}])
    return state


def case_program(r: random.Random) -> Callable[[], Any]:
    dev = _device(r)
    target = _tensor(r, _shape(r, (3, 4)), dev.g_min, dev.g_max)
    gen = _generator(r)
    return lambda: dev.program(target, generator=gen)


def case_read(r: random.Random) -> Callable[[], Any]:
    import torch

    dev = _device(r)
    state = _spoil_state(r, _good_state(r, dev, (3, 4)))
    t = r.choice([0.0, 3600.0, -1.0, math.nan, math.inf, 1e30, "1h", [1.0],
                  torch.ones(4), torch.ones(3, 1), torch.ones(2, 3, 4), torch.full((4,), -1.0),
                  torch.logspace(0, 9, 4), torch.tensor(5)])
    how = r.choice(["read", "read_mean", "read_stats", "read_std"])
    gen = _generator(r)
    if how == "read":
        return lambda: dev.read(state, t, generator=gen)
    return lambda: getattr(dev, how)(state, t)


def case_pulse(r: random.Random) -> Callable[[], Any]:
    import torch

    dev = _device(r)
    state = _spoil_state(r, _good_state(r, dev, (3, 4))) if r.random() < 0.3 else \
        _good_state(r, dev, (3, 4))
    big = r.choice([1, 3, 50, 1000, 10_000, 10_001, 10**6, 2**62, -(2**63)])
    n = r.choice([
        torch.randint(-3, 4, (3, 4)), torch.full((3, 4), big), torch.tensor(big),
        torch.randint(-3, 4, (4, 3)), torch.randint(-3, 4, (4,)), torch.ones(3, 4),
        torch.ones(3, 4, dtype=torch.bool), torch.ones(3, 4, dtype=torch.uint8) * 255,
        torch.full((3, 4), -128, dtype=torch.int8), [[1] * 4] * 3, "3", 2, None,
        torch.randint(-3, 4, (2, 3, 4)),
    ])
    gen = _generator(r)
    return lambda: dev.pulse(state, n, generator=gen)


def case_circuit(r: random.Random) -> Callable[[], Any]:
    import torch

    from memxbar.crossbar.circuit import effective_conductance, solve, solve_nonlinear

    odd = r.random() < 0.7  # else every argument is valid
    R, C = r.choice([(1, 1), (3, 4), (8, 5), (12, 12)] + ([(0, 3), (4, 0)] if odd else []))
    lead = r.choice([(), (), (2,)] + ([(0,)] if odd else []))
    G = _tensor(r, lead + (R, C), 1e-6, 1e-4, odd=odd,
                dtypes=("float64", "float32", "float16", "int64", "complex64"))
    if odd and r.random() < 0.15:
        G = _tensor(r, r.choice([(R,), (2, 3, 4, 5)]), 1e-6, 1e-4)
    B = r.choice([1, 2] + ([0] if odd else []))
    V = _tensor(r, r.choice([(B, R), (R,)] + ([(B, R + 1), (2, B, R), (R, B)] if odd else [])),
                -0.2, 0.2, odd=odd, dtypes=("float64", "float32", "float16", "int64"))
    r_row, r_col = (r.choice([0.0, 1.0, 2.5] + ([_odd_number(r, 1.0)] if odd else []))
                    for _ in range(2))
    method = r.choice(["auto", "cg", "direct", "auto"] + (["lu", None, 3] if odd else []))
    which = r.randrange(3)
    if which == 0:
        return lambda: solve(G, V, r_row, r_col, method=method)
    if which == 1:
        return lambda: effective_conductance(G, r_row, r_col)
    current = r.choice([
        lambda g, v: g * v + 0.1 * g * v**3,
        lambda g, v: g * torch.sinh(v / 0.05) * 0.05,
    ] + ([
        lambda g, v: g * v * math.nan,
        lambda g, v: (g * v)[..., :1],
        lambda g, v: -g * v,
        "ohmic",
    ] if odd else []))
    tol = r.choice([1e-10, 1e-10] + ([0.0, -1.0, math.nan, 1e-30] if odd else []))
    max_iter = r.choice([50, 50] + ([0, 1, 2.5] if odd else []))
    return lambda: solve_nonlinear(G, V, r_row, r_col, current, tol=tol, max_iter=max_iter,
                                   method=r.choice(["auto", "cg", "direct"]))


def _adc(r: random.Random):
    from memxbar.crossbar.periphery import ADC

    kw = {}
    if r.random() < 0.7:
        kw["bits"] = r.choice([0, 4, 8, _odd_int(r, 8)])
    if r.random() < 0.4:
        kw["range_mode"] = r.choice(["fixed", "calibrated", "per_column", "auto", 3])
    if r.random() < 0.4:
        kw["full_scale"] = r.choice([None, 10.0, _odd_number(r, 10.0)])
    return ADC(**kw)


def _dac(r: random.Random):
    from memxbar.crossbar.periphery import DAC

    kw = {}
    if r.random() < 0.7:
        kw["bits"] = r.choice([0, 4, 8, _odd_int(r, 8)])
    if r.random() < 0.4:
        kw["input_range"] = r.choice([1.0, _odd_number(r, 1.0)])
    if r.random() < 0.3:
        kw["bit_serial"] = r.choice([False, True, 1, "yes"])
    if r.random() < 0.3:
        kw["signed"] = r.choice(["voltage", "two_phase", "both"])
    return DAC(**kw)


def _tile_config(r: random.Random, odd: float = 0.5):
    from memxbar.crossbar.periphery import ADC, DAC
    from memxbar.crossbar.tile import TileConfig

    def maybe(good: Any, bad: Callable[[], Any]) -> Any:
        return bad() if r.random() < odd / 4 else good

    valid_adc = r.choice([ADC(), ADC(bits=8, range_mode="calibrated"),
                          ADC(bits=6, range_mode="per_column"), ADC(bits=8, full_scale=4.0)])
    encoding = r.choice(["differential", "offset"])
    kw = dict(
        rows=maybe(r.choice([4, 8, 16]), lambda: _odd_int(r, 16)),
        cols=maybe(r.choice([4, 8, 16]), lambda: _odd_int(r, 16)),
        device=maybe(_device(r), lambda: r.choice(["pcm", None, 3])),
        encoding=maybe(encoding, lambda: "ternary"),
        layout=maybe("arrays" if encoding == "differential" and r.random() < 0.3 else "columns",
                     lambda: r.choice([2, "arrays"])),
        weight_bits=maybe(r.choice([0, 0, 4, 8]), lambda: _odd_int(r, 4)),
        bits_per_cell=maybe(0, lambda: _odd_int(r, 2)),
        r_row=maybe(r.choice([0.0, 1.0]), lambda: _odd_number(r, 1.0)),
        r_col=maybe(r.choice([0.0, 1.0]), lambda: _odd_number(r, 1.0)),
        read_noise=maybe(r.choice(["per_mvm", "per_read", "off"]), lambda: "sometimes"),
        adc=_adc(r) if r.random() < odd else valid_adc,
        dac=_dac(r) if r.random() < odd else DAC(bits=r.choice([0, 8])),
    )
    if r.random() < odd / 3:
        kw["rows_parallel"] = _odd_int(r, 4)
    return TileConfig(**kw)


def case_periphery(r: random.Random) -> Callable[[], Any]:
    """Build an ADC and a DAC, then (on valid values: the converters leave the values' checks
    to the tile) convert with odd scales, full scales and value dtypes."""
    def run() -> Any:
        adc, dac = _adc(r), _dac(r)
        dtype = r.choice(["float32", "float32", "float64", "int64", "bool"])
        x = _tensor(r, _shape(r, (4, 6)), -1.0, 1.0, dtypes=(dtype,), odd=False)
        scale = r.choice([None, 2.0, _odd_number(r, 2.0), _tensor(r, _shape(r, (4, 1)), 0.5, 2.0)])
        fs = r.choice([1.0, _odd_number(r, 1.0), _tensor(r, _shape(r, (6,)), 0.5, 2.0)])
        out = [dac.encode(x, scale)[0], dac.codes(x, scale), dac.quantize(x)]
        if r.random() < 0.5:
            out += [adc.quantize(x, fs), adc.to_codes(x * adc.levels)]
        else:
            amax = _tensor(r, _shape(r, (2, 6)), 0.0, 3.0, dtypes=(dtype,), odd=False)
            out.append(adc.full_scales(amax))
        return out
    return run


def case_tile(r: random.Random) -> Callable[[], Any]:
    import torch

    from memxbar.crossbar.tile import Tile

    odd = r.random() < 0.6  # else every argument is valid

    def run() -> Any:
        cfg = _tile_config(r, odd=0.5 if odd else 0.0)
        shape = r.choice([(), (2,), (0,), (-1,), (2.5,), (10**9, 10**9), "2"]) if odd else \
            r.choice([(), (2,), (2, 3)])
        tile = Tile(cfg, shape)
        W = _tensor(r, _shape(r, tuple(shape) + (cfg.rows, cfg.weight_cols), odd), -1.0, 1.0,
                    odd=odd)
        gen = _generator(r) if odd else None
        tile.program(W, generator=gen)
        if r.random() < 0.3:
            tile.set_time(r.choice([0.0, 3600.0, -1.0, math.nan] if odd else [0.0, 3600.0]),
                          generator=gen)
        x = _tensor(r, _shape(r, tuple(shape) + (3, cfg.rows), odd), -1.0, 1.0, odd=odd)
        if cfg.adc.bits and cfg.adc.range_mode != "fixed":
            tile.calibrate_adc(x)
        y = tile.mvm(x, generator=gen)
        extra = r.randrange(5)
        d = _tensor(r, _shape(r, tuple(shape) + (3, cfg.weight_cols), odd), -1.0, 1.0, odd=odd)
        if extra == 0:
            return y, tile.state.g, tile.mvm_t(d, generator=gen)
        if extra == 1:
            big = r.choice([1, 5, 100, 10**5, 2**40] if odd else [1, 5, 100])
            n = r.choice([torch.full(tuple(shape) + (cfg.rows, cfg.weight_cols), big),
                          torch.tensor(-big), torch.ones(3, 3, dtype=torch.int64)] if odd else
                         [torch.full(tuple(shape) + (cfg.rows, cfg.weight_cols), big)])
            return y, tile.apply_pulses(n, generator=gen), tile.weights()
        if extra == 2:
            lr = r.choice([0.01, 1.0] + ([0.0, -1.0, math.nan, 1e12] if odd else []))
            mode = r.choice(["stochastic", "counts"] + (["both"] if odd else []))
            return y, tile.update(x, d, lr, generator=gen, mode=mode), tile.weights()
        return y, tile.state.g

    return run


def _model(r: random.Random):
    import torch
    from torch import nn

    torch.manual_seed(r.getrandbits(31))
    if r.random() < 0.7:
        n_in = r.choice([3, 8, 20])
        return nn.Sequential(nn.Linear(n_in, 6), nn.ReLU(), nn.Linear(6, 2)), (4, n_in)
    return nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Flatten(), nn.Linear(2 * 4 * 4, 3)), \
        (2, 1, 6, 6)


def case_mapping(r: random.Random) -> Callable[[], Any]:
    import torch

    from memxbar.errors import ConfigError
    from memxbar.mapping import drift, program, to_analog

    odd = r.random() < 0.6  # else every argument is valid

    def run() -> Any:
        model, in_shape = _model(r)
        hw = _tile_config(r, odd=0.2 if odd else 0.0)
        if odd and r.random() < 0.1:
            hw = r.choice([None, "pcm", 3])
        analog = to_analog(model, hw)
        x = _tensor(r, _shape(r, in_shape, odd), -1.0, 1.0, odd=odd,
                    dtypes=("float32", "float32", "float64", "float16", "int64"))
        calibration = torch.rand(in_shape) if r.random() < 0.5 or not odd else None
        program(analog, generator=_generator(r) if odd else None, calibration=calibration)
        if r.random() < 0.5:
            drift(analog, r.choice([60.0, 1e8, 0.0, -1.0, math.nan, math.inf, "1d"] if odd
                                   else [60.0, 1e8]))
        if odd and r.random() < 0.4:
            sd = analog.state_dict()
            key = r.choice(sorted(k for k, v in sd.items() if isinstance(v, torch.Tensor)))
            kind = r.randrange(4)
            if kind == 0:
                del sd[key]
            elif kind == 1 and sd[key].is_floating_point() and sd[key].numel():
                sd[key] = sd[key].clone()
                sd[key].view(-1)[0] = r.choice([math.nan, -1.0, math.inf])
            elif kind == 2:
                sd[key] = torch.zeros(3, 3)
            else:
                sd[key] = sd[key].to(torch.int64)
            fresh = to_analog(model, hw)
            try:
                fresh.load_state_dict(sd)
            except RuntimeError as e:  # a deleted key: torch's own strict-loading refusal, as
                # for any module (the layers leave missing keys to it, so strict=False works)
                if kind == 0 and "Missing key(s) in state_dict" in str(e):
                    raise ConfigError(f"strict load_state_dict: {e}") from None
                raise
            analog = fresh
        with torch.no_grad():
            return analog(x)

    return run


def _odd_size(r: random.Random, typical: int) -> Any:
    """A layer size: usually ``typical``, else an odd value (numpy, float, bool, huge, tuple)."""
    return _odd_int(r, typical) if r.random() < 0.5 else r.choice(
        [typical, (typical,), [typical, typical], 3.0, -typical, 10**12])


def case_layers(r: random.Random) -> Callable[[], Any]:
    """The analog layers built directly (sizes, kernel, stride, padding, groups, heads,
    dropout; numpy values among them), programmed, run on an input of some shape, then
    costed (``estimate_cost`` with some duplication) or given to ``AnalogSGD``."""
    import numpy as np
    import torch

    from memxbar.mapping import (
        AnalogConv1d,
        AnalogConv2d,
        AnalogLinear,
        AnalogMultiheadAttention,
        program,
    )
    from memxbar.mapping.cost import estimate_cost
    from memxbar.training.online import AnalogSGD

    odd = r.random() < 0.6
    kind = r.randrange(4)

    def size(typical: int) -> Any:
        return _odd_size(r, typical) if odd and r.random() < 0.3 else typical

    def run() -> Any:
        hw = _tile_config(r, odd=0.1 if odd else 0.0)
        if kind == 0:
            layer: Any = AnalogLinear(size(8), size(4), r.random() < 0.5, hardware=hw)
            shape: tuple[int, ...] = (3, 8)
        elif kind in (1, 2):
            cls, nd = (AnalogConv1d, 1) if kind == 1 else (AnalogConv2d, 2)
            pad = r.choice([0, 1, "same", "valid"] + (["full", -1, (1,) * (nd + 1), None]
                                                      if odd else []))
            layer = cls(size(2), size(4), size(3), stride=size(1) if pad != "same" else 1,
                        padding=pad, dilation=size(1), groups=size(r.choice([1, 2])),
                        padding_mode=r.choice(["zeros", "zeros", "reflect"] +
                                              (["mirror"] if odd else [])), hardware=hw)
            shape = (2, 2) + (7,) * nd
        else:
            drop = r.choice([0.0, 0.1] + ([-0.5, 2.0, math.nan, "x"] if odd else []))
            layer = AnalogMultiheadAttention(size(8), size(2), dropout=drop,
                                             kdim=r.choice([None, 8, 6]) if not odd else
                                             r.choice([None, 6, _odd_size(r, 8)]),
                                             batch_first=True, hardware=hw)
            shape = (2, 5, 8)
        program(layer, generator=torch.Generator().manual_seed(r.getrandbits(31)))
        x = _tensor(r, _shape(r, shape, odd and r.random() < 0.3), -1.0, 1.0,
                    odd=odd and r.random() < 0.3, dtypes=("float32", "float64", "int64"))
        with torch.no_grad():
            if kind == 3:
                kv = x if layer.kdim == 8 or not isinstance(x, torch.Tensor) or not x.dim() \
                    else x[..., :layer.kdim]
                y = layer(x, kv, x if layer.vdim == 8 else kv)[0]
            else:
                y = layer(x)
        if kind != 3 and r.random() < 0.5:  # (attention's forward takes query, key, value)
            dup = r.choice([None, 2] + ([0, 2.5, "2", np.int64(2), {"nope": 2}, True]
                                        if odd else []))
            report = estimate_cost(layer, x, duplication=dup)
            return y, torch.tensor([report.energy, report.latency])
        opt = AnalogSGD(layer, _odd_number(r, 0.01) if odd and r.random() < 0.3 else 0.01,
                        bl=size(31), max_pulses=size(100))
        return y, torch.tensor([opt.lr, float(opt.bl)])

    return run


def _pulse_csv(r: random.Random, odd: bool) -> tuple[str, str | None]:
    """A pulse-response file (wide or long layout) of a saturating up / down train in uS,
    written in a random unit, and the ``units`` argument to read it with."""
    n = r.choice([40, 40, 12, 200] + ([9, 1] if odd else []))
    k = [i / max(n - 1, 1) for i in range(n)]
    noise = random.Random(r.getrandbits(31))
    up = [1 + 9 * (1 - math.exp(-4 * x)) + noise.gauss(0, 0.05) for x in k]
    down = [10 - 9 * (1 - math.exp(-4 * x)) + noise.gauss(0, 0.05) for x in k]
    unit, factor = r.choice([("uS", 1.0), ("S", 1e-6), ("nS", 1e3), ("mS", 1e-3),
                             ("normalized", 0.1)])
    if odd and r.random() < 0.2:  # the right numbers under the wrong unit
        factor = r.choice([1.0, 1e-6, 1e6, 1e-300, -1.0])
    suffix = {"uS": " (uS)", "S": "_s", "nS": " [nS]", "mS": "_ms", "normalized": ""}[unit]
    units = None if suffix and r.random() < 0.7 else unit
    if odd and r.random() < 0.1:
        units = r.choice(["uA", "", "us", 3, None])
    if r.random() < 0.5:  # wide
        head = [f"up_1{suffix}", f"down_1{suffix}"]
        rows = [[f"{a * factor:.6g}", f"{b * factor:.6g}"] for a, b in zip(up, down, strict=True)]
    else:  # long
        head = ["phase", "curve", "pulse_number", f"conductance{suffix or '_value'}"]
        if not suffix:
            head[3] = "conductance"
        rows = [[ph, "1", str(i), f"{v * factor:.6g}"] for ph, vs in (("potentiation", up),
                ("depression", down)) for i, v in enumerate(vs)]
    if odd:
        for _ in range(r.choice([0, 0, 1, 3])):
            if rows:
                row = r.choice(rows)
                row[r.randrange(len(row))] = r.choice(["", "abc", "nan", "inf", "-5", "1e400",
                                                       "0", "1,2", " ", "-0"])
        if r.random() < 0.1:
            head = r.choice([[], head[:1], head + head[:1], [h.upper() for h in head]])
        if r.random() < 0.05:
            rows = r.choice([[], rows[: len(rows) // 3], rows[::-1]])
    text = "\n".join(",".join(x) for x in [head, *rows]) + "\n"
    if odd and r.random() < 0.05:
        text = r.choice(["", "\ufeff" + text, text.replace(",", ";"), text[: len(text) // 2],
                         "\x00" * 10])
    return text, units


def _retention_csv(r: random.Random, odd: bool) -> tuple[str, str | None]:
    """A retention file: two levels x two cells drifting as (t / 1 s)^-nu, in uS."""
    times = [1.0, 10.0, 100.0, 1e3, 1e4, 1e5]
    rows = [["time_s", "level", "cell", "conductance_us"]]
    noise = random.Random(r.getrandbits(31))
    for level, g0, nu in (("L1", 5.0, 0.05), ("L2", 20.0, 0.03)):
        for cell in ("0", "1"):
            rows += [[f"{t:g}", level, cell, f"{g0 * t ** -(nu + noise.gauss(0, 0.005)):.6g}"]
                     for t in times]
    units = None
    if odd:
        for _ in range(r.choice([0, 1, 3])):
            row = r.choice(rows[1:])
            col = r.randrange(4)
            row[col] = r.choice(["", "abc", "nan", "-1", "0", "1e400", "inf", "L1", "-0"])
        if r.random() < 0.1:
            rows[0] = r.choice([["time (h)", "level", "cell", "g (nS)"],
                                ["time (y)", "level", "cell", "conductance_us"],
                                ["time_s", "level", "cell", "weight"],
                                ["time_s", "cell", "conductance_us"]])
        if r.random() < 0.1:
            rows = rows[:1] + [x for x in rows[1:] if x[2] == "0"][:r.choice([1, 2, 7])]
        if r.random() < 0.1:
            units = r.choice(["uS", "normalized", "S", "ohm"])
    return "\n".join(",".join(x) for x in rows) + "\n", units


def case_measured(r: random.Random) -> Callable[[], Any]:
    """A researcher's measured files read and fitted: pulse trains to a MeasuredDevice (then
    a few cells programmed and read), retention readings to a power-law drift."""
    import tempfile

    import torch

    from memxbar.devices import measured

    odd = r.random() < 0.7
    retention = r.random() < 0.3
    text, units = (_retention_csv if retention else _pulse_csv)(r, odd)
    kwargs: dict[str, Any] = {}
    if odd and not retention:
        for name, good in (("n_bins", 16), ("window", 7)):
            if r.random() < 0.3:
                kwargs[name] = _odd_int(r, good)
        for name, good in (("g_min", 1e-6), ("g_max", 1e-5), ("read_noise", 1e-8)):
            if r.random() < 0.15:
                kwargs[name] = _odd_number(r, good)

    def run() -> Any:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "data.csv"
            path.write_text(text, encoding="utf-8")
            if retention:
                data = measured.read_retention_file(path, units=units)
                t0 = r.choice([None, None, 1.0, 50.0, 0.0, -1.0, 1e9, math.nan]) if odd else None
                fitted = measured.fit_retention(data, t0=t0)
                return torch.tensor([*fitted.g0, *fitted.nu, *fitted.nu_std, fitted.rms_log],
                                    dtype=torch.float64)
            data = measured.read_pulse_file(path, units=units)
            if r.random() < 0.3:  # the fit checked against simulated cells of it
                n_sims = _odd_int(r, 8) if odd and r.random() < 0.5 else 8
                seed = _odd_int(r, 3) if odd and r.random() < 0.3 else 3
                report = measured.fit_report(data.potentiation, data.depression,
                                             units=data.units, n_sims=n_sims, seed=seed,
                                             **kwargs)
                return torch.tensor([report.rms_up, report.rms_down, report.step_std_simulated])
            dev = measured.fit(data.potentiation, data.depression, units=data.units, **kwargs)
            g = torch.linspace(dev.g_min, dev.g_max, 8, dtype=torch.float64)
            state = dev.program(g, generator=torch.Generator().manual_seed(1))
            return dev.read(state, 1.0, generator=torch.Generator().manual_seed(2))

    return run


def case_datasets(r: random.Random) -> Callable[[], Any]:
    """A user's dataset folder read by the built-in readers: MNIST IDX files (plain or gzip)
    or CIFAR-10 python batches, small and valid, or damaged (bytes changed, cut short, a
    file missing, the wrong file under a name), with odd ``limit`` values."""
    import gzip
    import pickle
    import tempfile

    import numpy as np

    from memxbar.studies import workloads

    odd = r.random() < 0.7
    cifar = r.random() < 0.4
    rng = np.random.default_rng(r.getrandbits(31))
    n = r.choice([3, 5])

    def idx(arr: np.ndarray) -> bytes:
        head = bytes([0, 0, 0x08, arr.ndim]) + b"".join(d.to_bytes(4, "big") for d in arr.shape)
        return head + arr.astype(">u1").tobytes()

    files: dict[str, bytes] = {}
    if cifar:
        for name in workloads.CIFAR_BATCHES:
            batch = {b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
                     b"labels": [int(v) for v in rng.integers(0, 10, n)]}
            files[name] = pickle.dumps(batch, protocol=2)
    else:
        for name in workloads.IDX_FILES:
            arr = (rng.integers(0, 256, (n, 28, 28)) if "images" in name else
                   rng.integers(0, 10, n))
            raw = idx(arr)
            if r.random() < 0.3:
                files[name + ".gz"] = gzip.compress(raw)
            else:
                files[name] = raw
    if odd:
        for _ in range(r.choice([1, 1, 2, 4])):
            name = r.choice(sorted(files))
            raw = bytearray(files[name])
            kind = r.randrange(5)
            if kind == 0 and raw:
                for _ in range(r.choice([1, 3, 20])):
                    raw[r.randrange(min(len(raw), 64) if r.random() < 0.6 else len(raw))] = \
                        r.randrange(256)
            elif kind == 1:
                raw = raw[:r.randrange(len(raw) + 1)]
            elif kind == 2:
                del files[name]
                continue
            elif kind == 3:
                raw = bytearray(r.choice(list(files.values())))
            else:
                raw = bytearray(r.choice([b"", b"\x1f\x8b garbage", b"\x80\x02N.",
                                          pickle.dumps([1, 2]), pickle.dumps({b"data": 3})]))
            files[name] = bytes(raw)
    limit = r.choice([None, 2, 0, -1, 2.5, "2", True, 10**12]) if odd else r.choice([None, 2])

    def run() -> Any:
        import torch

        with tempfile.TemporaryDirectory() as tmp:
            for name, raw in files.items():
                (Path(tmp) / name).write_bytes(raw)
            train, test = workloads.load("cifar10" if cifar else "mnist", tmp, limit=limit)
            return torch.cat([train.tensors[0].flatten(), test.tensors[0].flatten()])

    return run


def case_training(r: random.Random) -> Callable[[], Any]:
    """One short run of each training entry point on a tiny model and data set: digital,
    hardware-aware, online (AnalogSGD, chip in the loop), program-and-verify."""
    import torch
    from torch.utils.data import DataLoader, TensorDataset

    from memxbar.mapping import program, to_analog
    from memxbar.training import digital, hwa, online, verify

    odd = r.random() < 0.6
    kind = r.randrange(5)

    def maybe(good: Any, bad: Callable[[], Any]) -> Any:
        return bad() if odd and r.random() < 0.25 else good

    def loader() -> Any:
        x = _tensor(r, _shape(r, (16, 8), odd and r.random() < 0.2), -1.0, 1.0,
                    odd=odd and r.random() < 0.3, dtypes=("float32", "float64", "int64"))
        y = torch.randint(0, 2, (16,), generator=torch.Generator().manual_seed(1))
        if odd and r.random() < 0.15:
            y = r.choice([y + 5, y.float(), -y, y[:3]])
        if not isinstance(x, torch.Tensor) or (odd and r.random() < 0.05):
            return r.choice([None, [1, 2], x])
        if x.dim() and x.shape[0] == y.shape[0]:
            return DataLoader(TensorDataset(x, y), batch_size=8)
        return [(x, y)]  # one batch whose inputs and labels disagree

    def run() -> Any:
        from torch import nn

        torch.manual_seed(r.getrandbits(31))
        model = nn.Sequential(nn.Linear(8, 6), nn.ReLU(), nn.Linear(6, 2))
        # odd epoch counts, never huge ones: a long run is what a large count asks for
        epochs = maybe(1, lambda: r.choice([0, -1, 2.5, "1", None, True, math.nan, 2]))
        lr = maybe(0.01, lambda: _odd_number(r, 0.01))
        gen = maybe(torch.Generator().manual_seed(3), lambda: _generator(r))
        if kind == 0:
            return digital.train(model, loader(), epochs=epochs, lr=lr,
                                 optimizer=maybe("adam", lambda: r.choice(["sgd", "lbfgs", 3])),
                                 weight_decay=maybe(0.0, lambda: _odd_number(r, 1e-4)),
                                 momentum=maybe(0.9, lambda: _odd_number(r, 0.9)),
                                 generator=gen)
        hw = _tile_config(r, odd=0.1 if odd else 0.0)
        if kind == 1:
            losses = hwa.hardware_aware_train(
                model, hw, loader(), epochs=epochs, lr=lr,
                t_inference=maybe(3600.0, lambda: _odd_number(r, 3600.0)),
                noise_scale=maybe(1.0, lambda: _odd_number(r, 1.0)),
                clip_sigma=maybe(2.5, lambda: _odd_number(r, 2.5)), generator=gen)
            accs = hwa.analog_accuracy(model, hw, loader(),
                                       t=maybe(60.0, lambda: _odd_number(r, 60.0)),
                                       repeats=maybe(1, lambda: _odd_int(r, 1)),
                                       generator=torch.Generator().manual_seed(4))
            return torch.tensor(losses + accs)
        if kind == 4:
            dev = _device(r)
            g = torch.linspace(dev.g_min, dev.g_max, 12, dtype=torch.float64)
            res = verify.program_verify(
                dev, maybe(g, lambda: _tensor(r, (12,), dev.g_min, dev.g_max)),
                tolerance=maybe(0.05 * (dev.g_max - dev.g_min),
                                lambda: _odd_number(r, 0.05 * (dev.g_max - dev.g_min))),
                method=maybe(r.choice(["program", "pulses"]), lambda: "verify"),
                max_pulses=maybe(20, lambda: _odd_int(r, 20)),
                max_iterations=maybe(10, lambda: _odd_int(r, 10)),
                t_read=maybe(0.0, lambda: _odd_number(r, 1.0)), generator=gen)
            return res.state.g
        analog = to_analog(model, hw)
        program(analog, generator=torch.Generator().manual_seed(5))
        options = dict(
            momentum=maybe(0.0, lambda: _odd_number(r, 0.5)),
            threshold=maybe(1.0, lambda: _odd_number(r, 1.0)),
            max_pulses=maybe(1000, lambda: _odd_int(r, 100)),
            refresh_every=maybe(10, lambda: _odd_int(r, 2)),
            refresh_threshold=maybe(0.9, lambda: _odd_number(r, 0.9)),
            bl=maybe(31, lambda: _odd_int(r, 31)),
        )
        if kind == 2:
            opt = online.AnalogSGD(analog, lr, algorithm=maybe(
                r.choice(["sgd", "mixed"]), lambda: r.choice(["adam", None])),
                generator=gen, **options)
            return torch.tensor(online.train_online(
                analog, loader(), opt, epochs=epochs,
                lr_decay=maybe(1.0, lambda: _odd_number(r, 0.9))))
        losses, cost = online.chip_in_the_loop(analog, loader(), epochs=epochs, lr=lr,
                                               generator=gen, **options)
        return torch.tensor(losses), torch.tensor([float(v) for v in vars(cost).values()
                                                   if isinstance(v, (int, float))])

    return run


def _cost_model(r: random.Random, odd: bool):
    """A CostModel with a few fields set: in their declared range (a bound, the default scaled,
    another option) or, when ``odd``, sometimes not."""
    import dataclasses

    from memxbar.crossbar.cost import CostModel

    kw: dict[str, Any] = {}
    fields = [f for f in dataclasses.fields(CostModel) if "param" in f.metadata]
    for f in r.sample(fields, r.choice([0, 1, 3, 8])):
        m, default = f.metadata["param"], f.default
        if odd and r.random() < 0.3:
            kw[f.name] = (r.choice([*m["options"], "other", None, 3]) if m["options"]
                          else _odd_number(r, default if isinstance(default, (int, float))
                                           and default else 1.0))
        elif m["options"]:
            kw[f.name] = r.choice(m["options"])
        elif isinstance(default, (int, float)) and not isinstance(default, bool):
            lo = m["ge"] if m["ge"] is not None else m["gt"]
            hi = m["le"] if m["le"] is not None else m["lt"]
            choices = [v for v in (m["ge"], m["le"], default * 10, default / 10, 2 * default)
                       if v is not None and (lo is None or v >= lo) and (hi is None or v <= hi)
                       and not (m["gt"] is not None and v <= m["gt"])
                       and not (m["lt"] is not None and v >= m["lt"])]
            value = r.choice(choices or [default])
            kw[f.name] = round(value) if m["integer"] else value
    return CostModel(**kw)


def case_cost(r: random.Random) -> Callable[[], Any]:
    """Cost estimates (network, one tile's MVM, programming) and read disturb, with odd cost
    models, inputs, copies and counts."""
    import torch

    from memxbar.crossbar.cost import mvm_cost, program_cost, tile_program_cost
    from memxbar.mapping import program, to_analog
    from memxbar.mapping.cost import estimate_cost
    from memxbar.mapping.disturb import apply_read_disturb

    odd = r.random() < 0.6  # else every argument is valid

    def numbers(values: Any) -> Any:
        return torch.tensor([float(v) for v in values], dtype=torch.float64)

    def run() -> Any:
        model, in_shape = _model(r)
        hw = _tile_config(r, odd=0.15 if odd else 0.0)
        analog = to_analog(model, hw)
        program(analog, generator=torch.Generator().manual_seed(r.getrandbits(31)),
                calibration=torch.rand(in_shape))
        cm = _cost_model(r, odd)
        x = _tensor(r, _shape(r, in_shape, odd and r.random() < 0.3), 0.0, 1.0,
                    odd=odd and r.random() < 0.3, dtypes=("float32", "float64", "int64"))
        kind = r.randrange(4)
        if kind == 0:
            dup = r.choice([None, 1, 2] + ([0, -1, 2.5, "2", {"0": 2}, {"nope": 2},
                                            {"0": 10**9}, True] if odd else []))
            rep = estimate_cost(analog, x, cm, duplication=dup)
            table = rep.layers.select_dtypes("number").to_numpy(dtype=float)
            return numbers(rep.totals().values()), torch.from_numpy(table)
        if kind == 1:
            layer = next(m for m in analog.modules() if hasattr(m, "tiled"))
            tile = layer.tiled.tile
            xt = _tensor(r, _shape(r, tuple(tile.shape) + (3, tile.config.rows), odd), 0.0, 1.0,
                         odd=odd)
            used = r.choice([None, None, 1, tile.config.rows] + ([0, -1, 10**6, 2.5] if odd
                                                                  else []))
            c = mvm_cost(tile, xt, cm, used_rows=used)
            return numbers([*c.energy.values(), c.latency, c.conversions, c.active_rows])
        if kind == 2:
            dev = _device(r)
            cells = r.choice([10, 0, torch.full((5,), dev.g_max)] +
                             ([-1, 2.5, torch.full((2,), math.nan), "5", 10**30] if odd else []))
            pulses = r.choice([None, 3, torch.ones(5)] + ([-1, math.nan, 1e300, "3"] if odd
                                                          else []))
            c = program_cost(dev, cells, pulses=pulses,
                             parallel=r.choice([1, 4] + ([0, 2.5] if odd else [])), model=cm)
            tile = next(m for m in analog.modules() if hasattr(m, "tiled")).tiled.tile
            t = tile_program_cost(tile, cm, verify_iterations=r.choice(
                [None, 2] + ([-3, math.inf] if odd else [])))
            return numbers([c.energy, c.time, c.pulses, c.verify_reads, t.energy, t.time])
        inferences = r.choice([1, 1e6, 0] + ([-1, math.nan, math.inf, 1e300, "1e6", None]
                                             if odd else []))
        rep = apply_read_disturb(analog, inferences, x, generator=_generator(r) if odd else None)
        with torch.no_grad():
            y = analog(torch.rand(in_shape))
        return torch.from_numpy(rep.layers.select_dtypes("number").to_numpy(dtype=float)), y

    return run


_ODD_ARGS = ("", " ", "-1", "0", "1e400", "nan", "inf", "abc", "x" * 300, "é∂", "a=b", "=",
             "--", "-", "--help", "x\x00y", "a/b/c", ".")


def _cli_commands(r: random.Random, odd: bool) -> list[list[str]]:
    """``memxbar`` command lines to run one after the other: mostly one (never ``demo`` or
    ``dashboard``; a study run creates the study only), sometimes a small study run by worker
    processes and then reported. Tokens are replaced, dropped or added when ``odd`` (in the
    report only, after a run). Paths are relative: the case runs in a fresh folder."""
    if r.random() < 0.05:
        storage = r.choice([[], [], ["--storage", "sqlite:///s.db"]])
        run = ["study", "run", "study.toml", "--workers", r.choice(["1", "2"]), "--trials",
               r.choice(["1", "2"]), *storage]
        return [run, _cli_argv(r, odd, ["study", "report", "o", *r.choice([[], storage,
                                                                       ["--storage", "bogus"]])])]
    return [_cli_argv(r, odd)]


def _cli_argv(r: random.Random, odd: bool, argv: list[str] | None = None) -> list[str]:
    """One ``memxbar`` command line (``argv``, or a random one), with tokens replaced, dropped
    or added when ``odd``."""
    if argv is not None:
        return _spoil_argv(r, argv) if odd else argv
    from memxbar.devices import presets

    name = r.choice([*r.sample(presets.names(), 2), "nope", "ideal"])
    study = r.choice(["study.toml", "quickstart", "missing.toml", "bad.toml", "folder"])
    out = r.choice(["p.png", "p.svg", "p.pdf", "sub/p.png", "p.jpg", "p", "folder/p.png"])
    kind = r.choice(["devices"] * 3 + ["spice"] * 2 + ["study"] * 4 + ["cost", "other"])
    if kind == "devices":
        argv = r.choice([["devices", "list"], ["devices", "show", name],
                         ["devices", "plot", name, "--out", out, "--pulses",
                          r.choice(["5", "20", "0", "100001"]), "--seed", r.choice(["0", "7"])]])
    elif kind == "spice":
        argv = ["spice-check", "--rows", r.choice(["1", "3", "16", "0", "129"]), "--cols",
                r.choice(["2", "8", "16"]), "--r-row", r.choice(["1.0", "0", "0.5", "-1"]),
                "--r-col", r.choice(["1.0", "0", "2"]), "--seed", r.choice(["0", "3"])]
    elif kind == "study":
        storage = r.choice(["sqlite:///s.db", "sqlite:///sub/s.db", "sqlite://", "bogus",
                            "postgresql://nobody@127.0.0.1:1/db", "mysql://x@127.0.0.1:1/db",
                            "sqlite:///folder"])
        argv = r.choice([
            ["study", "list"], ["study", "fields", "--format", r.choice(["table", "markdown",
                                                                         "html"])],
            ["study", "run", study, "--workers", "0", "--output", r.choice(["o", "folder",
                                                                            "study.toml"]),
             "--trials", r.choice(["1", "3", "0"]), "--max-retries", r.choice(["0", "2", "101"])]
            + (["--storage", storage] if r.random() < 0.4 else [])
            + (["--path", r.choice(["folder", "missing", "study.toml"])] if r.random() < 0.2
               else []),
            ["study", "report", r.choice(["o", "folder", "missing", "study.toml"])]
            + (["--storage", storage] if r.random() < 0.4 else []),
            ["study", "worker", study.replace("quickstart", "study.toml"), "--storage",
             storage, "--output", "o"]])
    elif kind == "cost":
        argv = ["cost", study, "--set", r.choice(["device=pcm-joshi2020", "adc_bits=5",
                                                  "device.read_time=5e-9", "tile_rows=64",
                                                  "nope=1", "adc_bits=3.5"]),
                "--cost", r.choice(["sensing=per_column", "node=1e-300", "buffer_type=x",
                                    "node=22e-9"]), "--plot", out]
    else:
        argv = r.choice([[], ["--help"], ["bogus"], ["devices"], ["study", "run"], ["cost"]])
    if odd:
        argv = _spoil_argv(r, argv)
    if kind == "study" and "run" in argv and "--workers" not in argv:
        argv += ["--workers", "0"]
    return argv


def _spoil_argv(r: random.Random, argv: list[str]) -> list[str]:
    """``argv`` with one to three tokens replaced, dropped, doubled or added."""
    argv = list(argv)
    for _ in range(r.choice([1, 1, 2, 3])):
        what = r.randrange(4)
        if what == 0 and argv:
            argv[r.randrange(len(argv))] = r.choice(_ODD_ARGS)
        elif what == 1 and argv:
            del argv[r.randrange(len(argv))]
        elif what == 2 and argv:
            i = r.randrange(len(argv))
            argv[i:i] = argv[i:i + 2]  # an option given twice
        else:
            argv.append(r.choice(_ODD_ARGS))
    return argv


def case_cli(r: random.Random) -> Callable[[], Any]:
    """The ``memxbar`` command (``cli.main``) in a fresh folder holding a study file, a broken
    one and a sub-folder. Exit 0 is a success, exit 2 with one line on stderr a clean refusal;
    anything else (exit 1: a traceback) is a finding."""
    import contextlib
    import io
    import tempfile

    import torch

    from memxbar import cli
    from memxbar.errors import ConfigError

    odd = r.random() < 0.6
    commands = _cli_commands(r, odd)
    quick = (Path(__file__).resolve().parents[1] / "studies" / "quickstart.toml").read_text()
    quick = (quick.replace('epochs = 20', 'epochs = 1').replace('repeats = 3', 'repeats = 1')
             .replace('# trials = 16', 'trials = 2'))
    broken = quick[: r.randrange(len(quick))] + r.choice(["", "[[", "x = ", "\x00", "]"])

    def run() -> Any:
        with tempfile.TemporaryDirectory() as tmp:
            here = os.getcwd()
            os.chdir(tmp)
            try:
                Path("study.toml").write_text(quick.replace('"runs/quickstart"', '"o"'))
                Path("bad.toml").write_text(broken)
                Path("folder").mkdir()
                for argv in commands:
                    err = io.StringIO()
                    with contextlib.redirect_stderr(err), \
                            contextlib.redirect_stdout(io.StringIO()):
                        try:
                            code = cli.main(argv)
                        except SystemExit as e:  # --help
                            code = e.code if isinstance(e.code, int) else 1
                    text = err.getvalue().strip()
                    if code == 2 and text.count("\n") == 0 and text.startswith(
                            "memxbar: error: "):
                        raise ConfigError(f"{argv!r}: {text}")
                    if code != 0:
                        raise RuntimeError(f"memxbar {argv!r} exited {code}: {text[-1200:]}")
            finally:
                os.chdir(here)
        return torch.zeros(1)

    return run


FAMILIES: dict[str, Callable[[random.Random], Callable[[], Any]]] = {
    "device.program": case_program, "device.read": case_read, "device.pulse": case_pulse,
    "circuit": case_circuit, "periphery": case_periphery, "tile": case_tile,
    "mapping": case_mapping, "measured": case_measured, "training": case_training,
    "cost": case_cost, "cli": case_cli, "layers": case_layers, "datasets": case_datasets,
}


def build(seed: int, index: int) -> tuple[str, Callable[[], Any]]:
    """The family and the call of case ``index`` of ``seed`` (deterministic)."""
    r = random.Random(seed * 1_000_003 + index)
    family = list(FAMILIES)[index % len(FAMILIES)]
    return family, FAMILIES[family](r)


# ----------------------------------------------------------------------------- one case


def _tensors(x: Any, depth: int = 0) -> list:
    import torch

    from memxbar.devices import CellState

    if depth > 4:
        return []
    if isinstance(x, torch.Tensor):
        return [x]
    if isinstance(x, CellState):
        return [x.g, *x.latent.values()]
    if isinstance(x, (tuple, list)):
        return [t for v in x for t in _tensors(v, depth + 1)]
    if isinstance(x, dict):
        return [t for v in x.values() for t in _tensors(v, depth + 1)]
    return []


def run_case(seed: int, index: int) -> dict:
    """Build and run one case in this process; classify how it ended (not ``hang``)."""
    from memxbar.errors import ConfigError

    family = "?"
    try:
        family, call = build(seed, index)
        out = call()
    except ConfigError as e:
        return dict(index=index, family=family, outcome="clean", detail=str(e)[:200])
    except Exception as e:  # noqa: BLE001  (every other exception is a finding)
        tb = traceback.format_exception(type(e), e, e.__traceback__)
        return dict(index=index, family=family, outcome="traceback",
                    detail="".join(tb[-3:])[-1500:])
    bad = [t for t in _tensors(out) if (t.is_floating_point() or t.is_complex())
           and t.numel() and not bool(t.isfinite().all())]
    if bad:
        return dict(index=index, family=family, outcome="silent_nan",
                    detail=f"{len(bad)} non-finite result tensor(s), shapes "
                           f"{[tuple(t.shape) for t in bad][:3]}")
    return dict(index=index, family=family, outcome="ok", detail="")


# ----------------------------------------------------------------------------- workers


def _serve() -> None:
    """Worker loop: read ``seed index`` lines on stdin, answer one JSON line each."""
    import resource
    import warnings

    resource.setrlimit(resource.RLIMIT_AS, (WORKER_MEMORY, WORKER_MEMORY))
    warnings.simplefilter("ignore")
    import torch

    torch.set_num_threads(1)
    out = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # whatever a case prints goes to stderr
    sys.stdout = sys.stderr
    import memxbar.mapping  # noqa: F401  (import once, not inside the first case's timeout)

    out.write("ready\n")
    for line in sys.stdin:
        seed, index = (int(v) for v in line.split())
        out.write(json.dumps(run_case(seed, index)) + "\n")


class Worker:
    """One worker process; restarted after a hang or a crash."""

    def __init__(self) -> None:
        self.proc: subprocess.Popen | None = None

    def _start(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "--serve"], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, bufsize=1)
        if self._line(120.0) != "ready":
            raise RuntimeError("fuzz worker did not start")

    def _line(self, timeout: float) -> str | None:
        assert self.proc is not None and self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        if not ready:
            return None
        return self.proc.stdout.readline().strip() or None

    def run(self, seed: int, index: int, timeout: float) -> dict:
        if self.proc is None or self.proc.poll() is not None:
            self._start()
        assert self.proc is not None and self.proc.stdin is not None
        self.proc.stdin.write(f"{seed} {index}\n")
        self.proc.stdin.flush()
        line = self._line(timeout)
        if line is not None:
            return json.loads(line)
        alive = self.proc.poll() is None
        self.close()
        return dict(index=index, family=_family(index), outcome="hang" if alive else "crash",
                    detail=f"no answer in {timeout:.0f} s" if alive else "worker died")

    def close(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None


def _family(index: int) -> str:
    return list(FAMILIES)[index % len(FAMILIES)]


def fuzz(cases: int, seed: int = 0, *, workers: int = 2, timeout: float = 20.0,
         start: int = 0) -> list[dict]:
    """Run cases ``start .. start + cases - 1`` of ``seed`` on ``workers`` processes."""
    pool = [Worker() for _ in range(workers)]
    chunks = [list(range(start + k, start + cases, workers)) for k in range(workers)]

    def drive(k: int) -> list[dict]:
        return [pool[k].run(seed, i, timeout) for i in chunks[k]]

    try:
        with ThreadPoolExecutor(workers) as ex:
            results = [res for part in ex.map(drive, range(workers)) for res in part]
    finally:
        for w in pool:
            w.close()
    return sorted(results, key=lambda d: d["index"])


def summary(results: list[dict]) -> str:
    counts = Counter(r["outcome"] for r in results)
    lines = [f"{len(results)} cases: " + ", ".join(f"{counts[o]} {o}" for o in OUTCOMES)]
    by_family = Counter((r["family"], r["outcome"]) for r in results)
    for fam in FAMILIES:
        lines.append(f"  {fam:<15} " + "  ".join(f"{o} {by_family[(fam, o)]}" for o in OUTCOMES
                                                 if by_family[(fam, o)]))
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cases", type=int, default=3000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--timeout", type=float, default=20.0, help="seconds per case")
    ap.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve:
        _serve()
        return
    t0 = time.perf_counter()
    results = fuzz(args.cases, args.seed, workers=args.workers, timeout=args.timeout)
    for r in results:
        if r["outcome"] not in ("clean", "ok"):
            print(f"[{r['outcome']}] case {r['index']} ({r['family']}): {r['detail']}")
    print(summary(results))
    print(f"seed {args.seed}, {args.workers} workers, {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
