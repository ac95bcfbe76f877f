"""Periphery: quantizers (exact levels, saturation, monotonic, straight-through), DAC encodings
(one-shot / bit-serial, signed voltage / two-phase), ADC configuration, shift-add, ADC ranging
against the tile's former numerics, the ADC model registry and DAC cost against the figures the
cost model gave before they moved onto the objects, and hardware-aware training's ADC against
the tile's."""

from __future__ import annotations

import dataclasses
import itertools

import numpy as np
import pytest
import torch
from torch import nn

from memxbar.crossbar.cost import CostModel
from memxbar.crossbar.periphery import (
    ADC,
    ADC_MODELS,
    DAC,
    ADCModel,
    quantize,
    shift_add,
    signed_levels,
)
from memxbar.crossbar.tile import Tile, TileConfig
from memxbar.devices import IdealDevice
from memxbar.errors import ConfigError
from memxbar.mapping import MappingConfig, program, to_analog
from memxbar.training import hwa


@pytest.mark.parametrize("bits", [2, 3, 4, 8])
def test_quantize_hits_exact_levels_and_saturates(bits: int) -> None:
    fs = 2.5
    n = 2 ** (bits - 1) - 1
    x = torch.linspace(-2 * fs, 2 * fs, 4001, dtype=torch.float64)
    q = quantize(x, bits, fs)
    k = q * n / fs
    assert torch.allclose(k, torch.round(k), rtol=0, atol=1e-9)  # on a level k * fs / n
    k = torch.round(k)
    assert k.abs().max() == n and len(torch.unique(k)) == 2 * n + 1  # 2^b - 1 levels, all used
    inside = x.abs() <= fs
    assert (q[inside] - x[inside]).abs().max() <= 0.5 * fs / n + 1e-12  # half an LSB
    assert torch.all(q[x > fs] == fs) and torch.all(q[x < -fs] == -fs)  # saturation
    assert torch.all(q[1:] >= q[:-1])                       # monotonic
    levels = torch.arange(-n, n + 1, dtype=torch.float64) * fs / n
    assert torch.allclose(quantize(levels, bits, fs), levels, rtol=0, atol=1e-15)  # fixed points


def test_quantize_ideal_per_column_and_ste() -> None:
    x = torch.tensor([[-7.0, 0.3, 9.0]])
    assert torch.equal(quantize(x, 0, 1.0), x)  # bits 0: no quantization, no clipping
    fs = torch.tensor([8.0, 1.0, 2.0])  # one full scale per column
    assert torch.equal(quantize(x, 2, fs), torch.tensor([[-8.0, 0.0, 2.0]]))
    xr = torch.linspace(-3, 3, 13, requires_grad=True)
    quantize(xr, 3, 1.0, ste=True).sum().backward()
    assert torch.equal(xr.grad, torch.ones(13))  # straight-through, saturated region included
    assert torch.equal(quantize(xr, 3, 1.0, ste=True), quantize(xr.detach(), 3, 1.0))
    assert signed_levels(8) == 127


@pytest.mark.parametrize("fs,words", [
    (0.0, "finite number > 0"), (-2.0, "finite number > 0"), (float("nan"), "finite number"),
    (True, "finite number"), ("1", "finite number"),
    (torch.tensor([1.0, 0.0, 2.0]), "1 value(s) <= 0"),
    (torch.tensor([1.0, -1.0, float("inf")]), "2 value(s)"),
    (torch.ones(2), "broadcasts"), (torch.ones(2, 1, 3), "broadcasts"),
    (torch.ones(3, dtype=torch.int64), "floating-point")])
