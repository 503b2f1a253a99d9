"""The registry and artifact store on real SQLite and real files, without TensorFlow."""

from __future__ import annotations

import multiprocessing
import os
import sqlite3
import subprocess
import sys

import pytest

from mnistctl.errors import MnistctlError, UsageError
from mnistctl.registry import EmptyRegistryError, ModelNotFoundError, Registry, parse_ref
from mnistctl.store import CorruptArtifactError
from tests.conftest import REPO, registered_refs


def register(registry: Registry, name: str = "mlp", payload: bytes = b"weights", accuracy: float = 0.9):
    return registry.register(
        name=name,
        arch="mlp",
        params={"epochs": 1},
        metrics={"test_accuracy": accuracy},
        layers=[{"name": "dense", "type": "Dense", "output_shape": [None, 10], "params": 7850}],
        weights_sha256="0" * 64,
        data_fingerprint="f" * 64,
        environment={"mnistctl": "test"},
        artifacts={"model.keras": payload, "model.tflite": payload + b"-lite", "history.json": b"{}"},
    )


@pytest.fixture
def registry(isolated_home) -> Registry:
    return Registry()


def test_refs_resolve_by_name_version_and_alias(registry, monkeypatch):
    first = register(registry, payload=b"one")
    second = register(registry, payload=b"two")
    register(registry, name="cnn", payload=b"three")
    assert (first.ref, second.ref) == ("mlp:1", "mlp:2")
    assert registry.resolve("mlp").ref == "mlp:2"
    assert registry.resolve("mlp:1").ref == "mlp:1"
    registry.set_alias("mlp:1", "best")
    assert registry.resolve("mlp@best").ref == "mlp:1"
    assert registry.resolve().ref == "cnn:1"  # no ref: the newest of all
    monkeypatch.setenv("MNISTCTL_MODEL", "mlp@best")
    assert registry.resolve().ref == "mlp:1"


def test_alias_moves_and_rejects_numbers(registry):
    register(registry)
    register(registry, payload=b"two")
    registry.set_alias("mlp:1", "prod")
    registry.set_alias("mlp:2", "prod")
    assert registry.resolve("mlp@prod").ref == "mlp:2"
    assert registry.resolve("mlp:2").aliases == ("prod",)
    with pytest.raises(UsageError):
        registry.set_alias("mlp:2", "3")


@pytest.mark.parametrize("ref", ["mlp:0", "mlp:x", "bad name", "mlp@", ":3", "mlp@1 2"])
def test_malformed_refs_are_usage_errors(ref):
    with pytest.raises(UsageError):
        parse_ref(ref)


def test_unknown_ref_and_empty_registry_say_what_to_do(registry):
    assert registry.resolve().builtin  # nothing registered: the model shipped with the package
    with pytest.raises(EmptyRegistryError, match="mnistctl train"):
        registry.resolve("mlp")
    register(registry)
    with pytest.raises(ModelNotFoundError, match="known names: mlp"):
        registry.resolve("cnn")
    with pytest.raises(ModelNotFoundError):
        registry.resolve("mlp:7")
    with pytest.raises(ModelNotFoundError):
        registry.resolve("mlp@nope")


def test_reading_an_absent_registry_creates_nothing(registry, isolated_home):
    assert registered_refs() == []
    assert not (isolated_home / "registry.db").exists()


def test_version_numbers_are_never_reused(registry):
    register(registry)
    register(registry, payload=b"two")
    registry.remove("mlp:2")
    assert register(registry, payload=b"three").ref == "mlp:3"


def test_rm_frees_only_blobs_nothing_else_uses(registry):
    shared = register(registry, payload=b"same")
    register(registry, name="copy", payload=b"same")
    _, plan = registry.remove(shared.ref)
    assert plan.paths == ()  # model.keras / .tflite are shared by copy:1, history.json too
    copy = registry.resolve("copy")
    assert registry.artifact(copy, "model.keras") == b"same"
    _, plan = registry.remove("copy:1")
    assert len(plan.paths) == 3 and not any(path.exists() for path in plan.paths)


