"""Edge-case inputs: empty and unbatched batches, other dtypes, percentiles of large layers."""

import pytest
import torch
from torch import nn

from memxbar.crossbar.tile import TileConfig
from memxbar.devices import IdealDevice
from memxbar.errors import ConfigError
from memxbar.mapping import (
    MappingConfig,
    TiledMatrix,
    apply_read_disturb,
    calibrate,
    estimate_cost,
    program,
    to_analog,
)
from memxbar.mapping.tiler import percentile


def hw(**k: object) -> TileConfig:
    return TileConfig(**{"rows": 32, "cols": 32, "device": IdealDevice(), **k})


@pytest.mark.parametrize("scaling", ["dynamic", "fixed"])
def test_an_empty_batch_gives_an_empty_output(scaling):
    mapping = MappingConfig(input_scaling=scaling)
    lin = program(to_analog(nn.Sequential(nn.Linear(8, 4)), hw(), mapping=mapping))
    conv = program(to_analog(nn.Sequential(nn.Conv2d(4, 6, 3, groups=2)), hw(),
                             mapping=mapping))
    with torch.no_grad():
        assert lin(torch.randn(0, 8)).shape == (0, 4)
        assert lin(torch.randn(2, 0, 8)).shape == (2, 0, 4)
        assert conv(torch.randn(0, 4, 8, 8)).shape == (0, 6, 6, 6)
    x = torch.randn(0, 8, requires_grad=True)
    lin(x).sum().backward()
    assert x.grad is not None and x.grad.shape == (0, 8)
    assert float(lin[0].weight.grad.abs().sum()) == 0.0
    xc = torch.randn(0, 4, 8, 8, requires_grad=True)
    conv(xc).sum().backward()
    assert xc.grad is not None and xc.grad.shape == (0, 4, 8, 8)
    tiled = lin[0].tiled
    assert tiled.forward(torch.randn(0, 8)).shape == (0, 4)


def test_an_empty_calibration_batch_is_refused():
    a = program(to_analog(nn.Sequential(nn.Linear(8, 4)), hw()))
    with pytest.raises(ConfigError, match=r"calibrate: batch 0 is empty .*allowed: "):
        calibrate(a, torch.randn(0, 8))
    with pytest.raises(ConfigError, match=r"calibrate_adc: x is an empty batch.*allowed: "):
        a[0].tiled.calibrate_adc(torch.randn(0, 8))


def test_unbatched_example_inputs_are_refused_naming_the_batched_shape():
    lin = program(to_analog(nn.Sequential(nn.Linear(8, 4)), hw()))
    conv = program(to_analog(nn.Sequential(nn.Conv2d(3, 4, 3)), hw()))
    with pytest.raises(ConfigError, match=r"unbatched input of shape \(8,\).*\(batch, \.\.\., 8\)"):
        estimate_cost(lin, torch.randn(8))
    with pytest.raises(ConfigError, match=r"unbatched input of shape \(3, 8, 8\).*\(batch, 3, "):
        estimate_cost(conv, torch.randn(3, 8, 8))
    with pytest.raises(ConfigError, match=r"unbatched input.*allowed: "):
        apply_read_disturb(conv, 10, torch.randn(3, 8, 8))
    assert estimate_cost(lin, torch.randn(1, 8)) is not None  # the batched form works


@pytest.mark.parametrize("batch_first", [False, True])
def test_attention_counts_its_batch_and_refuses_an_unbatched_sequence(batch_first):
    """Its projections would see the (L, E) rows of an unbatched sequence as L inferences,
    and a sequence-first batch (L, N, E) held its batch in dimension 1: the cost per inference
    was divided by the sequence length."""
    enc = nn.TransformerEncoderLayer(16, 2, dim_feedforward=32, dropout=0.0,
                                     batch_first=batch_first)
    a = program(to_analog(nn.Sequential(enc), hw()))
    order = "batch, sequence" if batch_first else "sequence, batch"
    with pytest.raises(ConfigError, match=rf"'0.self_attn' got an unbatched input of shape "
                                          rf"\(5, 16\).*\({order}, embedding\)"):
        estimate_cost(a, torch.randn(5, 16))
    # the batch is the attention's batch dimension: 1 or 3 sequences of 5 cost the same each
    one, three = (estimate_cost(a, torch.randn(*((n, 5) if batch_first else (5, n)), 16))
                  for n in (1, 3))
    assert (one.inferences, three.inferences) == (1, 3)
    assert three.energy == pytest.approx(one.energy, rel=0.05)


def test_a_matrix_refuses_inputs_of_another_dtype():
    a = program(to_analog(nn.Sequential(nn.Linear(8, 4)), hw()))
    tiled: TiledMatrix = a[0].tiled
    with pytest.raises(ConfigError, match=r"input dtype torch.float64 differs .*float32"):
        tiled.forward(torch.randn(3, 8, dtype=torch.float64))
    with pytest.raises(ConfigError, match=r"input dtype torch.float64"):
        a[0](torch.randn(3, 8, dtype=torch.float64))  # as the layer does
    assert tiled.double().forward(torch.randn(3, 8, dtype=torch.float64)).dtype == torch.float64


def test_percentile_matches_torch_quantile_and_has_no_size_limit():
    torch.manual_seed(0)
    for shape in ((7,), (5, 13), (3, 1), (2, 100)):
        x = torch.randn(shape, dtype=torch.float64)
        for p in (0.0, 12.5, 50.0, 99.0, 99.9, 100.0):
            torch.testing.assert_close(percentile(x, p), torch.quantile(x, p / 100, dim=-1))
    m = nn.Linear(4096, 4100)  # more than the 2^24 elements torch.quantile takes
    tiled = TiledMatrix(hw(rows=512, cols=512), 4096, 4100,
                        MappingConfig(weight_scaling="layer", weight_clip="percentile"))
    bound = tiled.weight_bounds(m.weight)
    # |W| is uniform on [0, 1 / 64]: its p-th percentile is p / 100 / 64
    assert bound.shape == (4100,) and bool((bound == bound[0]).all())
    assert abs(float(bound[0]) - tiled.mapping.clip_value / 100 / 64) < 2e-5


@pytest.mark.parametrize("dac_bits", [0, 8])
def test_the_cost_drives_the_rows_as_the_forward_does(dac_bits):
    """Fixed input range 1, inputs of 3: an ideal DAC drives them unclipped (3x the read
    voltage: 9x the cells' energy, and 3x the output), a quantizing one saturates (1x)."""
    from memxbar.crossbar.periphery import DAC

    torch.manual_seed(0)
    lin = nn.Linear(16, 4)
    a = program(to_analog(nn.Sequential(lin), hw(read_noise="off", dac=DAC(bits=dac_bits)),
                          mapping=MappingConfig(input_scaling="fixed", input_range=1.0)))
    x1, x3 = torch.full((1, 16), 1.0), torch.full((1, 16), 3.0)
    with torch.no_grad():
        gain = float(((a(x3) - lin.bias) / (a(x1) - lin.bias)).mean())
    cells = [float(estimate_cost(a, x).energy_breakdown["cells"].sum()) for x in (x1, x3)]
    want = 3.0 if dac_bits == 0 else 1.0
    assert gain == pytest.approx(want, rel=1e-3)
    assert cells[1] / cells[0] == pytest.approx(want**2, rel=1e-3)
