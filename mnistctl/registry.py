"""Model registry in SQLite (WAL): names, versions, aliases, metadata, metrics and artifacts.

A version is registered in one transaction, after every blob it points to is in the artifact
store; two processes registering at once get distinct version numbers, and a process killed at
any moment leaves either the whole version or none of it. Version numbers are never reused.
Refs: ``NAME`` (newest version), ``NAME:VERSION``, ``NAME@ALIAS``; no ref means the newest of all.
"""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from mnistctl.errors import MnistctlError, UsageError
from mnistctl.jsonsafe import strict_dumps
from mnistctl.paths import ENV_CRASH_POINT, ENV_HOME, ENV_MODEL, home
from mnistctl.store import ArtifactStore, CorruptArtifactError, GcPlan

DB_NAME = "registry.db"
BUILTIN_NAME = "builtin"
BUSY_TIMEOUT_S = 120.0
# Switching a new database to WAL fails at once, without waiting, while another connection holds it.
_WAL_RETRY_S = 0.02
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
MAX_VERSION = 2**63 - 1  # SQLite's largest integer; a larger NAME:VERSION can name nothing
DEFAULT_ALIAS = "default"  # the alias "models default" moves; used when no REF is given

# Each entry upgrades the schema by one version; never edit a shipped entry, append a new one.
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE names (
        name TEXT PRIMARY KEY,
        next_version INTEGER NOT NULL
    );
    CREATE TABLE versions (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL REFERENCES names(name),
        version INTEGER NOT NULL,
        arch TEXT NOT NULL,
        params TEXT NOT NULL,
        metrics TEXT NOT NULL,
        layers TEXT NOT NULL,
        weights_sha256 TEXT NOT NULL,
        data_fingerprint TEXT NOT NULL,
        environment TEXT NOT NULL,
        run_id TEXT,
        created_at TEXT NOT NULL,
        UNIQUE (name, version)
    );
    CREATE TABLE artifacts (
        version_id INTEGER NOT NULL REFERENCES versions(id) ON DELETE CASCADE,
        kind TEXT NOT NULL,
        sha256 TEXT NOT NULL,
        bytes INTEGER NOT NULL,
        PRIMARY KEY (version_id, kind)
    );
    CREATE TABLE aliases (
        name TEXT NOT NULL,
        alias TEXT NOT NULL,
        version_id INTEGER NOT NULL REFERENCES versions(id) ON DELETE CASCADE,
        PRIMARY KEY (name, alias)
    );
    CREATE TABLE evaluations (
        id INTEGER PRIMARY KEY,
        version_id INTEGER NOT NULL REFERENCES versions(id) ON DELETE CASCADE,
        split TEXT NOT NULL,
        metrics TEXT NOT NULL,
        created_at TEXT NOT NULL
    );
    CREATE INDEX artifacts_by_sha ON artifacts(sha256);
    """,
    """
    CREATE TABLE settings (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL
    );
    """,
)


class ModelNotFoundError(MnistctlError):
    """A ref names no registered version."""

    default_hint = 'see "mnistctl models list"'


def _enter_wal(connection: sqlite3.Connection) -> None:
    """Put the database in WAL mode (a no-op once it is). SQLite answers "database is locked" at once, its busy
    timeout unused, when another process holds a brand-new database it is asked to switch: several processes
    opening a new registry together (6 at once lost 7 of 180 such races here). So it tries again until
    ``BUSY_TIMEOUT_S``, as any other wait for the database does."""
    deadline = time.monotonic() + BUSY_TIMEOUT_S
    pause = _WAL_RETRY_S
    while True:
        try:
            connection.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
        time.sleep(pause)
        pause = min(2 * pause, 1.0)


class RegistryUnavailableError(MnistctlError):
    """registry.db cannot be opened, is not a database, or stayed locked too long."""


class DamagedVersionError(MnistctlError):
    """A version's registry record cannot be read in full, so it must not be used to predict."""


