"""One crossbar array with its periphery, and stacks of them (leading tensor dimensions).

Weight encoding: ``TileConfig.scheme``, an :class:`~memxbar.crossbar.encodings.Encoding`
(differential pair in two columns or two arrays, offset cell with a reference column, bit
slices of either; defined in :mod:`memxbar.crossbar.encodings`), gives the conductance targets,
the physical layout, the fold of cells into converters, the digital recombination (shift-add
and reference term) and which cells a weight update pulses. With these maps the digital result
is exact for an ideal device: forward output ``y = x @ W`` with ``W = q / n_w``.

Read path (:mod:`memxbar.crossbar.readout`, mixed into :class:`Tile`): ``set_time`` reads the
cells (drift, read noise, IR drop per row group of ``rows_parallel`` rows) into the analog
matrix of the converters; ``mvm`` / ``mvm_rows`` / ``mvm_custom`` / ``mvm_t`` and the ADC
calibration; non-ohmic cells through the nonlinear network solve. A :class:`Tile` is an
``nn.Module`` whose state (cells, pulse counts, ADC ranges, "per_read" sample) is in buffers.

The tile simulates hardware and is not differentiable (its methods run under ``no_grad``):
hardware-aware training uses :func:`memxbar.crossbar.periphery.quantize` with ``ste=True`` and
the device noise model; online training uses ``mvm``, ``mvm_t`` and ``update``.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

import torch
from torch import Tensor

from memxbar.crossbar.circuit import MAX_WIRE_RESISTANCE
from memxbar.crossbar.encodings import ENCODINGS, LAYOUTS, Encoding, make_encoding
from memxbar.crossbar.periphery import ADC, DAC, MAX_BITS
from memxbar.crossbar.readout import ReadPath
from memxbar.crossbar.tilestate import (
    FLOAT_DTYPES,
    CellBuffers,
    TileState,
    check_memory,
    conversions,
    per_tile,
)
from memxbar.devices.base import STUCK_NONE, CellState, Device, Parametrized, param
from memxbar.errors import ConfigError, plain_value

ReadNoise = Literal["physical", "per_read", "per_mvm", "off"]  # TileConfig.read_noise
READ_NOISE: tuple[str, ...] = get_args(ReadNoise)
IR_DROP = ("exact", "first_order")
UPDATE_MODES = ("stochastic", "counts")
PROBE_CELLS = 4096
PROBE_TRAINS = (1, 4, 16, 64)  # pulse-train lengths tried by probe_steps
COINCIDENCE_ELEMENTS = 2**24  # pulse-train entries held at once by a stochastic update
MAX_BL = 1024
"""Longest pulse train of a stochastic update: 1-100 in practice (Gokmen & Vlasov 2016 use 10;
aihwkit's default ``desired_bl`` is 31); one train per row and column of a sample is held at
once, so the bound keeps a sample's trains in memory."""
MAX_ROWS = 1 << 20  # largest rows / cols / rows_parallel of one array (a sanity bound)


def _required(**meta: Any) -> Any:
    """A :func:`param` declaration without a default (the field must be given); typed as
    ``field()`` is, so that it fits the annotated field it declares."""
    return field(metadata=param(0, **meta).metadata)


def _check_trailing(x: object, want: tuple[int, ...], op: str, name: str) -> None:
    """Refuse ``x`` unless it is a tensor whose last dimensions are ``want``."""
    if not isinstance(x, torch.Tensor) or tuple(x.shape[-len(want):]) != want or \
            x.dim() < len(want):
        got = (f"has shape {tuple(x.shape)}" if isinstance(x, torch.Tensor) else
               f"is a {type(x).__name__}")
        raise ConfigError(f"Tile.{op}: {name} {got}; allowed: a tensor of shape "
                          f"(..., {', '.join(map(str, want))})")


def _int_field(owner: str, name: str, value: object, lo: int, hi: int | None = None) -> None:
    if not (isinstance(value, int) and not isinstance(value, bool) and value >= lo
            and (hi is None or value <= hi)):
        allowed = f"an integer in [{lo}, {hi}]" if hi is not None else f"an integer >= {lo}"
        raise ConfigError(f"{owner}.{name} = {value!r} is not allowed; allowed: {allowed}")


def _choice(owner: str, name: str, value: object, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ConfigError(f"{owner}.{name} = {value!r} is not allowed; allowed: "
                         f"{', '.join(allowed)}")


@dataclass(frozen=True, kw_only=True)
class TileConfig(Parametrized):
    """One crossbar array and its periphery; checked on construction.

    ``rows`` x ``cols`` is the physical array (each of the two arrays in the differential
    "arrays" layout). ``r_row``/``r_col``: wire resistance per segment (ohm; 0 = ideal wires);
    ``ir_drop``: "exact" (default) or the "first_order" approximation of their IR drop.
    ``out_noise``: Gaussian noise added to every analog conversion, std in units
    U = V_read*(g_max-g_min) (for analog differential weights this is aihwkit's ``out_noise``,
    relative to one full-scale weight at full input). ``read_noise``: "physical" (default)
    splits the read noise as the device's noise model says (:meth:`Device.read_noise_split` at
    ``conversion_interval``): a frozen part sampled once per ``set_time`` and a white part drawn
    per conversion from its exact distribution; "per_read" samples the conductances once per
    ``set_time`` (aihwkit-style, all frozen); "per_mvm" draws every conversion from its exact
    distribution, variance ``(x^2) @ sigma^2`` (independent reads, all white); "off" ignores it.
    Columns beyond ``used_cols`` are left off (0 S), which is the same as leaving them out.
    ``rows_parallel``: rows read at once (partial row activation): the forward MVM reads
    ``row_groups = ceil(rows / rows_parallel)`` groups one after the other, each with its own
    IR drop, read noise and ADC conversion, added digitally (:mod:`memxbar.crossbar.readout`).
    Each field is declared with :func:`memxbar.devices.base.param` (study domains are generated
    from the declarations); cross-field checks are in ``_check``.
    """

    rows: int = _required(unit="rows", integer=True, ge=1, le=MAX_ROWS,
                          doc="physical rows of the array (one per input)")
    cols: int = _required(unit="columns", integer=True, ge=1, le=MAX_ROWS,
                          doc="physical columns of each array (cells per row)")
    device: Device = field(metadata={"doc": "the memory device (a memxbar.devices Device)"})
    encoding: Literal["differential", "offset"] = param(
        "differential", options=ENCODINGS,
        doc="weight encoding: differential pair (G+ - G-) or offset (one cell, reference column)",
        source="differential: aihwkit / NeuroSim; offset: ISAAC (Shafiee et al., ISCA 2016)")
    layout: Literal["columns", "arrays"] = param(
        "columns", options=LAYOUTS,
        doc="differential pair on neighbouring columns of one array, or in two arrays")
    weight_bits: int = param(0, unit="bit", integer=True, ge=0, le=MAX_BITS,
                             doc="weight resolution including the sign; 0 = analog weights; "
                                 "1 is not allowed")
    bits_per_cell: int = param(0, unit="bit", integer=True, ge=0, le=MAX_BITS,
                               doc="bits per cell of bit-sliced weights; 0 = one cell per "
                                   "weight code", source="ISAAC (Shafiee et al., ISCA 2016)")
    r_row: float = param(0.0, unit="ohm", ge=0.0, le=MAX_WIRE_RESISTANCE,
                         doc="row-wire resistance per cell segment; 0 = ideal wire")
    r_col: float = param(0.0, unit="ohm", ge=0.0, le=MAX_WIRE_RESISTANCE,
                         doc="column-wire resistance per cell segment; 0 = ideal wire")
    ir_drop: Literal["exact", "first_order"] = param(
        "exact", options=IR_DROP,
        doc="IR-drop model with wire resistance: exact (the network solved, checked to "
            "Tile.ir_tolerance) or first_order (circuit.effective_first_order: O(R C), error "
            "second order in the drop, measured against the exact solve in Tile.ir_error)",
        source="first order: own derivation; peers correct approximately too (aihwkit: a "
               "polynomial along the output line)")
    dac: DAC = field(default_factory=DAC, metadata={"doc": "input DAC (row drivers)"})
    adc: ADC = field(default_factory=ADC, metadata={"doc": "output ADC (one per converter)"})
    out_noise: float = param(0.0, unit="U", ge=0.0,
                             doc="std of Gaussian noise on every analog conversion, in units "
                                 "V_read*(g_max-g_min)",
                             source="aihwkit IOParameters.out_noise (same meaning for analog "
                                    "differential weights)")
    read_noise: ReadNoise = param(
        "physical", options=READ_NOISE,
        doc="physical: the device's frozen part sampled once per set_time, its white part "
            "drawn per conversion (Device.read_noise_split); per_read: all frozen; per_mvm: "
            "all white (exact distribution per conversion); off",
        source="1/f read noise (Joshi et al. 2020; CMO RRAM, Lombardo et al. 2024) is mostly "
               "frozen within an inference: only its band above the conversion frequency "
               "decorrelates (issue 13)")
    conversion_interval: float | None = param(
        None, unit="s", gt=0.0, nullable=True,
        doc="time between two conversions of one cell (one read cycle), which sets the "
            "frozen / white split of 1/f read noise; None = the device's read_time (read "
            "cycles back to back)")
    rows_parallel: int | None = param(
        None, unit="rows", integer=True, ge=1, le=MAX_ROWS, nullable=True,
        doc="rows read at once per conversion (partial row activation, read in "
            "ceil(rows / rows_parallel) groups added digitally); None, or a value >= rows, "
            "= all rows at once",
        source="NeuroSim (Peng et al., IEDM 2019): rows read in parallel")

    def _check(self) -> None:
        o = "TileConfig"
        if not isinstance(self.device, Device):
            raise ConfigError(f"{o}.device = {self.device!r} is not allowed; allowed: a "
                             "memxbar.devices Device instance")
        self.scheme  # noqa: B018  (builds the encoding: checks encoding, layout and bits)
        if not isinstance(self.dac, DAC):
            raise ConfigError(f"{o}.dac = {self.dac!r} is not allowed; allowed: a DAC")
        if not isinstance(self.adc, ADC):
            raise ConfigError(f"{o}.adc = {self.adc!r} is not allowed; allowed: an ADC")
        if self.weight_cols < 1:
            need = self.used_cols_for(1)
            raise ConfigError(f"{o}.cols = {self.cols} holds no weight column with encoding="
                             f"'{self.encoding}', layout='{self.layout}' and "
                             f"{self.n_slices} slice(s); allowed: cols >= {need}")
        if not self.device.is_ohmic and self.row_groups > 1:
            raise ConfigError(f"{o}.rows_parallel = {self.rows_parallel} is not supported with "
                             f"the non-ohmic device {type(self.device).__name__} (nonlinear "
                             f"I-V); allowed: None or >= rows = {self.rows}")
        check_memory(self, ())

    @property
    def row_groups(self) -> int:
        """Row groups read one after the other per read cycle (1 with all rows at once)."""
        rp = self.rows_parallel
        return 1 if rp is None else -(-self.rows // rp)

    def conversions_per_vector(self, used_weight_cols: int | None = None,
                               used_rows: int | None = None) -> int:
        """Forward ADC conversions that one input vector costs in one tile: DAC cycles x row
        groups of ``used_rows`` (rows holding weights; default all; 0 rows: 0) x converters
        of ``used_weight_cols`` weight columns (default all; their slices, plus the offset
        reference column)."""
        wc = self.weight_cols if used_weight_cols is None else plain_value(used_weight_cols)
        r = self.rows if used_rows is None else plain_value(used_rows)
        for name, v, hi in (("used_weight_cols", wc, self.weight_cols), ("used_rows", r,
                                                                          self.rows)):
            if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= hi:
                raise ConfigError(f"TileConfig.conversions_per_vector: {name} = {v!r} is not "
                                 f"allowed; allowed: an integer in [0, {hi}]")
        if r == 0 or wc == 0:
            return 0
        groups = 1 if self.rows_parallel is None else -(-r // self.rows_parallel)
        return self.dac.n_cycles * groups * self.scheme.adc_cols(wc)

    # ------------------------------------------------------------------ derived
    @functools.cached_property
    def scheme(self) -> Encoding:
        """The weight encoding (:mod:`memxbar.crossbar.encodings`) of this configuration."""
        return make_encoding(self.encoding, self.layout, self.weight_bits, self.bits_per_cell,
                             self.device)

    @property
    def magnitude_bits(self) -> int:
        """Bits of the stored code: differential ``|q|`` (weight_bits-1), offset ``u``."""
        return self.scheme.magnitude_bits

    @property
    def n_slices(self) -> int:
        """Cells (per polarity) that hold one weight."""
        return self.scheme.n_slices

    @property
    def weight_levels(self) -> int:
        """``n_w``: weights are ``q / n_w`` with integer ``|q| <= n_w`` (1 when analog)."""
        return self.scheme.weight_levels

    @property
    def digit_max(self) -> int:
        """Largest digit on one cell (maps to g_max)."""
        return self.scheme.digit_max

    @property
    def cells_per_weight(self) -> int:
        """Cells per weight (offset: without the shared reference column)."""
        return self.scheme.cells_per_weight

    @property
    def n_arrays(self) -> int:
        """Physical arrays per tile (2 for the differential "arrays" layout)."""
        return self.scheme.n_arrays

    @property
    def weight_cols(self) -> int:
        """Logical outputs (weight columns) per tile."""
        return self.scheme.weight_cols(self.cols)

    def used_cols_for(self, weight_cols: int) -> int:
        """Physical columns per array used by ``weight_cols`` weight columns."""
        return self.scheme.used_cols_for(weight_cols)

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
        return self.scheme.adc_cols(self.weight_cols)

    @property
    def physical_shape(self) -> tuple[int, int, int]:
        """``(n_arrays, rows, used_cols)`` of the cell tensor of one tile."""
        return (self.n_arrays, self.rows, self.used_cols)

    @property
    def g_ref(self) -> float:
        """Conductance of the offset reference cells, S."""
        return self.scheme.g_ref

    @property
    def slice_coefficients(self) -> list[float]:
        """Digital weight of slice s per unit U: ``2^(c s) * d_max / n_w``."""
        return self.scheme.slice_coefficients

    @property
    def kappa(self) -> float:
        """Offset encoding: coefficient of the reference column (units U -> weight*input; 0
        without one): ``kappa = (d_max * S * g_min + z * range) / g_ref / n_w`` with ``S =
        sum_s 2^(c s)``, removes both the zero code ``z`` and the ``g_min`` floor of every
        slice."""
        return self.scheme.kappa


class Tile(ReadPath, TileState):
    """A stack of crossbar tiles of one :class:`TileConfig`; ``shape`` are the stack dims.

    All operations are batched matmuls over the stack (``(*shape, ...)`` tensors); the read
    path and the MVMs are in :mod:`memxbar.crossbar.readout`. A ``torch.nn.Module``: its
    state is in buffers, so ``.to(torch.float64)``, ``.to("cuda")`` and ``state_dict()`` /
    ``load_state_dict()`` work after programming (state_dict keys: ``cells.g``,
    ``cells.latent.<name>``, ``pulse_count``, ``adc_fs`` / ``adc_amax`` (forward ranges,
    ``(*shape, [G,] 1, adc_cols)``), ``adc_fs_t`` / ``adc_amax_t`` (transposed, ``(*shape, 1,
    rows)``), ``read_g`` ("per_read" / "physical": the sample), ``_extra_state`` (read
    time, conversion counter); buffers that are None are left out). A state_dict loads into
    a fresh, unprogrammed Tile of the same config and shape; a mismatched or corrupted one
    is refused with ConfigError naming the key.

    ``used_weight_cols`` / ``used_rows``: weight columns / rows holding weights in each tile
    (an int or an integer tensor broadcastable to ``shape``; default all): only the
    converters of used weight columns and the row groups of used rows count in
    ``adc_conversions`` (forward conversions since ``program`` or :meth:`reset_counters`).
    """

    def __init__(self, config: TileConfig, shape: tuple[int, ...] | torch.Size = (), *,
                 used_weight_cols: int | Tensor | None = None,
                 used_rows: int | Tensor | None = None) -> None:
        super().__init__()
        if not isinstance(config, TileConfig):
            raise ConfigError(f"Tile: config = {config!r} is not a TileConfig")
        if not isinstance(shape, (tuple, list, torch.Size)):
            raise ConfigError(f"Tile: shape = {shape!r} is not allowed; allowed: a tuple of "
                             "integers >= 1")
        shape = tuple(plain_value(s) for s in shape)
        if not all(isinstance(s, int) and not isinstance(s, bool) and s >= 1 for s in shape):
            raise ConfigError(f"Tile: shape = {shape!r} is not allowed; allowed: a tuple of "
                             "integers >= 1")
        self.config = config
        self.shape = torch.Size(shape)
        check_memory(config, self.shape)
        self.used_weight_cols = per_tile("used_weight_cols", used_weight_cols,
                                          config.weight_cols, self.shape)
        self.used_rows = per_tile("used_rows", used_rows, config.rows, self.shape)
        self._per_vector = conversions(config, self.used_weight_cols, self.used_rows)
        self._count = [0]  # adc_conversions, kept off nn.Module.__setattr__ in the hot path
        self.cells = CellBuffers()
        for name in ("pulse_count", "adc_fs", "adc_fs_t", "adc_amax", "adc_amax_t", "read_g"):
            self.register_buffer(name, None)
        self.register_buffer("analog", None, persistent=False)  # (*shape, R, adc_cols), U
        self.register_buffer("analog_var", None, persistent=False)  # its read variances
        self._state: CellState | None = None
        self.t: float = 0.0
        self._deferred: tuple[float, torch.Generator | None] | None = None
        self._plans: dict[tuple, tuple] = {}
        self._steps: tuple[float, float] | None = None
        self._generator: torch.Generator | None = None  # noise draws when none is passed

    # ================================================================== programming
    @torch.no_grad()
    def program(self, W: Tensor, *, generator: torch.Generator | None = None) -> None:
        """Program normalised weights ``W`` ``(*shape, rows, weight_cols)`` in ``[-1, 1]``.

        Conductance targets follow the encoding (module doc); the device adds its programming
        noise, quantization and faults. Resets the read time to 0 and any ADC calibration.
        The read at t = 0 (its read-noise sample) is drawn from ``generator`` at the tile's
        first use, unless :meth:`set_time` comes first: draws from ``generator`` in between
        change that sample (give the tile a generator of its own for independence).
        """
        targets = self._targets(W, "program")
        self._check_generator(generator, targets, "program")
        generator = self._rng(generator, targets)
        self.state = self.config.device.program(targets, generator=generator)
        # no pulses yet: one zero broadcast to the cells (a 4-byte-per-cell fill costs a
        # program as much as drawing a latent); the first pulses make it a full tensor
        self.pulse_count = torch.zeros((), dtype=torch.int64,
                                       device=targets.device).expand(self.state.shape)
        self.adc_fs = self.adc_fs_t = self.adc_amax = self.adc_amax_t = None
        self.analog = self.analog_var = self.read_g = None
        self.adc_conversions = 0
        # the read at t = 0 happens at its first use: a drift() right after programming
        # replaces it without reading the cells twice
        self.t, self._plans, self._deferred = 0.0, {}, (0.0, generator)

    def reset_counters(self) -> None:
        """Set ``adc_conversions`` to 0."""
        self.adc_conversions = 0

    @property
    def state(self) -> CellState | None:
        """The programmed cells (buffers ``cells.g``, ``cells.latent.<name>``); None before
        programming. Assigning a CellState installs its tensors as the buffers."""
        return self._state

    @state.setter
    def state(self, state: CellState | None) -> None:
        latent = self.cells.latent
        for name in list(latent._buffers):
            del latent._buffers[name]
        self.cells.g = None if state is None else state.g
        for k, v in ({} if state is None else state.latent).items():
            latent.register_buffer(k, v)
        self._state = state

    @torch.no_grad()
    def conductance_targets(self, W: Tensor) -> Tensor:
        """Physical conductance targets (S) ``(*shape, n_arrays, rows, used_cols)`` that
        :meth:`program` writes for normalised weights ``W`` ``(*shape, rows, weight_cols)``
        (encoding, slices and the offset reference column; before device noise)."""
        return self._targets(W, "conductance_targets")

    def _targets(self, W: Tensor, op: str) -> Tensor:
        cfg = self.config
        if not isinstance(W, Tensor):
            raise ConfigError(f"Tile.{op}: W must be a torch.Tensor, got {type(W).__name__}")
        if W.is_complex() or W.dtype == torch.bool:
            raise ConfigError(f"Tile.{op}: W has dtype {W.dtype}; allowed: a real "
                             "floating-point tensor")
        if not W.is_floating_point():
            W = W.to(torch.get_default_dtype())
        elif W.dtype not in FLOAT_DTYPES:  # float16 / bfloat16: computed in float32
            W = W.to(torch.float32)
        want = (*self.shape, cfg.rows, cfg.weight_cols)
        if tuple(W.shape) != want:
            raise ConfigError(f"Tile.{op}: W has shape {tuple(W.shape)}; expected "
                             f"(*shape, rows, weight_cols) = {want}")
        W = W.detach().contiguous()  # one copy of a strided view: the passes below stream
        lo, hi = (float(v) for v in torch.aminmax(W)) if W.numel() else (0.0, 0.0)
        if not (math.isfinite(lo) and math.isfinite(hi)):  # min/max propagate NaN
            raise ConfigError(f"Tile.{op}: W has non-finite values; weights must be finite "
                             "and normalised to [-1, 1]")
        if max(-lo, hi) > 1.0 + 1e-6:
            raise ConfigError(f"Tile.{op}: W spans [{lo:.4g}, {hi:.4g}]; allowed: normalised "
                             "weights in [-1, 1] (scale them first)")
        return cfg.scheme.targets(W if -1.0 <= lo and hi <= 1.0 else W.clamp(-1.0, 1.0))

    def physical_cells(self, cells: Tensor, ref: Tensor | None = None) -> Tensor:
        """Per-weight cells ``(..., P, n_slices, rows, weight_cols)`` -> physical layout
        ``(..., n_arrays, rows, used_cols)`` (inverse of :meth:`weight_cells`); ``ref``
        ``(..., rows, 1)`` fills the offset reference column (zeros when None)."""
        cfg = self.config
        _check_trailing(cells, (cfg.scheme.polarities, cfg.scheme.n_slices, cfg.rows,
                                cfg.weight_cols), "physical_cells", "cells")
        if ref is not None:
            _check_trailing(ref, (cfg.rows, 1), "physical_cells", "ref")
        return cfg.scheme.arrange(cells, ref)

    def weight_cells(self, m: Tensor) -> Tensor:
        """Physical per-cell values ``(..., n_arrays, rows, used_cols)`` -> per-weight cells
        ``(..., P, n_slices, rows, weight_cols)`` (``P``: 2 polarities G+/G- for "differential",
        1 for "offset"; the offset reference column is left out). Inverse of the layout of
        :meth:`conductance_targets`."""
        cfg = self.config
        _check_trailing(m, (cfg.n_arrays, cfg.rows, cfg.used_cols), "weight_cells", "m")
        return cfg.scheme.cells(m)

    def _fold(self, m: Tensor, var: bool = False) -> Tensor:
        """Physical ``(*shape, A, R, Cp)`` conductances (or, ``var``, read stds) -> analog
        matrix ``(*shape, R, adc_cols)`` in units U (variances for ``var``)."""
        return self.config.scheme.fold(m, var)

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
        ``(*shape)`` (int64); ``pulse_count`` accumulates them per cell. Counts beyond the
        device's ``max_pulses`` per call (more than crosses any preset's window) saturate at it.
        The read state is refreshed at the current time afterwards. Bit-sliced weights are
        refused.
        """
        self._require_programmed("update")
        cfg = self.config
        if cfg.n_slices > 1:
            raise ConfigError("Tile.update: pulse updates need bits_per_cell = 0 or one slice "
                             f"(got {cfg.n_slices} slices); reprogram bit-sliced weights with "
                             "program()")
        _choice("Tile.update", "mode", mode, UPDATE_MODES)
        bl, lr = plain_value(bl), plain_value(lr)
        _int_field("Tile.update", "bl", bl, 1, MAX_BL)
        if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not 0 <= lr < math.inf:
            raise ConfigError(f"Tile.update: lr = {lr!r} is not allowed; allowed: a finite "
                             "number >= 0")
        x = self._check_input(x, cfg.rows, "update", "x")
        d = self._check_input(d, cfg.weight_cols, "update", "d")
        if x.shape[-2] != d.shape[-2]:
            raise ConfigError(f"Tile.update: x has batch {x.shape[-2]}, d has {d.shape[-2]}; "
                             "they must match")
        self._check_generator(generator, x, "update")
        generator = self._rng(generator, x)
        step_inc, step_dec = cfg.scheme.pulse_steps(*self.nominal_step())
        w_per_s = cfg.scheme.weight_per_siemens
        if mode == "counts":
            dg = (-lr / w_per_s) * (x.mT @ d).expand(*self.shape, cfg.rows, cfg.weight_cols)
            inc = _stochastic_round(dg.clamp(min=0) / step_inc, generator)
            dec = _stochastic_round((-dg).clamp(min=0) / step_dec, generator)
        else:
            dw_min = 0.5 * (step_inc + step_dec) * w_per_s
            inc, dec = self._coincidences(x, d, lr / (bl * dw_min), bl, generator)
        cap = cfg.device.max_pulses  # a longer train only holds the cell at its bound
        return self._apply_counts(inc.clamp_(max=cap), dec.clamp_(max=cap), generator)

    @torch.no_grad()
    def weight_steps(self) -> tuple[float, float]:
        """Nominal change of a normalised weight by one pulse that increases it / one that
        decreases it (differential: a G+ / a G- potentiation; offset: potentiation /
        depression of the cell), from :meth:`nominal_step`."""
        scheme = self.config.scheme
        step_inc, step_dec = scheme.pulse_steps(*self.nominal_step())
        return step_inc * scheme.weight_per_siemens, step_dec * scheme.weight_per_siemens

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
        self._check_generator(generator, n, "apply_pulses")
        return self._apply_counts(n.clamp(min=0), (-n).clamp(min=0), generator)

    def _apply_counts(self, inc: Tensor, dec: Tensor, generator: torch.Generator | None
                      ) -> Tensor:
        """Pulse the cells: ``inc`` / ``dec`` ``(*shape, rows, weight_cols)`` counts that
        increase / decrease each weight; returns pulses per tile."""
        generator = self._rng(generator, inc)
        trains, counts = self.config.scheme.pulses(inc, dec)
        state, count = self._require_programmed("apply_pulses"), self.pulse_count
        assert count is not None  # set with the state by program()
        for n in trains:
            state = self.config.device.pulse(state, n, generator=generator)
        self.state = state
        self.pulse_count = count + counts
        self.set_time(self.t, generator=generator)
        return (inc + dec).sum(dim=(-2, -1))

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
            assert self.pulse_count is not None  # set with the state by program()
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
