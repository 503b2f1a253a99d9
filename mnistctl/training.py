"""Fit glue: seeds, data split, progress and checkpoint callbacks, test metrics, registration.

A run lives in ``runs/<run-id>/`` (its config and, after each completed epoch, an atomic
checkpoint of model + optimizer + history) until its version is registered; then the folder is
removed. A run that was interrupted or killed resumes from its last completed epoch.
"""

from __future__ import annotations

import json
import math
import platform
import secrets
import shutil
import threading
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from mnistctl import __version__
from mnistctl.archs import (
    AUGMENT_PROFILES,
    build_loss,
    build_model,
    build_optimizer,
    float32_copy,
    get_arch,
    native_bfloat16,
)
from mnistctl.errors import ExitCode, MnistctlError, UsageError
from mnistctl.fsutil import atomic_write_bytes
from mnistctl.paths import runs_dir
from mnistctl.registry import ModelVersion, Registry, check_new_name

if TYPE_CHECKING:
    import numpy as np

CONFIG_FILE = "run.json"
CHECKPOINT_PATTERN = "checkpoint-{epoch}.keras"
STATE_FILE = "state.json"
PROGRESS_INTERVAL_S = 0.1
# Bounds on numeric flags: beyond them a value is a typo, and it would fail deep inside Keras or NumPy.
MAX_EPOCHS = 100_000
MAX_BATCH_SIZE = 1 << 20
MAX_LIMIT = 1 << 40
MAX_SEED = 2**32 - 1


class TrainingInterrupted(MnistctlError):
    """Ctrl-C during training: the last completed epoch is kept for --resume."""

    exit_code = ExitCode.INTERRUPTED


class RunNotFoundError(MnistctlError):
    """--resume found no interrupted run to continue."""


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
        val_split: float = 0.1,
        limit: int | None = None,
        augment: bool | None = None,
        augment_profile: str | None = None,
    ) -> TrainConfig:
        """The architecture's recipe with the given overrides, validated."""
        recipe = get_arch(arch).recipe
        if not 0.0 <= val_split < 1.0:
            raise UsageError(f"--val-split must be in [0, 1), got {val_split}")
        for flag, value, most in (
            ("--epochs", epochs, MAX_EPOCHS),
            ("--batch-size", batch_size, MAX_BATCH_SIZE),
            ("--limit", limit, MAX_LIMIT),
        ):
            if value is not None and not 1 <= value <= most:
                raise UsageError(f"{flag} must be between 1 and {most:,}, got {value:,}")
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
            epochs=epochs or recipe.epochs,
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
        )


class TrainListener(Protocol):
    """What training reports (the CLI draws it). ``batch_done`` may be called from a worker thread."""

    def run_started(self, run_id: str, config: TrainConfig, train_samples: int, val_samples: int, steps: int) -> None:
        """Called once, before the first epoch (also when resuming)."""

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


def new_run_id(name: str) -> str:
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    return f"{name}-{stamp}-{secrets.token_hex(2)}"


def list_runs(name: str | None = None) -> list[tuple[str, TrainConfig, RunState]]:
    """Interrupted runs (oldest first), optionally only those of model ``name``."""
    found = []
    folder = runs_dir()
    if not folder.is_dir():
        return found
    for run, _ in sorted(((path, _mtime(path)) for path in folder.iterdir()), key=lambda item: item[1]):
        try:
            config = TrainConfig(**json.loads((run / CONFIG_FILE).read_text()))
        except (OSError, ValueError, TypeError):
            continue  # unreadable, or finished (and removed) while we looked
        if name is None or config.name == name:
            found.append((run.name, config, _read_state(run)))
    return found


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except FileNotFoundError:  # another train registered its run and removed the folder meanwhile
        return 0.0


def find_run(run_id_or_latest: str, name: str | None) -> tuple[str, TrainConfig]:
    """Resolve ``--resume``: a run id, or "latest" (of ``name`` when given)."""
    runs = list_runs()
    if run_id_or_latest != "latest":
        for run_id, config, _ in runs:
            if run_id == run_id_or_latest:
                return run_id, config
        raise RunNotFoundError(f"no interrupted run {run_id_or_latest!r}", hint=_runs_hint(runs))
    candidates = [(run_id, config) for run_id, config, _ in runs if name is None or config.name == name]
    if not candidates:
        raise RunNotFoundError(
            "no interrupted run to resume" + (f" for {name!r}" if name else ""), hint=_runs_hint(runs)
        )
    return candidates[-1]


def _runs_hint(runs: list[tuple[str, TrainConfig, RunState]]) -> str:
    if not runs:
        return 'start one with "mnistctl train --arch mlp"'
    return "interrupted runs: " + ", ".join(run_id for run_id, _, _ in runs)


