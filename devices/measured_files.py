"""Reading a researcher's measured files: pulse-response files (packaged data sets and user
files in the wide or long layout, :data:`LAYOUTS`) and retention files, with a power-law drift
fitted to the latter (:func:`fit_retention`). Units come from the file's header or from the
caller, never from a guess. :mod:`memxbar.devices.measured` fits devices to what these return.
"""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from memxbar.errors import ConfigError, plain_value

MIN_PULSES = 10  # readings per curve needed for a trend and a noise estimate
_GONG_FILE = "rram_hfo2_gong2018_pulses.csv"
_JO_FILE = "rram_agasi_jo2010_ltp_ltd.csv"


class PulseData(NamedTuple):
    """Pulse-response readings: ``potentiation`` and ``depression`` of shape
    ``(n_curves, n_pulses)``, in ``units`` ("S" or "normalized")."""

    potentiation: np.ndarray
    depression: np.ndarray
    units: str


def _open_rows(path: str | Path | None, default: str) -> tuple[str, list[dict[str, str]],
                                                               list[str]]:
    """Header and rows of a CSV file (UTF-8, with or without the byte-order mark that Excel's
    "CSV UTF-8" writes); ``path=None``: the packaged file ``default``."""
    if path is None and default:
        ref = resources.files(__package__) / "data" / default
        name, text = f"packaged {default}", ref.read_text(encoding="utf-8-sig")
    else:
        if isinstance(path, bytes) or not isinstance(path, (str, os.PathLike)):
            raise ConfigError(f"path = {path!r} is not allowed; allowed: a file path (str or "
                              "pathlib.Path)")
        name = str(path)
        try:
            text = Path(path).read_text(encoding="utf-8-sig")
        except OSError as exc:
            raise ConfigError(f"cannot read pulse data file {name}: {exc}") from None
        except UnicodeDecodeError as exc:
            raise ConfigError(f"{name} is not UTF-8 text (byte {exc.object[exc.start]:#04x} at "
                              f"offset {exc.start}); allowed: UTF-8, with or without a BOM "
                              "(save it as 'CSV UTF-8')") from None
    lines = csv.reader(text.splitlines())
    cols = [c.strip() for c in next(lines, [])]
    dup = sorted({c for c in cols if cols.count(c) > 1})
    if dup:
        raise ConfigError(f"{name}: column names {dup} appear twice; each column needs its own "
                         "name")
    rows = [dict(zip(cols, r, strict=False)) for r in lines if any(v.strip() for v in r)]
    return name, rows, cols


def _column(name: str, rows: list[dict[str, str]], columns: list[str], col: str,
            first_line: int = 2) -> np.ndarray:
    if col not in columns:
        raise ConfigError(f"{name}: missing column {col!r}; found columns {columns}")
    out = np.empty(len(rows))
    for i, row in enumerate(rows):
        raw = (row.get(col) or "").strip()
        try:
            out[i] = float(raw)
        except ValueError:
            raise ConfigError(f"{name}: line {i + first_line}, column {col!r}: {raw!r} is not "
                             "a number") from None
        if not math.isfinite(out[i]):
            raise ConfigError(f"{name}: line {i + first_line}, column {col!r}: {raw!r} is not "
                             "a finite number")
    return out


def _enough(name: str, what: str, n: int) -> None:
    if n < MIN_PULSES:
        raise ConfigError(f"{name}: {what} has {n} readings; at least {MIN_PULSES} are needed")


def read_gong2018(path: str | Path | None = None) -> PulseData:
    """Read a two-column pulse file (``up_pulse_response``, ``down_pulse_response``).

    Each column holds consecutive readings after identical pulses (one curve each), in
    normalised weight units. ``path=None`` reads the packaged Gong et al. (2018) HfO2 data.
    """
    name, rows, cols = _open_rows(path, _GONG_FILE)
    up = _column(name, rows, cols, "up_pulse_response")
    down = _column(name, rows, cols, "down_pulse_response")
    _enough(name, "each column", len(rows))
    return PulseData(up[None, :], down[None, :], "normalized")


