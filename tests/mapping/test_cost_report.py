"""Cost report of a converted model: totals against the breakdown, ops, per-inference
normalisation, latency composition, capture reuse, plotting and errors; the conversions and
ADC energy it counts against those the simulated tiles perform."""

import dataclasses
import io
import math

import pytest
import torch
from torch import nn

from memxbar.crossbar.cost import CostModel, mvm_latency
from memxbar.crossbar.periphery import ADC, DAC
from memxbar.crossbar.tile import TileConfig
from memxbar.devices import IdealDevice, presets
from memxbar.errors import ConfigError
from memxbar.mapping import program, to_analog
from memxbar.mapping.cost import (
    COMPONENTS,
    capture_inputs,
    cost,
    estimate_cost,
    htree_length,
    interconnect_energy,
    plot_breakdown,
)

HW = TileConfig(rows=16, cols=16, device=presets.get("pcm-joshi2020"),
                dac=DAC(bits=6, bit_serial=True),
                adc=ADC(bits=6, range_mode="fixed", full_scale=8.0), read_noise="off")


def programmed(model: nn.Module, hw: TileConfig = HW) -> nn.Module:
    torch.manual_seed(0)
    analog = to_analog(model, hw)
    return program(analog, generator=torch.Generator().manual_seed(0))


def cnn_net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(2, 6, 3, padding=1), nn.ReLU(), nn.Conv2d(6, 4, 3, stride=2),
                         nn.Flatten(), nn.Linear(4 * 3 * 3, 3))


@pytest.fixture(scope="module")
def mlp():
    torch.manual_seed(0)
    return programmed(nn.Sequential(nn.Linear(20, 24), nn.ReLU(), nn.Linear(24, 5)))


@pytest.fixture(scope="module")
def cnn():
    return programmed(cnn_net())


@pytest.fixture(scope="module")
def cnn8():
    """The same CNN on tiles that read 8 rows per conversion."""
    return programmed(cnn_net(), dataclasses.replace(HW, rows_parallel=8))


def x_mlp(n=6, seed=0):
    return torch.rand(n, 20, generator=torch.Generator().manual_seed(seed))


def test_totals_equal_the_sum_of_the_breakdown(cnn8):
    x = torch.rand(3, 2, 8, 8, generator=torch.Generator().manual_seed(0))
    rep = estimate_cost(cnn8, x)
    assert list(rep.energy_breakdown.columns) == list(COMPONENTS)
    assert rep.energy == pytest.approx(float(rep.energy_breakdown.to_numpy().sum()))
    assert rep.energy == pytest.approx(float(rep.layers["energy_J"].sum()))
    layer_area = rep.area_breakdown.drop(index=["global buffer", "interconnect"]).sum(axis=1)
    assert layer_area.to_numpy() == pytest.approx(rep.layers["area_m2"].to_numpy())
    assert rep.area == pytest.approx(float(rep.area_breakdown.to_numpy().sum()))
    t = rep.totals()
    assert t["TOPS_per_W"] == pytest.approx(rep.ops / rep.energy / 1e12)
    assert t["TOPS_per_mm2"] == pytest.approx(t["TOPS"] / t["area_mm2"])
    assert (rep.energy_breakdown.to_numpy() >= 0).all()
    # 18, 54 and 36 inputs on 16-row tiles: 2, 4 and 3 row blocks add partial sums digitally
    assert (rep.energy_breakdown["accumulate"] > 0).all()
    assert rep.layers["tiles"].tolist() == [2, 4, 3]


