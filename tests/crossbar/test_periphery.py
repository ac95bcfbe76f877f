"""Periphery: quantizers (exact levels, saturation, monotonic, straight-through), DAC encodings
(one-shot / bit-serial, signed voltage / two-phase), ADC configuration, shift-add."""

from __future__ import annotations

import itertools

import pytest
import torch

from memxbar.crossbar.periphery import ADC, DAC, quantize, shift_add, signed_levels


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


def test_shift_add_matches_powers_of_two() -> None:
    parts = torch.tensor([[1.0, 0.0], [1.0, 1.0], [0.0, 1.0]])  # bits 0, 1, 2 of two numbers
    assert torch.equal(shift_add(parts, [1.0, 2.0, 4.0]), torch.tensor([3.0, 6.0]))


@pytest.mark.parametrize("kwargs,words", [
    (dict(bits=1), ["DAC.bits", "1", "[2, 24]"]),
    (dict(bits=8, input_range=0.0), ["DAC.input_range", "0.0", "> 0"]),
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
    (dict(bits=8, full_scale=-1.0), ["ADC.full_scale", "-1.0", "> 0"]),
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
    assert adc.convert(y, adc.full_scale).tolist() == [-7.0, -3.0, 0.0, 2.0, 7.0, 7.0]
    assert ADC().levels == 0 and torch.equal(ADC().convert(y, 1.0), y)