def read_jo2010(path: str | Path | None = None) -> PulseData:
    """Read a digitised LTP/LTD file (``phase``, ``pulse_number``, ``conductance_s``).

    ``phase`` is ``potentiation`` or ``depression``; pulse numbers may be fractional (digitised)
    and count from the start of each phase. Each phase is linearly interpolated onto whole pulse
    numbers 0, 1, ..., floor(last). Conductances in siemens. ``path=None`` reads the packaged
    Jo et al. (2010) Ag:a-Si data.
    """
    name, rows, cols = _open_rows(path, _JO_FILE)
    if "phase" not in cols:
        raise ConfigError(f"{name}: missing column 'phase'; found columns {cols}")
    k = _column(name, rows, cols, "pulse_number")
    g = _column(name, rows, cols, "conductance_s")
    phase = np.array([(r.get("phase") or "").strip().lower() for r in rows])
    bad = sorted(set(phase) - {"potentiation", "depression"})
    if bad:
        raise ConfigError(f"{name}: unknown phase {bad[0]!r}; allowed: 'potentiation', "
                         "'depression'")
    curves = []
    for ph in ("potentiation", "depression"):
        kk, gg = k[phase == ph], g[phase == ph]
        _enough(name, f"phase {ph!r}", len(kk))
        if not (np.diff(kk) > 0).all() or kk[0] < 0:
            raise ConfigError(f"{name}: pulse_number of phase {ph!r} must start at >= 0 and "
                             "increase strictly")
        if (gg < 0).any():
            raise ConfigError(f"{name}: phase {ph!r} has negative conductances; conductance_s "
                             "must be >= 0 S")
        grid = np.arange(math.ceil(kk[0]), math.floor(kk[-1]) + 1, dtype=np.float64)
        _enough(name, f"phase {ph!r} on whole pulse numbers", len(grid))
        curves.append(np.interp(grid, kk, gg)[None, :])
    return PulseData(curves[0], curves[1], "S")


# A user's pulse file: one of three layouts, units from the header or given (never guessed).
FILE_UNITS = {"S": 1.0, "mS": 1e-3, "uS": 1e-6, "µS": 1e-6, "nS": 1e-9, "normalized": None}
_UP = ("up", "potentiation", "ltp", "set")
_DOWN = ("down", "depression", "ltd", "reset")
LAYOUTS = ("accepted pulse-file layouts (CSV, header row; example rows separated by ' / '): "
           "WIDE, one column per ramp, blank- or NaN-padded at the end, names up*/potentiation*/"
           "ltp* and down*/depression*/ltd*: 'up_1 (uS),up_2 (uS),down_1 (uS)' / "
           "'1.02,1.01,5.1' / '1.10,,4.9' (two columns up_pulse_response,down_pulse_response "
           "are the one-ramp case); LONG, one reading per row, phase, optional curve and "
           "pulse_number (interpolated onto whole pulses): 'phase,curve,pulse_number,"
           "conductance_us' / 'potentiation,1,0,1.02' / 'depression,1,0,5.1'; units from a "
           "column-name suffix (_s, _us, _ns, _ms, ' (uS)', '[nS]') or units = S, mS, uS, nS or "
           "normalized: a file with neither is refused")


def _unit_of(column: str) -> tuple[str, str | None]:
    """(name, unit) of a column header: ``conductance_us`` -> ("conductance", "uS"),
    ``up_1 (nS)`` -> ("up_1", "nS"); unit None when the header names none."""
    col = column.strip()
    for opening, closing in (("(", ")"), ("[", "]")):
        if col.endswith(closing) and opening in col:
            head, _, unit = col[:-1].rpartition(opening)
            for u in FILE_UNITS:
                if unit.strip().lower() == u.lower():
                    return head.strip(), u
    low = col.lower()
    for suffix, u in (("_us", "uS"), ("_ns", "nS"), ("_ms", "mS"), ("_s", "S")):
        if low.endswith(suffix) and low.removesuffix(suffix) in ("conductance", "g", "reading"):
            return col[: -len(suffix)], u
    return col, None


def _phase_of(name: str) -> int | None:
    """0 (up), 1 (down) or None for a wide-layout column name."""
    low = name.lower()
    for phase, aliases in enumerate((_UP, _DOWN)):
        for a in aliases:
            rest = low[len(a):]
            if low.startswith(a) and (not rest or not rest[0].isalpha()
                                      or rest.startswith("_pulse")):
                return phase
    return None


def _cell(name: str, line: int, col: str, raw: str) -> float:
    raw = raw.strip()
    if raw == "" or raw.lower() in ("nan", "na"):
        return math.nan
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name}: line {line}, column {col!r}: {raw!r} is not a number") from None
    if not math.isfinite(value):
        raise ConfigError(f"{name}: line {line}, column {col!r}: {raw!r} is not a finite number")
    return value


