"""Device models against published figures (issue 13; benchmarks/physics_published.py and
physics_cost.py hold the data and the comparisons): the RRAM wear law's window vs write cycles
(Lammie et al., SST 2021, Fig. 2A), the PCM drift exponent at 25 C and 85 C (Wang et al., Nat.
Mater. 2025), the FeFET V_th spread per level (Soliman et al., Nat. Commun. 2023, Fig. 1g) and
the PCM read energy per MAC (HERMES, Le Gallo et al., Nat. Electron. 2023)."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import pytest
import torch

from memxbar.devices import endurance, presets
from memxbar.devices.endurance import WEAR_LAWS, WearLaw

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import physics_published as pub  # noqa: E402

_RRAM = WEAR_LAWS["rram"]
assert isinstance(_RRAM, WearLaw)
LAW: WearLaw = _RRAM


@pytest.mark.parametrize("name", ["10 nm", "20 nm"])
def test_rram_window_closure_follows_the_published_curve(name: str) -> None:
    """Digitised points are +-5 % in resistance, so the tolerances are loose: the law's shape
    (s = 0.5, N_e fitted) stays within 0.08 rms of the published window, better than the s = 1
    shape it replaced, and inside the range of the free fits' slopes."""
    d = pub.window(name)
    n_free, s_free, rms_free = pub.fit_shape(d)
    _, _, rms_one = pub.fit_shape(d, slope=1.0)
    n_law, _, rms_law = pub.fit_shape(d, slope=LAW.window_slope)
    assert 0.35 < s_free < 0.65 and abs(s_free - LAW.window_slope) < 0.1
    assert rms_law < 0.08 and rms_law < 0.85 * rms_one
    assert rms_law < rms_free + 0.005  # fixing s to the law's costs almost nothing
    assert n_law == pytest.approx(n_free, rel=0.15)
    # where the window closes: the law's point within 0.05 of each fit, lo/hi rms < 0.08
    p_fit, _ = pub.fit_point(d, n_free, s_free)
    assert abs(p_fit - LAW.window_point) < 0.05
    assert pub.point_rms(d, n_law, LAW.window_slope, LAW.window_point) < 0.08
    # half the window left at the fitted N_e: 10 nm at ~4e5 cycles, 20 nm at ~1e8
    expect = {"10 nm": 4.4e5, "20 nm": 9.4e7}[name]
    assert n_law == pytest.approx(expect, rel=0.1)


def test_device_reads_follow_the_fitted_law() -> None:
    """Cells worn through Device.pulse read the law's lo/hi at c / N_e = 0.1, 1, 10."""
    dev = pub.clean_rram(100.0)
    rel = [0.1, 1.0, 10.0]
    got = pub.window_mc(dev, [r * 100.0 for r in rel], m=50)
    for r, (lo, hi) in zip(rel, got, strict=True):
        w = 1.0 / (1.0 + r ** LAW.window_slope)
        assert lo == pytest.approx((1 - w) * LAW.window_point, abs=1e-9)
        assert hi == pytest.approx(1 - (1 - w) * (1 - LAW.window_point), abs=1e-9)


def test_rram_preset_endurance_sits_between_the_published_devices() -> None:
    """The RRAM presets' N_e (1e6, the survey median) lies between the 10 nm (4.4e5) and 20 nm
    (9.4e7) cells of the published figure; at N_e a preset's window is half closed."""
    dev = presets.get("rram-falcone2025")
    assert 4.4e5 < dev.endurance < 9.4e7
    assert float(endurance.window_fraction(dev, torch.tensor(dev.endurance))) == pytest.approx(
        0.5)


@pytest.mark.parametrize("name", ["pcm-joshi2020", "pcm-legallo2023-1dev"])
def test_pcm_drift_exponent_at_25_and_85C_matches_the_published_value(name: str) -> None:
    """Wang et al., Nat. Mater. 2025: amorphous GST drifts with nu ~ 0.11 from RT to 100 C. The
    model's median per-cell exponent over a 1-h hold near RESET is within 20 % of it at 25 C
    and at 85 C (films vs devices, and "~0.11" is a rounded value: loose tolerance), and the
    same at both temperatures within 6 % (the Arrhenius clock shifts time, not nu)."""
    n25 = pub.apparent_nu(name, pub.T25)
    n85 = pub.apparent_nu(name, pub.T85)
    for nu in (n25, n85):
        assert nu == pytest.approx(pub.NU_GST, rel=0.2)
    assert n85 / n25 == pytest.approx(1.0, abs=0.06)


