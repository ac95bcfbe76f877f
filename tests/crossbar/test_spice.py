"""The IR-drop solver against ngspice on the same netlist (runs ngspice for real)."""

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from memxbar.crossbar.circuit import solve, solve_nonlinear
from memxbar.crossbar.spice import (
    SpiceFailed,
    netlist,
    simulate,
    spice_check,
    write_netlist,
)
from memxbar.errors import ConfigError

F64 = torch.float64


def case(R, C, seed, B=2):
    """G log-uniform over two decades, wire segments in [0.1, 10] ohm, r_row != r_col."""
    gen = torch.Generator().manual_seed(seed)
    G = 1e-5 * 100.0 ** torch.rand(R, C, generator=gen, dtype=F64)
    V = 0.05 + 0.15 * torch.rand(B, R, generator=gen, dtype=F64)
    r_row, r_col = (0.1 * 100.0 ** torch.rand(2, generator=gen, dtype=F64)).tolist()
    return G, V, r_row, r_col


def rel_err(a, b):
    return float(((a - b).abs() / b.abs()).max())


def both_paths(monkeypatch, fn, *args):
    """fn(*args) by each exact method of the circuit solver; checks that CG really ran (no
    fall-back to the direct path)."""
    import memxbar.crossbar.circuit as circuit

    ran = []
    cg = circuit._cg_currents

    def counted(*a):
        X = cg(*a)
        ran.append(X is not None)
        return X

    monkeypatch.setattr(circuit, "_cg_currents", counted)
    out = {m: fn(*args, method=m) for m in ("cg", "direct")}
    monkeypatch.undo()
    assert ran and all(ran)
    return out


@pytest.mark.spice
@pytest.mark.parametrize("R, C, seed, B, r", [
    (8, 8, 0, 2, None), (16, 24, 1, 2, None), (24, 16, 2, 1, None), (64, 64, 3, 1, None),
    (12, 40, 4, 2, (10.0, 0.1)), (40, 12, 5, 2, (0.1, 10.0)),  # the corners of [0.1, 10] ohm
])
def test_solver_agrees_with_ngspice(monkeypatch, R, C, seed, B, r):
    """Both exact paths of solve (CG on the cell currents, and the effective matrix)."""
    G, V, r_row, r_col = case(R, C, seed, B)
    if r is not None:
        r_row, r_col = r
        G[0, -1] = G[-1, 0] = 0.0  # open cells
    assert r_row != r_col
    I_spice = simulate(G, V, r_row, r_col)
    for I in [solve(G, V, r_row, r_col), *both_paths(monkeypatch, solve, G, V, r_row, r_col)
              .values()]:
        assert I_spice.shape == I.shape == (B, C)
        assert rel_err(I, I_spice) < 1e-6
    # the wires matter at this size, so the comparison is not of two ideal-wire answers
    assert rel_err(V @ G, I_spice) > 1e-3 * (R * C / 64) ** 0.5


@pytest.mark.spice
@pytest.mark.parametrize("r_row, r_col", [(0.0, 2.5), (4.0, 0.0), (0.0, 0.0)])
def test_ideal_wires_are_merged_nodes(r_row, r_col):
    G, V, _, _ = case(6, 5, seed=4)
    text = netlist(G, V[0], r_row, r_col)
    assert ("\nrr" in text) == (r_row > 0) and ("\nrc" in text) == (r_col > 0)
    assert rel_err(solve(G, V, r_row, r_col), simulate(G, V, r_row, r_col)) < 1e-6
    if r_row == r_col == 0.0:
        assert rel_err(V @ G, simulate(G, V, 0.0, 0.0)) < 1e-12


@pytest.mark.spice
def test_batch_of_inputs_and_open_cells(monkeypatch):
    G, V, r_row, r_col = case(5, 7, seed=5, B=4)
    G[2, 3] = 0.0
    V[2] = V[1]  # an unchanged input between two operating points
    assert "rx2_3" not in netlist(G, V[0], r_row, r_col)
    I_spice = simulate(G, V, r_row, r_col)
    for I in both_paths(monkeypatch, solve, G, V, r_row, r_col).values():
        assert rel_err(I, I_spice) < 1e-6
    torch.testing.assert_close(simulate(G, V[3], r_row, r_col), I_spice[3], rtol=1e-12, atol=0)


