"""The CLI spine: help, version, exit codes, error lines, and a start-up that never loads TensorFlow."""

from __future__ import annotations

import subprocess
import sys

import pytest

from mnistctl import __version__
from mnistctl.cli import app
from tests.conftest import REPO, run_cli

COMMANDS = ["download", "train", "evaluate", "predict", "inspect", "models", "completion", "serve"]


def test_help_lists_every_command():
    result = run_cli("--help")
    assert result.returncode == 0
    for command in COMMANDS:
        assert command in result.stdout.decode()


@pytest.mark.parametrize("command", COMMANDS)
def test_each_command_has_help(command):
    result = run_cli(command, "--help")
    assert result.returncode == 0
    assert f"Usage: mnistctl {command}" in result.stdout.decode()


def test_help_does_not_import_tensorflow_or_numpy():
    code = "import sys; from mnistctl.cli import main\ntry:\n    main(['--help'])\nexcept SystemExit: pass\n"
    code += "heavy = [m for m in ('tensorflow', 'keras', 'numpy', 'matplotlib', 'PIL', 'h5py') if m in sys.modules]\n"
    code += "print('HEAVY', heavy)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True)
    assert "HEAVY []" in result.stdout


def test_python_dash_m_and_version():
    result = subprocess.run([sys.executable, "-m", "mnistctl", "--version"], capture_output=True, text=True, cwd=REPO)
    assert result.returncode == 0
    assert result.stdout.strip() == f"mnistctl {__version__}"
    assert run_cli("--version").stdout.decode().strip() == f"mnistctl {__version__}"


def test_unknown_option_is_a_one_line_usage_error():
    result = run_cli("download", "--bogus")
    assert result.returncode == 2
    lines = result.stderr.decode().strip().splitlines()
    assert lines == ['Error: No such option: --bogus (see "mnistctl download --help")']


def test_unknown_command_is_a_usage_error():
    result = run_cli("frobnicate")
    assert result.returncode == 2
    assert "frobnicate" in result.stderr.decode()


def test_no_arguments_shows_help():
    result = run_cli()
    assert result.returncode == 2
    assert "Usage: mnistctl" in (result.stdout + result.stderr).decode()


def test_debug_variable_adds_the_traceback(tmp_path):
    missing = str(tmp_path / "missing.npz")
    quiet = run_cli("download", "--from", missing)
    loud = run_cli("download", "--from", missing, env={"MNISTCTL_DEBUG": "1"})
    assert quiet.returncode == loud.returncode == 1
    assert "Traceback" not in quiet.stderr.decode()
    assert "Traceback" in loud.stderr.decode() and "Error:" in loud.stderr.decode()


def test_unwritable_home_is_a_clear_error(tmp_path, tiny_npz):
    blocker = tmp_path / "file-not-folder"
    blocker.write_text("x")
    result = run_cli("download", "--from", str(tiny_npz), env={"MNISTCTL_HOME": str(blocker / "home")})
    assert result.returncode == 1
    stderr = result.stderr.decode()
    assert stderr.startswith("Error:") and "Traceback" not in stderr


def test_app_registers_the_commands():
    import typer.main

    assert sorted(typer.main.get_command(app).commands) == sorted(COMMANDS)