def test_pcm_read_energy_per_mac_lies_within_the_measured_hermes_chip_range() -> None:
    """Le Gallo et al., Nat. Electron. 2023 (HERMES, abstract): 8-bit MVMs at 9.76 TOPS/W
    (one-phase read) and 2.48 TOPS/W (four-phase), 0.205 and 0.806 pJ per MAC for the whole
    chip. The HERMES one-device preset's whole 256 x 256 tile (8-bit bit-serial inputs and ADC)
    costs 0.56 pJ per MAC: inside that range; its cells alone cost V^2 t sum(code^2 G)."""
    import physics_cost as cost

    e = cost.read_energy_per_mac("pcm-legallo2023-1dev")
    lo, hi = cost.HERMES_PJ_PER_MAC["one-phase"], cost.HERMES_PJ_PER_MAC["four-phase"]
    assert lo == pytest.approx(0.205, abs=1e-3) and hi == pytest.approx(0.806, abs=1e-3)
    assert lo < e["total_pJ"] < hi
    assert e["cells_pJ"] == pytest.approx(e["formula_pJ"], rel=1e-6)


@pytest.mark.parametrize("name", ["fefet-deng2020", "fefet-jerry2017", "fefet-neurosim"])
def test_fefet_vt_spread_per_state_against_measured_28nm_devices(name: str) -> None:
    """Soliman et al., Nat. Commun. 2023, Fig. 1g (digitised, +-15 %): V_th std of 44, 48, 38
    and <= 16 mV erased to fully programmed. Changed in the state-dependent-spread fix: the
    D2D sigma now runs from 43 mV (erased) to 10 mV (fully programmed) through each cell's
    window scatter (both a fit to that figure), so the presets reproduce the narrow programmed
    state the old state-independent 30 mV offset could not (it gave 32 mV there). The
    60/64-domain presets (domain sizes fitted to states 1 and 2) are within 15 % at all four
    states; fefet-deng2020 keeps Deng's 20 domains of normrnd(1, 0.27)^2, which are coarse:
    its extremes match, its intermediate states are 1.5-2.5x the measurement (BENCHMARKS.md)."""
    dev = presets.get(name)
    got = pub.fefet_vt_sigma(name)
    meas = [pub.SOLIMAN_VT[k][1] for k in range(4)]
    assert got[0] == pytest.approx(meas[0], rel=0.15)
    # state 3 is an upper bound; the model keeps at least its C2C offset there
    assert dev.vt_sigma_c2c < got[3] <= meas[3]  # type: ignore[attr-defined]
    want = math.hypot(dev.vt_sigma_d2d_programmed, dev.vt_sigma_c2c)  # type: ignore[attr-defined]
    assert got[3] == pytest.approx(want, rel=0.05)  # only the offsets at full switching
    for k in (1, 2):
        if name == "fefet-deng2020":
            assert 1.5 * meas[k] < got[k] < 2.5 * meas[k]
        else:
            assert got[k] == pytest.approx(meas[k], rel=0.15)
    assert got[0] > 2.5 * got[3]  # widest erased, narrowest fully programmed, as measured


def test_rram_relaxation_activation_energy_is_the_published_bake_fit() -> None:
    """Lammie et al. 2021 Fig. 3B (HfOx and HfAlOx LRS bakes at 200-300 C): the Arrhenius fit
    of the 10x rise times gives the E_a of every RRAM preset's relaxation clock to 0.02 eV;
    the less resolved 3x and 5x rises give more, not less (1.7-1.9 eV)."""
    ea10, points = pub.retention_fit(10.0)
    assert len(points) == 5  # HfAlOx at 200 C never reaches 10x within its bake
    for name in pub.RRAMS:
        assert presets.get(name).relaxation_activation_energy == pytest.approx(ea10, abs=0.02)
    for factor in (3.0, 5.0):
        assert 1.7 < pub.retention_fit(factor)[0] < 1.9
    # the interpolation: a curve that reaches 10x exactly at a point returns that time
    assert pub.rise_time(((1, 1.0), (100, 10.0), (1000, 50.0)), 10.0) == pytest.approx(100.0)
    assert pub.rise_time(((1, 1.0), (100, 2.0)), 10.0) is None