def test_ops_mvms_and_latency(cnn, cnn8):
    x = torch.rand(2, 2, 8, 8, generator=torch.Generator().manual_seed(1))
    cm = CostModel()
    rep = estimate_cost(cnn, x, cm)
    lay = rep.layers
    # MVMs per inference: output positions (8x8, then 3x3) and one for the linear layer
    assert lay["mvms"].tolist() == [64, 9, 1]
    macs = 64 * 18 * 6 + 9 * 54 * 4 + 36 * 3
    assert rep.ops == 2 * macs
    # 6, 4 and 3 outputs of the 8 weight columns a tile holds: the one ADC of a tile converts
    # only the columns in use
    t = [mvm_latency(HW, cm, used_weight_cols=u) for u in (6, 4, 3)]
    assert t[0] > t[1] > t[2] and mvm_latency(HW, cm) > t[0]
    assert lay["latency_s"].to_numpy() == pytest.approx([64 * t[0], 9 * t[1], t[2]])
    assert rep.latency == pytest.approx(64 * t[0] + 9 * t[1] + t[2])
    assert rep.throughput == pytest.approx(1 / (64 * t[0]))
    # rows in parallel: 8 of 16 rows per conversion doubles the latency of full tiles
    rep8 = estimate_cost(cnn8, x)
    assert rep8.layers["latency_s"].iloc[1] == pytest.approx(2 * lay["latency_s"].iloc[1])
    assert rep8.rows_parallel == (8,) and rep.rows_parallel == (None,)


def test_figures_are_per_inference(mlp):
    x = x_mlp(4)
    one = estimate_cost(mlp, x)
    two = estimate_cost(mlp, torch.cat([x, x]))
    assert two.inferences == 8
    assert two.energy == pytest.approx(one.energy, rel=1e-12)
    assert two.latency == pytest.approx(one.latency)
    assert one.ops == 2 * (20 * 24 + 24 * 5)


def test_capture_reuse_and_sparsity(mlp):
    x = x_mlp(5)
    cap = capture_inputs(mlp, x)
    assert estimate_cost(mlp, cap).energy == pytest.approx(estimate_cost(mlp, x).energy)
    survey = estimate_cost(mlp, cap, CostModel())
    hw_ns = dataclasses.replace(HW, adc=dataclasses.replace(HW.adc, model="neurosim"))
    torch.manual_seed(0)
    mlp_ns = programmed(nn.Sequential(nn.Linear(20, 24), nn.ReLU(), nn.Linear(24, 5)), hw_ns)
    ns = estimate_cost(mlp_ns, x, CostModel())
    assert ns.adc_models == ("neurosim",) and survey.adc_models == ("survey",)
    assert ns.energy_breakdown["adc"].sum() < survey.energy_breakdown["adc"].sum()
    assert ns.energy_breakdown["cells"].sum() == pytest.approx(
        survey.energy_breakdown["cells"].sum())
    assert ns.layers["conversions"].tolist() == survey.layers["conversions"].tolist()
    assert "adc_model='neurosim'" in ns.summary() and "rows_parallel all" in ns.summary()
    zero = estimate_cost(mlp, torch.zeros(3, 20))
    assert zero.energy_breakdown.loc["0", "cells"] == 0.0
    assert zero.energy_breakdown.loc["0", "dac"] == 0.0
    assert zero.layers.loc["0", "input_density"] == 0.0


def test_programming_cost(mlp):
    # default: the device's program-and-verify loop (PCM: program_iterations pulses and
    # verify_reads reads per cell); a cost model that sets a loop replaces it (issue 13 item 6)
    rep = estimate_cost(mlp, x_mlp(2), CostModel(verify_iterations=3.0))
    open_loop = estimate_cost(mlp, x_mlp(2), CostModel(program_pulses=1.0, verify_iterations=0.0))
    base = estimate_cost(mlp, x_mlp(2))
    assert base.program_energy > rep.program_energy > open_loop.program_energy > 0
    # the cells holding weights (a differential pair per weight), not the padding
    cells = sum(HW.cells_per_weight * layer.weight.numel() for layer in (mlp[0], mlp[2]))
    assert cells == 2 * (20 * 24 + 24 * 5)
    dev = HW.device
    assert open_loop.program_energy == pytest.approx(cells * dev.write_energy)
    assert dev.program_iterations > 4  # so the device's loop costs more than 1 + 3 pulses


