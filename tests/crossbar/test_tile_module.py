"""Tiles as nn.Modules (buffers, dtype/device moves, state_dict), non-ohmic cells through the
nonlinear solve, and bad input refused with ConfigError."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from torch import nn

from memxbar.crossbar.circuit import solve_nonlinear
from memxbar.crossbar.periphery import ADC, DAC
from memxbar.crossbar.tile import Tile, TileConfig
from memxbar.devices import IdealDevice, presets
from memxbar.devices.pcm import PCM
from memxbar.errors import ConfigError

F32, F64 = torch.float32, torch.float64


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def rand(*shape: int, seed: int = 0, dtype: torch.dtype = F32) -> torch.Tensor:
    return torch.rand(*shape, generator=gen(seed), dtype=dtype) * 2 - 1


def programmed(read_noise: str = "per_mvm", dtype: torch.dtype = F32, **kw) -> Tile:
    cfg = TileConfig(rows=12, cols=8, device=PCM(), read_noise=read_noise,
                     adc=ADC(bits=8, range_mode="per_column"), **kw)
    tile = Tile(cfg, (2,))
    tile.program(rand(2, 12, cfg.weight_cols, seed=1, dtype=dtype), generator=gen(2))
    tile.set_time(3600.0, generator=gen(3))
    tile.calibrate_adc(rand(2, 20, 12, seed=4, dtype=dtype))
    return tile


# --------------------------------------------------------------------------- module
def test_tile_is_a_module_whose_state_is_in_buffers() -> None:
    tile = programmed("per_read", r_row=0.5, r_col=0.5, rows_parallel=4)
    keys = set(tile.state_dict())
    assert {"cells.g", "pulse_count", "adc_fs", "adc_amax", "read_g", "_extra_state"} <= keys
    assert {f"cells.latent.{k}" for k in tile.state.latent} <= keys
    assert "analog" not in keys  # a derived cache, rebuilt after loading
    wrapped = nn.Sequential(nn.Identity(), tile)
    assert "1.cells.g" in wrapped.state_dict()


def test_double_after_program_matches_float32() -> None:
    tile = programmed("off", r_row=0.5, r_col=0.5, rows_parallel=4)
    x = rand(2, 6, 12, seed=5) * 0.9
    y32 = tile.mvm(x, generator=gen(6))
    tile.double()
    assert tile.state.g.dtype == F64 and tile.adc_fs.dtype == F64
    assert tile.pulse_count.dtype == torch.int64
    y64 = tile.mvm(x.double(), generator=gen(6))
    assert y64.dtype == F64
    step = float(tile.adc_fs.max()) / tile.config.adc.levels * 2
    flips = (y64 - y32.double()).abs() > 1e-4
    assert float(flips.double().mean()) <= 0.02  # a one-level flip on a tiny fraction at most
    assert float((y64 - y32.double()).abs().max()) <= step
    with pytest.raises(ConfigError, match="float16"):
        tile.half()


@pytest.mark.parametrize("noise", ["per_read", "per_mvm", "off"])
def test_state_dict_loads_into_a_fresh_tile(noise: str) -> None:
    tile = programmed(noise, rows_parallel=5, dac=DAC(bits=6))
    x = rand(2, 7, 12, seed=7)
    fresh = Tile(tile.config, (2,))
    fresh.load_state_dict(tile.state_dict())
    assert fresh.t == 3600.0
    assert torch.equal(fresh.mvm(x, generator=gen(8)), tile.mvm(x, generator=gen(8)))
    assert torch.equal(fresh.weights(), tile.weights())
    fresh.load_state_dict(Tile(tile.config, (2,)).state_dict())  # back to unprogrammed
    assert fresh.state is None


def test_a_deferred_read_is_saved_and_moved() -> None:
    cfg = TileConfig(rows=6, cols=4, device=PCM(), read_noise="per_read")
    tile = Tile(cfg)
    tile.program(rand(6, 2, seed=9), generator=gen(10))
    sd = tile.state_dict()  # the read at t = 0 happens now
    other = Tile(cfg)
    other.load_state_dict(sd)
    x = rand(3, 6, seed=11)
    assert torch.equal(other.mvm(x), tile.mvm(x))


@pytest.mark.parametrize("change,words", [
    (lambda sd: sd.pop("cells.g"), ["cells.g", "missing"]),
    (lambda sd: sd.pop("pulse_count"), ["pulse_count", "missing"]),
    (lambda sd: sd.pop("read_g"), ["read_g", "missing"]),
    (lambda sd: sd.update({"cells.g": sd["cells.g"][..., :-1]}), ["cells.g", "shape"]),
    (lambda sd: sd.update({"cells.g": sd["cells.g"].clone().fill_(float("nan"))}),
     ["cells.g", "non-finite"]),
    (lambda sd: sd.update({"cells.g": -sd["cells.g"]}), ["cells.g", ">= 0"]),
    (lambda sd: sd.update({"cells.g": sd["cells.g"].to(torch.int64)}), ["cells.g", "dtype"]),
    (lambda sd: sd.update({"pulse_count": sd["pulse_count"].double()}),
     ["pulse_count", "dtype"]),
    (lambda sd: sd.update({"adc_fs": torch.zeros_like(sd["adc_fs"])}), ["adc_fs", "> 0"]),
    (lambda sd: sd.update({"adc_fs": sd["adc_fs"][..., :1]}), ["adc_fs", "shape"]),
    (lambda sd: sd.pop(next(k for k in sd if k.startswith("cells.latent."))), ["latent"]),
    (lambda sd: sd.update({"_extra_state": {"t": -1.0}}), ["_extra_state"]),
])
def test_corrupted_state_dicts_are_refused(change, words: list[str]) -> None:
    tile = programmed("per_read")
    sd = {k: (v.clone() if isinstance(v, torch.Tensor) else v)
          for k, v in tile.state_dict().items()}
    change(sd)
    with pytest.raises(ConfigError) as err:
        Tile(tile.config, (2,)).load_state_dict(sd)
    assert all(w in str(err.value) for w in words), str(err.value)


def test_mismatched_config_is_refused() -> None:
    tile = programmed()
    other = Tile(dataclasses.replace(tile.config, cols=10), (2,))
    with pytest.raises(ConfigError, match="cells.g has shape"):
        other.load_state_dict(tile.state_dict())


def test_generators_must_follow_the_tensors() -> None:
    tile = programmed()
    with pytest.raises(ConfigError, match="generator must be a torch.Generator"):
        tile.mvm(rand(2, 3, 12), generator=3)  # type: ignore[arg-type]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_to_cuda_after_program_gives_the_same_outputs() -> None:
    tile = programmed(r_row=0.5, r_col=0.5, read_noise="off", rows_parallel=4)
    x = rand(2, 6, 12, seed=12)
    y = tile.mvm(x)
    tile.to("cuda")
    assert tile.state.g.is_cuda and tile.adc_fs.is_cuda
    torch.testing.assert_close(tile.mvm(x.cuda()).cpu(), y, rtol=1e-5, atol=1e-5)
    with pytest.raises(ConfigError, match="generator is on cpu"):
        tile.mvm(x.cuda(), generator=gen(1))
    with pytest.raises(ConfigError, match="x is on cpu"):
        tile.mvm(x)
    g = torch.Generator(device="cuda").manual_seed(0)
    tile.set_time(10.0, generator=g)
    sd = tile.state_dict()
    back = Tile(tile.config, (2,))
    back.load_state_dict({k: v.cpu() if isinstance(v, torch.Tensor) else v
                          for k, v in sd.items()})
    torch.testing.assert_close(back.mvm(x), tile.mvm(x.cuda()).cpu(), rtol=1e-5, atol=1e-5)


# --------------------------------------------------------------------------- non-ohmic
def _milo(r: float, **kw) -> tuple[Tile, torch.Tensor]:
    dev = presets.get("rram-milo2021")
    assert not dev.is_ohmic
    cfg = TileConfig(rows=10, cols=8, device=dev, r_row=r, r_col=r, read_noise="off", **kw)
    tile = Tile(cfg, (2,))
    tile.program(rand(2, 10, cfg.weight_cols, seed=13, dtype=F64), generator=gen(14))
    # |x| <= 0.9: Newton iterates stay inside the fit's |V| <= v_max (= V_read)
    return tile, 0.9 * rand(2, 5, 10, seed=15, dtype=F64)


@pytest.mark.parametrize("r", [0.0, 2.0])
def test_cubic_iv_cells_agree_with_solve_nonlinear(r: float) -> None:
    tile, x = _milo(r)
    dev = tile.config.device
    g = tile.state.g[..., 0, :, :]  # (2, R, Cp), read_noise off, t = 0
    current = solve_nonlinear(g, x * dev.read_voltage, r, r, dev.current)
    expect = (current[..., 0::2] - current[..., 1::2]) / (dev.read_voltage
                                                          * (dev.g_max - dev.g_min))
    y = tile.mvm(x)
    torch.testing.assert_close(y, expect, rtol=1e-7, atol=1e-9)
    ohmic = x @ tile.weights()  # the low-field (ohmic) answer differs: never silently ohmic
    assert float((y - ohmic).abs().max()) > 1e-3
    rows = tile.mvm_rows(x[:1].expand(2, 5, 10)[0])
    torch.testing.assert_close(rows[:, :4], tile.mvm(x[:1].expand(2, 5, 10))[0])


def test_non_ohmic_cells_refuse_what_is_not_supported() -> None:
    tile, x = _milo(0.0)
    with pytest.raises(ConfigError, match="non-ohmic"):
        tile.mvm_t(rand(2, 3, tile.config.weight_cols, dtype=F64))
    with pytest.raises(ConfigError, match="non-ohmic"):
        tile.mvm_custom(x[:1, 0], lambda c, A: c @ A)
    with pytest.raises(ConfigError, match="rows_parallel"):
        dataclasses.replace(tile.config, rows_parallel=4)
    bits, _ = _milo(0.0, dac=DAC(bits=4, bit_serial=True))  # cycles: one solve each
    xq = bits.config.dac.quantize(x)
    dev = bits.config.device
    g = bits.state.g[..., 0, :, :]
    planes, wts, volt = bits.config.dac.encode(xq)
    want = 0.0
    for p, w in zip(planes, wts, strict=True):
        c = solve_nonlinear(g, p * volt * dev.read_voltage, 0.0, 0.0, dev.current)
        want = want + w * (c[..., 0::2] - c[..., 1::2])
    want = want / (dev.read_voltage * (dev.g_max - dev.g_min))
    torch.testing.assert_close(bits.mvm(xq), want, rtol=1e-7, atol=1e-9)


# --------------------------------------------------------------------------- bad input
def test_bad_inputs_name_the_argument() -> None:
    tile = programmed()
    with pytest.raises(ConfigError, match="x has shape"):
        tile.mvm(rand(2, 3, 11))
    with pytest.raises(ConfigError, match="x must be a torch.Tensor"):
        tile.mvm([[0.0] * 12])  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="x has dtype"):
        tile.mvm(torch.zeros(2, 3, 12, dtype=torch.complex64))
    with pytest.raises(ConfigError, match="d has shape"):
        tile.mvm_t(rand(2, 3, 5))
    with pytest.raises(ConfigError, match="W has dtype"):
        tile.program(torch.zeros(2, 12, 4, dtype=torch.bool))
    with pytest.raises(ConfigError, match="non-finite"):
        tile.mvm(torch.full((2, 3, 12), float("inf")))


def test_half_precision_inputs_are_computed_in_the_tiles_dtype() -> None:
    tile = programmed(read_noise="off")
    x = rand(2, 4, 12, seed=16)
    y16 = tile.mvm(x.half())
    assert y16.dtype == F32
    torch.testing.assert_close(y16, tile.mvm(x.half().float()))
    cfg = tile.config
    t16 = Tile(cfg, (2,))
    t16.program(rand(2, 12, cfg.weight_cols, seed=1).half(), generator=gen(2))
    assert t16.state.g.dtype == F32


def test_absurd_sizes_are_refused_before_allocating() -> None:
    with pytest.raises(ConfigError, match="GiB"):
        TileConfig(rows=2**20, cols=2**20, device=IdealDevice())
    cfg = TileConfig(rows=1024, cols=1024, device=IdealDevice())
    with pytest.raises(ConfigError, match="GiB"):
        Tile(cfg, (10**6,))
    with pytest.raises(ConfigError, match="shape"):
        Tile(cfg, (0,))


def test_memory_bound_follows_the_process_limits(tmp_path) -> None:
    """Under ``ulimit -v`` (and a container's cgroup limit) an allocation the machine could
    hold but the process cannot is refused with the process's bound, not an allocator error."""
    import subprocess
    import sys

    code = (
        "import resource\n"
        "from memxbar.crossbar.tilestate import memory_limit\n"
        "before = memory_limit()\n"
        "resource.setrlimit(resource.RLIMIT_AS, (3 << 30, resource.RLIM_INFINITY))\n"
        "assert memory_limit() < 3 << 30 <= before, (memory_limit(), before)\n"
        "from memxbar.crossbar.tile import Tile, TileConfig\n"
        "from memxbar.devices import IdealDevice\n"
        "from memxbar.errors import ConfigError\n"
        "from memxbar.mapping import AnalogLinear\n"
        "cfg = TileConfig(rows=256, cols=256, device=IdealDevice())\n"
        "for make in (lambda: AnalogLinear(2**29, 2, hardware=cfg), lambda: Tile(cfg, (4096,))):\n"
        "    try:\n"
        "        make()\n"
        "    except ConfigError as e:\n"
        "        assert 'this process can allocate' in str(e), e\n"
        "    else:\n"
        "        raise SystemExit('allocated beyond the limit')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]


def test_noise_without_a_generator_never_uses_the_global_one() -> None:
    cfg = TileConfig(rows=12, cols=8, device=PCM(), out_noise=0.1)
    a, b = Tile(cfg), Tile(cfg)
    W = rand(12, 4, seed=17)
    a.program(W, generator=gen(1))
    b.program(W, generator=gen(1))
    x = rand(3, 12, seed=18)
    torch.manual_seed(1)
    ya = a.mvm(x)
    torch.manual_seed(2)
    yb = b.mvm(x)
    assert torch.equal(ya, yb)  # the same private draws, whatever the global seed
    assert not torch.equal(a.mvm(x), ya)  # and a fresh draw on every call
