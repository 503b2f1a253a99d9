"""``mnistctl models``: list, show, alias, rm, gc, export, import through the installed entry point."""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mnistctl.registry import Registry
from tests.conftest import REPO, registered_refs, run_cli
from tests.test_registry import register


@pytest.fixture
def two_versions(isolated_home):
    registry = Registry()
    register(registry, payload=b"one", accuracy=0.91)
    register(registry, payload=b"two", accuracy=0.95)
    return registry


@pytest.mark.parametrize("command", [["models", "list"], ["models", "show", "mlp"]])
def test_list_and_show_do_not_import_tensorflow(two_versions, command):
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "mnistctl", *command], capture_output=True, text=True, cwd=REPO
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "tensorflow" not in result.stderr and "keras" not in result.stderr


def test_list_shows_every_version_newest_first(two_versions):
    result = run_cli("models", "list")
    lines = result.stdout.decode().splitlines()
    assert lines[0].split()[:4] == ["model", "arch", "data", "test"]
    assert [line.split()[0] for line in lines[1:]] == ["mlp:2", "mlp:1", "builtin"]
    assert [line.split()[2] for line in lines[1:]] == ["mnist", "mnist", "mnist"]  # trained before --dataset
    document = json.loads(run_cli("models", "list", "--json").stdout)
    assert [m["model"] for m in document["models"]] == ["mlp:2", "mlp:1", "builtin"]
    assert document["models"][0]["metrics"]["test_accuracy"] == 0.95


def test_list_on_an_empty_registry_shows_only_the_builtin_model(isolated_home):
    result = run_cli("models", "list")
    assert result.returncode == 0
    assert [line.split()[0] for line in result.stdout.decode().splitlines()[1:]] == ["builtin"]


def test_show_prints_metrics_and_layer_table(two_versions):
    text = run_cli("models", "show", "mlp:1").stdout.decode()
    assert "mlp:1" in text and "0.9100" in text
    assert "dense" in text and "Dense" in text and "7,850" in text and "(None, 10)" in text
    document = json.loads(run_cli("models", "show", "mlp:1", "--json").stdout)
    assert document["layers"][0]["params"] == 7850 and document["weights_sha256"] == "0" * 64


def test_alias_then_resolve_through_it(two_versions):
    assert run_cli("models", "alias", "mlp:1", "best").stdout.decode().strip() == "mlp@best -> mlp:1"
    document = json.loads(run_cli("models", "show", "mlp@best", "--json").stdout)
    assert document["model"] == "mlp:1" and document["aliases"] == ["best"]


def test_rm_needs_yes_when_not_interactive(two_versions):
    refused = run_cli("models", "rm", "mlp:1")
    assert refused.returncode == 2 and "--yes" in refused.stderr.decode()
    removed = run_cli("models", "rm", "mlp:1", "--yes")
    assert removed.returncode == 0 and "removed mlp:1" in removed.stdout.decode()
    assert registered_refs() == ["mlp:2"]


def test_unknown_ref_is_one_line_with_exit_1(two_versions):
    result = run_cli("models", "show", "cnn")
    assert result.returncode == 1
    assert result.stderr.decode().strip().splitlines() == [
        "Error: no model 'cnn' in the registry; known names: mlp, builtin; see \"mnistctl models list\""
    ]


def test_gc_dry_run_then_gc(two_versions):
    orphan = two_versions.store.put_bytes(b"orphan bytes")
    dry = run_cli("models", "gc", "--dry-run").stdout.decode()
    assert "would free 12 bytes in 1 unreferenced blobs" in dry
    assert two_versions.store.has(orphan)
    assert "freed 12 bytes" in run_cli("models", "gc").stdout.decode()
    assert not two_versions.store.has(orphan)


def test_export_copies_stored_artifacts_atomically(two_versions, tmp_path):
    target = tmp_path / "out" / "model.tflite"
    result = run_cli("models", "export", "mlp:1", "--format", "tflite", "-o", str(target))
    assert result.returncode == 0, result.stderr
    assert target.read_bytes() == b"one-lite"
    again = run_cli("models", "export", "mlp:1", "--format", "tflite", "-o", str(target))
    assert again.returncode == 2 and "--force" in again.stderr.decode()


