"""Cost model of one tile: energies, latency, area and programming against their formulas and
the published figures they come from; conversions counted for the converters in use, as the
tile performs them."""

import dataclasses
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from memxbar.crossbar.cost import (
    MAX_CELLS,
    MAX_PULSES_PER_CELL,
    CostModel,
    accumulator_bits,
    add_energy,
    bitline_energy,
    buffer_area,
    buffer_energy,
    cell_area,
    logic_energy,
    mvm_cost,
    mvm_latency,
    n_adcs,
    program_cost,
    register_area,
    tile_area,
    tile_program_cost,
    write_lines,
)
from memxbar.crossbar.periphery import ADC, DAC
from memxbar.crossbar.periphery.adc_models import adc_survey_figures
from memxbar.crossbar.tile import Tile, TileConfig
from memxbar.devices import IdealDevice, presets
from memxbar.errors import ConfigError

# the published survey as shipped in the project's reference data (else the package's copy)
SURVEY = Path(__file__).resolve().parents[3] / "shared" / "data" / "surveys" / \
    "adc_survey_murmann.csv"
if not SURVEY.exists():
    SURVEY = Path(__file__).resolve().parents[2] / "crossbar" / "data" / SURVEY.name
G_MAX = 1e-5
DEV = IdealDevice(g_min=0.0, g_max=G_MAX)


def make_tile(rows=16, cols=16, w=1.0, device=DEV, adc_bits=6, dac=None, shape=(),
              rows_parallel=None, adc_model="survey"):
    cfg = TileConfig(rows=rows, cols=cols, device=device,
                     dac=dac or DAC(bits=8, bit_serial=True),
                     adc=ADC(bits=adc_bits, range_mode="fixed", full_scale=float(rows),
                             model=adc_model), rows_parallel=rows_parallel)
    tile = Tile(cfg, shape)
    tile.program(torch.full((*shape, rows, cfg.weight_cols), w, dtype=torch.float64))
    return tile


# ---------------------------------------------------------------------- published figures
def adc(bits, model="survey"):
    return ADC(bits=bits, full_scale=1.0, model=model)


def test_survey_fom_is_the_percentile_of_the_published_survey():
    d = pd.read_csv(SURVEY)
    tags = d["architecture"].fillna("").str.split(",").map(lambda t: {s.strip() for s in t})
    sel = d[tags.map(lambda t: "SAR" in t and "TI" not in t) & (d["year"] >= 2010)
            & d["enob_bits"].between(4, 8) & d["fom_walden_fj_per_step"].notna()]
    m = CostModel()
    fom, area, n, _ = adc_survey_figures(m)
    assert n == len(sel)
    assert fom == pytest.approx(np.median(sel["fom_walden_fj_per_step"]) * 1e-15, rel=1e-12)
    # Walden: E = FOM * 2^bits, so one more bit doubles the energy and the area
    assert adc(4).conversion_energy(m) == pytest.approx(fom * 16, rel=1e-12)
    assert adc(7).conversion_energy(m) / adc(6).conversion_energy(m) == pytest.approx(
        2.0, rel=1e-12)
    assert adc(5).area(m) == pytest.approx(area * 32, rel=1e-12)
    # landscape.md: SAR designs (time-interleaved included), ENOB 4-8 since 2018: median 55
    m18 = CostModel(adc_since=2018, adc_time_interleaved=True)
    assert adc_survey_figures(m18)[0] == pytest.approx(55e-15, rel=0.01)
    hi = CostModel(adc_percentile=90.0)
    assert adc(4).conversion_energy(hi) > adc(4).conversion_energy(m)


def test_neurosim_sar_formula_at_22nm():
    m = CostModel(node=22e-9)
    ns = adc(5, "neurosim")
    # (0.7213 * 5 + 3.3041) uW * 6 ns = 41.5 fJ (landscape.md)
    assert ns.conversion_energy(m) == pytest.approx((0.7213 * 5 + 3.3041) * 1e-6 * 6e-9,
                                                    rel=1e-12)
    assert ns.conversion_energy(m) == pytest.approx(41.5e-15, rel=2e-3)
    assert ns.conversion_time(m) == pytest.approx(6e-9)
    # a tile whose ADC is NeuroSim's is refused at a node NeuroSim does not tabulate
    tile = make_tile(adc_model="neurosim")
    with pytest.raises(ConfigError, match="node"):
        mvm_cost(tile, torch.ones(1, 16, dtype=torch.float64), CostModel(node=20e-9))
    with pytest.raises(ConfigError, match="node"):
        tile_area(tile.config, CostModel(node=20e-9))


