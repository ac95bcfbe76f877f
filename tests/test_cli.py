"""The command line: device library commands and one-line errors with exit code 2."""

import subprocess
import sys

import pytest

from memxbar.cli import main


def test_devices_list_and_show(capsys):
    assert main(["devices", "list"]) == 0
    assert "ideal" in capsys.readouterr().out
    assert main(["devices", "show", "ideal"]) == 0
    out = capsys.readouterr().out
    assert "g_max" in out and " S " in out


def test_devices_plot_writes_png(tmp_path):
    out = tmp_path / "ideal.png"
    assert main(["devices", "plot", "ideal", "--out", str(out), "--pulses", "20"]) == 0
    assert out.stat().st_size > 10_000


@pytest.mark.parametrize("argv, text", [
    (["devices", "show", "nope"], "unknown device preset"),
    (["devices", "plot", "ideal", "--out", "x.jpg"], ".png or .svg"),
    (["devices", "bogus"], "invalid choice"),
    (["spice-check", "--rows", "0"], "allowed range"),
    ([], "required"),
])
def test_bad_arguments_one_line_exit_2(capsys, argv, text):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert text in err and err.count("\n") == 1 and "Traceback" not in err


def test_console_script_exit_code():
    proc = subprocess.run([sys.executable, "-m", "memxbar.cli", "devices", "show", "nope"],
                          capture_output=True, text=True)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr


def test_cost_prints_one_design_of_a_study(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the study's cache folder goes under runs/
    plot = tmp_path / "cost.png"
    assert main(["cost", "quickstart", "--set", "device=pcm-joshi2020", "--plot",
                 str(plot)]) == 0
    out = capsys.readouterr().out
    assert "device=pcm-joshi2020" in out and "TOPS/W" in out and plot.stat().st_size > 10_000
    assert main(["cost", "quickstart", "--set", "device=nope"]) == 2
    assert "allowed: rram-falcone2025" in capsys.readouterr().err
    # cost-model fields over the study's [cost] table: per-column sensing, 32 rows at a time
    assert main(["cost", "quickstart", "--set", "device=pcm-joshi2020", "--cost",
                 "sensing=per_column", "--cost", "rows_parallel=32"]) == 0
    out2 = capsys.readouterr().out
    assert "cost model: sensing=per_column, rows_parallel=32" in out2
    assert "rows_parallel 32" in out2 and out2 != out
    assert main(["cost", "quickstart", "--cost", "sensing=voltage"]) == 2
    err = capsys.readouterr().err
    assert "cost.sensing = 'voltage' is not allowed; allowed: sample_hold, per_column" in err
