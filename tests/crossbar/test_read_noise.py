"""Read noise as a frozen part (one sample per read time) plus a white part (per conversion),
split by the device's noise model; the access transistor in series with every cell."""

import dataclasses
import math

import pytest
import torch

from memxbar.crossbar.periphery import ADC, DAC
from memxbar.crossbar.tile import Tile, TileConfig
from memxbar.devices import presets
from memxbar.devices.base import CellState, Device, frozen_fraction
from memxbar.devices.ideal import IdealDevice
from memxbar.devices.pcm import PCM
from memxbar.devices.rram import RRAM
from memxbar.errors import ConfigError

DAY = 86400.0


def _tile(mode: str, dac: DAC | None = None, rows: int = 16, cols: int = 8,
          interval: float | None = None, device=None, copies: int = 0) -> Tile:
    """A programmed tile; ``copies`` > 0: a stack of that many tiles holding the same
    programmed cells (each draws its own read noise)."""
    cfg = TileConfig(rows=rows, cols=cols, device=device or PCM(), read_noise=mode,
                     dac=dac or DAC(), adc=ADC(bits=0), conversion_interval=interval)
    tile = Tile(cfg)
    w = torch.linspace(-1, 1, rows * cfg.weight_cols, dtype=torch.float64)
    w = w.reshape(rows, cfg.weight_cols)
    tile.program(w, generator=torch.Generator().manual_seed(1))
    if not copies:
        return tile
    stack = Tile(cfg, (copies,))
    stack.program(w.expand(copies, *w.shape))

    def rep(v: torch.Tensor) -> torch.Tensor:
        return v.expand(copies, *v.shape).clone()

    st = tile.state
    stack.set_state(CellState(rep(st.g), {k: rep(v) for k, v in st.latent.items()}))
    return stack


def _draws(tile: Tile, x: torch.Tensor, n: int) -> torch.Tensor:
    """Outputs ``(n, K)`` of the MVM of ``x`` ``(1, rows)``: a stacked tile of n copies gives
    n independent reads; a single tile n MVMs after one read."""
    gen = torch.Generator().manual_seed(7)
    tile.set_time(DAY, generator=gen)
    if tile.shape:
        return tile.mvm(x.expand(n, 1, x.shape[-1]), generator=gen)[:, 0]
    return tile.mvm(x.expand(n, x.shape[-1]), generator=gen)


def test_physical_is_the_default_and_1f_split_follows_the_formula():
    assert TileConfig(rows=4, cols=4, device=PCM()).read_noise == "physical"
    pcm = PCM()
    t_read = pcm.read_time
    # the numbers: 1 day, t_read = 250 ns, conversions 1 us apart -> ~3 % white
    total = math.log((DAY + pcm.statistics.t0 + t_read) / (2 * t_read))
    want = 1.0 - math.log(1e-6 / (2 * t_read)) / total
    assert pcm.read_noise_split(DAY, 1e-6) == pytest.approx(want, rel=1e-12)
    assert 0.02 < 1.0 - want < 0.04
    # back-to-back reads (interval = t_read): the band above 1/t_read is empty -> all frozen
    assert pcm.read_noise_split(DAY, t_read) == 1.0
    # slower conversions decorrelate more; white devices (MTJ shot noise, default) are white
    assert pcm.read_noise_split(DAY, 1e-3) < pcm.read_noise_split(DAY, 1e-6)
    assert IdealDevice().read_noise_split(DAY, 1e-6) == 0.0
    assert frozen_fraction(0.0, 1e-6, 1e-9) == 1.0
    # CMO RRAM: 1/f over [1/(t + t_r), 1/(2 t_r)]
    rram = RRAM()
    tr = rram.inference.read_t_r  # the noise fit's read pulse (not the array's read_time)
    want = 1.0 - math.log(1e-5 / (2 * tr)) / math.log((DAY + tr) / (2 * tr))
    assert rram.read_noise_split(DAY, 1e-5) == pytest.approx(want, rel=1e-12)
    assert presets.get("rram-wan2022").read_noise_split(DAY, 1e-5) == 0.0  # no read noise


def test_tile_frozen_fraction_by_mode():
    tile = _tile("physical", interval=1e-6)
    tile.set_time(DAY)
    assert tile.frozen_fraction() == pytest.approx(PCM().read_noise_split(DAY, 1e-6))
    assert _tile("per_read").frozen_fraction(DAY) == 1.0
    assert _tile("per_mvm").frozen_fraction(DAY) == 0.0
    with pytest.raises(ConfigError, match="conversion_interval"):
        TileConfig(rows=4, cols=4, device=PCM(), conversion_interval=0.0)