def test_hermes_two_device_cells_double_devices_area_and_programming():
    """pcm-legallo2023-2dev: each modelled cell is two PCM devices (issue 13 item 7)."""
    net = nn.Sequential(nn.Linear(20, 12))
    reps = {}
    for name in ("pcm-legallo2023-1dev", "pcm-legallo2023-2dev"):
        hw = dataclasses.replace(HW, device=presets.get(name))
        analog = programmed(net, hw)
        reps[name] = estimate_cost(analog, x_mlp(2)[:, :20])
    one, two = reps["pcm-legallo2023-1dev"], reps["pcm-legallo2023-2dev"]
    tiles = int(one.layers["tiles"].iloc[0])
    assert one.layers["devices"].iloc[0] == tiles * HW.n_arrays * 16 * 16
    assert two.layers["devices"].iloc[0] == 2 * one.layers["devices"].iloc[0]
    assert two.area_breakdown["cells"].sum() == pytest.approx(
        2 * one.area_breakdown["cells"].sum())
    assert two.program_energy > 1.9 * one.program_energy  # 2x pulses and verify conversions


def test_report_printing_and_plot(mlp, cnn, tmp_path):
    buf = io.StringIO()
    rep = cost(mlp, x_mlp(3), plot=str(tmp_path / "one.png"), file=buf)
    out = buf.getvalue()
    assert "TOPS/W" in out and "mm^2" in out and "accumulate" in out
    assert (tmp_path / "one.png").stat().st_size > 10_000
    rep2 = estimate_cost(cnn, torch.rand(1, 2, 8, 8))
    plot_breakdown({"MLP": rep, "CNN": rep2}, str(tmp_path / "two.svg"))
    assert (tmp_path / "two.svg").stat().st_size > 10_000
    with pytest.raises(ValueError, match="CostReport"):
        plot_breakdown({}, str(tmp_path / "x.png"))
    plot_breakdown(rep, tmp_path / "new" / "three.PDF")  # a Path, a new folder, any case
    assert (tmp_path / "new" / "three.PDF").read_bytes().startswith(b"%PDF")
    for bad in ("x.jpg", "x", ".png", 3):
        with pytest.raises(ConfigError, match=r"\.png, \.svg, \.pdf"):
            cost(mlp, x_mlp(3), plot=bad, file=buf)  # refused before the estimate


def test_errors():
    net = nn.Sequential(nn.Linear(4, 3))
    with pytest.raises(ValueError, match="no analog layers"):
        estimate_cost(net, torch.rand(2, 4))
    analog = to_analog(net, TileConfig(rows=4, cols=8, device=IdealDevice()))
    with pytest.raises(ValueError, match="not programmed"):
        estimate_cost(analog, torch.rand(2, 4))
    program(analog)
    with pytest.raises(ValueError, match="batch"):
        estimate_cost(analog, torch.tensor(1.0))
    with pytest.raises(ValueError, match="CostModel"):
        estimate_cost(analog, torch.rand(2, 4), cost_model="fast")


def test_weight_duplication_multiplies_area_and_divides_latency(cnn):
    x = torch.rand(2, 2, 8, 8, generator=torch.Generator().manual_seed(3))
    cap = capture_inputs(cnn, x)
    base = estimate_cost(cnn, cap)
    dup = estimate_cost(cnn, cap, duplication=4)  # every convolution x4, the linear layer x1
    assert dup.layers["copies"].tolist() == [4, 4, 1]
    tile_parts = ["cells", "dac", "decoder", "mux", "adc", "shift_add"]
    for name, k in (("0", 4), ("2", 4), ("4", 1)):
        assert dup.area_breakdown.loc[name, tile_parts].to_numpy() == pytest.approx(
            k * base.area_breakdown.loc[name, tile_parts].to_numpy())
    # 64 and 9 output positions split among 4 copies: ceil(64/4) = 16, ceil(9/4) = 3 MVMs
    t = base.layers["t_mvm_s"]
    assert dup.layers["latency_s"].to_numpy() == pytest.approx(
        [16 * t.iloc[0], 3 * t.iloc[1], t.iloc[2]])
    assert dup.throughput == pytest.approx(4 * base.throughput)
    assert dup.program_energy > base.program_energy
    # energy per inference: the same except the longer wires of the larger chip and leakage
    same = [c for c in COMPONENTS if c not in ("interconnect", "leakage")]
    assert dup.energy_breakdown[same].to_numpy() == pytest.approx(
        base.energy_breakdown[same].to_numpy(), rel=1e-12)
    assert (dup.energy_breakdown["interconnect"] > base.energy_breakdown["interconnect"]).all()
    per_layer = estimate_cost(cnn, cap, duplication={"2": 3})
    assert per_layer.layers["copies"].tolist() == [1, 3, 1]
    for bad in (0, 1.5, True, {"nope": 2}, {"2": 0}):
        with pytest.raises(ValueError, match="duplication"):
            estimate_cost(cnn, cap, duplication=bad)