def test_every_models_command_speaks_json(two_versions, tmp_path):
    assert json.loads(run_cli("models", "alias", "mlp:1", "best", "--json").stdout) == {
        "alias": "mlp@best",
        "model": "mlp:1",
    }
    orphan = two_versions.store.put_bytes(b"orphan")
    planned = json.loads(run_cli("models", "gc", "--dry-run", "--json").stdout)
    assert planned == {"dry_run": True, "bytes": 6, "blobs": [str(two_versions.store.path_for(orphan))]}
    target = tmp_path / "m.tflite"
    exported = json.loads(run_cli("models", "export", "mlp:2", "-f", "tflite", "-o", str(target), "--json").stdout)
    assert exported == {"model": "mlp:2", "format": "tflite", "path": str(target)}
    removed = json.loads(run_cli("models", "rm", "mlp:1", "--yes", "--json").stdout)
    assert removed["removed"] == "mlp:1" and removed["freed_bytes"] == len(b"one") + len(b"one-lite")


def test_a_damaged_registry_database_is_a_clear_error(isolated_home):
    isolated_home.mkdir(parents=True, exist_ok=True)
    (isolated_home / "registry.db").write_text("this is not a database " * 100)
    result = run_cli("models", "list")
    assert result.returncode == 1
    lines = result.stderr.decode().strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: cannot use the model registry")
    assert "unexpected" not in lines[0]


# -- a lost registry.db never costs the blobs ------------------------------------------------------------------


def _blobs(home) -> dict[str, bytes]:
    return {str(p): p.read_bytes() for p in sorted((home / "blobs").rglob("*")) if p.is_file()}


def _lose_registry(home, damage: str) -> None:
    """What a crash, a careless ``> registry.db`` or a stray ``rm`` leaves."""
    for suffix in ("-wal", "-shm"):
        (home / f"registry.db{suffix}").unlink(missing_ok=True)
    db = home / "registry.db"
    if damage == "missing":
        db.unlink()
    else:
        db.write_bytes(b"" if damage == "empty" else b"not a database " * 100)


def _backdate_blobs(home, seconds: float = 86400) -> None:
    """Make the blobs as old as a real home's blobs are (older than a registry made just now)."""
    then = time.time() - seconds
    for path in (home / "blobs").rglob("*"):
        if path.is_file():
            os.utime(path, (then, then))


@pytest.mark.parametrize("damage", ["empty", "missing", "not a database"])
def test_gc_refuses_when_the_registry_is_lost_but_blobs_exist(two_versions, isolated_home, damage):
    before = _blobs(isolated_home)
    assert len(before) == 5
    _lose_registry(isolated_home, damage)
    for args in (("models", "gc"), ("models", "gc", "--dry-run"), ("models", "gc", "--json")):
        result = run_cli(*args)
        assert result.returncode == 1, result.stderr.decode()
        lines = result.stderr.decode().strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("Error: the registry "), lines
        assert "while 5 blobs exist" in lines[0] and "nothing deleted" in lines[0]
        assert result.stdout == b""
    assert _blobs(isolated_home) == before
    assert (isolated_home / "registry.db").exists() == (damage != "missing")


def test_list_warns_about_an_empty_registry_and_gc_still_refuses_after_it_was_reused(two_versions, isolated_home):
    before = _blobs(isolated_home)
    _backdate_blobs(isolated_home)
    _lose_registry(isolated_home, "empty")
    listed = run_cli("models", "list")
    assert listed.returncode == 0
    assert "registry.db is empty" in listed.stderr.decode() and "5 blobs" in listed.stderr.decode()
    # Opening the empty file made it a new, empty registry, and a new version is registered in it:
    # the old blobs are now unreferenced, but older than the registry, so they are not gc's to delete.
    register(Registry(), payload=b"three")
    assert "older than the registry" in run_cli("models", "list").stderr.decode()
    result = run_cli("models", "gc")
    assert result.returncode == 1
    assert "older than the registry" in result.stderr.decode() and "nothing deleted" in result.stderr.decode()
    assert {path: data for path, data in _blobs(isolated_home).items() if path in before} == before
    assert registered_refs() == ["mlp:1"]


