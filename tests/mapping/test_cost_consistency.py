"""The cost follows the hardware, not the simulated array: padding cells are neither
programmed nor read, whatever part of the array is simulated; every call of a layer moves its
activations; weight layers left digital are listed as not costed."""

import dataclasses

import pytest
import torch
from torch import nn

from memxbar.crossbar.cost import CostModel, weight_cells
from memxbar.crossbar.periphery import ADC, DAC
from memxbar.crossbar.tile import TileConfig
from memxbar.devices import IdealDevice, presets
from memxbar.mapping import program, to_analog
from memxbar.mapping.cost import capture_inputs, estimate_cost

IDEAL = TileConfig(rows=32, cols=32, device=IdealDevice(), read_noise="off",
                   adc=ADC(bits=6, range_mode="fixed", full_scale=8.0), dac=DAC(bits=6))
ENCODINGS = [
    {},
    {"layout": "arrays"},
    {"encoding": "offset"},
    {"weight_bits": 5, "bits_per_cell": 2},
    {"encoding": "offset", "weight_bits": 5, "bits_per_cell": 2},
]


def programmed(model: nn.Module, hw: TileConfig, **kw: object) -> nn.Module:
    torch.manual_seed(0)
    analog = to_analog(model, hw, **kw)
    return program(analog, generator=torch.Generator().manual_seed(0))


def cost(n_in: int, n_out: int, hw: TileConfig, x: torch.Tensor, cm: CostModel | None = None):
    torch.manual_seed(1)
    net = nn.Sequential(nn.Linear(n_in, n_out))
    return estimate_cost(programmed(net, hw), x, cm)


@pytest.mark.parametrize("enc", ENCODINGS)
@pytest.mark.parametrize("shape", [(20, 6), (70, 6), (20, 40)])  # one tile, row/column blocks
def test_cost_is_the_same_whatever_array_is_simulated(enc, shape):
    """Ideal wires simulate a one-tile layer on its used part only, 1e-9-ohm wires the whole
    array: programming energy and time and the cells' read energy agree."""
    n_in, n_out = shape
    hw = dataclasses.replace(IDEAL, **enc)
    x = torch.rand(3, n_in, generator=torch.Generator().manual_seed(2))
    for cm in (CostModel(), CostModel(program_pulses=2.0, verify_iterations=1.0)):
        ideal = cost(n_in, n_out, hw, x, cm)
        wired = cost(n_in, n_out, dataclasses.replace(hw, r_row=1e-9, r_col=1e-9), x, cm)
        assert wired.program_energy == pytest.approx(ideal.program_energy, rel=1e-6)
        assert wired.program_time == pytest.approx(ideal.program_time, rel=1e-6)
        cells = (wired.energy_breakdown["cells"].sum(), ideal.energy_breakdown["cells"].sum())
        assert cells[0] == pytest.approx(cells[1], rel=1e-6)


@pytest.mark.parametrize("enc", ENCODINGS)
def test_weight_cells_are_the_used_weights_physical_cells(enc):
    """The mask holds cells_per_weight cells per weight, plus the reference column on the used
    rows."""
    hw = dataclasses.replace(IDEAL, **enc, r_row=1e-9)
    analog = programmed(nn.Sequential(nn.Linear(20, 6)), hw)
    tile = analog[0].tiled.tile
    held = weight_cells(tile)
    assert held.shape == tile.state.g.shape
    ref = hw.scheme.reference_cols * 20
    assert int(held.sum()) == 20 * 6 * hw.cells_per_weight + ref


def test_programming_one_more_row_block_costs_one_more_row():
    """Linear(64, 10) vs Linear(65, 10) on 64 x 64 tiles: the second row block holds one row;
    programming energy grows with the weights (650 / 640), not with the padding."""
    hw = TileConfig(rows=64, cols=64, device=presets.get("rram-wan2022"), read_noise="off",
                    adc=ADC(bits=8, range_mode="fixed", full_scale=8.0), dac=DAC(bits=8))
    e = {n: cost(n, 10, hw, torch.rand(2, n, generator=torch.Generator().manual_seed(0)))
         for n in (64, 65)}
    assert e[65].program_energy / e[64].program_energy == pytest.approx(650 / 640, rel=0.02)
    assert e[65].program_time == pytest.approx(e[64].program_time, rel=0.02)  # 64 row steps


