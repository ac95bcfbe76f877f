"""A tile's state as an ``nn.Module``: buffers, dtype / torch-device moves, ``state_dict``
saving and checked loading; the memory estimate that refuses absurd sizes; and the per-tile
counts of used converters.

State_dict keys of a :class:`~memxbar.crossbar.tile.Tile` (buffers that are None are left out):
``cells.g``, ``cells.latent.<name>`` (the CellState), ``pulse_count``, ``adc_fs`` /
``adc_amax`` (forward ranges ``(*shape, [G,] 1, adc_cols)``), ``adc_fs_t`` / ``adc_amax_t``
(transposed ranges ``(*shape, 1, rows)``), ``read_g`` ("per_read" / "physical": the sample),
``_extra_state`` (read time, conversion counter, the device's conductance range and the
encoding, checked on loading). ``analog`` / ``analog_var`` (the converter
matrices) are non-persistent caches, rebuilt after loading.
"""

from __future__ import annotations

import contextlib
import functools
import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import Tensor, nn

from memxbar.devices.base import CellState
from memxbar.errors import ConfigError, plain_value

if TYPE_CHECKING:
    from memxbar.crossbar.tile import TileConfig

BYTES_PER_CELL = 64  # estimate: float64 conductance, latents, pulse count, read copies
FLOAT_DTYPES = (torch.float32, torch.float64)
# TileConfig fields that decide which weight each cell holds: saved with a tile's state
_LAYOUT_KEYS = ("encoding", "layout", "weight_bits", "bits_per_cell")


class CellBuffers(nn.Module):
    """The programmed cells as buffers: ``g`` (None before programming) and the ``latent``
    module, one buffer per latent (state_dict keys ``cells.g``, ``cells.latent.<name>``)."""

    g: Tensor | None

    def __init__(self) -> None:
        super().__init__()
        self.latent = nn.Module()
        self.register_buffer("g", None)


class TileAttributes:
    """The attributes a :class:`~memxbar.crossbar.tile.Tile` sets in ``__init__`` and the
    members its mixins (:class:`TileState`, :class:`~memxbar.crossbar.readout.ReadPath`) use
    of each other, declared once for type checkers (annotations only: no runtime effect)."""

    config: TileConfig
    shape: torch.Size
    cells: CellBuffers
    t: float  # read time (s)
    used_weight_cols: Tensor
    used_rows: Tensor
    # buffers; None before programming or calibration
    pulse_count: Tensor | None
    adc_fs: Tensor | None
    adc_fs_t: Tensor | None
    adc_amax: Tensor | None
    adc_amax_t: Tensor | None
    read_g: Tensor | None
    analog: Tensor | None
    analog_var: Tensor | None
    _state: CellState | None
    _deferred: tuple[float, torch.Generator | None] | None  # a read at t not yet made
    _plans: dict[tuple, tuple]
    _steps: tuple[float, float] | None
    _generator: torch.Generator | None
    _count: list[int]
    _per_vector: int
    state: CellState | None  # a property of Tile

    if TYPE_CHECKING:  # members of TileState and ReadPath the other one calls
        @property
        def _wa(self) -> Tensor: ...
        @property
        def _holds_sample(self) -> bool: ...
        def set_time(self, t: float, *, generator: torch.Generator | None = None) -> None: ...
        def _install_saved(self) -> None: ...
        def _set_read_g(self, g: Tensor | None) -> None: ...