def test_converters_refuse_a_scale_that_would_give_wrong_levels(fs: object, words: str
                                                                  ) -> None:
    # a zero scale gave zeros (or saturated codes), a negative one sign-flipped levels, a
    # short tensor a bare broadcasting RuntimeError
    x = torch.tensor([[-0.5, 0.3, 0.9]])
    calls = [("quantize: full_scale", lambda: ADC(bits=4, range_mode="calibrated").quantize(
        x, fs)), ("DAC.codes: scale", lambda: DAC(bits=4).codes(x, fs)),
        ("DAC.codes: scale", lambda: DAC(bits=4, bit_serial=True).encode(x, fs))]
    for owner, call in calls:
        with pytest.raises(ConfigError, match="allowed") as err:
            call()
        assert words in str(err.value) and str(err.value).startswith(owner)
    assert torch.equal(quantize(x, 4, np.float64(1.0)), quantize(x, 4, 1.0))  # numpy scalar
    assert torch.equal(DAC(bits=4).codes(x, np.float32(2.0)), DAC(bits=4).codes(x, 2.0))


@pytest.mark.parametrize("amax,words", [
    (torch.tensor(2.0), "(..., K)"), (torch.ones(3, 0), "(..., K)"),
    (torch.tensor([1.0, -1.0]), "< 0"), (torch.tensor([1.0, float("nan")]), "not finite")])
def test_full_scales_refuse_maxima_that_are_not_maxima(amax: torch.Tensor, words: str) -> None:
    with pytest.raises(ConfigError, match="allowed") as err:
        ADC(bits=8, range_mode="per_column").full_scales(amax)
    assert words in str(err.value)


def test_tile_mvm_rows_refuses_a_bad_input_scale() -> None:
    tile = Tile(TileConfig(rows=4, cols=6, device=IdealDevice(), dac=DAC(bits=6)), (1, 2))
    tile.program(torch.rand(1, 2, 4, 3) * 2 - 1, generator=torch.Generator().manual_seed(0))
    x = torch.rand(1, 5, 4)
    good = tile.mvm_rows(x, torch.full((1, 5, 1), 2.0))
    assert torch.allclose(good, tile.mvm_rows(x / 2.0), atol=1e-6)
    for scale in (torch.full((1, 5, 1), -2.0), torch.zeros(1, 5, 1), torch.ones(1, 3, 1)):
        with pytest.raises(ConfigError, match="DAC.codes: scale"):
            tile.mvm_rows(x, scale)


@pytest.mark.parametrize("bits,serial,signed", list(itertools.product(
    [2, 5, 8], [False, True], ["voltage", "two_phase"])) + [(0, False, "voltage"),
                                                            (0, False, "two_phase")])
def test_dac_encode_recombines_exactly(bits: int, serial: bool, signed: str) -> None:
    dac = DAC(bits=bits, input_range=0.8, bit_serial=serial, signed=signed)
    x = torch.linspace(-1.2, 1.2, 600, dtype=torch.float64).reshape(3, 200, 1)
    planes, weights, volt = dac.encode(x)
    assert planes.shape == (dac.n_cycles, *x.shape) and len(weights) == dac.n_cycles
    rec = dac.input_range * volt * shift_add(planes, weights, dim=0)
    assert torch.allclose(rec, dac.quantize(x), rtol=0, atol=1e-12)
    v = planes * volt  # row voltages in units of V_read
    assert v.abs().max() <= 1.0 + 1e-12 or bits == 0
    if serial:
        assert set(torch.unique(planes).tolist()) <= {-1.0, 0.0, 1.0}
    if signed == "two_phase":
        assert planes.min() >= 0  # only 0 ... V_read applied
    if bits:
        big = torch.tensor([5.0, -5.0], dtype=torch.float64)
        assert dac.quantize(big).tolist() == [0.8, -0.8]  # saturates at the input range


@pytest.mark.parametrize("bits,input_range", [(8, 1.0), (6, 2.0), (5, 0.5), (0, 1.0)])
def test_dac_codes_written_into_a_buffer_equal_the_encoded_codes(bits: int,
                                                                 input_range: float) -> None:
    """``DAC.codes`` from a strided (transposed) view into a buffer, scaled per column, gives
    the one-shot codes of ``encode`` bit for bit; the clip it may skip cannot act when
    ``|x| <= scale`` and ``input_range >= 1``, and does act below."""
    dac = DAC(bits=bits, input_range=input_range)
    x = torch.randn(50, 40, generator=torch.Generator().manual_seed(0))
    scale = x.abs().amax(0, keepdim=True)  # per column: |x| <= scale
    want = dac.encode(x, scale)[0][0]
    out = torch.empty(40, 50)
    got = dac.codes(x.t(), scale.t(), out=out)
    assert got.data_ptr() == out.data_ptr() and torch.equal(got.t(), want)
    assert dac.step_volts == (1.0 if bits == 0 else 1.0 / (2 ** (bits - 1) - 1))
    free = dac.codes(x, scale, saturate=False)
    n = 2 ** (bits - 1) - 1
    if input_range >= 1.0 or bits == 0:
        assert torch.equal(free, want)
    else:  # x / scale reaches 1 = twice the input range: only the clip keeps the codes in range
        assert float(free.abs().max()) == 2 * n and float(want.abs().max()) == n


