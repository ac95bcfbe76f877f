"""The crossbar network as a SPICE netlist, simulated by ngspice: the reference for circuit.py.

Same topology as :mod:`memxbar.crossbar.circuit` (DESIGN.md, crossbar/). Node names: source
node ``s{i}`` of row i, row node ``r{i}_{j}``, column node ``c{i}_{j}``, virtual-ground node
``g{j}`` of column j. Elements: ``vin{i} s{i} 0`` (row source), ``rr{i}_{j}`` (row segment
left of row node (i, j); ``rr{i}_0`` joins the source), ``rc{i}_{j}`` (column segment below
column node (i, j); ``rc{R-1}_{j}`` joins the virtual ground), ``vgnd{j} g{j} 0 dc 0`` (the virtual
ground: a 0 V source whose branch current is the column current), ``rx{i}_{j}`` (ohmic cell,
``1/G`` ohm; cells with G = 0 are open and left out) or ``bx{i}_{j}`` (nonlinear cell, a B-source
current).

Ideal wires (r = 0) are exact, not approximated by a tiny resistance or 0 V sources: the nodes
that an ideal wire joins are the same node, so with ``r_row = 0`` every row node (i, j) is
``s{i}``, and with ``r_col = 0`` every column node (i, j) is ``g{j}``.

:func:`simulate` runs ngspice's ``.op`` through PySpice's shared-library interface
(libngspice); a batch of inputs is one loaded circuit and one ``op`` per input, the row sources
changed with ``alter`` in between.
"""

from __future__ import annotations

import contextlib
import logging
import math
import re
import time
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from memxbar.crossbar.circuit import _as_conductance, _as_resistance, _as_voltage, solve
from memxbar.errors import ConfigError, plain_value, seed_value

__all__ = ["SpiceFailed", "SpiceUnavailable", "check_ngspice", "netlist", "simulate", "spice_check",
           "write_netlist"]

INSTALL_HINT = ("install it with `apt-get install ngspice libngspice0-dev` (or point "
                "NGSPICE_LIBRARY_PATH at libngspice.so)")

_SAVE_PER_LINE = 16


def _num(x: float) -> str:
    return repr(float(x))  # shortest string that reads back as the same float64


def _check(
    G: Tensor, V: Tensor, r_row: float, r_col: float
) -> tuple[np.ndarray, np.ndarray, float, float, bool]:
    """float64 arrays G (R, C), V (B, R), the resistances, and whether V was 1-D."""
    G = _as_conductance(G)
    if G.dim() != 2:
        raise ConfigError(f"SPICE takes one array: G must have shape (R, C); got {tuple(G.shape)}")
    V = _as_voltage(V, G)
    if V.dim() > 2:
        raise ConfigError(f"V must have shape (B, R) or (R,) for SPICE; got {tuple(V.shape)}")
    r_row, r_col = _as_resistance(r_row, "r_row"), _as_resistance(r_col, "r_col")
    g = G.detach().to(torch.float64).cpu().numpy()
    v = V.detach().to(torch.float64).cpu().numpy()
    return g, v.reshape(-1, g.shape[0]), r_row, r_col, V.dim() == 1


