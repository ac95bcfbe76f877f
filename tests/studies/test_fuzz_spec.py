"""Fuzzed study files (benchmarks/fuzz_studies.py's generator, in-process): every case loads
cleanly or fails with one ConfigError line, never another exception or a hang; and the hardware
of every accepted case builds and runs an MVM."""

from __future__ import annotations

import importlib.util
import os
import signal
from pathlib import Path

import pytest
import torch
from torch import nn

from memxbar.errors import ConfigError
from memxbar.mapping import program, to_analog
from memxbar.studies.spec import load_spec

ROOT = Path(__file__).resolve().parents[2]
N_CASES = 250
TIMEOUT = 20  # s per case: a hang fails the test instead of stalling CI


def _generator():
    spec = importlib.util.spec_from_file_location("fuzz_studies",
                                                  ROOT / "benchmarks" / "fuzz_studies.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class _Hang(Exception):
    pass


def _alarm(signum, frame):
    raise _Hang


def _one_mvm(spec) -> None:
    point = next(iter(spec.hardware_points()))
    tile, mapping = spec.build_hardware(point)
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(3, 10, generator=gen)
    analog = to_analog(nn.Sequential(nn.Linear(10, 4)), tile, mapping=mapping)
    program(analog, generator=gen, calibration=x)
    with torch.no_grad():
        assert torch.isfinite(analog(x)).all()


def test_fuzzed_study_files_fail_cleanly_or_load(tmp_path: Path, monkeypatch) -> None:
    fuzz = _generator()
    monkeypatch.chdir(tmp_path)
    old = signal.signal(signal.SIGALRM, _alarm)
    counts = {"error": 0, "accepted": 0}
    try:
        for seed in range(N_CASES):
            folder = tmp_path / f"c{seed}"
            folder.mkdir()
            path, base = fuzz.make_case(seed, folder)
            signal.alarm(TIMEOUT)
            try:
                spec = load_spec(path)
            except ConfigError as e:
                assert "\n" not in str(e), (seed, base, str(e))
                counts["error"] += 1
                continue
            except _Hang:
                pytest.fail(f"case {seed} ({base}) took more than {TIMEOUT} s to load")
            finally:
                signal.alarm(0)
            counts["accepted"] += 1
            if seed % 3 == 0:  # a third of the accepted ones also run (keeps the test fast)
                _one_mvm(spec)
    finally:
        signal.signal(signal.SIGALRM, old)
    # the generator makes both kinds (a mutation that breaks nothing is accepted)
    assert counts["error"] > N_CASES // 2 and counts["accepted"] >= 10, counts


def test_generator_is_seeded(tmp_path: Path) -> None:
    fuzz = _generator()
    texts = []
    for run in range(2):
        folder = tmp_path / f"r{run}"
        folder.mkdir()
        path, _ = fuzz.make_case(12345, folder)
        texts.append(path.read_text().replace(str(folder), ""))
    assert texts[0] == texts[1]
    assert os.path.getsize(path) > 0
