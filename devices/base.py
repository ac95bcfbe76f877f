"""Shared machinery of every device model: the cell state, parameter declaration and checks,
and the public contract ``program`` / ``read`` / ``pulse`` (see DESIGN.md, devices/).

A device model is a frozen dataclass of physical parameters in SI units. Each parameter is
declared with :func:`param`, which records its unit, meaning, source and allowed range; the
range is checked when the model is built, so a bad value raises one ``ValueError`` naming the
model, the parameter, the value and what is allowed.
"""

from __future__ import annotations

import dataclasses
import math
import os
from abc import ABC, abstractmethod
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from torch import Tensor

from ..errors import ConfigError

STUCK_NONE, STUCK_ON, STUCK_OFF = 0, 1, 2


def param(
    default: Any,
    *,
    unit: str = "",
    doc: str = "",
    source: str = "",
    ge: float | None = None,
    gt: float | None = None,
    le: float | None = None,
    lt: float | None = None,
    integer: bool = False,
    options: tuple[Any, ...] | None = None,
    nullable: bool = False,
) -> Any:
    """Declare a parameter: default, unit, meaning, literature source and allowed values.

    Numbers are checked against the range (``ge``/``gt``/``le``/``lt``, ``integer``); ``options``
    declares a closed set of allowed values instead (strings, booleans); ``nullable`` also
    allows ``None``. The same declaration drives the checks, ``parameters()`` and the study
    search domains generated from it.
    """
    meta = dict(unit=unit, doc=doc, source=source, ge=ge, gt=gt, le=le, lt=lt, integer=integer,
                options=None if options is None else tuple(options), nullable=nullable)
    if isinstance(default, (list, dict, set)):
        raise TypeError("mutable defaults are not allowed; use a tuple")
    return field(default=default, metadata={"param": meta})


def _range_text(m: dict) -> str:
    if m.get("options") is not None:
        text = ", ".join(repr(o) for o in m["options"])
        return text + (", or None" if m.get("nullable") else "")
    lo = f"({m['gt']}" if m["gt"] is not None else "(-inf"
    lo = f"[{m['ge']}" if m["ge"] is not None else lo
    hi = f"{m['lt']})" if m["lt"] is not None else "inf)"
    hi = f"{m['le']}]" if m["le"] is not None else hi
    kind = "an integer in " if m["integer"] else ""
    unit = f" {m['unit']}" if m["unit"] else ""
    return f"{kind}{lo}, {hi}{unit}"


def check_param(owner: str, name: str, value: Any, m: dict) -> None:
    """Raise :class:`ConfigError` when ``value`` is not an allowed option or a finite number
    inside the declared range."""
    allowed = _range_text(m)
    if value is None and m.get("nullable"):
        return
    if m.get("options") is not None:
        if not any(value == o and type(value) is type(o) for o in m["options"]):
            raise ConfigError(f"{owner}.{name} = {value!r} is not allowed; allowed: {allowed}")
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        if isinstance(value, tuple) and all(isinstance(v, (int, float)) for v in value):
            for v in value:
                check_param(owner, name, v, m)
            return
        raise ConfigError(f"{owner}.{name} = {value!r} is not a number; allowed: {allowed}")
    if m["integer"] and int(value) != value:
        raise ConfigError(f"{owner}.{name} = {value!r} must be an integer; allowed: {allowed}")
    bad = not math.isfinite(float(value))
    bad |= m["ge"] is not None and value < m["ge"]
    bad |= m["gt"] is not None and value <= m["gt"]
    bad |= m["le"] is not None and value > m["le"]
    bad |= m["lt"] is not None and value >= m["lt"]
    if bad:
        raise ConfigError(f"{owner}.{name} = {value!r} is out of range; allowed: {allowed}")


class Parametrized:
    """Mixin for frozen dataclasses whose fields are declared with :func:`param`.

    Nested parametrized dataclasses (a pulse-response model inside a device) are checked too.
    Subclasses add cross-parameter checks in ``_check``.
    """

    def __post_init__(self) -> None:
        owner = type(self).__name__
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            value = getattr(self, f.name)
            if "param" in f.metadata:
                check_param(owner, f.name, value, f.metadata["param"])
        self._check()

    def _check(self) -> None:
        """Cross-parameter checks; raise ``ValueError`` naming the parameters."""

    def parameters(self) -> list[dict[str, Any]]:
        """Rows (name, value, unit, doc, source) of every declared parameter, nested ones dotted."""
        rows: list[dict[str, Any]] = []
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            value = getattr(self, f.name)
            if isinstance(value, Parametrized):
                for r in value.parameters():
                    rows.append({**r, "name": f"{f.name}.{r['name']}"})
            elif "param" in f.metadata:
                m = f.metadata["param"]
                rows.append(dict(name=f.name, value=value, unit=m["unit"], doc=m["doc"],
                                 source=m["source"]))
        return rows


