"""Fit glue: seeds, data split, progress and checkpoint callbacks, test metrics, registration.

A run lives in ``runs/<run-id>/`` (its config and, after each completed epoch, an atomic
checkpoint of model + optimizer + history) until its version is registered; then the folder is
removed. A run that was interrupted or killed resumes from its last completed epoch. The process
training a run holds ``runs/<run-id>/.lock`` (an OS lock, so a killed process lets go of it).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import platform
import re
import secrets
import shutil
import threading
import time
from collections.abc import Iterator
from dataclasses import MISSING, asdict, dataclass, field, fields
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from filelock import FileLock, Timeout

from mnistctl import __version__, interrupts
from mnistctl.archs import (
    AUGMENT_PROFILES,
    CUSTOM_ARCH,
    arch_names,
    build_loss,
    build_model,
    build_optimizer,
    float32_copy,
    get_arch,
    native_bfloat16,
)
from mnistctl.data.spec import DATASET_NAMES, DIGIT_CLASSES, get_dataset
from mnistctl.errors import ExitCode, MnistctlError, UsageError
from mnistctl.fsutil import atomic_write_bytes
from mnistctl.paths import runs_dir
from mnistctl.registry import ModelVersion, Registry, check_new_name
from mnistctl.run_metrics import METRICS_CSV, metrics_table

if TYPE_CHECKING:
    import numpy as np

CONFIG_FILE = "run.json"
CHECKPOINT_PATTERN = "checkpoint-{epoch}.keras"
_CHECKPOINT_NAME = re.compile(r"checkpoint-[0-9]+\.keras")
STATE_FILE = "state.json"
# --early-stopping: the best epoch's weights (numpy's npz of model.get_weights()), next to the checkpoint.
BEST_WEIGHTS_PATTERN = "best-{epoch}.weights.npz"
_BEST_WEIGHTS_NAME = re.compile(r"best-[0-9]+\.weights\.npz")
# One row per completed epoch, rewritten (atomically) after each; registered with the version as an artifact.
LOCK_FILE = ".lock"
# A finished run's folder is renamed to this (in one step: nobody can take it for an interrupted run), then deleted.
_DISCARDED_PREFIX = ".discarded-"
DEFAULT_VAL_SPLIT = 0.1
# `train` mentions interrupted runs left alone this long (each holds a checkpoint of several MB).
ABANDONED_AFTER_DAYS = 7
PRECISIONS = ("float32", "mixed_bfloat16")
PROGRESS_INTERVAL_S = 0.1
# Bounds on numeric flags: beyond them a value is a typo, and it would fail deep inside Keras or NumPy.
MAX_EPOCHS = 100_000
MAX_BATCH_SIZE = 1 << 20
MAX_LIMIT = 1 << 40
MAX_SEED = 2**32 - 1


class TrainingInterrupted(MnistctlError):
    """Ctrl-C (or SIGTERM) during training: the last completed epoch is kept for --resume."""

    exit_code = ExitCode.INTERRUPTED


def interrupted_error(
    exc: KeyboardInterrupt, before: str = "", after: str = "", hint: str | None = None
) -> TrainingInterrupted:
    """The error to report for Ctrl-C (exit 130) or SIGTERM (exit 143): "``before`` interrupted ``after``", or
    "``before`` terminated (SIGTERM) ``after``"."""
    terminated = isinstance(exc, interrupts.Terminated)
    error = TrainingInterrupted(f"{before}{'terminated (SIGTERM)' if terminated else 'interrupted'}{after}", hint)
    if terminated:
        error.exit_code = ExitCode.TERMINATED  # type: ignore[assignment]
    return error


class RunNotFoundError(MnistctlError):
    """--resume found no interrupted run to continue."""


class RunBusyError(MnistctlError):
    """Another live process holds the run's lock: it is training (or registering) that run."""

    default_hint = "wait for it to finish, or stop that process (Ctrl-C) and resume it then"

    def __init__(self, run_id: str) -> None:
        super().__init__(f"run {run_id} is still training in another process")


class DamagedRunError(MnistctlError):
    """A run's run.json or state.json is not what mnistctl writes: the run cannot be resumed."""

    def __init__(self, run: Path, detail: str) -> None:
        hint = f"it cannot be resumed; delete {run} to discard it"
        super().__init__(f"run {run.name} is damaged: {detail}", hint=hint)


def _forget_recreated(run: Path) -> None:
    """Taking a run's lock created its folder anew after the run was registered and removed: leave nothing."""
    with contextlib.suppress(OSError):
        (run / LOCK_FILE).unlink()
        run.rmdir()


class RunAlreadyRegisteredError(MnistctlError):
    """The run's version was registered, but its folder outlived the clean-up (a kill right after the commit)."""