def _netlist(g: np.ndarray, v: np.ndarray, r_row: float, r_col: float, cell: str | None,
             title: str) -> str:
    R, C = g.shape
    row = (lambda i, j: f"s{i}") if r_row == 0.0 else (lambda i, j: f"r{i}_{j}")
    col = (lambda i, j: f"g{j}") if r_col == 0.0 else (lambda i, j: f"c{i}_{j}")
    lines = [f"* {title}", f"* {R} x {C} crossbar, r_row = {_num(r_row)} ohm, "
             f"r_col = {_num(r_col)} ohm; column currents = i(vgnd<j>)"]
    lines += [f"vin{i} s{i} 0 dc {_num(v[i])}" for i in range(R)]
    lines += [f"vgnd{j} g{j} 0 dc 0" for j in range(C)]
    if r_row != 0.0:
        lines += [f"rr{i}_{j} {f's{i}' if j == 0 else f'r{i}_{j - 1}'} r{i}_{j} {_num(r_row)}"
                  for i in range(R) for j in range(C)]
    if r_col != 0.0:
        lines += [f"rc{i}_{j} c{i}_{j} {f'g{j}' if i == R - 1 else f'c{i + 1}_{j}'} {_num(r_col)}"
                  for j in range(C) for i in range(R)]
    for i in range(R):
        for j in range(C):
            a, b = row(i, j), col(i, j)
            if cell is not None:
                expr = cell.replace("{g}", _num(g[i, j])).replace("{v}", f"v({a},{b})")
                lines.append(f"bx{i}_{j} {a} {b} i = {expr}")
            elif g[i, j] > 0:
                lines.append(f"rx{i}_{j} {a} {b} {_num(1.0 / g[i, j])}")
    for j0 in range(0, C, _SAVE_PER_LINE):
        js = range(j0, min(C, j0 + _SAVE_PER_LINE))
        lines.append(".save " + " ".join(f"i(vgnd{j})" for j in js))
    # tight Newton tolerances: exact for ohmic cells anyway, and accurate B-source solutions
    lines += [".options reltol=1e-12 vntol=1e-15 abstol=1e-18", ".op", ".end"]
    return "\n".join(lines) + "\n"


B_FUNCTIONS = frozenset({
    "abs", "acos", "acosh", "asin", "asinh", "atan", "atanh", "ceil", "cos", "cosh", "exp",
    "floor", "ln", "log", "log10", "max", "min", "nint", "pow", "pwr", "sgn", "sin", "sinh",
    "sqrt", "tan", "tanh", "u", "u2", "uramp"})
"""Functions of ngspice's B-source expressions (ngspice manual, "Non-linear dependent sources
(behavioral sources)"). A name that ngspice does not know leaves its shared library unable to
load any circuit again in the process ("cannot recover and awaits to be detached"), so a cell
expression is checked against this list first."""
_NUMBER = re.compile(r"(?<![A-Za-z_0-9])(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?"
                     r"(meg|mil|[tgkmunpf])?(?![A-Za-z_0-9])", re.IGNORECASE)
_NAME = re.compile(r"[A-Za-z_][A-Za-z_0-9]*")


def _one_line(text: str, what: str) -> None:
    """Refuse a line break or other control character in text that goes into one netlist
    line: it would end the line, and ngspice would read the rest (a ``.end``, an element) as
    the netlist's own."""
    bad = [c for c in text if ord(c) < 32 or ord(c) == 127]
    if bad:
        raise ConfigError(f"{what} {text!r} holds the control character {bad[0]!r}; allowed: "
                          "one line of printable text")


def _check_cell(cell: str | None) -> None:
    if cell is not None and (not isinstance(cell, str) or "{v}" not in cell):
        raise ConfigError(
            "cell must be a SPICE B-source current expression containing '{v}' (the cell "
            "voltage, row minus column node) and optionally '{g}' (the cell's G); "
            f"got {cell!r}"
        )
    if cell is not None:
        _one_line(cell, "cell")
        rest = _NUMBER.sub(" ", cell.replace("{v}", " ").replace("{g}", " "))
        unknown = sorted({w for w in _NAME.findall(rest) if w.lower() not in B_FUNCTIONS})
        odd = sorted(set(_NAME.sub("", rest)) - set(" +-*/^(),<>=!&|?:"))
        if unknown or odd:
            what = f"unknown names {unknown}" if unknown else f"characters {odd}"
            raise ConfigError(f"cell {cell!r}: {what}; allowed: numbers, {{v}}, {{g}}, "
                              "+ - * / ^ ( ) and ngspice's B-source functions "
                              f"{', '.join(sorted(B_FUNCTIONS))}")


class SpiceFailed(ConfigError, RuntimeError):
    """ngspice refused the circuit (a cell expression it cannot parse) or found no DC solution
    (a cell whose current has no consistent operating point); the message holds ngspice's
    output."""


