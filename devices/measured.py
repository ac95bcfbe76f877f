"""Device models fitted to a researcher's own pulse-response measurements.

Input: consecutive conductance readings taken after each of a train of identical potentiating
(up) pulses and a train of depressing (down) pulses, as arrays ``(n_curves, n_pulses)``, in
siemens or in normalised weight units. :func:`fit` turns them into a :class:`MeasuredDevice`
whose pulse response is a lookup table over the conductance state; :func:`fit_report` also
simulates the same pulse trains with the fitted model and compares them with the data, and
:func:`plot_fit` draws that comparison. Readers for the two packaged data sets:
:func:`read_gong2018`, :func:`read_jo2010`.

The model (:meth:`MeasuredDevice.pulse`): a base state ``G`` moved by the mean step of the
pulse's direction, ``G += dG_d(G)``, plus a pulse-written fluctuation that decays from pulse to
pulse, ``u = phi * u + q_d(G) * N(0, 1)``; the conductance is ``G + u``; each read adds
memory-less read noise. How the readings are decomposed:

* Each curve is smoothed (Savitzky-Golay, quadratic, ``window`` pulses, default n/10). The
  smooth curve is the noise-free trajectory: its steps, averaged in ``n_bins`` bins of its own
  state, give ``dG_up(G)`` and ``dG_down(G)``. Binning against the smooth state, not the noisy
  reading, avoids the regression-to-the-mean bias that noise puts into a dG-versus-G scatter
  (with the Gong et al. data that bias would be 20x the step). Empty bins are filled by linear
  interpolation, constant beyond the data; bins where the trajectory does not move the right
  way get 1 % of the median step (so no state is a trap). The tables are interpolated in
  ``1 / dG`` (pulses per siemens), which keeps the number of pulses needed to cross each bin,
  so the simulated mean follows the measured trajectory.
* Read noise versus write noise: the measured step-to-step differences contain both. The
  residual around the smooth curve has autocovariance ``var_read`` at lag 0 only, plus
  ``var_u * phi**|j|`` from the fluctuation. Its measured autocovariance (lags 0..20, curve
  ends left out) is fitted with that model *after* passing it through the same smoother, which
  removes part of the noise (non-negative least squares over a grid of ``phi``). ``phi`` is
  limited to memories short enough that the smoother keeps half of the fluctuation; longer
  ones cannot be told from the trend. If the residual shows no memory, read and write noise
  cannot be told apart and all of it is counted as write noise (read noise 0, phi 0). A read
  noise measured separately (repeated reads, no pulses) can be passed as ``read_noise=``.
* Per-pulse write noise: the step-to-step variance minus the trend step, binned over the state
  (corrected for the smoother, smoothed over neighbouring bins), is
  ``v(G) = 2 var_read + 2 q(G)**2 / (1 + phi)``; this gives ``q_up(G)`` and ``q_down(G)``.

Why not a random walk: in the Gong et al. HfO2 data the deviation from the trend stays bounded
(std 0.14 of a 2.4-wide range over 1000 pulses) while the step-to-step std is 0.16; steps that
accumulated would wander by sqrt(1000) * 0.16 = 5, far past the bounds.

Bounds: the lowest and highest values of the smooth trajectories (readings outside them are
noise). Normalised data are mapped linearly onto ``[g_min, g_max]``; the default
``1e-7 .. 1e-5 S`` is the generic :class:`Device` range, because normalised data carry no
absolute scale: pass your device's range. All cells share the one fitted response (a single
measured device gives no device-to-device spread).

Programming (:meth:`MeasuredDevice.program`): pulse data say nothing about write-verify
programming. Assumption: programming ends within the device's own pulse-to-pulse fluctuation,
so the programmed conductance carries a Gaussian error with the fitted stationary fluctuation
std ``sqrt(mean q**2 / (1 - phi**2))`` (``program_noise``; override it with programming data).

Drift: pulse trains carry no retention information, so without more data reads do not depend
on time. A retention file (conductance against time per programmed level, several cells per
level if measured: :func:`read_retention_file`) is fitted by :func:`fit_retention` to a power
law ``G(t) = G(t0) (t / t0)^-nu`` per curve; its level table (mean ``nu`` and cell-to-cell std
per level) goes into the device (``fit(..., **retention.params())``).

Files: :func:`read_pulse_file` reads a researcher's pulse file in the wide layout (one column
per ramp, ragged, blank- or NaN-padded) or the long layout (``phase`` rows, several curves per
phase); the units come from the header or the ``units`` argument, never from a guess
(:data:`LAYOUTS`). ``fit`` takes curves of different lengths (NaN-padded rows or a list).
"""

from __future__ import annotations

import dataclasses
import functools
import math
import numbers
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from memxbar.devices.base import (
    MAX_CONDUCTANCE,
    CellState,
    Device,
    Preset,
    param,
    pulse_train,
    randn,
)
from memxbar.devices.measured_files import (  # noqa: F401  (re-exported: measured.read_*)
    FILE_UNITS,
    LAYOUTS,
    MIN_PULSES,
    RETENTION_LAYOUT,
    PulseData,
    RetentionData,
    RetentionFit,
    _padded,
    fit_retention,
    read_gong2018,
    read_jo2010,
    read_pulse_file,
    read_retention_file,
)
from memxbar.errors import ConfigError, figure_path, plain_value, seed_value

UNITS = ("S", "normalized")
NORMALIZED_RANGE = (1e-7, 1e-5)  # S; the generic Device range, used when data are normalised
# Bounds of a pulse train's highest reading in siemens; outside them the data are in other
# units (uS, mS): devices.base.MAX_CONDUCTANCE, and 1 Tohm, which leaves 100x below the
# NVMExplorer survey's highest high-resistance state (9 Gohm).
MIN_CONDUCTANCE = 1e-12
MAX_SIMS = 100_000  # simulated cells per curve in fit_report (memory: pulses x curves x cells)
MAX_BINS = 1024  # state bins of a fitted device's tables (bins without steps are interpolated)
STEP_FLOOR = 0.01  # smallest mean step, as a fraction of the median step of that direction
MIN_COVERED = 0.5  # fit: given g_min, g_max must span at least this share of the readings' range