def test_shift_add_matches_powers_of_two() -> None:
    parts = torch.tensor([[1.0, 0.0], [1.0, 1.0], [0.0, 1.0]])  # bits 0, 1, 2 of two numbers
    assert torch.equal(shift_add(parts, [1.0, 2.0, 4.0]), torch.tensor([3.0, 6.0]))


@pytest.mark.parametrize("kwargs,words", [
    (dict(bits=1), ["DAC.bits", "1", "[2, 24]"]),
    (dict(bits=8, input_range=0.0), ["DAC.input_range", "0.0", "(0.0, inf)"]),
    (dict(bits=0, bit_serial=True), ["bit_serial", "bits >= 2"]),
    (dict(bits=4, signed="offset"), ["DAC.signed", "'offset'", "two_phase"]),
])
def test_dac_validation(kwargs: dict, words: list[str]) -> None:
    with pytest.raises(ValueError) as err:
        DAC(**kwargs)
    assert all(w in str(err.value) for w in words)


@pytest.mark.parametrize("kwargs,words", [
    (dict(bits=-3), ["ADC.bits", "-3"]),
    (dict(bits=8), ["ADC.full_scale", "None", "range_mode='fixed'"]),
    (dict(bits=8, full_scale=-1.0), ["ADC.full_scale", "-1.0", "(0.0, 1048576.0]"]),
    (dict(bits=1), ["ADC.bits", "1", "[2, 24]"]),
    (dict(bits=4, full_scale=1.0, model="flash"), ["ADC.model", "'flash'", "'neurosim'"]),
    (dict(bits=8, range_mode="auto"), ["ADC.range_mode", "'auto'", "per_column"]),
    (dict(bits=8, range_mode="calibrated", full_scale=3.0), ["ADC.full_scale", "calibrated"]),
])
def test_adc_validation(kwargs: dict, words: list[str]) -> None:
    with pytest.raises(ValueError) as err:
        ADC(**kwargs)
    assert all(w in str(err.value) for w in words)


def test_adc_convert_levels() -> None:
    adc = ADC(bits=4, full_scale=7.0)
    assert adc.levels == 7
    y = torch.tensor([-100.0, -3.4, 0.49, 2.5, 6.6, 100.0])
    assert adc.quantize(y, adc.full_scale).tolist() == [-7.0, -3.0, 0.0, 2.0, 7.0, 7.0]
    assert ADC().levels == 0 and torch.equal(ADC().quantize(y, 1.0), y)
    codes = y * (adc.levels / adc.full_scale)
    assert adc.to_codes(codes.clone()).tolist() == [-7.0, -3.0, 0.0, 2.0, 7.0, 7.0]
    assert torch.equal(ADC().to_codes(y.clone()), y)


# ---------------------------------------------------------------------- ADC ranging
def _tile_full_scale(amax: torch.Tensor, mode: str) -> torch.Tensor:
    """Tile._full_scale before the ADC owned its ranging (commit 171823c), for (*shape, 1, K)."""
    tile = amax.amax(dim=(-2, -1), keepdim=True)
    tile = torch.where(tile > 0, tile, torch.ones_like(tile))
    if mode == "calibrated":
        return tile.expand_as(amax).clone()
    return torch.where(amax > 0, amax, tile)


