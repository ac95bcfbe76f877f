"""A researcher's own measured files: pulse files in wide (ragged, padded) and long (several
curves per phase) layouts with units from the header or given, never guessed; retention files
fitted to a power-law drift the fitted device then shows."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from memxbar.devices.measured import (
    LAYOUTS,
    fit,
    fit_report,
    fit_retention,
    read_gong2018,
    read_pulse_file,
    read_retention_file,
)
from memxbar.errors import ConfigError


def _ramps() -> tuple[np.ndarray, np.ndarray]:
    """The Gong et al. ramps (normalised) mapped onto 1-3.4 µS, in S."""
    g = read_gong2018()
    lo = float(g.potentiation.min())
    return 1e-6 + (g.potentiation[0] - lo) * 1e-6, 1e-6 + (g.depression[0] - lo) * 1e-6


def test_two_column_siemens_file_is_refused_without_units(tmp_path: Path):
    up, down = _ramps()
    path = tmp_path / "two.csv"
    path.write_text("up_pulse_response,down_pulse_response\n"
                    + "\n".join(f"{a:.6e},{b:.6e}" for a, b in zip(up, down, strict=True)))
    with pytest.raises(ConfigError, match="units of the readings cannot be read") as e:
        read_pulse_file(path)
    assert "WIDE, one column per ramp" in str(e.value) and "LONG, one reading" in str(e.value)
    data = read_pulse_file(path, units="S")
    assert data.units == "S" and data.potentiation.shape == (1, 1000)
    np.testing.assert_allclose(data.potentiation[0], up, rtol=1e-6)
    dev = fit(data.potentiation, data.depression, units=data.units)
    assert dev.g_min == pytest.approx(float(up.min()), rel=0.05)  # siemens kept, not rescaled
    with pytest.raises(ConfigError, match="header says 'uS'"):
        path.write_text(path.read_text().replace("up_pulse_response,down_pulse_response",
                                                 "up (uS),down (uS)"))
        read_pulse_file(path, units="S")


def test_ragged_wide_file_is_fitted(tmp_path: Path):
    up, down = _ramps()
    ramps = {"up_1": up[:600], "up_2": up, "down_1": down[:800], "down_2": down}
    lines = [",".join(f"{k} (uS)" for k in ramps)]
    for i in range(1000):  # blank- and NaN-padded ends
        lines.append(",".join(f"{v[i] * 1e6:.6g}" if i < len(v) else ("NaN" if k == "down_1"
                                                                       else "")
                              for k, v in ramps.items()))
    path = tmp_path / "wide.csv"
    path.write_text("\n".join(lines) + "\n")
    data = read_pulse_file(path)
    assert data.units == "S" and data.potentiation.shape == (2, 1000)
    assert np.isnan(data.potentiation[0, 600:]).all() and np.isfinite(data.potentiation[1]).all()
    report = fit_report(data.potentiation, data.depression, units="S", n_sims=8)
    assert report.device.g_max == pytest.approx(float(np.nanmax(report.trend_up)), rel=1e-3)
    assert report.rms_trend_up < 0.1 and report.rms_trend_down < 0.1
    assert np.isnan(report.simulated_up[0, 600:]).all()
    # a blank inside a curve is an error, not padding
    lines[5] = lines[5].replace(lines[5].split(",")[1], "", 1)
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(ConfigError, match="inside its curve"):
        read_pulse_file(path)


def test_long_file_with_several_curves_per_phase(tmp_path: Path):
    rng = np.random.default_rng(0)
    lines = ["phase,curve,pulse_number,conductance_ns"]
    for c in (1, 2, 3):
        lines += [f"potentiation,{c},{k},{10 + 0.5 * k + rng.normal(0, 0.1):.4f}"
                  for k in range(50)]
        lines += [f"depression,{c},{k},{35 - 0.5 * k + rng.normal(0, 0.1):.4f}"
                  for k in range(40 + 5 * c)]
    path = tmp_path / "long.csv"
    path.write_text("\n".join(lines) + "\n")
    data = read_pulse_file(path)
    assert data.potentiation.shape == (3, 50) and data.depression.shape == (3, 55)
    assert np.isnan(data.depression[0, 45:]).all()
    assert 9e-9 < np.nanmin(data.potentiation) < 11e-9  # nS read as nS
    dev = fit(data.potentiation, data.depression, units="S")
    assert float(dev.mean_step(torch.tensor([20e-9], dtype=torch.float64))) == pytest.approx(
        0.5e-9, rel=0.2)


def test_unknown_layout_shows_the_accepted_ones(tmp_path: Path):
    path = tmp_path / "odd.csv"
    path.write_text("a,b\n1,2\n")
    with pytest.raises(ConfigError) as e:
        read_pulse_file(path)
    assert LAYOUTS in str(e.value) and "cannot tell the phase of ['a', 'b']" in str(e.value)
    with pytest.raises(ConfigError, match="units = 'V'"):
        read_pulse_file(path, units="V")


def test_retention_file_is_fitted_and_the_device_drifts_as_measured(tmp_path: Path):
    rng = np.random.default_rng(1)
    levels = {"L1": (2e-6, 0.02), "L2": (6e-6, 0.05), "L3": (12e-6, 0.08)}
    times = np.array([1, 10, 100, 1e3, 1e4, 1e5])
    lines = ["time_s,level,cell,conductance_us"]
    drawn = {}
    for name, (g0, nu) in levels.items():
        drawn[name] = nu + rng.normal(0, 0.005, 20)  # 20 cells per level
        for cell, nu_c in enumerate(drawn[name]):
            lines += [f"{t:g},{name},{cell},{g0 * 1e6 * t ** -nu_c:.6g}" for t in times]
    path = tmp_path / "retention.csv"
    path.write_text("\n".join(lines) + "\n")
    result = fit_retention(read_retention_file(path))
    assert result.levels == ("L1", "L2", "L3") and result.t0 == 1.0
    np.testing.assert_allclose(result.nu, [drawn[k].mean() for k in levels], atol=1e-5)
    np.testing.assert_allclose(result.nu_std, [drawn[k].std(ddof=1) for k in levels], rtol=1e-3)
    np.testing.assert_allclose(result.g0, [2e-6, 6e-6, 12e-6], rtol=1e-3)
    up, down = _ramps()
    dev = fit(up * 4, down * 4, units="S", **result.params())
    g = torch.full((20000,), 6e-6, dtype=torch.float64)
    state = dev.program(g, generator=torch.Generator().manual_seed(0))
    ratio = dev.read_mean(state, 1e5) / dev.read_mean(state, 1.0)
    expected = dev.drift_exponent(state.g)[0]  # at each cell's programmed conductance
    assert float(-torch.log(ratio).mean() / np.log(1e5)) == pytest.approx(
        float(expected.mean()), rel=0.01)
    assert float(dev.drift_exponent(g[:1])[0]) == pytest.approx(result.nu[1])
    spread = -torch.log(ratio) / np.log(1e5) - expected  # cell-to-cell exponent spread
    assert float(spread.std()) == pytest.approx(float(dev.drift_exponent(state.g)[1].mean()),
                                                rel=0.05)
    no_drift = fit(up * 4, down * 4, units="S")
    s0 = no_drift.program(g, generator=torch.Generator().manual_seed(0))
    assert torch.equal(no_drift.read_mean(s0, 1e5), no_drift.read_mean(s0, 1.0))
    path.write_text("time_s,level,conductance\n1,L1,1e-6\n")
    with pytest.raises(ConfigError, match="units of the readings"):
        read_retention_file(path)
