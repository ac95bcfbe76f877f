"""Same seed, same result, for 1 and 2 torch threads: every preset's program, read and pulse."""

import pytest
import torch
from helpers import assert_quantized_close, torch_threads

from memxbar.devices import presets
from memxbar.devices.base import BLOCK

# more cells than torch's element-wise grain (32768), an odd count: torch would split each
# operation over 2 threads at a point that is not a multiple of the vector width (64,507 cells,
# one block on one torch thread; before the blocks, pcm-joshi2020 and fefet-neurosim differed
# here); BIG: three blocks, on helper threads
SHAPE = (257, 251)
BIG = (3 * BLOCK // 509 + 1, 509)


def run(name: str, threads: int, shape: tuple[int, int] = SHAPE) -> list[torch.Tensor]:
    dev = presets.get(name)
    with torch_threads(threads):
        gen = torch.Generator().manual_seed(11)
        g = dev.g_min + (dev.g_max - dev.g_min) * torch.rand(shape, generator=gen)
        state = dev.program(g, generator=gen)
        read = dev.read(state, 3600.0, generator=gen)
        mean, std = dev.read_stats(state, torch.logspace(0, 8, shape[1]))
        n = torch.randint(-3, 4, shape, generator=gen)
        pulsed = dev.pulse(state, n, generator=gen)
        again = dev.read(pulsed, 10.0, generator=gen)
    return [state.g, *state.latent.values(), read, mean, std, pulsed.g, again]


@pytest.mark.parametrize("name", presets.names())
def test_one_and_two_threads_give_identical_results(name):
    one, two = run(name, 1), run(name, 2)
    assert len(one) == len(two)
    for a, b in zip(one, two, strict=True):
        assert torch.equal(a, b)


@pytest.mark.parametrize("name", ["pcm-joshi2020", "rram-falcone2025"])  # (FeFETs: SHAPE)
def test_several_blocks_give_identical_results_on_one_and_two_threads(name):
    one, two = run(name, 1, BIG), run(name, 2, BIG)
    for a, b in zip(one, two, strict=True):
        assert torch.equal(a, b)


def test_blocks_do_not_change_the_statistics():
    """A large array is drawn in blocks, each from its own stream: the programmed spread and
    the read noise match the small-array (single-block) statistics."""
    dev = presets.get("rram-falcone2025")
    g = torch.full((3 * BLOCK,), 45e-6, dtype=torch.float64)
    big = dev.program(g, generator=torch.Generator().manual_seed(1))
    small = dev.program(g[:4000], generator=torch.Generator().manual_seed(2))
    n = small.g.numel()
    assert float(big.g.std()) == pytest.approx(float(small.g.std()), rel=5 / n**0.5)
    blocks = big.g.reshape(-1)[: 2 * BLOCK].reshape(2, -1)
    assert abs(float(torch.corrcoef(blocks)[0, 1])) < 0.03  # independent streams


def test_assert_quantized_close_allows_one_level_on_a_few_elements():
    a = torch.arange(1000.0) * 0.5
    b = a.clone()
    b[3] += 0.5
    assert_quantized_close(a, b, 0.5, max_fraction=1e-3)
    b[4] -= 0.5
    with pytest.raises(AssertionError, match="one level apart"):
        assert_quantized_close(a, b, 0.5, max_fraction=1e-3)
    b[4] += 1.5  # two levels off
    with pytest.raises(AssertionError, match="other than 0 or 1 level"):
        assert_quantized_close(a, b, 0.5, max_fraction=0.1)


def test_none_generator_is_thread_count_independent_under_manual_seed():
    """generator=None draws from torch's default generator; a large array's block streams
    are seeded from it, so one torch.manual_seed still gives one result for 1 or 2 threads."""
    dev = presets.get("pcm-joshi2020")
    g = torch.full(SHAPE, 10e-6)
    out = []
    for threads in (1, 2):
        with torch_threads(threads):
            torch.manual_seed(5)
            state = dev.program(g)
            out.append((state.g, dev.read(state, 60.0), dev.pulse(state, torch.tensor(2)).g))
    for a, b in zip(*out, strict=True):
        assert torch.equal(a, b)