def test_digital_energy_is_horowitz_at_45nm_and_scales_with_node():
    m45 = CostModel(node=45e-9)
    assert add_energy(8, m45) == pytest.approx(0.03e-12)
    assert add_energy(32, m45) == pytest.approx(0.1e-12)
    assert add_energy(20, m45) == pytest.approx(0.03e-12 + 0.07e-12 / 2)
    assert add_energy(16, CostModel(node=22.5e-9)) == pytest.approx(add_energy(16, m45) / 2)
    # 1-bit row driver: ISAAC 3.9 fJ at 32 nm, 128 columns; scales with columns and node
    m32 = CostModel(node=32e-9)
    serial = DAC(bits=8, bit_serial=True)  # one bit per event
    assert serial.energy(m32, 128) == pytest.approx(3.9e-15)
    assert serial.energy(CostModel(node=16e-9), 256) == pytest.approx(3.9e-15)
    assert DAC(bits=3).energy(m32, 128) == pytest.approx(4 * 3.9e-15)


def test_cost_model_rejects_bad_values():
    with pytest.raises(ConfigError, match=r"CostModel.adc_model = 'neurosim' is not a "
                                          r"cost-model field any more; it is a hardware field "
                                          r"now: set ADC\(model=...\)"):
        CostModel(adc_model="neurosim")
    with pytest.raises(ConfigError, match=r"CostModel.rows_parallel = 32 .* hardware field now: "
                                          r"set TileConfig.rows_parallel"):
        CostModel(rows_parallel=32)
    assert "adc_model" not in CostModel().describe()
    with pytest.raises(ValueError, match="node"):
        CostModel(node=-1.0)
    with pytest.raises(ValueError, match="no ADC in the survey"):
        CostModel(adc_architecture="Bogus")
    with pytest.raises(ValueError, match="cell_type"):
        cell_area("2T2R", CostModel())
    assert "Horowitz" in CostModel().describe()


# ---------------------------------------------------------------------- cells and drivers
def test_cell_energy_is_v2_g_t_per_cycle():
    """Weights 1 on a differential pair: G+ = g_max, G- = 0. Input 1 = code 127: all 7
    bit-serial cycles drive V_read. E = 7 * rows * weight_cols * V^2 g_max t per vector."""
    tile = make_tile(rows=16, cols=16)
    cfg = tile.config
    x = torch.ones(3, 16, dtype=torch.float64)
    c = mvm_cost(tile, x)
    dev = cfg.device
    want = 3 * 7 * 16 * cfg.weight_cols * dev.read_voltage ** 2 * G_MAX * dev.read_time
    assert c.energy["cells"] == pytest.approx(want, rel=1e-12)
    # input 1/127 is code 1: one cycle instead of seven
    c1 = mvm_cost(tile, x / 127)
    assert c.energy["cells"] / c1.energy["cells"] == pytest.approx(7.0, rel=1e-12)


def test_cell_energy_against_explicit_cell_currents():
    """Random weights and inputs on a stack of tiles: the sum over cycles of V_row * I_cell * t
    over every cell equals the model (independent loop over cycles and cells)."""
    gen = torch.Generator().manual_seed(0)
    dev = presets.get("pcm-joshi2020")
    cfg = TileConfig(rows=12, cols=10, device=dev, dac=DAC(bits=5, bit_serial=True),
                     adc=ADC(bits=6, range_mode="fixed", full_scale=12.0), read_noise="off")
    tile = Tile(cfg, (2, 3))
    tile.program(torch.rand(2, 3, 12, cfg.weight_cols, generator=gen,
                            dtype=torch.float64) * 2 - 1, generator=gen)
    tile.set_time(100.0)
    x = torch.rand(2, 1, 4, 12, generator=gen, dtype=torch.float64) * 2 - 1
    planes, _, volt = cfg.dac.encode(x)
    g = dev.read_mean(tile.state, 100.0).to(torch.float64)  # (2, 3, 1, 12, 10)
    e = 0.0
    for c in range(planes.shape[0]):
        v = planes[c] * volt * dev.read_voltage  # (2, 1, 4, 12) row voltages
        i = v[:, :, :, None, :, None] * g[:, :, None]  # cell currents (2, 3, 4, 1, 12, 10)
        e += float((v[:, :, :, None, :, None] * i).sum()) * dev.read_time
    assert mvm_cost(tile, x).energy["cells"] == pytest.approx(e, rel=1e-10)


