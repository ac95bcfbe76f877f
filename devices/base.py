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
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, ClassVar

import torch
from torch import Tensor

from memxbar.errors import ConfigError, plain_value

STUCK_NONE, STUCK_ON, STUCK_OFF = 0, 1, 2

MAX_PULSES = 10_000
"""Most pulses one cell may get in one :meth:`Device.pulse` call (either sign) on a device that
simulates pulse by pulse (``Device.max_pulses``). More than any preset needs to cross its whole
range (the slowest, ~1,200 pulses); split longer trains into several calls. A call costs about
the total number of pulses, not cells times the largest count."""

UNITS_FACTOR = 10.0
"""Largest conductance of a state built by hand, in units of the device's ``g_max``: a state in
microsiemens (10.0 meaning 10 uS) is 1e5-1e6 x ``g_max`` and refused; programming noise and
stuck-on cells stay far below it."""

OPERATING_LIMITS = {"read_voltage": 5.0, "write_voltage": 20.0, "read_time": 1e-3,
                    "write_time": 1.0, "write_energy": 1e-6}
"""Upper bounds (V, s, J) of these parameters of every device model, tighter where a model
declares less, so that a value in another unit (200 meaning mV, 10 meaning ns) is refused.
NVMExplorer's survey (shared/data/surveys/nvm) spans read voltages of 0.08-1.25 V, write
voltages up to 9 V (FeFET erase; 11 V FeRAM), reads of 1.3 ns - 2 us and writes up to 100 us
(RRAM): the bounds leave 4x, 2x, 500x and 10,000x beyond them."""

MAX_CONDUCTANCE = 1.0
"""Upper bound (S) of every parameter in siemens (50 meaning 50 uS is refused). The NVMExplorer
survey of RRAM (shared/data/surveys/nvm/RRAM.csv, n = 19) has low-resistance states of
1 kohm - 9 Gohm, compact models down to 50 ohm (VTEAM, in MemTorch): 1 ohm leaves 50x."""

MAX_PULSES_CLOSED_FORM = 2**31 - 1
"""``max_pulses`` of devices whose response to a train is computed in one step (ideal, MTJ,
domain wall)."""

BLOCK = 1 << 17
"""Elements per block of device arithmetic on the CPU. torch splits element-wise operations of more
than :data:`GRAIN` elements over its threads, and a split's edge moves elements between the
vectorized and the scalar code of functions such as ``exp``, which round differently in the last
bit; so the device models work on blocks of cells no larger than this, each with one torch thread
(the blocks in parallel on helper threads), and results do not depend on the thread count. Blocks
of 2^15 cells spent more on the interpreter and on each block's fresh temporaries than on the
arithmetic (program + read of 2^19 PCM cells: 1.2-1.3x slower, BENCHMARKS.md)."""
GRAIN = 1 << 15  # torch's grain: element-wise operations up to this size run on one thread

FLOAT_DTYPES = (torch.float32, torch.float64)
NEWTON_STEPS = 8  # Newton steps of a non-ohmic device in series with its access transistor

K_B_EV = 8.617333262e-5  # Boltzmann constant, eV/K (CODATA 2018)
T_REF = 300.0
"""Temperature (K) at which the presets' drift, relaxation and retention were measured (room
temperature); thermally activated processes are scaled from it by :func:`arrhenius_factor`."""


def frozen_fraction(total_log: float, conversion_interval: float, read_time: float) -> float:
    """Frozen fraction of 1/f noise (PSD ~ 1/f) read over ``[f_min, f_max]`` with ``f_max = 1 /
    (2 read_time)`` and ``total_log = ln(f_max / f_min)``: the variance below the conversion
    frequency ``1 / conversion_interval``, ``1 - ln(f_max * conversion_interval) /
    total_log``, clipped to [0, 1] (1 when there is no band)."""
    if total_log <= 0.0:
        return 1.0
    white = math.log(conversion_interval / (2.0 * read_time)) / total_log
    return min(1.0, max(0.0, 1.0 - white))


def arrhenius_factor(activation_energy: float, temperature: float,
                     reference: float = T_REF) -> float:
    """How many times faster a thermally activated process runs at ``temperature`` (K) than at
    ``reference`` (K): ``exp(E_a / k_B * (1 / T_ref - 1 / T))``, ``E_a`` in eV. Time-temperature
    superposition: ``t`` seconds at ``temperature`` age the cell as ``factor * t`` at
    ``reference`` do."""
    return math.exp(activation_energy / K_B_EV * (1.0 / reference - 1.0 / temperature))


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