class TileState(TileAttributes, nn.Module):
    """Mixin of :class:`~memxbar.crossbar.tile.Tile` (before ``nn.Module`` in its bases): the
    module hooks that keep the cell state, ranges and read caches consistent."""

    @property
    def adc_conversions(self) -> int:
        """Forward ADC conversions performed (mvm, mvm_rows, mvm_custom) since ``program`` or
        ``reset_counters``, summed over the stack: only the converters of used weight columns
        and the row groups of used rows (see :meth:`TileConfig.conversions_per_vector`)."""
        return self._count[0]

    @adc_conversions.setter
    def adc_conversions(self, value: int) -> None:
        self._count[0] = int(value)

    def _set_read_g(self, g: Tensor | None) -> None:
        """Conductances the next MVMs read (before IR drop): kept for "per_read" / "physical"
        (the sample, persistent) and for non-ohmic cells (the nonlinear read needs them)."""
        self.register_buffer("read_g", g, persistent=self._holds_sample)

    def _apply(self, fn: Callable[[Tensor], Tensor], recurse: bool = True) -> TileState:
        """``.to()``, ``.cuda()``, ``.double()``...: the cells must stay float32 or float64;
        the pending read happens first; cached plans are rebuilt. The buffers keep their
        layout: a ``memory_format`` (``model.to(memory_format=torch.channels_last)``) is for
        images, not cells, and is not applied to them."""
        g = self.cells.g
        if g is not None:
            probe = fn(g.new_zeros(()))
            if probe.is_floating_point() and probe.dtype not in FLOAT_DTYPES:
                raise ConfigError(f"Tile: cannot convert the cells to {probe.dtype}; allowed: "
                                  "float32 or float64 (conductances of 1e-9..1e-3 S are "
                                  "subnormal or coarse in half precision)")
            if self._deferred is not None:
                self._wa  # noqa: B018  (the read at t, before the tensors move)

        def same_layout(t: Tensor) -> Tensor:  # fn on a 1-D view: no memory-format change
            return fn(t.reshape(-1)).reshape(t.shape)

        super()._apply(same_layout, recurse)
        if self.cells.g is not None:
            latent = {k: v for k, v in self.cells.latent._buffers.items() if v is not None}
            self._state = CellState(self.cells.g, latent)
        self._plans = {}
        return self

    def get_extra_state(self) -> dict:
        dev = self.config.device
        return {"t": self.t, "programmed": self._state is not None,
                "adc_conversions": self.adc_conversions, "g_min": float(dev.g_min),
                "g_max": float(dev.g_max), **{k: getattr(self.config, k) for k in _LAYOUT_KEYS}}

    def _check_saved_config(self, state: object, where: str) -> None:
        """Refuse a saved state whose device conductance range (S), weight encoding or bit
        slicing differs from this tile's (the cells would be read on another scale or as other
        weights); states saved before these keys existed load unchecked."""
        if not isinstance(state, dict):
            return
        dev = self.config.device
        for key, mine in (("g_min", float(dev.g_min)), ("g_max", float(dev.g_max))):
            saved = state.get(key)
            if saved is not None and not (isinstance(saved, (int, float)) and math.isclose(
                    float(saved), mine, rel_tol=1e-9, abs_tol=0.0)):
                raise ConfigError(f"{where}: the state was saved with device {key} = {saved!r} S;"
                                  f" this tile's device has {key} = {mine!r} S; allowed: a "
                                  "state saved with the same device conductance range")
        for key in _LAYOUT_KEYS:
            saved, mine = state.get(key), getattr(self.config, key)
            if saved is not None and saved != mine:
                raise ConfigError(f"{where}: the state was saved with {key} = {saved!r}; this "
                                  f"tile's is {mine!r}; allowed: the same {key} (the cells "
                                  "would be read as other weights)")

    def set_extra_state(self, state: dict) -> None:
        t = state.get("t") if isinstance(state, dict) else None
        if isinstance(t, bool) or not isinstance(t, (int, float)) or not 0 <= t < math.inf:
            raise ConfigError(f"Tile.load_state_dict: _extra_state = {state!r} is not a tile's; "
                              "expected a dict with the read time 't' (finite, >= 0 s)")
        self.t = float(t)
        self.adc_conversions = int(state.get("adc_conversions", 0))

    def _save_to_state_dict(self, destination: dict, prefix: str, keep_vars: bool) -> None:
        if self._deferred is not None:
            self._wa  # noqa: B018  (a "per_read" sample is drawn before it is saved)
        super()._save_to_state_dict(destination, prefix, keep_vars)

    def _load_from_state_dict(self, state_dict: dict, prefix: str, local_metadata: dict,
                              strict: bool, missing_keys: list, unexpected_keys: list,
                              error_msgs: list) -> None:
        """Install a saved state, checked (into a fresh tile too: buffers that are None before
        programming are made from the saved ones), then read the cells at the saved time."""
        mine = {k[len(prefix):]: v for k, v in state_dict.items() if k.startswith(prefix)}
        self._check_saved_config(mine.get("_extra_state"), f"Tile.load_state_dict ({prefix})")
        cells = {k: v for k, v in mine.items() if k.startswith("cells.")}
        if cells or "pulse_count" in mine:
            self._load_cells(mine, prefix)
        elif isinstance(mine.get("_extra_state"), dict) and not mine["_extra_state"].get(
                "programmed", True):
            self.state = None  # an unprogrammed tile's state
            for name in ("pulse_count", "adc_fs", "adc_fs_t", "adc_amax", "adc_amax_t",
                         "read_g", "analog", "analog_var"):
                setattr(self, name, None)
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict,
                                      missing_keys, unexpected_keys, error_msgs)
        if self._state is not None and cells:
            self._deferred, self._plans = None, {}
            if self._holds_sample and self.read_g is not None:
                self._install_saved()  # the saved draw, not a new one
            else:
                self.set_time(self.t)

    def _load_cells(self, mine: dict[str, Tensor], prefix: str) -> None:
        cfg = self.config
        where = "Tile.load_state_dict"
        want = (*self.shape, *cfg.physical_shape)

        def get(name: str, shape: tuple, rule: str, kind: str = "float",
                required: bool = True) -> Tensor | None:
            """The saved tensor ``name``, checked: dtype kind, shape, finite, ``rule``."""
            v = mine.get(name)
            if v is None:
                if required:
                    raise ConfigError(f"{where}: {prefix}{name} is missing (a programmed "
                                      "tile's state needs it)")
                return None
            ok = isinstance(v, Tensor) and (v.dtype in FLOAT_DTYPES if kind == "float" else
                                            not v.is_floating_point() and not v.is_complex()
                                            and v.dtype != torch.bool)
            if not ok:
                got = v.dtype if isinstance(v, Tensor) else type(v).__name__
                allowed = "float32 or float64" if kind == "float" else "an integer dtype"
                raise ConfigError(f"{where}: {prefix}{name} has dtype {got}; allowed: "
                                  f"{allowed}")
            if tuple(v.shape) != tuple(shape):
                raise ConfigError(f"{where}: {prefix}{name} has shape {tuple(v.shape)}; "
                                  f"expected {tuple(shape)} for this config and stack shape")
            if kind == "float" and v.numel() and not bool(torch.isfinite(v).all()):
                raise ConfigError(f"{where}: {prefix}{name} has non-finite values")
            if v.numel() and bool((v < 0).any() if rule == ">= 0" else (v <= 0).any()):
                raise ConfigError(f"{where}: {prefix}{name} has values outside {rule} "
                                  f"(minimum {float(v.min()):.4g})")
            return v.detach().clone()

        g = get("cells.g", want, ">= 0")
        latent = {k[len("cells.latent."):]: v.detach().clone() for k, v in mine.items()
                  if k.startswith("cells.latent.") and isinstance(v, Tensor)}
        assert g is not None  # required: get() raised if missing
        state = CellState(g, latent)
        cfg.device._check_state(state, f"{where} ({prefix}cells)")
        pulses = get("pulse_count", want, ">= 0", kind="int")
        assert pulses is not None
        K, R = cfg.adc_cols, cfg.rows
        G = cfg.row_groups
        fwd = (*self.shape, *((G,) if G > 1 else ()), 1, K)
        fs = get("adc_fs", fwd, "> 0", required=False)
        amax = get("adc_amax", fwd, ">= 0", required=False)
        fs_t = get("adc_fs_t", (*self.shape, 1, R), "> 0", required=False)
        amax_t = get("adc_amax_t", (*self.shape, 1, R), ">= 0", required=False)
        # "physical" states saved before it was the default have no sample: a new one is drawn
        sample = get("read_g", want, ">= 0", required=cfg.read_noise == "per_read")
        if "_extra_state" not in mine:
            raise ConfigError(f"{where}: {prefix}_extra_state is missing (the read time)")
        self.state = state
        self.pulse_count = pulses.to(torch.int64)
        self.adc_fs, self.adc_amax, self.adc_fs_t, self.adc_amax_t = fs, amax, fs_t, amax_t
        self._set_read_g(sample if self._holds_sample else None)
        self.analog = self.analog_var = None


