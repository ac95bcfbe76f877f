"""The whole chain on each torch device this machine has: cpu always, cuda when present.

Every test takes ``dev``; the cuda cases skip without a CUDA device. Cells, generators and
IR-drop solves must stay on the module's device, and the results must agree with the CPU's:
exactly where no random draw is involved (the same programmed state moved over), in
distribution where the device draws its own numbers.
"""

from __future__ import annotations

import dataclasses

import pytest
import torch
from torch import nn

from memxbar.crossbar import circuit
from memxbar.crossbar.periphery import ADC, DAC
from memxbar.crossbar.tile import Tile, TileConfig
from memxbar.devices import presets
from memxbar.mapping import (
    MappingConfig,
    apply_read_disturb,
    calibrate,
    drift,
    estimate_cost,
    mapping_report,
    program,
    to_analog,
)
from memxbar.studies.workloads import LeNet

F64 = torch.float64
DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(
    not torch.cuda.is_available(), reason="needs a CUDA device"))]


def gen(dev: str, seed: int) -> torch.Generator:
    return torch.Generator(device=dev).manual_seed(seed)


def hardware(r_wire: float = 1.0, read_noise: str = "per_mvm", rows: int = 64) -> TileConfig:
    return TileConfig(rows=rows, cols=rows, device=presets.get("pcm-joshi2020"),
                      dac=DAC(bits=8), adc=ADC(bits=8, range_mode="calibrated"),
                      r_row=r_wire, r_col=r_wire, read_noise=read_noise)


@pytest.mark.parametrize("dev", DEVICES)
@pytest.mark.parametrize("name", presets.names())
def test_every_preset_programs_reads_and_drifts_on_the_device(dev: str, name: str) -> None:
    """Each preset on ``dev``: the state and every read stay there, are finite and
    non-negative, and the device's own draws give the CPU's statistics (mean within 3 %
    of the range, spread within 15 % where it is above 1 % of the range)."""
    device = presets.get(name)
    span = device.g_max - device.g_min
    target = device.g_min + span * torch.linspace(0.1, 0.9, 8, dtype=F64).repeat_interleave(2048)
    stats = {}
    for where in ("cpu", dev):
        st = device.program(target.to(where), generator=gen(where, 0))
        assert st.g.device.type == where
        assert all(v.device.type == where for v in st.latent.values())
        g = device.read(st, 86400.0, generator=gen(where, 1))
        mean, std = device.read_stats(st, 86400.0)
        for x in (g, mean, std):
            assert x.device.type == where and bool(torch.isfinite(x).all())
            assert bool((x >= 0).all())
        stats[where] = g.reshape(8, -1).mean(1).cpu(), g.reshape(8, -1).std(1).cpu()
    (m0, s0), (m1, s1) = stats["cpu"], stats[dev]
    assert float((m1 - m0).abs().max()) <= 0.03 * span
    wide = s0 > 0.01 * span
    torch.testing.assert_close(s1[wide], s0[wide], rtol=0.15, atol=0.0)


def _random_arrays(dev: str) -> torch.Tensor:
    """Two non-square arrays, G log-uniform over two decades (1-100 uS)."""
    u = torch.rand(2, 96, 72, generator=gen("cpu", 5), dtype=F64)
    return (1e-6 * 100.0 ** u).to(dev)