def _read_state(run: Path) -> RunState:
    try:
        return RunState(**json.loads((run / STATE_FILE).read_text()))
    except (OSError, ValueError, TypeError):
        return RunState()


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
            # A new checkpoint file first, then the state that names it, then the old file goes: a
            # kill at any point leaves state.json describing a checkpoint that exists and matches.
            previous = state.checkpoint
            state.checkpoint = CHECKPOINT_PATTERN.format(epoch=epoch + 1)
            atomic_write_bytes(run / state.checkpoint, keras_bytes(self.model))
            atomic_write_bytes(run / STATE_FILE, json.dumps(asdict(state)).encode())
            if previous and previous != state.checkpoint:
                (run / previous).unlink(missing_ok=True)
            listener.epoch_done(epoch + 1, logs, seconds)

    return [Progress()]


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


def train(config: TrainConfig, listener: TrainListener, *, resume_run: str | None = None) -> TrainResult:
    """Train ``config`` (or continue run ``resume_run``), evaluate on the test set, register."""
    from mnistctl.data.loader import fingerprint, load

    # Check the data before spending seconds importing TensorFlow.
    train_images, train_labels = load("train")
    test_images, test_labels = load("test")
    data_fingerprint = fingerprint()

    listener.stage("loading TensorFlow…")  # 6-12 s of silence otherwise
    from mnistctl.convert import keras_bytes, layer_table, tflite_bytes, weights_sha256
    from mnistctl.tf_runtime import import_keras

    keras = import_keras()

    run_id = resume_run or new_run_id(config.name)
    run = runs_dir() / run_id
    state = _read_state(run) if resume_run else RunState()
    run.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(run / CONFIG_FILE, json.dumps(asdict(config), indent=2).encode())

    (x_train, y_train), validation = split_data(train_images, train_labels, config)
    seed_everything((config.seed + state.epochs_done) % (MAX_SEED + 1), config.deterministic)
    if state.epochs_done and state.checkpoint and (run / state.checkpoint).is_file():
        model = keras.models.load_model(run / state.checkpoint)
    else:
        state = RunState()
        model = new_model(config, len(x_train))
    resumed_from = state.epochs_done
    steps = steps_per_epoch(config, len(x_train))
    listener.run_started(run_id, config, len(x_train), 0 if validation is None else len(validation[0]), steps)
    if state.epochs_done < config.epochs:
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
            model.fit(
                **inputs,
                epochs=config.epochs,
                initial_epoch=state.epochs_done,
                validation_data=validation,
                callbacks=[*_keras_callbacks(listener, run, state, config), _stop_on_nan(keras)],
                verbose=0,
            )
        except KeyboardInterrupt:
            raise TrainingInterrupted(
                f"training interrupted after {state.epochs_done} of {config.epochs} epochs",
                hint=f'resume with "mnistctl train --resume {run_id}"',
            ) from None

    _refuse_diverged(model, run, config)
    listener.stage("evaluating on the test set…")
    model = final_model(model, config)
    calibration = calibrate(model, validation)
    listener.stage(describe_calibration(calibration))
    test = test_metrics(model, test_images, test_labels, calibration["temperature"])
    metrics = {
        **test,
        **{key: values[-1] for key, values in state.history.items() if values},
        "epochs_trained": state.epochs_done,
    }
    listener.stage("converting to TFLite…")
    artifacts = {
        "model.keras": keras_bytes(model),
        "model.tflite": tflite_bytes(model),
        "history.json": json.dumps({"history": state.history, "epoch_seconds": state.epoch_seconds}, indent=2).encode(),
    }
    listener.stage("registering…")
    params = {
        **asdict(config),
        "train_samples": len(x_train),
        "val_samples": 0 if validation is None else len(validation[0]),
        "total_params": int(model.count_params()),
        "calibration": calibration,
    }
    version = Registry().register(
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
    shutil.rmtree(run, ignore_errors=True)
    return TrainResult(version, state.history, round(state.train_seconds, 3), state.epoch_seconds, run_id, resumed_from)


def _stop_on_nan(keras: Any) -> Any:
    """Stop a diverged run at once instead of running its remaining epochs (Keras' own TerminateOnNaN does
    the same but prints to stdout, which is for results)."""

    class StopOnNaN(keras.callbacks.Callback):
        def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
            loss = (logs or {}).get("loss")
            if loss is not None and not math.isfinite(float(loss)):
                self.model.stop_training = True

    return StopOnNaN()


class TrainingDivergedError(MnistctlError):
    """The weights became NaN or infinite: nothing usable to register."""


def _refuse_diverged(model: Any, run: Path, config: TrainConfig) -> None:
    """Never register NaN weights (they would print "9 nan" forever after); the run's checkpoints are as bad."""
    import numpy as np

    if all(np.isfinite(np.asarray(variable.numpy())).all() for variable in model.weights):
        return
    shutil.rmtree(run, ignore_errors=True)
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
    model = build_model(config.arch, config.precision)
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