@dataclass(frozen=True)
class TrainConfig:
    """Everything that decides what a run computes (recorded with the version)."""

    arch: str
    name: str
    epochs: int
    batch_size: int
    learning_rate: float
    seed: int
    deterministic: bool
    val_split: float
    limit: int | None
    optimizer: str = ""
    optimizer_options: dict[str, Any] = field(default_factory=dict)
    loss: str = "categorical_crossentropy"
    schedule: str = "constant"
    augment: bool = False
    # Whether augmentation also changed stroke width. True by default: runs recorded before this
    # field existed augmented strokes whenever they augmented, and must resume that way.
    augment_strokes: bool = True
    label_smoothing: float = 0.0
    # A named augmentation profile (mnistctl.augment.PROFILES), or "" for the two fields above.
    augment_profile: str = ""
    # The Keras dtype policy the run trains in: "float32", or "mixed_bfloat16" on CPUs with native bfloat16.
    precision: str = "float32"
    # For CUSTOM_ARCH: the user's file as read when the run started (mnistctl.user_arch.read_source), so that a
    # resumed run builds what it began with; {} for the built-in architectures.
    arch_source: dict[str, Any] = field(default_factory=dict)
    # ``train --data DIR``: the labelled folder trained on (absolute), or "" for MNIST (mnistctl.folder_training).
    data_folder: str = ""
    # ``train --from REF``: {"ref", "weights_sha256"} of the version whose weights the run starts from, or {}.
    parent: dict[str, Any] = field(default_factory=dict)
    # --early-stopping: stop after this many epochs without a lower val_loss, and keep the best epoch's weights
    # (0: off). Recorded with the run, so that a resumed run stops as it would have.
    early_stopping: int = 0
    # ``train --dataset NAME``: the MNIST-format data set of mnistctl.data.spec.DATASETS trained on ("mnist").
    dataset: str = "mnist"

    @classmethod
    def create(
        cls,
        arch: str,
        *,
        name: str | None = None,
        epochs: int | None = None,
        batch_size: int | None = None,
        learning_rate: float | None = None,
        seed: int | None = None,
        val_split: float | None = None,
        limit: int | None = None,
        augment: bool | None = None,
        augment_profile: str | None = None,
        arch_source: dict[str, Any] | None = None,
        data_folder: str = "",
        parent: dict[str, Any] | None = None,
        early_stopping: int | None = None,
        dataset: str = "mnist",
    ) -> TrainConfig:
        """The architecture's recipe with the given overrides, validated (``val_split``: 0.1 when not given)."""
        recipe = get_arch(arch).recipe
        get_dataset(dataset)
        if data_folder and dataset != "mnist":
            raise UsageError("--data trains on your own folder; drop --dataset", hint="give one of --data, --dataset")
        if (arch == CUSTOM_ARCH) != bool(arch_source):
            raise UsageError(f"architecture {CUSTOM_ARCH!r} comes with its source file, and only it")
        val_split = DEFAULT_VAL_SPLIT if val_split is None else val_split
        if not 0.0 <= val_split < 1.0:
            raise UsageError(f"--val-split must be in [0, 1), got {val_split}")
        for flag, value, most in (
            ("--epochs", epochs, MAX_EPOCHS),
            ("--batch-size", batch_size, MAX_BATCH_SIZE),
            ("--limit", limit, MAX_LIMIT),
        ):
            if value is not None and not 1 <= value <= most:
                raise UsageError(f"{flag} must be between 1 and {most:,}, got {value:,}")
        if early_stopping is not None and not 1 <= early_stopping <= MAX_EPOCHS:
            raise UsageError(f"--early-stopping must be between 1 and {MAX_EPOCHS:,}, got {early_stopping:,}")
        if early_stopping is not None and val_split == 0:
            raise UsageError(
                "--early-stopping watches val_loss, and --val-split 0 holds out no images to compute it on",
                hint="drop --val-split 0 (or give a fraction above 0), or drop --early-stopping",
            )
        if seed is not None and not 0 <= seed <= MAX_SEED:
            # NumPy's and TensorFlow's generators take 32-bit seeds; a larger one failed deep inside them.
            raise UsageError(f"--seed must be between 0 and {MAX_SEED:,}, got {seed:,}")
        if learning_rate is not None and not (math.isfinite(learning_rate) and learning_rate > 0):
            raise UsageError(f"--lr must be a positive number, got {learning_rate}")
        if augment_profile is not None and augment_profile not in AUGMENT_PROFILES:
            raise UsageError(
                f"unknown augmentation profile {augment_profile!r}",
                hint="choose one of: " + ", ".join(AUGMENT_PROFILES),
            )
        if augment_profile is not None and augment is False:
            raise UsageError("--no-augment contradicts --augment " + augment_profile, hint="drop one of them")
        augment = recipe.augment if augment is None else augment
        if augment_profile is not None:
            augment = True
        elif augment and recipe.augment_profile:
            augment_profile = recipe.augment_profile
        augment_profile = augment_profile or ""
        strokes = {"standard": True, "geometry": False}.get(augment_profile, recipe.augment_strokes)
        return cls(
            arch=arch,
            name=check_new_name(arch if name is None else name),  # "" is refused, not taken as "no name"
            epochs=epochs or recipe.epochs_for(dataset),
            batch_size=batch_size or recipe.batch_size,
            learning_rate=recipe.learning_rate if learning_rate is None else learning_rate,
            # Without --seed a random one is drawn and recorded, so any run can be repeated.
            seed=secrets.randbelow(2**31) if seed is None else seed,
            deterministic=seed is not None,
            val_split=val_split,
            limit=limit,
            optimizer=recipe.optimizer,
            optimizer_options=dict(recipe.optimizer_options),
            loss=recipe.loss,
            schedule=recipe.schedule,
            augment=augment,
            augment_strokes=augment and strokes,
            augment_profile=augment_profile if augment else "",
            label_smoothing=recipe.label_smoothing,
            precision="mixed_bfloat16" if recipe.mixed_bfloat16 and native_bfloat16() else "float32",
            arch_source=dict(arch_source or {}),
            early_stopping=early_stopping or 0,
            data_folder=data_folder,
            parent=dict(parent or {}),
            dataset=dataset,
        )

    @classmethod
    def from_record(cls, record: Any) -> TrainConfig:
        """A config read back from a run's run.json, held to the rules ``create`` applies to flags: the file may
        have been damaged or edited, and a bad value would fail deep inside Keras, or only at registration.

        Fields added after the run was recorded take their defaults. Raises ValueError naming the first bad field.
        """
        if not isinstance(record, dict):
            raise ValueError("not a JSON object")
        known = {spec.name: spec for spec in fields(cls)}
        for key in record:
            if key not in known:
                raise ValueError(f"unknown field {key!r}")
        for key, spec in known.items():
            if key not in record and spec.default is MISSING and spec.default_factory is MISSING:
                raise ValueError(f"missing field {key!r}")
        recipes = [get_arch(name).recipe for name in arch_names()]
        rules: dict[str, tuple[Any, str]] = {
            "arch": (lambda v: v in (*arch_names(), CUSTOM_ARCH), "one of " + ", ".join((*arch_names(), CUSTOM_ARCH))),
            "name": (_is_new_name, "a model name (letters, digits, '.', '_' or '-')"),
            "epochs": (_whole(1, MAX_EPOCHS), f"a whole number from 1 to {MAX_EPOCHS:,}"),
            "batch_size": (_whole(1, MAX_BATCH_SIZE), f"a whole number from 1 to {MAX_BATCH_SIZE:,}"),
            "learning_rate": (lambda v: _is_number(v) and math.isfinite(v) and v > 0, "a positive number"),
            "seed": (_whole(0, MAX_SEED), f"a whole number from 0 to {MAX_SEED:,}"),
            "deterministic": (lambda v: isinstance(v, bool), "true or false"),
            "val_split": (lambda v: _is_number(v) and 0 <= v < 1, "a number in [0, 1)"),
            "limit": (
                lambda v: v is None or _whole(1, MAX_LIMIT)(v),
                f"null or a whole number from 1 to {MAX_LIMIT:,}",
            ),
            "optimizer": (lambda v: isinstance(v, str), "a string"),
            "optimizer_options": (lambda v: isinstance(v, dict), "a JSON object"),
            "loss": (lambda v: v in {recipe.loss for recipe in recipes}, "a recipe's loss"),
            "schedule": (lambda v: v in {"constant"} | {recipe.schedule for recipe in recipes}, "a recipe's schedule"),
            "augment": (lambda v: isinstance(v, bool), "true or false"),
            "augment_strokes": (lambda v: isinstance(v, bool), "true or false"),
            "label_smoothing": (lambda v: _is_number(v) and 0 <= v < 1, "a number in [0, 1)"),
            "augment_profile": (
                lambda v: v in ("", *AUGMENT_PROFILES),
                "empty or one of " + ", ".join(AUGMENT_PROFILES),
            ),
            "precision": (lambda v: v in PRECISIONS, "one of " + ", ".join(PRECISIONS)),
            "early_stopping": (_whole(0, MAX_EPOCHS), f"a whole number from 0 to {MAX_EPOCHS:,}"),
            "data_folder": (lambda v: isinstance(v, str), "a string"),
            "dataset": (lambda v: isinstance(v, str) and v in DATASET_NAMES, "one of " + ", ".join(DATASET_NAMES)),
            "parent": (
                _is_parent,
                'an empty object, or one of strings "ref" and "weights_sha256"',
            ),
        }
        for key, (valid, expected) in rules.items():
            if key in record and not valid(record[key]):
                raise ValueError(f"{key} is {_shown(record[key])}, expected {expected}")
        config = cls(**record)
        if (config.arch == CUSTOM_ARCH) != bool(config.arch_source):
            raise ValueError(f"arch_source must be recorded for arch {CUSTOM_ARCH!r}, and only for it")
        if config.arch_source:
            from mnistctl.user_arch import source_problem

            problem = source_problem(config.arch_source)
            if problem:
                raise ValueError(f"arch_source: {problem}")
        if config.label_smoothing and config.loss != "categorical_crossentropy":
            raise ValueError(f"label_smoothing needs loss categorical_crossentropy, not {config.loss!r}")
        if config.early_stopping and not config.val_split:
            raise ValueError("early_stopping needs a val_split above 0")
        return config