GONG2018_SOURCE = ("Gong et al., Nat. Commun. 9, 2102 (2018), HfO2 RRAM, 1000 up + 1000 down "
                   "pulse readings (normalised); file examples/csv/gong_et_al.csv of IBM aihwkit "
                   "(MIT); packaged as devices/data/rram_hfo2_gong2018_pulses.csv")
JO2010_SOURCE = ("Jo et al., Nano Lett. 10, 1297 (2010), Ag:a-Si memristor LTP/LTD conductance "
                 "(S) vs pulse number, digitised in MLP+NeuroSim V3.0 nonlinear_fit.m; packaged "
                 "as devices/data/rram_agasi_jo2010_ltp_ltd.csv")


# --------------------------------------------------------------------------- device
def _locate(g: Tensor, g_min: float, g_max: float, n: int) -> tuple[Tensor, Tensor]:
    """Left table index and weight for linear interpolation between the centres of ``n``
    equal bins of ``[g_min, g_max]``; constant beyond the outer centres."""
    x = ((g - g_min) / ((g_max - g_min) / n) - 0.5).clamp(0.0, n - 1.0)
    i0 = x.floor().clamp(max=n - 2)
    return i0.long(), x - i0


def _lerp(t: Tensor, i0: Tensor, w: Tensor) -> Tensor:
    """Interpolate table(s) ``t`` (..., n) at index/weight from :func:`_locate`."""
    flat = i0.reshape(-1)  # index_select: advanced indexing is slow for repeated indices
    shape = (*t.shape[:-1], *i0.shape)
    left = t.index_select(-1, flat).reshape(shape)
    right = t.index_select(-1, flat + 1).reshape(shape)
    return left * (1.0 - w) + right * w


