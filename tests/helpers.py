"""Assertions shared by the test stages (import as ``from helpers import ...``; tests/conftest.py
puts this folder on the path).

Two float computations of the same quantity may sum in another order (another CPU, another
thread count, a blocked vs an unblocked path) and differ in the last bits; where a quantizer or
threshold follows, such a difference can move a value that sits on a rounding tie to the
neighbouring level. Tests never demand exact equality across a quantizer: they use
:func:`assert_quantized_close`, which allows that one-level flip on a stated, tiny fraction of
the elements, or they build inputs with no ties.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator

import torch
from torch import Tensor


def assert_quantized_close(actual: Tensor, expected: Tensor, step: float | Tensor, *,
                           max_fraction: float = 1e-3, atol: float = 0.0,
                           rtol: float = 1e-6) -> None:
    """Quantized outputs agree, except that at most ``max_fraction`` of the elements (and at
    least one element may) sit one quantization ``step`` away.

    ``step``: the level spacing (a number or a tensor broadcastable to the outputs, e.g. one
    ADC step per column). Every other element must match within ``atol + rtol * step`` (float
    noise after the quantizer, such as a rescaling); a flip must be one level, no more.
    """
    a, b = torch.broadcast_tensors(torch.as_tensor(actual), torch.as_tensor(expected))
    a, b = a.double(), b.double()
    assert a.shape == torch.as_tensor(actual).shape, (
        f"shapes differ: {tuple(torch.as_tensor(actual).shape)} vs "
        f"{tuple(torch.as_tensor(expected).shape)}")
    s = torch.as_tensor(step, dtype=torch.float64).expand_as(a)
    slack = atol + rtol * s.abs()
    diff = (a - b).abs()
    same = diff <= slack
    flip = ~same & ((diff - s.abs()).abs() <= slack)
    bad = ~(same | flip)
    assert not bool(bad.any()), (
        f"{int(bad.sum())} of {a.numel()} elements differ by other than 0 or 1 level "
        f"(largest difference {float(diff[bad].max()):.4g}, step {float(s[bad][0]):.4g})")
    allowed = max(1, math.floor(max_fraction * a.numel()))
    assert int(flip.sum()) <= allowed, (
        f"{int(flip.sum())} of {a.numel()} elements are one level apart; at most {allowed} "
        f"(max_fraction = {max_fraction}) may be")


@contextlib.contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Run the block with ``torch.set_num_threads(n)``; the count is restored after."""
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)
