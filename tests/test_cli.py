"""The command line: device library commands and one-line errors with exit code 2."""

import contextlib
import os
import re
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
    (["devices", "plot", "ideal", "--out", "x.jpg"], "must end in .png, .svg, .pdf"),
    (["cost", "quickstart", "--plot", "cost"], "--plot = 'cost': a figure file must end in"),
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
    # cost-model fields over the study's [cost] table, and hardware the study does not search
    # (32 rows read at a time: simulated and costed)
    assert main(["cost", "quickstart", "--set", "device=pcm-joshi2020", "--cost",
                 "sensing=per_column", "--set", "rows_parallel=32"]) == 0
    out2 = capsys.readouterr().out
    assert "cost model: sensing=per_column" in out2 and "rows_parallel=32" in out2
    assert "rows_parallel 32" in out2 and out2 != out
    assert main(["cost", "quickstart", "--cost", "sensing=voltage"]) == 2
    err = capsys.readouterr().err
    assert "cost.sensing = 'voltage' is not allowed; allowed: sample_hold, per_column" in err
    # the ADC model and rows_parallel are hardware now: --cost says where they went
    assert main(["cost", "quickstart", "--cost", "adc_model=neurosim"]) == 2
    err = capsys.readouterr().err
    assert "cost.adc_model: is a hardware field now" in err and "--set adc_model=" in err
    assert main(["cost", "quickstart", "--set", "adc_bits=1"]) == 2  # searched: its values
    assert "allowed: 5, 8" in capsys.readouterr().err
    assert main(["cost", "quickstart", "--set", "dac_bits=1"]) == 2  # refused in study terms
    assert "hardware.dac_bits = 1 is not allowed" in capsys.readouterr().err
    # a device parameter: a shorter read pulse costs less energy; bad values name the field
    assert main(["cost", "quickstart", "--set", "device=rram-falcone2025",
                 "--set", "device.read_time=2e-9"]) == 0
    short = capsys.readouterr().out
    assert "device.read_time=2e-09" in short
    assert main(["cost", "quickstart", "--set", "device=rram-falcone2025"]) == 0
    default = capsys.readouterr().out

    def pj(text: str) -> float:
        return float(re.search(r"energy +([0-9.]+) pJ", text).group(1))

    assert pj(short) < pj(default)
    assert main(["cost", "quickstart", "--set", "device.read_time=-1"]) == 2
    assert "device.read_time" in capsys.readouterr().err
    assert main(["cost", "quickstart", "--set", "device.nope=1"]) == 2
    assert "hardware.device.nope: not a parameter" in capsys.readouterr().err


def test_study_fields_lists_every_hardware_field(capsys):
    from memxbar.studies.hardware import FIELDS

    assert main(["study", "fields", "--format", "markdown"]) == 0
    out = capsys.readouterr().out
    for f in FIELDS:
        assert f"| hardware.{f.name} |" in out
    assert "ADC.model" in out and "'survey', 'neurosim'" in out  # generated from ADC's param()
    assert "an integer in [1, 4096]" in out  # tile_rows: the study's own bound


def _boom(args):
    raise RuntimeError("an internal bug")


