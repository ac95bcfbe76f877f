"""One crossbar array with its periphery, and stacks of them (leading tensor dimensions).

Weight encoding (normalised weights ``w`` in ``[-1, 1]``; ``range = g_max - g_min``):

- Integer weight code ``q``: analog weights (``weight_bits = 0``) use ``q = w``, ``n_w = 1``;
  otherwise ``q = round(w * n_w)``, ``n_w = 2^(weight_bits-1) - 1`` (symmetric, sign included).
- "differential": ``q+ = max(q, 0)`` on cell G+, ``q- = max(-q, 0)`` on cell G- (the unused cell
  of a pair sits at ``g_min``); the pair's currents are subtracted in the analog domain before
  the ADC (one conversion per pair). Layout "columns": G+/G- are neighbouring columns of one
  array; "arrays": G+ in array 0, G- in array 1, same position.
- "offset": one cell holds ``u = q + z`` (``z = n_w``, so ``u in [0, 2 n_w]``) and a shared
  reference column (last column of the array, every cell at ``g_ref = (g_min + g_max) / 2``)
  is converted by its own ADC and subtracted digitally with a fixed coefficient ``kappa``.
- Bit slices (``bits_per_cell = c > 0``): the magnitude (differential: ``|q|``, ``weight_bits-1``
  bits) or ``u`` (offset: ``weight_bits`` bits) is split into base-``2^c`` digits on
  ``n_slices`` separate cells (neighbouring columns), each converted by its own ADC and
  recombined by digital shift-add with weights ``2^(c s)``.
- A digit ``d in [0, d_max]`` is programmed to ``g_min + d * range / d_max``; ``d_max`` is
  ``2^c - 1`` (sliced), ``n_w`` (differential) or ``2 n_w`` (offset).

With these maps the digital result is exact for an ideal device: forward output ``y = x @ W``
with ``W = q / n_w``. Physical columns within one array are ordered weight column j, then slice
s, then (differential "columns") polarity; the offset reference column is last.

Read path (``set_time``): device read mean / std at time t -> IR drop through
:func:`memxbar.crossbar.circuit.effective_conductance` (only when a wire resistance is > 0) ->
folded analog matrix ``Wa`` (R, n_adc) in units U = V_read*(g_max-g_min) per ADC converter.
``mvm`` then costs one matmul per call (bit-serial cycles are stacked into the batch), plus a
second one for the exact output variance in "per_mvm" read-noise mode.

The tile simulates hardware and is not differentiable (its methods run under ``no_grad``):
hardware-aware training uses :func:`memxbar.crossbar.periphery.quantize` with ``ste=True`` and
the device noise model; online training uses ``mvm``, ``mvm_t`` and ``update``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import torch
from torch import Tensor

from ..devices.base import STUCK_NONE, CellState, Device, randn
from ..errors import ConfigError
from .circuit import effective_conductance
from .periphery import ADC, DAC, MAX_BITS, shift_add

ENCODINGS = ("differential", "offset")
LAYOUTS = ("columns", "arrays")
READ_NOISE = ("per_read", "per_mvm", "off")
UPDATE_MODES = ("stochastic", "counts")
PROBE_CELLS = 4096
PROBE_TRAINS = (1, 4, 16, 64)  # pulse-train lengths tried by probe_steps
COINCIDENCE_ELEMENTS = 2**24  # pulse-train entries held at once by a stochastic update


def _int_field(owner: str, name: str, value: object, lo: int, hi: int | None = None) -> None:
    ok = isinstance(value, int) and not isinstance(value, bool) and value >= lo
    ok = ok and (hi is None or value <= hi)  # type: ignore[operator]
    if not ok:
        allowed = f"an integer in [{lo}, {hi}]" if hi is not None else f"an integer >= {lo}"
        raise ConfigError(f"{owner}.{name} = {value!r} is not allowed; allowed: {allowed}")


def _float_field(owner: str, name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (
            0.0 <= float(value) < math.inf):
        raise ConfigError(f"{owner}.{name} = {value!r} is not allowed; allowed: a finite number "
                         ">= 0")


def _choice(owner: str, name: str, value: object, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ConfigError(f"{owner}.{name} = {value!r} is not allowed; allowed: "
                         f"{', '.join(allowed)}")


@dataclass(frozen=True, kw_only=True)
class TileConfig:
    """One crossbar array and its periphery; checked on construction.

    ``rows`` x ``cols`` is the physical array (each of the two arrays in the differential
    "arrays" layout). ``r_row``/``r_col``: wire resistance per segment (ohm; 0 = ideal wires).
    ``out_noise``: Gaussian noise added to every analog conversion, std in units
    U = V_read*(g_max-g_min) (for analog differential weights this is aihwkit's ``out_noise``,
    relative to one full-scale weight at full input). ``read_noise``: "per_read" samples the
    conductances once per ``set_time`` (aihwkit-style); "per_mvm" draws every conversion from its
    exact distribution, variance ``(x^2) @ sigma^2`` (independent reads); "off" ignores it.
    Columns beyond ``used_cols`` are left off (0 S), which is the same as leaving them out.
    """

    rows: int
    cols: int
    device: Device
    encoding: Literal["differential", "offset"] = "differential"
    layout: Literal["columns", "arrays"] = "columns"
    weight_bits: int = 0
    bits_per_cell: int = 0
    r_row: float = 0.0
    r_col: float = 0.0
    dac: DAC = field(default_factory=DAC)
    adc: ADC = field(default_factory=ADC)
    out_noise: float = 0.0
    read_noise: Literal["per_read", "per_mvm", "off"] = "per_mvm"

    def __post_init__(self) -> None:
        o = "TileConfig"
        _int_field(o, "rows", self.rows, 1)
        _int_field(o, "cols", self.cols, 1)
        if not isinstance(self.device, Device):
            raise ConfigError(f"{o}.device = {self.device!r} is not allowed; allowed: a "
                             "memxbar.devices Device instance")
        _choice(o, "encoding", self.encoding, ENCODINGS)
        _choice(o, "layout", self.layout, LAYOUTS)
        if self.encoding == "offset" and self.layout != "columns":
            raise ConfigError(f"{o}.layout = {self.layout!r} is not allowed with encoding="
                             "'offset' (one cell per weight); allowed: 'columns'")
        _int_field(o, "weight_bits", self.weight_bits, 0, MAX_BITS)
        if self.weight_bits == 1:
            raise ConfigError(f"{o}.weight_bits = 1 is not allowed; allowed: 0 (analog) or an "
                             f"integer in [2, {MAX_BITS}] (sign included)")
        if self.bits_per_cell != 0 and self.weight_bits == 0:
            raise ConfigError(f"{o}.bits_per_cell = {self.bits_per_cell!r} is not allowed with "
                             "weight_bits = 0 (analog weights); allowed: 0")
        if self.weight_bits:
            _int_field(o, "bits_per_cell", self.bits_per_cell, 0, self.magnitude_bits)
        for name in ("r_row", "r_col", "out_noise"):
            _float_field(o, name, getattr(self, name))
        if not isinstance(self.dac, DAC):
            raise ConfigError(f"{o}.dac = {self.dac!r} is not allowed; allowed: a DAC")
        if not isinstance(self.adc, ADC):
            raise ConfigError(f"{o}.adc = {self.adc!r} is not allowed; allowed: an ADC")
        _choice(o, "read_noise", self.read_noise, READ_NOISE)
        if self.weight_cols < 1:
            need = self.used_cols_for(1)
            raise ConfigError(f"{o}.cols = {self.cols} holds no weight column with encoding="
                             f"'{self.encoding}', layout='{self.layout}' and "
                             f"{self.n_slices} slice(s); allowed: cols >= {need}")

    # ------------------------------------------------------------------ derived
    @property
    def magnitude_bits(self) -> int:
        """Bits of the stored code: differential ``|q|`` (weight_bits-1), offset ``u``."""
        return self.weight_bits - 1 if self.encoding == "differential" else self.weight_bits

    @property
    def n_slices(self) -> int:
        """Cells (per polarity) that hold one weight."""
        if self.bits_per_cell == 0:
            return 1
        return -(-self.magnitude_bits // self.bits_per_cell)

    @property
    def weight_levels(self) -> int:
        """``n_w``: weights are ``q / n_w`` with integer ``|q| <= n_w`` (1 when analog)."""
        return 1 if self.weight_bits == 0 else 2 ** (self.weight_bits - 1) - 1

    @property
    def digit_max(self) -> int:
        """Largest digit on one cell (maps to g_max)."""
        if self.bits_per_cell:
            return 2 ** self.bits_per_cell - 1
        return self.weight_levels * (1 if self.encoding == "differential" else 2)

    @property
    def cells_per_weight(self) -> int:
        """Cells per weight (offset: without the shared reference column)."""
        return self.n_slices * (2 if self.encoding == "differential" else 1)

    @property
    def n_arrays(self) -> int:
        """Physical arrays per tile (2 for the differential "arrays" layout)."""
        return 2 if self.encoding == "differential" and self.layout == "arrays" else 1

    @property
    def weight_cols(self) -> int:
        """Logical outputs (weight columns) per tile."""
        if self.encoding == "offset":
            return (self.cols - 1) // self.n_slices
        return self.cols // (self.cells_per_weight // self.n_arrays)

    def used_cols_for(self, weight_cols: int) -> int:
        """Physical columns per array used by ``weight_cols`` weight columns."""
        per = self.cells_per_weight // self.n_arrays
        return weight_cols * per + (1 if self.encoding == "offset" else 0)

    @property
    def used_cols(self) -> int:
        """Physical columns used in each array."""
        return self.used_cols_for(self.weight_cols)

    @property
    def used_rows(self) -> int:
        """Physical rows used (all of them: one row per input)."""
        return self.rows

    @property
    def adc_cols(self) -> int:
        """ADC conversions per read cycle per tile (slices, plus the offset reference)."""
        return self.weight_cols * self.n_slices + (1 if self.encoding == "offset" else 0)

    @property
    def physical_shape(self) -> tuple[int, int, int]:
        """``(n_arrays, rows, used_cols)`` of the cell tensor of one tile."""
        return (self.n_arrays, self.rows, self.used_cols)

    @property
    def g_ref(self) -> float:
        """Conductance of the offset reference cells, S."""
        return 0.5 * (self.device.g_min + self.device.g_max)

    @property
    def slice_coefficients(self) -> list[float]:
        """Digital weight of slice s per unit U: ``2^(c s) * d_max / n_w``."""
        base = 2 ** self.bits_per_cell if self.bits_per_cell else 1
        return [base ** s * self.digit_max / self.weight_levels for s in range(self.n_slices)]

    @property
    def kappa(self) -> float:
        """Offset encoding: coefficient of the reference column (units U -> weight*input).

        ``kappa = (d_max * S * g_min + z * range) / g_ref / n_w`` with ``S = sum_s 2^(c s)``,
        removes both the zero code ``z`` and the ``g_min`` floor of every slice.
        """
        dev = self.device
        base = 2 ** self.bits_per_cell if self.bits_per_cell else 1
        s = sum(base ** k for k in range(self.n_slices))
        z = self.weight_levels
        rng = dev.g_max - dev.g_min
        return (self.digit_max * s * dev.g_min + z * rng) / self.g_ref / self.weight_levels


class Tile:
    """A stack of crossbar tiles of one :class:`TileConfig`; ``shape`` are the stack dims.

    All operations are batched matmuls over the stack (``(*shape, ...)`` tensors).
    """

    def __init__(self, config: TileConfig, shape: tuple[int, ...] | torch.Size = ()) -> None:
        if not isinstance(config, TileConfig):
            raise ConfigError(f"Tile: config = {config!r} is not a TileConfig")
        shape = tuple(shape)
        if not all(isinstance(s, int) and not isinstance(s, bool) and s >= 1 for s in shape):
            raise ConfigError(f"Tile: shape = {shape!r} is not allowed; allowed: a tuple of "
                             "integers >= 1")
        self.config = config
        self.shape = torch.Size(shape)
        self.state: CellState | None = None
        self.t: float = 0.0
        self.pulse_count: Tensor | None = None
        self._wa_now: Tensor | None = None  # analog matrix at the read time (see _wa)
        self._va_now: Tensor | None = None  # per-MVM read variances (see _va)
        self._deferred: tuple[float, torch.Generator | None] | None = None
        self._fs: Tensor | None = None
        self._fs_t: Tensor | None = None
        self._amax: Tensor | None = None  # largest |output| per converter seen in calibration
        self._amax_t: Tensor | None = None
        self._plans: dict[str, tuple] = {}
        self._steps: tuple[float, float] | None = None

    # ================================================================== programming
    @torch.no_grad()
    def program(self, W: Tensor, *, generator: torch.Generator | None = None) -> None:
        """Program normalised weights ``W`` ``(*shape, rows, weight_cols)`` in ``[-1, 1]``.

        Conductance targets follow the encoding (module doc); the device adds its programming
        noise, quantization and faults. Resets the read time to 0 and any ADC calibration.
        """
        targets = self._targets(W, "program")
        self.state = self.config.device.program(targets, generator=generator)
        self.pulse_count = torch.zeros(self.state.shape, dtype=torch.int64,
                                       device=targets.device)
        self._fs = self._fs_t = self._amax = self._amax_t = None
        # the read at t = 0 happens at its first use: a drift() right after programming
        # replaces it without reading the cells twice
        self.t, self._plans, self._deferred = 0.0, {}, (0.0, generator)

    @property
    def _wa(self) -> Tensor | None:
        """Analog matrix ``(*shape, R, adc_cols)`` (units U) at the read time."""
        if self._deferred is not None:
            t, gen = self._deferred
            self.set_time(t, generator=gen)
        return self._wa_now

    @_wa.setter
    def _wa(self, value: Tensor | None) -> None:
        self._deferred, self._wa_now = None, value

    @property
    def _va(self) -> Tensor | None:
        """Per-MVM read-noise variances of the analog matrix (None without them)."""
        return self._va_now if self._wa is not None else None

    @_va.setter
    def _va(self, value: Tensor | None) -> None:
        self._va_now = value

    @torch.no_grad()
    def conductance_targets(self, W: Tensor) -> Tensor:
        """Physical conductance targets (S) ``(*shape, n_arrays, rows, used_cols)`` that
        :meth:`program` writes for normalised weights ``W`` ``(*shape, rows, weight_cols)``
        (encoding, slices and the offset reference column; before device noise)."""
        return self._targets(W, "conductance_targets")

    def _targets(self, W: Tensor, op: str) -> Tensor:
        cfg = self.config
        W = torch.as_tensor(W)
        if not W.is_floating_point():
            W = W.to(torch.get_default_dtype())
        want = (*self.shape, cfg.rows, cfg.weight_cols)
        if tuple(W.shape) != want:
            raise ConfigError(f"Tile.{op}: W has shape {tuple(W.shape)}; expected "
                             f"(*shape, rows, weight_cols) = {want}")
        lo, hi = (float(v) for v in torch.aminmax(W)) if W.numel() else (0.0, 0.0)
        if not (math.isfinite(lo) and math.isfinite(hi)):  # min/max propagate NaN
            raise ConfigError(f"Tile.{op}: W has non-finite values; weights must be finite "
                             "and normalised to [-1, 1]")
        if max(-lo, hi) > 1.0 + 1e-6:
            raise ConfigError(f"Tile.{op}: W spans [{lo:.4g}, {hi:.4g}]; allowed: normalised "
                             "weights in [-1, 1] (scale them first)")
        W = W.clamp(-1.0, 1.0)
        dev = cfg.device
        nw = cfg.weight_levels
        q = W if cfg.weight_bits == 0 else torch.round(W * nw)
        if cfg.encoding == "differential" and cfg.n_slices == 1:
            # one cell per polarity: G+ / G- written straight into the physical layout
            k = (dev.g_max - dev.g_min) / cfg.digit_max
            pair = [torch.mul(q, k).clamp_(min=0.0), torch.mul(q, -k).clamp_(min=0.0)]
            if cfg.layout == "arrays":
                return torch.stack(pair, dim=-3).add_(dev.g_min)
            return torch.stack(pair, dim=-1).add_(dev.g_min).flatten(-2).unsqueeze(-3)
        if cfg.encoding == "differential":
            planes = torch.stack([q.clamp(min=0), (-q).clamp(min=0)], dim=-3)
        else:
            planes = (q + nw).unsqueeze(-3)
        digits = self._split_slices(planes)
        g = dev.g_min + digits * ((dev.g_max - dev.g_min) / cfg.digit_max)
        ref = torch.full((*self.shape, cfg.rows, 1), cfg.g_ref, dtype=W.dtype, device=W.device)
        return self._arrange(g, ref)

    def physical_cells(self, cells: Tensor, ref: Tensor | None = None) -> Tensor:
        """Per-weight cells ``(..., P, n_slices, rows, weight_cols)`` -> physical layout
        ``(..., n_arrays, rows, used_cols)`` (inverse of :meth:`weight_cells`); ``ref``
        ``(..., rows, 1)`` fills the offset reference column (zeros when None)."""
        cfg = self.config
        if cfg.encoding == "offset" and ref is None:
            ref = cells.new_zeros((*cells.shape[:-4], cfg.rows, 1))
        return self._arrange(cells, ref)

    def weight_cells(self, m: Tensor) -> Tensor:
        """Physical per-cell values ``(..., n_arrays, rows, used_cols)`` -> per-weight cells
        ``(..., P, n_slices, rows, weight_cols)`` (``P``: 2 polarities G+/G- for "differential",
        1 for "offset"; the offset reference column is left out). Inverse of the layout of
        :meth:`conductance_targets`."""
        cfg = self.config
        wc, ns = cfg.weight_cols, cfg.n_slices
        if cfg.encoding == "offset":
            a = m[..., 0, :, : wc * ns].unflatten(-1, (wc, ns))  # (..., R, wc, ns)
            return a.movedim(-1, -3).unsqueeze(-4)
        if cfg.layout == "arrays":
            return m.unflatten(-1, (wc, ns)).movedim(-1, -3)
        a = m[..., 0, :, :].unflatten(-1, (wc, ns, 2))  # (..., R, wc, ns, P)
        return a.movedim(-1, -4).movedim(-1, -3)

    def _split_slices(self, planes: Tensor) -> Tensor:
        """``(*shape, P, R, wc)`` codes -> ``(*shape, P, n_slices, R, wc)`` base-2^c digits."""
        cfg = self.config
        if cfg.n_slices == 1:
            return planes.unsqueeze(-3)
        base = 2 ** cfg.bits_per_cell
        return torch.stack([torch.div(planes, base ** s, rounding_mode="floor").remainder(base)
                            for s in range(cfg.n_slices)], dim=-3)

    def _arrange(self, cells: Tensor, ref: Tensor | None) -> Tensor:
        """``(*shape, P, ns, R, wc)`` per-cell values (+ ``(*shape, R, 1)`` offset reference)
        -> physical ``(*shape, n_arrays, R, used_cols)``."""
        cfg = self.config
        lead = cells.shape[:-4]
        R = cfg.rows
        if cfg.encoding == "offset":
            a = cells[..., 0, :, :, :].movedim(-3, -1).reshape(*lead, R, -1)
            return torch.cat([a, ref], dim=-1).unsqueeze(-3)
        if cfg.layout == "arrays":
            return cells.movedim(-3, -1).reshape(*lead, 2, R, -1)
        return cells.movedim(-4, -1).movedim(-4, -2).reshape(*lead, R, -1).unsqueeze(-3)

    def _fold(self, m: Tensor, var: bool = False) -> Tensor:
        """Physical ``(*shape, A, R, Cp)`` conductances (or, ``var``, read stds) -> analog
        matrix ``(*shape, R, adc_cols)`` in units U (differential pairs subtracted; for
        ``var`` the variances ``std^2``, of a pair added)."""
        cfg = self.config
        rng = cfg.device.g_max - cfg.device.g_min
        scale = 1.0 / (rng * rng) if var else 1.0 / rng
        if cfg.encoding == "offset":
            a = m[..., 0, :, :]
            return a * a * scale if var else a * scale
        if cfg.layout == "arrays":
            p, n = m[..., 0, :, :], m[..., 1, :, :]
        else:
            pair = m[..., 0, :, :].unflatten(-1, (-1, 2))
            p, n = pair[..., 0], pair[..., 1]
        if var:
            return torch.mul(p, p).addcmul_(n, n).mul_(scale)
        return torch.sub(p, n).mul_(scale)

    # ================================================================== reading
    def _effective(self, g: Tensor) -> Tensor:
        cfg = self.config
        if cfg.r_row == 0.0 and cfg.r_col == 0.0:
            return g
        return effective_conductance(g, cfg.r_row, cfg.r_col)

    def _require_programmed(self, op: str) -> CellState:
        if self.state is None:
            raise ConfigError(f"Tile.{op}: the tile is not programmed; call program(W) first")
        return self.state

    @torch.no_grad()
    def set_time(self, t: float, *, generator: torch.Generator | None = None) -> None:
        """Read the cells ``t`` seconds after programming: drift, read noise, IR drop.

        "per_read": one conductance sample per cell now (held for every later MVM until the
        next ``set_time``). "per_mvm": means now, exact variance per MVM; with wire resistance
        the std of a cell is scaled by its IR-drop attenuation (first order).
        """
        state = self._require_programmed("set_time")
        dev = self.config.device
        mode = self.config.read_noise
        if isinstance(t, bool) or not isinstance(t, (int, float)) or not 0 <= t < math.inf:
            raise ConfigError(f"Tile.set_time: t = {t!r} s is not allowed; allowed: a finite "
                             "number >= 0 (seconds since programming)")
        self._deferred = None
        self._va = None
        if mode == "per_read":
            self._wa = self._fold(self._effective(dev.read(state, t, generator=generator)))
        else:
            if mode == "per_mvm":
                mean, std = dev.read_stats(state, t)
            else:
                mean = dev.read_mean(state, t)
            m = self._effective(mean)
            self._wa = self._fold(m)
            if mode == "per_mvm":
                if m is not mean:
                    std = std * torch.where(mean > 0, m / mean, torch.ones_like(mean))
                va = self._fold(std, var=True)
                if float(va.max()) > 0:
                    self._va = va
        self.t = float(t)
        self._plans = {}

    @torch.no_grad()
    def weights(self, t: float | None = None) -> Tensor:
        """Effective normalised weights ``(*shape, rows, weight_cols)``.

        ``t = None``: what the next MVM sees on average (with "per_read", including the
        current sample); ``t`` given: expected weights at ``t`` (read means, IR drop), the
        tile's own read state unchanged.
        """
        state = self._require_programmed("weights")
        if t is None:
            wa = self._wa
        else:
            wa = self._fold(self._effective(self.config.device.read_mean(state, t)))
        return self._recombine(wa)

    @torch.no_grad()
    def weight_variance(self) -> Tensor:
        """Read-noise variance of each effective normalised weight at the current time
        (zero when ``read_noise = "off"``); reference-column noise included for "offset"."""
        state = self._require_programmed("weight_variance")
        dev = self.config.device
        if self.config.read_noise == "off":
            return torch.zeros_like(self._recombine(self._wa))
        mean, std = dev.read_stats(state, self.t)
        m = self._effective(mean)
        if m is not mean:
            std = std * torch.where(mean > 0, m / mean, torch.ones_like(mean))
        return self._recombine(self._fold(std, var=True), square=True)

    def _recombine(self, a: Tensor, square: bool = False) -> Tensor:
        """ADC-column values ``(..., adc_cols)`` -> weight columns ``(..., weight_cols)`` by
        the digital shift-add (squared coefficients for variances)."""
        cfg = self.config
        coef = a.new_tensor(cfg.slice_coefficients)
        if square:
            coef = coef * coef
        wc, ns = cfg.weight_cols, cfg.n_slices
        y = a[..., : wc * ns].unflatten(-1, (wc, ns)) @ coef
        if cfg.encoding == "offset":
            k = cfg.kappa * cfg.kappa if square else cfg.kappa
            y = y + (-k if not square else k) * a[..., -1:]
        return y

    # ================================================================== ADC ranges
    @torch.no_grad()
    def calibrate_adc(self, x: Tensor | None = None, d: Tensor | None = None, *,
                      accumulate: bool = False) -> None:
        """Set ADC full scales from example inputs (noise-free analog outputs of every read
        cycle): ``x`` ``(*shape, B, rows)`` for the forward (column) ADCs, ``d``
        ``(*shape, B, weight_cols)`` for the transposed (row) ADCs. "calibrated": the largest
        ``|output|`` of each tile; "per_column": of each converter. Converters that saw only
        zeros get the tile's largest value (1 U if the tile saw only zeros). ``accumulate``:
        widen the ranges of an earlier call to cover these inputs too (calibration over
        several batches). No-op for "fixed" ranges and ideal ADCs."""
        self._require_programmed("calibrate_adc")
        adc = self.config.adc
        if x is None and d is None:
            raise ConfigError("Tile.calibrate_adc: give example inputs x (forward) and/or d "
                             "(transposed)")
        if adc.bits == 0 or adc.range_mode == "fixed":
            return
        if x is not None:
            x = self._check_input(x, self.config.rows, "calibrate_adc", "x")
            y = self._analog(x, transposed=False)  # (*shape, N, adc_cols)
            amax = y.abs().amax(dim=-2, keepdim=True)
            if accumulate and self._amax is not None:
                amax = torch.maximum(amax, self._amax)
            self._amax, self._fs = amax, self._full_scale(amax)
        if d is not None:
            d = self._check_input(d, self.config.weight_cols, "calibrate_adc", "d")
            y = self._analog(d, transposed=True)  # (*shape, ns, N, rows)
            amax = y.abs().amax(dim=(-3, -2)).unsqueeze(-2)
            if accumulate and self._amax_t is not None:
                amax = torch.maximum(amax, self._amax_t)
            self._amax_t, self._fs_t = amax, self._full_scale(amax)
        self._plans = {}

    @property
    def adc_calibrated(self) -> bool:
        """True when the forward ADC range is known (ideal or "fixed" ADC, or after
        ``calibrate_adc(x)``)."""
        adc = self.config.adc
        return adc.bits == 0 or adc.range_mode == "fixed" or self._fs is not None

    @property
    def adc_calibrated_transposed(self) -> bool:
        """True when the transposed-MVM (row) ADC range is known (ideal or "fixed" ADC, or
        after ``calibrate_adc(d=...)``)."""
        adc = self.config.adc
        return adc.bits == 0 or adc.range_mode == "fixed" or self._fs_t is not None

    def _full_scale(self, amax: Tensor) -> Tensor:
        """Per-converter maxima ``(*shape, 1, K)`` -> full scales by the range mode."""
        amax = amax.expand(*self.shape, *amax.shape[-2:]).clone()
        tile = amax.amax(dim=(-2, -1), keepdim=True)
        tile = torch.where(tile > 0, tile, torch.ones_like(tile))
        if self.config.adc.range_mode == "calibrated":
            return tile.expand_as(amax).clone()
        return torch.where(amax > 0, amax, tile)

    def _analog(self, x: Tensor, transposed: bool) -> Tensor:
        """Noise-free analog outputs (units U) of every DAC cycle, cycles stacked in the
        batch dimension."""
        planes, _, volt = self.config.dac.encode(x)
        xin = planes.movedim(0, -3).flatten(-3, -2) * volt
        wa = self._wa
        if not transposed:
            return xin @ wa
        return xin.unsqueeze(-3) @ self._slices_t(wa)

    def _slices_t(self, wa: Tensor) -> Tensor:
        """``(*shape, R, adc_cols)`` -> per-slice transposed matrices ``(*shape, ns, wc, R)``."""
        cfg = self.config
        wc, ns = cfg.weight_cols, cfg.n_slices
        return wa[..., : wc * ns].unflatten(-1, (wc, ns)).permute(
            *range(len(self.shape)), -1, -2, -3)

    def _gain(self, transposed: bool, op: str) -> float | Tensor:
        """ADC codes per unit U: ``n / full_scale`` (1 for an ideal ADC)."""
        adc = self.config.adc
        if adc.bits == 0:
            return 1.0
        if adc.range_mode == "fixed":
            return adc.levels / float(adc.full_scale)  # type: ignore[arg-type]
        fs = self._fs_t if transposed else self._fs
        if fs is None:
            which = "d" if transposed else "x"
            raise ConfigError(f"Tile.{op}: ADC range_mode='{adc.range_mode}' needs a calibration;"
                             f" call calibrate_adc({which}=...) first")
        return adc.levels / fs

    def _plan(self, transposed: bool, volt: float, op: str, side_by_side: bool = False
              ) -> tuple:
        """Cached scaled matrices: (A, V or None, additive code variance, post factor).
        ``side_by_side``: the forward matrices of the last stack dimension side by side,
        ``(*shape[:-1], R, shape[-1] * adc_cols)`` (see :meth:`mvm_rows`)."""
        key = f"{transposed}:{volt}:{side_by_side}"
        if key in self._plans:
            return self._plans[key]
        if side_by_side:
            a, v, add, post = self._plan(transposed, volt, op)
            plan = tuple(t if t is None or isinstance(t, float) else _side_by_side(t, self.shape)
                         for t in (a, v, add, post))
            self._plans[key] = plan
            return plan
        cfg = self.config
        g = self._gain(transposed, op)
        ir = cfg.dac.input_range
        wa, va = self._wa, self._va
        coef = wa.new_tensor(cfg.slice_coefficients)
        if not transposed:
            a = wa * (g * volt)
            v = None if va is None else va * (g * volt) ** 2
            col = coef.repeat(cfg.weight_cols)
            if cfg.encoding == "offset":
                col = torch.cat([col, col.new_tensor([-cfg.kappa])])
            post = col * ir / g
        else:
            gt = g if isinstance(g, float) else g.unsqueeze(-3)  # (*shape, 1, 1, R)
            a = self._slices_t(wa) * (gt * volt)
            v = None if va is None else self._slices_t(va) * (gt * volt) ** 2
            post = coef[:, None, None] * ir / gt  # (ns, 1, 1) or (*shape, ns, 1, R)
            if cfg.n_slices == 1:
                a, post = a.squeeze(-3), post.squeeze(-3)
                v = None if v is None else v.squeeze(-3)
                gt = gt if isinstance(gt, float) else gt.squeeze(-3)
            g = gt
        add = None if cfg.out_noise == 0.0 else (cfg.out_noise * g) ** 2
        plan = (a, v, add, post)
        self._plans[key] = plan
        return plan

    # ================================================================== MVMs
    def _check_input(self, x: Tensor, last: int, op: str, name: str) -> Tensor:
        if not isinstance(x, Tensor):
            raise ConfigError(f"Tile.{op}: {name} must be a torch.Tensor, got {type(x).__name__}")
        ok = x.dim() == len(self.shape) + 2 and x.shape[-1] == last and all(
            a in (1, b) for a, b in zip(x.shape[:-2], self.shape, strict=True))  # broadcasts
        if not ok:
            want = f"(*shape, B, {last}) with shape = {tuple(self.shape)}"
            raise ConfigError(f"Tile.{op}: {name} has shape {tuple(x.shape)}; expected {want} "
                             "(leading dims may broadcast)")
        dtype = self._wa.dtype  # type: ignore[union-attr]
        if x.dtype != dtype:
            x = x.to(dtype)
        if not math.isfinite(float(x.sum())) and not bool(torch.isfinite(x).all()):
            raise ConfigError(f"Tile.{op}: {name} has non-finite values; inputs must be finite")
        return x

    def _convert(self, y: Tensor, v: Tensor | None, xin: Tensor, add: float | Tensor | None,
                 generator: torch.Generator | None, mac: Callable = torch.matmul) -> Tensor:
        """Noise (exact per-conversion variance) and ADC on analog outputs in code units."""
        if v is not None:
            var = mac(xin * xin, v)
            if add is not None:
                var = var + add
            y = y.addcmul_(var.sqrt_(), randn(y, generator))
        elif add is not None:
            y = y.addcmul_(torch.as_tensor(add, dtype=y.dtype, device=y.device).sqrt(),
                           randn(y, generator))
        n = self.config.adc.levels
        if n:
            y = y.round_().clamp_(-n, n)
        return y

    @torch.no_grad()
    def mvm(self, x: Tensor, *, generator: torch.Generator | None = None) -> Tensor:
        """Forward MVM: ``x`` ``(*shape, B, rows)`` in [-1, 1] -> ``y`` ``(*shape, B,
        weight_cols)`` ~ ``x @ W`` (normalised weight*input units).

        DAC -> analog dot products (+ read noise, out noise) -> ADC per converter and read
        cycle -> digital shift-add over cycles, slices and the offset reference."""
        self._require_programmed("mvm")
        x = self._check_input(x, self.config.rows, "mvm", "x")
        return self._forward(x, None, generator, side_by_side=False)

    @torch.no_grad()
    def mvm_rows(self, x: Tensor, scale: Tensor | None = None, *,
                 generator: torch.Generator | None = None) -> Tensor:
        """Forward MVM of inputs shared along the last stack dimension (a row block driving
        every tile of a block row): ``x`` ``(*shape[:-1], B, rows)`` -> ``y`` ``(*shape[:-1],
        B, shape[-1] * weight_cols)``, the tiles' outputs side by side. The DAC sees
        ``x / scale`` (``scale`` broadcast against ``x``, > 0; the digital input pre-scale,
        fused with quantization). Same result as :meth:`mvm`, as one matmul per block row."""
        self._require_programmed("mvm_rows")
        if not self.shape:
            raise ConfigError("Tile.mvm_rows: needs a stacked tile (shape with at least one "
                             "dimension)")
        lead = self.shape[:-1]
        x = self._check_input(x.unsqueeze(-3), self.config.rows, "mvm_rows", "x").squeeze(-3)
        if x.shape[:-2] != lead:
            x = x.expand(*lead, *x.shape[-2:])
        return self._forward(x, scale, generator, side_by_side=True)

    @torch.no_grad()
    def mvm_custom(self, x: Tensor, mac: Callable[[Tensor, Tensor], Tensor],
                   scale: float = 1.0, *, generator: torch.Generator | None = None) -> Tensor:
        """:meth:`mvm_rows` with the inputs in the caller's own layout: the DAC codes of
        ``x / scale`` (elementwise, any shape) and the side-by-side matrices ``(*shape[:-1],
        rows, shape[-1] * adc_cols)`` go to ``mac(codes, A)``, which returns the analog dot
        products ``(*shape[:-1], B, shape[-1] * adc_cols)`` (a convolution computes them
        from the image without unfolding it). One-shot DACs only."""
        self._require_programmed("mvm_custom")
        dac = self.config.dac
        if dac.n_cycles != 1 or not self.shape:
            raise ConfigError("Tile.mvm_custom: needs a one-shot DAC (bit_serial=False, "
                             "signed='voltage') and a stacked tile")
        if not isinstance(x, Tensor) or (not math.isfinite(float(x.sum()))
                                         and not bool(torch.isfinite(x).all())):
            raise ConfigError("Tile.mvm_custom: x must be a tensor of finite values")
        return self._forward(x.to(self._wa.dtype), scale, generator,  # type: ignore[union-attr]
                             side_by_side=True, mac=mac)

    def _forward(self, x: Tensor, scale: Tensor | float | None,
                 generator: torch.Generator | None, side_by_side: bool,
                 mac: Callable = torch.matmul) -> Tensor:
        cfg = self.config
        planes, wts, volt = cfg.dac.encode(x, scale)
        a, v, add, post = self._plan(False, volt, "mvm", side_by_side)
        nc, B = planes.shape[0], x.shape[-2]
        xin = planes[0] if nc == 1 else planes.movedim(0, -3).flatten(-3, -2)
        y = self._convert(mac(xin, a), v, xin, add, generator, mac)
        y = y.mul_(post)
        if nc > 1:
            y = shift_add(y.unflatten(-2, (nc, B)), wts, dim=-3)
        if cfg.n_slices == 1 and cfg.encoding != "offset":
            return y
        if side_by_side:
            y = y.unflatten(-1, (self.shape[-1], cfg.adc_cols))
        if cfg.n_slices > 1:
            y = y[..., : cfg.weight_cols * cfg.n_slices].unflatten(
                -1, (cfg.weight_cols, cfg.n_slices)).sum(-1) + (
                y[..., -1:] if cfg.encoding == "offset" else 0.0)
        else:
            y = y[..., :-1] + y[..., -1:]
        return y.flatten(-2) if side_by_side else y

    @torch.no_grad()
    def mvm_t(self, d: Tensor, *, generator: torch.Generator | None = None) -> Tensor:
        """Transposed MVM through the same cells: ``d`` ``(*shape, B, weight_cols)`` ->
        ``(*shape, B, rows)`` ~ ``d @ W.T``.

        The DAC drives the columns (a differential pair with +d / -d), one read cycle per bit
        slice, the row ADCs convert, shift-add as forward. IR drop uses the forward effective
        matrix transposed, exact by reciprocity of the linear network (drive and sense at the
        same wire ends). Offset encoding: ``kappa * g_ref_i * sum_j d_j`` is subtracted
        digitally, with the reference column's conductances read at ``set_time``."""
        self._require_programmed("mvm_t")
        cfg = self.config
        d = self._check_input(d, cfg.weight_cols, "mvm_t", "d")
        planes, wts, volt = cfg.dac.encode(d)
        a, v, add, post = self._plan(True, volt, "mvm_t")
        nc, B = planes.shape[0], d.shape[-2]
        xin = planes[0] if nc == 1 else planes.movedim(0, -3).flatten(-3, -2)
        if cfg.n_slices > 1:
            xin = xin.unsqueeze(-3)
        y = self._convert(xin @ a, v, xin, add, generator).mul_(post)
        if cfg.n_slices > 1:
            y = y.sum(-3)
        if nc > 1:
            y = shift_add(y.unflatten(-2, (nc, B)), wts, dim=-3)
        if cfg.encoding == "offset":
            dsum = cfg.dac.input_range * volt * (
                planes.sum(-1) if nc == 1 else shift_add(planes.sum(-1), wts, dim=0)
            )
            if nc == 1:
                dsum = dsum[0]
            y = y - cfg.kappa * dsum.unsqueeze(-1) * self._wa[..., -1].unsqueeze(-2)
        return y

    # ================================================================== update
    @torch.no_grad()
    def nominal_step(self) -> tuple[float, float]:
        """Nominal conductance change (S) of one potentiating / one depressing pulse.

        Uses ``device.nominal_step`` (S, or a pair up/down) if the model defines it; otherwise
        probes it once with :func:`probe_steps`."""
        if self._steps is not None:
            return self._steps
        dev = self.config.device
        nom = getattr(dev, "nominal_step", None)
        if nom is not None:
            up, down = (nom, nom) if isinstance(nom, (int, float)) else nom
        else:
            up, down = probe_steps(dev)
        if not (up > 0 and down > 0 and math.isfinite(up) and math.isfinite(down)):
            raise ConfigError(f"Tile.update: device {type(dev).__name__} has nominal steps "
                             f"up = {up!r} S, down = {down!r} S; pulse updates need both > 0")
        self._steps = (float(up), float(down))
        return self._steps

    @torch.no_grad()
    def update(self, x: Tensor, d: Tensor, lr: float, *, generator: torch.Generator | None = None,
               mode: Literal["stochastic", "counts"] = "stochastic", bl: int = 31) -> Tensor:
        """Outer-product update ``W -= lr * x^T d`` (summed over the batch) as device pulses.

        ``x`` ``(*shape, B, rows)``, ``d`` ``(*shape, B, weight_cols)``. Weight change per
        conductance change: ``d_max / (n_w * range)`` (1/range differential, 2/range offset).
        "counts": the change is accumulated digitally and each cell gets ``dG / step`` pulses,
        stochastically rounded (E[pulses] exact). "stochastic": Gokmen & Vlasov 2016
        (Front. Neurosci. 10:333) coincidences of ``bl``-long Bernoulli pulse trains per
        sample, row probability ``C_x |x_i|``, column ``C_d |d_j|`` with
        ``C_x C_d = lr / (bl * dw_min)`` balanced so that both maxima are equal (update
        management); probabilities are clipped at 1 (update saturates when lr is too large
        for ``bl``). Differential: increases potentiate G+, decreases potentiate G-. Offset:
        increases potentiate, decreases depress the cell. Returns pulses applied per tile
        ``(*shape)`` (int64); ``pulse_count`` accumulates them per cell. The read state is
        refreshed at the current time afterwards. Bit-sliced weights are refused.
        """
        self._require_programmed("update")
        cfg = self.config
        if cfg.n_slices > 1:
            raise ConfigError("Tile.update: pulse updates need bits_per_cell = 0 or one slice "
                             f"(got {cfg.n_slices} slices); reprogram bit-sliced weights with "
                             "program()")
        _choice("Tile.update", "mode", mode, UPDATE_MODES)
        _int_field("Tile.update", "bl", bl, 1)
        if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not 0 <= lr < math.inf:
            raise ConfigError(f"Tile.update: lr = {lr!r} is not allowed; allowed: a finite "
                             "number >= 0")
        x = self._check_input(x, cfg.rows, "update", "x")
        d = self._check_input(d, cfg.weight_cols, "update", "d")
        if x.shape[-2] != d.shape[-2]:
            raise ConfigError(f"Tile.update: x has batch {x.shape[-2]}, d has {d.shape[-2]}; "
                             "they must match")
        dev = cfg.device
        up, down = self.nominal_step()
        w_per_s = cfg.digit_max / (cfg.weight_levels * (dev.g_max - dev.g_min))
        diff = cfg.encoding == "differential"
        if mode == "counts":
            dg = (-lr / w_per_s) * (x.mT @ d).expand(*self.shape, cfg.rows, cfg.weight_cols)
            inc = _stochastic_round(dg.clamp(min=0) / up, generator)
            dec = _stochastic_round((-dg).clamp(min=0) / (up if diff else down), generator)
        else:
            dw_min = (up if diff else 0.5 * (up + down)) * w_per_s
            inc, dec = self._coincidences(x, d, lr / (bl * dw_min), bl, generator)
        return self._apply_counts(inc, dec, generator)

    @torch.no_grad()
    def weight_steps(self) -> tuple[float, float]:
        """Nominal change of a normalised weight by one pulse that increases it / one that
        decreases it (differential: a G+ / a G- potentiation; offset: potentiation /
        depression of the cell), from :meth:`nominal_step`."""
        cfg = self.config
        dev = cfg.device
        up, down = self.nominal_step()
        w_per_s = cfg.digit_max / (cfg.weight_levels * (dev.g_max - dev.g_min))
        return up * w_per_s, (up if cfg.encoding == "differential" else down) * w_per_s

    @torch.no_grad()
    def apply_pulses(self, n: Tensor, *, generator: torch.Generator | None = None) -> Tensor:
        """Apply signed pulse counts per weight, ``n`` ``(*shape, rows, weight_cols)`` (int;
        broadcastable): ``n > 0`` increases the weight (differential: potentiates G+; offset:
        potentiates the cell), ``n < 0`` decreases it (potentiates G- / depresses the cell).
        Counts them in ``pulse_count``, re-reads at the current time and returns the pulses
        applied per tile ``(*shape)`` (int64). Bit-sliced weights are refused."""
        self._require_programmed("apply_pulses")
        cfg = self.config
        if cfg.n_slices > 1:
            raise ConfigError("Tile.apply_pulses: pulse updates need bits_per_cell = 0 or one "
                             f"slice (got {cfg.n_slices} slices)")
        n = torch.as_tensor(n)
        if n.is_floating_point() or n.is_complex() or n.dtype == torch.bool:
            raise ConfigError(f"Tile.apply_pulses: n must be an integer tensor, got {n.dtype}")
        want = (*self.shape, cfg.rows, cfg.weight_cols)
        try:
            n = torch.broadcast_to(n.to(torch.int64), want)
        except RuntimeError:
            raise ConfigError(f"Tile.apply_pulses: n has shape {tuple(n.shape)}; expected "
                             f"(*shape, rows, weight_cols) = {want} (broadcastable)") from None
        return self._apply_counts(n.clamp(min=0), (-n).clamp(min=0), generator)

    def _apply_counts(self, inc: Tensor, dec: Tensor, generator: torch.Generator | None
                      ) -> Tensor:
        """Pulse the cells: ``inc`` / ``dec`` ``(*shape, rows, weight_cols)`` counts that
        increase / decrease each weight; returns pulses per tile."""
        cfg = self.config
        dev = cfg.device
        state = self.state
        diff = cfg.encoding == "differential"
        zero = torch.zeros((*self.shape, cfg.rows, 1), dtype=torch.int64, device=inc.device)
        if diff:
            n = self._arrange(torch.stack([inc, dec], dim=-3).unsqueeze(-3), zero)
            self.state = dev.pulse(state, n, generator=generator)
        else:
            self.state = dev.pulse(state, self._arrange(inc[..., None, None, :, :], zero),
                                   generator=generator)
            self.state = dev.pulse(self.state, -self._arrange(dec[..., None, None, :, :], zero),
                                   generator=generator)
        total = inc + dec
        self.pulse_count += (self._arrange(torch.stack([inc, dec], -3).unsqueeze(-3), zero)
                             if diff else self._arrange(total[..., None, None, :, :], zero))
        self.set_time(self.t, generator=generator)
        return total.sum(dim=(-2, -1))

    @torch.no_grad()
    def set_state(self, state: CellState, *, pulses: Tensor | None = None,
                  generator: torch.Generator | None = None) -> None:
        """Install cell states written outside the tile (e.g. by program-and-verify), of shape
        ``(*shape, n_arrays, rows, used_cols)``; ``pulses`` (same shape, int) are added to
        ``pulse_count``. The cells are re-read at the current time; the read time is kept."""
        self._require_programmed("set_state")
        want = (*self.shape, *self.config.physical_shape)
        if not isinstance(state, CellState) or tuple(state.g.shape) != want:
            got = tuple(state.g.shape) if isinstance(state, CellState) else type(state).__name__
            raise ConfigError(f"Tile.set_state: state has shape {got}; expected a CellState of "
                             f"shape {want}")
        self.state = state
        if pulses is not None:
            self.pulse_count = self.pulse_count + torch.as_tensor(pulses).to(torch.int64)
        self.set_time(self.t, generator=generator)

    def _coincidences(self, x: Tensor, d: Tensor, c: float, bl: int,
                      generator: torch.Generator | None) -> tuple[Tensor, Tensor]:
        """Increase / decrease coincidence counts ``(*shape, rows, weight_cols)``."""
        shape = self.shape
        x = x.expand(*shape, *x.shape[-2:])
        d = d.expand(*shape, *d.shape[-2:])
        mx = x.abs().amax(dim=(-2, -1), keepdim=True)
        md = d.abs().amax(dim=(-2, -1), keepdim=True)
        live = (mx > 0) & (md > 0)
        k = torch.where(live, (md / mx.clamp(min=1e-30)).sqrt(), torch.zeros_like(mx))
        px = (x.abs() * (math.sqrt(c) * k)).clamp_(max=1.0)
        pd = (d.abs() * torch.where(live, math.sqrt(c) / k.clamp(min=1e-30), 0.0)).clamp_(max=1.0)

        def trains(p: Tensor, s: Tensor) -> tuple[Tensor, Tensor]:
            # (*shape, b, n) probabilities -> pulse trains (*shape, n, b*bl) split by sign
            u = torch.rand((*p.shape, bl), generator=generator, dtype=p.dtype, device=p.device)
            fire = (u < p.unsqueeze(-1)).to(p.dtype).movedim(-2, -3).flatten(-2)
            pos = fire * (s > 0).to(p.dtype).mT.repeat_interleave(bl, dim=-1)
            return pos, fire - pos

        cfg = self.config
        inc = x.new_zeros((*shape, cfg.rows, cfg.weight_cols))
        dec = torch.zeros_like(inc)
        per_sample = bl * (cfg.rows + cfg.weight_cols) * max(1, shape.numel())
        chunk = max(1, COINCIDENCE_ELEMENTS // per_sample)  # bounds the pulse-train memory
        for b in range(0, x.shape[-2], chunk):
            xp, xn = trains(px[..., b:b + chunk, :], x[..., b:b + chunk, :])
            dp, dn = trains(pd[..., b:b + chunk, :], d[..., b:b + chunk, :])
            inc += xp @ dn.mT + xn @ dp.mT  # W -= lr x d: x d < 0 raises W
            dec += xp @ dp.mT + xn @ dn.mT
        return inc.round().to(torch.int64), dec.round().to(torch.int64)

    # ================================================================== storage
    def tensors(self) -> dict[str, Tensor]:
        """Flat dict of the tile's state tensors (cells, read time, ADC ranges, pulse counts)."""
        state = self._require_programmed("tensors")
        out = {f"cells.{k}": v for k, v in state.tensors().items()}
        out["t"] = torch.tensor(self.t, dtype=torch.float64)
        out["pulse_count"] = self.pulse_count  # type: ignore[assignment]
        if self._fs is not None:
            out["adc_fs"] = self._fs
        if self._fs_t is not None:
            out["adc_fs_t"] = self._fs_t
        if self.config.read_noise == "per_read":
            out["read_sample"] = self._wa  # type: ignore[assignment]
        return out

    @torch.no_grad()
    def load_tensors(self, tensors: dict[str, Tensor], *,
                     generator: torch.Generator | None = None) -> None:
        """Inverse of :meth:`tensors`; re-reads the cells at the stored time ("per_read"
        restores the saved conductance draw)."""
        cells = {k[len("cells."):]: v for k, v in tensors.items() if k.startswith("cells.")}
        if "g" not in cells or "t" not in tensors:
            raise ConfigError("Tile.load_tensors: missing 'cells.g' or 't'; got keys "
                             f"{sorted(tensors)}")
        want = (*self.shape, *self.config.physical_shape)
        if tuple(cells["g"].shape) != want:
            raise ConfigError(f"Tile.load_tensors: cells.g has shape {tuple(cells['g'].shape)}; "
                             f"expected {want} for this config and stack shape")
        self.state = CellState.from_tensors(cells)
        g = self.state.g
        self.pulse_count = tensors.get("pulse_count", torch.zeros(g.shape, dtype=torch.int64))
        self._fs = tensors.get("adc_fs")
        self._fs_t = tensors.get("adc_fs_t")
        self._amax = self._amax_t = None
        self.set_time(float(tensors["t"]), generator=generator)
        if "read_sample" in tensors:  # "per_read": the saved draw, not a new one
            self._wa = tensors["read_sample"]


@torch.no_grad()
def _side_by_side(t: Tensor, shape: torch.Size) -> Tensor:
    """``(*shape, X, K)`` (or broadcastable to it) -> ``(*shape[:-1], X, shape[-1] * K)``."""
    t = t.reshape(1, -1) if t.dim() == 1 else t
    t = t.expand(*shape, *t.shape[-2:])
    return t.movedim(-3, -2).flatten(-2).contiguous()


def probe_steps(device: Device) -> tuple[float, float]:
    """Mean conductance change (S) per potentiating / depressing pulse of ``device``, probed on
    PROBE_CELLS cells programmed at mid-range (private generator, seed 0; stuck cells left out).

    Each direction gets trains of ``k`` = 1, 4, 16, 64 pulses (fresh cells each time) until the
    mean change is positive and known to 10 % (standard error over the cells); the step is that
    mean over ``k``. One pulse suffices for a deterministic or coarse-step device; noisy ones
    (write noise many times the step, as the Gong 2018 fits) are averaged over longer trains.
    A one-shot depression (PCM RESET) is measured by its first pulse. If no train qualifies,
    the longest one is used."""
    gen = torch.Generator().manual_seed(0)
    g0 = torch.full((PROBE_CELLS,), 0.5 * (device.g_min + device.g_max), dtype=torch.float64)
    st = device.program(g0, generator=gen)
    ok = st.latent.get("stuck", torch.zeros(PROBE_CELLS)) == STUCK_NONE
    if not bool(ok.any()):
        ok = torch.ones(PROBE_CELLS, dtype=torch.bool)
    steps = []
    for sign in (1, -1):
        for k in PROBE_TRAINS:
            n = torch.full((PROBE_CELLS,), sign * k, dtype=torch.int64)
            dg = ((device.pulse(st, n, generator=gen).g - st.g) * sign)[ok]
            mean = float(dg.mean())
            sem = float(dg.std()) / math.sqrt(dg.numel()) if dg.numel() > 1 else 0.0
            if mean > 0 and sem <= 0.1 * mean:
                break
        steps.append(mean / k)
    return steps[0], steps[1]


def _stochastic_round(a: Tensor, generator: torch.Generator | None) -> Tensor:
    """Non-negative ``a`` -> int64 ``floor(a) + Bernoulli(frac(a))`` (unbiased)."""
    f = torch.floor(a)
    up = torch.rand(a.shape, generator=generator, dtype=a.dtype, device=a.device) < (a - f)
    return (f + up.to(a.dtype)).to(torch.int64)