def test_bit_serial_and_one_shot_have_the_same_read_noise_std_when_nothing_is_white():
    """All frozen: every bit-serial cycle reads the same conductances, so the shift-added
    output has the one-shot output's read-noise std (per_mvm would average it down)."""
    x = torch.tensor([[1.0, -1.0, 3 / 7, 0.0] * 4], dtype=torch.float64)  # exact on 4 bits
    n = 400
    one = _draws(_tile("physical", DAC(bits=4), copies=n), x, n)
    serial = _tile("physical", DAC(bits=4, bit_serial=True), copies=n)
    assert serial.frozen_fraction(DAY) == 1.0 and serial.config.dac.n_cycles == 3
    ser = _draws(serial, x, n)
    # same seeds, same frozen samples: the same numbers (up to summation order)
    torch.testing.assert_close(ser, one, rtol=1e-9, atol=1e-12)
    white = _draws(_tile("per_mvm", DAC(bits=4, bit_serial=True), copies=n), x, n)
    s_one, s_white = one.std(0), white.std(0)
    assert bool((s_white < 0.9 * s_one).all())  # per-cycle draws average the noise away


def test_average_pooling_does_not_shrink_frozen_noise():
    """N positions of one inference (N MVMs after one read) share the frozen noise: their
    average keeps the single-position std; white noise shrinks by sqrt(N)."""
    positions, trials = 49, 300
    x = torch.full((trials, positions, 16), 0.5, dtype=torch.float64)
    gen = torch.Generator().manual_seed(3)
    tile = _tile("physical", copies=trials)
    tile.set_time(DAY, generator=gen)
    y = tile.mvm(x, generator=gen)  # (trials, positions, K)
    ratio = y.mean(1).std(0) / y[:, 0].std(0)
    torch.testing.assert_close(ratio, torch.ones_like(ratio), rtol=1e-9, atol=0)
    white = _tile("per_mvm", copies=trials)
    white.set_time(DAY, generator=gen)
    y = white.mvm(x, generator=gen)
    r = y.mean(1).std(0) / y[:, 0].std(0)
    # std ratio 1/7 within the sampling error of 300 draws (~ 1/sqrt(2*300) relative)
    assert bool(((r - 1 / 7).abs() < 0.25 / 7).all())


def test_physical_split_variances_add_up():
    """With a 3 ms conversion interval part of the 1/f noise is white: MVMs after one read vary
    by the white part only, MVMs after fresh reads by both (CMO RRAM: no cell near 0 S, so the
    clamp at 0 S does not cut the frozen sample)."""
    n = 3000
    tile = _tile("physical", interval=3e-3, device=RRAM())
    f = tile.frozen_fraction(DAY)
    assert 0.5 < f < 0.9
    x = torch.ones(1, 16, dtype=torch.float64)
    within = _draws(tile, x, n).var(0)
    total = _draws(_tile("physical", interval=3e-3, device=RRAM(), copies=n), x, n).var(0)
    tile.set_time(DAY)
    want = (x.square() @ tile.weight_variance())[0]  # exact total variance, weight units
    tol = 4 * math.sqrt(2 / n)
    torch.testing.assert_close(total / want, torch.ones_like(want), rtol=tol, atol=0)
    torch.testing.assert_close(within / want, torch.full_like(want, 1 - f), rtol=tol, atol=0)


def test_physical_sample_survives_state_dict():
    tile = _tile("physical", interval=1e-6)
    tile.set_time(DAY, generator=torch.Generator().manual_seed(5))
    fresh = Tile(tile.config)
    fresh.load_state_dict(tile.state_dict())
    torch.testing.assert_close(fresh.analog, tile.analog)
    torch.testing.assert_close(fresh.analog_var, tile.analog_var)
    # a state saved without a sample (e.g. under "per_mvm"): the load draws a new one
    sd = {k: v for k, v in tile.state_dict().items() if k != "read_g"}
    fresh = Tile(tile.config)
    fresh.load_state_dict(sd)
    assert fresh.read_g is not None and not torch.equal(fresh.read_g, tile.read_g)
    torch.testing.assert_close(fresh.analog_var, tile.analog_var)