@pytest.mark.parametrize("dev", DEVICES)
def test_ir_drop_solves_on_the_device_match_the_float64_direct_solve(dev: str) -> None:
    """Nested dissection (float64 and mixed), conjugate gradients and the first-order
    approximation on ``dev`` against the CPU's float64 effective matrix, asymmetric wires."""
    G = _random_arrays(dev)
    r_row, r_col = 0.7, 2.5
    ref = circuit.effective_conductance(G.cpu(), r_row, r_col, precision="float64")
    M64 = circuit.effective_conductance(G, r_row, r_col, precision="float64")
    M32 = circuit.effective_conductance(G.float(), r_row, r_col)
    assert M64.device.type == dev and M32.device.type == dev and M32.dtype == torch.float32
    scale = float(ref.abs().max())
    assert float((M64.cpu() - ref).abs().max()) / scale <= 1e-12
    assert float((M32.cpu().double() - ref).abs().max()) / scale <= 1e-6
    V = torch.rand(2, 3, 96, generator=gen("cpu", 6), dtype=F64)
    I_cg = circuit.solve(G, V.to(dev), r_row, r_col, method="cg")
    assert I_cg.device.type == dev
    I_ref = V @ ref
    assert float((I_cg.cpu() - I_ref).abs().max() / I_ref.abs().max()) <= 1e-10
    approx = circuit.effective_first_order(G, r_row, r_col)
    torch.testing.assert_close(approx.cpu(), circuit.effective_first_order(G.cpu(), r_row, r_col),
                               rtol=1e-12, atol=0.0)


@pytest.mark.parametrize("dev", DEVICES)
def test_a_tile_re_read_after_drift_on_the_device_matches_the_cpu(dev: str) -> None:
    """A tile programmed on the CPU and moved to ``dev``: each read time's conductances are
    the device's own draws, so both sides read with read noise off; the IR-drop solves of
    two read times (the second warm) and the outputs agree with the CPU's."""
    cfg = hardware(read_noise="off", rows=48)
    tile = Tile(cfg, (3,))
    w = torch.rand(3, 48, cfg.weight_cols, generator=gen("cpu", 2)) * 2 - 1
    tile.program(w, generator=gen("cpu", 3))
    x = torch.rand(3, 5, 48, generator=gen("cpu", 4))
    tile.set_time(1.0)
    tile.calibrate_adc(x)
    moved = Tile(cfg, (3,))
    moved.load_state_dict(tile.state_dict())
    moved.to(dev)
    for t in (3600.0, 86400.0):
        tile.set_time(t)
        moved.set_time(t)
        assert moved.state.g.device.type == dev
        torch.testing.assert_close(moved.mvm(x.to(dev)).cpu(), tile.mvm(x), rtol=1e-4,
                                   atol=1e-4)
        assert moved.ir_error <= 1e-6 and tile.ir_error <= 1e-6


def _mlp() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(40, 70), nn.ReLU(), nn.Linear(70, 10))


@pytest.mark.parametrize("dev", DEVICES)
@pytest.mark.parametrize("r_wire", [0.0, 1.0])
def test_a_network_life_cycle_runs_on_the_device(dev: str, r_wire: float) -> None:
    """Convert, program with a generator on ``dev``, calibrate, drift, infer, report and cost:
    every step on ``dev``, the outputs close to the digital network's (8-bit periphery, global
    drift compensation), the cost the CPU's."""
    net = _mlp()
    x = torch.rand(64, 40, generator=gen("cpu", 1)).to(dev)
    analog = to_analog(net, hardware(r_wire),
                       mapping=MappingConfig(compensation="global")).to(dev)
    g = gen(dev, 0)
    program(analog, generator=g, calibration=x)
    drift(analog, 86400.0, generator=g)
    with torch.no_grad():
        y = analog(x)
        ref = net.to(dev)(x)
    assert y.device.type == dev and bool(torch.isfinite(y).all())
    err = float((y - ref).norm() / ref.norm())
    assert err < 0.25, err
    report = mapping_report(analog)
    if r_wire:
        assert (report.ir_error <= 1e-6).all()
    else:  # no solve: no error to report
        assert report.ir_error.isna().all()
    cost = estimate_cost(analog, x)
    on_cpu = estimate_cost(analog.to("cpu"), x.cpu())
    assert cost.energy > 0 and cost.latency > 0
    assert cost.energy == pytest.approx(on_cpu.energy, rel=1e-3)


