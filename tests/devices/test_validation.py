"""Every public device entry point refuses bad values with one ConfigError naming the argument."""

import dataclasses
import math
import time

import pytest
import torch

from memxbar.devices import CellState, IdealDevice, presets
from memxbar.devices.base import MAX_PULSES, MAX_PULSES_CLOSED_FORM
from memxbar.errors import ConfigError

PRESETS = presets.names()


def programmed(dev, n=4, seed=0, dtype=torch.float32):
    gen = torch.Generator().manual_seed(seed)
    g = dev.g_min + (dev.g_max - dev.g_min) * torch.rand(n, generator=gen, dtype=dtype)
    return dev.program(g, generator=gen)


@pytest.mark.parametrize("name", PRESETS)
@pytest.mark.parametrize("bad", [math.nan, math.inf, -1e-6])
def test_bad_conductances_in_a_state_are_refused(name, bad):
    dev = presets.get(name)
    state = programmed(dev)
    g = state.g.clone()
    g[1] = bad
    broken = state.replace(g=g)
    word = "negative" if bad < 0 else "non-finite"
    for call in (lambda: dev.read(broken, 1.0), lambda: dev.read_mean(broken),
                 lambda: dev.read_stats(broken, 0.0),
                 lambda: dev.pulse(broken, torch.ones(4, dtype=torch.int64))):
        with pytest.raises(ConfigError, match=rf"{type(dev).__name__}\.\w+: state\.g .*{word}"):
            call()


@pytest.mark.parametrize("name", ["pcm-joshi2020", "rram-falcone2025", "fefet-neurosim",
                                  "mtj-vincent2014-compound4", "dw-hsin2025",
                                  "measured-gong2018-hfo2"])
def test_latents_of_the_wrong_shape_kind_or_missing_are_refused(name):
    dev = presets.get(name)
    state = programmed(dev)
    key, value = next(iter(state.latent.items()))
    with pytest.raises(ConfigError, match=rf"state\.latent\['{key}'\] has shape"):
        dev.read(state.replace(**{key: torch.cat([value, value])}))
    with pytest.raises(ConfigError, match=rf"lacks latents \['{key}'\]"):
        dev.read(CellState(state.g, {k: v for k, v in state.latent.items() if k != key}))
    if value.is_floating_point():
        nan = value.clone()
        nan.view(-1)[0] = math.nan
        with pytest.raises(ConfigError, match="NaN"):
            dev.pulse(state.replace(**{key: nan}), torch.ones(4, dtype=torch.int64))
    wrong = value.to(torch.int32) if value.is_floating_point() else value.to(torch.float32)
    with pytest.raises(ConfigError, match="dtype"):
        dev.read_mean(state.replace(**{key: wrong}))
    with pytest.raises(ConfigError, match="CellState"):
        dev.read(state.g)


@pytest.mark.parametrize("name", PRESETS)
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_is_refused(name, dtype):
    """float16 targets used to give 2,093 of 4,096 non-finite reads on PCM and RRAM: siemens
    values are subnormal in float16, so half precision is refused, for targets and states."""
    dev = presets.get(name)
    g = torch.full((8,), 0.5 * (dev.g_min + dev.g_max))
    with pytest.raises(ConfigError, match=rf"g_target has dtype {dtype}.*float32 or float64"):
        dev.program(g.to(dtype))
    state = dev.program(g, generator=torch.Generator().manual_seed(1))
    assert bool(torch.isfinite(dev.read(state, 3600.0)).all())
    with pytest.raises(ConfigError, match="float32 or float64"):
        dev.read(state.replace(g=state.g.to(dtype)))


def test_targets_that_are_not_real_numbers_are_refused():
    dev = IdealDevice()
    assert dev.program(torch.zeros(3, dtype=torch.int64)).g.dtype == torch.float32
    with pytest.raises(ConfigError, match="g_target must be a tensor"):
        dev.program("1e-6")
    with pytest.raises(ConfigError, match="real"):
        dev.program(torch.tensor([1e-6 + 0j]))
    with pytest.raises(ConfigError, match="generator"):
        dev.program(torch.tensor([1e-6]), generator=42)


@pytest.mark.parametrize("name", PRESETS)
def test_pulse_counts_beyond_the_limit_are_refused_fast(name):
    """10^6 pulses on 2 cells, or int64-max pulses, used not to return."""
    dev = presets.get(name)
    limit = dev.max_pulses
    closed = dev.max_pulses == MAX_PULSES_CLOSED_FORM
    assert closed == (dev.technology in ("ideal", "mtj", "domain-wall"))
    assert closed or limit == MAX_PULSES
    state = programmed(dev, n=2)
    with pytest.raises(ConfigError):  # warm-up: torch's first calls initialise lazily
        dev.pulse(state, torch.tensor([limit + 1, 0]))
    for n in ([limit + 1, 0], [0, -limit - 1], [torch.iinfo(torch.int64).max, 1],
              [torch.iinfo(torch.int64).min, 1], [10**12, 0]):
        t0 = time.perf_counter()
        with pytest.raises(ConfigError, match=rf"\|n\|.*max_pulses = {limit} per cell"):
            dev.pulse(state, torch.tensor(n, dtype=torch.int64))
        assert time.perf_counter() - t0 < 1.0
    if closed:  # a whole train at once: even the limit itself is fast
        new = dev.pulse(state, torch.tensor([limit, -limit]))
        assert bool(torch.isfinite(new.g).all())
    with pytest.raises(ConfigError, match="signed integer"):
        dev.pulse(state, torch.tensor([1.0, 2.0]))
    with pytest.raises(ConfigError, match="signed integer"):
        dev.pulse(state, torch.tensor([True, False]))