@pytest.mark.parametrize("mode", ["calibrated", "per_column"])
def test_full_scales_equal_the_tile_ranging_they_replace(mode: str) -> None:
    gen = torch.Generator().manual_seed(0)
    amax = torch.rand(3, 4, 1, 9, generator=gen, dtype=torch.float64)
    amax[amax < 0.3] = 0.0  # converters that saw only zeros
    amax[1, 2] = 0.0  # a tile that saw only zeros
    fs = ADC(bits=6, range_mode=mode).full_scales(amax)
    assert fs.shape == amax.shape
    assert torch.equal(fs, _tile_full_scale(amax, mode))
    assert torch.equal(fs[1, 2], torch.ones(1, 9, dtype=torch.float64))
    fixed = ADC(bits=6, full_scale=5.0).full_scales(amax)
    assert torch.equal(fixed, torch.full_like(amax, 5.0))


# ---------------------------------------------------------------------- ADC / DAC cost
# Figures of crossbar.cost's adc_energy / adc_area / adc_conversion_time / dac_energy / dac_area
# at commit 171823c (before the ADC and DAC objects owned them), default survey selection.
HEAD_ADC = {  # (model, node nm, bits): (J per conversion, m^2, s)
    ("survey", 22, 4): (4.0307789018664974e-13, 1.0072535060075742e-09, 5e-09),
    ("survey", 22, 8): (6.4492462429863958e-12, 1.6116056096121188e-08, 9e-09),
    ("survey", 7, 12): (1.0318793988778233e-10, 2.5785689753793901e-07, 1.3e-08),
    ("neurosim", 22, 4): (3.0946500000000002e-14, 6.6908160000000002e-11, 5e-09),
    ("neurosim", 22, 5): (4.1463600000000003e-14, 7.8800039999999999e-11, 6e-09),
    ("neurosim", 45, 8): (2.6464859999999999e-13, 4.7895300000000001e-10, 9e-09),
    ("neurosim", 7, 12): (4.0194699999999997e-14, 1.64052e-11, 1.3e-08),
}
HEAD_DAC = {  # (bits, node nm): (J per event on 128 columns, m^2)
    (1, 22): (2.6812499999999999e-15, 7.8460937499999974e-14),
    (3, 32): (1.5600000000000001e-14, 6.64e-13),
    (8, 22): (3.4319999999999999e-13, 1.0042999999999997e-11),
}


@pytest.mark.parametrize("key", sorted(HEAD_ADC))
def test_adc_models_give_the_figures_of_the_former_cost_functions(key: tuple) -> None:
    model, nm, bits = key
    adc = ADC(bits=bits, full_scale=1.0, model=model)
    tech = CostModel(node=nm * 1e-9)
    e, a, t = HEAD_ADC[key]
    assert adc.conversion_energy(tech) == pytest.approx(e, rel=1e-12)
    assert adc.area(tech) == pytest.approx(a, rel=1e-12)
    assert adc.conversion_time(tech) == pytest.approx(t, rel=1e-12)
    assert ADC_MODELS[model].energy(bits, tech) == pytest.approx(e, rel=1e-12)
    # an ideal ADC is costed at the cost model's default resolution
    ideal = ADC(model=model)
    assert ideal.cost_bits(tech) == tech.default_adc_bits == 8
    assert ideal.conversion_energy(tech) == ADC(bits=8, full_scale=1.0,
                                                model=model).conversion_energy(tech)


def test_adc_model_registry_and_its_refusals() -> None:
    assert set(ADC_MODELS) == {"survey", "neurosim"}
    assert all(isinstance(m, ADCModel) and m.source for m in ADC_MODELS.values())
    # the field's declared options are the registry (the study schema is generated from them)
    meta = {f.name: f.metadata["param"] for f in dataclasses.fields(ADC)}
    assert meta["model"]["options"] == tuple(ADC_MODELS)
    assert meta["range_mode"]["options"] == ("fixed", "calibrated", "per_column")
    ns = ADC(bits=5, full_scale=1.0, model="neurosim")
    with pytest.raises(ConfigError, match=r"CostModel.node = 2e-08 m is not allowed with "
                                          r"ADC.model = 'neurosim'.*22e-9"):
        ns.conversion_energy(CostModel(node=20e-9))
    with pytest.raises(ConfigError, match="node"):
        ns.check_cost(CostModel(node=20e-9))
    ADC(bits=5, full_scale=1.0).check_cost(CostModel(node=20e-9))  # the survey is node-free
    with pytest.raises(ConfigError, match="bits = 0"):
        ADC_MODELS["survey"].energy(0, CostModel())