class EmptyRegistryError(MnistctlError):
    """No model is registered yet."""

    default_hint = 'train one first: "mnistctl train --arch mlp"'


class RegistryLostError(MnistctlError):
    """registry.db cannot say which blobs are unused (missing, emptied, replaced), so none may be deleted."""

    default_hint = "restore registry.db from a backup; nothing deleted"


SQLITE_HEADER = b"SQLite format 3\x00"


@dataclass(frozen=True)
class Artifact:
    kind: str  # "model.keras", "model.tflite", "history.json"
    sha256: str
    bytes: int


@dataclass(frozen=True)
class ModelVersion:
    """One registered version and everything recorded about it."""

    id: int
    name: str
    version: int
    arch: str
    params: dict[str, Any]
    metrics: dict[str, Any]
    layers: list[dict[str, Any]]
    weights_sha256: str
    data_fingerprint: str
    environment: dict[str, Any]
    run_id: str | None
    created_at: str
    artifacts: dict[str, Artifact] = field(default_factory=dict)
    aliases: tuple[str, ...] = ()
    evaluations: tuple[dict[str, Any], ...] = ()
    builtin: bool = False  # shipped inside the package, not stored in the registry
    damaged: tuple[str, ...] = ()  # columns whose JSON could not be read (shown as empty; see _hydrate)

    @property
    def ref(self) -> str:
        return BUILTIN_NAME if self.builtin else f"{self.name}:{self.version}"

    def check_usable(self) -> None:
        """Refuse a damaged version: without its params (calibration, safe mode) its answers would be wrong."""
        if self.damaged:
            raise DamagedVersionError(
                f"the registry record of {self.ref} is damaged ({', '.join(self.damaged)} unreadable)",
                hint=f'remove it with "mnistctl models rm {self.ref}" and train or import it again',
            )

    @property
    def dataset(self) -> str:
        """The data set this version was trained on (versions from before ``--dataset``: MNIST)."""
        dataset = self.params.get("dataset")
        return dataset if isinstance(dataset, str) and dataset else "mnist"

    @property
    def class_names(self) -> list[str] | None:
        """The names of its classes when they are not the digits 0-9 (a Fashion-MNIST model), else None."""
        classes = self.params.get("classes")
        if (
            isinstance(classes, list)
            and len(classes) == 10
            and all(isinstance(name, str) for name in classes)
            and classes != [str(digit) for digit in range(10)]
        ):
            return classes
        return None

    def label(self, index: int) -> str:
        """Class ``index`` as people read it: "Sneaker" for a Fashion-MNIST model, "7" for a digit model."""
        names = self.class_names
        return names[index] if names is not None else str(index)

    @property
    def temperature(self) -> float:
        """The calibration temperature fitted at registration (1.0: not calibrated; see ``calibration``)."""
        fitted = self.params.get("calibration")
        value = fitted.get("temperature") if isinstance(fitted, dict) else None
        return float(value) if isinstance(value, (int, float)) and value > 0 else 1.0


def builtin_version() -> ModelVersion:
    """The model shipped with the package (see ``mnistctl.builtin``)."""
    from mnistctl import builtin

    if not builtin.available():
        raise ModelNotFoundError(
            "this installation has no builtin model", hint='train one: "mnistctl train --arch fastcnn"'
        )
    meta = builtin.metadata()
    return ModelVersion(
        id=-1,
        name=BUILTIN_NAME,
        version=1,
        arch=meta["arch"],
        params=meta["params"],
        metrics=meta["metrics"],
        layers=meta["layers"],
        weights_sha256=meta["weights_sha256"],
        data_fingerprint=meta["data_fingerprint"],
        environment=meta["environment"],
        run_id=None,
        created_at=meta["created_at"],
        artifacts={kind: Artifact(kind, a["sha256"], a["bytes"]) for kind, a in meta["artifacts"].items()},
        builtin=True,
    )