@dataclass
class CellState:
    """Everything a device needs to know about programmed cells.

    ``g`` is the conductance right after programming (S), any shape. ``latent`` holds per-cell
    variables sampled at programming that later reads and pulses use (drift exponent, domain
    states, device-to-device pulse parameters, stuck-fault codes), each of ``g``'s shape,
    possibly with trailing dimensions (one entry per domain or per MTJ of a cell).
    """

    g: Tensor
    latent: dict[str, Tensor] = field(default_factory=dict)

    @property
    def shape(self) -> torch.Size:
        return self.g.shape

    def replace(self, g: Tensor | None = None, **latent: Tensor) -> CellState:
        """A new state with ``g`` and/or some latent tensors replaced."""
        return CellState(self.g if g is None else g, {**self.latent, **latent})

    def to(self, *args: Any, **kwargs: Any) -> CellState:
        """Move every tensor (``Tensor.to`` arguments); integer latents keep their dtype."""
        def mv(x: Tensor) -> Tensor:
            if x.is_floating_point():
                return x.to(*args, **kwargs)
            dev = kwargs.get("device", next((a for a in args if isinstance(a, (str, torch.device))),
                                            x.device))
            return x.to(device=dev)
        return CellState(mv(self.g), {k: mv(v) for k, v in self.latent.items()})

    def tensors(self) -> dict[str, Tensor]:
        """Flat dict of tensors, for ``state_dict`` buffers."""
        return {"g": self.g, **{f"latent.{k}": v for k, v in self.latent.items()}}

    @classmethod
    def from_tensors(cls, tensors: dict[str, Tensor]) -> CellState:
        """Inverse of :meth:`tensors`."""
        latent = {k[len("latent."):]: v for k, v in tensors.items() if k.startswith("latent.")}
        return cls(tensors["g"], latent)


STREAM = 1 << 16  # normals per independent stream of a large CPU draw
_pool: tuple[int, int, ThreadPoolExecutor] | None = None  # (pid, workers, pool)


def _workers(n: int) -> ThreadPoolExecutor:
    """A pool of ``n`` helper threads for this process (made anew after a fork or resize)."""
    global _pool
    if _pool is None or _pool[0] != os.getpid() or _pool[1] != n:
        if _pool is not None and _pool[0] == os.getpid():
            _pool[2].shutdown(wait=False)  # resized: let the old threads go
        _pool = (os.getpid(), n, ThreadPoolExecutor(n, thread_name_prefix="memxbar-randn"))
    return _pool[2]


