"""``[evaluation] inferences``: the read disturb of a deployed chip's inferences before its
accuracy is read, in a study (issue 13, missing physics 5)."""

from __future__ import annotations

from pathlib import Path

import pytest

from memxbar.errors import ConfigError
from memxbar.studies.spec import accuracy_key, parse_spec

BASE = {"study": {"trials": 1},
        "workload": {"limit": 200, "model_options": {"hidden": [16]},
                     "training": {"epochs": 1}},
        "hardware": {"device": "mtj-vincent2014-compound4", "tile_rows": 64,
                     "dac_bits": 8, "dac_bit_serial": True},
        "evaluation": {"times": [1]},
        "objectives": [{"metric": "accuracy", "time": 1}]}


def spec_with(inferences: object | None, temperature: str | None = None):
    data = {**BASE, "evaluation": dict(BASE["evaluation"])}
    if inferences is not None:
        data["evaluation"]["inferences"] = inferences
    if temperature is not None:
        data["hardware"] = {**BASE["hardware"], "device": {
            "name": "mtj-vincent2014-compound4", "temperature": temperature}}
    return parse_spec(data)


def test_inferences_default_to_none_and_keep_the_study_identity():
    assert spec_with(None).evaluation.inferences == 0.0
    assert spec_with(0).identity_hash() == spec_with(None).identity_hash()
    assert spec_with(1e9).identity_hash() != spec_with(None).identity_hash()
    for bad in (-1, float("inf"), 1e19, "many"):
        with pytest.raises(ConfigError, match="inferences"):
            spec_with(bad)


def test_a_hot_mtj_chip_loses_cells_to_its_own_reads(tmp_path: Path):
    from memxbar.studies.evaluate import evaluate_design

    fresh = evaluate_design(spec := spec_with(None, "85 C"), spec.resolve({}),
                            cache_dir=tmp_path)
    assert "disturbed_fraction" not in fresh
    cool = evaluate_design(spec := spec_with(1e14), spec.resolve({}), cache_dir=tmp_path)
    hot = evaluate_design(spec := spec_with(1e14, "85 C"), spec.resolve({}),
                          cache_dir=tmp_path)
    # 27 C: the 0.1 V reads are far below the disturb limit (0.154 V for 1e9 reads)
    assert cool["disturbed_fraction"] == 0.0
    # 85 C (Delta 60 -> 44): 1e14 inferences of the same reads flip junctions
    assert hot["disturbed_fraction"] > 0.01
    assert 0.0 <= hot[accuracy_key(1.0)] <= 1.0


def test_a_value_at_one_time_does_not_depend_on_the_other_reads(tmp_path: Path):
    from memxbar.studies.evaluate import evaluate_design

    # each read time draws from its own stream (one generator shared by every read made the
    # 1-day value depend on which times came before it)
    def at_a_day(times: list[str]) -> float:
        data = {**BASE, "evaluation": {**BASE["evaluation"], "times": times, "repeats": 2},
                "hardware": {**BASE["hardware"], "device": "pcm-joshi2020"},
                "objectives": [{"metric": "accuracy", "time": "1 day"}]}
        spec = parse_spec(data)
        return evaluate_design(spec, spec.resolve({}), cache_dir=tmp_path)[accuracy_key(86400.0)]

    base = at_a_day(["1 s", "1 day"])
    assert at_a_day(["0 s", "1 s", "1 day"]) == base
    assert at_a_day(["1 day"]) == base