@pytest.mark.spice
def test_ngspice_leaves_torch_thread_count_alone():
    """ngspice sets the process-wide OpenMP thread count (its default: 2) when it runs."""
    G, V, r_row, r_col = case(3, 3, seed=9)
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        simulate(G, V, r_row, r_col)
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


@pytest.mark.spice
@pytest.mark.parametrize("cell, current", [
    ("{g}*{v} + 2*{g}*{v}*{v} + 30*{g}*{v}*{v}*{v}",  # RRAM-like cubic G0 V + NL2 V^2 + NL3 V^3
     lambda g, v: g * v + 2 * g * v**2 + 30 * g * v**3),
    ("0.05*{g}*sinh({v}/0.05)", lambda g, v: 0.05 * g * torch.sinh(v / 0.05)),
])
def test_nonlinear_cells_agree_with_b_sources(monkeypatch, cell, current):
    """Nonlinear cells as behavioural current sources in ngspice vs damped Newton (its linear
    steps by CG and by the direct sweep)."""
    G, V, r_row, r_col = case(6, 8, seed=6)
    G = 10 * G  # 0.1 .. 10 mS: strong IR drop and strong nonlinearity
    I_spice = simulate(G, V, r_row, r_col, cell=cell)
    for I in both_paths(monkeypatch, solve_nonlinear, G, V, r_row, r_col, current).values():
        assert rel_err(I, I_spice) < 1e-9
    assert rel_err(solve(G, V, r_row, r_col), I_spice) > 0.1


@pytest.mark.spice
def test_spice_check_reports_both_answers(tmp_path):
    res = spice_check(5, 6, seed=1, r_row=2.0, r_col=0.5)
    assert res["memxbar"].shape == res["ngspice"].shape == (6,)
    assert res["max_rel_error"] < 1e-9
    assert res["memxbar_s"] > 0 and res["ngspice_s"] > 0
    res = spice_check(3, 4, batch=3)
    assert res["memxbar"].shape == (3, 4) and res["max_rel_error"] < 1e-9
    G, V, r_row, r_col = case(3, 4, seed=7)
    path = write_netlist(tmp_path / "x.cir", G, V[0], r_row, r_col)
    assert path.read_text() == netlist(G, V[0], r_row, r_col)


@pytest.mark.spice
def test_ngspice_version_warning_is_dropped():
    from memxbar.crossbar.spice import _ngspice

    pytest.importorskip("PySpice")
    _ngspice()
    logger = logging.getLogger("PySpice.Spice.NgSpice.Shared.NgSpiceShared")
    record = logger.makeRecord(logger.name, logging.WARNING, __file__, 0,
                               "Unsupported Ngspice version %s", (39,), None)
    assert not logger.filter(record)
    other = logger.makeRecord(logger.name, logging.WARNING, __file__, 0, "other", (), None)
    assert logger.filter(other)


def test_bad_inputs_are_refused():
    G, V, _, _ = case(3, 4, seed=8)
    with pytest.raises(ValueError, match="one array"):
        simulate(torch.stack([G, G]), V, 1.0, 1.0)
    with pytest.raises(ValueError, match="one input"):
        netlist(G, V, 1.0, 1.0)
    with pytest.raises(ValueError, match=r"\{v\}"):
        netlist(G, V[0], 1.0, 1.0, cell="{g}*2")
    with pytest.raises(ValueError, match="r_row"):
        netlist(G, V[0], -1.0, 1.0)
    with pytest.raises(ValueError, match="rows"):
        spice_check(0, 4)
    # a line break ended the cell's line: ngspice read the rest (".end") as the netlist's own
    # and returned 0 A for the other columns, silently
    for cell, match in (("{g}*{v}\n.end", r"control character '\\n'"),
                        ("{g}*{v}+foo", r"unknown names \['foo'\]; allowed: numbers"),
                        ("v(s0)*{v}", r"unknown names \['s0', 'v'\]"),
                        ("{g}*{v} $ 2", r"characters \[.\$.\]")):
        with pytest.raises(ConfigError, match=match):
            netlist(G, V[0], 1.0, 1.0, cell=cell)
    with pytest.raises(ConfigError, match="title"):
        netlist(G, V[0], 1.0, 1.0, title="a\n.end")
    assert "bx0_0" in netlist(G, V[0], 1.0, 1.0, cell="2.5u*{v} + {g}*{v}*1meg*1e-6 + "
                                                       "1e-6*sinh({v}/0.05)^2")