# ---------------------------------------------------------------- access transistor
def test_access_transistor_compresses_high_conductance_cells():
    g_min, g_max, r_s = 1e-6, 100e-6, 10e3  # g_max * R_s = 1: the top cell halves
    dev = IdealDevice(g_min=g_min, g_max=g_max, access_resistance=r_s)
    g = torch.linspace(g_min, g_max, 11, dtype=torch.float64)
    torch.testing.assert_close(dev.effective_g(g), g / (1 + g * r_s))
    torch.testing.assert_close(dev.effective_std(g, torch.ones_like(g)), 1 / (1 + g * r_s) ** 2)
    rows = 4
    cfg = TileConfig(rows=rows, cols=2, device=dev, adc=ADC(bits=0))
    tile = Tile(cfg)
    w = torch.tensor([[1.0], [0.5], [0.0], [-1.0]], dtype=torch.float64)
    tile.program(w)
    y = tile.mvm(torch.eye(rows, dtype=torch.float64))  # one row at a time: the weights

    def eff(x: float) -> float:
        return x / (1 + x * r_s)

    span = g_max - g_min
    gp = g_min + w.clamp(min=0) * span  # G+ / G- targets of the differential pair
    gm = g_min + (-w).clamp(min=0) * span
    want = (gp.apply_(eff) - gm.apply_(eff)) / span
    torch.testing.assert_close(y, want, rtol=1e-9, atol=1e-12)
    assert float(y[0, 0]) == pytest.approx((eff(g_max) - eff(g_min)) / span)  # about 0.5
    torch.testing.assert_close(tile.weights(), want)
    torch.testing.assert_close(tile.weights(0.0), want)
    # zero resistance: the plain weights
    plain = Tile(TileConfig(rows=rows, cols=2, device=IdealDevice(g_min=g_min, g_max=g_max),
                            adc=ADC(bits=0)))
    plain.program(w)
    torch.testing.assert_close(plain.mvm(torch.eye(rows, dtype=torch.float64)), w)


def test_access_transistor_with_a_nonlinear_cell():
    """Milo's cubic RRAM behind a 5 kOhm transistor: the device voltage solves u + R I(u) = v,
    for negative voltages too; the branch slope is dI/dV of the branch current."""
    dev = dataclasses.replace(presets.get("rram-milo2021"), access_resistance=5e3)
    g = torch.linspace(dev.g_min, dev.g_max, 7, dtype=torch.float64)
    d = 1e-5
    for v in (0.4, 0.2, -0.3, -0.4):
        vt = torch.full_like(g, v)
        i = dev.cell_current(g, vt)
        torch.testing.assert_close(dev.current(g, vt - 5e3 * i), i, rtol=1e-12, atol=1e-18)
        assert bool((i.abs() < dev.current(g, vt).abs()).all())
        fd = (dev.cell_current(g, vt + d) - dev.cell_current(g, vt - d)) / (2 * d)
        torch.testing.assert_close(dev.cell_slope(g, vt), fd, rtol=1e-6, atol=0)
        # the base class's autograd slope (for devices without a closed form) agrees
        torch.testing.assert_close(Device.slope(dev, g, vt), dev.slope(g, vt))


@pytest.mark.parametrize("r_s", [0.0, 5e3])
def test_nonlinear_tile_reads_negative_row_voltages_through_the_cubic(r_s):
    """Signed inputs as negative voltages: the cubic's even term makes I(-V) != -I(V); the
    tile's nonlinear read gives each cell's own current at its own (negative) voltage."""
    dev = dataclasses.replace(presets.get("rram-milo2021"), access_resistance=r_s)
    rows = 4
    tile = Tile(TileConfig(rows=rows, cols=2, device=dev, adc=ADC(bits=0)))
    w = torch.tensor([[1.0], [0.5], [-0.25], [-1.0]], dtype=torch.float64)
    tile.program(w, generator=torch.Generator().manual_seed(0))
    g = tile.state.g[0]  # (rows, 2): G+ and G- columns
    span, v_read = dev.g_max - dev.g_min, dev.read_voltage
    for sign in (1.0, -1.0):
        y = tile.mvm(sign * torch.eye(rows, dtype=torch.float64))[:, 0]
        v = torch.full_like(g, sign * v_read)
        i = dev.cell_current(g, v)
        torch.testing.assert_close(y, (i[:, 0] - i[:, 1]) / (v_read * span), rtol=1e-9,
                                   atol=1e-12)
    y_pos = tile.mvm(torch.eye(rows, dtype=torch.float64))[:, 0]
    y_neg = tile.mvm(-torch.eye(rows, dtype=torch.float64))[:, 0]
    assert bool(((y_pos + y_neg).abs() > 1e-4 * y_pos.abs()).any())  # not an odd function