def netlist(
    G: Tensor, V: Tensor, r_row: float, r_col: float, *, cell: str | None = None,
    title: str = "memxbar crossbar",
) -> str:
    """SPICE netlist (ngspice dialect, with ``.op``) of one array for one input.

    G: (R, C) cell conductances in S; V: (R,) row voltages in V; r_row, r_col: wire segments in
    ohm (0 = ideal wire: merged nodes). ``cell``: optional nonlinear cell, a B-source current
    expression in A with ``{v}`` for the cell voltage and ``{g}`` for the cell's entry of G,
    e.g. ``"{g}*{v} + 1e-5*{v}*{v}*{v}"``; without it, cells are resistors ``1/G``.
    """
    _check_cell(cell)
    if not isinstance(title, str):
        raise ConfigError(f"netlist: title = {title!r} is not a string")
    _one_line(title, "title")
    g, v, r_row, r_col, _ = _check(G, V, r_row, r_col)
    if v.shape[0] != 1:
        raise ConfigError(f"netlist takes one input V of shape (R,); got {v.shape[0]} inputs")
    return _netlist(g, v[0], r_row, r_col, cell, title)


def write_netlist(
    path: str | Path, G: Tensor, V: Tensor, r_row: float, r_col: float, *,
    cell: str | None = None,
) -> Path:
    """Write :func:`netlist` to ``path`` (e.g. ``xbar.cir``; run with ``ngspice -b``)."""
    path = Path(path)
    path.write_text(netlist(G, V, r_row, r_col, cell=cell))
    return path


class _DropVersionWarning(logging.Filter):
    """PySpice 1.5 knows ngspice up to version 34 and warns about newer ones; the shared-library
    interface used here (load circuit, ``op``, ``alter``, read vectors) is unchanged since."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("Unsupported Ngspice version")


class SpiceUnavailable(ConfigError):
    """ngspice's shared library (libngspice) or PySpice cannot be loaded on this machine."""


_unavailable: SpiceUnavailable | None = None  # the first failure to load, raised again each call


def _ngspice():
    """The shared ngspice instance; raises :class:`SpiceUnavailable` if it cannot be loaded.

    A failed load is remembered: PySpice declares ngspice's C API once per process, so a second
    attempt would fail differently (a cffi re-declaration error) and hide the cause.
    """
    global _unavailable
    if _unavailable is not None:
        raise _unavailable
    try:
        from PySpice.Spice.NgSpice.Shared import NgSpiceShared

        logger = logging.getLogger("PySpice.Spice.NgSpice.Shared.NgSpiceShared")
        if not any(isinstance(f, _DropVersionWarning) for f in logger.filters):
            logger.addFilter(_DropVersionWarning())
        return NgSpiceShared.new_instance()
    except (ImportError, OSError) as e:
        what = ("PySpice is not installed" if isinstance(e, ImportError)
                else "cannot load ngspice's shared library")
        cause = str(e).split(".  ")[0]  # cffi appends a long find_library() remark
        _unavailable = SpiceUnavailable(f"ngspice is missing: {what} ({cause}); {INSTALL_HINT}")
        raise _unavailable from None


def check_ngspice() -> None:
    """Raise :class:`SpiceUnavailable` (a ConfigError, with the install command) unless
    ngspice can be loaded; the SPICE functions below raise the same error."""
    _ngspice()