def randn(like: Tensor, generator: torch.Generator | None) -> Tensor:
    """Standard normal samples of ``like``'s shape, dtype and device.

    A CPU draw of at least two :data:`STREAM` blocks fills each block from its own Mersenne
    Twister, seeded by one draw of ``generator``, the blocks in parallel on torch's threads
    (torch's CPU sampler is serial). The samples depend only on ``generator``, not on the
    thread count.
    """
    n = like.numel()
    if like.device.type != "cpu" or n < 2 * STREAM:
        return torch.randn(like.shape, generator=generator, dtype=like.dtype, device=like.device)
    out = torch.empty(like.shape, dtype=like.dtype)
    flat = out.view(-1)
    blocks = -(-n // STREAM)
    seeds = torch.randint(0, 2**62, (blocks,), generator=generator).tolist()

    def fill(ks: range) -> None:
        for k in ks:
            flat[k * STREAM: (k + 1) * STREAM].normal_(
                generator=torch.Generator().manual_seed(seeds[k]))

    threads = min(torch.get_num_threads(), blocks)
    if threads < 2:
        fill(range(blocks))
        return out
    groups = [range(blocks * i // threads, blocks * (i + 1) // threads) for i in range(threads)]
    for done in [_workers(threads).submit(fill, ks) for ks in groups]:
        done.result()
    return out


def rand(like: Tensor, generator: torch.Generator | None) -> Tensor:
    """Uniform [0, 1) samples of ``like``'s shape, dtype and device."""
    return torch.rand(like.shape, generator=generator, dtype=like.dtype, device=like.device)


def as_time(t: float | Tensor, like: Tensor) -> Tensor:
    """Time since programming (s) as a tensor broadcastable to ``like``; refuses t < 0 or NaN."""
    tt = torch.as_tensor(t, dtype=like.dtype, device=like.device)
    if not torch.isfinite(tt).all() or (tt < 0).any():
        raise ConfigError(f"t = {t!r} s is not allowed; time since programming must be finite "
                         "and >= 0")
    return tt


@dataclass(frozen=True, kw_only=True)
class Device(Parametrized, ABC):
    """A memory cell model, vectorized over any tensor shape.

    Subclasses implement ``_program`` (noise, latents), ``_mean`` (drift or relaxation),
    ``_read_std`` (read noise, given the drifted mean) and ``_pulse`` (update response); the
    base class checks inputs, quantizes targets to ``levels``, applies stuck-at faults, and
    offers ``read_mean``, ``read_std`` and both at once (``read_stats``).
    """

    technology: ClassVar[str] = "generic"
    cell_type: ClassVar[str] = "1T1R"

    g_min: float = param(1e-7, unit="S", doc="lowest programmable conductance", ge=0.0)
    g_max: float = param(1e-5, unit="S", doc="highest programmable conductance", gt=0.0)
    levels: int = param(0, doc="programmable levels between g_min and g_max; 0 = continuous",
                        ge=0, integer=True)
    stuck_on_fraction: float = param(0.0, doc="fraction of cells stuck at g_max", ge=0.0, le=1.0)
    stuck_off_fraction: float = param(0.0, doc="fraction of cells stuck at g_min", ge=0.0, le=1.0)
    read_voltage: float = param(0.2, unit="V", doc="read voltage applied on a row", gt=0.0)
    read_time: float = param(10e-9, unit="s", doc="duration of one read (integration) pulse",
                             gt=0.0)
    write_voltage: float = param(1.5, unit="V", doc="amplitude of a programming pulse", gt=0.0)
    write_time: float = param(100e-9, unit="s", doc="duration of one programming pulse", gt=0.0)
    write_energy: float = param(1e-12, unit="J", doc="energy of one programming pulse", ge=0.0)
    endurance: float = param(1e6, unit="cycles", doc="write cycles before wear-out", gt=0.0)

    def _check(self) -> None:
        if not self.g_min < self.g_max:
            raise ConfigError(f"{type(self).__name__}: g_min = {self.g_min} S must be below "
                             f"g_max = {self.g_max} S")
        if self.levels == 1:
            raise ConfigError(f"{type(self).__name__}.levels = 1 is not allowed; use 0 "
                             "(continuous) or >= 2")
        if self.stuck_on_fraction + self.stuck_off_fraction > 1.0:
            raise ConfigError(f"{type(self).__name__}: stuck_on_fraction + stuck_off_fraction "
                             "must not exceed 1")

    # ----------------------------------------------------------------- public contract
    def program(self, g_target: Tensor, *, generator: torch.Generator | None = None) -> CellState:
        """Program cells to ``g_target`` (S, any shape); returns the state right after writing."""
        g_target = self._check_targets(g_target)
        state = self._program(self.quantize(g_target), generator)
        return self._apply_faults(state, generator)

    def read(self, state: CellState, t: float | Tensor = 0.0, *,
             generator: torch.Generator | None = None) -> Tensor:
        """Conductance (S) seen ``t`` seconds after programming: drift plus one read-noise draw."""
        mean, std = self.read_stats(state, t)
        g = mean + std * randn(mean, generator)
        return self._hold_stuck(state, g.clamp_min(0.0))

    def read_mean(self, state: CellState, t: float | Tensor = 0.0) -> Tensor:
        """Expected conductance (S) at ``t`` s after programming, given the cells' latents."""
        return self._hold_stuck(state, self._mean(state, as_time(t, state.g)))

    def read_std(self, state: CellState, t: float | Tensor = 0.0) -> Tensor:
        """Standard deviation (S) of one read at ``t`` s around :meth:`read_mean`."""
        return self.read_stats(state, t)[1]

    def read_stats(self, state: CellState, t: float | Tensor = 0.0) -> tuple[Tensor, Tensor]:
        """``(read_mean, read_std)`` at ``t`` s, computed together (the mean once)."""
        tt = as_time(t, state.g)
        mean = self._mean(state, tt)
        std = self._read_std(state, tt, mean)
        stuck = state.latent.get("stuck")
        if stuck is not None:
            std = torch.where(stuck != STUCK_NONE, 0.0, std)
        return self._hold_stuck(state, mean), std

    def pulse(self, state: CellState, n: Tensor, *,
              generator: torch.Generator | None = None) -> CellState:
        """Apply ``n`` (signed int, broadcastable to the cells) update pulses per cell.

        Positive counts potentiate (raise G), negative depress. Returns the new state.
        """
        n = torch.as_tensor(n, device=state.g.device)
        if n.is_floating_point() or n.is_complex():
            raise ConfigError(f"pulse counts must be an integer tensor, got dtype {n.dtype}")
        n = torch.broadcast_to(n, state.shape)
        if not bool((n != 0).any()):
            return state
        new = self._pulse(state, n, generator)
        return new.replace(g=self._hold_stuck(state, new.g))

    def current(self, g: Tensor, v: Tensor) -> Tensor:
        """Cell current (A) at voltage ``v`` (V) for low-field conductance ``g`` (S); ohmic."""
        return g * v

    @property
    def is_ohmic(self) -> bool:
        """True when :meth:`current` is linear in the voltage."""
        return True

    def quantize(self, g: Tensor) -> Tensor:
        """Round targets to the nearest of ``levels`` evenly spaced levels (no-op if continuous)."""
        if self.levels < 2:
            return g
        step = (self.g_max - self.g_min) / (self.levels - 1)
        return torch.round((g - self.g_min) / step) * step + self.g_min

    def describe(self) -> str:
        """Parameters with units and sources, one per line."""
        lines = [f"{type(self).__name__} ({self.technology}, cell {self.cell_type})"]
        for r in self.parameters():
            src = f"  [{r['source']}]" if r["source"] else ""
            lines.append(f"  {r['name']:<26} {r['value']!s:<14} {r['unit']:<8} {r['doc']}{src}")
        return "\n".join(lines)

    # ----------------------------------------------------------------- for subclasses
    @abstractmethod
    def _program(self, g_target: Tensor, generator: torch.Generator | None) -> CellState:
        """Write noise and per-cell latents for checked, quantized targets."""

    def _mean(self, state: CellState, t: Tensor) -> Tensor:
        """Drift/relaxation of the mean; default: none."""
        return state.g

    def _read_std(self, state: CellState, t: Tensor, mean: Tensor) -> Tensor:
        """Read-noise standard deviation given the drifted ``mean`` (S); default: none."""
        return torch.zeros_like(state.g)

    @abstractmethod
    def _pulse(self, state: CellState, n: Tensor, generator: torch.Generator | None) -> CellState:
        """Update response to signed pulse counts ``n``."""

    # ----------------------------------------------------------------- helpers
    def _check_targets(self, g_target: Tensor) -> Tensor:
        g = torch.as_tensor(g_target)
        if not g.is_floating_point():
            g = g.to(torch.get_default_dtype())
        lo, hi = (float(v) for v in torch.aminmax(g)) if g.numel() else (0.0, 0.0)
        if not (math.isfinite(lo) and math.isfinite(hi)):  # min/max propagate NaN
            raise ConfigError(f"{type(self).__name__}.program: g_target has non-finite values; "
                             "targets must be finite conductances in siemens")
        tol = 1e-6 * self.g_max
        if g.numel() and (lo < self.g_min - tol or hi > self.g_max + tol):
            raise ConfigError(f"{type(self).__name__}.program: g_target spans [{lo:.4g}, {hi:.4g}]"
                             f" S, outside the device range [{self.g_min:.4g}, {self.g_max:.4g}] S")
        return g if self.g_min <= lo and hi <= self.g_max else g.clamp(self.g_min, self.g_max)

    def _apply_faults(self, state: CellState, generator: torch.Generator | None) -> CellState:
        if self.stuck_on_fraction == 0.0 and self.stuck_off_fraction == 0.0:
            return state
        u = rand(state.g, generator)
        stuck = torch.full(state.shape, STUCK_NONE, dtype=torch.int8, device=state.g.device)
        stuck[u < self.stuck_on_fraction] = STUCK_ON
        stuck[(u >= self.stuck_on_fraction)
              & (u < self.stuck_on_fraction + self.stuck_off_fraction)] = STUCK_OFF
        new = state.replace(stuck=stuck)
        return new.replace(g=self._hold_stuck(new, state.g))

    def _hold_stuck(self, state: CellState, g: Tensor) -> Tensor:
        stuck = state.latent.get("stuck")
        if stuck is None:
            return g
        g = torch.where(stuck == STUCK_ON, self.g_max, g)
        return torch.where(stuck == STUCK_OFF, self.g_min, g)


@dataclass(frozen=True)
class Preset:
    """A named, cited parameter set: ``build()`` returns a fresh device model."""

    name: str
    technology: str
    build: Any  # Callable[[], Device]
    source: str
    summary: str