def declared_range(name: str, m: Mapping[str, Any]) -> dict[str, Any]:
    """The ``param()`` declaration ``m`` of parameter ``name`` with the upper bound tightened
    to :data:`OPERATING_LIMITS` and :data:`MAX_CONDUCTANCE` where they are lower."""
    limit = OPERATING_LIMITS.get(name, MAX_CONDUCTANCE if m.get("unit") == "S" else None)
    out = dict(m)
    if limit is None or out.get("options") is not None:
        return out
    if (out["le"] is None or out["le"] > limit) and (out["lt"] is None or out["lt"] > limit):
        out["le"], out["lt"] = limit, None
    return out


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
    if not (isinstance(value, int) or math.isfinite(value)):  # big ints: no float()
        raise ConfigError(f"{owner}.{name} = {value!r} is out of range; allowed: {allowed}")
    if m["integer"] and (not isinstance(value, int) or int(value) != value):
        raise ConfigError(f"{owner}.{name} = {value!r} must be an integer; allowed: {allowed}")
    bad = False
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

    # set by @dataclass on every subclass; declared so that type checkers know it is one
    __dataclass_fields__: ClassVar[dict[str, dataclasses.Field[Any]]]

    def __post_init__(self) -> None:
        owner = type(self).__name__
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if "param" in f.metadata:
                plain = plain_value(value)
                if plain is not value:
                    object.__setattr__(self, f.name, plain)  # the dataclasses are frozen
                check_param(owner, f.name, plain, declared_range(f.name, f.metadata["param"]))
        self._check()

    def _check(self) -> None:
        """Cross-parameter checks; raise ``ValueError`` naming the parameters."""

    def parameters(self) -> list[dict[str, Any]]:
        """Rows (name, value, unit, doc, source) of every declared parameter, nested ones dotted."""
        rows: list[dict[str, Any]] = []
        for f in dataclasses.fields(self):
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
    # The device whose program, pulse or disturb returned the state: its values are that
    # model's own (a model may define g < 0), so that device's reads and pulses check only the
    # structure. A state built or changed by hand (the constructor, replace, from_tensors, a
    # new g or latent dict) or made by another device is checked in full.
    trusted: Device | None = field(default=None, compare=False, repr=False)

    def __setattr__(self, name: str, value: Any) -> None:
        object.__setattr__(self, name, value)
        if name in ("g", "latent") and "trusted" in self.__dict__:  # changed by hand
            object.__setattr__(self, "trusted", None)

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
        return CellState(mv(self.g), {k: mv(v) for k, v in self.latent.items()}, self.trusted)

    def tensors(self) -> dict[str, Tensor]:
        """Flat dict of tensors, for ``state_dict`` buffers."""
        return {"g": self.g, **{f"latent.{k}": v for k, v in self.latent.items()}}

    @classmethod
    def from_tensors(cls, tensors: dict[str, Tensor]) -> CellState:
        """Inverse of :meth:`tensors`: a dict with ``"g"`` and ``"latent.<name>"`` keys."""
        allowed = "allowed: the dict of CellState.tensors(), keys 'g' and 'latent.<name>'"
        if not isinstance(tensors, Mapping):
            raise ConfigError(f"CellState.from_tensors: tensors = {type(tensors).__name__} is "
                              f"not a dict; {allowed}")
        other = sorted(str(k) for k in tensors if k != "g" and not (
            isinstance(k, str) and k.startswith("latent.")))
        if "g" not in tensors or other:
            what = "lacks the key 'g'" if "g" not in tensors else f"has unknown keys {other}"
            raise ConfigError(f"CellState.from_tensors: tensors {what}; {allowed}")
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