@dataclass(frozen=True, kw_only=True)
class MeasuredDevice(Device):
    """Pulse response given by tables over the state, fitted to measured pulse trains.

    Latents: ``g_base`` (S), the state the mean-step tables act on, and ``g_fluct`` (S), the
    pulse-written fluctuation; the conductance is ``clamp(g_base + g_fluct, g_min, g_max)``.
    One pulse in direction d at base state G: ``g_base += dG_d(G)`` (clamped to the bounds),
    ``g_fluct = noise_memory * g_fluct + noise_d(G) * N(0, 1)``. Tables hold values at the
    centres of equal bins of ``[g_min, g_max]``, constant beyond the outer centres; the noise
    tables are interpolated linearly, the mean steps harmonically (``1 / dG`` linearly). Reads
    add Gaussian ``read_noise``. Drift only with a retention fit (:func:`fit_retention`): each
    cell draws its exponent ``nu`` at programming (latent ``nu``) and reads
    ``g (t / drift_t0)^-nu`` after ``drift_t0``. Build with :func:`fit` or a ``measured-*``
    preset; :meth:`program` adds Gaussian ``program_noise`` to ``g_fluct``.
    """

    technology = "measured"
    g_min: float = param(1e-7, unit="S", doc="lower bound of the fitted state", ge=0.0)
    g_max: float = param(1e-5, unit="S", doc="upper bound of the fitted state", gt=0.0)
    dg_up: tuple[float, ...] = param((), unit="S", gt=0.0,
                                     doc="mean step of one potentiating pulse at the bin centres")
    dg_down: tuple[float, ...] = param((), unit="S", lt=0.0,
                                       doc="mean step of one depressing pulse at the bin centres")
    noise_up: tuple[float, ...] = param((), unit="S", ge=0.0,
                                        doc="write-noise std added by one up pulse (bin centres)")
    noise_down: tuple[float, ...] = param((), unit="S", ge=0.0,
                                          doc="write-noise std added by one down pulse")
    noise_memory: float = param(0.0, ge=0.0, lt=1.0,
                                doc="fraction of the fluctuation that survives the next pulse")
    read_noise: float = param(0.0, unit="S", ge=0.0, doc="std of one read, no memory")
    program_noise: float = param(0.0, unit="S", ge=0.0,
                                 doc="std of the programmed conductance (assumed: stationary "
                                     "pulse fluctuation)")
    drift_g: tuple[float, ...] = param((), unit="S", ge=0.0,
                                       doc="levels of a retention fit: conductance at drift_t0 "
                                           "(empty: no drift)")
    drift_nu: tuple[float, ...] = param((), doc="power-law drift exponent at each drift_g level")
    drift_nu_std: tuple[float, ...] = param((), ge=0.0,
                                            doc="cell-to-cell std of the exponent per level")
    drift_t0: float = param(1.0, unit="s", gt=0.0,
                            doc="time after programming at which drift_g was read")

    def _check(self) -> None:
        super()._check()
        n = len(self.dg_up)
        for name in ("dg_up", "dg_down", "noise_up", "noise_down"):
            m = len(getattr(self, name))
            if m < 2:
                raise ConfigError(f"MeasuredDevice.{name} has {m} entries; tables need >= 2 "
                                 "(build the device with measured.fit() or a measured-* preset)")
            if m != n:
                raise ConfigError(f"MeasuredDevice.{name} has {m} entries but dg_up has {n}; "
                                 "all tables must have the same length")
        k = len(self.drift_g)
        if len(self.drift_nu) != k or len(self.drift_nu_std) != k:
            raise ConfigError(f"MeasuredDevice: drift_g, drift_nu and drift_nu_std have "
                             f"{k}, {len(self.drift_nu)} and {len(self.drift_nu_std)} entries; "
                             "they must have the same length (use fit_retention)")
        if k and not all(b > a for a, b in zip(self.drift_g, self.drift_g[1:], strict=False)):
            raise ConfigError(f"MeasuredDevice.drift_g = {self.drift_g} must increase strictly")

    @property
    def n_bins(self) -> int:
        """Number of table entries (state bins)."""
        return len(self.dg_up)

    def bin_centres(self) -> np.ndarray:
        """States (S) at which the tables are given."""
        step = (self.g_max - self.g_min) / self.n_bins
        return self.g_min + step * (np.arange(self.n_bins) + 0.5)

    def mean_step(self, g: Tensor, up: bool = True) -> Tensor:
        """Mean conductance change (S) of one up (or down) pulse at base state ``g`` (S)."""
        t = torch.tensor(self.dg_up if up else self.dg_down, dtype=g.dtype, device=g.device)
        return 1.0 / _lerp(1.0 / t, *_locate(g, self.g_min, self.g_max, self.n_bins))

    def step_std(self, g: Tensor, up: bool = True) -> Tensor:
        """Std (S) of the step-to-step change of the readings in the stationary regime at base
        state ``g``: ``sqrt(2 read_noise**2 + 2 noise(g)**2 / (1 + noise_memory))``."""
        t = torch.tensor(self.noise_up if up else self.noise_down, dtype=g.dtype, device=g.device)
        q = _lerp(t, *_locate(g, self.g_min, self.g_max, self.n_bins))
        return torch.sqrt(2 * self.read_noise ** 2 + 2 * q ** 2 / (1 + self.noise_memory))

    def drift_exponent(self, g: Tensor) -> tuple[Tensor, Tensor]:
        """Mean and cell-to-cell std of the drift exponent at conductance ``g`` (S): the
        retention fit's levels, interpolated linearly, constant beyond the outer levels."""
        lv = torch.tensor(self.drift_g, dtype=g.dtype, device=g.device)
        out = []
        for table in (self.drift_nu, self.drift_nu_std):
            v = torch.tensor(table, dtype=g.dtype, device=g.device)
            if len(table) == 1:
                out.append(v.expand_as(g).clone())
                continue
            i = torch.searchsorted(lv, g.contiguous()).clamp(1, len(table) - 1)
            w = ((g - lv[i - 1]) / (lv[i] - lv[i - 1])).clamp(0.0, 1.0)
            out.append(v[i - 1] + w * (v[i] - v[i - 1]))
        return out[0], out[1]

    def _program(self, g_target: Tensor, generator: torch.Generator | None) -> CellState:
        base = g_target.clone()
        fluct = (self.program_noise * randn(base, generator) if self.program_noise > 0
                 else torch.zeros_like(base))
        g = (base + fluct).clamp(self.g_min, self.g_max)
        latent = {"g_base": base, "g_fluct": fluct}
        if self.drift_g:
            mean, std = self.drift_exponent(g)
            latent["nu"] = mean + std * randn(g, generator)
        return CellState(g, latent)

    def _mean(self, state: CellState, t: Tensor) -> Tensor:
        """Power-law drift ``g (t / t0)^-nu`` after ``drift_t0`` (fitted retention); none
        before it, and none without a retention fit."""
        if "nu" not in state.latent:
            return state.g
        ratio = (t.clamp(min=self.drift_t0) / self.drift_t0).to(state.g.dtype)
        return state.g * ratio ** (-state.latent["nu"])

    def _read_std(self, state: CellState, t: Tensor, mean: Tensor) -> Tensor:
        return torch.full_like(state.g, self.read_noise)

    def _pulse(self, state: CellState, n: Tensor, generator: torch.Generator | None) -> CellState:
        base = state.latent.get("g_base", state.g)
        fluct = state.latent.get("g_fluct", torch.zeros_like(state.g))
        left = n.to(torch.long)
        lo, hi = self.g_min, self.g_max
        # rows: pulses per siemens up / down (interpolated harmonically), write noise up / down
        tabs = torch.tensor([[1.0 / v for v in self.dg_up], [1.0 / v for v in self.dg_down],
                             self.noise_up, self.noise_down], dtype=base.dtype, device=base.device)

        def one_pulse(c: dict[str, Tensor]) -> dict[str, Tensor]:
            base, up = c["base"], c["up"]
            inv_up, inv_down, q_up, q_down = _lerp(tabs, *_locate(base, lo, hi, self.n_bins))
            step = 1.0 / torch.where(up, inv_up, inv_down)
            xi = randn(base, generator)
            fluct = self.noise_memory * c["fluct"] + torch.where(up, q_up, q_down) * xi
            return {"base": (base + step).clamp(lo, hi), "fluct": fluct}

        out = pulse_train(left.abs(), {"base": base, "fluct": fluct, "up": left > 0}, one_pulse)
        base, fluct = out["base"], out["fluct"]
        g = (base + fluct).clamp(lo, hi)
        return state.replace(g=g, g_base=base, g_fluct=fluct)


# --------------------------------------------------------------------------- fitting
def _curves(x: Any, name: str) -> list[np.ndarray]:
    """The curves of one phase as 1-D arrays of consecutive readings: ``x`` is ``(n_pulses,)``,
    ``(n_curves, n_pulses)`` with curves of different lengths padded at the end with NaN, or a
    sequence of 1-D curves of any lengths."""
    if isinstance(x, Tensor):
        x = x.detach().cpu().numpy()
    ragged = (isinstance(x, (list, tuple)) and len(x) > 0
              and all(np.ndim(c) == 1 for c in x)
              and len({len(c) for c in x}) > 1)
    try:
        rows = ([np.asarray(c, dtype=np.float64) for c in x] if ragged
                else list(np.atleast_2d(np.asarray(x, dtype=np.float64))))
    except (TypeError, ValueError):
        raise ConfigError(f"fit: {name} must be a numeric array of readings") from None
    if not rows or (not ragged and np.ndim(x) > 2) or any(r.ndim != 1 for r in rows):
        raise ConfigError(f"fit: {name} has shape {np.shape(x)}; expected (n_curves, n_pulses) "
                         "(curves padded at the end with NaN), (n_pulses,), or a list of curves")
    curves = []
    for c, row in enumerate(rows):
        finite = np.isfinite(row)
        n = int(finite.nonzero()[0][-1]) + 1 if finite.any() else 0
        if not finite[:n].all() or np.isinf(row[n:]).any():
            k = int((~np.isfinite(row[:n])).nonzero()[0][0]) if n else 0
            raise ConfigError(f"fit: {name} curve {c} has a non-finite reading at pulse {k} "
                             "inside the curve; readings must be finite numbers (only the end "
                             "of a shorter curve may be padded with NaN)")
        if n < MIN_PULSES:
            raise ConfigError(f"fit: {name} curve {c} has {n} readings; at least {MIN_PULSES} "
                             "consecutive readings are needed per curve")
        curves.append(row[:n])
    return curves


