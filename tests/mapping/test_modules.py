"""Analog layers are modules all the way down: dtype and torch-device moves after programming,
state_dict round trips, refused corrupted state_dicts, the calibration protocol, no import
cycle in the mapping stage."""

import ast
import math
from pathlib import Path

import pytest
import torch
from helpers import assert_quantized_close
from torch import nn

from memxbar.crossbar.periphery import ADC, DAC
from memxbar.crossbar.tile import TileConfig
from memxbar.devices import presets
from memxbar.errors import ConfigError
from memxbar.mapping import MappingConfig, analog_layers, calibrate, drift, program, to_analog

DAY = 86400.0


def model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(2, 4, 3, padding=1), nn.ReLU(), nn.Flatten(),
                         nn.Linear(4 * 6 * 6, 10)).eval()


def hardware(read_noise: str = "per_read") -> TileConfig:
    return TileConfig(rows=32, cols=32, device=presets.get("pcm-joshi2020"), dac=DAC(bits=8),
                      adc=ADC(bits=8, range_mode="per_column"), read_noise=read_noise)


MAPPING = MappingConfig(compensation="column", input_scaling="calibrated")
X = torch.rand(16, 2, 6, 6)


def programmed(read_noise: str = "per_read") -> nn.Module:
    analog = to_analog(model(), hardware(read_noise), mapping=MAPPING)
    program(analog, generator=torch.Generator().manual_seed(0), calibration=X)
    return drift(analog, DAY)


def test_double_after_programming_matches_float32():
    analog = programmed()
    with torch.no_grad():
        y32 = analog(X)
        y64 = analog.double()(X.double())
    assert y64.dtype == torch.float64
    assert all(b.dtype == torch.float64 for b in analog.buffers() if b.is_floating_point())
    # the same conductances in more precision: an ADC code on a rounding tie may flip, and a
    # flip in the convolution moves the samples it feeds by less than a level of the last
    # layer (seen once in CI: 21 of 160 outputs off by 1.4e-3); most outputs agree exactly
    diff = (y64.float() - y32).abs()
    assert float((diff <= 1e-4).double().mean()) >= 0.8
    assert float(diff.max()) <= 0.05 * float(y32.abs().max())
    with pytest.raises(ConfigError, match="dtype torch.float32 differs"):
        analog(X)


@pytest.mark.parametrize("read_noise", ["per_read", "per_mvm"])
def test_state_dict_round_trip_into_a_fresh_converted_model(read_noise):
    analog = programmed(read_noise)
    fresh = to_analog(model(), hardware(read_noise), mapping=MAPPING)
    fresh.load_state_dict(analog.state_dict())
    for (_, a), (_, b) in zip(analog_layers(analog), analog_layers(fresh), strict=True):
        assert b.programmed
        torch.testing.assert_close(a.tiled.effective_weight(), b.tiled.effective_weight(),
                                   rtol=0, atol=0)
        a.generator = torch.Generator().manual_seed(7)
        b.generator = torch.Generator().manual_seed(7)
    with torch.no_grad():
        assert_quantized_close(fresh(X), analog(X), 0.1, max_fraction=0.02, atol=1e-5)


def test_corrupted_or_mismatched_state_dicts_are_refused_naming_the_key():
    sd = programmed().state_dict()
    fresh = lambda: to_analog(model(), hardware(), mapping=MAPPING)  # noqa: E731
    key = next(k for k in sd if k.endswith("tiled.scale"))
    bad = {k: v for k, v in sd.items() if k != key}
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        fresh().load_state_dict(bad)
    for value in (sd[key][:-1], -sd[key], sd[key].to(torch.int64)):
        with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
            fresh().load_state_dict({**sd, key: value})
    g = next(k for k in sd if k.endswith("tiled.tile.cells.g"))
    for value in (-sd[g], sd[g].to(torch.int64), sd[g][..., :-1]):
        with pytest.raises(ConfigError, match=g.replace(".", r"\.")):
            fresh().load_state_dict({**sd, g: value})
    for w in ("3.weight", "3.bias", "0.weight"):  # the layers' own parameters too
        with pytest.raises(ConfigError, match=w.replace(".", r"\.")):
            fresh().load_state_dict({**sd, w: torch.zeros(3, 3)})
        with pytest.raises(ConfigError, match=w.replace(".", r"\.") + " has non-finite"):
            fresh().load_state_dict({**sd, w: torch.full_like(sd[w], math.nan)})
        without = {k: v for k, v in sd.items() if k != w}
        with pytest.raises(RuntimeError, match='Missing key.*"' + w.replace(".", r"\.")):
            fresh().load_state_dict(without)  # strict=True: torch's refusal names the key
        assert fresh().load_state_dict(without, strict=False).missing_keys == [w]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_after_programming_matches_cpu():
    analog = programmed("per_mvm")
    with torch.no_grad():
        cpu, again = analog(X), analog(X)
        gpu = analog.to("cuda")(X.cuda()).cpu()
        drift(analog, 2 * DAY)  # generators follow the tensors' torch device
        assert torch.isfinite(analog(X.cuda())).all()
    # per-MVM read noise is drawn on another device: the GPU's output differs from the CPU's
    # as much as two CPU draws do (10 % of the mean output here)
    spread = float((again - cpu).abs().mean())
    assert 0.8 * spread < float((gpu - cpu).abs().mean()) < 1.25 * spread


def test_calibration_is_a_public_protocol():
    analog = to_analog(model(), hardware(), mapping=MAPPING)
    program(analog, generator=torch.Generator().manual_seed(0), calibration=X)
    layer = analog[0]
    before = float(layer.tiled.x_range)
    assert layer.calibrating is None
    with layer.calibration("adc"), torch.no_grad():  # ADC ranges only: input range kept
        assert layer.calibrating == "adc"
        layer(3 * X)
    assert float(layer.tiled.x_range) == before and layer.calibrating is None
    with layer.calibration("inputs"), torch.no_grad():
        layer(3 * X)
    assert float(layer.tiled.x_range) == pytest.approx(3 * float(X.abs().max()))
    calibrate(analog, [X[:8], X[8:]])  # whole model: covers every batch
    assert float(layer.tiled.x_range) == pytest.approx(float(X.abs().max()))


def test_the_mapping_stage_has_no_import_cycle():
    root = Path(__file__).parents[2] / "mapping"
    graph: dict[str, set[str]] = {}
    for path in root.rglob("*.py"):
        mod = ".".join(path.relative_to(root).with_suffix("").parts)
        mod = mod.removesuffix(".__init__") if mod != "__init__" else ""
        deps = set()
        for node in ast.walk(ast.parse(path.read_text())):
            name = node.module if isinstance(node, ast.ImportFrom) and node.module else ""
            if name == "memxbar.mapping" or name.startswith("memxbar.mapping."):
                deps.add(name.removeprefix("memxbar.mapping").removeprefix("."))
        graph[mod] = deps
    seen: dict[str, int] = {}

    def visit(m: str, stack: list[str]) -> None:
        if seen.get(m) == 1:
            raise AssertionError(f"import cycle: {' -> '.join([*stack, m])}")
        if seen.get(m) == 2 or m not in graph:
            return
        seen[m] = 1
        for d in graph[m]:
            if d != "" and not d.startswith(m + "."):  # a package importing its own modules
                visit(d, [*stack, m])
        seen[m] = 2

    for m in graph:
        visit(m, [])
    assert "convert" not in graph["compensation"] and "compensation" in graph["tiler"]