def _builtin_for(ref: str) -> ModelVersion:
    """The builtin model for ``builtin`` or ``builtin:1``; it has one version and no aliases."""
    _, version, alias = parse_ref(ref)
    if version not in (None, 1) or alias is not None:
        raise ModelNotFoundError(
            f"no model {ref!r}: the builtin model has one version and no aliases",
            hint='write "builtin" (or "builtin:1")',
        )
    return builtin_version()


def _refuse_builtin(version: ModelVersion, action: str) -> None:
    if version.builtin:
        raise UsageError(f"the builtin model is part of the package and cannot be {action}")


def check_name(value: str, what: str = "model name") -> str:
    """Names and aliases: letters, digits, '.', '_', '-'; not starting with punctuation."""
    if not NAME_PATTERN.fullmatch(value):
        raise UsageError(f"invalid {what} {value!r}", hint="use letters, digits, '.', '_' or '-' (max 64)")
    return value


def check_new_name(value: str) -> str:
    """A name a new version may take: valid, and not the one reserved for the builtin model."""
    check_name(value)
    if value == BUILTIN_NAME:
        raise UsageError(f"the name {BUILTIN_NAME!r} is reserved for the model shipped with mnistctl")
    return value


def parse_ref(ref: str) -> tuple[str, int | None, str | None]:
    """``NAME`` / ``NAME:VERSION`` / ``NAME@ALIAS`` -> (name, version, alias).

    An empty or blank ref is a usage error, never "no ref": ``models rm ""`` must not mean the newest.
    """
    if not ref.strip():
        raise UsageError("empty model reference", hint="write NAME, NAME:VERSION or NAME@ALIAS, e.g. mlp:2")
    if "@" in ref:
        name, alias = ref.split("@", 1)
        return check_name(name), None, check_name(alias, "alias")
    if ":" in ref:
        name, version = ref.split(":", 1)
        # isascii(): "²" is a digit to str.isdigit() but not to int(); the bound keeps SQLite's integers.
        if not (version.isascii() and version.isdigit()) or not 1 <= int(version) <= MAX_VERSION:
            raise UsageError(
                f"invalid version in {ref!r}",
                hint="write NAME:VERSION with a whole version number from 1, e.g. mlp:2",
            )
        return check_name(name), int(version), None
    return check_name(ref), None, None


def _dumps(value: Any) -> str:
    """Strict JSON for a column: a NaN metric is stored as null, never as ``NaN`` that parsers reject."""
    return strict_dumps(value)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _predates(blob: Path, created: float | None) -> bool:
    """Whether ``blob`` was written before the registry was created: registering writes blobs only after the
    registry exists, so such a blob came from an earlier registry.db. (``created`` is whole seconds, rounded
    down: a blob written in the registry's first second counts as its own.)"""
    if created is None:
        return False
    try:
        return blob.stat().st_mtime < created
    except FileNotFoundError:
        return False


def _crash_point(name: str) -> None:
    # Test hook: die exactly here, as a power cut or SIGKILL would, to prove the registry survives.
    if os.environ.get(ENV_CRASH_POINT) == name:
        os.kill(os.getpid(), signal.SIGKILL)