def test_energy_scales_with_conductance_and_array_size():
    x = torch.ones(2, 16, dtype=torch.float64)
    base = mvm_cost(make_tile(), x).energy["cells"]
    double_g = IdealDevice(g_min=0.0, g_max=2 * G_MAX)
    assert mvm_cost(make_tile(device=double_g), x).energy["cells"] == pytest.approx(2 * base)
    assert mvm_cost(make_tile(cols=32), x).energy["cells"] == pytest.approx(2 * base)
    x32 = torch.ones(2, 32, dtype=torch.float64)
    big = mvm_cost(make_tile(rows=32, cols=32), x32)
    assert big.energy["cells"] == pytest.approx(4 * base)
    # row drivers charge rows twice as long: twice the energy per event, twice the events
    assert big.energy["dac"] == pytest.approx(4 * mvm_cost(make_tile(), x).energy["dac"])


def test_sparsity_zero_inputs_cost_no_array_or_driver_energy():
    tile = make_tile()
    m = CostModel()
    zero = mvm_cost(tile, torch.zeros(4, 16, dtype=torch.float64), m)
    assert zero.energy["cells"] == 0.0 and zero.energy["dac"] == 0.0
    assert zero.energy["adc"] > 0  # conversions run on a fixed schedule
    gen = torch.Generator().manual_seed(1)
    mask = (torch.rand(4, 16, generator=gen) < 0.3).to(torch.float64)
    full = mvm_cost(tile, torch.ones(4, 16, dtype=torch.float64), m)
    sparse = mvm_cost(tile, mask, m)
    frac = float(mask.sum()) / mask.numel()
    assert sparse.energy["cells"] == pytest.approx(frac * full.energy["cells"], rel=1e-12)
    assert sparse.energy["dac"] == pytest.approx(frac * full.energy["dac"], rel=1e-12)
    assert sparse.active_rows == float(mask.sum()) * 7
    assert sparse.energy["dac"] == pytest.approx(
        sparse.active_rows * tile.config.dac.energy(m, 16), rel=1e-12)
    assert sparse.energy["adc"] == full.energy["adc"]