@pytest.mark.spice
def test_a_cell_ngspice_cannot_parse_or_solve_is_one_clear_error():
    """A SpiceFailed (a ConfigError and a RuntimeError) with ngspice's output; ngspice still
    runs the next circuit."""
    G, V, _, _ = case(3, 4, seed=8)
    for cell, match in (("{v}*(", "circuit not parsed"), ("{v}{v}", "circuit not parsed"),
                        ("1/({v} - 0.1)", "DC solution failed|op' failed")):
        with pytest.raises(SpiceFailed, match=match) as info:
            simulate(G, V[0], 1.0, 1.0, cell=cell)
        assert isinstance(info.value, RuntimeError)
    assert rel_err(simulate(G, V[0], 1.0, 1.0), solve(G, V[0], 1.0, 1.0)) < 1e-9


# ------------------------------------------------------------------ without ngspice
ROOT = Path(__file__).resolve().parents[2]


def without_ngspice(args, require=None):
    """Run ``args`` with libngspice made unloadable (PySpice's library path pointed at a file
    that does not exist), as on a machine where ngspice is not installed."""
    env = {k: v for k, v in os.environ.items() if k != "MEMXBAR_REQUIRE_NGSPICE"}
    env["NGSPICE_LIBRARY_PATH"] = str(ROOT / "no-such-dir" / "libngspice.so")
    if require is not None:
        env["MEMXBAR_REQUIRE_NGSPICE"] = require
    return subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


def test_missing_ngspice_is_one_clear_error_every_time():
    code = (
        "import torch\n"
        "from memxbar.crossbar import spice\n"
        "from memxbar.errors import ConfigError\n"
        "msgs = []\n"
        "for f in (spice.check_ngspice, lambda: spice.simulate(torch.ones(2, 2), torch.ones(2),"
        " 1.0, 1.0), lambda: spice.spice_check(2, 2)):\n"
        "    try:\n"
        "        f()\n"
        "    except spice.SpiceUnavailable as e:\n"
        "        assert isinstance(e, ConfigError)\n"
        "        msgs.append(str(e))\n"
        "assert len(msgs) == 3 and len(set(msgs)) == 1, msgs\n"
        "print(msgs[0])\n"
    )
    res = without_ngspice([sys.executable, "-c", code])
    assert res.returncode == 0, res.stderr
    msg = res.stdout.strip()
    assert "ngspice is missing" in msg and "apt-get install ngspice libngspice0-dev" in msg
    assert "duplicate declaration" not in msg and "\n" not in msg
    cli = without_ngspice([sys.executable, "-m", "memxbar.cli", "spice-check"])
    assert cli.returncode == 2
    lines = [x for x in (cli.stdout + cli.stderr).splitlines() if x.strip()]
    assert len(lines) == 1 and "ngspice is missing" in lines[0], lines


def test_spice_tests_skip_without_ngspice_and_fail_when_required():
    test = "tests/crossbar/test_spice.py::test_spice_check_reports_both_answers"
    args = [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", test]
    skipped = without_ngspice(args)
    assert skipped.returncode == 0, skipped.stdout
    assert "1 skipped" in skipped.stdout and "ngspice is missing" in skipped.stdout
    failed = without_ngspice(args, require="1")
    assert failed.returncode == 1, failed.stdout
    assert "1 error" in failed.stdout and "MEMXBAR_REQUIRE_NGSPICE=1" in failed.stdout
