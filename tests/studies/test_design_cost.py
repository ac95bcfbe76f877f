"""The design that `memxbar study cost` prints is the design the study costed: same recipe,
same chip, read at the same time; and designs differing only in inert fields are refused."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import pytest
import torch

from memxbar.errors import ConfigError
from memxbar.studies.evaluate import cost_time, design_cost, evaluate_design
from memxbar.studies.spec import parse_spec


def _spec(tmp_path: Path, recipe: str, device: str = "rram-wan2022",
          times: tuple[str, ...] = ("1 s",), **hardware: object):
    data = {
        "study": {"name": "dc", "seed": 0, "output": str(tmp_path / "out")},
        "workload": {"dataset": "digits", "model": "mlp", "model_options": {"hidden": [16]},
                     "limit": 300,
                     "training": {"recipe": recipe, "epochs": 1, "lr": 0.01,
                                  "optimizer": "sgd", "batch_size": 64}},
        "hardware": {"device": device, "tile_rows": 64, "dac_bits": 8, "adc_bits": 8,
                     "adc_range": "calibrated", "drift_compensation": "none", **hardware},
        "evaluation": {"times": list(times), "repeats": 1},
        "objectives": [{"metric": "accuracy", "time": times[0]},
                       {"metric": "energy_per_inference"}],
        "sampler": {"kind": "grid"},
    }
    return parse_spec(data, base_dir=tmp_path)


def _printed_cost(spec, params) -> dict:
    with contextlib.redirect_stdout(io.StringIO()):
        return design_cost(spec, params, cache_dir=None).totals()


@pytest.mark.parametrize("recipe", ["online", "digital"])
def test_study_cost_is_the_evaluated_design(tmp_path: Path, recipe: str) -> None:
    torch.set_num_threads(1)
    spec = _spec(tmp_path, recipe)
    params = spec.resolve({})
    out = evaluate_design(spec, params, cache_dir=None)
    printed = _printed_cost(spec, params)
    assert printed["energy_J"] == pytest.approx(out["energy_per_inference"], rel=1e-9)
    assert printed["program_energy_J"] == pytest.approx(out["programming_energy"], rel=1e-9)


def test_a_design_is_costed_when_its_accuracy_is_judged(tmp_path: Path) -> None:
    """PCM's conductance drifts down: read a year later its cells draw less read energy."""
    early = _spec(tmp_path, "digital", "pcm-joshi2020", ("1 s", "1 year"))
    late = _spec(tmp_path, "digital", "pcm-joshi2020", ("1 year", "1 s"))
    assert (cost_time(early), cost_time(late)) == (1.0, pytest.approx(365.25 * 86400, rel=0.01))
    e_early = evaluate_design(early, early.resolve({}))["energy_per_inference"]
    e_late = evaluate_design(late, late.resolve({}))["energy_per_inference"]
    assert e_late < 0.99 * e_early


def test_searching_a_field_no_design_uses_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="adc_full_scale is searched, but no design uses it"):
        _spec(tmp_path, "digital", adc_full_scale={"choices": [4.0, 8.0]})
    with pytest.raises(ConfigError, match="input_range is searched, but no design uses it"):
        _spec(tmp_path, "digital", input_range={"choices": [1.0, 2.0]})
    ok = _spec(tmp_path, "digital", adc_range={"choices": ["calibrated", "fixed"]},
               adc_full_scale={"choices": [4.0, 8.0]})
    assert "adc_full_scale" in ok.search_space()