def test_gc_plans_then_deletes_unreferenced_blobs(registry):
    register(registry)
    orphan = registry.store.put_bytes(b"left by a crash")
    plan = registry.gc(dry_run=True)
    assert plan.paths == (registry.store.path_for(orphan),) and plan.bytes == len(b"left by a crash")
    assert registry.store.has(orphan)
    registry.gc()
    assert not registry.store.has(orphan)
    assert registry.artifact(registry.resolve("mlp"), "model.keras") == b"weights"


def test_corrupt_or_missing_blob_is_detected(registry):
    version = register(registry)
    path = registry.store.path_for(version.artifacts["model.keras"].sha256)
    path.write_bytes(b"tampered")
    with pytest.raises(CorruptArtifactError, match="corrupt"):
        registry.artifact(version, "model.keras")
    path.unlink()
    with pytest.raises(CorruptArtifactError, match="missing"):
        registry.artifact(version, "model.keras")


def test_schema_is_versioned_and_wal(registry, isolated_home):
    register(registry)
    db = sqlite3.connect(isolated_home / "registry.db")
    assert db.execute("SELECT MAX(version) FROM schema_migrations").fetchone()[0] >= 1
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def _register_many(home: str, count: int, queue) -> None:
    os.environ["MNISTCTL_HOME"] = home
    queue.put([register(Registry(), payload=os.urandom(64)).version for _ in range(count)])


def test_concurrent_processes_get_distinct_versions(isolated_home):
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    workers = [context.Process(target=_register_many, args=(str(isolated_home), 5, queue)) for _ in range(4)]
    for worker in workers:
        worker.start()
    versions = sorted(v for _ in workers for v in queue.get(timeout=120))
    for worker in workers:
        worker.join(timeout=60)
    assert versions == list(range(1, 21))
    assert Registry().integrity_check() == "ok"


def _register_once_together(home: str, start, queue) -> None:
    os.environ["MNISTCTL_HOME"] = home
    start.wait()
    try:
        queue.put(register(Registry(), payload=os.urandom(64)).version)
    except MnistctlError as exc:
        queue.put(str(exc))


def test_processes_opening_a_new_registry_together_all_get_in(tmp_path):
    # Switching a brand-new database to WAL fails at once ("database is locked") while another process holds it:
    # before Registry retried it, most runs of this test lost a process in some round.
    context = multiprocessing.get_context("fork")
    for round_number in range(15):
        home = tmp_path / f"home-{round_number}"
        start, queue = context.Barrier(8), context.Queue()
        workers = [context.Process(target=_register_once_together, args=(str(home), start, queue)) for _ in range(8)]
        for worker in workers:
            worker.start()
        answers = [queue.get(timeout=120) for _ in workers]
        for worker in workers:
            worker.join(timeout=60)
        assert sorted(answers, key=str) == list(range(1, 9)), answers


@pytest.mark.parametrize("point", ["after-blobs", "before-commit"])
def test_sigkill_during_registration_leaves_the_registry_as_it_was(registry, isolated_home, point):
    register(registry)
    code = (
        "from tests.test_registry import register\n"
        "from mnistctl.registry import Registry\n"
        "register(Registry(), payload=b'never committed')\n"
    )
    env = {**os.environ, "MNISTCTL_CRASH_POINT": point}
    result = subprocess.run([sys.executable, "-c", code], env=env, cwd=REPO, capture_output=True)
    assert result.returncode == -9
    assert registered_refs() == ["mlp:1"]
    assert registry.integrity_check() == "ok"
    assert len(registry.gc(dry_run=True).paths) == 2  # the orphaned blobs (history.json is shared)
    assert register(registry, payload=b"next").ref == "mlp:2"


def test_a_damaged_blob_is_rewritten_when_the_same_bytes_are_stored_again(registry):
    version = register(registry, payload=b"weights")
    path = registry.store.path_for(version.artifacts["model.keras"].sha256)
    path.write_bytes(b"WEIGHTS")  # same size, wrong bytes
    register(registry, payload=b"weights")
    assert registry.artifact(version, "model.keras") == b"weights"
