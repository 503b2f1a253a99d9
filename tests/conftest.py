"""Shared fixtures: an isolated home folder per test, generated MNIST-like data, local HTTP mirrors."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.mirror_server import MirrorServer
from tests.synthetic import make_dataset, write_idx_mirror, write_npz

REPO = Path(__file__).resolve().parent.parent


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "slow: takes more than a few seconds (real Keras training)")
    # A shell without job control starts background commands (``pytest ... &``) with SIGINT ignored, and
    # children inherit that: the interrupt tests' subprocesses would never see their Ctrl-C. A user's terminal
    # delivers it, so the suite runs as from one.
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture(autouse=True)
def isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own MNISTCTL_HOME and never reaches the public mirrors."""
    home = tmp_path / "home"
    monkeypatch.setenv("MNISTCTL_HOME", str(home))
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    monkeypatch.setenv("MNISTCTL_NO_DEFAULT_MIRRORS", "1")
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setenv("COLUMNS", "80")
    for name in ("MNISTCTL_MIRROR", "MNISTCTL_MODEL", "MNISTCTL_DEBUG"):
        monkeypatch.delenv(name, raising=False)
    return home


@pytest.fixture(scope="session")
def tiny_dataset() -> dict:
    return make_dataset(train=300, test=100)


@pytest.fixture
def tiny_mirror_dir(tmp_path: Path, tiny_dataset: dict, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder of four generated IDX .gz files; the pinned specs are swapped for theirs."""
    folder = tmp_path / "mirror"
    specs = write_idx_mirror(folder, tiny_dataset)
    monkeypatch.setattr("mnistctl.data.spec.MNIST_FILES", specs)
    return folder


@pytest.fixture
def mirror(tiny_mirror_dir: Path) -> Iterator[MirrorServer]:
    server = MirrorServer(tiny_mirror_dir).start()
    yield server
    server.stop()


@pytest.fixture
def second_mirror(tiny_mirror_dir: Path) -> Iterator[MirrorServer]:
    server = MirrorServer(tiny_mirror_dir).start()
    yield server
    server.stop()


@pytest.fixture
def tiny_npz(tmp_path: Path, tiny_dataset: dict) -> Path:
    return write_npz(tmp_path / "mnist.npz", tiny_dataset)


# Starts a command (argv[2:]) and writes its peak memory (ru_maxrss: KiB on Linux) to the file argv[1]. A child's
# max RSS counts the memory of the process that forked it until it execs, so a big test process (TensorFlow loaded,
# large test images) would read as the command's: this small process starts it instead. Ctrl-C is for the measured
# command (the sweep interrupts a training through the process group), so the launcher ignores it.
PEAK_RSS_LAUNCHER = """
import resource, signal, subprocess, sys
child = subprocess.Popen(sys.argv[2:])
signal.signal(signal.SIGINT, signal.SIG_IGN)
code = child.wait()
open(sys.argv[1], "w").write(str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss))
sys.exit(code if code >= 0 else 128 - code)
"""


def measured(report: Path, command: list[str]) -> list[str]:
    """``command`` started through ``PEAK_RSS_LAUNCHER``, which writes its peak RSS (KiB) to ``report``."""
    return [sys.executable, "-c", PEAK_RSS_LAUNCHER, str(report), *command]


def registered_refs() -> list[str]:
    """Refs of the versions in this test's registry (the builtin model left out)."""
    from mnistctl.registry import Registry

    return [version.ref for version in Registry().list() if not version.builtin]


def run_cli(
    *args: str, env: dict | None = None, input: bytes | None = None, timeout: float = 120
) -> subprocess.CompletedProcess:
    """Run the installed ``mnistctl`` entry point in a subprocess (the environment of the test)."""
    executable = Path(sys.executable).with_name("mnistctl")
    command = [str(executable)] if executable.exists() else [sys.executable, "-m", "mnistctl"]
    return subprocess.run(
        [*command, *args],
        capture_output=True,
        env={**os.environ, **(env or {})},
        input=input,
        timeout=timeout,
        cwd=REPO,
    )


@pytest.fixture
def data_home(isolated_home: Path, tiny_npz: Path) -> Path:
    """The isolated home with the generated digits imported as its MNIST."""
    from mnistctl.data.importer import import_dataset

    import_dataset(tiny_npz)
    return isolated_home


@pytest.fixture(scope="session")
def trained_home_template(tmp_path_factory: pytest.TempPathFactory, tiny_dataset: dict) -> Path:
    """A home folder holding the generated digits and one small trained MLP ("mlp:1"), built once."""
    home = tmp_path_factory.mktemp("trained-home")
    npz = write_npz(home.parent / "trained-home.npz", tiny_dataset)
    env = {"MNISTCTL_HOME": str(home), "MNISTCTL_NO_DEFAULT_MIRRORS": "1"}
    for args in (("download", "--from", str(npz)), ("train", "--arch", "mlp", "--epochs", "3", "--seed", "1")):
        result = run_cli(*args, env=env, timeout=600)
        assert result.returncode == 0, result.stderr.decode()[-2000:]
    return home


@pytest.fixture
def trained_home(isolated_home: Path, trained_home_template: Path) -> Path:
    """This test's own copy of the trained home folder."""
    import shutil

    shutil.copytree(trained_home_template, isolated_home)
    return isolated_home