def _is_integer(x: Any) -> bool:
    """An int, or a float with an integer value; not a bool."""
    return (not isinstance(x, (bool, np.bool_)) and isinstance(x, numbers.Real)
            and math.isfinite(x) and float(x).is_integer())


def _window(n_pulses: int, window: int | None) -> int:
    w = max(5, round(n_pulses / 10)) if window is None else window
    if not _is_integer(w) or not 5 <= w <= n_pulses // 2:
        raise ConfigError(f"fit: window = {window!r}; allowed: an integer from 5 to half the "
                         f"shortest curve ({n_pulses // 2} pulses)")
    w = int(w)
    return w if w % 2 else w - 1


def _savgol(window: int) -> tuple[np.ndarray, np.ndarray]:
    """Savitzky-Golay quadratic over ``window`` pulses: the (3, window) matrix that turns a
    window of readings into polynomial coefficients around its centre, and the Vandermonde
    matrix (window, 3) that evaluates them at the window's offsets."""
    offsets = np.arange(window) - window // 2
    vander = np.vander(offsets, 3, increasing=True).astype(np.float64)
    return np.linalg.pinv(vander), vander


def _trend(x: np.ndarray, window: int) -> np.ndarray:
    """Savitzky-Golay smooth of each row (quadratic over ``window`` pulses; within half a
    window of either end, the quadratic fitted to the first or last window)."""
    fit_coef, vander = _savgol(window)
    m, n = window // 2, x.shape[1]
    out = np.empty_like(x)
    out[:, m:n - m] = np.lib.stride_tricks.sliding_window_view(x, window, axis=1) @ fit_coef[0]
    out[:, :m] = (x[:, :window] @ fit_coef.T) @ vander[:m].T
    out[:, n - m:] = (x[:, n - window:] @ fit_coef.T) @ vander[m + 1:].T
    return out


def _bin_index(s: np.ndarray, g_min: float, g_max: float, n_bins: int) -> np.ndarray:
    i = np.floor((s - g_min) / (g_max - g_min) * n_bins).astype(np.int64)
    return np.clip(i, 0, n_bins - 1)