class Repeated(nn.Module):
    def __init__(self, calls: int) -> None:
        super().__init__()
        self.fc = nn.Linear(16, 16)
        self.calls = calls

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for _ in range(self.calls):
            x = self.fc(x)
        return x


def test_interconnect_counts_every_call():
    """A layer called twice per inference moves its activations twice; its buffer is sized by
    one call."""
    x = torch.rand(4, 16, generator=torch.Generator().manual_seed(0))
    reps, caps = {}, {}
    for n in (1, 2):
        analog = programmed(Repeated(n), IDEAL)
        caps[n] = capture_inputs(analog, x)
        reps[n] = estimate_cost(analog, caps[n])
    assert caps[2].in_total["fc"] == 2 * caps[2].in_numel["fc"] == 2 * 4 * 16
    assert caps[2].out_total["fc"] == 2 * caps[1].out_total["fc"]
    ic = {n: r.energy_breakdown.loc["fc", "interconnect"] for n, r in reps.items()}
    assert ic[2] == pytest.approx(2 * ic[1], rel=1e-3)  # the chip size is the same
    assert reps[2].area_breakdown.loc["fc", "buffer"] == pytest.approx(
        reps[1].area_breakdown.loc["fc", "buffer"], rel=1e-12)


def net3() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(16, 16), nn.ReLU(), nn.Linear(16, 256), nn.ReLU(),
                         nn.Linear(256, 4), nn.BatchNorm1d(4))


def test_digital_weight_layers_are_listed_not_costed():
    hw = dataclasses.replace(IDEAL, rows=64, cols=64)
    x = torch.rand(4, 16, generator=torch.Generator().manual_seed(0))
    part = programmed(net3(), hw, overrides={"2": None, "4": None})
    rep = estimate_cost(part, x)
    assert list(rep.layers.index) == ["0"]
    assert list(rep.digital.index) == ["2", "4"]  # BatchNorm: elementwise, not a weight layer
    assert list(rep.digital["type"]) == ["Linear", "Linear"]
    assert list(rep.digital["macs"]) == [16 * 256, 256 * 4]
    assert set(rep.digital["status"]) == {"digital, not costed"}
    line = [t for t in rep.summary().splitlines() if "not costed" in t]
    assert len(line) >= 1
    assert "2 weight layers left digital" in line[0] and "5120 MACs" in line[0]
    assert "TOPS/W cover the analog layers only" in line[0]
    full = estimate_cost(programmed(net3(), hw), x)
    assert full.digital.empty
    assert "not costed" not in full.summary()


def test_functions_after_a_digital_layer_are_billed_to_nobody():
    """The ReLU after the digital layer "2" is not billed to the analog layer "0"; the one
    after "0" still is."""
    hw = dataclasses.replace(IDEAL, rows=64, cols=64)
    x = torch.rand(4, 16, generator=torch.Generator().manual_seed(0))
    cap = capture_inputs(programmed(net3(), hw, overrides={"2": None, "4": None}), x)
    assert cap.function_ops == {"0": 4 * 16}
    assert cap.function_units == {"0": 1}
    assert cap.digital == {"2": ("Linear", 4 * 16 * 256), "4": ("Linear", 4 * 256 * 4)}


def test_digital_attention_counts_its_projections():
    """A digital nn.MultiheadAttention is one entry (its out_proj counted with it): four
    projections of E x E per token."""
    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(8, 8)
            self.att = nn.MultiheadAttention(8, 2, batch_first=True)

        def forward(self, q: torch.Tensor) -> torch.Tensor:
            q = self.fc(q)
            return self.att(q, q, q, need_weights=False)[0]

    q = torch.rand(2, 5, 8, generator=torch.Generator().manual_seed(0))
    rep = estimate_cost(programmed(Net(), IDEAL, overrides={"att": None}), q)
    assert list(rep.digital.index) == ["att"]
    assert rep.digital.loc["att", "macs"] == 4 * 5 * 8 * 8
