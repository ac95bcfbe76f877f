"""Drift compensation by a reference read.

As on chip (Joshi et al., Nat. Commun. 11:2473 (2020), global drift compensation): right after
programming a fixed set of reference inputs is applied to each layer's arrays and the output
magnitudes ``sum_p |y_p|`` are stored digitally; at a later read the same reference read gives
the factor that restores them ("global": one factor per layer; "column": one per output).

The reference is taken before the ADCs, as a chip's calibration read on a precise converter
would be: the dot products of the probe vectors with the arrays' expected conductances at the
read time (drift, IR drop; read noise averaged out). An ADC ranged on real activations is
therefore never saturated by the probes (+-1 vectors drive every row at full scale and give
outputs many times those of real activations), and the factor does not depend on the ADC or
on any random draw.
"""

from __future__ import annotations

import torch
from torch import Tensor

from memxbar.errors import ConfigError

PROBE_VECTORS = 32


def probe_inputs(n_inputs: int, dtype: torch.dtype, device: torch.device | str = "cpu") -> Tensor:
    """The fixed reference inputs: ``PROBE_VECTORS`` random +-1 vectors (private generator,
    seed 0), ``(PROBE_VECTORS, n_inputs)``."""
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 2, (PROBE_VECTORS, n_inputs), generator=g) * 2 - 1
    return x.to(dtype=dtype, device=device)


def reference_magnitudes(weights: Tensor) -> Tensor:
    """``sum_p |x_p @ W_g|`` per output for normalised weights ``weights`` ``(G, in, out_g)``
    (G independent groups, each read with the same probes) -> ``(G * out_g,)``."""
    x = probe_inputs(weights.shape[1], weights.dtype, weights.device)
    return (x @ weights).abs().sum(dim=1).flatten()


def compensation_factors(ref: Tensor, now: Tensor, mode: str) -> Tensor:
    """Per-output factors (out,) that bring the reference-read magnitudes ``now`` back to
    ``ref`` (both (out,)): one shared ratio ("global") or one per output ("column")."""
    tiny = torch.finfo(now.dtype).tiny
    if mode == "global":
        return (ref.sum() / now.sum().clamp_min(tiny)).expand_as(now).clone()
    if mode == "column":
        return torch.where(now > tiny, ref / now.clamp_min(tiny), torch.ones_like(now))
    raise ConfigError(f"drift compensation mode {mode!r} is not allowed; allowed: global, column")