def _in_parallel(fn: Callable[[range], None], blocks: int, threads: int) -> None:
    """``fn(run)`` for ``threads`` runs of neighbouring block indices covering ``range(blocks)``,
    at once: the first on this thread (no hand-over to wait for), the others on helper
    threads."""
    groups = [range(blocks * i // threads, blocks * (i + 1) // threads) for i in range(threads)]
    pending = [_workers(len(groups)).submit(fn, g) for g in groups[1:]]
    try:
        fn(groups[0])
    finally:
        for done in pending:
            done.result()


def in_parallel_single_threaded(fn: Callable[[range], None], blocks: int) -> None:
    """``fn(run)`` over ``range(blocks)``, every block computed with one torch thread: split
    into runs on this and memxbar's helper threads (as many as torch's thread count) when
    there are two or more, else on this thread alone (its torch threads set to one for the
    call). For independent block computations whose bits must not depend on the thread count
    (torch's kernels round by their split points). On a helper thread itself, the runs stay
    there (no task waits on its own pool)."""
    if threading.current_thread().name.startswith("memxbar-"):
        fn(range(blocks))
        return
    threads = min(torch.get_num_threads(), blocks)
    saved = torch.get_num_threads()

    def one(run: range) -> None:
        torch.set_num_threads(1)  # this thread's own torch threads
        fn(run)

    try:
        if threads < 2:
            one(range(blocks))
        else:
            _in_parallel(one, blocks, threads)
    finally:
        torch.set_num_threads(saved)


def randn(like: Tensor, generator: torch.Generator | None) -> Tensor:
    """Standard normal samples of ``like``'s shape, dtype and device.

    A CPU draw of at least two :data:`STREAM` blocks fills each block from its own Mersenne
    Twister, seeded by one draw of ``generator``, the blocks in parallel on torch's threads
    (torch's CPU sampler is serial). The samples depend only on ``generator``, not on the
    thread count. ``generator=None`` draws from torch's default (global) generator.
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
    _in_parallel(fill, blocks, threads)
    return out


def pulse_train(count: Tensor, tensors: dict[str, Tensor],
                step: Callable[[dict[str, Tensor]], dict[str, Tensor]]) -> dict[str, Tensor]:
    """Run one pulse at a time on the cells that still have pulses left.

    ``count`` (cells' shape): pulses per cell (<= 0: none). ``tensors``: per-cell tensors, each
    of the cells' shape plus optional trailing dimensions. For pulse k = 0, 1, ... ``step`` gets
    the cells with ``count > k``, flattened, in their original order, and returns new values
    for some of the tensors (the others are read-only). So a train of k pulses draws what k
    calls of one pulse each would draw. Returns every tensor, updated. The cost is about the
    total number of pulses, not the cells times the longest train.
    """
    shape, cells = count.shape, count.numel()
    c = count.reshape(-1)
    total = int(c.max()) if cells else 0
    if total <= 0:
        return dict(tensors)
    nd = len(shape)
    full = {k: v.reshape(cells, *v.shape[nd:]) for k, v in tensors.items()}
    idx = torch.nonzero(c > 0).squeeze(1)
    left = c[idx]
    work = {k: v[idx] for k, v in full.items()}
    written: set[str] = set()
    out = {k: v.clone() for k, v in full.items()}

    def store(sel: Tensor | None) -> None:
        for k in written:
            if sel is None:
                out[k][idx] = work[k]
            else:
                out[k][idx[sel]] = work[k][sel]

    for k in range(total):
        if k:
            keep = left > k
            if not bool(keep.all()):
                store(~keep)
                idx, left = idx[keep], left[keep]
                work = {key: v[keep] for key, v in work.items()}
        new = step(dict(work))
        work.update(new)
        written.update(new)
    store(None)
    return {k: v.reshape((*shape, *v.shape[1:])) for k, v in out.items()}  # shape may be ()


def rand(like: Tensor, generator: torch.Generator | None) -> Tensor:
    """Uniform [0, 1) samples of ``like``'s shape, dtype and device."""
    return torch.rand(like.shape, generator=generator, dtype=like.dtype, device=like.device)


def as_time(t: float | Tensor, like: Tensor, where: str = "read") -> Tensor:
    """Time since programming (s) as a tensor broadcastable to ``like``; refuses t < 0, NaN, inf,
    and shapes that do not broadcast to ``like``'s shape without enlarging it."""
    if isinstance(t, bool) or (isinstance(t, Tensor) and t.dtype == torch.bool):
        raise ConfigError(f"{where}: t = {t!r} is a bool; allowed: a number or tensor of seconds")
    try:
        tt = torch.as_tensor(t, dtype=like.dtype, device=like.device)
    except OverflowError:
        text = repr(t) if len(repr(t)) <= 24 else f"{repr(t)[:12]}...({len(repr(t))} digits)"
        raise ConfigError(f"{where}: t = {text} s is not allowed; allowed: finite and >= 0, at "
                          f"most {torch.finfo(like.dtype).max:.3g} s (the cells' "
                          f"{like.dtype})") from None
    except (TypeError, ValueError, RuntimeError):
        raise ConfigError(f"{where}: t = {t!r} is not a number or tensor of seconds") from None
    if tt.dim() > 0 and not _broadcasts_to(tt.shape, like.shape):
        raise ConfigError(f"{where}: t has shape {tuple(tt.shape)}; expected a number or a tensor "
                          f"broadcastable to the cells' shape {tuple(like.shape)}")
    if not torch.isfinite(tt).all() or (tt < 0).any():
        shown = t if tt.numel() == 1 else f"a tensor with values in [{float(tt.min())}, " \
            f"{float(tt.max())}]"
        big = "" if like.dtype == torch.float64 else (
            f" and at most {torch.finfo(like.dtype).max:.3g} s (the cells' {like.dtype})")
        raise ConfigError(f"{where}: t = {shown!r} s is not allowed; time since programming must "
                          f"be finite and >= 0{big}")
    return tt


def real_number(value: Any, name: str, where: str, unit: str = "", *,
                positive: bool = True) -> float:
    """``value`` (a Python or numpy real, or a one-element real tensor) as a float; refuses
    bools, non-numbers, NaN, inf and values ``<= 0`` (``positive``) or ``< 0`` (not)."""
    v = plain_value(value)
    if isinstance(v, Tensor) and v.numel() == 1 and not (v.is_complex() or v.dtype == torch.bool):
        v = v.item()
    bound = "> 0" if positive else ">= 0"
    allowed = f"allowed: a finite number {bound}" + (f" ({unit})" if unit else "")
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise ConfigError(f"{where}: {name} = {value!r} is not a number; {allowed}")
    try:
        f = float(v)
    except OverflowError:
        f = math.inf
    if not math.isfinite(f) or f < 0 or (positive and f == 0):
        raise ConfigError(f"{where}: {name} = {value!r} is not allowed; {allowed}")
    return f


def real_values(x: float | Tensor, name: str, where: str, *, lo: float | None = None,
                hi: float | None = None, lo_open: bool = False, unit: str = "") -> Tensor:
    """``x`` (a number or a real tensor) as a float tensor (``x``'s float dtype, else
    float64); refuses bools, non-numbers, NaN, inf and values outside ``[lo, hi]`` (``lo``
    excluded when ``lo_open``)."""
    lo_text = "-inf" if lo is None else f"{lo:g}"
    hi_text = "inf" if hi is None else f"{hi:g}"
    allowed = (f"allowed: finite values in {'(' if lo_open or lo is None else '['}{lo_text}, "
               f"{hi_text}{')' if hi is None else ']'}" + (f" {unit}" if unit else ""))
    v = plain_value(x)
    if isinstance(v, bool) or (isinstance(v, Tensor) and (v.dtype == torch.bool
                                                          or v.is_complex())):
        raise ConfigError(f"{where}: {name} = {x!r} is not a real number; {allowed}")
    try:
        t = v if isinstance(v, Tensor) and v.is_floating_point() else torch.as_tensor(
            v, dtype=torch.float64)
    except (TypeError, ValueError, RuntimeError, OverflowError):
        raise ConfigError(f"{where}: {name} = {x!r} is not a number or tensor; {allowed}"
                          ) from None
    bad = ~torch.isfinite(t)
    if lo is not None:
        bad |= (t <= lo) if lo_open else (t < lo)
    if hi is not None:
        bad |= t > hi
    if t.numel() and bool(bad.any()):
        shown = repr(x) if t.numel() == 1 else (f"a tensor with values in [{float(t.min()):g}, "
                                                 f"{float(t.max()):g}]")
        raise ConfigError(f"{where}: {name} = {shown} is not allowed; {allowed}")
    return t


def _broadcasts_to(shape: torch.Size, target: torch.Size) -> bool:
    """Whether ``shape`` broadcasts to ``target`` without enlarging it."""
    try:
        return torch.broadcast_shapes(shape, target) == target
    except RuntimeError:
        return False


def _kind(x: Tensor) -> str:
    return "float" if x.is_floating_point() else "bool" if x.dtype == torch.bool else "int"


class _Assembly:
    """The whole result of a blockwise computation, written block by block as each block
    finishes (no list of parts and no concatenation; the block's values are still in cache).

    A block's result is a tensor, a tuple of tensors or a CellState, flat cells first. A latent
    that only some blocks make (wear failures, devices/endurance.py: ``stuck`` 0 = none,
    ``worn`` False) is zero in the others."""

    def __init__(self, cells: int) -> None:
        self.cells = cells
        self.lock = threading.Lock()
        self.out: Any = None

    def _whole(self, part: Tensor, zeros: bool = False) -> Tensor:
        size = (self.cells, *part.shape[1:])
        return part.new_zeros(size) if zeros else part.new_empty(size)

    def store(self, sl: slice, part: Any) -> None:
        with self.lock:  # the first block sets the structure; a late latent starts at zeros
            if self.out is None:
                self.out = (CellState(self._whole(part.g), {k: self._whole(v) for k, v in
                                                           part.latent.items()})
                            if isinstance(part, CellState) else
                            tuple(self._whole(p) for p in part) if isinstance(part, tuple)
                            else self._whole(part))
            elif isinstance(part, CellState):
                for k, v in part.latent.items():
                    if k not in self.out.latent:
                        self.out.latent[k] = self._whole(v, zeros=True)
            out = self.out
            keys = list(out.latent.items()) if isinstance(out, CellState) else []
        if isinstance(part, CellState):
            out.g[sl].copy_(part.g)
            for k, dest in keys:
                src = part.latent.get(k)
                dest[sl].zero_() if src is None else dest[sl].copy_(src)
        elif isinstance(part, tuple):
            for dest, p in zip(out, part, strict=True):
                dest[sl].copy_(p)
        else:
            out[sl].copy_(part)

    def result(self, shape: torch.Size) -> Any:
        """The assembled result with the cells' ``shape`` restored."""
        def shaped(x: Tensor) -> Tensor:
            return x.reshape((*shape, *x.shape[1:]))

        out = self.out
        if isinstance(out, CellState):
            return CellState(shaped(out.g), {k: shaped(v) for k, v in out.latent.items()})
        if isinstance(out, tuple):
            return tuple(shaped(x) for x in out)
        return shaped(out)


@dataclass(frozen=True, kw_only=True)
class Device(Parametrized, ABC):
    """A memory cell model, vectorized over any tensor shape.

    Subclasses implement ``_program`` (noise, latents), ``_mean`` (drift or relaxation),
    ``_read_std`` (read noise, given the drifted mean) and ``_pulse`` (update response); the
    base class checks inputs, quantizes targets to ``levels``, applies stuck-at faults (single
    cells, and whole rows / columns of the last two dimensions), and offers ``read_mean``,
    ``read_std`` and both at once (``read_stats``). The read path of an array adds the access
    transistor (:meth:`effective_g`, :meth:`cell_current`) and splits the read noise into a
    frozen and a white part (:meth:`read_noise_split`). Thermally activated processes scale
    their clock from 300 K by :func:`arrhenius_factor` at ``temperature``.
    """

    technology: ClassVar[str] = "generic"
    cell_type: ClassVar[str] = "1T1R"
    max_pulses: ClassVar[int] = MAX_PULSES  # most pulses per cell in one pulse() call

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
    program_iterations: float = param(
        1.0, ge=1.0, doc="write pulses per cell when it is programmed (mean over targets; "
                         "each write-verify iteration is one pulse)",
        source="1 = open loop, one pulse per cell; presets whose programming statistic comes "
               "from a program-and-verify loop set their loop's count")
    verify_reads: float = param(
        0.0, ge=0.0, doc="verify reads per cell when it is programmed (mean over targets)",
        source="0 = open loop; presets whose programming statistic comes from a "
               "program-and-verify loop set their loop's count")
    devices_per_cell: int = param(
        1, integer=True, ge=1,
        doc="physical devices behind one modelled cell (their conductances add); each one is "
            "programmed and takes its own cell area", source="1; HERMES two-device cells: 2")
    temperature: float = param(
        300.0, unit="K", doc="operating temperature of the array during retention and reads",
        source="300 K: the room temperature at which the presets' drift and retention data were "
               "measured; qualification specifications are quoted at 85 C = 358.15 K (JEDEC "
               "JESD47)", ge=200.0, le=500.0)
    access_resistance: float = param(
        0.0, unit="ohm", ge=0.0,
        doc="on-resistance of the cell's access transistor in series with the device; every "
            "read and the IR-drop network see G_eff = G / (1 + G * R_s); 0 = no transistor, or "
            "one already inside the measured conductances",
        source="0 by default: the RRAM, PCM and FeFET presets' conductances are read "
               "currents of whole cells (transistor included). A bare device behind a "
               "transistor: NeuroSim uses 15 kOhm (1T1R, MLP_NeuroSim V3.0 Cell.cpp RealDevice) "
               "and 5 kOhm (1T1MTJ, DigitalNVM; device-parameters.md §5), which mtj-neurosim "
               "sets (its 8/24 kOhm are the bare junction's)")
    row_fault_fraction: float = param(
        0.0, ge=0.0, le=1.0,
        doc="fraction of array rows (the cells' second-to-last dimension) whose every cell is "
            "stuck at g_min: an open word line or a dead row driver")
    column_fault_fraction: float = param(
        0.0, ge=0.0, le=1.0,
        doc="fraction of array columns (the cells' last dimension) whose every cell is stuck at "
            "g_min: an open bit line or a dead sense path")

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
        """Program cells to ``g_target`` (S, any shape); returns the state right after writing.

        float32 and float64 targets are computed in their own precision, integer ones in
        float32; float16 and bfloat16 are refused (ConfigError): conductances in siemens are
        subnormal or coarse there. ``generator=None`` draws from torch's default (global)
        generator, as torch's own functions do; pass a ``torch.Generator`` for reproducible
        results.
        """
        g_target = self._check_targets(g_target)
        gen = resolve_generator(generator, g_target)

        def run(cells: CellState, gen: torch.Generator | None) -> CellState:
            return self._apply_faults(self._program(self.quantize(cells.g), gen), gen)

        out = self._blockwise(run, CellState(g_target), (), gen, self._cell_width, random=True)
        if self.row_fault_fraction > 0.0 or self.column_fault_fraction > 0.0:
            out = self._line_faults(out, gen)
        out.trusted = self
        return out

    def read(self, state: CellState, t: float | Tensor = 0.0, *,
             generator: torch.Generator | None = None) -> Tensor:
        """Conductance (S) seen ``t`` seconds after programming: drift plus one read-noise draw.

        ``t``: a number or a tensor broadcastable to the cells' shape.
        """
        tt = self._check_read(state, t, "read")
        gen = resolve_generator(generator, state.g)

        def run(st: CellState, tt: Tensor, gen: torch.Generator | None) -> Tensor:
            mean, std = self._stats(st, tt)
            g = mean + std * randn(mean, gen)
            return self._hold_stuck(st, g.clamp_min(0.0))

        return self._blockwise(run, state, (tt,), gen, self._width_of(state), random=True)

    def read_mean(self, state: CellState, t: float | Tensor = 0.0) -> Tensor:
        """Expected conductance (S) at ``t`` s after programming, given the cells' latents."""
        tt = self._check_read(state, t, "read_mean")

        def run(st: CellState, tt: Tensor, gen: None) -> Tensor:
            return self._hold_stuck(st, self._worn(st, self._mean(st, tt)))

        return self._blockwise(run, state, (tt,), None, self._width_of(state))

    def read_std(self, state: CellState, t: float | Tensor = 0.0) -> Tensor:
        """Standard deviation (S) of one read at ``t`` s around :meth:`read_mean`."""
        return self.read_stats(state, t)[1]

    def read_stats(self, state: CellState, t: float | Tensor = 0.0) -> tuple[Tensor, Tensor]:
        """``(read_mean, read_std)`` at ``t`` s, computed together (the mean once)."""
        tt = self._check_read(state, t, "read_stats")
        return self._blockwise(lambda st, tt, gen: self._stats(st, tt), state, (tt,), None,
                               self._width_of(state))

    def pulse(self, state: CellState, n: Tensor, *,
              generator: torch.Generator | None = None) -> CellState:
        """Apply ``n`` (signed int, broadcastable to the cells) update pulses per cell.

        Positive counts potentiate (raise G), negative depress. ``|n|`` is at most
        ``max_pulses`` per call (:data:`MAX_PULSES`, or :data:`MAX_PULSES_CLOSED_FORM` for
        devices that compute a train in one step). Returns the new state.
        """
        where = f"{type(self).__name__}.pulse"
        self._check_state(state, where)
        n = _as_counts(n, state.g, where, self.max_pulses)
        if not bool((n != 0).any()):
            return state
        gen = resolve_generator(generator, state.g)

        def run(st: CellState, n: Tensor, gen: torch.Generator | None) -> CellState:
            from memxbar.devices import endurance  # lazy: endurance imports base

            new = endurance.add_cycles(self, self._pulse(st, n, gen), n, gen)  # wear as state
            return new.replace(g=self._hold_stuck(new, new.g))

        out = self._blockwise(run, state, (n,), gen, self._width_of(state), random=True)
        out.trusted = self
        return out

    def disturb(self, state: CellState, reads: float | Tensor, *, voltage: float | None = None,
                generator: torch.Generator | None = None) -> CellState:
        """The cells after ``reads`` reads (a count >= 0, or counts broadcastable to the cells)
        of ``read_time`` at ``voltage`` (V, signed, ``|V| <= write_voltage``; default
        ``read_voltage``): read disturb.

        This base version has no read-disturb model and returns ``state`` itself, unchanged
        (after checking the arguments). Technologies with one override it: MTJ (thermally
        activated switching by the read current, devices/mtj.py) and RRAM (voltage-accelerated
        filament change, devices/disturb.py)."""
        self._disturb_args(state, reads, voltage, generator, f"{type(self).__name__}.disturb")
        return state

    def _disturb_args(self, state: CellState, reads: float | Tensor, voltage: float | None,
                      generator: torch.Generator | None, where: str) -> tuple[Tensor, float]:
        """Checked :meth:`disturb` arguments: read counts (float64, broadcast to the cells)
        and the signed read voltage (V), ``|V| <= write_voltage``: a read is a sub-switching
        bias (the disturb laws are fits to reads below the programming pulse: Jiang et al.,
        IEEE TED 2021, for RRAM; the sub-critical thermal law of MTJs, Koch et al., PRL 92,
        088302, 2004); a larger bias is a write. ``generator``: a torch.Generator or None."""
        self._check_state(state, where)
        resolve_generator(generator, state.g)
        v = self.read_voltage if voltage is None else plain_value(voltage)
        allowed = f"allowed: a finite number of volts with |V| <= write_voltage = " \
            f"{self.write_voltage:g} V (a larger bias writes the cell)"
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise ConfigError(f"{where}: voltage = {voltage!r} V is not allowed; {allowed}")
        if abs(v) > self.write_voltage:
            raise ConfigError(f"{where}: voltage = {voltage!r} V is above the write voltage; "
                              f"{allowed}")
        try:
            n = torch.as_tensor(reads, dtype=torch.float64, device=state.g.device)
        except (TypeError, ValueError, RuntimeError):
            raise ConfigError(f"{where}: reads = {reads!r} is not a number or tensor of read "
                              "counts") from None
        if n.dim() > 0 and not _broadcasts_to(n.shape, state.g.shape):
            raise ConfigError(f"{where}: reads has shape {tuple(n.shape)}; expected a number or "
                              f"a tensor broadcastable to the cells' shape {tuple(state.g.shape)}")
        if not bool(torch.isfinite(n).all()) or bool((n < 0).any()):
            raise ConfigError(f"{where}: reads = {reads!r} is not allowed; read counts must be "
                              "finite and >= 0")
        return torch.broadcast_to(n, state.g.shape), float(v)

    def current(self, g: Tensor, v: Tensor) -> Tensor:
        """Cell current (A) at voltage ``v`` (V) for low-field conductance ``g`` (S); ohmic."""
        return g * v

    def slope(self, g: Tensor, v: Tensor) -> Tensor:
        """Differential conductance ``dI/dV`` (S) of :meth:`current` at ``v`` (V): ``g`` for
        ohmic cells; otherwise by autograd of the elementwise :meth:`current` (a device with a
        closed form overrides this)."""
        shape = torch.broadcast_shapes(g.shape, v.shape)
        if self.is_ohmic:
            return torch.broadcast_to(g, shape)
        with torch.enable_grad():
            vv = torch.broadcast_to(v.detach(), shape).clone().requires_grad_(True)
            (d,) = torch.autograd.grad(self.current(g.detach(), vv).sum(), vv)
        return d

    def effective_g(self, g: Tensor) -> Tensor:
        """Low-field conductance (S) of the cell branch, the device ``g`` in series with its
        access transistor: ``g / (1 + g * access_resistance)`` (exact for a series resistor)."""
        r = self.access_resistance
        return g if r == 0.0 else g / (1.0 + g * r)

    def effective_std(self, g: Tensor, std: Tensor) -> Tensor:
        """Read-noise std (S) of the cell branch for a device std ``std`` at ``g``: scaled by
        ``dG_eff/dG = 1 / (1 + g * access_resistance)**2`` (first order)."""
        r = self.access_resistance
        return std if r == 0.0 else std / (1.0 + g * r).square()

    def cell_current(self, g: Tensor, v: Tensor) -> Tensor:
        """Current (A) of the cell branch at ``v`` (V): the device (:meth:`current`) in series
        with ``access_resistance``. Ohmic cells: ``effective_g(g) * v``; otherwise the device
        voltage ``u`` solves ``u + R_s * current(g, u) = v`` (Newton, fixed iteration count, from
        the ohmic guess), which stays inside the device's fitted voltage range."""
        if self.access_resistance == 0.0:
            return self.current(g, v)
        if self.is_ohmic:
            return self.effective_g(g) * v
        return self.current(g, self._device_voltage(g, v))

    def cell_slope(self, g: Tensor, v: Tensor) -> Tensor:
        """``dI/dV`` (S) of :meth:`cell_current`: ``s / (1 + R_s * s)`` with the device slope
        ``s`` at its own voltage."""
        r = self.access_resistance
        if r == 0.0:
            return self.slope(g, v)
        s = self.slope(g, self._device_voltage(g, v) if not self.is_ohmic else v)
        return s / (1.0 + r * s)

    def _device_voltage(self, g: Tensor, v: Tensor) -> Tensor:
        """Voltage across the device when ``v`` drives it in series with ``access_resistance``
        (the current's sign follows ``v``; |u| <= |v|)."""
        r = self.access_resistance
        u = v / (1.0 + g * r)
        for _ in range(NEWTON_STEPS):
            u = u - (u + r * self.current(g, u) - v) / (1.0 + r * self.slope(g, u))
        return u

    def read_noise_split(self, t: float, conversion_interval: float) -> float:
        """Fraction of the read-noise variance at ``t`` s (finite, >= 0) after programming that
        is frozen during one inference: the part that does not decorrelate between two
        conversions ``conversion_interval`` s (finite, > 0) apart (drawn once per read time;
        the rest is white, drawn per conversion). Default 0: white noise (thermal, shot); 1/f
        models override :meth:`_read_noise_split`."""
        where = f"{type(self).__name__}.read_noise_split"
        t = real_number(t, "t", where, "s", positive=False)
        interval = real_number(conversion_interval, "conversion_interval", where, "s")
        return self._read_noise_split(t, interval)

    def _read_noise_split(self, t: float, conversion_interval: float) -> float:
        """:meth:`read_noise_split` of checked arguments; default 0 (white noise)."""
        return 0.0

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
        from memxbar.devices import endurance  # lazy: endurance imports base

        law = endurance.wear_law(self)
        if law is not None:
            window = ("window kept until failure" if law.window_slope == 0 else
                      f"window w = 1/(1 + (c/endurance)^{law.window_slope:g}) toward "
                      f"{law.window_point:g} of the range")
            lines.append(f"  wear (devices/endurance.py): {window}, lognormal failure (median "
                         f"{law.fail_ratio:g} x endurance, sigma_ln {law.fail_sigma:g}) "
                         f"[{law.source}]")
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
    def _worn(self, state: CellState, mean: Tensor) -> Tensor:
        """``mean`` as read through the cells' worn window (devices/endurance.py)."""
        if "cycles" not in state.latent:
            return mean
        from memxbar.devices import endurance  # lazy: endurance imports base

        return endurance.compress(self, state, mean)

    def _stats(self, state: CellState, tt: Tensor) -> tuple[Tensor, Tensor]:
        mean = self._worn(state, self._mean(state, tt))
        std = self._read_std(state, tt, mean)
        stuck = state.latent.get("stuck")
        if stuck is not None:
            std = torch.where(stuck != STUCK_NONE, 0.0, std)
        return self._hold_stuck(state, mean), std

    def _check_targets(self, g_target: Tensor) -> Tensor:
        where = f"{type(self).__name__}.program"
        try:
            g = torch.as_tensor(g_target)
        except (TypeError, ValueError, RuntimeError):
            raise ConfigError(f"{where}: g_target must be a tensor of conductances in siemens; "
                              f"got {type(g_target).__name__}") from None
        if g.is_complex():
            raise ConfigError(f"{where}: g_target has dtype {g.dtype}; conductances are real")
        if g.is_floating_point() and g.dtype not in FLOAT_DTYPES:
            raise ConfigError(f"{where}: g_target has dtype {g.dtype}; allowed: float32 or "
                              "float64 (conductances of 1e-9..1e-3 S are subnormal or coarse in "
                              "half precision)")
        if not g.is_floating_point():
            g = g.to(torch.float32)
        tol = 1e-6 * self.g_max
        lo, hi = (float(v) for v in torch.aminmax(g)) if g.numel() else (0.0, 0.0)
        if not (math.isfinite(lo) and math.isfinite(hi)):  # min/max propagate NaN
            raise ConfigError(f"{where}: g_target has non-finite values; targets must be finite "
                              "conductances in siemens")
        if g.numel() and (lo < self.g_min - tol or hi > self.g_max + tol):
            raise ConfigError(f"{where}: g_target spans [{lo:.4g}, {hi:.4g}] S, outside the "
                              f"device range [{self.g_min:.4g}, {self.g_max:.4g}] S")
        return g if self.g_min <= lo and hi <= self.g_max else g.clamp(self.g_min, self.g_max)

    @cached_property
    def _latent_layout(self) -> dict[str, tuple[str, tuple[int, ...]]]:
        """Kind (float/bool/int) and per-cell trailing shape of every latent ``program`` makes."""
        g = torch.full((1,), 0.5 * (self.g_min + self.g_max), dtype=torch.float64)
        gen = torch.Generator().manual_seed(0)
        st = self._apply_faults(self._program(self.quantize(g), gen), gen)
        return {k: (_kind(v), tuple(v.shape[1:])) for k, v in st.latent.items()}

    @cached_property
    def _cell_width(self) -> int:
        """Tensor elements per cell in the state (1 + the largest trailing latent size)."""
        return max([1] + [math.prod(t) for _, t in self._latent_layout.values()])

    @staticmethod
    def _width_of(state: CellState) -> int:
        cells = max(1, state.g.numel())
        return max([1] + [v.numel() // cells for v in state.latent.values()])

    def _made(self, state: CellState) -> bool:
        """Whether this device (or an equal one: a copy) made ``state`` (``state.trusted``)."""
        maker = state.trusted
        if maker is self:
            return True
        if maker is None or type(maker) is not type(self):
            return False
        try:
            return bool(maker == self)
        except (RuntimeError, TypeError, ValueError):  # fields that do not compare as one bool
            return False

    def _check_state(self, state: CellState, where: str) -> None:
        """Refuse a state that this device's ``program`` could not have made: another dtype,
        missing latents, latents of the wrong shape or kind, and (unless this device made it,
        ``state.trusted``) non-finite, negative or far too large conductances (above
        :data:`UNITS_FACTOR` x ``g_max``: not siemens) and NaN latents."""
        if not isinstance(state, CellState):
            raise ConfigError(f"{where}: state must be a CellState (from "
                              f"{type(self).__name__}.program); got {type(state).__name__}")
        g = state.g
        if not isinstance(g, Tensor) or g.dtype not in FLOAT_DTYPES:
            raise ConfigError(f"{where}: state.g must be a float32 or float64 tensor of "
                              f"conductances (S); got {getattr(g, 'dtype', type(g).__name__)}")
        values = not self._made(state)
        if values and g.numel() and not bool(torch.isfinite(g).all()):
            raise ConfigError(f"{where}: state.g has {int((~torch.isfinite(g)).sum())} non-finite "
                              "conductances; conductances must be finite (S)")
        if values and g.numel() and bool((g < 0).any()):
            raise ConfigError(f"{where}: state.g has negative conductances (minimum "
                              f"{float(g.min()):.4g} S); conductances must be >= 0 S")
        if values and g.numel() and float(g.max()) > UNITS_FACTOR * self.g_max:
            raise ConfigError(f"{where}: state.g reaches {float(g.max()):.4g} S, "
                              f"{float(g.max()) / self.g_max:.3g} x this device's g_max "
                              f"({self.g_max:.4g} S); allowed: conductances in siemens, up to "
                              f"{UNITS_FACTOR:g} x g_max")
        layout = self._latent_layout
        missing = sorted(set(layout) - set(state.latent))
        if missing:
            raise ConfigError(f"{where}: state lacks latents {missing}; program the cells with "
                              f"{type(self).__name__}.program")
        for k, v in state.latent.items():
            if not isinstance(v, Tensor):
                raise ConfigError(f"{where}: state.latent[{k!r}] must be a tensor; got "
                                  f"{type(v).__name__}")
            kind, trailing = layout.get(k, (None, None))
            ok = tuple(v.shape[: g.dim()]) == tuple(g.shape)
            ok &= trailing is None or tuple(v.shape[g.dim():]) == trailing
            if not ok:
                want = tuple(g.shape) + (trailing or ())
                raise ConfigError(f"{where}: state.latent[{k!r}] has shape {tuple(v.shape)}; "
                                  f"expected {want}" + (" (+ per-cell dimensions)"
                                                         if trailing is None else ""))
            if kind is not None and _kind(v) != kind:
                raise ConfigError(f"{where}: state.latent[{k!r}] has dtype {v.dtype}; expected a "
                                  f"{kind} tensor")
            if v.device != g.device:
                raise ConfigError(f"{where}: state.latent[{k!r}] is on {v.device}, state.g on "
                                  f"{g.device}")
            if values and v.is_floating_point() and v.numel() and bool(torch.isnan(v).any()):
                raise ConfigError(f"{where}: state.latent[{k!r}] has NaN values")

    def _check_read(self, state: CellState, t: float | Tensor, what: str) -> Tensor:
        where = f"{type(self).__name__}.{what}"
        self._check_state(state, where)
        return as_time(t, state.g, where)

    def _blockwise(self, fn: Callable[..., Any], state: CellState, args: tuple[Tensor, ...],
                   generator: torch.Generator | None, width: int, random: bool = False) -> Any:
        """``fn(state, *args, generator)`` on blocks of at most :data:`BLOCK` elements.

        ``args`` broadcast to the cells (0-d tensors are passed whole). One block: ``fn`` sees
        the tensors as given, with ``generator``. Several: ``fn`` sees flat blocks of cells,
        in parallel on helper threads, each block (if ``random``) with its own generator
        seeded by one draw of ``generator`` (None: of torch's default generator); each block's
        result (a tensor, a tuple of tensors or a CellState) is written into the whole result
        as soon as the block is done.
        """
        shape, cells = state.g.shape, state.g.numel()
        per = max(1, BLOCK // width)
        if state.g.device.type != "cpu" or cells * width <= GRAIN:
            return fn(state, *args, generator)
        if cells <= per:  # one block, on one torch thread
            out: list[Any] = []
            in_parallel_single_threaded(lambda _: out.append(fn(state, *args, generator)), 1)
            return out[0]
        nd = len(shape)
        g = state.g.reshape(-1)
        latent = {k: v.reshape(cells, *v.shape[nd:]) for k, v in state.latent.items()}
        flat = [a if a.dim() == 0 else torch.broadcast_to(a, shape).reshape(-1) for a in args]
        blocks = -(-cells // per)
        seeds = (torch.randint(0, 2**62, (blocks,), generator=generator).tolist() if random
                 else None)
        whole = _Assembly(cells)

        def one(b: int) -> None:
            sl = slice(b * per, min(cells, (b + 1) * per))
            gen = None if seeds is None else torch.Generator().manual_seed(seeds[b])
            st = CellState(g[sl], {k: v[sl] for k, v in latent.items()})
            whole.store(sl, fn(st, *[a if a.dim() == 0 else a[sl] for a in flat], gen))

        def run(bs: range) -> None:
            for b in bs:
                one(b)

        in_parallel_single_threaded(run, blocks)  # a run of neighbouring blocks per thread
        return whole.result(shape)

    def _apply_faults(self, state: CellState, generator: torch.Generator | None) -> CellState:
        if not (self.stuck_on_fraction or self.stuck_off_fraction or self.row_fault_fraction
                or self.column_fault_fraction):
            return state
        u = rand(state.g, generator)
        stuck = torch.full(state.shape, STUCK_NONE, dtype=torch.int8, device=state.g.device)
        stuck[u < self.stuck_on_fraction] = STUCK_ON
        stuck[(u >= self.stuck_on_fraction)
              & (u < self.stuck_on_fraction + self.stuck_off_fraction)] = STUCK_OFF
        new = state.replace(stuck=stuck)
        return new.replace(g=self._hold_stuck(new, state.g))

    def _line_faults(self, state: CellState, generator: torch.Generator | None) -> CellState:
        """Whole rows / columns stuck at g_min: the cells' last two dimensions are an array's
        rows and columns (a 1-D tensor is one row, a 0-d one a single cell); every array of
        the leading dimensions draws its own failed lines."""
        g = state.g
        a = g.reshape((1, 1) if g.dim() == 0 else (1, g.shape[0]) if g.dim() == 1 else g.shape)
        rows = torch.rand((*a.shape[:-1], 1), generator=generator, device=g.device)
        cols = torch.rand((*a.shape[:-2], 1, a.shape[-1]), generator=generator, device=g.device)
        dead = ((rows < self.row_fault_fraction) | (cols < self.column_fault_fraction))
        stuck = state.latent["stuck"]
        stuck = torch.where(dead.reshape(g.shape), STUCK_OFF, stuck).to(stuck.dtype)
        new = state.replace(stuck=stuck)
        return new.replace(g=self._hold_stuck(new, g))

    def _hold_stuck(self, state: CellState, g: Tensor) -> Tensor:
        stuck = state.latent.get("stuck")
        if stuck is None:
            return g
        g = torch.where(stuck == STUCK_ON, self.g_max, g)
        return torch.where(stuck == STUCK_OFF, self.g_min, g)


def resolve_generator(generator: torch.Generator | None, like: Tensor) -> torch.Generator | None:
    """``generator`` (None: torch's default generator); anything else is refused."""
    if generator is not None and not isinstance(generator, torch.Generator):
        raise ConfigError(f"generator must be a torch.Generator or None; got generator = "
                          f"{generator!r} ({type(generator).__name__}); allowed: a "
                          "torch.Generator or None")
    return generator


def _as_counts(n: Tensor, like: Tensor, where: str, limit: int) -> Tensor:
    """Pulse counts as an int64 tensor of ``like``'s shape, each of magnitude <= ``limit``."""
    try:
        n = torch.as_tensor(n, device=like.device)
    except (TypeError, ValueError, RuntimeError):
        raise ConfigError(f"{where}: n must be an integer tensor of pulse counts; got "
                          f"{type(n).__name__}") from None
    if n.is_floating_point() or n.is_complex() or n.dtype == torch.bool:
        raise ConfigError(f"{where}: pulse counts must be an integer tensor, got dtype "
                          f"{n.dtype}; allowed: any signed or unsigned integer dtype")
    if n.dim() > 0 and not _broadcasts_to(n.shape, like.shape):
        raise ConfigError(f"{where}: n has shape {tuple(n.shape)}; expected a number or a tensor "
                          f"broadcastable to the cells' shape {tuple(like.shape)}")
    wide = n.dtype == getattr(torch, "uint64", None)
    n = n.to(torch.int64)  # compare in int64: the limit wraps in int8/int16/uint8
    if wide and n.numel() and bool((n < 0).any()):  # uint64 above 2**63 - 1 wrapped
        raise ConfigError(f"{where}: n has uint64 counts of 2**63 pulses or more; allowed: at "
                          f"most max_pulses = {limit} per cell per call")
    if n.numel() and bool(((n > limit) | (n < -limit)).any()):
        big = int(n.abs().max())
        raise ConfigError(f"{where}: |n| up to {big} pulses; allowed: at most max_pulses = "
                          f"{limit} per cell per call (split longer trains into calls)")
    return torch.broadcast_to(n, like.shape)


@dataclass(frozen=True)
class Preset:
    """A named, cited parameter set: ``build()`` returns a fresh device model."""

    name: str
    technology: str
    build: Any  # Callable[[], Device]
    source: str
    summary: str