@pytest.mark.parametrize("dev", DEVICES)
@pytest.mark.parametrize("scaling", ["dynamic", "calibrated"])
def test_a_conv_net_on_the_device_equals_the_same_cells_on_the_cpu(dev: str,
                                                                   scaling: str) -> None:
    """LeNet on 3 x 16 x 16 programmed on the CPU, copied to ``dev``: with read noise off the
    forward is the CPU's (the cells are the same; only summation order differs)."""
    torch.manual_seed(0)
    net = LeNet((3, 16, 16), 10).eval()
    x = torch.rand(8, 3, 16, 16, generator=gen("cpu", 1))
    hw = hardware(0.0, read_noise="off")
    analog = to_analog(net, hw, mapping=MappingConfig(input_scaling=scaling))
    program(analog, generator=gen("cpu", 0), calibration=x)
    drift(analog, 3600.0)
    moved = to_analog(net, hw, mapping=MappingConfig(input_scaling=scaling))
    moved.load_state_dict(analog.state_dict())
    moved.to(dev)
    with torch.no_grad():
        torch.testing.assert_close(moved(x.to(dev)).cpu(), analog(x), rtol=2e-3, atol=2e-3)


@pytest.mark.parametrize("dev", DEVICES)
def test_calibration_and_drift_need_no_cpu_round_trip(dev: str) -> None:
    """Calibrating on ``dev`` inputs and reading at a new time keep the ADC ranges and the
    cells on ``dev`` (a stray CPU tensor would raise in the next forward)."""
    analog = to_analog(_mlp(), dataclasses.replace(hardware(1.0), rows=32, cols=32)).to(dev)
    x = torch.rand(16, 40, generator=gen("cpu", 2)).to(dev)
    program(analog, generator=gen(dev, 3), calibration=x)
    calibrate(analog, x[:8])  # again, on other inputs
    for t in (60.0, 3600.0):
        drift(analog, t, generator=gen(dev, 4))
        with torch.no_grad():
            assert analog(x).device.type == dev
    for name, buf in analog.named_buffers():
        assert buf.device.type == dev, name


@pytest.mark.parametrize("dev", DEVICES)
def test_the_same_seed_gives_the_same_cells_on_the_device(dev: str) -> None:
    """Programming and reading with a ``dev`` generator: one seed, the same cells (a device
    draws its own numbers, so the cells are compared on the same device only)."""
    device = presets.get("pcm-joshi2020")
    target = torch.full((4, 300, 200), 10e-6, dtype=torch.float32, device=dev)
    runs = []
    for _ in range(2):
        st = device.program(target, generator=gen(dev, 9))
        runs.append((st.g, device.read(st, 3600.0, generator=gen(dev, 10))))
    assert torch.equal(runs[0][0], runs[1][0]) and torch.equal(runs[0][1], runs[1][1])
    other = device.program(target, generator=gen(dev, 8)).g
    assert not torch.equal(other, runs[0][0])


@pytest.mark.parametrize("dev", DEVICES)
@pytest.mark.parametrize("name", ["mtj-neurosim", "rram-falcone2025"])
def test_read_disturb_on_the_device_matches_the_cpu(dev: str, name: str) -> None:
    """Read disturb of many inferences on ``dev`` (MTJ: stochastic flips drawn there, its
    barrier lowered to 30 k_B T so that some flip; RRAM: filament decay) changes about as many
    cells as on the CPU, and the cells stay on ``dev``."""
    device = presets.get(name)
    if name.startswith("mtj"):
        device = dataclasses.replace(device, delta=30.0)
    hw = dataclasses.replace(hardware(0.0), device=device, rows=32, cols=32)
    x = torch.rand(16, 40, generator=gen("cpu", 5))
    changed = {}
    for where in ("cpu", dev):
        analog = to_analog(_mlp(), hw).to(where)
        program(analog, generator=gen(where, 0), calibration=x.to(where))
        report = apply_read_disturb(analog, 1e11, x.to(where), generator=gen(where, 1))
        changed[where] = report.changed
        for _, buf in analog.named_buffers():
            assert buf.device.type == where
    assert changed["cpu"] > 100, changed
    assert abs(changed[dev] - changed["cpu"]) <= 0.1 * changed["cpu"] + 10, changed