@pytest.mark.parametrize("name", ["pcm-joshi2020", "rram-gong2018-es", "fefet-neurosim",
                                  "measured-jo2010-agsi"])
def test_a_long_train_on_one_cell_of_many_is_fast(name):
    """The cost is the total number of pulses, not cells x the longest train (which would be
    4e7 cell-pulses here, minutes)."""
    dev = presets.get(name)
    state = programmed(dev, n=20_000)
    n = torch.zeros(20_000, dtype=torch.int64)
    n[7] = MAX_PULSES // 5
    n[9] = -3
    t0 = time.perf_counter()
    new = dev.pulse(state, n, generator=torch.Generator().manual_seed(0))
    assert time.perf_counter() - t0 < 20.0  # ~0.5 s on a loaded 2-core machine
    assert bool(torch.isfinite(new.g).all())
    moved = new.g != state.g
    assert not bool(moved[n == 0].any())


def test_wrong_shapes_of_t_and_n_name_the_expected_shape():
    dev = presets.get("pcm-joshi2020")
    state = programmed(dev, n=6)
    state = state.replace(g=state.g.reshape(2, 3), nu=state.latent["nu"].reshape(2, 3))
    with pytest.raises(ConfigError, match=r"t has shape \(4,\).*\(2, 3\)"):
        dev.read(state, torch.ones(4))
    with pytest.raises(ConfigError, match=r"t has shape \(2, 2, 3\)"):
        dev.read_mean(state, torch.ones(2, 2, 3))  # would enlarge the cells' shape
    with pytest.raises(ConfigError, match=r"n has shape \(3, 2\).*\(2, 3\)"):
        dev.pulse(state, torch.ones(3, 2, dtype=torch.int64))
    with pytest.raises(ConfigError, match="time since programming"):
        dev.read(state, torch.tensor([[1.0], [math.inf]]))
    with pytest.raises(ConfigError, match="not a number"):
        dev.read(state, "an hour")
    t = torch.tensor([[0.0], [3600.0]])  # per-row times broadcast
    assert dev.read_mean(state, t).shape == (2, 3)
    assert dev.pulse(state, torch.tensor([1, 0, -1])).g.shape == (2, 3)


def test_none_generator_is_torchs_default_generator():
    """As in torch: None draws from the default generator (fresh draws on every call,
    reproducible under torch.manual_seed)."""
    dev = presets.get("rram-falcone2025")
    g = torch.full((50,), 40e-6)
    torch.manual_seed(1)
    a = dev.read(dev.program(g), 60.0)
    b = dev.read(dev.program(g), 60.0)
    torch.manual_seed(1)
    c = dev.read(dev.program(g), 60.0)
    assert not torch.equal(a, b) and torch.equal(a, c)


def test_a_state_is_trusted_only_by_the_device_that_made_it_and_in_siemens():
    import copy

    pcm, small = presets.get("pcm-joshi2020"), presets.get("pcm-legallo2023-1dev")
    state = pcm.program(torch.full((3,), 25e-6), generator=torch.Generator().manual_seed(0))
    assert state.trusted is pcm and pcm._made(copy.deepcopy(state))  # a copy: an equal device
    assert not small._made(state)  # another device checks it in full
    # a value changed by hand is checked again: NaN conductances were read as NaN
    bad = copy.copy(state)
    bad.g = torch.full((3,), float("nan"))
    assert bad.trusted is None
    with pytest.raises(ConfigError, match="non-finite"):
        pcm.read_mean(bad)
    # a hand-made state in microsiemens (10.0 meaning 10 uS) is refused, not read as 10 S
    for dev in (presets.get("ideal"), pcm):
        with pytest.raises(ConfigError, match="allowed: conductances in siemens"):
            dev.read_mean(state.replace(g=torch.tensor([10.0, 20.0, 5.0])))
    assert torch.isfinite(pcm.read_mean(state.replace(g=state.g * 2))).all()  # noise: in range


def test_a_models_own_state_is_trusted_a_hand_made_one_is_checked():
    """A device's program/pulse output is read as the model defines it (even g < 0 for a
    model that allows it); the same values in a hand-made state are refused."""
    from memxbar.devices import Device
    from memxbar.devices.base import param

    @dataclasses.dataclass(frozen=True, kw_only=True)
    class Unclipped(IdealDevice):
        sigma: float = param(1e-6, unit="S", ge=0.0)

        def _program(self, g_target, generator):
            return CellState(g_target + self.sigma * torch.randn(g_target.shape,
                                                                  generator=generator))

    assert issubclass(Unclipped, Device)
    dev = Unclipped()
    state = dev.program(torch.zeros(200), generator=torch.Generator().manual_seed(0))
    assert state.trusted and bool((state.g < 0).any())
    dev.read_stats(state)
    pulsed = dev.pulse(state, torch.ones(200, dtype=torch.int64))
    assert pulsed.trusted and not CellState(state.g).trusted
    assert state.to(torch.float64).trusted and not state.replace(g=state.g).trusted
    with pytest.raises(ConfigError, match="negative"):
        dev.read(CellState(state.g.clone()))