def _shown(value: Any, most: int = 40) -> str:
    """``value`` as JSON, on one line and cut short: it goes into a one-line error."""
    text = json.dumps(value)
    return text if len(text) <= most else text[: most - 1] + "…"


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _whole(least: int, most: int) -> Any:
    """A check for a JSON whole number in [least, most] (true and false are not numbers here)."""
    return lambda value: isinstance(value, int) and not isinstance(value, bool) and least <= value <= most


def _is_parent(value: Any) -> bool:
    """A recorded ``parent``: {} or {"ref": str, "weights_sha256": str}."""
    if value == {}:
        return True
    return (
        isinstance(value, dict)
        and set(value) == {"ref", "weights_sha256"}
        and all(isinstance(item, str) for item in value.values())
    )


def _is_new_name(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    try:
        check_new_name(value)
    except UsageError:
        return False
    return True


class TrainListener(Protocol):
    """What training reports (the CLI draws it). ``batch_done`` may be called from a worker thread."""

    def run_started(
        self, run_id: str, config: TrainConfig, train_samples: int, val_samples: int, steps: int, devices: str = ""
    ) -> None:
        """Called once, before the first epoch (also when resuming); ``devices`` says where, e.g. "on CPU"."""

    def epoch_started(self, epoch: int) -> None:
        """``epoch`` counts from 1."""

    def batch_done(self, epoch: int, step: int, logs: dict[str, float]) -> None:
        """At most every PROGRESS_INTERVAL_S; ``step`` counts from 1."""

    def epoch_done(self, epoch: int, logs: dict[str, float], seconds: float) -> None:
        """After validation, with the epoch's metrics."""

    def stage(self, message: str) -> None:
        """A step outside the epochs, as a line to show: "loading TensorFlow…", the calibration, "registering…"."""


@dataclass
class TrainResult:
    version: ModelVersion
    history: dict[str, list[float]]
    train_seconds: float
    epoch_seconds: list[float]
    run_id: str
    resumed_from_epoch: int = 0


@dataclass
class RunState:
    """What a checkpoint records besides the model: completed epochs, history, time spent."""

    epochs_done: int = 0
    checkpoint: str = ""  # the file holding the model after ``epochs_done`` epochs
    history: dict[str, list[float]] = field(default_factory=dict)
    train_seconds: float = 0.0
    epoch_seconds: list[float] = field(default_factory=list)
    # The optimizer's learning rate at the end of each epoch (for metrics.csv); empty when it could not be read.
    learning_rates: list[float] = field(default_factory=list)
    # --early-stopping: the lowest val_loss so far, its epoch (from 1; 0: none yet) and the file holding that
    # epoch's weights (written, like the checkpoint, before the state that names it); the epoch it stopped at.
    best_val_loss: float | None = None
    best_epoch: int = 0
    best_weights: str = ""
    stopped_at_epoch: int = 0


def new_run_id(name: str) -> str:
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    return f"{name}-{stamp}-{secrets.token_hex(2)}"


@dataclass(frozen=True)
class RunInfo:
    """One folder of ``runs/``: an interrupted run, one that another process is training, or a damaged one."""

    run_id: str
    path: Path
    modified: float  # when run.json or state.json was last written (at the start of a session, after each epoch)
    config: TrainConfig | None  # None when damaged
    state: RunState
    damage: str = ""  # what is wrong with its files ("" when it can be resumed)
    busy: bool = False  # a live process holds its lock
    recorded_name: str | None = None  # the model name in run.json, even when the rest of it is damaged

    def bytes_on_disk(self) -> int:
        total = 0
        with contextlib.suppress(OSError):  # resumed and registered meanwhile
            for path in self.path.iterdir():
                with contextlib.suppress(OSError):
                    total += path.stat().st_size
        return total


def list_runs(name: str | None = None) -> list[RunInfo]:
    """The folders of ``runs/`` that hold a run (oldest first), optionally only those of model ``name``."""
    folder = runs_dir()
    if not folder.is_dir():
        return []
    found = []
    for run in folder.iterdir():
        if run.name.startswith("."):  # a registered run being deleted, or our own files
            continue
        info = _read_run(run)
        if info is not None and (name is None or info.recorded_name == name):
            found.append(info)
    return sorted(found, key=lambda info: info.modified)


def _read_run(run: Path) -> RunInfo | None:
    """``run``'s files, checked; None when it holds no run.json (not a run, or removed while we looked)."""
    try:
        text = (run / CONFIG_FILE).read_text()
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as exc:
        return RunInfo(run.name, run, 0.0, None, RunState(), f"{run / CONFIG_FILE}: {exc.strerror or exc}")
    # The files' times, not the folder's: checking the lock creates .lock in the folder, which is no progress.
    modified = max(_mtime(run / CONFIG_FILE), _mtime(run / STATE_FILE))
    config, state, damage, recorded_name = None, RunState(), "", None
    try:
        record = json.loads(text)
        if isinstance(record, dict) and isinstance(record.get("name"), str):
            recorded_name = record["name"]
        config = TrainConfig.from_record(record)
    except ValueError as exc:  # json's errors are ValueErrors too
        damage = f"{run / CONFIG_FILE}: {exc}"
    else:
        try:
            state = _read_state(run, config)
        except ValueError as exc:
            damage = f"{run / STATE_FILE}: {exc}"
    busy = _is_locked(run)
    if busy is None:
        return None
    return RunInfo(run.name, run, modified, config, state, damage, busy, recorded_name)


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:  # no state.json before the first epoch; or removed while we looked
        return 0.0


def _is_locked(run: Path) -> bool | None:
    """Whether a live process holds ``run``'s lock; None when the run was finished (and removed) meanwhile."""
    lock = FileLock(run / LOCK_FILE)
    try:
        lock.acquire(timeout=0)
    except Timeout:
        return True
    except OSError:
        return False  # an unwritable folder: nobody can be training there; resuming will say why it cannot
    lock.release()
    if (run / CONFIG_FILE).exists():
        return False
    _forget_recreated(run)
    return None


def find_run(run_id_or_latest: str, name: str | None) -> tuple[str, TrainConfig]:
    """Resolve ``--resume``: a run id, or "latest" (of ``name`` when given), skipping runs that another process
    is training. A damaged run is an error, not something to skip: it was the one asked for."""
    runs = list_runs()
    if run_id_or_latest != "latest":
        for run in runs:
            if run.run_id == run_id_or_latest:
                return _resumable(run)
        raise RunNotFoundError(f"no interrupted run {run_id_or_latest!r}", hint=_runs_hint(runs))
    candidates = [run for run in runs if name is None or run.recorded_name == name]
    free = [run for run in candidates if not run.busy]
    if not candidates:
        raise RunNotFoundError(
            "no interrupted run to resume" + (f" for {name!r}" if name else ""), hint=_runs_hint(runs)
        )
    return _resumable(free[-1] if free else candidates[-1])


def _resumable(run: RunInfo) -> tuple[str, TrainConfig]:
    if run.busy:
        raise RunBusyError(run.run_id)
    if run.damage or run.config is None:
        raise DamagedRunError(run.path, str(run.damage))
    return run.run_id, run.config


def _runs_hint(runs: list[RunInfo]) -> str:
    if not runs:
        return 'start one with "mnistctl train --arch mlp"'
    groups = (
        ("interrupted runs", [run for run in runs if not run.busy and not run.damage]),
        ("training in another process", [run for run in runs if run.busy]),
        ("damaged", [run for run in runs if run.damage and not run.busy]),
    )
    return "; ".join(f"{label}: " + ", ".join(run.run_id for run in group) for label, group in groups if group)


def abandoned_runs(days: float = ABANDONED_AFTER_DAYS) -> list[RunInfo]:
    """Runs that no process is training and that have not been written for ``days`` days (oldest first)."""
    cutoff = time.time() - days * 86400
    return [run for run in list_runs() if not run.busy and run.modified < cutoff]


def _read_state(run: Path, config: TrainConfig) -> RunState:
    """The run's state.json, checked (raises ValueError); a run without one has no completed epoch yet."""
    try:
        record = json.loads((run / STATE_FILE).read_text())
    except FileNotFoundError:
        return RunState()
    except OSError as exc:
        raise ValueError(exc.strerror or str(exc)) from None
    if not isinstance(record, dict) or set(record) - {spec.name for spec in fields(RunState)}:
        raise ValueError("not a JSON object of epochs_done, checkpoint, history, train_seconds, epoch_seconds")
    state = RunState(**record)
    if not _whole(0, config.epochs)(state.epochs_done):
        raise ValueError(
            f"epochs_done is {_shown(state.epochs_done)}, expected a whole number from 0 to {config.epochs}"
        )
    # The name is checked, not just typed: the file it names is loaded, then deleted, so it must be in the folder.
    if state.checkpoint != "" and not (
        isinstance(state.checkpoint, str) and _CHECKPOINT_NAME.fullmatch(state.checkpoint)
    ):
        raise ValueError(f"checkpoint is {_shown(state.checkpoint)}, expected a name like checkpoint-3.keras")
    if not (isinstance(state.history, dict) and all(_numbers(values) for values in state.history.values())):
        raise ValueError("history is not an object of lists of numbers")
    if not (_is_number(state.train_seconds) and _numbers(state.epoch_seconds)):
        raise ValueError("train_seconds or epoch_seconds is not a number")
    if not _numbers(state.learning_rates):
        raise ValueError("learning_rates is not a list of numbers")
    if not (state.best_val_loss is None or _is_number(state.best_val_loss)):
        raise ValueError(f"best_val_loss is {_shown(state.best_val_loss)}, expected null or a number")
    for key in ("best_epoch", "stopped_at_epoch"):
        if not _whole(0, state.epochs_done)(getattr(state, key)):
            raise ValueError(f"{key} is {_shown(getattr(state, key))}, expected a whole number from 0 to epochs_done")
    if state.best_weights != "" and not (
        isinstance(state.best_weights, str) and _BEST_WEIGHTS_NAME.fullmatch(state.best_weights)
    ):
        raise ValueError(f"best_weights is {_shown(state.best_weights)}, expected a name like best-3.weights.npz")
    return state


def _numbers(value: Any) -> bool:
    return isinstance(value, list) and all(_is_number(item) for item in value)


@contextlib.contextmanager
def _hold_run(run: Path) -> Iterator[None]:
    """Hold ``run``'s lock for the whole of training and registration (a second process is refused, not queued)."""
    lock = FileLock(run / LOCK_FILE)
    try:
        lock.acquire(timeout=0)
    except Timeout:
        raise RunBusyError(run.name) from None
    try:
        yield
    finally:
        lock.release()


def _discard_run(run: Path) -> None:
    """Remove a registered (or hopeless) run: renamed away first, in one step, so that no other process ever sees
    a half-deleted folder it could take for an interrupted run."""
    discarded = run.with_name(f"{_DISCARDED_PREFIX}{run.name}-{secrets.token_hex(4)}")
    try:
        os.replace(run, discarded)
    except FileNotFoundError:
        return
    except OSError:
        # Windows renames no folder holding an open file (our lock): without run.json it is no run, whatever is left.
        with contextlib.suppress(FileNotFoundError):
            (run / CONFIG_FILE).unlink()
        discarded = run
    shutil.rmtree(discarded, ignore_errors=True)


def _sweep_discarded() -> None:
    """Finish deleting folders whose deletion was cut short (nobody reads a renamed folder, so any time is safe)."""
    with contextlib.suppress(OSError):
        for path in runs_dir().iterdir():
            if path.name.startswith(_DISCARDED_PREFIX):
                shutil.rmtree(path, ignore_errors=True)


def _refuse_registered(run: Path) -> None:
    """A run whose version is in the registry already (killed between the commit and removing its folder) must not
    be registered twice: finish its clean-up and say where its version is."""
    ref = Registry().ref_of_run(run.name)
    if ref is not None:
        _discard_run(run)
        raise RunAlreadyRegisteredError(
            f"run {run.name} was already registered as {ref}",
            hint="its folder outlived an interrupted clean-up and is now removed; nothing is left to resume",
        )


def seed_everything(seed: int, deterministic: bool) -> None:
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(seed)
    if deterministic:
        tf.config.experimental.enable_op_determinism()


def split_data(
    images: np.ndarray, labels: np.ndarray, config: TrainConfig
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray] | None]:
    """``--limit`` first N, then the last ``val_split`` fraction held out (as Keras' validation_split)."""
    import numpy as np

    if config.limit is not None:
        images, labels = images[: config.limit], labels[: config.limit]
    x = images.astype(np.float32)
    y = np.eye(10, dtype=np.float32)[labels]
    held_out = int(len(x) * config.val_split)
    if held_out == 0:
        return (x, y), None
    if held_out == len(x):
        raise UsageError("--val-split leaves no training data", hint="lower --val-split or raise --limit")
    return (x[:-held_out], y[:-held_out]), (x[-held_out:], y[-held_out:])