def simulate(
    G: Tensor, V: Tensor, r_row: float, r_col: float, *, cell: str | None = None
) -> Tensor:
    """Column currents (A) by ngspice ``.op`` of the netlist of :func:`netlist`.

    G: (R, C) in S; V: (B, R) or (R,) in V; r_row, r_col in ohm; ``cell`` as in
    :func:`netlist`. Returns float64 I (B, C) (or (C,) for 1-D V): the currents into the
    virtual grounds. Raises :class:`SpiceUnavailable` if ngspice cannot be loaded, and
    :class:`SpiceFailed` (a ConfigError and a RuntimeError) with ngspice's output if ngspice
    refuses the circuit or finds no solution.
    """
    _check_cell(cell)
    g, v, r_row, r_col, vec = _check(G, V, r_row, r_col)
    B, (R, C) = v.shape[0], g.shape
    threads = torch.get_num_threads()  # ngspice's analyses reset the shared OpenMP thread count
    ng = _ngspice()
    from PySpice.Spice.NgSpice.Shared import NgSpiceCircuitError, NgSpiceCommandError

    out = np.empty((B, C))
    try:
        ng.load_circuit(_netlist(g, v[0], r_row, r_col, cell, "memxbar crossbar"))
        for b in range(B):
            for i in range(R) if b else ():
                if v[b, i] != v[b - 1, i]:
                    ng.exec_command(f"alter vin{i} dc = {_num(v[b, i])}")
            ng.exec_command("op")
            plot = ng.plot(None, ng.last_plot)
            out[b] = [float(plot[f"vgnd{j}#branch"].to_waveform(to_real=True)[0])
                      for j in range(C)]
    except (NgSpiceCommandError, NgSpiceCircuitError, KeyError) as e:
        raise SpiceFailed(f"ngspice failed ({e!r}); its output:\n{ng.stdout}\n{ng.stderr}"
                          ) from e
    except NameError as e:  # PySpice's error when ngspice refuses to load a circuit
        global _unavailable
        _unavailable = SpiceUnavailable(
            f"ngspice refused a circuit ({e}) and cannot load another in this process; "
            f"restart Python. Its output:\n{ng.stdout}\n{ng.stderr}")
        raise SpiceFailed(f"ngspice refused the circuit ({e}) and cannot recover in this "
                          f"process; its output:\n{ng.stdout}\n{ng.stderr}") from e
    finally:
        with contextlib.suppress(NgSpiceCommandError):  # no circuit left to remove
            ng.destroy()
            ng.remove_circuit()
        torch.set_num_threads(threads)
    I = torch.from_numpy(out)
    return I[0] if vec else I


def spice_check(
    rows: int, cols: int, *, seed: int = 0, r_row: float = 1.0, r_col: float = 1.0,
    batch: int = 1,
) -> dict:
    """Compare :func:`memxbar.crossbar.circuit.solve` with ngspice on a random array.

    G is log-uniform in [1, 100] uS, V uniform in [0.05, 0.2] V (so every column current is
    positive), from ``torch.Generator().manual_seed(seed)``. Returns a dict: ``memxbar`` and
    ``ngspice`` (column currents in A, (C,) for batch = 1 else (batch, C)), ``max_rel_error``
    (max over entries of |I_memxbar - I_ngspice| / |I_ngspice|), ``memxbar_s`` and
    ``ngspice_s`` (wall times of one solve and of one ngspice run incl. netlist and load,
    each after a warm-up),
    ``speedup`` and the arguments.
    """
    rows, cols, batch = plain_value(rows), plain_value(cols), plain_value(batch)
    for name, x in (("rows", rows), ("cols", cols), ("batch", batch)):
        if isinstance(x, bool) or not isinstance(x, int) or x < 1:
            raise ConfigError(f"{name} = {x!r} is not allowed; allowed: an integer >= 1")
    gen = torch.Generator().manual_seed(seed_value(seed, "spice_check"))
    G = 10.0 ** (-6.0 + 2.0 * torch.rand(rows, cols, generator=gen, dtype=torch.float64))
    V = 0.05 + 0.15 * torch.rand(batch, rows, generator=gen, dtype=torch.float64)
    _ngspice()  # load libngspice outside the timing
    t_m = math.inf
    for _ in range(3):  # best of three: the first call pays torch's lazy initialisation
        t0 = time.perf_counter()
        I_m = solve(G, V, r_row, r_col)
        t_m = min(t_m, time.perf_counter() - t0)
    t1 = time.perf_counter()
    I_s = simulate(G, V, r_row, r_col)
    t2 = time.perf_counter()
    err = float(((I_m - I_s).abs() / I_s.abs()).max())
    squeeze = (lambda x: x[0]) if batch == 1 else (lambda x: x)
    return dict(
        memxbar=squeeze(I_m), ngspice=squeeze(I_s), max_rel_error=err, memxbar_s=t_m,
        ngspice_s=t2 - t1, speedup=(t2 - t1) / t_m, rows=rows, cols=cols, batch=batch,
        r_row=r_row, r_col=r_col, seed=seed,
    )
