"""RRAM array read settings (issue 13 item 4): the read pulse and voltage come from the RRAM
survey, separate from the CMO noise fit's t_r; no preset's read current reaches its switching
current."""

import math
from pathlib import Path

import pandas as pd
import pytest
import torch

from memxbar.devices import presets
from memxbar.devices.rram import RRAM, CMOStatistics
from memxbar.errors import ConfigError

SURVEY = Path(__file__).resolve().parents[3] / "shared" / "data" / "surveys" / "nvm" / "RRAM.csv"


@pytest.mark.skipif(not SURVEY.exists(), reason="shared reference data not present")
def test_read_defaults_are_the_survey_figures():
    d = pd.read_csv(SURVEY)
    t = pd.to_numeric(d["Read Speed [ns]"], errors="coerce").dropna()
    v = pd.to_numeric(d["Read Voltage [V]"], errors="coerce").dropna()
    assert len(t) == 9 and RRAM().read_time == pytest.approx(t.median() * 1e-9)
    assert v.min() <= RRAM().read_voltage <= v.max()  # 0.4-0.7 V


def test_cmo_read_noise_does_not_depend_on_the_array_read_pulse():
    """sigma = k log10(g) sqrt(ln((t + t_r) / (2 t_r))) with the fit's t_r = 1 us, whatever
    the array's read pulse (which sets the read energy)."""
    fast, slow = RRAM(), RRAM(read_time=1e-6)
    assert fast.read_time == pytest.approx(9.8e-9) and fast.inference.read_t_r == 1e-6
    g = torch.full((4,), 50e-6, dtype=torch.float64)
    st = fast.program(g, generator=torch.Generator().manual_seed(0))
    t = 3600.0
    s_fast, s_slow = fast.read_std(st, t), slow.read_std(st, t)
    assert torch.allclose(s_fast, s_slow, rtol=0, atol=0)
    mean = fast.read_mean(st, t)
    want = 0.0277316483e-6 * torch.log10(mean / 1e-6) * math.sqrt(math.log((t + 1e-6) / 2e-6))
    assert torch.allclose(s_fast, want, rtol=1e-12)
    # the fit's t_r is its own parameter: a 10x longer characterisation pulse, less bandwidth
    other = RRAM(inference=CMOStatistics(read_t_r=1e-5))
    assert bool((other.read_std(st, t) < s_fast).all())


@pytest.mark.parametrize("name", presets.names("rram"))
def test_every_rram_preset_reads_below_its_switching_current(name):
    dev = presets.get(name)
    i_sw = dev.write_voltage * dev.g_max
    assert dev.switching_current == pytest.approx(i_sw)
    if dev.is_ohmic:
        assert dev.read_current == pytest.approx(dev.read_voltage * dev.g_max)
    assert dev.read_current < dev.switching_current
    assert dev.read_current / dev.switching_current < 0.5  # 0.5 V reads, 1.5-1.6 V writes


def test_a_read_at_the_write_voltage_is_refused():
    with pytest.raises(ConfigError, match="switch"):
        RRAM(read_voltage=1.5, write_voltage=1.5)