def _scale(name: str, header: set[str | None], units: str | None) -> tuple[float | None, str]:
    """S per file unit (None: normalised) from the header's units and ``units``."""
    if units is not None and units not in FILE_UNITS:
        raise ConfigError(f"{name}: units = {units!r}; allowed: {', '.join(FILE_UNITS)}")
    named = {u for u in header if u is not None}
    if len(named) > 1:
        raise ConfigError(f"{name}: the columns name different units {sorted(named)}; use one")
    if named and units is not None and FILE_UNITS[units] != FILE_UNITS[next(iter(named))]:
        raise ConfigError(f"{name}: units = {units!r} but the header says "
                         f"{next(iter(named))!r}; remove one or make them agree")
    unit = next(iter(named)) if named else units
    if unit is None:
        raise ConfigError(f"{name}: the units of the readings cannot be read from the header; "
                         "give units (S, mS, uS, nS or normalized) or name them in the header. "
                         + LAYOUTS)
    return FILE_UNITS[unit], ("normalized" if FILE_UNITS[unit] is None else "S")


def _ragged(name: str, column: str, values: list[float]) -> np.ndarray:
    a = np.asarray(values, dtype=np.float64)
    ok = np.isfinite(a)
    n = int(ok.nonzero()[0][-1]) + 1 if ok.any() else 0
    if not ok[:n].all():
        k = int((~ok[:n]).nonzero()[0][0])
        raise ConfigError(f"{name}: column {column!r} has a blank or NaN at line {k + 2} inside "
                         "its curve; only the end of a shorter curve may be blank")
    return a[:n]


def read_pulse_file(path: str | Path, *, units: str | None = None) -> PulseData:
    """Read a pulse-response CSV in any accepted layout (:data:`LAYOUTS`): wide (one column per
    ramp, ragged, blank- or NaN-padded), or long (``phase`` rows, several curves per phase by
    ``curve``, ``pulse_number`` interpolated onto whole pulses). ``units``: S, mS, uS, nS or
    normalized, needed when the header names none; readings in S are returned in S."""
    _scale(str(path), set(), units or "S")  # refuse unknown units before reading
    name, rows, cols = _open_rows(path, "")
    named = [_unit_of(c) for c in cols]
    lower = [n.lower() for n, _ in named]
    if "phase" in lower:
        reading = [i for i, n in enumerate(lower)
                   if n in ("conductance", "g", "reading", "weight", "value")]
        if len(reading) != 1:
            raise ConfigError(f"{name}: a long-layout file needs one reading column "
                             f"(conductance, conductance_s, ...); found columns {cols}. " + LAYOUTS)
        col = cols[reading[0]]
        scale, kind = _scale(name, {named[reading[0]][1]}, units)
        key = {n: cols[i] for i, n in enumerate(lower)}
        phases: list[list[np.ndarray]] = [[], []]
        groups: dict[tuple[int, str], list[tuple[float, float]]] = {}
        for i, row in enumerate(rows):
            ph = (row.get(key["phase"]) or "").strip().lower()
            phase = 0 if ph in _UP else 1 if ph in _DOWN else None
            if phase is None:
                raise ConfigError(f"{name}: line {i + 2}: phase {ph!r}; allowed: "
                                 f"{', '.join(_UP + _DOWN)}")
            curve = (row.get(key["curve"]) or "").strip() if "curve" in key else ""
            k = (_cell(name, i + 2, key["pulse_number"], row.get(key["pulse_number"]) or "")
                 if "pulse_number" in key else float(len(groups.get((phase, curve), []))))
            g = _cell(name, i + 2, col, row.get(col) or "")
            if math.isnan(g) or math.isnan(k):
                continue  # a blank row
            groups.setdefault((phase, curve), []).append((k, g))
        for (phase, curve), pts in groups.items():
            kk, gg = np.array(pts).T
            where = f"phase {('potentiation', 'depression')[phase]!r}" + (
                f", curve {curve!r}" if curve else "")
            if not (np.diff(kk) > 0).all() or kk[0] < 0:
                raise ConfigError(f"{name}: pulse_number of {where} must start at >= 0 and "
                                 "increase strictly")
            grid = np.arange(math.ceil(kk[0]), math.floor(kk[-1]) + 1, dtype=np.float64)
            phases[phase].append(np.interp(grid, kk, gg))
    else:
        which = [_phase_of(n) for n, _ in named]
        if 0 not in which or 1 not in which or None in which:
            odd = [c for c, w in zip(cols, which, strict=True) if w is None]
            raise ConfigError(f"{name}: columns {cols} are not an accepted layout"
                             + (f" (cannot tell the phase of {odd})" if odd else
                                " (need up and down ramps)") + ". " + LAYOUTS)
        scale, kind = _scale(name, {u for _, u in named}, units)
        phases = [[], []]
        for col, side in zip(cols, which, strict=True):
            values = [_cell(name, i + 2, col, r.get(col) or "") for i, r in enumerate(rows)]
            phases[int(side or 0)].append(_ragged(name, col, values))
    for what, curves in zip(("potentiation", "depression"), phases, strict=True):
        if not curves:
            raise ConfigError(f"{name}: no {what} readings. " + LAYOUTS)
        for c in curves:
            _enough(name, f"a {what} curve", len(c))
    up, down = (_padded(c) * (scale or 1.0) for c in phases)
    if kind == "S" and (np.nanmin(up) < 0 or np.nanmin(down) < 0):
        raise ConfigError(f"{name}: negative conductances; readings in siemens must be >= 0 "
                         "(give units = 'normalized' for weight units)")
    return PulseData(up, down, kind)


