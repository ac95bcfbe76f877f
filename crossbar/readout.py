"""The read path of a tile: the cells read at a time t, ADC ranging and the MVMs.

Reading (``set_time``): device read mean / std at time t, split into a frozen part (one sample
per cell, held until the next ``set_time``: every conversion, bit-serial cycle and conv-layer
position of the inference sees it) and a white part (drawn per conversion from its exact
variance). "physical" takes the split from the device's noise model
(:meth:`memxbar.devices.base.Device.read_noise_split`: 1/f noise is frozen below the
conversion frequency ``1 / conversion_interval``), "per_read" freezes all, "per_mvm" none ->
access transistor in series with each cell, ``G_eff = G / (1 + G R_s)`` -> IR drop through
:func:`memxbar.crossbar.circuit.effective_conductance` (only when a wire resistance is > 0) ->
folded analog matrix ``Wa`` (R, adc_cols) in units U = V_read*(g_max-g_min) per ADC converter
(:meth:`memxbar.crossbar.encodings.Encoding.fold`). An MVM then costs one matmul (bit-serial
cycles are stacked into the batch), plus a second one for the exact output variance of the
white part.

Partial row activation (``TileConfig.rows_parallel = k < rows``): the forward MVM reads the rows
in ``G = ceil(rows / k)`` groups, one after the other. A group drives only its k rows; in a
1T1R array the access transistors of the other rows are off, so their cells carry no current
while the wires stay. Each group therefore has its own IR-drop effective matrix (the network
solved with the other rows' cells at 0 S; its rows outside the group are zero), its own read
noise and its own ADC conversion (calibrated ranges per group), and the G group results are
added digitally. ``Wa`` holds every row from its own group's solve, so the groups are a
reshape ``(G, k, adc_cols)`` of it (the last group padded with zero rows) and the forward MVM
stays one batched matmul over ``(..., G, B, k) @ (..., G, k, adc_cols)``. The transposed MVM
(rows sensed) reads the same groups: the rows of group g are sensed while only group g's
transistors are on, and by reciprocity their outputs are ``d @ Wa_g^T`` -- so it uses ``Wa``
unchanged, one conversion per row and read cycle.

Non-ohmic cells (``device.is_ohmic`` False): no effective matrix exists; every forward MVM
solves the network for its row voltages, by :func:`memxbar.crossbar.circuit.solve_nonlinear`
with wire resistance, or (ideal wires) as the column sums of ``device.cell_current(g, v)`` of
every cell (the device in series with its access transistor, for either sign of ``v``), which
is exact. White read noise is added with the low-field (ohmic) output variance. The
transposed MVM, :meth:`mvm_custom` and row groups are refused for such cells.

The tile simulates hardware and is not differentiable (its methods run under ``no_grad``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from memxbar.crossbar.circuit import (
    effective_conductance,
    effective_first_order,
    solve,
    solve_nonlinear,
)
from memxbar.crossbar.periphery import shift_add
from memxbar.crossbar.tilestate import TileAttributes
from memxbar.devices.base import CellState, randn
from memxbar.errors import ConfigError, plain_value

NONLINEAR_ELEMENTS = 2**24  # cell currents held at once by the wire-free nonlinear read
IR_TOLERANCE = 1e-6  # relative error allowed of an IR-drop solve (issue 15), at most


def read_time(t: object, where: str) -> float:
    """A read time ``t`` (s since programming; a numpy number or a one-number tensor too, as
    ``for t in torch.logspace(0, 8, 9)`` gives), else a ConfigError naming ``where``."""
    if isinstance(t, Tensor) and t.dim() == 0 and not (t.is_complex() or t.dtype == torch.bool):
        t = t.item()
    t = plain_value(t)
    if isinstance(t, bool) or not isinstance(t, (int, float)) or not 0 <= t < math.inf:
        raise ConfigError(f"{where}: t = {t!r} s is not allowed; allowed: a finite number "
                          ">= 0 (seconds since programming)")
    return float(t)


class ReadPath(TileAttributes):
    """Mixin of :class:`memxbar.crossbar.tile.Tile`: reading, ADC ranges and MVMs. It uses the
    tile's ``config``, ``shape``, ``state``, ``t``, the buffers ``analog`` / ``analog_var`` /
    ``read_g`` / ``adc_fs`` / ``adc_fs_t`` / ``adc_amax`` / ``adc_amax_t`` and the counter
    ``adc_conversions``."""

    # ================================================================== reading
    @property
    def _wa(self) -> Tensor:
        """Analog matrix ``(*shape, R, adc_cols)`` (units U) at the read time (callers have
        checked that the tile is programmed)."""
        if self._deferred is not None:
            t, gen = self._deferred
            self.set_time(t, generator=gen)
        assert self.analog is not None, "the analog matrix of an unprogrammed tile"
        return self.analog

    @property
    def _va(self) -> Tensor | None:
        """Per-MVM read-noise variances of the analog matrix (None without them)."""
        self._wa  # noqa: B018  (the pending read, if any)
        return self.analog_var

    @property
    def _ohmic(self) -> bool:
        return self.config.device.is_ohmic

    @property
    def _group_rows(self) -> tuple[int, int]:
        """``(G, k)``: row groups and rows per group (the last group may hold fewer)."""
        cfg = self.config
        return cfg.row_groups, min(cfg.rows_parallel or cfg.rows, cfg.rows)

    def _group_mask(self, like: Tensor) -> Tensor:
        """One-hot ``(G, R)`` row-group membership (dtype and device of ``like``)."""
        G, k = self._group_rows
        rows = torch.arange(self.config.rows, device=like.device) // k
        return (rows == torch.arange(G, device=like.device)[:, None]).to(like.dtype)

    ir_error: float | None = None  # achieved relative error of the last IR-drop solve
    ir_fallbacks: int = 0  # exact IR-drop solves redone in float64 (the first was beyond tolerance)

    def _effective(self, g: Tensor) -> Tensor:
        """Physical conductances ``(*shape, A, R, Cp)`` -> effective ones (IR drop), every
        row from its own row group's solve; the solve checked by :meth:`_check_ir`."""
        cfg = self.config
        if cfg.r_row == 0.0 and cfg.r_col == 0.0:
            return g
        if cfg.row_groups == 1:
            return self._solve_ir(g)
        mask = self._group_mask(g)[:, None, :, None]  # (G, 1, R, 1)
        return (self._solve_ir(g.unsqueeze(-4) * mask) * mask).sum(-4)

    def _solve_ir(self, g: Tensor) -> Tensor:
        """Effective matrices of ``g``, checked by :meth:`_check_ir`. An exact solve (float32
        cells' parts below the last merges for float32 matrices) beyond the tolerance is
        solved again in float64 (counted in ``ir_fallbacks``), and refused only then."""
        cfg = self.config
        if cfg.ir_drop == "first_order":
            eff = effective_first_order(g, cfg.r_row, cfg.r_col)
            self._check_ir(g, eff)
            return eff
        eff = effective_conductance(g, cfg.r_row, cfg.r_col)
        if not self._check_ir(g, eff, refuse=False):
            self.ir_fallbacks += 1
            eff = effective_conductance(g, cfg.r_row, cfg.r_col, precision="float64")
            self._check_ir(g, eff)
        return eff

    def ir_tolerance(self, dtype: torch.dtype = torch.float32) -> float:
        """Relative error allowed of the IR-drop solves: :data:`IR_TOLERANCE`, or a quarter of
        the ADC's step relative to its full scale (``2^-bits / 4``) where that is smaller, but
        not below half the rounding unit of ``dtype`` (the effective matrices' dtype: float32
        stores them to ~1e-8 relative, which a 24-bit ADC's 1.5e-8 would refuse)."""
        if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
            raise ConfigError(f"Tile.ir_tolerance: dtype = {dtype!r} is not allowed; allowed: a "
                              "floating-point torch.dtype (torch.float32, torch.float64)")
        bits = self.config.adc.bits
        tol = min(IR_TOLERANCE, 0.25 * 2.0**-bits) if bits else IR_TOLERANCE
        return max(tol, 0.5 * torch.finfo(dtype).eps)

    def _check_ir(self, g: Tensor, eff: Tensor, refuse: bool = True) -> bool:
        """Measure the IR-drop solve's error (``ir_error``): the first array's column currents
        for all rows at 1 V (``V @ eff``, in the dtype used) against an independent solve
        (conjugate gradients on the cell currents, float64, residual 1e-13); whether an exact
        result is within :meth:`ir_tolerance`, refused (RuntimeError, with ``refuse``) if not
        (``ir_drop = "first_order"``: the approximation's error, reported only)."""
        cfg = self.config
        G0 = g.detach().reshape(-1, *g.shape[-2:])[0].double()
        v = torch.ones(1, G0.shape[0], dtype=torch.float64, device=G0.device)
        with torch.no_grad():
            ref = solve(G0, v, cfg.r_row, cfg.r_col, method="cg")
            got = v @ eff.detach().reshape(-1, *eff.shape[-2:])[0].double()
        scale = float(ref.abs().max())
        self.ir_error = float((got - ref).abs().max()) / scale if scale > 0 else 0.0
        tol = self.ir_tolerance(eff.dtype)
        if cfg.ir_drop != "exact" or self.ir_error <= tol:
            return True
        if refuse:
            raise RuntimeError(f"IR-drop solve: relative error {self.ir_error:.2e} exceeds the "
                               f"tolerance {tol:.2e} (ADC bits "
                               f"{cfg.adc.bits}); the wire and cell conductances are too far "
                               "apart for float64")
        return False

    def _require_programmed(self, op: str) -> CellState:
        if self.state is None:
            raise ConfigError(f"Tile.{op}: the tile is not programmed; call program(W) first")
        return self.state

    def _check_generator(self, generator: torch.Generator | None, like: Tensor, op: str
                         ) -> None:
        """Refuse a generator that is not one, or that lives on another torch device."""
        if generator is None:
            return
        if not isinstance(generator, torch.Generator):
            raise ConfigError(f"Tile.{op}: generator must be a torch.Generator or None; got "
                              f"{type(generator).__name__}")
        if generator.device.type != like.device.type:
            raise ConfigError(f"Tile.{op}: generator is on {generator.device}, the tile's "
                              f"tensors on {like.device}; pass a torch.Generator(device="
                              f"'{like.device.type}') (generators follow the tensors)")

    @staticmethod
    def _scaled_std(std: Tensor, mean: Tensor, m: Tensor) -> Tensor:
        """Read stds scaled by each cell's IR-drop attenuation (first order)."""
        if m is mean:
            return std
        return std * torch.where(mean > 0, m / mean, torch.ones_like(mean))

    @property
    def _holds_sample(self) -> bool:
        """True when a read keeps a conductance sample (the frozen read noise) in ``read_g``."""
        return self.config.read_noise in ("per_read", "physical")

    def frozen_fraction(self, t: float | None = None) -> float:
        """Fraction of the cells' read-noise variance that is frozen at ``t`` s (default: the
        read time): sampled once per ``set_time`` and shared by every conversion until the
        next one; the rest is white, drawn per conversion. "physical": the device's split
        (:meth:`memxbar.devices.base.Device.read_noise_split`) at ``conversion_interval``;
        "per_read": 1; "per_mvm" and "off": 0."""
        cfg = self.config
        t = self.t if t is None else read_time(t, "Tile.frozen_fraction")
        if cfg.read_noise != "physical":
            return 1.0 if cfg.read_noise == "per_read" else 0.0
        interval = cfg.conversion_interval or cfg.device.read_time
        return cfg.device.read_noise_split(t, interval)

    @torch.no_grad()
    def set_time(self, t: float, *, generator: torch.Generator | None = None) -> None:
        """Read the cells ``t`` seconds after programming: drift, read noise, IR drop.

        "per_read": one conductance sample per cell now (held for every later MVM until the
        next ``set_time``; kept in the ``read_g`` buffer). "per_mvm": means now, exact
        variance per MVM; with wire resistance the std of a cell is scaled by its IR-drop
        attenuation (first order). "physical": a sample of the frozen part (std
        ``sqrt(f) * sigma``, :meth:`frozen_fraction` ``f``) held in ``read_g``, plus the white
        part (``sqrt(1 - f) * sigma``) exactly per conversion. The access transistor
        (``device.access_resistance``) is in series with every cell:
        ``G_eff = G / (1 + G R_s)``, before the IR-drop network.
        """
        state = self._require_programmed("set_time")
        dev = self.config.device
        mode = self.config.read_noise
        t = read_time(t, "Tile.set_time")
        self._check_generator(generator, state.g, "set_time")
        self._deferred = None
        if mode == "per_read":
            self._install_read(dev.read(state, t, generator=self._rng(generator, state.g)),
                               None)
        elif mode == "per_mvm":
            self._install_read(*dev.read_stats(state, t))
        elif mode == "physical":
            mean, std = dev.read_stats(state, t)
            f = self.frozen_fraction(t)
            if f > 0.0 and bool((std > 0).any()):
                noise = randn(mean, self._rng(generator, state.g))
                mean = mean.addcmul(std, noise, value=math.sqrt(f)).clamp_min_(0.0)
            self._install_read(mean, None if f >= 1.0 else std * math.sqrt(1.0 - f))
        else:
            self._install_read(dev.read_mean(state, t), None)
        self.t = float(t)

    def _install_saved(self) -> None:
        """Install the held sample ``read_g`` again (after loading a state_dict), with the
        white part of the read noise at the read time recomputed."""
        std = None
        f = self.frozen_fraction()
        if self.config.read_noise == "physical" and f < 1.0:
            std = self.config.device.read_std(self._require_programmed("load"), self.t)
            std = std * math.sqrt(1.0 - f)
        assert self.read_g is not None  # the held sample, installed with the saved state
        self._install_read(self.read_g, std)

    def _install_read(self, g: Tensor, std: Tensor | None) -> None:
        """Conductances read now (a sample or the means) and their stds -> the analog
        matrices of the next MVMs (through the access transistor, then the wires)."""
        scheme = self.config.scheme
        dev = self.config.device
        ge = dev.effective_g(g)
        m = self._effective(ge) if self._ohmic else ge
        self.analog = scheme.fold(m)
        self.analog_var = None
        if std is not None:
            va = scheme.fold(self._scaled_std(dev.effective_std(g, std), ge, m), var=True)
            self.analog_var = va if float(va.max()) > 0 else None
        keep = self._holds_sample or not self._ohmic
        self._set_read_g(g if keep else None)
        self._plans = {}

    @torch.no_grad()
    def weights(self, t: float | None = None) -> Tensor:
        """Effective normalised weights ``(*shape, rows, weight_cols)``.

        ``t = None``: what the next MVM sees on average (with "per_read", including the
        current sample); ``t`` given: expected weights at ``t`` (read means, IR drop), the
        tile's own read state unchanged. Non-ohmic cells: their low-field conductances
        (without IR drop; the MVM itself solves the nonlinear network).
        """
        state = self._require_programmed("weights")
        if t is None:
            wa = self._wa
        else:
            mean = self.config.device.effective_g(self.config.device.read_mean(state, t))
            wa = self.config.scheme.fold(self._effective(mean) if self._ohmic else mean)
        return self.config.scheme.recombine(wa)

    @torch.no_grad()
    def weight_variance(self) -> Tensor:
        """Read-noise variance of each effective normalised weight at the current time, frozen
        and white parts together (zero when ``read_noise = "off"``); reference-column noise
        included for "offset"."""
        state = self._require_programmed("weight_variance")
        scheme = self.config.scheme
        dev = self.config.device
        if self.config.read_noise == "off":
            return torch.zeros_like(scheme.recombine(self._wa))
        mean, std = dev.read_stats(state, self.t)
        ge = dev.effective_g(mean)
        m = self._effective(ge) if self._ohmic else ge
        return scheme.recombine(scheme.fold(self._scaled_std(dev.effective_std(mean, std), ge,
                                                             m), var=True), square=True)

    # ================================================================== ADC ranges
    @torch.no_grad()
    def calibrate_adc(self, x: Tensor | None = None, d: Tensor | None = None, *,
                      accumulate: bool = False) -> None:
        """Set ADC full scales from example inputs (noise-free analog outputs of every read
        cycle and row group): ``x`` ``(*shape, B, rows)`` for the forward (column) ADCs,
        ``d`` ``(*shape, B, weight_cols)`` for the transposed (row) ADCs. "calibrated": the
        largest ``|output|`` of each tile (of each row group with ``rows_parallel``);
        "per_column": of each converter (and row group). Converters that saw only zeros get
        the tile's largest value (1 U if the tile saw only zeros). ``accumulate``: widen the
        ranges of an earlier call to cover these inputs too (calibration over several
        batches). No-op for "fixed" ranges and ideal ADCs."""
        self._require_programmed("calibrate_adc")
        adc = self.config.adc
        if x is None and d is None:
            raise ConfigError("Tile.calibrate_adc: give example inputs x (forward) and/or d "
                              "(transposed)")
        if x is not None:
            x = self._check_input(x, self.config.rows, "calibrate_adc", "x")
        if d is not None:
            self._refuse_nonohmic("calibrate_adc (transposed, d)")
            d = self._check_input(d, self.config.weight_cols, "calibrate_adc", "d")
        if adc.bits == 0 or adc.range_mode == "fixed":
            return  # (the inputs checked all the same: a wrong one is wrong for any ADC)
        if x is not None:
            y = self._analog(x, transposed=False)  # (*shape, [G,] N, adc_cols)
            amax = y.abs().amax(dim=-2, keepdim=True)
            amax = amax.expand(*self.shape, *amax.shape[len(self.shape):])
            if accumulate and self.adc_amax is not None:
                amax = torch.maximum(amax, self.adc_amax)
            self.adc_amax, self.adc_fs = amax.clone(), self._full_scale(amax)
        if d is not None:
            y = self._analog(d, transposed=True)  # (*shape, ns, N, rows)
            amax = y.abs().amax(dim=(-3, -2)).unsqueeze(-2)
            if accumulate and self.adc_amax_t is not None:
                amax = torch.maximum(amax, self.adc_amax_t)
            self.adc_amax_t, self.adc_fs_t = amax, self._full_scale(amax)
        self._plans = {}

    @property
    def adc_calibrated(self) -> bool:
        """True when the forward ADC range is known (ideal or "fixed" ADC, or after
        ``calibrate_adc(x)``)."""
        adc = self.config.adc
        return adc.bits == 0 or adc.range_mode == "fixed" or self.adc_fs is not None

    @property
    def adc_calibrated_transposed(self) -> bool:
        """True when the transposed-MVM (row) ADC range is known (ideal or "fixed" ADC, or
        after ``calibrate_adc(d=...)``)."""
        adc = self.config.adc
        return adc.bits == 0 or adc.range_mode == "fixed" or self.adc_fs_t is not None

    def _full_scale(self, amax: Tensor) -> Tensor:
        """Per-converter maxima ``(*shape, [G,] 1, K)`` -> full scales by the range mode (a
        row group ranges like a tile of its own)."""
        return self.config.adc.full_scales(amax)

    def _groups_x(self, xin: Tensor) -> Tensor:
        """Row inputs ``(..., N, R)`` -> per-group inputs ``(..., G, N, k)``."""
        G, k = self._group_rows
        xin = F.pad(xin, (0, G * k - self.config.rows))
        return xin.unflatten(-1, (G, k)).movedim(-2, -3)

    def _groups_w(self, w: Tensor) -> Tensor:
        """Matrix ``(..., R, K)`` -> per-group blocks ``(..., G, k, K)``."""
        G, k = self._group_rows
        return F.pad(w, (0, 0, 0, G * k - self.config.rows)).unflatten(-2, (G, k))

    def _analog(self, x: Tensor, transposed: bool) -> Tensor:
        """Noise-free analog outputs (units U) of every DAC cycle (stacked in the batch
        dimension) and, forward with row groups, of every group ``(..., G, N, K)``."""
        planes, _, volt = self.config.dac.encode(x)
        xin = planes.movedim(0, -3).flatten(-3, -2) * volt
        wa = self._wa
        if transposed:
            return xin.unsqueeze(-3) @ self._slices_t(wa)
        if not self._ohmic:
            return self._nonlinear(xin)
        if self.config.row_groups > 1:
            return self._groups_x(xin) @ self._groups_w(wa)
        return xin @ wa

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
            assert adc.full_scale is not None  # required with bits > 0 (ADC._check)
            return adc.levels / float(adc.full_scale)
        fs = self.adc_fs_t if transposed else self.adc_fs
        if fs is None:
            which = "d" if transposed else "x"
            raise ConfigError(f"Tile.{op}: ADC range_mode='{adc.range_mode}' needs a "
                              f"calibration; call calibrate_adc({which}=...) first")
        return adc.levels / fs

    def _plan(self, transposed: bool, volt: float, op: str, layout: str = "stack") -> tuple:
        """Cached scaled matrices: (A, V or None, additive code variance, post factor).

        Forward with row groups, A and V are per group ``(*shape, G, k, K)``. ``layout``
        "side": the forward matrices of the last stack dimension side by side, ``(*shape[:-1],
        [G, k | R], shape[-1] * K)`` (see :meth:`mvm_rows`); "custom": as "side", the row
        groups as zero-padded full-row blocks side by side in the last dimension
        ``(*shape[:-1], R, G * shape[-1] * K)`` (see :meth:`mvm_custom`)."""
        key = (transposed, volt, layout)
        if key in self._plans:
            return self._plans[key]
        if layout != "stack":
            grouped = layout == "custom" and self.config.row_groups > 1
            plan = tuple(t if t is None or isinstance(t, float)
                         else _side_by_side(self._blocks(t) if grouped and i < 2 else t,
                                            self.shape)
                         for i, t in enumerate(self._plan(transposed, volt, op)))
            if grouped:  # (*shape[:-1], G, R, n K) -> (*shape[:-1], R, G n K)
                plan = tuple(t.movedim(-3, -2).flatten(-2)
                             if i < 2 and isinstance(t, Tensor) else t
                             for i, t in enumerate(plan))
            self._plans[key] = plan
            return plan
        cfg = self.config
        g = self._gain(transposed, op)
        ir = float(cfg.dac.input_range)
        wa, va = self._wa, self._va
        if not transposed:
            if cfg.row_groups > 1:
                wa = self._groups_w(wa)
                va = None if va is None else self._groups_w(va)
            a = wa * (g * volt)
            v = None if va is None else va * (g * volt) ** 2
            post = cfg.scheme.converter_coefficients(cfg.weight_cols, wa) * ir / g
            if cfg.row_groups > 1 and post.dim() < len(self.shape) + 3:  # a group dim
                post = post.reshape((1,) * (len(self.shape) + 3 - post.dim()) + post.shape)
        else:
            coef = wa.new_tensor(cfg.slice_coefficients)
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
        if add is not None and not transposed and cfg.row_groups > 1:
            add = self._used_groups(add, a)
        plan = (a, v, add, post)
        self._plans[key] = plan
        return plan

    def _used_groups(self, add: float | Tensor, like: Tensor) -> float | Tensor:
        """The converters' noise variance ``add`` zeroed for the row groups that hold no used
        row (padding only): they are not converted (``adc_conversions``), so they add no
        noise. ``(*shape, G, 1, adc_cols)`` where a tile has such a group; ``like``: a tensor
        of the plan (dtype, torch device)."""
        cfg = self.config
        assert cfg.rows_parallel is not None  # row_groups > 1
        first = torch.arange(cfg.row_groups) * cfg.rows_parallel  # each group's first row
        used = first < self.used_rows[..., None]  # (*shape, G)
        if bool(used.all()):
            return add
        mask = used.to(like.device, like.dtype)[..., None, None]
        return (mask * add).expand(*self.shape, cfg.row_groups, 1, cfg.adc_cols)

    def _blocks(self, t: Tensor) -> Tensor:
        """Per-group blocks ``(..., G, k, K)`` -> zero-padded full-row blocks ``(..., G, R,
        K)``."""
        G = t.shape[-3]
        eye = torch.eye(G, dtype=t.dtype, device=t.device)[:, :, None, None]
        return (t.unsqueeze(-4) * eye).flatten(-3, -2)[..., : self.config.rows, :]

    # ================================================================== MVMs
    def _check_input(self, x: Tensor, last: int, op: str, name: str) -> Tensor:
        """Shape, dtype, torch device and finiteness of an input; returns it in the tile's
        dtype (any real dtype is accepted: float16, bfloat16 and integers are computed in the
        tile's float32 or float64)."""
        if not isinstance(x, Tensor):
            raise ConfigError(f"Tile.{op}: {name} must be a torch.Tensor, got {type(x).__name__}")
        if x.is_complex() or x.dtype == torch.bool:
            raise ConfigError(f"Tile.{op}: {name} has dtype {x.dtype}; allowed: a real "
                              "floating-point (or integer) tensor")
        ok = x.dim() == len(self.shape) + 2 and x.shape[-1] == last and all(
            a in (1, b) for a, b in zip(x.shape[:-2], self.shape, strict=True))  # broadcasts
        if not ok:
            want = f"(*shape, B, {last}) with shape = {tuple(self.shape)}"
            raise ConfigError(f"Tile.{op}: {name} has shape {tuple(x.shape)}; allowed: {want} "
                              "(leading dims may broadcast)")
        wa = self._wa
        if x.device != wa.device:
            raise ConfigError(f"Tile.{op}: {name} is on {x.device}, the tile on "
                              f"{wa.device}; move one of them")
        if x.dtype != wa.dtype:
            x = x.to(wa.dtype)
        if not math.isfinite(float(x.sum())) and not bool(torch.isfinite(x).all()):
            raise ConfigError(f"Tile.{op}: {name} has non-finite values; allowed: finite inputs")
        return x

    def _refuse_nonohmic(self, op: str) -> None:
        if not self._ohmic:
            raise ConfigError(f"Tile.{op}: not supported for the non-ohmic cells of "
                              f"{type(self.config.device).__name__} (nonlinear I-V); use "
                              "the forward mvm / mvm_rows")

    def _convert(self, y: Tensor, var: Tensor | None, add: float | Tensor | None,
                 generator: torch.Generator | None) -> Tensor:
        """Noise (exact per-conversion variance ``var``, plus ``add``) and ADC on analog
        outputs in code units. ``generator=None``: the tile's private generator (:meth:`_rng`)."""
        if var is not None or add is not None:
            generator = self._rng(generator, y)
        if var is not None:
            if add is not None:
                var = var + add
            y = y.addcmul_(var.sqrt_(), randn(y, generator))
        elif add is not None:
            y = y.addcmul_(torch.as_tensor(add, dtype=y.dtype, device=y.device).sqrt(),
                           randn(y, generator))
        return self.config.adc.to_codes(y)

    def _rng(self, generator: torch.Generator | None, like: Tensor) -> torch.Generator:
        """``generator``, or the tile's private one (seed 0, made at its first draw on
        ``like``'s torch device; it advances across calls): no draw of a tile falls back to
        torch's global generator."""
        if generator is not None:
            return generator
        g = self._generator
        if g is None or g.device.type != like.device.type:
            g = self._generator = torch.Generator(device=like.device).manual_seed(0)
        return g

    @torch.no_grad()
    def mvm(self, x: Tensor, *, generator: torch.Generator | None = None) -> Tensor:
        """Forward MVM: ``x`` ``(*shape, B, rows)`` in [-1, 1] -> ``y`` ``(*shape, B,
        weight_cols)`` ~ ``x @ W`` (normalised weight*input units).

        DAC -> analog dot products per row group (+ read noise, out noise) -> ADC per
        converter, read cycle and row group -> digital shift-add over cycles, groups, slices
        and the offset reference. ``x`` of float16/bfloat16/integer dtype is computed in the
        tile's dtype."""
        self._require_programmed("mvm")
        x = self._check_input(x, self.config.rows, "mvm", "x")
        self._check_generator(generator, x, "mvm")
        return self._forward(x, None, generator, "stack")

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
        if not isinstance(x, Tensor):
            raise ConfigError(f"Tile.mvm_rows: x must be a torch.Tensor, got {type(x).__name__}")
        lead = self.shape[:-1]
        x = self._check_input(x.unsqueeze(-3), self.config.rows, "mvm_rows", "x").squeeze(-3)
        self._check_generator(generator, x, "mvm_rows")
        if x.shape[:-2] != lead:
            x = x.expand(*lead, *x.shape[-2:])
        return self._forward(x, scale, generator, "side")

    @torch.no_grad()
    def mvm_custom(self, x: Tensor, mac: Callable[..., Any],
                   scale: float | Tensor = 1.0, *, generator: torch.Generator | None = None,
                   encoded: bool = False, fused: bool = False) -> Tensor:
        """:meth:`mvm_rows` with the inputs in the caller's own layout: the DAC codes of
        ``x / scale`` (elementwise, any shape; a tensor ``scale`` broadcasts against ``x``)
        and the side-by-side matrices ``(*shape[:-1], rows, M)`` go to ``mac(codes, A)``,
        which returns the analog dot products ``(*shape[:-1], B, M)`` (a convolution computes
        them from the image without unfolding it, or from patches in its own layout).
        ``M = shape[-1] * adc_cols``; with row groups the G groups' zero-padded matrices are
        side by side too, ``M = G * shape[-1] * adc_cols``. One-shot DACs and ohmic cells
        only. ``encoded``: ``x`` holds the DAC codes already (:meth:`DAC.codes`, e.g. written
        while gathering the caller's layout), so they are not recomputed and ``scale`` is not
        used; the caller has checked that its inputs are finite. ``fused``: the caller writes
        the codes itself, as it multiplies them: ``mac(x, A, V)`` returns the dot products with
        ``A`` and, when ``V`` (the read-noise variances of the cells) is not None, those of the
        squared codes with ``V``, else None; ``x`` is only passed on (and checked for its
        device), and the caller has checked that its inputs are finite."""
        self._require_programmed("mvm_custom")
        dac = self.config.dac
        if dac.n_cycles != 1 or not self.shape:
            raise ConfigError("Tile.mvm_custom: needs a one-shot DAC (bit_serial=False, "
                              "signed='voltage') and a stacked tile")
        self._refuse_nonohmic("mvm_custom")
        if not isinstance(x, Tensor) or x.is_complex() or not (encoded or fused) and (
                not math.isfinite(float(x.sum())) and not bool(torch.isfinite(x).all())):
            raise ConfigError("Tile.mvm_custom: x must be a real tensor of finite values")
        wa = self._wa
        if x.device != wa.device:
            raise ConfigError(f"Tile.mvm_custom: x is on {x.device}, the tile on "
                              f"{wa.device}; move one of them")
        self._check_generator(generator, x, "mvm_custom")
        return self._forward(x.to(wa.dtype), scale, generator, "custom", mac=mac,
                             encoded=encoded or fused, fused=fused)

    def _forward(self, x: Tensor, scale: Tensor | float | None,
                 generator: torch.Generator | None, layout: str,
                 mac: Callable = torch.matmul, encoded: bool = False,
                 fused: bool = False) -> Tensor:
        cfg = self.config
        planes, wts, volt = ((x.unsqueeze(0), (1.0,), cfg.dac.step_volts) if encoded
                             else cfg.dac.encode(x, scale))
        a, v, add, post = self._plan(False, volt, "mvm", layout)
        nc, B = planes.shape[0], x.shape[-2]
        xin = planes[0] if nc == 1 else planes.movedim(0, -3).flatten(-3, -2)
        grouped = cfg.row_groups > 1
        if not self._ohmic:
            y = self._nonlinear(xin * volt, side=layout == "side")
            y = y.mul_(self._gain_as(layout))
            var = None if v is None else xin.square() @ v
        elif layout == "custom":
            y, var = mac(xin, a, v) if fused else (
                mac(xin, a), None if v is None else mac(xin * xin, v))
            if grouped:  # (..., B, G n K) -> (..., G, B, n K)
                y = y.unflatten(-1, (cfg.row_groups, -1)).movedim(-2, -3)
                var = None if var is None else var.unflatten(
                    -1, (cfg.row_groups, -1)).movedim(-2, -3)
        else:
            xg = self._groups_x(xin) if grouped else xin
            y = xg @ a
            var = None if v is None else (xg * xg) @ v
        B = y.shape[-2] // nc
        self._count[0] += B * self._per_vector  # adc_conversions
        y = self._convert(y, var, add, generator).mul_(post)
        if grouped:
            y = y.sum(-3)  # row groups added digitally
        if nc > 1:
            y = shift_add(y.unflatten(-2, (nc, B)), wts, dim=-3)
        if layout != "stack":  # slices and reference columns summed per tile
            return cfg.scheme.combine(y.unflatten(-1, (self.shape[-1], cfg.adc_cols))).flatten(-2)
        return cfg.scheme.combine(y)

    def _gain_as(self, layout: str) -> float | Tensor:
        g = self._gain(False, "mvm")
        if isinstance(g, float) or layout == "stack":
            return g
        return _side_by_side(g, self.shape)

    def _nonlinear(self, vin: Tensor, side: bool = False) -> Tensor:
        """Analog outputs (units U) of non-ohmic cells for row drives ``vin`` ``(..., N, R)``
        in units of V_read (``side``: ``(*shape[:-1], N, R)`` shared along the last stack
        dimension, outputs side by side)."""
        cfg = self.config
        dev = cfg.device
        g = self.read_g  # (*shape, A, R, Cp)
        assert g is not None  # kept for non-ohmic cells (_install_read)
        V = vin.unsqueeze(-3) * dev.read_voltage  # (..., 1, N, R)
        if side:
            V = V.unsqueeze(-4)  # shared by the tiles of the last stack dimension
        if cfg.r_row or cfg.r_col:
            current = solve_nonlinear(g, V, cfg.r_row, cfg.r_col, dev.cell_current,
                                      derivative=dev.cell_slope)
        else:  # each cell's current, summed per column: exact without wires
            N = V.shape[-2]
            shape = torch.broadcast_shapes(g.shape[:-2], V.shape[:-2]) + (N,) + g.shape[-2:]
            per = max(1, NONLINEAR_ELEMENTS // max(1, math.prod(shape) // N))
            parts = []
            for b in range(0, N, per):
                vb = V[..., b:b + per, :, None]
                sh = shape[:-3] + (vb.shape[-3],) + shape[-2:]
                parts.append(dev.cell_current(g.unsqueeze(-3).expand(sh), vb.expand(sh))
                             .sum(-2))
            current = torch.cat(parts, dim=-2)
        y = cfg.scheme.fold(current / dev.read_voltage).to(vin.dtype)  # (..., N, K)
        return y.movedim(-3, -2).flatten(-2) if side else y

    @torch.no_grad()
    def mvm_t(self, d: Tensor, *, generator: torch.Generator | None = None) -> Tensor:
        """Transposed MVM through the same cells: ``d`` ``(*shape, B, weight_cols)`` ->
        ``(*shape, B, rows)`` ~ ``d @ W.T``.

        The DAC drives the columns (a differential pair with +d / -d), one read cycle per bit
        slice, the row ADCs convert, shift-add as forward. IR drop uses the forward effective
        matrix transposed, exact by reciprocity of the linear network (drive and sense at the
        same wire ends); with row groups each row is sensed in its own group's read (module
        doc), with the same effective matrix. Offset encoding: ``kappa * g_ref_i * sum_j d_j``
        is subtracted digitally, with the reference column's conductances read at
        ``set_time``. Not counted in ``adc_conversions``; refused for non-ohmic cells."""
        self._require_programmed("mvm_t")
        self._refuse_nonohmic("mvm_t")
        cfg = self.config
        d = self._check_input(d, cfg.weight_cols, "mvm_t", "d")
        self._check_generator(generator, d, "mvm_t")
        planes, wts, volt = cfg.dac.encode(d)
        a, v, add, post = self._plan(True, volt, "mvm_t")
        nc, B = planes.shape[0], d.shape[-2]
        xin = planes[0] if nc == 1 else planes.movedim(0, -3).flatten(-3, -2)
        if cfg.n_slices > 1:
            xin = xin.unsqueeze(-3)
        var = None if v is None else (xin * xin) @ v
        y = self._convert(xin @ a, var, add, generator).mul_(post)
        if cfg.n_slices > 1:
            y = y.sum(-3)
        if nc > 1:
            y = shift_add(y.unflatten(-2, (nc, B)), wts, dim=-3)

        def dsum() -> Tensor:  # sum_j d_j as driven (volts times range), per vector
            s = planes.sum(-1)
            return cfg.dac.input_range * volt * (s[0] if nc == 1 else shift_add(s, wts, dim=0))

        return cfg.scheme.correct_transposed(y, self._wa, dsum)


def _side_by_side(t: Tensor, shape: torch.Size) -> Tensor:
    """``(*shape, *mid, X, K)`` (or broadcastable to it; a 1-D ``(K,)``) -> ``(*shape[:-1],
    *mid, X, shape[-1] * K)``: the last stack dimension moved next to K and merged."""
    nd = len(shape)
    if t.dim() < nd + 2:
        t = t.reshape((1,) * (nd + 2 - t.dim()) + tuple(t.shape))
    t = t.expand(*shape, *t.shape[nd:])
    return t.movedim(nd - 1, -2).flatten(-2).contiguous()
