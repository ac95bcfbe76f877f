"""A measured device named in a study file: units required where the header names none, a
retention file fitted into the device's drift and hashed into the study's identity."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from memxbar.devices.measured import read_gong2018
from memxbar.studies.spec import SpecError, load_spec


def _files(tmp_path: Path) -> None:
    g = read_gong2018()
    lo = float(g.potentiation.min())
    up, down = 1e-6 + (g.potentiation[0] - lo) * 1e-6, 1e-6 + (g.depression[0] - lo) * 1e-6
    (tmp_path / "pulses.csv").write_text(
        "up_pulse_response,down_pulse_response\n"
        + "\n".join(f"{a:.6e},{b:.6e}" for a, b in zip(up, down, strict=True)) + "\n")
    rows = ["time_s,level,conductance_us"]
    for level, g0, nu in (("low", 1.2, 0.01), ("high", 3.0, 0.04)):
        rows += [f"{t:g},{level},{g0 * t ** -nu:.6g}" for t in (1, 10, 100, 1e3, 1e4)]
    (tmp_path / "retention.csv").write_text("\n".join(rows) + "\n")


def _study(tmp_path: Path, measured: str) -> Path:
    path = tmp_path / "m.toml"
    path.write_text('[study]\ntrials = 1\n[hardware]\ndevice = "m"\n[hardware.measured.m]\n'
                    'file = "pulses.csv"\n' + measured + '[evaluation]\ntimes = [1]\n'
                    '[[objectives]]\nmetric = "area"\n')
    return path


def test_siemens_file_needs_units_and_retention_gives_drift(tmp_path: Path) -> None:
    _files(tmp_path)
    with pytest.raises(SpecError, match="hardware.measured.m.file: .*cannot be read from the "
                                        "header; give units"):
        load_spec(_study(tmp_path, ""))
    with pytest.raises(SpecError, match="units"):
        load_spec(_study(tmp_path, 'units = "volts"\n'))
    plain = load_spec(_study(tmp_path, 'units = "S"\n'))
    dev = plain.build_device("m")
    assert dev.g_min == pytest.approx(1e-6, rel=0.1) and dev.drift_g == ()
    spec = load_spec(_study(tmp_path, 'units = "S"\nretention = "retention.csv"\n'))
    assert len(spec.hardware.measured["m"].retention_sha256) == 64
    assert spec.identity_hash() != plain.identity_hash()
    drifting = spec.build_device("m")
    np.testing.assert_allclose(drifting.drift_nu, (0.01, 0.04), atol=1e-4)
    g = torch.full((4,), 3e-6, dtype=torch.float64)
    state = drifting.program(g, generator=torch.Generator().manual_seed(0))
    ratio = drifting.read_mean(state, 1e4) / drifting.read_mean(state, 1.0)
    assert float(ratio.mean()) == pytest.approx(1e4 ** -0.04, rel=0.05)
    (tmp_path / "retention.csv").write_text("time_s,level,conductance_us\n1,a,2\n10,a,1.9\n5,b,1\n")
    with pytest.raises(SpecError, match="level 'b'.*needs >= 2 readings"):
        load_spec(_study(tmp_path, 'units = "S"\nretention = "retention.csv"\n'))


def test_the_same_files_in_another_folder_are_the_same_study(tmp_path: Path) -> None:
    # a remote worker or a moved project reads byte-identical files at other paths: the
    # content hashes identify them, so the study is the same; a changed file is not
    homes = [tmp_path / "a", tmp_path / "b"]
    specs = []
    for home in homes:
        home.mkdir()
        _files(home)
        specs.append(load_spec(_study(home, 'units = "S"\nretention = "retention.csv"\n')))
    a, b = specs
    assert a.hardware.measured["m"].file != b.hardware.measured["m"].file
    assert a.identity_hash() == b.identity_hash()
    (homes[1] / "pulses.csv").write_text((homes[1] / "pulses.csv").read_text().replace(
        "e-06,", "e-06 ,", 1))  # the same numbers, other bytes: another file
    changed = load_spec(_study(homes[1], 'units = "S"\nretention = "retention.csv"\n'))
    assert changed.identity_hash() != a.identity_hash()