def test_internal_error_shows_traceback_bad_config_does_not(capsys, monkeypatch, tmp_path):
    import memxbar.cli as cli

    monkeypatch.setattr(cli, "_devices_list", _boom)
    assert main(["devices", "list"]) == 1
    err = capsys.readouterr().err
    assert "Traceback" in err and "RuntimeError: an internal bug" in err
    assert "internal error" in err and "please report it" in err
    bad = tmp_path / "bad.toml"
    bad.write_text("[evaluation]\ntimes = [1]\n[[objectives]]\nmetric = 'accuracy'\n"
                   "[hardware]\nadc_bits = { choices = [1, 4] }\n[sampler]\nkind = 'grid'\n")
    assert main(["study", "run", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.count("\n") == 1
    assert "hardware.adc_bits = 1 is not allowed" in err


def test_ctrl_c_is_one_line(capsys, monkeypatch):
    import memxbar.cli as cli

    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "_devices_list", interrupted)
    assert main(["devices", "list"]) == 130
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "interrupted" in err and "Traceback" not in err


def test_importing_the_cli_loads_no_torch():
    code = "import sys, memxbar.cli; print('torch' in sys.modules, 'rich' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.split() == ["False", "False"]


def test_sigint_while_torch_imports_prints_one_line():
    import signal
    import time

    # the command imports torch (seconds); SIGINT arrives during that import
    proc = subprocess.Popen([sys.executable, "-m", "memxbar.cli", "devices", "list"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(0.4)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    if proc.returncode == 0:  # the machine imported torch within 0.4 s: nothing to test
        pytest.skip("the command finished before the signal")
    assert proc.returncode == 130, err
    assert "Traceback" not in err and err.strip().count("\n") == 0 and "interrupted" in err


def test_spice_check_without_ngspice_is_one_line(capsys, monkeypatch):
    from memxbar.crossbar import spice

    missing = spice.SpiceUnavailable("ngspice is missing: cannot load ngspice's shared library "
                                     f"(libngspice.so); {spice.INSTALL_HINT}")
    monkeypatch.setattr(spice, "_unavailable", missing)
    assert main(["spice-check", "--rows", "4", "--cols", "4"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert "ngspice is missing" in err and "apt-get install ngspice" in err


def test_lists_never_cut_names(capsys):
    """Piped, lists are tab-separated plain text; on an 80-column terminal the name column is
    laid out whole (no ellipsis, no wrap), so every name can be copied."""
    from memxbar.devices import presets

    assert main(["devices", "list"]) == 0
    rows = [line.split("\t") for line in capsys.readouterr().out.splitlines()]
    assert rows[0] == ["name", "technology", "summary", "source"]
    assert [r[0] for r in rows[1:]] == list(presets.names())
    assert main(["study", "list"]) == 0
    rows = [line.split("\t") for line in capsys.readouterr().out.splitlines()]
    assert rows[0][0] == "name" and "quickstart" in [r[0] for r in rows[1:]]

    import pty

    code = "from memxbar.cli import main; main(['devices', 'list'])"
    out = bytearray()
    pid, fd = pty.fork()
    if pid == 0:  # the child: a terminal of 80 columns
        os.environ.update(COLUMNS="80", LINES="50", TERM="xterm")
        os.execv(sys.executable, [sys.executable, "-c", code])
    while True:
        try:
            chunk = os.read(fd, 65536)
        except OSError:
            break
        if not chunk:
            break
        out += chunk
    os.waitpid(pid, 0)
    text = out.decode(errors="replace")
    assert "…" not in text.split("\n")[0]
    lines = text.splitlines()
    assert all(any(f" {name} " in line for line in lines) for name in presets.names())


def test_an_error_left_behind_by_a_ctrl_c_is_reported_as_the_interrupt(capsys, monkeypatch):
    """A Ctrl-C that an import swallows leaves another error (numpy: "cannot load module more
    than once per process"): one line, exit code 130, no traceback. Without a Ctrl-C the same
    error is an internal error."""
    import signal
    import time

    from memxbar import cli

    def cut_short(args, interrupt: bool = True) -> None:
        if interrupt:
            with contextlib.suppress(KeyboardInterrupt):  # swallowed, as an import may
                os.kill(os.getpid(), signal.SIGINT)
                time.sleep(5)  # the handler runs here
        raise ImportError("cannot load module more than once per process")

    monkeypatch.setattr(cli, "_devices_list", cut_short)
    assert cli.main(["devices", "list"]) == 130
    err = capsys.readouterr().err
    assert err.strip() == cli.INTERRUPTED and "Traceback" not in err
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # restored
    monkeypatch.setattr(cli, "_devices_list", lambda args: cut_short(args, interrupt=False))
    assert cli.main(["devices", "list"]) == 1
    assert "Traceback" in capsys.readouterr().err