class Registry:
    """The registry of one home folder (``registry.db`` plus its artifact store)."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = root or home()
        self.db_path = self.root / DB_NAME
        self.store = ArtifactStore(self.root)

    # -- connection and schema -------------------------------------------------------------

    @contextmanager
    def _connect(self, *, create: bool) -> Iterator[sqlite3.Connection | None]:
        if not create and not self.db_path.exists():
            yield None
            return
        read_only = not create and not self._writable()
        if not read_only:
            self.root.mkdir(parents=True, exist_ok=True)
        try:
            connection = self._open_read_only() if read_only else self._open()
        except sqlite3.Error as exc:
            raise self._unavailable(exc) from None
        try:
            connection.row_factory = sqlite3.Row
            if not read_only:
                _enter_wal(connection)
                connection.execute("PRAGMA synchronous=FULL")
                connection.execute("PRAGMA foreign_keys=ON")
                self._migrate(connection)
            yield connection
        except sqlite3.Error as exc:
            raise self._unavailable(exc) from None
        finally:
            connection.close()

    def _writable(self) -> bool:
        """Whether this process may write the database and the folder its journal files go in."""
        if not (os.access(self.root, os.W_OK) and os.access(self.db_path, os.W_OK)):
            return False
        # os.access says yes to root everywhere, even on a read-only mount; statvfs knows about the mount.
        flag = getattr(os, "ST_RDONLY", 1)
        try:
            return not os.statvfs(self.root).f_flag & flag
        except (OSError, AttributeError):  # no statvfs (Windows): trust os.access
            return True

    def _open(self) -> sqlite3.Connection:
        return sqlite3.connect(self.db_path, timeout=BUSY_TIMEOUT_S, isolation_level=None)

    def _open_read_only(self) -> sqlite3.Connection:
        """Read a registry in a home we may not write (a read-only mount, another user's files)."""
        uri = self.db_path.resolve().as_uri()
        connection = sqlite3.connect(f"{uri}?mode=ro", uri=True, timeout=BUSY_TIMEOUT_S, isolation_level=None)
        try:
            connection.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
            return connection
        except sqlite3.OperationalError:
            connection.close()
        # A WAL database needs its -shm file, which cannot be created in a read-only folder. Nobody can be
        # writing there either, so the file is read as immutable (no locks, no journal).
        return sqlite3.connect(f"{uri}?immutable=1", uri=True, timeout=BUSY_TIMEOUT_S, isolation_level=None)

    def _unavailable(self, exc: sqlite3.Error) -> RegistryUnavailableError:
        if "locked" in str(exc):
            hint = "another mnistctl process holds it; try again when it is done"
        else:
            hint = f"check the file and its permissions, or set {ENV_HOME} to another folder"
        return RegistryUnavailableError(f"cannot use the model registry {self.db_path} ({exc})", hint=hint)

    @staticmethod
    def _migrate(connection: sqlite3.Connection) -> None:
        connection.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at TEXT)"
        )
        current = connection.execute("SELECT COALESCE(MAX(version), 0) FROM schema_migrations").fetchone()[0]
        if current >= len(MIGRATIONS):
            return
        connection.execute("BEGIN IMMEDIATE")
        try:
            current = connection.execute("SELECT COALESCE(MAX(version), 0) FROM schema_migrations").fetchone()[0]
            for number, script in enumerate(MIGRATIONS[current:], start=current + 1):
                for statement in script.split(";"):
                    if statement.strip():
                        connection.execute(statement)
                connection.execute("INSERT INTO schema_migrations VALUES (?, ?)", (number, _now()))
            connection.execute("COMMIT")
        except BaseException:
            connection.execute("ROLLBACK")
            raise

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction, holding SQLite's write lock from the start (BEGIN IMMEDIATE)."""
        with self._connect(create=True) as connection:
            assert connection is not None
            connection.execute("BEGIN IMMEDIATE")
            try:
                yield connection
            except BaseException:
                connection.execute("ROLLBACK")
                raise
            connection.execute("COMMIT")

    # -- writing -----------------------------------------------------------------------------

    def register(
        self,
        *,
        name: str,
        arch: str,
        params: dict[str, Any],
        metrics: dict[str, Any],
        layers: list[dict[str, Any]],
        weights_sha256: str,
        data_fingerprint: str,
        environment: dict[str, Any],
        artifacts: dict[str, bytes],
        run_id: str | None = None,
    ) -> ModelVersion:
        """Store the artifacts, then record a new version of ``name`` in one transaction."""
        check_new_name(name)
        with self._write() as db:
            # Blobs are written while we hold the write lock, so a concurrent "models gc" (which
            # takes the same lock) can never delete them between here and the commit.
            stored = {kind: Artifact(kind, self.store.put_bytes(data), len(data)) for kind, data in artifacts.items()}
            _crash_point("after-blobs")
            row = db.execute("SELECT next_version FROM names WHERE name = ?", (name,)).fetchone()
            version = row[0] if row else 1
            db.execute(
                "INSERT INTO names (name, next_version) VALUES (?, ?) "
                "ON CONFLICT(name) DO UPDATE SET next_version = excluded.next_version",
                (name, version + 1),
            )
            cursor = db.execute(
                "INSERT INTO versions (name, version, arch, params, metrics, layers, weights_sha256,"
                " data_fingerprint, environment, run_id, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    name,
                    version,
                    arch,
                    _dumps(params),
                    _dumps(metrics),
                    _dumps(layers),
                    weights_sha256,
                    data_fingerprint,
                    _dumps(environment),
                    run_id,
                    _now(),
                ),
            )
            for artifact in stored.values():
                db.execute(
                    "INSERT INTO artifacts (version_id, kind, sha256, bytes) VALUES (?, ?, ?, ?)",
                    (cursor.lastrowid, artifact.kind, artifact.sha256, artifact.bytes),
                )
            _crash_point("before-commit")
        return self.resolve(f"{name}:{version}")

    def set_alias(self, ref: str, alias: str) -> ModelVersion:
        """Point ``NAME@alias`` at the version ``ref`` names (moving it if it pointed elsewhere)."""
        check_name(alias, "alias")
        if alias.isdigit():
            raise UsageError(f"alias {alias!r} looks like a version number", hint="use a word, e.g. best")
        _refuse_builtin(self.resolve(ref), "aliased")
        with self._write() as db:
            # Look the version up again under the write lock: it cannot vanish or change id before we write.
            target = self._lookup(db, ref)
            if alias == DEFAULT_ALIAS:  # one default across all names (see set_default)
                db.execute("DELETE FROM aliases WHERE alias = ?", (DEFAULT_ALIAS,))
                db.execute("DELETE FROM settings WHERE key = 'default_model'")
            db.execute(
                "INSERT INTO aliases (name, alias, version_id) VALUES (?, ?, ?) "
                "ON CONFLICT(name, alias) DO UPDATE SET version_id = excluded.version_id",
                (target.name, alias, target.id),
            )
        return self.resolve(f"{target.name}@{alias}")

    def remove(self, ref: str) -> tuple[ModelVersion, GcPlan]:
        """Delete one version (its aliases too), then the blobs nothing else references."""
        _refuse_builtin(self.resolve(ref), "removed")
        with self._write() as db:
            target = self._lookup(db, ref)
            db.execute("DELETE FROM versions WHERE id = ?", (target.id,))
        # Blobs go only after the deletion is committed: a crash in between leaves unreferenced
        # blobs (for "models gc"), never a registered version whose files are gone.
        return target, self._delete_unreferenced(a.sha256 for a in target.artifacts.values())

    def _delete_unreferenced(self, candidates: Iterable[str]) -> GcPlan:
        with self._write() as db:
            used = {row[0] for row in db.execute("SELECT sha256 FROM artifacts")}
            created = self._created_at(db)
            # A blob older than the registry was stored for an earlier registry.db too (same bytes): it stays.
            orphans = tuple(
                path
                for path in (self.store.path_for(digest) for digest in set(candidates) - used)
                if path.is_file() and not _predates(path, created)
            )
            plan = GcPlan(orphans, sum(path.stat().st_size for path in orphans))
            self.store.execute_gc(plan)
        return plan

    def gc(self, *, dry_run: bool = False) -> GcPlan:
        """Delete blobs that no version references (left by a crash between blobs and commit).

        Refused, deleting nothing, when the registry cannot be trusted to know its blobs: see ``lost_problem``.
        """
        # Before SQLite opens the file: opening an empty registry.db turns it into a new, empty registry.
        problem = self._lost_file_problem()
        if problem is not None:
            raise RegistryLostError(problem)
        with self._write() as db:
            referenced = {row[0] for row in db.execute("SELECT sha256 FROM artifacts")}
            problem = self._older_blobs_problem(db, referenced)
            if problem is not None:
                raise RegistryLostError(problem, hint="restore the registry.db that goes with them; nothing deleted")
            plan = self.store.plan_gc(referenced)
            if not dry_run:
                self.store.execute_gc(plan)
        return plan

    def lost_problem(self) -> str | None:
        """Why registry.db looks lost while the store holds blobs, or None: it is missing, empty (a crash, a careless
        ``> registry.db``) or not a database; or blobs no version references are older than it (it was replaced or
        recreated after they were stored). ``gc`` refuses then; ``models list`` warns. Reads only."""
        problem = self._lost_file_problem()
        if problem is not None:
            return problem
        with self._connect(create=False) as db:
            if db is None:
                return None
            referenced = {row[0] for row in db.execute("SELECT sha256 FROM artifacts")}
            return self._older_blobs_problem(db, referenced)

    def _lost_file_problem(self) -> str | None:
        try:
            with open(self.db_path, "rb") as handle:
                header = handle.read(len(SQLITE_HEADER))
        except FileNotFoundError:
            state = "is missing"
        except OSError:
            return None  # unreadable: opening it reports why, more precisely
        else:
            if header == SQLITE_HEADER:
                return None
            state = "is empty (0 bytes)" if not header else "is not a SQLite database"
        count = sum(1 for _ in self.store.iter_digests())
        return f"the registry {self.db_path} {state} while {count} blobs exist" if count else None

    def _older_blobs_problem(self, db: sqlite3.Connection, referenced: set[str]) -> str | None:
        created = self._created_at(db)
        older = [
            digest
            for digest in self.store.iter_digests()
            if digest not in referenced and _predates(self.store.path_for(digest), created)
        ]
        if not older:
            return None
        when = datetime.fromtimestamp(created or 0, timezone.utc).isoformat(timespec="seconds")
        return (
            f"{len(older)} blobs that no version references are older than the registry {self.db_path} "
            f"(created {when}): it was replaced or recreated after they were stored, and they may hold its models"
        )

    @staticmethod
    def _created_at(db: sqlite3.Connection) -> float | None:
        """When this registry.db was created (its first migration), as a POSIX timestamp."""
        try:
            row = db.execute("SELECT applied_at FROM schema_migrations WHERE version = 1").fetchone()
            return datetime.fromisoformat(row[0]).timestamp() if row and row[0] else None
        except (sqlite3.Error, ValueError, TypeError):
            return None

    def add_evaluation(self, ref: str, split: str, metrics: dict[str, Any]) -> bool:
        """Record an evaluation; False where it cannot be: the builtin model, or a home this process cannot write
        (evaluating is reading, and works there too)."""
        target = self.resolve(ref)
        if target.builtin or not self._writable():
            return False  # the builtin model's metrics are part of the package
        with self._write() as db:
            db.execute(
                "INSERT INTO evaluations (version_id, split, metrics, created_at) VALUES (?, ?, ?, ?)",
                (target.id, split, _dumps(metrics), _now()),
            )
        return True

    # -- reading -----------------------------------------------------------------------------

    def list(self) -> list[ModelVersion]:
        """Every version, newest first, then the builtin model (when the package has one)."""
        from mnistctl import builtin

        shipped = [builtin_version()] if builtin.available() else []
        with self._connect(create=False) as db:
            if db is None:
                return shipped
            rows = db.execute("SELECT * FROM versions ORDER BY id DESC").fetchall()
            return [self._hydrate(db, row) for row in rows] + shipped

    def resolve(self, ref: str | None = None) -> ModelVersion:
        """The version a ref names. No ref (None): ``$MNISTCTL_MODEL``, the default set by ``models default``,
        the newest version, or the builtin model, in that order. An empty ref is a usage error."""
        from mnistctl import builtin

        if ref is None and os.environ.get(ENV_MODEL, "").strip():
            return self._resolve_env_model(os.environ[ENV_MODEL].strip())
        if ref is not None and parse_ref(ref)[0] == BUILTIN_NAME:
            return _builtin_for(ref)
        with self._connect(create=False) as db:
            if ref is None and db is not None:
                chosen = self._default(db)
                if chosen is not None:
                    return chosen
            if db is None or db.execute("SELECT 1 FROM versions LIMIT 1").fetchone() is None:
                if ref is None and builtin.available():
                    return builtin_version()
                if ref is not None:
                    raise EmptyRegistryError(
                        f"no model {ref!r}: nothing is registered yet",
                        hint='train one first ("mnistctl train --arch mlp"), or use --model builtin',
                    )
                raise EmptyRegistryError("no model is registered yet")
            return self._lookup(db, ref)

    def _resolve_env_model(self, ref: str) -> ModelVersion:
        """``$MNISTCTL_MODEL``'s version; an error says the ref came from the variable (no flag names it)."""
        try:
            return self.resolve(ref)
        except MnistctlError as exc:
            exc.message = f"{ENV_MODEL}={ref}: {exc.message}"
            exc.hint = f"{exc.hint}; or change or unset {ENV_MODEL}" if exc.hint else f"change or unset {ENV_MODEL}"
            raise

    def ref_of_run(self, run_id: str) -> str | None:
        """The ref of the version a training run registered, if any (one query, not a read of every version)."""
        with self._connect(create=False) as db:
            row = (
                None
                if db is None
                else db.execute(
                    "SELECT name, version FROM versions WHERE run_id = ? ORDER BY id LIMIT 1", (run_id,)
                ).fetchone()
            )
        return None if row is None else f"{row[0]}:{row[1]}"

    def default_ref(self) -> str | None:
        """The ref ``models default`` chose, if any (not ``$MNISTCTL_MODEL``, not "newest")."""
        with self._connect(create=False) as db:
            chosen = self._default(db) if db is not None else None
        return None if chosen is None else chosen.ref

    def _default(self, db: sqlite3.Connection) -> ModelVersion | None:
        row = db.execute(
            "SELECT v.* FROM aliases a JOIN versions v ON v.id = a.version_id WHERE a.alias = ? ORDER BY v.id DESC",
            (DEFAULT_ALIAS,),
        ).fetchone()
        if row is not None:
            return self._hydrate(db, row)
        try:
            setting = db.execute("SELECT value FROM settings WHERE key = 'default_model'").fetchone()
        except sqlite3.OperationalError:  # a registry from before settings, opened read-only (not migrated)
            setting = None
        return builtin_version() if setting is not None and setting[0] == BUILTIN_NAME else None

    def set_default(self, ref: str | None) -> ModelVersion | None:
        """Make ``ref`` the model used when no REF is given (``None``: forget the choice, use the newest)."""
        target = None if ref is None else self.resolve(ref)
        with self._write() as db:
            db.execute("DELETE FROM aliases WHERE alias = ?", (DEFAULT_ALIAS,))
            db.execute("DELETE FROM settings WHERE key = 'default_model'")
            if target is not None and target.builtin:
                db.execute("INSERT INTO settings (key, value) VALUES ('default_model', ?)", (BUILTIN_NAME,))
            elif target is not None:
                target = self._lookup(db, target.ref)  # under the write lock: it cannot vanish before we write
                db.execute(
                    "INSERT INTO aliases (name, alias, version_id) VALUES (?, ?, ?)",
                    (target.name, DEFAULT_ALIAS, target.id),
                )
        return None if target is None else self.resolve(target.ref)

    @staticmethod
    def _not_found(ref: str, known: list[str]) -> ModelNotFoundError:
        names = ", ".join([*known, BUILTIN_NAME])
        return ModelNotFoundError(
            f"no model {ref!r} in the registry", hint=f'known names: {names}; see "mnistctl models list"'
        )

    def _lookup(self, db: sqlite3.Connection, ref: str | None) -> ModelVersion:
        """Resolve ``ref`` on an open connection (inside a write transaction, nothing can change under it)."""
        if ref is None:
            row = db.execute("SELECT * FROM versions ORDER BY id DESC LIMIT 1").fetchone()
            if row is None:
                raise EmptyRegistryError("no model is registered yet")
            return self._hydrate(db, row)
        name, version, alias = parse_ref(ref)
        if alias is not None:
            row = db.execute(
                "SELECT v.* FROM aliases a JOIN versions v ON v.id = a.version_id WHERE a.name = ? AND a.alias = ?",
                (name, alias),
            ).fetchone()
        elif version is not None:
            row = db.execute("SELECT * FROM versions WHERE name = ? AND version = ?", (name, version)).fetchone()
        else:
            row = db.execute("SELECT * FROM versions WHERE name = ? ORDER BY version DESC LIMIT 1", (name,)).fetchone()
        if row is None:
            raise self._not_found(ref, [r[0] for r in db.execute("SELECT DISTINCT name FROM versions ORDER BY name")])
        return self._hydrate(db, row)

    def artifact(self, version: ModelVersion, kind: str) -> bytes:
        """The verified bytes of one of a version's artifacts."""
        if kind not in version.artifacts:
            raise ModelNotFoundError(f"{version.ref} has no {kind}")
        if version.builtin:
            from mnistctl import builtin

            return self.store.verified(builtin.artifact_path(kind), version.artifacts[kind].sha256)
        try:
            return self.store.read(version.artifacts[kind].sha256)
        except CorruptArtifactError:
            if self._still_registered(version):
                raise
            # Not damage: another process removed the version after this one looked it up (models rm).
            raise ModelNotFoundError(
                f"{version.ref} was removed while this command ran", hint="run it again with another --model"
            ) from None

    def _still_registered(self, version: ModelVersion) -> bool:
        with self._connect(create=False) as db:
            return db is not None and bool(db.execute("SELECT 1 FROM versions WHERE id = ?", (version.id,)).fetchone())

    def integrity_check(self) -> str:
        with self._connect(create=True) as db:
            assert db is not None
            return db.execute("PRAGMA integrity_check").fetchone()[0]

    @staticmethod
    def _hydrate(db: sqlite3.Connection, row: sqlite3.Row) -> ModelVersion:
        """A version from its row. A column whose JSON is damaged (a disk error, a hand edit) reads as empty and
        is named in ``damaged``, so that the version can still be listed, shown and removed."""
        damaged: list[str] = []

        def parsed(column: str, text: object, empty: Any) -> Any:
            try:
                value = json.loads(text)  # type: ignore[arg-type]
            except (TypeError, ValueError, RecursionError):
                value = None
            if not isinstance(value, type(empty)):
                damaged.append(column)
                return empty
            return value

        artifacts = {
            a["kind"]: Artifact(a["kind"], a["sha256"], a["bytes"])
            for a in db.execute("SELECT kind, sha256, bytes FROM artifacts WHERE version_id = ?", (row["id"],))
        }
        aliases = tuple(
            r[0] for r in db.execute("SELECT alias FROM aliases WHERE version_id = ? ORDER BY alias", (row["id"],))
        )
        evaluations = []
        for r in db.execute(
            "SELECT split, metrics, created_at FROM evaluations WHERE version_id = ? ORDER BY id", (row["id"],)
        ):
            metrics = parsed("evaluations", r["metrics"], {})
            if metrics:
                evaluations.append({"split": r["split"], "created_at": r["created_at"], **metrics})
        return ModelVersion(
            id=row["id"],
            name=row["name"],
            version=row["version"],
            arch=row["arch"],
            params=parsed("params", row["params"], {}),
            metrics=parsed("metrics", row["metrics"], {}),
            layers=parsed("layers", row["layers"], []),
            weights_sha256=row["weights_sha256"],
            data_fingerprint=row["data_fingerprint"],
            environment=parsed("environment", row["environment"], {}),
            run_id=row["run_id"],
            created_at=row["created_at"],
            artifacts=artifacts,
            aliases=aliases,
            evaluations=tuple(evaluations),
            damaged=tuple(dict.fromkeys(damaged)),
        )