# ---------------------------------------------------------------------- ADC, latency, groups
def test_adc_energy_follows_bits_and_conversion_count():
    x = torch.rand(5, 16, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    m = CostModel()
    c4 = mvm_cost(make_tile(adc_bits=4), x, m)
    c6 = mvm_cost(make_tile(adc_bits=6), x, m)
    assert c6.energy["adc"] / c4.energy["adc"] == pytest.approx(4.0, rel=1e-12)
    cfg = make_tile().config
    assert c4.conversions == 5 * 7 * cfg.adc_cols  # vectors x cycles x converted columns
    assert c4.energy["adc"] == pytest.approx(c4.conversions * adc(4).conversion_energy(m))


def test_rows_parallel_multiplies_conversions_not_cell_energy():
    x = torch.rand(3, 32, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    all_rows = mvm_cost(make_tile(rows=32, cols=16), x)
    tile8 = make_tile(rows=32, cols=16, rows_parallel=8)
    groups = mvm_cost(tile8, x)
    assert groups.conversions == 4 * all_rows.conversions
    assert groups.energy["adc"] == pytest.approx(4 * all_rows.energy["adc"])
    assert groups.energy["cells"] == pytest.approx(all_rows.energy["cells"])
    assert groups.latency == pytest.approx(4 * all_rows.latency)
    # only the rows holding weights are read: 10 used rows need 2 groups of 8
    part = mvm_cost(tile8, x, used_rows=10)
    assert part.conversions == 2 * all_rows.conversions


def test_only_the_converters_in_use_convert():
    """16 x 16 differential tile: 8 weight columns. With 3 of them holding weights, 3
    converters convert (3/8 of the ADC energy, shift-adds and mux switches), the busiest ADC
    makes 3 conversions instead of 8, and the counts follow TileConfig.conversions_per_vector;
    only the cells of the 3 columns are read (3/8 of the cell energy: equal weights); drivers
    and bit lines are unchanged."""
    tile = make_tile()
    cfg = tile.config
    m = CostModel()
    x = torch.rand(5, 16, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    full = mvm_cost(tile, x, m)
    part = mvm_cost(tile, x, m, used_cols=3)
    assert full.conversions == 5 * cfg.conversions_per_vector(8, 16) == 5 * 7 * 8
    assert part.conversions == 5 * cfg.conversions_per_vector(3, 16) == 5 * 7 * 3
    for k in ("adc", "shift_add"):
        assert part.energy[k] == pytest.approx(3 / 8 * full.energy[k], rel=1e-12)
    assert part.energy["cells"] == pytest.approx(3 / 8 * full.energy["cells"], rel=1e-12)
    for k in ("dac", "decoder", "buffer"):
        assert part.energy[k] == full.energy[k]
    t_conv = adc(6).conversion_time(m)
    assert full.latency == pytest.approx(7 * (cfg.device.read_time + 8 * t_conv))
    assert part.latency == pytest.approx(7 * (cfg.device.read_time + 3 * t_conv))
    assert part.latency == pytest.approx(mvm_latency(cfg, m, used_weight_cols=3))
    with pytest.raises(ConfigError, match="used_cols"):
        mvm_cost(tile, x, m, used_cols=9)


def test_latency_grows_with_adc_sharing():
    cfg = make_tile().config  # 8 converted columns (differential pairs on 16 columns)
    t = {s: mvm_latency(cfg, CostModel(adc_share=s)) for s in (1, 2, 4, 8)}
    assert t[1] < t[2] < t[4] < t[8]
    t_conv = adc(6).conversion_time(CostModel())
    for s in (1, 2, 4, 8):
        assert t[s] == pytest.approx(7 * (cfg.device.read_time + s * t_conv))
        assert n_adcs(cfg, CostModel(adc_share=s)) == cfg.adc_cols // s


def test_stacked_tiles_run_in_parallel_and_add_energy():
    x = torch.ones(2, 1, 3, 16, dtype=torch.float64)  # broadcast over 4 column tiles
    stack = make_tile(shape=(2, 4))
    one = make_tile()
    c = mvm_cost(stack, x)
    c1 = mvm_cost(one, torch.ones(3, 16, dtype=torch.float64))
    assert c.latency == pytest.approx(c1.latency)
    for k in ("cells", "dac", "adc", "shift_add"):
        assert c.energy[k] == pytest.approx(8 * c1.energy[k], rel=1e-12)
    assert c.energy["buffer"] == pytest.approx(2 * c1.energy["buffer"], rel=1e-12)  # read once
    with pytest.raises(ValueError, match="shape"):
        mvm_cost(stack, torch.ones(3, 16))


def test_per_column_sensing_conducts_only_during_the_conversion():
    """Current-mode sensing through the column mux: each column conducts for its own conversion
    ((bits + 1) ns at 6 bits), not the device's read pulse, and no read pulse precedes the
    conversions; ADC, driver and bit-line energies are unchanged."""
    tile = make_tile()
    cfg = tile.config
    x = torch.rand(5, 16, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    sh = mvm_cost(tile, x, CostModel())
    pc = mvm_cost(tile, x, CostModel(sensing="per_column"))
    t_conv = adc(6).conversion_time(CostModel())
    assert t_conv == pytest.approx(7e-9)
    assert pc.energy["cells"] == pytest.approx(
        sh.energy["cells"] * t_conv / cfg.device.read_time, rel=1e-12)
    for k in ("dac", "decoder", "mux", "adc", "shift_add", "buffer"):
        assert pc.energy[k] == sh.energy[k]
    assert pc.latency == pytest.approx(7 * 8 * t_conv)  # 7 cycles x 8 conversions per ADC
    assert pc.latency == pytest.approx(mvm_latency(cfg, CostModel(sensing="per_column")))
    assert sh.latency == pytest.approx(7 * (cfg.device.read_time + 8 * t_conv))
    with pytest.raises(ValueError, match="sensing.*allowed: sample_hold, per_column"):
        CostModel(sensing="voltage")


def test_register_file_buffers_against_sram():
    """A register-file bit is a 24-T flip-flop at logic density (135 F^2 per transistor): 11.6x
    the 280 F^2 SRAM cell; its access switches those 24 transistors instead of an SRAM read."""
    sram, reg = CostModel(), CostModel(buffer_type="register")
    f2 = (22e-9) ** 2
    assert buffer_area(1000, sram) == pytest.approx(1000 * 280 * f2)
    assert buffer_area(1000, reg) == pytest.approx(1000 * 24 * 135 * f2)
    assert register_area(1000, sram) == buffer_area(1000, reg)
    assert buffer_energy(64, sram) == pytest.approx(10e-12 * 22 / 45)  # Horowitz 64-bit SRAM
    assert buffer_energy(64, reg) == pytest.approx(64 * logic_energy(24, reg))
    tile = make_tile()
    x = torch.rand(5, 16, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    e_sram, e_reg = (mvm_cost(tile, x, m).energy["buffer"] for m in (sram, reg))
    assert e_reg / e_sram == pytest.approx(buffer_energy(1, reg) / buffer_energy(1, sram))
    # the tile's own input/output registers are flip-flops whatever the buffer type
    assert tile_area(tile.config, sram)["buffer"] == tile_area(tile.config, reg)["buffer"]
    with pytest.raises(ValueError, match="buffer_type.*allowed: sram, register"):
        CostModel(buffer_type="dram")


# ---------------------------------------------------------------------- area
def test_tile_area_components():
    m = CostModel(node=22e-9)
    cfg = make_tile(rows=128, cols=128, adc_bits=4).config
    a = tile_area(cfg, m)
    assert a["cells"] == pytest.approx(128 * 128 * 48 * (22e-9) ** 2)  # 1T1R, 48 F^2
    assert a["adc"] == pytest.approx(math.ceil(cfg.adc_cols / 8) * adc(4).area(m))
    assert cell_area("1R", m) < cell_area("1FeFET", m) < cell_area("1T1R", m) < cell_area(
        "1T1MTJ", m)
    # registers: one input vector (rows x DAC bits) and a partial sum per weight column
    acc = accumulator_bits(cfg, m)
    assert a["buffer"] == pytest.approx(register_area(128 * 8 + cfg.weight_cols * acc, m))
    no_in = tile_area(cfg, m, input_register=False)
    assert no_in["buffer"] == pytest.approx(register_area(cfg.weight_cols * acc, m))


def test_write_level_shifters_follow_lines_and_write_voltage():
    """A write above the logic supply (0.85 V) needs a level shifter (20,684 F^2, NeuroSim's
    validated layout) on every word, bit and source line: 2 per row + 1 per column for a
    three-terminal cell, 1 per row and column for a cross-point array; none at or below vdd."""
    m = CostModel()
    f2 = (22e-9) ** 2
    cfg = make_tile(rows=16, cols=32).config  # IdealDevice: 1T1R, 1.5 V writes
    assert cfg.device.write_voltage > m.vdd and write_lines(cfg) == 2 * 16 + 32
    assert tile_area(cfg, m)["write"] == pytest.approx(64 * 20684 * f2)
    class CrossPoint(IdealDevice):
        cell_type = "1R"

    cross = make_tile(rows=16, cols=32, device=CrossPoint(g_min=0.0, g_max=G_MAX)).config
    assert write_lines(cross) == 16 + 32
    low = make_tile(device=IdealDevice(g_min=0.0, g_max=G_MAX, write_voltage=0.8)).config
    assert tile_area(low, m)["write"] == 0.0
    # a FeFET (4 V gate writes) and PCM (2.05 V SET) need them
    for name in ("fefet-jerry2017", "pcm-joshi2020"):
        assert presets.get(name).write_voltage > m.vdd


# ---------------------------------------------------------------------- programming
def test_programming_energy_grows_with_verify_iterations():
    dev = presets.get("rram-falcone2025")
    m = CostModel()
    g = torch.full((100,), 50e-6, dtype=torch.float64)
    e = [program_cost(dev, g, pulses=1 + k, verify_iterations=k, model=m).energy
         for k in range(4)]
    per_iter = 100 * (dev.write_energy + dev.read_voltage ** 2 * 50e-6 * dev.read_time
                      + adc(m.default_adc_bits).conversion_energy(m))
    assert e[0] == pytest.approx(100 * dev.write_energy)
    assert np.diff(e) == pytest.approx([per_iter] * 3, rel=1e-12)
    c = program_cost(dev, 100, pulses=torch.full((100,), 2.0), parallel=10, model=m)
    assert c.pulses == 200 and c.time == pytest.approx(200 * dev.write_time / 10)
    with pytest.raises(ValueError, match="pulses"):
        program_cost(dev, 100, pulses=torch.ones(7))
    # counts beyond any chip or programming scheme are refused, not costed as inf
    assert math.isfinite(program_cost(dev, MAX_CELLS, pulses=MAX_PULSES_PER_CELL).energy)
    for kw in (dict(cells=MAX_CELLS + 1), dict(cells=10, pulses=1e300),
               dict(cells=10, verify_iterations=torch.full((10,), 1e13))):
        with pytest.raises(ConfigError, match=r"allowed: an integer in \[0, 1e\+15\]|"
                                              r"in \[0, 1e\+12\] per cell"):
            program_cost(dev, **kw)
    tile = make_tile()
    tc = tile_program_cost(tile, CostModel(verify_iterations=2.0))
    n = tile.state.g.numel()
    assert tc.pulses == 3 * n and tc.verify_reads == 2 * n


# ---------------------------------------------------------------------- row / column periphery
def test_decoder_and_mux_area_scale_with_rows_and_columns():
    m = CostModel(node=22e-9)
    a16 = tile_area(make_tile(rows=16, cols=16).config, m)
    a32 = tile_area(make_tile(rows=32, cols=16).config, m)
    w32 = tile_area(make_tile(rows=16, cols=32).config, m)
    t_area = 135 * (22e-9) ** 2  # Intel 22 nm logic density, 15.3 MTr/mm^2
    assert a16["decoder"] == pytest.approx(16 * 58 * t_area)  # 58 transistors per row
    assert a32["decoder"] == pytest.approx(2 * a16["decoder"])
    assert w32["decoder"] == pytest.approx(a16["decoder"])
    assert a16["mux"] == pytest.approx(16 * 4 * t_area)  # 4 transistors per column
    assert w32["mux"] == pytest.approx(2 * a16["mux"])
    assert a32["mux"] == pytest.approx(a16["mux"])


def test_decoder_energy_is_event_driven_and_mux_follows_reads():
    m = CostModel()
    tile = make_tile()
    zero = mvm_cost(tile, torch.zeros(4, 16, dtype=torch.float64), m)
    assert zero.energy["decoder"] == 0.0  # no driven row, no decoder event
    x = (torch.rand(4, 16, generator=torch.Generator().manual_seed(4)) < 0.5).double()
    c = mvm_cost(tile, x, m)
    assert c.energy["decoder"] == pytest.approx(c.active_rows * logic_energy(58, m), rel=1e-12)
    assert logic_energy(224, m) == pytest.approx(0.03e-12 * m.node / 45e-9)  # Horowitz add8
    cfg = tile.config
    lines = 4 * 7 * cfg.cols * cfg.n_arrays  # vectors x cycles x physical columns
    expect = c.conversions * logic_energy(4, m) + lines * bitline_energy(cfg, m)
    assert c.energy["mux"] == pytest.approx(expect, rel=1e-12)
    assert zero.energy["mux"] == c.energy["mux"]  # conversions run on a fixed schedule
    # a bit line twice as long holds twice the charge
    assert bitline_energy(make_tile(rows=32).config, m) == pytest.approx(
        2 * bitline_energy(cfg, m))
    area = cell_area(cfg.device.cell_type, m)
    assert bitline_energy(cfg, m) == pytest.approx(
        0.2e-15 / 1e-6 * 16 * math.sqrt(area) * cfg.device.read_voltage ** 2)


@pytest.mark.parametrize("rows_parallel", [None, 8])
def test_conversions_and_adc_energy_are_those_the_tile_performs(rows_parallel):
    """A 2 x 3 stack whose last column of tiles holds 3 of 8 weight columns and whose second
    row of tiles holds 10 of 32 rows: the cost's conversions (the tile's own used rows and
    columns by default) equal the tile's counter after the same MVM, and the ADC energy is one
    conversion energy each."""
    cfg = TileConfig(rows=32, cols=16, device=DEV, dac=DAC(bits=4, bit_serial=True),
                     adc=ADC(bits=6, range_mode="fixed", full_scale=32.0),
                     rows_parallel=rows_parallel)
    tile = Tile(cfg, (2, 3), used_weight_cols=torch.tensor([8, 8, 3]),
                used_rows=torch.tensor([[32], [10]]))
    gen = torch.Generator().manual_seed(6)
    tile.program(torch.rand(2, 3, 32, 8, generator=gen, dtype=torch.float64) * 2 - 1)
    x = torch.rand(2, 1, 5, 32, generator=gen, dtype=torch.float64)
    tile.reset_counters()
    tile.mvm(x)
    m = CostModel()
    c = mvm_cost(tile, x, m)
    g = (1, 1) if rows_parallel is None else (4, 2)  # row groups of the two rows of tiles
    assert tile.adc_conversions == 5 * 3 * sum(gi * (8 + 8 + 3) for gi in g)
    assert c.conversions == tile.adc_conversions
    assert c.energy["adc"] == pytest.approx(c.conversions * cfg.adc.conversion_energy(m),
                                            rel=1e-12)


# ---------------------------------------------------------------------- programming loops
def test_program_cost_defaults_to_the_device_loop():
    """Without counts, programming runs the preset's program-and-verify loop (18 pulses and 18
    verify reads per cell for the CMO acceptance loop), each term as its formula says."""
    dev, m = presets.get("rram-falcone2025"), CostModel()
    assert (dev.program_iterations, dev.verify_reads) == (18.0, 18.0)
    g = torch.linspace(10e-6, 80e-6, 50, dtype=torch.float64)
    c = program_cost(dev, g, model=m)
    conv = ADC()
    e_conv, t_conv = conv.conversion_energy(m), conv.conversion_time(m)
    want = (50 * 18 * dev.write_energy
            + 18 * dev.read_voltage ** 2 * dev.read_time * float(g.sum()) + 50 * 18 * e_conv)
    assert c.pulses == 50 * 18 and c.verify_reads == 50 * 18
    assert c.energy == pytest.approx(want, rel=1e-12)
    assert c.time == pytest.approx(50 * 18 * (dev.write_time + dev.read_time + t_conv))
    # the open loop of before is one pulse and no verify: the loop costs > 18x more
    open_loop = program_cost(dev, g, pulses=1.0, model=m)
    assert open_loop.energy == pytest.approx(50 * dev.write_energy)
    assert c.energy / open_loop.energy > 18
    # explicit counts keep their meaning (a missing count: 1 pulse, 0 reads)
    assert program_cost(dev, g, verify_iterations=2.0, model=m).pulses == 50
    # an open-loop device (ideal, MTJ, FeFET) costs one pulse per cell
    mtj = presets.get("mtj-neurosim")
    assert program_cost(mtj, 10, model=m).energy == pytest.approx(10 * mtj.write_energy)


def test_hermes_two_device_cell_is_costed_as_two_pcm_devices():
    one, two = presets.get("pcm-legallo2023-1dev"), presets.get("pcm-legallo2023-2dev")
    assert (one.devices_per_cell, two.devices_per_cell) == (1, 2)
    m = CostModel()
    g = torch.full((20,), 10e-6, dtype=torch.float64)
    c1, c2 = program_cost(one, g, model=m), program_cost(two, g, model=m)
    e_conv = ADC().conversion_energy(m)
    # both devices get the whole loop: 2 x pulses and 2 x conversions; a verify read of one
    # device sees its half of the cell's conductance, so the ohmic read energy is unchanged
    assert c2.pulses == 2 * c1.pulses == 2 * 20 * 18
    assert c2.verify_reads == 2 * c1.verify_reads
    read = 18 * two.read_voltage ** 2 * two.read_time * float(g.sum())
    assert c2.energy == pytest.approx(2 * 20 * 18 * (two.write_energy + e_conv) + read)
    # area: two 1T1R cells per modelled cell; bit line: rows x sqrt(2 cell areas)
    t1 = make_tile(device=dataclasses.replace(two, devices_per_cell=1))
    t2 = make_tile(device=two)
    a1, a2 = tile_area(t1.config, m)["cells"], tile_area(t2.config, m)["cells"]
    assert a2 == pytest.approx(2 * a1)
    assert a1 == pytest.approx(t1.config.n_arrays * 16 * 16 * cell_area("1T1R", m))
    assert bitline_energy(t2.config, m) == pytest.approx(
        math.sqrt(2) * bitline_energy(t1.config, m))


def test_tile_program_cost_uses_the_device_loop_unless_the_cost_model_sets_one():
    two = presets.get("pcm-legallo2023-2dev")
    tile = make_tile(device=two, w=0.5)
    n = tile.state.g.numel()
    dflt = tile_program_cost(tile)
    assert dflt.pulses == 2 * 18 * n and dflt.verify_reads == 2 * 18 * n
    loop = tile_program_cost(tile, CostModel(verify_iterations=2.0))  # 1 + 2 pulses, 2 reads
    assert loop.pulses == 2 * 3 * n and loop.verify_reads == 2 * 2 * n
    both = program_cost(two, tile.state.g, verify_adc=tile.config.adc)  # the tile's ADC verifies
    assert dflt.energy == pytest.approx(both.energy)


def test_rram_cell_read_energy_uses_the_array_read_pulse_not_the_noise_fit():
    """The CMO cells conduct for the array's 9.8 ns read pulse (the RRAM survey's median), not
    for the 1 us t_r of the noise fit that set it before: the cell energy is 102x lower, and
    V^2 G t per cell and driven cycle."""
    dev = presets.get("rram-falcone2025")
    assert dev.read_time == pytest.approx(9.8e-9) and dev.inference.read_t_r == 1e-6
    old = dataclasses.replace(dev, read_time=1e-6)
    x = torch.ones(2, 16, dtype=torch.float64)
    e = {}
    for name, d in (("new", dev), ("old", old)):
        tile = make_tile(device=d, w=0.5)
        c = mvm_cost(tile, x, CostModel())
        g = float(d.read_mean(tile.state, tile.t).sum())
        cycles = tile.config.dac.n_cycles
        assert c.energy["cells"] == pytest.approx(2 * cycles * d.read_voltage ** 2 * d.read_time
                                                  * g, rel=1e-9)
        e[name] = c.energy["cells"]
    assert e["old"] / e["new"] == pytest.approx(1e-6 / 9.8e-9, rel=1e-9)


def test_cell_read_energy_sees_the_access_transistor_in_series():
    """With a series access resistance R_s the branch conducts G / (1 + G R_s): the cell
    energy and the verify-read energy use that conductance."""
    bare = IdealDevice(g_min=0.0, g_max=G_MAX)
    fet = IdealDevice(g_min=0.0, g_max=G_MAX, access_resistance=50e3)  # G R_s = 0.5 at g_max
    x = torch.ones(1, 16, dtype=torch.float64)
    e = [mvm_cost(make_tile(device=d, w=1.0), x).energy["cells"] for d in (bare, fet)]
    ratio = e[1] / e[0]
    g_pos = G_MAX  # w = 1: the positive cell at g_max, the negative one at g_min = 0
    assert ratio == pytest.approx(1 / (1 + g_pos * 50e3), rel=1e-9)
    g = torch.full((10,), G_MAX, dtype=torch.float64)
    reads = [program_cost(d, g, pulses=0.0, verify_iterations=1.0).energy
             - 10 * ADC().conversion_energy(CostModel()) for d in (bare, fet)]
    assert reads[1] / reads[0] == pytest.approx(1 / 1.5, rel=1e-9)