class RetentionData(NamedTuple):
    """Retention readings: per curve (a level, or a level and a cell) the read times (s,
    after programming) and conductances (S), and the curve's level label."""

    times: list[np.ndarray]
    conductances: list[np.ndarray]
    levels: list[str]


RETENTION_LAYOUT = ("a retention file is a CSV with one reading per row: time after "
                    "programming (time_s, or 'time (h)' with s, ms, min, h or d), level (a "
                    "label per programmed level), optional cell, and the conductance with its "
                    "units (conductance_s, conductance_us, 'g (nS)', or units), e.g. "
                    "'time_s,level,cell,conductance_us' / '1,L3,0,12.1' / '3600,L3,0,11.4'")
_TIME_UNITS = {"s": 1.0, "ms": 1e-3, "min": 60.0, "h": 3600.0, "d": 86400.0}


def read_retention_file(path: str | Path, *, units: str | None = None) -> RetentionData:
    """Read conductance-versus-time readings (:data:`RETENTION_LAYOUT`); conductances in S."""
    _scale(str(path), set(), units or "S")  # refuse unknown units before reading
    name, rows, cols = _open_rows(path, "")
    lower = {c.lower(): c for c in cols}
    time_col = next((c for c in cols if c.lower() == "time_s"
                     or c.lower().replace(" ", "").startswith("time(")), None)
    g_cols = [c for c in cols if _unit_of(c)[0].lower() in ("conductance", "g", "reading")]
    if time_col is None or "level" not in lower or len(g_cols) != 1:
        raise ConfigError(f"{name}: columns {cols} are not a retention file. "
                          + RETENTION_LAYOUT)
    t_unit = "s" if time_col.lower() == "time_s" else time_col[time_col.index("(") + 1:-1].strip()
    if t_unit not in _TIME_UNITS:
        raise ConfigError(f"{name}: time unit {t_unit!r}; allowed: {', '.join(_TIME_UNITS)}")
    scale, kind = _scale(name, {_unit_of(g_cols[0])[1]}, units)
    if kind != "S":
        raise ConfigError(f"{name}: retention readings must be conductances (S, mS, uS, nS), "
                          "not normalised units")
    curves: dict[tuple[str, str], list[tuple[float, float]]] = {}
    for i, row in enumerate(rows):
        level = (row.get(lower["level"]) or "").strip()
        cell = (row.get(lower["cell"]) or "").strip() if "cell" in lower else ""
        tt = _cell(name, i + 2, time_col, row.get(time_col) or "")
        g = _cell(name, i + 2, g_cols[0], row.get(g_cols[0]) or "")
        if math.isnan(tt) or math.isnan(g):
            raise ConfigError(f"{name}: line {i + 2}: time and conductance must both be given")
        if not level:
            raise ConfigError(f"{name}: line {i + 2}: the level is blank")
        if tt <= 0 or g <= 0:
            raise ConfigError(f"{name}: line {i + 2}: time ({tt}) and conductance ({g}) must "
                              "be > 0 (a power-law drift is fitted in log-log)")
        curves.setdefault((level, cell), []).append((tt * _TIME_UNITS[t_unit], g * (scale or 1)))
    times, gs, levels = [], [], []
    for (level, cell), pts in curves.items():
        tt, g = np.array(sorted(pts)).T
        if len(tt) < 2 or not (np.diff(tt) > 0).all():
            raise ConfigError(f"{name}: level {level!r}{f', cell {cell!r}' if cell else ''} "
                              "needs >= 2 readings at distinct times")
        times.append(tt)
        gs.append(g)
        levels.append(level)
    if not levels:
        raise ConfigError(f"{name}: no readings. " + RETENTION_LAYOUT)
    return RetentionData(times, gs, levels)