def _binned(values: np.ndarray, idx: np.ndarray, n_bins: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-bin mean of ``values`` (NaN where a bin is empty) and the counts."""
    count = np.bincount(idx.ravel(), minlength=n_bins).astype(np.float64)
    total = np.bincount(idx.ravel(), weights=values.ravel(), minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / count, np.nan), count


def _fill(values: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """Fill empty (NaN) bins by linear interpolation, constant beyond the filled ones."""
    ok = np.isfinite(values)
    return np.interp(centres, centres[ok], values[ok])


def _smooth_bins(values: np.ndarray) -> np.ndarray:
    padded = np.concatenate([values[:1], values, values[-1:]])
    return 0.25 * padded[:-2] + 0.5 * padded[1:-1] + 0.25 * padded[2:]


def _autocov(resid: Sequence[np.ndarray], max_lag: int, skip: int) -> np.ndarray:
    """Pooled autocovariance of the residuals at lags 0..max_lag, leaving out ``skip`` readings
    at each end of every curve (there the smoother is a polynomial fit, not a convolution)."""
    inner = [r[:, skip:r.shape[1] - skip] for r in resid]
    c = np.zeros(max_lag + 1)
    for j in range(max_lag + 1):
        num = sum(float(np.sum(r[:, j:] * r[:, :r.shape[1] - j])) for r in inner)
        den = sum(r.shape[0] * (r.shape[1] - j) for r in inner)
        c[j] = num / den
    return c


def _filtered_cov(window: int, max_lag: int, phis: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Autocovariance, lags 0..max_lag, of the residual ``(1 - smoother)`` of unit white noise
    (``a``) and of unit-variance AR(1) noise with coefficient ``phi`` (``b``, one row per phi)."""
    g = -_savgol(window)[0][0]
    g[window // 2] += 1.0
    gamma = np.correlate(g, g, mode="full")  # lags -(window-1) .. window-1
    m = np.arange(-(window - 1), window)
    lags = np.arange(max_lag + 1)
    a = np.array([gamma[window - 1 + j] if j < window else 0.0 for j in lags])
    dist = np.abs(lags[:, None] - m[None, :])
    b = np.sum(gamma[None, None, :] * phis[:, None, None] ** dist[None], axis=2)
    return a, b


def _nnls2(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> tuple[float, float]:
    """Non-negative least squares ``c ~ x a + y b`` with x, y >= 0."""
    (x, y), *_ = np.linalg.lstsq(np.stack([a, b], axis=1), c, rcond=None)
    if x >= 0 and y >= 0:
        return float(x), float(y)
    only_a = (max(float(a @ c) / float(a @ a), 0.0), 0.0)
    only_b = (0.0, max(float(b @ c) / float(b @ b), 0.0))
    return min(only_a, only_b, key=lambda s: float(np.sum((c - s[0] * a - s[1] * b) ** 2)))


def _noise_split(c: np.ndarray, window: int, var_read: float | None
                 ) -> tuple[float, float, float]:
    """``(phi, var_u, var_read)`` of the fluctuation model from the residual autocovariance
    ``c`` of :func:`_autocov`, correcting for what the smoother removed: the expected residual
    autocovariance is ``var_read * a + var_u * b(phi)`` (:func:`_filtered_cov`), fitted by
    non-negative least squares over a grid of ``phi``; ``var_read`` fixed when given. ``phi``
    is limited to values whose fluctuation the smoother leaves at least half of."""
    phis = np.linspace(0.02, 0.98, 49)
    a, b = _filtered_cov(window, len(c) - 1, phis)
    keep = b[:, 0] >= 0.5  # memory so long that the smoother absorbs it: not identifiable
    phis, b = phis[keep], b[keep]
    best = (math.inf, 0.0, 0.0, 0.0)  # sse, phi, var_u, var_read
    for phi, bb in zip(phis, b, strict=True):
        if var_read is None:
            vr, vu = _nnls2(a, bb, c)
        else:
            vr, vu = var_read, max(float(np.dot(c - var_read * a, bb) / np.dot(bb, bb)), 0.0)
        sse = float(np.sum((c - vr * a - vu * bb) ** 2))
        if sse < best[0]:
            best = (sse, float(phi), float(vu), float(vr))
    _, phi, var_u, vr = best
    if var_u == 0.0:  # no memory: read and write noise look alike; count it all as write noise
        if var_read is None:
            return 0.0, max(float(c[0]), 0.0) / a[0], 0.0
        return 0.0, max(float(c[0]) / a[0] - var_read, 0.0), var_read
    return phi, var_u, vr


def _sig(values: np.ndarray) -> tuple[float, ...]:
    return tuple(float(f"{v:.6g}") for v in values)


@dataclass(frozen=True)
class _Fit:
    device: MeasuredDevice
    units: str
    offset: float  # data value mapped onto g_min
    scale: float  # S per data unit
    window: int  # smoothing window (pulses)
    measured: tuple[list[np.ndarray], ...]  # readings in S, (up, down): 1-D curves each
    trend: tuple[list[np.ndarray], ...]  # smooth trajectories in S, (up, down)
    dg_measured: tuple[np.ndarray, ...]  # per-bin mean step of the trend (NaN if empty)
    step_std_measured: tuple[np.ndarray, ...]  # per-bin step-to-step std (NaN if empty)


def _fit(potentiation: Any, depression: Any, *, units: str, g_min: float | None,
         g_max: float | None, n_bins: int, window: int | None,
         device_params: dict[str, Any]) -> _Fit:
    if units not in UNITS:
        raise ConfigError(f"fit: units = {units!r}; allowed: {', '.join(map(repr, UNITS))}")
    known = [f.name for f in dataclasses.fields(MeasuredDevice) if f.init]
    unknown = sorted(set(device_params) - set(known))
    if unknown:
        raise ConfigError(f"fit: unknown keyword argument(s) {unknown} = "
                          f"{[device_params[k] for k in unknown]!r}; allowed: units, g_min, "
                          f"g_max, n_bins, window and MeasuredDevice's {', '.join(known)}")
    if not _is_integer(n_bins) or not 2 <= n_bins <= MAX_BINS:
        raise ConfigError(f"fit: n_bins = {n_bins!r}; allowed: an integer from 2 to {MAX_BINS}")
    n_bins = int(n_bins)
    for nm, v in (("g_min", g_min), ("g_max", g_max)):
        if v is not None and (isinstance(v, bool) or not isinstance(v, numbers.Real)
                              or not 0 <= v <= MAX_CONDUCTANCE):
            raise ConfigError(f"fit: {nm} = {v!r} S; allowed: a conductance in "
                             f"[0, {MAX_CONDUCTANCE:g}] S")
    g_min, g_max = (None if v is None else float(v) for v in (g_min, g_max))
    if g_min is not None and g_max is not None and not g_min < g_max:
        raise ConfigError(f"fit: g_min = {g_min} S must be below g_max = {g_max} S")
    raw = (_curves(potentiation, "potentiation"), _curves(depression, "depression"))
    w = _window(min(len(c) for r in raw for c in r), window)  # validated before use
    trend = tuple([_trend(c[None, :], w)[0] for c in r] for r in raw)
    w_lo = min(float(c.min()) for t in trend for c in t)
    w_hi = max(float(c.max()) for t in trend for c in t)
    if not w_hi - w_lo > 1e-9 * max(abs(w_lo), abs(w_hi)):
        raise ConfigError("fit: the readings do not change with the pulses; nothing to fit")
    for t, sign, name in zip(trend, (1.0, -1.0), ("potentiation", "depression"), strict=True):
        if not sign * float(np.mean([c[-1] - c[0] for c in t])) > 0:
            raise ConfigError(f"fit: the {name} readings do not {'rise' if sign > 0 else 'fall'}"
                             " on average over the train; check which array is which")
    if units == "S":
        if w_lo < 0:
            raise ConfigError(f"fit: readings in siemens go down to {w_lo:.4g} S; conductances "
                             "must be >= 0 (use units='normalized' for weight units)")
        if not MIN_CONDUCTANCE <= w_hi <= MAX_CONDUCTANCE:
            raise ConfigError(f"fit: readings in siemens go up to {w_hi:.4g} S; allowed: a "
                             f"highest reading from {MIN_CONDUCTANCE:g} to {MAX_CONDUCTANCE:g} S "
                             "(readings in uS or mS must be converted to S; weight units take "
                             "units='normalized')")
        lo = float(f"{w_lo:.6g}") if g_min is None else g_min
        hi = float(f"{w_hi:.6g}") if g_max is None else g_max
        if not lo < hi:
            raise ConfigError(f"fit: g_min = {lo:.4g} S must be below g_max = {hi:.4g} S")
        covered = max(0.0, min(hi, w_hi) - max(lo, w_lo)) / (w_hi - w_lo)
        if covered < MIN_COVERED:
            raise ConfigError(f"fit: g_min, g_max = {lo:.4g}, {hi:.4g} S cover {covered:.0%} "
                              f"of the readings' range [{w_lo:.4g}, {w_hi:.4g}] S; allowed: "
                              f"bounds covering at least {MIN_COVERED:.0%} of it (steps outside "
                              "the bounds cannot be tabled)")
        offset, scale = lo, 1.0
    else:
        lo = NORMALIZED_RANGE[0] if g_min is None else g_min
        hi = NORMALIZED_RANGE[1] if g_max is None else g_max
        if not lo < hi:
            raise ConfigError(f"fit: g_min = {lo:.4g} S must be below g_max = {hi:.4g} S")
        offset, scale = w_lo, (hi - lo) / (w_hi - w_lo)
    meas = tuple([lo + (c - offset) * scale for c in r] for r in raw)
    trend = tuple([lo + (c - offset) * scale for c in t] for t in trend)
    centres = lo + (hi - lo) / n_bins * (np.arange(n_bins) + 0.5)

    resid = [(m - s)[None, :] for ms, ts in zip(meas, trend, strict=True)
             for m, s in zip(ms, ts, strict=True)]
    c = _autocov(resid, min(20, w // 2), w // 2)
    given = plain_value(device_params.get("read_noise"))
    if given is not None and (isinstance(given, bool) or not isinstance(given, (int, float))
                              or not 0 <= given <= math.sqrt(c[0])):
        raise ConfigError(f"fit: read_noise = {given!r} S; allowed: a std between 0 and the std "
                         f"of the readings around their trend ({math.sqrt(c[0]):.4g} S)")
    phi, var_u, var_read = _noise_split(c, w, None if given is None else float(given) ** 2)
    # the smoother also takes a little of the step-to-step variance: scale the measured one back
    a, b = _filtered_cov(w, 1, np.array([phi]))
    seen = 2 * (var_read * (a[0] - a[1]) + var_u * (b[0, 0] - b[0, 1]))
    true = 2 * (var_read + var_u * (1 - phi))
    gain = true / seen if seen > 0 else 1.0

    dg, q, dg_meas, std_meas = [], [], [], []
    for ms, ts, sign in zip(meas, trend, (1.0, -1.0), strict=True):
        idx = np.concatenate([_bin_index(s[:-1], lo, hi, n_bins) for s in ts])
        steps = np.concatenate([np.diff(s) for s in ts])
        noise = np.concatenate([np.diff(m) for m in ms]) - steps
        mean_step, _ = _binned(steps, idx, n_bins)
        var_step, _ = _binned(noise ** 2, idx, n_bins)
        dg_meas.append(mean_step)
        std_meas.append(np.sqrt(var_step))
        size = sign * _fill(mean_step, centres)
        floor = STEP_FLOOR * float(np.median(size[size > 0]))
        dg.append(sign * np.maximum(size, floor))
        var_fit = gain * _smooth_bins(_fill(var_step, centres))
        q.append(np.sqrt(np.maximum(var_fit - 2 * var_read, 0.0) * (1 + phi) / 2))
    stationary = np.concatenate(q) ** 2 / (1 - phi ** 2)
    params: dict[str, Any] = dict(
        g_min=lo, g_max=hi, dg_up=_sig(dg[0]), dg_down=_sig(dg[1]),
        noise_up=_sig(q[0]), noise_down=_sig(q[1]), noise_memory=float(f"{phi:.4g}"),
        read_noise=float(f"{math.sqrt(var_read):.6g}"),
        program_noise=float(f"{math.sqrt(float(np.mean(stationary))):.6g}"))
    fitted = set(params) & set(device_params)
    if fitted - {"program_noise", "read_noise"}:
        raise ConfigError(f"fit: {sorted(fitted)} are fitted from the data; pass only other "
                         "device parameters (program_noise and read_noise may be overridden)")
    device = MeasuredDevice(**{**params, **device_params})
    return _Fit(device, units, offset, scale, w, meas, trend, tuple(dg_meas), tuple(std_meas))


def fit(potentiation: Any, depression: Any, *, units: str = "S", g_min: float | None = None,
        g_max: float | None = None, n_bins: int = 16, window: int | None = None,
        **device_params: Any) -> MeasuredDevice:
    """Fit a :class:`MeasuredDevice` to pulse trains (see the module docstring for the method).

    ``potentiation`` / ``depression``: consecutive readings after identical up / down pulses,
    ``(n_curves, n_pulses)`` or ``(n_pulses,)``, in siemens (``units="S"``) or normalised weight
    units (``units="normalized"``). ``g_min`` / ``g_max`` (S): in siemens they override the
    bounds read from the data; for normalised data they are the conductance range the data's
    bounds map onto (default 1e-7 .. 1e-5 S). ``n_bins``: state bins of the tables.
    ``window``: smoothing window in pulses (default n_pulses / 10, at least 5). Other keyword
    arguments (``write_voltage``, ``write_energy``, ``program_noise``, ...) go to
    :class:`MeasuredDevice`; ``read_noise`` (S), when you measured it separately (repeated
    reads without pulses), fixes the read-noise part instead of estimating it from the
    pulse trains. Bad input raises ``ValueError``.
    """
    return _fit(potentiation, depression, units=units, g_min=g_min, g_max=g_max,
                n_bins=n_bins, window=window, device_params=device_params).device


# --------------------------------------------------------------------------- report
@dataclass(frozen=True)
class FitReport:
    """Fitted device and how well it reproduces the measured pulse trains (all in S).

    ``measured_*`` / ``trend_*`` / ``simulated_*``: ``(n_curves, n_pulses)`` readings, their
    smooth trajectory, and the mean of ``n_sims`` simulated read traces per curve (curves
    shorter than the longest are padded with NaN).
    ``rms_*``: RMS of (simulated mean - measured) over the range ``g_max - g_min``; ``rms_trend_*``
    against the smooth trajectory (the raw figure has the measurement noise as its floor).
    ``step_std_*``: pooled std of the step-to-step change minus the step of the smooth
    trajectory; ``resid_std_*``: pooled std of the readings around their smooth trajectory (the
    same smoother on measured and on each simulated trace). ``bins``: table bin centres (S) with the
    per-bin mean step of the smooth trajectories and the measured step-to-step std (NaN where
    a bin holds no data).
    """

    device: MeasuredDevice
    units: str
    source: str
    n_sims: int
    seed: int
    measured_up: np.ndarray
    measured_down: np.ndarray
    trend_up: np.ndarray
    trend_down: np.ndarray
    simulated_up: np.ndarray
    simulated_down: np.ndarray
    rms_up: float
    rms_down: float
    rms_trend_up: float
    rms_trend_down: float
    step_std_measured: float
    step_std_simulated: float
    resid_std_measured: float
    resid_std_simulated: float
    bins: np.ndarray
    dg_measured_up: np.ndarray
    dg_measured_down: np.ndarray
    step_std_measured_up: np.ndarray
    step_std_measured_down: np.ndarray

    def summary(self) -> str:
        """A few lines with the residuals."""
        d = self.device
        return (f"{self.source or 'measured device'}\n"
                f"  range {d.g_min:.4g} .. {d.g_max:.4g} S, {d.n_bins} bins, noise memory "
                f"{d.noise_memory:.3g}, read noise {d.read_noise:.3g} S\n"
                f"  RMS(simulated mean - measured) / range: up {self.rms_up:.2%}, down "
                f"{self.rms_down:.2%} (vs trend: {self.rms_trend_up:.2%}, "
                f"{self.rms_trend_down:.2%})\n"
                f"  step-to-step std: measured {self.step_std_measured:.4g} S, simulated "
                f"{self.step_std_simulated:.4g} S; std around trend: measured "
                f"{self.resid_std_measured:.4g} S, simulated {self.resid_std_simulated:.4g} S")


def _simulate(device: MeasuredDevice, start: np.ndarray, n_pulses: int, sign: int,
              n_sims: int, gen: torch.Generator) -> np.ndarray:
    """Read traces ``(n_pulses, n_curves, n_sims)`` of cells programmed to ``start`` and pulsed
    ``n_pulses - 1`` times in direction ``sign``, read after programming and after each pulse."""
    g0 = torch.as_tensor(start, dtype=torch.float64)[:, None].expand(-1, n_sims)
    state = device.program(g0.clamp(device.g_min, device.g_max), generator=gen)
    n = torch.full(state.shape, sign, dtype=torch.long)
    reads = [device.read(state, generator=gen)]
    for _ in range(n_pulses - 1):
        state = device.pulse(state, n, generator=gen)
        reads.append(device.read(state, generator=gen))
    return torch.stack(reads).numpy()


def fit_report(potentiation: Any, depression: Any, *, units: str = "S",
               g_min: float | None = None, g_max: float | None = None, n_bins: int = 16,
               window: int | None = None, n_sims: int = 200, seed: int = 0, source: str = "",
               **device_params: Any) -> FitReport:
    """Fit like :func:`fit`, then simulate the same pulse trains (``n_sims`` cells per curve,
    ``torch.Generator`` seeded with ``seed``) and compare them with the data."""
    n_sims = plain_value(n_sims)
    if isinstance(n_sims, bool) or not isinstance(n_sims, int) or not 2 <= n_sims <= MAX_SIMS:
        raise ConfigError(f"fit_report: n_sims = {n_sims!r}; allowed: an integer in [2, "
                          f"{MAX_SIMS}]")
    seed = seed_value(seed, "fit_report")
    f = _fit(potentiation, depression, units=units, g_min=g_min, g_max=g_max, n_bins=n_bins,
             window=window, device_params=device_params)
    dev = f.device
    span = dev.g_max - dev.g_min
    gen = torch.Generator().manual_seed(seed)
    sims, rms, rms_t, step_m, step_s, res_m, res_s = [], [], [], [], [], [], []
    for meas, trend, sign in zip(f.measured, f.trend, (1, -1), strict=True):
        mean_curves: list[np.ndarray] = [np.empty(0)] * len(meas)
        err, err_t = [], []
        for n in sorted({len(c) for c in meas}):  # curves of one length are simulated together
            rows = [i for i, c in enumerate(meas) if len(c) == n]
            m = np.stack([meas[i] for i in rows])
            s = np.stack([trend[i] for i in rows])
            reads = _simulate(dev, s[:, 0], n, sign, n_sims, gen)
            mean = reads.mean(axis=2).T  # (curves, n)
            for j, i in enumerate(rows):
                mean_curves[i] = mean[j]
            err.append((mean - m).ravel())
            err_t.append((mean - s).ravel())
            # the same smoother on every simulated trace, so that both sides lose the same share
            curves = reads.transpose(1, 2, 0).reshape(-1, n)
            sim_trend = _trend(curves, f.window)
            step_m.append((np.diff(m, axis=1) - np.diff(s, axis=1)).ravel())
            step_s.append((np.diff(curves, axis=1) - np.diff(sim_trend, axis=1)).ravel())
            res_m.append((m - s).ravel())
            res_s.append((curves - sim_trend).ravel())
        sims.append(_padded(mean_curves))
        rms.append(float(np.sqrt(np.mean(np.concatenate(err) ** 2))) / span)
        rms_t.append(float(np.sqrt(np.mean(np.concatenate(err_t) ** 2))) / span)

    def rms_of(parts: list[np.ndarray]) -> float:
        return float(np.sqrt(np.mean(np.concatenate(parts) ** 2)))

    return FitReport(
        device=dev, units=f.units, source=source, n_sims=n_sims, seed=seed,
        measured_up=_padded(f.measured[0]), measured_down=_padded(f.measured[1]),
        trend_up=_padded(f.trend[0]), trend_down=_padded(f.trend[1]),
        simulated_up=sims[0], simulated_down=sims[1],
        rms_up=rms[0], rms_down=rms[1], rms_trend_up=rms_t[0], rms_trend_down=rms_t[1],
        step_std_measured=rms_of(step_m), step_std_simulated=rms_of(step_s),
        resid_std_measured=rms_of(res_m), resid_std_simulated=rms_of(res_s),
        bins=dev.bin_centres(), dg_measured_up=f.dg_measured[0],
        dg_measured_down=f.dg_measured[1], step_std_measured_up=f.step_std_measured[0],
        step_std_measured_down=f.step_std_measured[1])


def plot_fit(report: FitReport, target: str | Path | Any) -> Any:
    """Plot measured vs simulated traces, mean step dG vs G, and step-to-step std vs G.

    ``target``: a file path (.png, .svg or .pdf; a three-panel figure is saved there), a
    sequence of three matplotlib Axes, or one Axes (traces only). Returns the figure.
    Conductances in µS (nS when ``g_max`` is below 1 µS).
    """
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    if isinstance(target, Axes):
        axes: Sequence[Any] = [target]
    elif isinstance(target, (str, Path)):
        target = figure_path(target, "plot_fit: target")
        axes = Figure(figsize=(15, 4.4), layout="constrained").subplots(1, 3)
    else:
        axes = list(target)
        if len(axes) != 3 or not all(isinstance(a, Axes) for a in axes):
            raise ConfigError("plot_fit: target must be a path, one Axes or three Axes")
    us, unit = (1e6, "µS") if report.device.g_max >= 1e-6 else (1e9, "nS")
    ax = axes[0]
    n_up = report.measured_up.shape[1]
    k_up = np.arange(n_up)
    k_dn = n_up + np.arange(report.measured_down.shape[1])
    for i in range(report.measured_up.shape[0]):
        ax.plot(k_up, report.measured_up[i] * us, ".", ms=2, color="tab:blue", alpha=0.5,
                label="measured" if i == 0 else None)
        ax.plot(k_up, report.simulated_up[i] * us, color="k", lw=1.2,
                label=f"simulated mean ({report.n_sims} cells)" if i == 0 else None)
    for i in range(report.measured_down.shape[0]):
        ax.plot(k_dn, report.measured_down[i] * us, ".", ms=2, color="tab:orange", alpha=0.5)
        ax.plot(k_dn, report.simulated_down[i] * us, color="k", lw=1.2)
    ax.set(xlabel="pulse (up, then down)", ylabel=f"G ({unit})",
           title=f"RMS/range up {report.rms_up:.1%}, down {report.rms_down:.1%}")
    ax.legend(loc="best", fontsize=8)
    if len(axes) == 3:
        dev, g = report.device, report.bins
        grid = torch.linspace(dev.g_min, dev.g_max, 200, dtype=torch.float64)
        ax = axes[1]
        ax.plot(g * us, report.dg_measured_up * us, "o", color="tab:blue",
                label="measured up (smoothed trace, bin mean)")
        ax.plot(g * us, report.dg_measured_down * us, "o", color="tab:orange",
                label="measured down")
        ax.plot(grid * us, dev.mean_step(grid, True) * us, color="tab:blue", label="model dG_up")
        ax.plot(grid * us, dev.mean_step(grid, False) * us, color="tab:orange",
                label="model dG_down")
        ax.axhline(0.0, color="grey", lw=0.5)
        ax.set(xlabel=f"G ({unit})", ylabel=f"mean step dG ({unit})", title="mean step vs state")
        ax.legend(fontsize=8)
        ax = axes[2]
        ax.plot(g * us, report.step_std_measured_up * us, "o", color="tab:blue",
                label="measured up")
        ax.plot(g * us, report.step_std_measured_down * us, "o", color="tab:orange",
                label="measured down")
        ax.plot(grid * us, dev.step_std(grid, up=True) * us, color="tab:blue", label="model up")
        ax.plot(grid * us, dev.step_std(grid, up=False) * us, color="tab:orange",
                label="model down")
        ax.axhline(math.sqrt(2) * dev.read_noise * us, color="grey", ls="--",
                   label="read-noise part")
        ax.set(xlabel=f"G ({unit})", ylabel=f"step-to-step std ({unit})", ylim=(0, None),
               title="step-to-step noise (incl. read noise)")
        ax.legend(fontsize=8)
    fig = axes[0].figure
    if isinstance(target, Path):
        target.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(target, dpi=100)
    return fig


# --------------------------------------------------------------------------- presets
_PRESET_DATA: dict[str, tuple[Callable[[], PulseData], str, dict[str, Any]]] = {
    "measured-gong2018-hfo2": (read_gong2018, GONG2018_SOURCE, {}),
    # Pulse and read conditions of the Ag:a-Si device: device-parameters.md §2.5 (MELISO yaml,
    # MLP_NeuroSim Cell.cpp): write +3.2 V, 300 us; read 0.5 V, 5 ns. Energy: cell term of the
    # NeuroSim formula V^2 G t at mid-range G of NeuroSim's 3.0769-38.462 nS (§2.1): 64 pJ.
    "measured-jo2010-agsi": (read_jo2010, JO2010_SOURCE,
                             dict(write_voltage=3.2, write_time=300e-6, read_voltage=0.5,
                                  read_time=5e-9,
                                  write_energy=3.2 ** 2 * 0.5 * (3.0769e-9 + 38.462e-9) * 300e-6)),
}


@functools.cache
def preset_report(name: str) -> FitReport:
    """Fit report of a ``measured-*`` preset on its packaged data (cached)."""
    if name not in _PRESET_DATA:
        raise ConfigError(f"unknown measured preset {name!r}; known: {', '.join(_PRESET_DATA)}")
    reader, source, extra = _PRESET_DATA[name]
    data = reader()
    return fit_report(data.potentiation, data.depression, units=data.units, source=source,
                      **extra)


@functools.cache
def _preset_device(name: str) -> MeasuredDevice:
    reader, _, extra = _PRESET_DATA[name]
    data = reader()
    return fit(data.potentiation, data.depression, units=data.units, **extra)


def _builder(name: str) -> Any:
    return lambda: dataclasses.replace(_preset_device(name))


PRESETS = [
    Preset("measured-gong2018-hfo2", "measured", _builder("measured-gong2018-hfo2"),
           GONG2018_SOURCE + ". Normalised data mapped onto 0.1-10 uS (generic Device range, "
           "no absolute scale is published with the data); pulse energy/time: Device defaults, "
           "not measured",
           "HfO2 RRAM, 1000-pulse up/down response fitted as state-dependent step tables with "
           "mean-reverting write noise and read noise; no drift"),
    Preset("measured-jo2010-agsi", "measured", _builder("measured-jo2010-agsi"),
           JO2010_SOURCE + ". Write +3.2 V / 300 us, read 0.5 V / 5 ns: device-parameters.md "
           "§2.5 (MLP_NeuroSim Cell.cpp); write energy V^2 G t at mid-range G (NeuroSim "
           "formula, §2.5)",
           "Ag:a-Si memristor, ~3-41 nS, strongly nonlinear LTP/LTD fitted as step tables; "
           "no drift"),
]
