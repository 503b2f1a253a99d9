"""``mnistctl models``: list, show, alias, rm, gc, export, import through the installed entry point."""

from __future__ import annotations

import json
import subprocess
import sys

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
    assert lines[0].split()[:3] == ["model", "arch", "test"]
    assert [line.split()[0] for line in lines[1:]] == ["mlp:2", "mlp:1", "builtin"]
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