def test_interconnect_and_leakage_follow_their_models(mlp, cnn):
    cm = CostModel()
    assert interconnect_energy(2000.0, 1e-3, cm) == pytest.approx(
        2 * interconnect_energy(1000.0, 1e-3, cm))
    assert interconnect_energy(1000.0, 2e-3, cm) == pytest.approx(
        2 * interconnect_energy(1000.0, 1e-3, cm))
    assert interconnect_energy(1.0, 1e-3, cm) == pytest.approx(
        0.5 / 2 * 0.2e-15 / 1e-6 * 1e-3 * 0.85 ** 2)
    assert htree_length(1e-3, 1) == 0.0
    assert htree_length(1e-3, 4) == pytest.approx(1.5e-3)
    assert htree_length(1e-3, 16) > htree_length(1e-3, 4)
    x = torch.rand(2, 2, 8, 8, generator=torch.Generator().manual_seed(4))
    rep = estimate_cost(cnn, x, cm)
    core = rep.area - float(rep.area_breakdown.loc["interconnect"].sum())
    side = math.sqrt(core)
    bits = [(2 * 8 * 8 + 6 * 8 * 8) * 8, (6 * 8 * 8 + 4 * 3 * 3) * 8, (36 + 3) * 8]
    assert rep.energy_breakdown["interconnect"].to_numpy() == pytest.approx(
        [interconnect_energy(b, side, cm) for b in bits])
    # more bits moved (a wider activation) cost more interconnect energy
    wide = estimate_cost(cnn, x, CostModel(activation_bits=16))
    assert wide.energy_breakdown["interconnect"].sum() > rep.energy_breakdown[
        "interconnect"].sum()
    period = 1.0 / rep.throughput
    assert rep.energy_breakdown["leakage"].sum() == pytest.approx(
        cm.leakage_density * rep.area * period)
    none = estimate_cost(cnn, x, CostModel(leakage_density=0.0))
    assert none.energy_breakdown["leakage"].sum() == 0.0