@dataclass(frozen=True)
class RetentionFit:
    """Power-law drift ``G(t) = G(t0) (t / t0)^-nu`` fitted per curve (least squares in
    log-log over readings at ``t >= t0``). Per level (sorted by conductance): ``g0`` (S, mean
    conductance at ``t0``), ``nu`` (mean exponent), ``nu_std`` (cell-to-cell std; 0 with one
    curve per level), ``cells``; ``rms_log`` is the RMS residual of log G over all readings."""

    t0: float
    levels: tuple[str, ...]
    g0: tuple[float, ...]
    nu: tuple[float, ...]
    nu_std: tuple[float, ...]
    cells: tuple[int, ...]
    rms_log: float

    def params(self) -> dict[str, Any]:
        """The drift fields of :class:`MeasuredDevice` (pass to :func:`fit`)."""
        return {"drift_g": self.g0, "drift_nu": self.nu, "drift_nu_std": self.nu_std,
                "drift_t0": self.t0}

    def summary(self) -> str:
        rows = [f"  {lv}: G(t0) {g:.4g} S, nu {n:.4f} ± {s:.4f} ({c} curves)"
                for lv, g, n, s, c in zip(self.levels, self.g0, self.nu, self.nu_std,
                                          self.cells, strict=True)]
        return (f"power-law drift from t0 = {self.t0:g} s, RMS log-residual "
                f"{self.rms_log:.3g}\n" + "\n".join(rows))


def fit_retention(data: RetentionData, *, t0: float | None = None) -> RetentionFit:
    """Fit a power-law drift to retention readings (see :class:`RetentionFit`). ``t0`` (s):
    the reference time, default the earliest reading; each curve needs two readings at or
    after it."""
    first = min(float(tt[0]) for tt in data.times)
    t0 = first if t0 is None else plain_value(t0)
    if isinstance(t0, bool) or not isinstance(t0, (int, float)) or not 0 < t0 < math.inf:
        raise ConfigError(f"fit_retention: t0 = {t0!r}; allowed: a time > 0 s")
    per_level: dict[str, list[tuple[float, float]]] = {}
    resid = []
    for tt, g, level in zip(data.times, data.conductances, data.levels, strict=True):
        keep = tt >= t0
        if keep.sum() < 2:
            raise ConfigError(f"fit_retention: level {level!r} has {int(keep.sum())} readings at "
                              f"t >= t0 = {t0:g} s; two are needed")
        x, y = np.log(tt[keep] / t0), np.log(g[keep])
        slope, intercept = np.polyfit(x, y, 1)
        resid.append(y - (intercept + slope * x))
        per_level.setdefault(level, []).append((math.exp(intercept), -slope))
    order = sorted(per_level, key=lambda lv: np.mean([g for g, _ in per_level[lv]]))
    g0 = tuple(float(np.mean([g for g, _ in per_level[lv]])) for lv in order)
    if len(set(g0)) != len(g0):
        raise ConfigError("fit_retention: two levels start at the same conductance")
    return RetentionFit(
        t0=float(t0), levels=tuple(order), g0=g0,
        nu=tuple(float(np.mean([n for _, n in per_level[lv]])) for lv in order),
        nu_std=tuple(float(np.std([n for _, n in per_level[lv]], ddof=1))
                     if len(per_level[lv]) > 1 else 0.0 for lv in order),
        cells=tuple(len(per_level[lv]) for lv in order),
        rms_log=float(np.sqrt(np.mean(np.concatenate(resid) ** 2))))



def _padded(curves: Sequence[np.ndarray]) -> np.ndarray:
    """Curves as one ``(n_curves, longest)`` array, shorter ones padded with NaN."""
    out = np.full((len(curves), max(len(c) for c in curves)), np.nan)
    for i, c in enumerate(curves):
        out[i, :len(c)] = c
    return out
