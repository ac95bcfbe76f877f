"""The shared device contract: parameter checks, input checks, quantization, stuck faults."""

import dataclasses
import math

import numpy as np
import pytest
import torch

from memxbar.devices import CellState, IdealDevice, presets
from memxbar.devices.base import STUCK_NONE, STUCK_OFF, STUCK_ON
from memxbar.errors import ConfigError


def test_bad_parameter_names_parameter_value_and_range():
    with pytest.raises(ValueError, match=r"IdealDevice\.g_max = -1.*allowed: \(0\.0, 1\.0\] S"):
        IdealDevice(g_max=-1)
    with pytest.raises(ValueError, match="g_min"):
        IdealDevice(g_min=2e-5, g_max=1e-5)
    with pytest.raises(ValueError, match="levels"):
        IdealDevice(levels=1)
    with pytest.raises(ValueError, match="integer"):
        IdealDevice(levels=2.5)
    with pytest.raises(ValueError, match="stuck_on_fraction"):
        IdealDevice(stuck_on_fraction=1.5)
    with pytest.raises(ValueError, match="not a number"):
        IdealDevice(g_max="big")
    with pytest.raises(ValueError, match="out of range"):
        IdealDevice(g_max=math.inf)


def test_numpy_scalars_are_taken_as_the_python_values_they_hold():
    from memxbar.crossbar.tile import TileConfig

    dev = IdealDevice(g_max=np.float32(2e-5), levels=np.int64(8))
    assert type(dev.g_max) is float and type(dev.levels) is int
    assert dev == IdealDevice(g_max=float(np.float32(2e-5)), levels=8)
    cfg = TileConfig(rows=np.int32(64), cols=np.int64(32), device=dev,
                     r_row=np.float32(0.5), encoding=np.str_("offset"))
    assert (type(cfg.rows), type(cfg.r_row), type(cfg.encoding)) == (int, float, str)
    assert "np." not in repr(dataclasses.replace(cfg, r_col=np.float64(1.0)))
    with pytest.raises(ValueError, match="levels = 2.5 must be an integer"):
        IdealDevice(levels=np.float32(2.5))
    with pytest.raises(ValueError, match="encoding = True is not allowed"):
        TileConfig(rows=4, cols=4, device=dev, encoding=np.bool_(True))


def test_non_finite_and_out_of_range_targets_are_refused():
    dev = IdealDevice()
    with pytest.raises(ValueError, match="non-finite"):
        dev.program(torch.tensor([1e-6, float("nan")]))
    with pytest.raises(ValueError, match="outside the device range"):
        dev.program(torch.tensor([2e-5]))
    with pytest.raises(ValueError, match="time since programming"):
        dev.read(dev.program(torch.tensor([1e-6])), t=-1.0)


def test_quantization_hits_levels():
    dev = IdealDevice(levels=5, g_min=0.0, g_max=4e-6)
    g = dev.program(torch.tensor([0.4e-6, 1.6e-6, 3.9e-6], dtype=torch.float64)).g
    torch.testing.assert_close(g, torch.tensor([0.0, 2e-6, 4e-6], dtype=torch.float64))


def test_stuck_fractions_and_stuck_cells_ignore_pulses():
    n = 200_000
    dev = IdealDevice(stuck_on_fraction=0.05, stuck_off_fraction=0.1)
    gen = torch.Generator().manual_seed(1)
    state = dev.program(torch.full((n,), 5e-6), generator=gen)
    stuck = state.latent["stuck"]
    for code, p in ((STUCK_ON, 0.05), (STUCK_OFF, 0.1)):
        frac = (stuck == code).double().mean().item()
        assert abs(frac - p) < 5 * math.sqrt(p * (1 - p) / n)
    assert torch.all(state.g[stuck == STUCK_ON] == dev.g_max)
    assert torch.all(state.g[stuck == STUCK_OFF] == dev.g_min)
    after = dev.pulse(state, torch.full((n,), -3), generator=gen)
    assert torch.all(after.g[stuck == STUCK_ON] == dev.g_max)
    assert torch.all(after.g[stuck == STUCK_NONE] < state.g[stuck == STUCK_NONE])


def test_pulse_counts_must_be_integers():
    dev = IdealDevice()
    state = dev.program(torch.full((3,), 5e-6))
    with pytest.raises(ValueError, match="integer"):
        dev.pulse(state, torch.tensor([1.0, 0.0, 2.0]))