@pytest.mark.parametrize("key", sorted(HEAD_DAC))
def test_dac_cost_gives_the_figures_of_the_former_cost_functions(key: tuple) -> None:
    bits, nm = key
    tech = CostModel(node=nm * 1e-9)
    e, a = HEAD_DAC[key]
    one_shot = DAC(bits=bits) if bits > 1 else DAC(bits=8, bit_serial=True)
    assert one_shot.driver_bits(tech) == bits
    assert one_shot.energy(tech, 128) == pytest.approx(e, rel=1e-12)
    assert one_shot.area(tech) == pytest.approx(a, rel=1e-12)
    assert one_shot.energy(tech, 256) == pytest.approx(2 * e, rel=1e-12)  # row load ~ columns
    assert DAC().code_bits(tech) == tech.default_dac_bits


# ---------------------------------------------------------------------- one ADC everywhere
@pytest.mark.parametrize("rows_parallel", [None, 4])
@pytest.mark.parametrize("adc", [ADC(bits=5, range_mode="calibrated"),
                                 ADC(bits=5, range_mode="per_column"),
                                 ADC(bits=4, range_mode="fixed", full_scale=3.0)])
def test_hardware_aware_training_converts_as_the_tile(adc: ADC, rows_parallel: int | None
                                                      ) -> None:
    """The straight-through periphery forward of hardware-aware training and the programmed
    tile (ideal cells, one-shot DAC) give the same outputs on the same inputs; calibrated and
    per-column ranges come from the same batch (the tile calibrated on it, training's stand-in
    from its largest values). Linear(19, 7) on 8 x 12 tiles: 3 x 2 tiles, the last column block
    one output wide; all 8 rows at once or two row groups of 4, each converted and ranged on
    its own."""
    hw = TileConfig(rows=8, cols=12, device=IdealDevice(), dac=DAC(bits=5), adc=adc,
                    rows_parallel=rows_parallel)
    torch.manual_seed(14)
    module = nn.Linear(19, 7).double()
    x = torch.randn(9, 19, generator=torch.Generator().manual_seed(15), dtype=torch.float64)
    mapping = MappingConfig()
    layers = hwa._find_layers(nn.Sequential(module), hw, mapping, None)
    forward = hwa._periphery_forward(layers[0], mapping, {})
    analog = program(to_analog(module, hw, mapping=mapping), calibration=x)
    want, got = analog(x).detach(), forward(x).detach()
    # a one-level flip where the two float paths straddle a rounding threshold is allowed
    lsb = float(want.abs().max()) / 15 * 3
    diff = (got - want).abs()
    assert float(diff.max()) <= lsb
    assert int((diff > 1e-9).sum()) <= max(1, want.numel() // 50)
    assert float(diff.mean()) < 1e-2 * float(want.abs().mean())


def test_an_ideal_adc_refuses_a_full_scale_it_would_ignore():
    with pytest.raises(ConfigError, match=r"full_scale = 0.5 is not allowed with bits = 0.*"
                                          r"allowed: None, or bits >= 2"):
        ADC(full_scale=0.5)
    assert ADC(bits=4, full_scale=0.5).full_scale == 0.5


def test_shift_add_names_mismatched_parts_and_weights():
    from memxbar.crossbar.periphery.quantize import shift_add

    parts = torch.ones(2, 3)
    assert shift_add(parts, [1.0, 2.0]).tolist() == [3.0, 3.0, 3.0]
    with pytest.raises(ConfigError, match=r"\(3,\) weights for 2 parts along dim 0; allowed: "):
        shift_add(parts, [1.0, 2.0, 4.0])
    with pytest.raises(ConfigError, match=r"dim = 5 .*allowed: "):
        shift_add(parts, [1.0, 2.0], dim=5)