def test_activation_and_pooling_units_follow_the_layer_they_come_after():
    """ReLU: one comparison per element; 2x2 max pooling: inputs - outputs comparisons; both
    charged to the analog layer that ran before them, as activation_bits-wide additions, with
    bus_width / activation_bits lanes of adder + register per module in the area."""
    from memxbar.crossbar.cost import add_energy, logic_area

    torch.manual_seed(0)
    net = programmed(nn.Sequential(nn.Conv2d(2, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                                   nn.Flatten(), nn.Linear(4 * 4 * 4, 3)))
    x = torch.rand(2, 2, 8, 8, generator=torch.Generator().manual_seed(1))
    cap = capture_inputs(net, x)
    relu, pool = 4 * 8 * 8, 4 * 8 * 8 - 4 * 4 * 4
    assert cap.function_ops == {"0": 2 * (relu + pool), "4": 0.0}
    assert cap.function_units == {"0": 2, "4": 0}
    cm = CostModel()
    rep = estimate_cost(net, cap, cm)
    assert rep.energy_breakdown.loc["0", "function"] == pytest.approx(
        (relu + pool) * add_energy(8, cm))
    assert rep.energy_breakdown.loc["4", "function"] == 0.0
    assert rep.area_breakdown.loc["0", "function"] == pytest.approx(
        2 * (128 // 8) * logic_area(8, cm))
    assert rep.energy == pytest.approx(float(rep.layers["energy_J"].sum()))


def test_tiles_of_a_row_block_share_one_input_register(mlp):
    """Linear(20, 24) on 16x16 differential tiles: 2 row blocks x 3 column blocks. Each tile
    has its partial-sum register; each row block one input register; plus the layer's
    activation buffer holding one input."""
    from memxbar.crossbar.cost import (
        accumulator_bits,
        buffer_area,
        input_register_bits,
        register_area,
        row_groups,
    )

    cm = CostModel()
    rep = estimate_cost(mlp, x_mlp(), cm)
    tiled = mlp[0].tiled
    hw = tiled.hardware
    n_rb, n_cb = tiled.n_row_blocks, tiled.n_col_blocks
    assert (n_rb, n_cb) == (2, 3)
    acc = accumulator_bits(hw, cm, row_groups(hw))
    want = (n_rb * n_cb * register_area(hw.weight_cols * acc, cm)
            + n_rb * register_area(input_register_bits(hw, cm), cm)
            + buffer_area(20 * cm.activation_bits, cm))
    assert rep.area_breakdown.loc["0", "buffer"] == pytest.approx(want)


@pytest.mark.parametrize("encoding", ["differential", "offset"])
@pytest.mark.parametrize("rows_parallel", [None, 32])
def test_cost_counts_the_conversions_the_tiles_perform(encoding, rows_parallel):
    """The ADC conversions and ADC energy of the cost report equal those the simulated tiles
    perform on the same inputs (``Tile.adc_conversions``): a 100-input, 10-output layer, one
    tile narrower than the 128 x 64 array (only its 10 columns' converters convert), and a
    256-input layer filling 2 x 2 tiles; bit-serial 4-bit DAC (3 read cycles), all rows at
    once or 32 at a time; offset encoding with 2 bit slices per weight and the reference
    column."""
    sliced = dict(weight_bits=6, bits_per_cell=3) if encoding == "offset" else {}
    hw = TileConfig(rows=128, cols=64, device=IdealDevice(), encoding=encoding,
                    dac=DAC(bits=4, bit_serial=True), rows_parallel=rows_parallel,
                    adc=ADC(bits=6, range_mode="fixed", full_scale=16.0), read_noise="off",
                    **sliced)
    cm = CostModel()
    groups = {100: 1 if rows_parallel is None else 4, 128: 1 if rows_parallel is None else 4}
    per_output = hw.n_slices  # converters per output; offset adds one reference per tile
    ref = 1 if encoding == "offset" else 0
    for in_f, out_f in ((100, 10), (256, 2 * hw.weight_cols)):
        torch.manual_seed(0)
        model = programmed(nn.Sequential(nn.Linear(in_f, out_f)), hw)
        tile = model[0].tiled.tile
        x = torch.rand(7, in_f, generator=torch.Generator().manual_seed(1))
        before = tile.adc_conversions
        cap = capture_inputs(model, x)  # one forward pass through the tiles
        performed = tile.adc_conversions - before
        rep = estimate_cost(model, cap, cm)
        counted = float(rep.layers["conversions"].iloc[0]) * rep.inferences
        if in_f == 100:  # one tile: 7 vectors x 3 cycles x groups x converters in use
            want = 7 * 3 * groups[100] * (10 * per_output + ref)
        else:  # 2 x 2 full tiles
            want = 4 * 7 * 3 * groups[128] * hw.adc_cols
        assert performed == want
        assert counted == performed
        assert rep.energy_breakdown["adc"].sum() * rep.inferences == pytest.approx(
            performed * hw.adc.conversion_energy(cm), rel=1e-12)