def test_cell_state_round_trip():
    state = CellState(torch.rand(3, 4), {"nu": torch.rand(3, 4), "dom": torch.rand(3, 4, 5)})
    back = CellState.from_tensors(state.tensors())
    assert torch.equal(back.g, state.g) and torch.equal(back.latent["dom"], state.latent["dom"])


def test_every_preset_builds_programs_reads_and_pulses():
    gen = torch.Generator().manual_seed(0)
    for name in presets.names():
        dev = presets.get(name)
        target = torch.linspace(dev.g_min, dev.g_max, 12, dtype=torch.float64).reshape(3, 4)
        state = dev.program(target, generator=gen)
        assert state.g.shape == (3, 4), name
        for t in (0.0, 1.0, 3600.0, 3.15e8):
            g = dev.read(state, t, generator=gen)
            assert g.shape == (3, 4) and torch.isfinite(g).all() and (g >= 0).all(), name
        after = dev.pulse(state, torch.tensor([[1, -1, 2, 0]] * 3), generator=gen)
        assert torch.isfinite(after.g).all(), name
        assert presets.describe(name).startswith(name)


def test_unknown_preset_lists_known_ones():
    with pytest.raises(ValueError, match="known presets: .*ideal"):
        presets.get("nope")


def test_a_preset_of_a_given_model_class():
    """``presets.get(name, kind)``: the same device, checked to be (and typed as) ``kind``."""
    from memxbar.devices.mtj import MTJ
    from memxbar.devices.pcm import PCM

    assert presets.get("mtj-neurosim", MTJ) == presets.get("mtj-neurosim")
    assert isinstance(presets.get("pcm-joshi2020", PCM), PCM)
    with pytest.raises(ConfigError, match="'pcm-joshi2020' is a PCM, not a MTJ"):
        presets.get("pcm-joshi2020", MTJ)
    with pytest.raises(ConfigError, match="kind = 'pcm' is not a Device class"):
        presets.get("pcm-joshi2020", "pcm")  # type: ignore[call-overload]


def test_large_normal_draws_are_parallel_streams_independent_of_threads():
    """A large CPU draw fills blocks from their own seeded streams: the same generator gives
    the same samples with 1 or 2 threads; small draws are plain torch.randn."""
    from memxbar.devices.base import STREAM, randn

    like = torch.empty(3 * STREAM + 5)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = randn(like, torch.Generator().manual_seed(7))
        torch.set_num_threads(2)
        two = randn(like, torch.Generator().manual_seed(7))
    finally:
        torch.set_num_threads(threads)
    assert torch.equal(one, two)
    assert abs(float(one.mean())) < 0.01 and abs(float(one.std()) - 1.0) < 0.01
    blocks = one[: 3 * STREAM].view(3, STREAM)
    assert not torch.equal(blocks[0], blocks[1])
    assert abs(float(torch.corrcoef(blocks)[0, 1])) < 0.02
    small = torch.empty(100)
    assert torch.equal(randn(small, torch.Generator().manual_seed(3)),
                       torch.randn(100, generator=torch.Generator().manual_seed(3)))


def test_blockwise_results_are_assembled_with_late_latents_zero_elsewhere():
    """Blocks write into one whole result; a latent that only some blocks make (as wear
    failures do) is zero in the others, on 1 and 2 threads alike."""
    from helpers import torch_threads

    from memxbar.devices.base import BLOCK

    dev = IdealDevice()
    g = torch.arange(7 * (3 * BLOCK // 7 + 100), dtype=torch.float64).reshape(-1, 7)  # 3 blocks
    # and a part

    def fn(st: CellState, gen: None) -> CellState:
        latent = {"twice": 2 * st.g}
        if float(st.g[0]) >= BLOCK:  # not the first block
            latent["late"] = torch.ones_like(st.g, dtype=torch.int8)
        return CellState(st.g + 1, latent)

    for threads in (1, 2):
        with torch_threads(threads):
            out = dev._blockwise(fn, CellState(g), (), None, 1)
        assert torch.equal(out.g, g + 1) and torch.equal(out.latent["twice"], 2 * g)
        late = out.latent["late"].reshape(-1)
        assert late.dtype == torch.int8 and out.latent["late"].shape == g.shape
        assert int(late[:BLOCK].sum()) == 0 and bool((late[BLOCK:] == 1).all())
