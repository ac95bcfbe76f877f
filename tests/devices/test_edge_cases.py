"""Device edge cases: scaled programming noise as reads see it, read-disturb arguments, one-cell
and small-integer pulses, measured files in other encodings, preset summaries against their
ranges, read-noise splits and overflowing times, plot sizes, PCM below room temperature, the
physics helpers' domains and small refusals."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from memxbar.devices import measured, presets
from memxbar.devices.base import MAX_CONDUCTANCE, OPERATING_LIMITS, STUCK_NONE
from memxbar.devices.disturb import PowerLawReadDisturb
from memxbar.devices.measured_files import read_pulse_file, read_retention_file
from memxbar.devices.mtj import MTJ, CompoundMTJ
from memxbar.devices.scaled import scaled
from memxbar.errors import ConfigError

ALL = presets.names()


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def targets(d) -> torch.Tensor:
    return torch.linspace(d.g_min, d.g_max, 64, dtype=torch.float64)


def free(state) -> torch.Tensor:
    stuck = state.latent.get("stuck")
    return torch.ones_like(state.g, dtype=torch.bool) if stuck is None else stuck == STUCK_NONE


# ---------------------------------------------------------------- scaled programming noise
@pytest.mark.parametrize("name", ALL)
def test_scaled_prog_noise_zero_reads_noise_free_mean(name: str) -> None:
    d = presets.get(name)
    g = targets(d)
    s = scaled(d, prog_noise_scale=0.0).program(g, generator=gen())
    ok = free(s)
    want = d.quantize(g)
    if isinstance(d, MTJ):  # chord reads see the nominal junctions at V_read, not g itself
        nominal = dataclasses.replace(d, r_p_sigma=0.0, tmr_sigma=0.0, ic0_sigma=0.0)
        want = nominal.read_mean(nominal.program(g, generator=gen()), 0.0)
    got = scaled(d, prog_noise_scale=0.0).read_mean(s, 0.0)
    # a compound cell mixes P and AP junctions, whose chord factors differ with their spread
    rtol = 5e-3 if isinstance(d, CompoundMTJ) else 1e-9
    assert torch.allclose(got[ok], want[ok], rtol=rtol, atol=1e-6 * d.g_max)


@pytest.mark.parametrize("name", ALL)
def test_scaled_prog_noise_one_reads_original(name: str) -> None:
    d = presets.get(name)
    g = targets(d)
    sd = scaled(d, prog_noise_scale=1.0, read_noise_scale=0.5)
    want = d.read_mean(d.program(g, generator=gen(1)), 0.0)
    got = sd.read_mean(sd.program(g, generator=gen(1)), 0.0)
    assert torch.allclose(got, want, rtol=1e-9, atol=1e-9 * d.g_max)


@pytest.mark.parametrize("name", ["fefet-deng2020", "mtj-neurosim", "pcm-joshi2020"])
def test_scaled_prog_noise_is_linear_in_the_scale(name: str) -> None:
    d = presets.get(name)
    g = targets(d)

    def mean(scale: float, t: float = 0.0) -> torch.Tensor:
        sd = scaled(d, prog_noise_scale=scale, read_noise_scale=0.5)
        return sd.read_mean(sd.program(g, generator=gen(2)), t)

    for t in (0.0, 1e4):
        zero, half, full = mean(0.0, t), mean(0.5, t), mean(1.0, t)
        assert float((full - zero).abs().max()) > 1e-4 * d.g_max
        assert torch.allclose(half - zero, 0.5 * (full - zero), rtol=1e-6, atol=1e-9 * d.g_max)


def test_scaled_pulse_reads_the_wrapped_models_g() -> None:
    d = presets.get("fefet-deng2020")
    sd = scaled(d, prog_noise_scale=0.0)
    s = sd.pulse(sd.program(targets(d), generator=gen(3)), torch.tensor(1), generator=gen(4))
    assert torch.allclose(sd.read_mean(s, 0.0), d.read_mean(s, 0.0), rtol=1e-9, atol=0.0)


# ---------------------------------------------------------------- read-disturb arguments
def test_rram_disturb_refuses_voltage_above_write_voltage() -> None:
    d = presets.get("rram-falcone2025")
    s = d.program(targets(d), generator=gen())
    with pytest.raises(ConfigError, match="allowed"):
        d.disturb(s, 10, voltage=500.0)
    with pytest.raises(ConfigError, match="allowed"):
        d.disturb(s, 10, voltage=-1.01 * d.write_voltage)
    out = d.disturb(s, 1e9, voltage=-d.write_voltage)
    assert bool(torch.isfinite(out.g).all())
    assert bool((out.g <= s.g).all()) and bool((out.g < s.g).any())


def test_power_law_disturb_has_no_nan_at_overflowing_bias() -> None:
    law = PowerLawReadDisturb()
    kept = law.retained(torch.tensor([0.0, 1e-9, 1.0]), 500.0)
    assert kept.tolist() == [1.0, 1.0, 0.0]
    assert float(law.retained(1.0, 500.0, cycles=1e12)) == 0.0


@pytest.mark.parametrize("reads, voltage", [(torch.ones(5), None), ("10", None), (1, "x"),
                                            (1, True), (1, 100.0), (1, float("inf"))])
def test_mtj_disturb_checks_its_arguments(reads, voltage) -> None:
    d = presets.get("mtj-neurosim")
    s = d.program(targets(d)[:4], generator=gen())
    with pytest.raises(ConfigError, match="allowed|reads"):
        d.disturb(s, reads, voltage=voltage)


@pytest.mark.parametrize("name", ["ideal", "rram-falcone2025", "mtj-neurosim", "pcm-joshi2020"])
def test_disturb_refuses_a_non_generator(name: str) -> None:
    d = presets.get(name)
    s = d.program(targets(d), generator=gen())
    with pytest.raises(ConfigError, match="allowed: a torch.Generator"):
        d.disturb(s, 10, generator="seed")


# ---------------------------------------------------------------- pulse on one cell
@pytest.mark.parametrize("name", ALL)
def test_pulse_on_a_single_cell_state(name: str) -> None:
    d = presets.get(name)
    g = torch.tensor(0.5 * (d.g_min + d.g_max), dtype=torch.float64)
    one = d.pulse(d.program(g, generator=gen()), torch.tensor(3), generator=gen(1))
    row = d.pulse(d.program(g.reshape(1), generator=gen()), torch.tensor(3), generator=gen(1))
    assert one.g.shape == ()
    assert {k: v.shape for k, v in one.latent.items()} == {
        k: v.shape[1:] for k, v in row.latent.items()}
    assert torch.allclose(one.g.reshape(1), row.g, rtol=1e-12, atol=0.0)


# ---------------------------------------------------------------- small integer counts
@pytest.mark.parametrize("dtype", [torch.int8, torch.int16, torch.uint8, torch.int32])
def test_small_integer_pulse_counts(dtype: torch.dtype) -> None:
    d = presets.get("rram-falcone2025")
    s = d.program(targets(d)[:4], generator=gen())
    n = torch.tensor([0, 1, 5, 100], dtype=dtype)
    got = d.pulse(s, n, generator=gen(1))
    want = d.pulse(s, n.to(torch.int64), generator=gen(1))
    assert torch.allclose(got.g, want.g, rtol=1e-12, atol=0.0)
    assert bool((got.g[1:] > s.g[1:]).all())


def test_uint64_counts_above_int64_are_refused() -> None:
    d = presets.get("ideal")
    s = d.program(targets(d)[:2], generator=gen())
    with pytest.raises(ConfigError, match="allowed: at most max_pulses"):
        d.pulse(s, torch.tensor([2**64 - 1, 1], dtype=torch.uint64))
    out = d.pulse(s, torch.tensor([3, 1], dtype=torch.uint64))
    assert bool((out.g > s.g).all())


# ---------------------------------------------------------------- measured files and fit
def _wide_lines(unit: str = "uS") -> list[str]:
    up = np.linspace(1.0, 9.9, 40)
    lines = [f"up_1 ({unit}),down_1 ({unit})"]
    lines += [f"{a:.6g},{b:.6g}" for a, b in zip(up, up[::-1], strict=True)]
    return lines


def test_pulse_file_with_a_utf8_bom_is_read(tmp_path: Path) -> None:
    path = tmp_path / "excel.csv"
    path.write_bytes(("\n".join(_wide_lines()) + "\n").encode("utf-8-sig"))
    data = read_pulse_file(path)
    assert data.units == "S" and data.potentiation.shape == (1, 40)
    assert data.potentiation[0, -1] == pytest.approx(9.9e-6, rel=1e-9)


def test_pulse_file_in_another_encoding_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "cp1252.csv"
    path.write_bytes(("\n".join(_wide_lines("µS")) + "\n").encode("cp1252"))
    with pytest.raises(ConfigError, match=r"cp1252\.csv.*allowed: UTF-8"):
        read_pulse_file(path)
    path.write_bytes(("\n".join(_wide_lines("µS")) + "\n").encode("utf-8"))
    assert read_pulse_file(path).potentiation[0, 0] == pytest.approx(1e-6, rel=1e-9)


@pytest.mark.parametrize("bad", [5, None, b"file.csv", 2.5])
def test_pulse_and_retention_files_refuse_non_paths(bad) -> None:
    for reader in (read_pulse_file, read_retention_file):
        with pytest.raises(ConfigError, match="allowed: a file path"):
            reader(bad)


def _trains() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    up = np.linspace(1e-6, 9.9e-6, 200) + 1e-8 * rng.standard_normal(200)
    return up, up[::-1].copy()


def test_fit_refuses_unknown_keywords() -> None:
    up, dn = _trains()
    with pytest.raises(ConfigError, match=r"write_volatge.*allowed:.*write_voltage"):
        measured.fit(up, dn, write_volatge=1.0)
    assert measured.fit(up, dn, write_voltage=1.0).write_voltage == 1.0


def test_fit_refuses_bounds_that_exclude_most_of_the_data() -> None:
    up, dn = _trains()
    with pytest.raises(ConfigError, match="allowed: bounds covering"):
        measured.fit(up, dn, g_min=0.0, g_max=1e-6)
    with pytest.raises(ConfigError, match="allowed: bounds covering"):
        measured.fit(up, dn, g_min=8e-6, g_max=2e-5)
    assert measured.fit(up, dn, g_min=0.0, g_max=9e-6).g_max == 9e-6


# ---------------------------------------------------------------- preset summaries
_UNITS = {"nS": 1e-9, "uS": 1e-6, "mS": 1e-3}
_RANGE = re.compile(r"~?(\d+(?:\.\d+)?)\s*(nS|uS|mS)?\s*[-/]\s*(\d+(?:\.\d+)?)\s*(nS|uS|mS)")


@pytest.mark.parametrize("name", ALL)
def test_preset_summary_states_the_devices_range(name: str) -> None:
    d, summary = presets.get(name), presets.preset(name).summary
    m = _RANGE.search(summary)
    if m is None:  # summaries that state no range ("as rram-falcone2025 with ...")
        return
    lo = float(m[1]) * _UNITS[m[2] or m[4]]
    hi = float(m[3]) * _UNITS[m[4]]
    assert lo == pytest.approx(d.g_min, rel=0.05, abs=1e-12), summary
    assert hi == pytest.approx(d.g_max, rel=0.05), summary


def test_fefet_summaries_state_their_range() -> None:
    for name in presets.names("fefet"):
        assert _RANGE.search(presets.preset(name).summary) is not None, name


# ---------------------------------------------------------------- read_noise_split, as_time
@pytest.mark.parametrize("name", ["ideal", "pcm-joshi2020", "rram-falcone2025"])
@pytest.mark.parametrize("t, interval", [(1, 0), (-25, 1e-6), (-1, 1e-6), (float("nan"), 1e-6),
                                         (1.0, float("inf")), (True, 1e-6), ("1", 1e-6),
                                         (1.0, -1e-6)])
def test_read_noise_split_refuses_bad_arguments(name: str, t, interval) -> None:
    d = presets.get(name)
    with pytest.raises(ConfigError, match="allowed: a finite number"):
        d.read_noise_split(t, interval)
    with pytest.raises(ConfigError, match="allowed: a finite number"):
        scaled(d, read_noise_scale=0.5).read_noise_split(t, interval)


def test_read_noise_split_of_good_arguments() -> None:
    d = presets.get("pcm-joshi2020")
    frozen = d.read_noise_split(np.float64(10.0), 1e-6)
    assert 0.0 < frozen < 1.0
    assert d.read_noise_split(0, 1e-6) <= frozen  # a longer band since programming
    assert presets.get("ideal").read_noise_split(0, 1e-6) == 0.0


def test_read_at_an_overflowing_time_is_refused() -> None:
    d = presets.get("pcm-joshi2020")
    s = d.program(targets(d), generator=gen())
    with pytest.raises(ConfigError, match=r"401 digits.*allowed: finite and >= 0"):
        d.read(s, 10**400)


# ---------------------------------------------------------------- pulse_trace memory
def test_pulse_trace_caps_its_size() -> None:
    from memxbar.devices import plots

    with pytest.raises(ConfigError, match=r"allowed: \(n_up \+ n_down \+ 1\) \* cells"):
        plots.pulse_trace(presets.get("ideal"), 100_000, 0, cells=2**20)
    trace = plots.pulse_trace(presets.get("ideal"), 3, 2, cells=4, generator=gen())
    assert trace.shape == (6, 4) and bool((trace[3] > trace[0]).all())


# ---------------------------------------------------------------- PCM below room temperature
def test_pcm_refuses_temperatures_below_room_temperature() -> None:
    from memxbar.devices.pcm import PCM

    with pytest.raises(ConfigError, match=r"temperature = 250.0 K.*allowed: >= 298.15 K"):
        PCM(temperature=250.0)
    with pytest.raises(ConfigError, match="allowed"):
        dataclasses.replace(presets.get("pcm-joshi2020"), temperature=298.0)
    assert PCM(temperature=298.15).drift_acceleration < 1.0
    assert PCM(temperature=250.0, drift_activation_energy=0.0).drift_acceleration == 1.0


# ---------------------------------------------------------------- public physics helpers
def test_fefet_helpers_check_their_domain() -> None:
    d = presets.get("fefet-deng2020")
    with pytest.raises(ConfigError, match="allowed: finite values in \\[0, inf\\)"):
        d.expected_fraction(-5)
    assert float(d.expected_fraction(5)) > float(d.expected_fraction(1)) > 0.0
    assert float(d.retained_fraction(1.0)) == pytest.approx(float(d.retained_fraction(
        torch.tensor(1.0, dtype=torch.float64))), rel=1e-12)
    assert 0.0 < float(d.retained_fraction(1e8)) < float(d.retained_fraction(1.0)) <= 1.0
    with pytest.raises(ConfigError, match="allowed"):
        d.retained_fraction(torch.tensor(-5.0))
    assert float(d.conductance(0.0)) == pytest.approx(d.g_min, rel=1e-6)
    assert float(d.conductance(1.0)) == pytest.approx(d.g_max, rel=1e-6)
    with pytest.raises(ConfigError, match=r"fraction.*allowed: finite values in \[-0.01, 1.01"):
        d.conductance(torch.tensor([2.0]))
    with pytest.raises(ConfigError, match="allowed"):
        d.conductance(0.5, float("nan"))
    assert float(d.switched_fraction(1e-7)) == pytest.approx(float(d.switched_fraction(
        torch.tensor(1e-7, dtype=torch.float64))), rel=1e-12)
    assert float(d.switched_fraction(d.conductance(0.25))) == pytest.approx(0.25, rel=1e-6)
    with pytest.raises(ConfigError, match="allowed"):
        d.switched_fraction(-1e-7)


def test_window_fraction_refuses_negative_cycles() -> None:
    from memxbar.devices import endurance

    d = presets.get("fefet-deng2020")
    for fn in (endurance.window_fraction, endurance.failure_probability):
        for bad in (-1.0, float("nan"), torch.tensor([1.0, -5.0])):
            with pytest.raises(ConfigError, match="allowed: finite values in \\[0, inf\\) cycles"):
                fn(d, bad)
    q = endurance.failure_probability(d, torch.tensor([0.0, 1e12]))
    assert 0.0 <= float(q[0]) < float(q[1]) <= 1.0
    w = endurance.window_fraction(d, torch.tensor([0, 10**9]))
    assert w.dtype == torch.float64 and float(w[0]) == pytest.approx(1.0) and w[1] < w[0]


def test_mtj_read_disturb_probability_refuses_write_level_voltages() -> None:
    d = presets.get("mtj-neurosim")
    with pytest.raises(ConfigError, match="allowed: finite values in \\[-1, 1\\] V"):
        d.read_disturb_probability(1, 100.0)
    with pytest.raises(ConfigError, match="allowed"):
        d.read_disturb_probability(1, torch.tensor([0.1, 0.2]))
    assert 0.0 < d.read_disturb_probability(1e9, 0.5) < 1.0
    assert d.read_disturb_probability(1e9, 0.5) == d.read_disturb_probability(
        1e9, np.float64(0.5))


def test_domain_wall_move_probability_refuses_non_positive_currents() -> None:
    d = presets.get("dw-hsin2025")
    for bad in (-1.0, 0.0, torch.tensor([1.0, -2.0])):
        with pytest.raises(ConfigError, match=r"allowed: finite values in \(0, inf\)"):
            d.move_probability(bad)
    assert float(d.move_probability(2.0)) < float(d.move_probability(1.0)) <= 1.0


# ---------------------------------------------------------------- small refusals
def test_cell_state_from_tensors_checks_its_keys() -> None:
    from memxbar.devices.base import CellState

    for bad in ({}, {"latent.nu": torch.zeros(2)}, {"g": torch.zeros(2), "nu": torch.zeros(2)}):
        with pytest.raises(ConfigError, match="allowed: the dict of CellState.tensors"):
            CellState.from_tensors(bad)
    with pytest.raises(ConfigError, match="allowed"):
        CellState.from_tensors([torch.zeros(2)])  # type: ignore[arg-type]
    d = presets.get("pcm-joshi2020")
    s = d.program(targets(d), generator=gen())
    back = CellState.from_tensors(s.tensors())
    assert torch.equal(back.g, s.g) and back.latent.keys() == s.latent.keys()


def test_preset_names_by_technology() -> None:
    assert presets.names("PCM") == presets.names("pcm") != []
    with pytest.raises(ConfigError, match="allowed: .*pcm"):
        presets.names("flash")
    with pytest.raises(ConfigError, match="allowed"):
        presets.names(3)  # type: ignore[arg-type]
    assert set(presets.names()) == {n for t in presets.technologies() for n in presets.names(t)}


def test_rescaling_a_scaled_device_checks_the_factors() -> None:
    sd = scaled(presets.get("pcm-joshi2020"), prog_noise_scale=0.5)
    for bad in ("a", True, float("nan"), -1.0):
        with pytest.raises(ConfigError, match="allowed"):
            scaled(sd, prog_noise_scale=bad)
    again = scaled(sd, prog_noise_scale=np.float64(0.5))
    assert again.prog_noise_scale == 0.25 and again.inner is sd.inner


def test_scaled_device_reads_a_state_the_wrapped_model_wrote() -> None:
    d = presets.get("fefet-deng2020")
    s = d.program(targets(d), generator=gen(5))
    sd = scaled(d, prog_noise_scale=0.0, read_noise_scale=0.5)
    assert torch.allclose(sd.read_mean(s, 10.0), d.read_mean(s, 10.0), rtol=1e-12, atol=0.0)
    with pytest.raises(ConfigError, match="unscaled_g"):
        sd.read_mean(s.replace(unscaled_g=torch.zeros(3)), 0.0)


@pytest.mark.parametrize("name", ["fefet-deng2020", "mtj-neurosim"])
def test_scaled_write_survives_pulses_and_disturbs_that_leave_a_cell(name: str) -> None:
    d = presets.get(name)
    g = targets(d)
    sd = scaled(d, prog_noise_scale=0.0)
    s = sd.program(g, generator=gen(6))
    clean = sd.read_mean(s, 0.0)
    n = torch.zeros(64, dtype=torch.int64)
    n[::2] = 1
    after = sd.disturb(sd.pulse(s, n, generator=gen(7)), 0, generator=gen(8))
    got = sd.read_mean(after, 0.0)
    model = d.read_mean(after, 0.0)  # the wrapped model's read
    changed = ~torch.isclose(after.latent["unscaled_g"], s.latent["unscaled_g"], rtol=1e-6,
                             atol=0.0)
    assert bool(changed.any()) and not bool(changed[1::2].any())
    assert torch.allclose(got[changed], model[changed], rtol=1e-9, atol=0.0)
    # cells the pulses left keep the clean write (up to the model's own change of an untouched
    # cell, its c2c V_T and wear terms: ~1e-4), far from the wrapped model's noisy write
    kept = ~changed
    assert torch.allclose(got[kept], clean[kept], rtol=1e-3, atol=0.0)
    assert float((model - clean)[kept].abs().max()) > 10 * float((got - clean)[kept].abs().max())


@pytest.mark.parametrize("name", presets.names())
def test_operating_parameters_in_other_units_are_refused(name: str) -> None:
    """Voltages in mV, times in ns, energies in pJ and conductances in uS are out of every
    model's range, whatever the model declares; the preset's own values are inside it."""
    device = presets.get(name)
    while hasattr(device, "inner"):  # a scaled preset: its model holds the parameters
        device = device.inner
    limited = {f.name: OPERATING_LIMITS.get(f.name, MAX_CONDUCTANCE) for f in
               dataclasses.fields(device) if "param" in f.metadata and f.init and (
                   f.name in OPERATING_LIMITS or f.metadata["param"]["unit"] == "S")
               and isinstance(getattr(device, f.name), float)}
    assert "read_voltage" in limited
    for field, limit in limited.items():
        assert getattr(device, field) <= limit
        try:
            other = dataclasses.replace(device, **{field: 2 * limit})
        except ConfigError as e:
            assert re.search(rf"\.{field} = .* is out of range; allowed: .*"
                             rf"{re.escape(str(limit))}\]", str(e)), e
        else:  # a derived parameter (FeFET's write energy): the value passed in is replaced
            assert getattr(other, field) == getattr(device, field), field