@functools.cache
def _cgroup_limit() -> int | None:
    """This process's cgroup memory limit (bytes; containers, batch schedulers), or None; read
    once (every TileConfig is checked against it)."""
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return None
    for line in lines:  # "0::/path" (cgroup v2) or "4:memory:/path" (v1)
        _, controllers, path = (line.split(":", 2) + ["", ""])[:3]
        if controllers == "":
            files = [f"/sys/fs/cgroup{path}/memory.max", "/sys/fs/cgroup/memory.max"]
        elif "memory" in controllers.split(","):
            files = [f"/sys/fs/cgroup/memory{path}/memory.limit_in_bytes",
                     "/sys/fs/cgroup/memory/memory.limit_in_bytes"]
        else:
            continue
        for f in files:
            try:
                text = Path(f).read_text().strip()
            except OSError:
                continue
            if text.isdigit():  # "max": no limit
                return int(text)
            break
    return None


def memory_limit() -> int:
    """Bytes this process can allocate at most (a bound checked before large allocations):
    the least of the machine's physical memory, its cgroup's memory limit, and what its
    address-space limit (``ulimit -v``) leaves beyond the address space already mapped."""
    limits = []
    with contextlib.suppress(ValueError, OSError, AttributeError):  # not POSIX: no estimate
        limits.append(os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    cgroup = _cgroup_limit()
    if cgroup is not None:
        limits.append(cgroup)
    with contextlib.suppress(ImportError, ValueError, OSError):
        import resource

        soft = resource.getrlimit(resource.RLIMIT_AS)[0]
        if soft != resource.RLIM_INFINITY:
            mapped = int(Path("/proc/self/statm").read_text().split()[0]) * os.sysconf(
                "SC_PAGE_SIZE")
            limits.append(max(0, soft - mapped))
    return min(limits) if limits else 2**62


def check_memory(config: TileConfig, shape: torch.Size | tuple[int, ...]) -> None:
    """Refuse a stack of tiles whose cell tensors would not fit in what this process can
    allocate (:func:`memory_limit`; estimate: :data:`BYTES_PER_CELL` per cell, times the row
    groups of a wired array's grouped IR-drop solve), before anything is allocated."""
    cells = math.prod(shape) * config.n_arrays * config.rows * config.used_cols
    groups = config.row_groups if (config.r_row or config.r_col) else 1
    need = cells * BYTES_PER_CELL * max(1, groups)
    have = memory_limit()
    if need > have:
        raise ConfigError(f"Tile: {math.prod(shape)} tile(s) of {config.rows}x{config.cols} "
                          f"cells need about {need / 2**30:.3g} GiB for their cell tensors; "
                          f"this process can allocate {have / 2**30:.3g} GiB; allowed: smaller "
                          "tiles or fewer of them")


def per_tile(name: str, value: int | Tensor | None, hi: int, shape: torch.Size) -> Tensor:
    """``value`` per tile of the stack (int64, CPU, ``shape``), each in ``[0, hi]``."""
    if value is None:
        return torch.full(tuple(shape), hi, dtype=torch.int64)
    value = plain_value(value)
    if isinstance(value, bool) or not isinstance(value, (int, Tensor)) or (
            isinstance(value, Tensor) and (value.is_floating_point() or value.is_complex()
                                           or value.dtype == torch.bool)):
        raise ConfigError(f"Tile: {name} = {value!r} is not allowed; allowed: an integer or "
                          f"an integer tensor broadcastable to the stack shape {tuple(shape)}")
    v = torch.as_tensor(value).detach().to("cpu", torch.int64)
    try:
        v = torch.broadcast_to(v, tuple(shape)).clone()
    except RuntimeError:
        raise ConfigError(f"Tile: {name} has shape {tuple(v.shape)}; allowed: broadcastable "
                          f"to the stack shape {tuple(shape)}") from None
    if v.numel() and (int(v.min()) < 0 or int(v.max()) > hi):
        raise ConfigError(f"Tile: {name} has values in [{int(v.min())}, {int(v.max())}]; "
                          f"allowed: integers in [0, {hi}]")
    return v


def conversions(config: TileConfig, used_cols: Tensor, used_rows: Tensor) -> int:
    """Forward conversions per input vector, summed over the tiles of the stack."""
    pairs, counts = torch.unique(torch.stack([used_cols.flatten(), used_rows.flatten()]),
                                 dim=1, return_counts=True)
    return sum(k * config.conversions_per_vector(c, r)
               for (c, r), k in zip(pairs.t().tolist(), counts.tolist(), strict=True))