def test_gc_still_deletes_what_a_crash_left_in_a_registry_that_predates_it(two_versions, isolated_home):
    _backdate_blobs(isolated_home)  # the registry's own blobs: referenced, whatever their age
    orphan = two_versions.store.put_bytes(b"left by a crash")
    result = run_cli("models", "gc")
    assert result.returncode == 0 and "freed 15 bytes in 1 unreferenced blobs" in result.stdout.decode()
    assert not two_versions.store.has(orphan) and registered_refs() == ["mlp:2", "mlp:1"]


@pytest.mark.parametrize("damage", ["empty", "missing"])
def test_rm_on_a_lost_registry_deletes_no_blob(two_versions, isolated_home, damage):
    before = _blobs(isolated_home)
    _lose_registry(isolated_home, damage)
    result = run_cli("models", "rm", "mlp:1", "--yes")
    assert result.returncode == 1 and "nothing is registered" in result.stderr.decode()
    assert _blobs(isolated_home) == before


def test_rm_in_a_recreated_registry_keeps_blobs_it_shares_with_the_lost_one(two_versions, isolated_home):
    before = _blobs(isolated_home)
    _backdate_blobs(isolated_home)
    _lose_registry(isolated_home, "empty")
    # The same bytes registered again in the new registry: its blobs are those of the lost registry's mlp:1.
    again = register(Registry(), payload=b"one")
    assert {a.sha256 for a in again.artifacts.values()} <= {Path(p).parent.name + Path(p).name for p in before}
    result = run_cli("models", "rm", again.ref, "--yes")
    assert result.returncode == 0 and "freed 0 bytes" in result.stdout.decode()
    assert _blobs(isolated_home) == before


# -- rm asks on a terminal: "n", end of input and Ctrl-C are answered in words ---------------------------------


def _rm_in_terminal(answer: bytes, *args: str) -> tuple[int, str]:
    """Run ``mnistctl models rm mlp:1`` with a pseudo-terminal as its controlling terminal; type ``answer`` at the
    question. Returns the exit code and everything the terminal showed."""
    executable = Path(sys.executable).with_name("mnistctl")
    command = [str(executable)] if executable.exists() else [sys.executable, "-m", "mnistctl"]
    argv = [*command, "models", "rm", "mlp:1", *args]
    env = dict(os.environ)
    pid, master = pty.fork()
    if pid == 0:  # the child: the pty is its stdin, stdout, stderr and controlling terminal
        try:
            os.chdir(REPO)
            os.execve(argv[0], argv, env)
        finally:
            os._exit(127)
    shown = b""
    answered = False
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(master, 4096)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            shown += chunk
        if not answered and b"[y/N]" in shown:
            os.write(master, answer)
            answered = True
    os.close(master)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), shown.decode().replace("\r\n", "\n")


def test_rm_answered_no_keeps_the_version_and_says_so(two_versions):
    code, shown = _rm_in_terminal(b"n\n")
    assert code == 1, shown
    assert shown.rstrip().endswith("not removed: mlp:1"), shown
    assert registered_refs() == ["mlp:2", "mlp:1"]


def test_rm_answered_yes_removes(two_versions):
    code, shown = _rm_in_terminal(b"y\n")
    assert code == 0, shown
    assert "removed mlp:1" in shown and registered_refs() == ["mlp:2"]


def test_rm_at_end_of_input_says_so_on_its_own_line(two_versions):
    code, shown = _rm_in_terminal(b"\x04")  # Ctrl-D
    assert code == 1, shown
    question, error = shown.rstrip().splitlines()[-2:]
    assert question.startswith("Delete mlp:1") and "Error" not in question, shown
    assert error == "Error: no answer (end of input); mlp:1 not removed; pass --yes to remove without asking"
    assert registered_refs() == ["mlp:2", "mlp:1"]


def test_rm_interrupted_at_the_question_says_so_on_its_own_line(two_versions):
    code, shown = _rm_in_terminal(b"\x03")  # Ctrl-C
    assert code == 130, shown
    assert shown.rstrip().splitlines()[-1] == "Error: interrupted", shown
    assert "Error" not in shown.rstrip().splitlines()[-2]
    assert registered_refs() == ["mlp:2", "mlp:1"]
