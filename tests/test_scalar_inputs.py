"""Arguments across the stages: a numpy scalar (taken from ``np.linspace``, a pandas column,
``np.array`` iteration) is the number it holds, and a value of the wrong kind (a scalar, a
model, a device, a study file) is a ConfigError naming the argument, never a bare TypeError /
AttributeError / ValueError from inside torch."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

from memxbar.crossbar import circuit, cost
from memxbar.crossbar.cost import CostModel, program_cost
from memxbar.crossbar.encodings.registry import make_encoding
from memxbar.crossbar.periphery import ADC, DAC, adc_models
from memxbar.crossbar.tile import Tile, TileConfig
from memxbar.devices import measured, presets
from memxbar.errors import ConfigError, seed_value
from memxbar.mapping import (
    AnalogConv2d,
    AnalogLinear,
    calibrate,
    mapping_report,
    program,
    to_analog,
)
from memxbar.mapping.cost import estimate_cost
from memxbar.mapping.layers.attention import AnalogMultiheadAttention
from memxbar.mapping.tiler import TiledMatrix
from memxbar.studies.spec import load_spec
from memxbar.training import digital, hwa, verify
from memxbar.training.online import AnalogSGD

DEV = presets.get("pcm-joshi2020")
HW = TileConfig(rows=16, cols=16, device=DEV)
i64, f32 = np.int64, np.float32


def _programmed() -> nn.Module:
    net = nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten(), nn.Linear(72, 3))
    return program(to_analog(net, HW), generator=torch.Generator().manual_seed(0))


def test_numpy_scalars_give_the_results_of_python_numbers():
    gen = torch.Generator().manual_seed(0)
    G = 1e-6 * 100 ** torch.rand(8, 8, generator=gen, dtype=torch.float64)
    V = 0.2 * torch.rand(2, 8, generator=gen, dtype=torch.float64)
    assert torch.equal(circuit.effective_conductance(G, f32(0.5), i64(1)),
                       circuit.effective_conductance(G, 0.5, 1.0))
    assert torch.equal(circuit.solve(G, V, f32(0.5), f32(2.0)), circuit.solve(G, V, 0.5, 2.0))
    lin = circuit.solve_nonlinear(G, V, 1.0, 1.0, lambda g, v: g * v, tol=f32(1e-9),
                                  max_iter=i64(20))
    assert torch.allclose(lin, circuit.solve(G, V, 1.0, 1.0), rtol=1e-9, atol=0.0)
    tile = Tile(HW, (i64(2),), used_weight_cols=i64(4), used_rows=i64(8))
    plain = Tile(HW, (2,), used_weight_cols=4, used_rows=8)
    assert tile.shape == (2,) and torch.equal(tile.used_weight_cols, plain.used_weight_cols)
    assert torch.equal(tile.used_rows, plain.used_rows)
    assert HW.conversions_per_vector(i64(4), i64(8)) == HW.conversions_per_vector(4, 8)
    assert program_cost(DEV, i64(1000), pulses=f32(3.0), verify_iterations=f32(2.0),
                        parallel=i64(4)) == program_cost(DEV, 1000, pulses=3.0,
                                                         verify_iterations=2.0, parallel=4)
    tech = CostModel()
    for model in (adc_models.SurveyADC(), adc_models.NeuroSimSAR()):
        assert model.energy(i64(8), tech) == model.energy(8, tech)
        assert model.area(i64(6), tech) == model.area(6, tech)
    assert repr(make_encoding("differential", "columns", i64(4), i64(2), DEV)) == repr(
        make_encoding("differential", "columns", 4, 2, DEV))
    assert TiledMatrix(HW, i64(8), i64(4), groups=i64(2)).in_features == 8
    layer = AnalogLinear(i64(8), i64(4), hardware=HW)
    assert type(layer.in_features) is int and layer.weight.shape == (4, 8)
    conv = AnalogConv2d(i64(2), i64(4), (i64(3), 3), stride=i64(2), padding=i64(1),
                        groups=i64(2), hardware=HW)
    assert conv.kernel_size == (3, 3) and conv.stride == (2, 2) and conv.padding == (1, 1)
    mha = AnalogMultiheadAttention(i64(8), i64(2), dropout=f32(0.25), kdim=i64(6),
                                   hardware=HW)
    assert (mha.embed_dim, mha.kdim, mha.dropout) == (8, 6, 0.25)
    model, x = _programmed(), torch.rand(1, 1, 8, 8, generator=gen)
    a, b = estimate_cost(model, x, duplication=i64(2)), estimate_cost(model, x, duplication=2)
    assert a.layers["copies"].tolist() == b.layers["copies"].tolist() == [2, 1]
    assert a.area_breakdown.equals(b.area_breakdown)
    opt = AnalogSGD(model, f32(0.01), bl=i64(31), max_pulses=i64(100), momentum=f32(0.5))
    assert (opt.bl, opt.max_pulses) == (31, 100) and type(opt.bl) is int
    state = DEV.program(torch.full((4,), 5e-6), generator=torch.Generator().manual_seed(0))
    a = DEV.disturb(state, f32(10.0), voltage=f32(0.25),
                    generator=torch.Generator().manual_seed(1))
    b = DEV.disturb(state, 10.0, voltage=0.25, generator=torch.Generator().manual_seed(1))
    assert torch.equal(a.g, b.g)
    assert seed_value(np.uint64(2**64 - 1), "x") == 2**64 - 1


_POT = [np.linspace(1e-6, 9e-6, 40) + 1e-8 * np.sin(np.arange(40))]
_DEP = [np.linspace(9e-6, 1e-6, 40) + 1e-8 * np.cos(np.arange(40))]

BAD: dict[str, tuple[Callable[[], Any], str]] = {
    "conv kernel None": (lambda: AnalogConv2d(2, 4, None, hardware=HW), "kernel_size = None"),
    "conv kernel float": (lambda: AnalogConv2d(2, 4, 3.5, hardware=HW), "kernel_size = 3.5"),
    "attention dropout > 1": (lambda: AnalogMultiheadAttention(8, 2, dropout=2.0, hardware=HW),
                              "dropout = 2.0"),
    "attention dropout str": (lambda: AnalogMultiheadAttention(8, 2, dropout="x", hardware=HW),
                              "dropout = 'x'"),
    "fit_report n_sims str": (lambda: measured.fit_report(_POT, _DEP, n_sims="x"),
                              "n_sims = 'x'"),
    "fit_report n_sims None": (lambda: measured.fit_report(_POT, _DEP, n_sims=None),
                               "n_sims = None"),
    "fit_report n_sims huge": (lambda: measured.fit_report(_POT, _DEP, n_sims=10**9),
                               "n_sims = 1000000000"),
    "fit_report seed too big": (lambda: measured.fit_report(_POT, _DEP, n_sims=4, seed=2**64),
                                "seed = 18446744073709551616"),
    "fit_report seed negative": (lambda: measured.fit_report(_POT, _DEP, n_sims=4, seed=-1),
                                 "seed = -1"),
    "sar_transistors str": (lambda: adc_models.sar_transistors("8"), "bits = '8'"),
    "plot_device seed str": (
        lambda: __import__("memxbar.devices.plots", fromlist=["plot_device"]).plot_device(
            DEV, "unused.png", seed="a", n_pulses=5), "seed = 'a'"),
    "digital seed float": (lambda: seed_value(1.5, "train"), "seed = 1.5"),
    "plot_device n_pulses None": (
        lambda: __import__("memxbar.devices.plots", fromlist=["plot_device"]).plot_device(
            DEV, "unused.png", n_pulses=None), "n_pulses = None"),
    "plot_device n_pulses huge": (  # 1e9 pulses ran for many minutes
        lambda: __import__("memxbar.devices.plots", fromlist=["plot_device"]).plot_device(
            DEV, "unused.png", n_pulses=10**9), "n_pulses = 1000000000"),
    "pulse_trace n_up float": (
        lambda: __import__("memxbar.devices.plots", fromlist=["pulse_trace"]).pulse_trace(
            DEV, 2.5, 3), "n_up = 2.5"),
    "mapping_report of a str": (lambda: mapping_report("model"), "the model is a str"),
    "calibrate without batches": (lambda: calibrate(_programmed(), None), "type NoneType"),
    "train a str": (lambda: digital.train("net", [], epochs=1, lr=0.1), "model = str"),
    "evaluate a str": (lambda: digital.evaluate("net", []), "model = str"),
    "hardware_aware_train a str": (
        lambda: hwa.hardware_aware_train("net", HW, [], epochs=1, lr=0.1), "model = str"),
    "program_verify a str device": (
        lambda: verify.program_verify("pcm", torch.full((2,), 5e-6), tolerance=1e-7),
        "device = 'pcm'"),
    "load_spec of an int": (lambda: load_spec(3), "study file = 3"),
    "frozen_fraction of a str": (lambda: _tile().frozen_fraction("1 day"), "t = '1 day' s"),
    "weight_cells of a str": (lambda: _tile().weight_cells("m"), "m is a str"),
    "physical_cells of the wrong shape": (lambda: _tile().physical_cells(torch.zeros(3, 8)),
                                          "cells has shape (3, 8)"),
    "DAC codes of a numpy array": (lambda: DAC(bits=8).encode(np.ones(3)), "ndarray"),
    "DAC quantize of integers": (lambda: DAC(bits=8).quantize(torch.ones(3, dtype=torch.long)),
                                 "dtype torch.int64"),
    "ADC full scales of None": (lambda: ADC(bits=8, range_mode="calibrated").full_scales(None),
                                "NoneType"),
    "ADC energy without a CostModel": (
        lambda: ADC(bits=8, range_mode="calibrated").conversion_energy("22nm"),
                                       "tech = '22nm'"),
    "DAC area without a CostModel": (lambda: DAC(bits=8).area(None), "tech = None"),
    # the cost model's building blocks (a negative count gave a negative energy or a
    # converter count of -1, NaN bits a NaN energy)
    "buffer energy of NaN bits": (lambda: cost.buffer_energy(float("nan"), CostModel()),
                                  "bits = nan"),
    "logic energy of negative transistors": (lambda: cost.logic_energy(-3, CostModel()),
                                             "transistors = -3"),
    "logic area of a str": (lambda: cost.logic_area("8", CostModel()), "bits = '8'"),
    "converters of -1 columns": (lambda: cost.converters(HW, -1), "used_weight_cols = -1"),
    "converters of too many columns": (lambda: cost.converters(HW, 100),
                                       "used_weight_cols = 100"),
    "row groups of -1 rows": (lambda: cost.row_groups(HW, -1), "rows = -1"),
    "accumulator of 2.5 groups": (lambda: cost.accumulator_bits(HW, CostModel(), 2.5),
                                  "groups = 2.5"),
    "latency of -2 groups": (lambda: cost.mvm_latency(HW, CostModel(), -2), "groups = -2"),
    "ir_tolerance of an integer dtype": (lambda: _tile().ir_tolerance(torch.int64),
                                         "dtype = torch.int64"),
    "ir_tolerance of a str": (lambda: _tile().ir_tolerance("float32"), "dtype = 'float32'"),
    # an ideal ADC needs no calibration, but an input of the wrong width is still wrong
    "calibrate_adc with the wrong width": (lambda: _tile().calibrate_adc(torch.ones(3, 5)),
                                           "(3, 5)"),
    # 1e300 s is finite, but not in the cells' float32
    "read time beyond float32": (lambda: _tile().set_time(1e300), "at most 3.4e+38 s"),
}


def _tile() -> Tile:
    tile = Tile(HW)
    tile.program(torch.zeros(HW.rows, HW.weight_cols), generator=torch.Generator().manual_seed(0))
    return tile


@pytest.mark.parametrize("case", BAD)
def test_wrong_kinds_of_scalars_are_config_errors(case, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # nothing may be written before the refusal
    fn, shown = BAD[case]
    with pytest.raises(ConfigError, match="allowed") as info:
        fn()
    assert shown in str(info.value)
    assert not any(tmp_path.iterdir())