def even_for_replicas(
    train: tuple[np.ndarray, np.ndarray],
    validation: tuple[np.ndarray, np.ndarray] | None,
    replicas: int,
    config: TrainConfig,
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray] | None]:
    """Every batch split evenly across ``replicas``: Keras 3's fit under MirroredStrategy fails on a batch that
    does not (e.g. a last batch of 25 on 2 replicas: "Inputs to operation AddN ... [13,28,28] != [12,28,28]").

    The global batch must be a multiple of the replicas; then at most ``replicas - 1`` images of each split are left
    out, so that its last batch is one too.
    """
    if config.batch_size % replicas:
        raise UsageError(
            f"--batch-size {config.batch_size} does not split evenly across {replicas} replicas",
            hint=f"use a multiple of {replicas}, e.g. {config.batch_size + replicas - config.batch_size % replicas}",
        )

    def trimmed(split: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        keep = len(split[0]) - len(split[0]) % replicas
        return split[0][:keep], split[1][:keep]

    validation = trimmed(validation) if validation is not None else None
    return trimmed(train), (validation if validation is None or len(validation[0]) else None)


def _keras_callbacks(listener: TrainListener, run: Path, state: RunState, config: TrainConfig) -> list[Any]:
    import keras

    from mnistctl.convert import keras_bytes

    class Progress(keras.callbacks.Callback):
        # Batch ends are dispatched on Keras' worker thread; logs are only read when we draw.
        async_safe = True

        def __init__(self) -> None:
            super().__init__()
            self.epoch = 0
            self.last_draw = 0.0
            self.epoch_started = 0.0
            self.lock = threading.Lock()

        def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
            self.epoch = epoch + 1
            self.epoch_started = time.perf_counter()
            listener.epoch_started(self.epoch)

        def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
            now = time.perf_counter()
            with self.lock:
                if now - self.last_draw < PROGRESS_INTERVAL_S:
                    return
                self.last_draw = now
            listener.batch_done(self.epoch, batch + 1, {k: float(v) for k, v in (logs or {}).items()})

        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            seconds = time.perf_counter() - self.epoch_started
            logs = {k: float(v) for k, v in (logs or {}).items()}
            # Checkpoint first, then report: what the user sees as done is on disk.
            state.epochs_done = epoch + 1
            state.train_seconds += seconds
            state.epoch_seconds.append(round(seconds, 3))
            for key, value in logs.items():
                state.history.setdefault(key, []).append(value)
            state.learning_rates += [math.nan] * (epoch - len(state.learning_rates))  # a run from before the field
            state.learning_rates.append(_learning_rate(self.model, logs))
            # New files first (the checkpoint; the best weights), then the state that names them, then the old
            # files go: a kill at any point leaves state.json describing files that exist and match.
            previous, previous_best = state.checkpoint, state.best_weights
            if config.early_stopping:
                self._early_stopping(epoch + 1, logs.get("val_loss"))
            state.checkpoint = CHECKPOINT_PATTERN.format(epoch=epoch + 1)
            atomic_write_bytes(run / state.checkpoint, keras_bytes(self.model))
            atomic_write_bytes(run / STATE_FILE, json.dumps(asdict(state)).encode())
            for old, new in ((previous, state.checkpoint), (previous_best, state.best_weights)):
                if old and old != new:
                    (run / old).unlink(missing_ok=True)
            atomic_write_bytes(run / METRICS_CSV, metrics_csv(state).encode())
            listener.epoch_done(epoch + 1, logs, seconds)

        def _early_stopping(self, epoch: int, val_loss: float | None) -> None:
            """Keras' EarlyStopping(monitor="val_loss", patience=P, restore_best_weights=True), its memory kept in
            the run's state and folder, so that an interrupted run resumes with the best epoch it had."""
            if (
                val_loss is not None
                and math.isfinite(val_loss)
                and (state.best_val_loss is None or val_loss < state.best_val_loss)
            ):
                state.best_val_loss, state.best_epoch = val_loss, epoch
                state.best_weights = BEST_WEIGHTS_PATTERN.format(epoch=epoch)
                atomic_write_bytes(run / state.best_weights, _weights_bytes(self.model))
            elif epoch - state.best_epoch >= config.early_stopping:
                state.stopped_at_epoch = epoch
                self.model.stop_training = True

    return [Progress()]


def _learning_rate(model: Any, logs: dict[str, float]) -> float:
    """The optimizer's learning rate after this epoch's steps (a schedule's current value); NaN when unknown."""
    if "learning_rate" in logs:
        return float(logs["learning_rate"])
    try:
        import numpy as np

        return float(np.asarray(model.optimizer.learning_rate))
    except Exception:  # an optimizer without one: the column stays empty
        return math.nan


def _weights_bytes(model: Any) -> bytes:
    import io

    import numpy as np

    buffer = io.BytesIO()
    np.savez(buffer, *[np.asarray(weight) for weight in model.get_weights()])
    return buffer.getvalue()


def _restore_best_weights(model: Any, run: Path, state: RunState, config: TrainConfig, listener: TrainListener) -> None:
    """--early-stopping: say where training stopped, and put the best epoch's weights back into ``model``."""
    import io

    import numpy as np

    if not config.early_stopping or not state.best_epoch:
        return
    if state.stopped_at_epoch:
        listener.stage(f"stopped early at epoch {state.stopped_at_epoch} (best: epoch {state.best_epoch})")
    if state.best_epoch == state.epochs_done:
        return
    try:
        data = (run / state.best_weights).read_bytes()
    except OSError as exc:
        raise DamagedRunError(run, f"{run / state.best_weights}: {exc.strerror or exc}") from None
    with np.load(io.BytesIO(data)) as stored:
        model.set_weights([stored[f"arr_{index}"] for index in range(len(stored.files))])
    listener.stage(f"restored the weights of epoch {state.best_epoch} (val_loss {state.best_val_loss:.4f})")


def _restored_epoch(config: TrainConfig, state: RunState) -> int:
    """The epoch whose weights are registered (from 1)."""
    return state.best_epoch if config.early_stopping and state.best_epoch else state.epochs_done


def metrics_csv(state: RunState) -> str:
    """metrics.csv: a header, then one row per completed epoch; an unknown value is an empty cell."""
    return metrics_table(state.history, state.epoch_seconds, state.learning_rates, state.epochs_done)


def _tensorboard_callbacks(keras: Any, log_dir: Path | None, run_id: str) -> list[Any]:
    """--tensorboard DIR: Keras' standard TensorBoard logs, in DIR/RUN_ID (a resumed run continues there)."""
    if log_dir is None:
        return []
    return [keras.callbacks.TensorBoard(log_dir=str(Path(log_dir) / run_id), profile_batch=0)]


def environment() -> dict[str, str]:
    import keras
    import numpy as np
    import tensorflow as tf

    return {
        "mnistctl": __version__,
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def train(
    config: TrainConfig,
    listener: TrainListener,
    *,
    resume_run: str | None = None,
    devices: str = "all",
    tensorboard: Path | None = None,
) -> TrainResult:
    """Train ``config`` (or continue run ``resume_run``) on ``devices`` (mnistctl.devices), evaluate, register.

    The run's lock is held from start to end; a run to resume is claimed (and read again) before anything slow.
    """
    from mnistctl.data.loader import fingerprint, load

    with contextlib.ExitStack() as held:
        state = RunState()
        if resume_run is not None:
            held.enter_context(_hold_run(runs_dir() / resume_run))
            config, state = _reread_claimed_run(runs_dir() / resume_run)

        # Check the data before spending seconds importing TensorFlow.
        folder_data = None
        if config.data_folder:
            from mnistctl.folder_training import describe_skipped, load_folder

            folder_data = load_folder(config.data_folder, config.seed, stage=listener.stage)
            for line in describe_skipped(folder_data):
                listener.stage(line)
            (train_images, train_labels), (test_images, test_labels) = folder_data.train, folder_data.test
            data_fingerprint = folder_data.fingerprint
        else:
            train_images, train_labels = load("train", dataset=config.dataset)
            test_images, test_labels = load("test", dataset=config.dataset)
            data_fingerprint = fingerprint(dataset=config.dataset)

        if config.early_stopping and not int(min(len(train_images), config.limit or MAX_LIMIT) * config.val_split):
            raise UsageError(
                "--early-stopping needs held-out images, and --val-split holds out none of these",
                hint="raise --val-split or --limit",
            )
        listener.stage("loading TensorFlow…")  # 6-12 s of silence otherwise
        from mnistctl.tf_runtime import import_keras

        keras = import_keras()
        from mnistctl.devices import select

        placement = select(devices)  # before anything makes TensorFlow initialise its devices

        if resume_run is None:
            _sweep_discarded()
            run = _new_run_folder(config.name)
            # Locked before run.json exists: no other process can see this run without seeing it busy.
            held.enter_context(_hold_run(run))
        else:
            run = runs_dir() / resume_run
        run_id = run.name
        atomic_write_bytes(run / CONFIG_FILE, json.dumps(asdict(config), indent=2).encode())

        (x_train, y_train), validation = split_data(train_images, train_labels, config)
        if placement.replicas > 1:
            train_split = even_for_replicas((x_train, y_train), validation, placement.replicas, config)
            (x_train, y_train), validation = train_split
        seed_everything((config.seed + state.epochs_done) % (MAX_SEED + 1), config.deterministic)
        with placement.scope():
            if state.epochs_done and state.checkpoint and (run / state.checkpoint).is_file():
                model = keras.models.load_model(run / state.checkpoint)
            else:
                state = RunState()
                model = new_model(config, len(x_train))
        resumed_from = state.epochs_done
        steps = steps_per_epoch(config, len(x_train))
        val_samples = 0 if validation is None else len(validation[0])
        listener.run_started(
            run_id, config, len(x_train), val_samples, steps, devices=placement.describe(config.batch_size)
        )
        resume_hint = f'resume with "mnistctl train --resume {run_id}"'
        if config.early_stopping and validation is None:  # all held-out images trimmed away for the replicas
            raise UsageError("--early-stopping needs held-out images, and none are left", hint="raise --limit")
        # A run that stopped early (then was interrupted while registering) trains no further.
        if state.epochs_done < config.epochs and not state.stopped_at_epoch:
            if config.augment:
                from mnistctl.augment import augmented_dataset

                # The dataset shuffles itself; Keras warns if asked to shuffle it again.
                dataset = augmented_dataset(
                    x_train,
                    y_train,
                    config.batch_size,
                    config.seed,
                    strokes=config.augment_strokes,
                    profile=config.augment_profile or None,
                )
                inputs: dict[str, Any] = {"x": dataset, "shuffle": False}
            else:
                inputs = {"x": x_train, "y": y_train, "batch_size": config.batch_size, "shuffle": True}
            try:
                callbacks = [
                    *_keras_callbacks(listener, run, state, config),
                    _stop_early(keras),
                    *_tensorboard_callbacks(keras, tensorboard, run_id),
                ]
                with interrupts.deferred():  # raised by StopEarly between batches, never inside TensorFlow
                    model.fit(
                        **inputs,
                        epochs=config.epochs,
                        initial_epoch=state.epochs_done,
                        validation_data=validation,
                        callbacks=callbacks,
                        verbose=0,
                    )
            except KeyboardInterrupt as exc:
                # What is on disk, not in memory: the interrupt may have come between an epoch's two writes.
                done = _epochs_on_disk(run, config)
                raise interrupted_error(
                    exc, "training ", f" after {done} of {config.epochs} epochs", resume_hint
                ) from None
            except Exception:
                if not interrupts.requested():
                    raise
                # Ctrl-C during Keras' start-up can leave it half-built and failing: the run is as resumable.
                done = _epochs_on_disk(run, config)
                raise interrupted_error(
                    interrupts.exception(), "training ", f" after {done} of {config.epochs} epochs", resume_hint
                ) from None

        try:
            _refuse_diverged(model, run, config)
            _restore_best_weights(model, run, state, config, listener)
            version = _evaluate_and_register(
                model,
                config,
                listener,
                state,
                run_id,
                train_samples=len(x_train),
                validation=validation,
                test=(test_images, test_labels),
                data_fingerprint=data_fingerprint,
                placement=placement.record(),
                folder_data=folder_data,
            )
        except KeyboardInterrupt as exc:
            # Nothing is registered (the registry's transaction rolled back; were it committed, --resume says so).
            after = f" after {state.epochs_done} of {config.epochs} epochs, before it was registered"
            raise interrupted_error(exc, "training ", after, resume_hint) from None
        _discard_run(run)
    return TrainResult(version, state.history, round(state.train_seconds, 3), state.epoch_seconds, run_id, resumed_from)


def _new_run_folder(name: str) -> Path:
    """A new, empty run folder; never one another process made in the same second (two runs must not share one)."""
    while True:
        run = runs_dir() / new_run_id(name)
        try:
            run.mkdir(parents=True)
        except FileExistsError:
            continue
        return run


def _reread_claimed_run(run: Path) -> tuple[TrainConfig, RunState]:
    """The config and state of a run whose lock we now hold: what ``find_run`` saw may have changed since."""
    if not (run / CONFIG_FILE).is_file():
        _forget_recreated(run)  # another process finished it between find_run and our lock
        raise RunNotFoundError(f"run {run.name} is no longer interrupted: another process finished it meanwhile")
    source = run / CONFIG_FILE
    try:
        config = TrainConfig.from_record(json.loads(source.read_text()))
        source = run / STATE_FILE
        state = _read_state(run, config)
    except ValueError as exc:
        raise DamagedRunError(run, f"{source}: {exc}") from None
    _refuse_registered(run)
    return config, state


def _epochs_on_disk(run: Path, config: TrainConfig) -> int:
    try:
        return _read_state(run, config).epochs_done
    except ValueError:
        return 0


def _evaluate_and_register(
    model: Any,
    config: TrainConfig,
    listener: TrainListener,
    state: RunState,
    run_id: str,
    *,
    train_samples: int,
    validation: tuple[np.ndarray, np.ndarray] | None,
    test: tuple[np.ndarray, np.ndarray],
    data_fingerprint: str,
    placement: dict[str, Any],
    folder_data: Any = None,
) -> ModelVersion:
    """After the last epoch: test metrics, calibration, the artifacts, and the new version in the registry."""
    from mnistctl.convert import keras_bytes, layer_table, tflite_bytes, weights_sha256

    listener.stage("evaluating on the test set…")
    model = final_model(model, config)
    calibration = calibrate(model, validation)
    listener.stage(describe_calibration(calibration))
    registered_epoch = _restored_epoch(config, state)  # the best one under --early-stopping
    metrics = {
        **test_metrics(model, *test, calibration["temperature"]),
        **{
            key: values[registered_epoch - 1]
            for key, values in state.history.items()
            if len(values) >= registered_epoch > 0
        },
        "epochs_trained": state.epochs_done,
        **({"test_on": folder_data.test_on} if folder_data is not None else {}),
    }
    listener.stage("converting to TFLite…")
    artifacts = {
        "model.keras": keras_bytes(model),
        "model.tflite": tflite_bytes(model),
        "history.json": json.dumps({"history": state.history, "epoch_seconds": state.epoch_seconds}, indent=2).encode(),
        METRICS_CSV: metrics_csv(state).encode(),
    }
    listener.stage("registering…")
    params = {
        **asdict(config),
        "train_samples": train_samples,
        "val_samples": 0 if validation is None else len(validation[0]),
        "total_params": int(model.count_params()),
        "calibration": calibration,
        **placement,
        "early_stopping": (
            {
                "patience": config.early_stopping,
                "stopped_at_epoch": state.stopped_at_epoch or None,
                "best_epoch": state.best_epoch or None,
            }
            if config.early_stopping
            else None
        ),
        **({"data": folder_data.record} if folder_data is not None else {}),
        # The names of labels 0..9 travel with the model: predict prints "Sneaker" for a Fashion-MNIST one.
        "classes": list(get_dataset(config.dataset).classes) if not folder_data else list(DIGIT_CLASSES),
    }
    return Registry().register(
        name=config.name,
        arch=config.arch,
        params=params,
        metrics=metrics,
        layers=layer_table(model),
        weights_sha256=weights_sha256(model),
        data_fingerprint=data_fingerprint,
        environment=environment(),
        artifacts=artifacts,
        run_id=run_id,
    )


def _stop_early(keras: Any) -> Any:
    """Stop a diverged run at once instead of running its remaining epochs (Keras' own TerminateOnNaN does
    the same but prints to stdout, which is for results); and stop at once, resumably, after Ctrl-C or SIGTERM,
    which ``interrupts.deferred`` holds back during fit, or which a library swallowed before it."""

    class StopEarly(keras.callbacks.Callback):
        def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
            interrupts.stop_if_requested()
            loss = (logs or {}).get("loss")
            if loss is not None and not math.isfinite(float(loss)):
                self.model.stop_training = True

        def on_test_batch_end(self, batch: int, logs: dict | None = None) -> None:
            interrupts.stop_if_requested()  # the validation pass at an epoch's end takes seconds on big sets

    return StopEarly()


class TrainingDivergedError(MnistctlError):
    """The weights became NaN or infinite: nothing usable to register."""


def _refuse_diverged(model: Any, run: Path, config: TrainConfig) -> None:
    """Never register NaN weights (they would print "9 nan" forever after); the run's checkpoints are as bad."""
    from mnistctl.model_io import nonfinite_weight

    if nonfinite_weight(model) is None:
        return
    _discard_run(run)
    raise TrainingDivergedError(
        f"training diverged: the weights became NaN or infinite (learning rate {config.learning_rate:g})",
        hint="train again with a smaller --lr, e.g. a tenth of it",
    )


def test_metrics(model: Any, images: np.ndarray, labels: np.ndarray, temperature: float) -> dict[str, float]:
    """Accuracy and loss on the test set of the probabilities users get: calibrated by ``temperature``."""
    import numpy as np

    from mnistctl.calibration import calibrated, expected_calibration_error
    from mnistctl.metrics import log_loss

    probabilities = calibrated(model.predict(images.astype("float32"), batch_size=512, verbose=0), temperature)
    return {
        "test_accuracy": float(np.mean(probabilities.argmax(axis=1) == labels)),
        "test_loss": log_loss(labels, probabilities),
        "test_calibration_error": expected_calibration_error(labels, probabilities),
    }


def calibrate(model: Any, validation: tuple[np.ndarray, np.ndarray] | None) -> dict[str, Any]:
    """Fit the temperature on the held-out images (never the test set, which reports on it).

    Without held-out images (``--val-split 0``), or with too few mistakes among them to learn from, the
    model stays uncalibrated, and says why.
    """
    import numpy as np

    from mnistctl.calibration import fit_temperature, too_few_mistakes

    if validation is None:
        return {"temperature": 1.0, "images": 0, "fitted_on": None, "reason": "no held-out images: --val-split 0"}
    images, targets = validation
    probabilities = np.asarray(model.predict(images, batch_size=512, verbose=0), dtype=np.float32)
    labels = targets.argmax(axis=1)
    reason = too_few_mistakes(labels, probabilities)
    if reason:
        return {"temperature": 1.0, "images": len(labels), "fitted_on": None, "reason": reason}
    return {**fit_temperature(labels, probabilities).to_dict(), "fitted_on": "validation"}


def describe_calibration(calibration: dict[str, Any]) -> str:
    """One line for the user: the fitted temperature and what it did, or why there is none."""
    if not calibration.get("fitted_on"):
        reason = calibration.get("reason", "no held-out images: --val-split 0")
        return f"not calibrated ({reason}); confidences are the network's own"
    return (
        f"calibrated on {calibration['images']:,} held-out images: temperature {calibration['temperature']:.3f},"
        f" calibration error {calibration['ece_before']:.4f} -> {calibration['ece_after']:.4f}"
    )


def steps_per_epoch(config: TrainConfig, train_samples: int) -> int:
    """Batches per epoch (the last one may be short)."""
    return -(-train_samples // config.batch_size)


def new_model(config: TrainConfig, train_samples: int) -> Any:
    """A fresh model for ``config``, compiled with its recipe's loss and optimizer, whose learning-rate
    schedule spans all the steps of ``config.epochs`` epochs over ``train_samples`` images."""
    model = build_model(config.arch, config.precision, config.arch_source)
    if config.parent:
        from mnistctl.folder_training import load_parent_weights

        load_parent_weights(model, config.parent)
    total_steps = steps_per_epoch(config, train_samples) * config.epochs
    model.compile(
        optimizer=build_optimizer(get_arch(config.arch).recipe, config.learning_rate, total_steps),
        loss=build_loss(config.loss, config.label_smoothing),
        metrics=["accuracy"],
    )
    return model


def final_model(model: Any, config: TrainConfig) -> Any:
    """What a run stores and reports on: the trained model, in float32 and scored by plain cross-entropy.

    A mixed-precision model is copied to float32; a label-smoothed one is recompiled so that its test
    loss means the same as every other model's.
    """
    if config.precision == "float32" and not config.label_smoothing:
        return model
    return float32_copy(model, config.arch)
