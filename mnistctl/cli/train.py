"""``mnistctl train``: fit an architecture on MNIST, evaluate it on the test set, register a version."""

import signal
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from mnistctl.archs import AUGMENT_PROFILES, CUSTOM_ARCH, arch_names, get_arch
from mnistctl.cli._output import hint, print_json, printable, stderr_console
from mnistctl.data.spec import DATASET_NAMES
from mnistctl.errors import MnistctlError, UsageError
from mnistctl.user_arch import (
    changed_on_disk,
    check_user_model,
    default_name,
    described,
    is_user_arch,
    parse_spec,
    read_source,
)

if TYPE_CHECKING:
    from mnistctl.training import TrainConfig, TrainResult


def _recipe_defaults(field: str) -> str:
    """E.g. "mlp 128, cnn 128, fastcnn 256": each architecture's recipe value, for --help."""
    parts = []
    for name in arch_names():
        recipe = get_arch(name).recipe
        part = f"{name} {getattr(recipe, field)}"
        if field == "epochs" and recipe.dataset_epochs:
            part += " (" + ", ".join(f"{count} on {data}" for data, count in recipe.dataset_epochs.items()) + ")"
        parts.append(part)
    return ", ".join(parts)


# Abandoned runs named in train's note; the rest are counted.
SHOWN_RUNS = 5
EPOCH_HEADER = f"{'epoch':>7}  {'loss':>8}  {'accuracy':>8}  {'val_loss':>8}  {'val_acc':>8}  {'seconds':>7}"


def _epoch_row(epoch: int, epochs: int, logs: dict[str, float], seconds: float) -> str:
    def cell(key: str) -> str:
        return f"{logs[key]:8.4f}" if key in logs else f"{'-':>8}"

    done = f"{epoch}/{epochs}"
    return f"{done:>7}  {cell('loss')}  {cell('accuracy')}  {cell('val_loss')}  {cell('val_accuracy')}  {seconds:7.1f}"


class RichTrainProgress:
    """A live bar per epoch (loss, accuracy, ETA) on a terminal, one plain line per epoch otherwise."""

    def __init__(self) -> None:
        self.console = stderr_console()
        self.live = sys.stderr.isatty()
        self.progress = None
        self.task = None
        self.epochs = 0
        self.steps = 0

    def __enter__(self) -> "RichTrainProgress":
        return self

    def __exit__(self, *exc: object) -> None:
        if self.progress is not None:
            self.progress.stop()

    def run_started(
        self, run_id: str, config: "TrainConfig", train_samples: int, val_samples: int, steps: int, devices: str = ""
    ) -> None:
        self.epochs, self.steps = config.epochs, steps
        held_out = f", {val_samples:,} held out for validation" if val_samples else ""
        details = [f"batch {config.batch_size}"]
        if config.augment_profile == "wild":
            details.append("augmented (wild)")
        elif config.augment:
            details.append("augmented" + ("" if config.augment_strokes else " (geometry only)"))
        if config.label_smoothing:
            details.append(f"label smoothing {config.label_smoothing:g}")
        if config.precision != "float32":
            details.append(config.precision.replace("_", " "))
        if devices:
            details.append(devices)
        hint(f"run {run_id}: {config.arch} on {train_samples:,} images{held_out}, {', '.join(details)}")
        hint(EPOCH_HEADER)
        if self.live:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self.progress = Progress(
                TextColumn("epoch {task.fields[epoch]}/{task.fields[epochs]}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("loss {task.fields[loss]:.4f}  accuracy {task.fields[accuracy]:.4f}"),
                TimeRemainingColumn(),
                console=self.console,
                transient=True,
            )
            self.progress.start()

    def epoch_started(self, epoch: int) -> None:
        if self.progress is not None:
            if self.task is not None:
                self.progress.remove_task(self.task)
            self.task = self.progress.add_task(
                "train", total=self.steps, epoch=epoch, epochs=self.epochs, loss=0.0, accuracy=0.0
            )

    def batch_done(self, epoch: int, step: int, logs: dict[str, float]) -> None:
        if self.progress is not None and self.task is not None:
            self.progress.update(
                self.task, completed=step, loss=logs.get("loss", 0.0), accuracy=logs.get("accuracy", 0.0)
            )

    def epoch_done(self, epoch: int, logs: dict[str, float], seconds: float) -> None:
        row = _epoch_row(epoch, self.epochs, logs, seconds)
        if self.progress is not None:
            self.progress.console.print(row, highlight=False, markup=False)
        else:
            hint(row)

    def stage(self, message: str) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None
        hint(message)


def _normalise_argv(argv: list[str]) -> list[str]:
    """Let ``--resume`` stand alone (meaning "latest") as well as take a RUN_ID; let ``--augment`` take a
    profile (``--augment wild`` or ``--augment=wild`` mean ``--augment-profile wild``)."""
    out: list[str] = []
    words = iter(argv)
    for word in words:
        if word.startswith("--augment=") and word != "--augment=":
            out += ["--augment-profile", word.partition("=")[2]]
        elif word == "--augment" and out[:1] == ["train"]:
            following = next(words, None)
            if following in AUGMENT_PROFILES:
                out += ["--augment-profile", following]
            else:
                out += [word] if following is None else [word, following]
        else:
            out.append(word)
    for index, word in enumerate(out):
        if word == "--resume" and (index + 1 == len(out) or out[index + 1].startswith("-")):
            out.insert(index + 1, "latest")
            break
    return out


def train(
    arch: Annotated[
        str | None,
        typer.Option(
            "--arch",
            metavar="ARCH",
            help=f"Architecture to train: {', '.join(arch_names())}; or your own, FILE.py:FUNCTION (a function"
            " taking (input_shape, num_classes), i.e. ((28, 28), 10), and returning an uncompiled Keras model of"
            " pixels scaled to 0..1) or FILE.json (a model config from model.to_json()). A FILE.py is your own"
            " code and runs with your rights, by design: train only files you trust. Its text and sha256 are"
            " stored with the version (models show prints them). Recipe: Adam, lr 0.001, batch 128, 5 epochs.",
            show_default=False,
        ),
    ] = None,
    epochs: Annotated[
        int | None,
        typer.Option(min=1, metavar="N", help=f"Epochs (default: the recipe's — {_recipe_defaults('epochs')})."),
    ] = None,
    batch_size: Annotated[
        int | None,
        typer.Option(
            min=1, metavar="B", help=f"Batch size (default: the recipe's — {_recipe_defaults('batch_size')})."
        ),
    ] = None,
    lr: Annotated[
        float | None,
        typer.Option(metavar="X", help=f"Learning rate (default: the recipe's — {_recipe_defaults('learning_rate')})."),
    ] = None,
    seed: Annotated[int | None, typer.Option(metavar="S", help="Seed: identical weights and metrics per seed.")] = None,
    val_split: Annotated[
        float | None, typer.Option(metavar="F", help="Fraction of training images held out (default: 0.1).")
    ] = None,
    limit: Annotated[int | None, typer.Option(min=1, metavar="N", help="Train on the first N images only.")] = None,
    name: Annotated[str | None, typer.Option(metavar="NAME", help="Register as NAME (default: the arch).")] = None,
    augment: Annotated[
        bool | None,
        typer.Option(
            "--augment/--no-augment",
            help="Augment while training, with the arch's profile (default: off; strongcnn: on, geometry only;"
            " wildcnn: on, wild). --augment PROFILE picks one: standard (shifts, rotations, scaling, stroke"
            " width), geometry, or wild (also slant, elastic warps, blur, low resolution, line and speck clutter).",
            show_default=False,
        ),
    ] = None,
    augment_profile: Annotated[
        str | None,
        typer.Option(
            "--augment-profile",
            metavar="PROFILE",
            help="Same as --augment PROFILE: standard, geometry or wild.",
            show_default=False,
        ),
    ] = None,
    resume: Annotated[
        str | None,
        typer.Option(metavar="[RUN_ID]", help="Continue the latest interrupted run (of --name/--arch) or RUN_ID."),
    ] = None,
    devices: Annotated[
        str,
        typer.Option(
            metavar="all|N|cpu",
            help="Where to train: all = every GPU (the CPU without one), N = the first N GPUs, cpu = the CPU only."
            " Several GPUs train through MirroredStrategy; --batch-size is then the global batch, split evenly"
            " across them. Multi-host training is not offered.",
        ),
    ] = "all",
    data: Annotated[
        Path | None,
        typer.Option(
            "--data",
            metavar="DIR",
            help="Train on your own labelled folder, DIR/<digit>/*.png|jpg (folders named 0 to 9), read through"
            " predict's preprocessing; files that cannot be used are listed and skipped. The images are shuffled"
            " by --seed; 10% are held out for the test metrics, and --val-split is taken from the rest.",
            show_default=False,
        ),
    ] = None,
    from_ref: Annotated[
        str | None,
        typer.Option(
            "--from",
            metavar="REF",
            help="Fine-tune: start from the weights of registered version REF (builtin too), same architecture,"
            " on MNIST or --data DIR. Recipe: the parent's optimizer at a tenth of its learning rate, 3 epochs"
            " (flags override). Registered under the parent's name (the arch's for builtin); the version"
            " records its parent.",
            show_default=False,
        ),
    ] = None,
    early_stopping: Annotated[
        int | None,
        typer.Option(
            "--early-stopping",
            min=1,
            metavar="PATIENCE",
            help="Stop once val_loss has not improved for PATIENCE epochs, and register the best epoch's weights"
            " (restored even when training runs all its epochs). Needs --val-split above 0. A one-cycle learning"
            " rate (fastcnn, strongcnn, wildcnn) is planned over all --epochs: stopping early cuts the cycle short.",
            show_default=False,
        ),
    ] = None,
    tensorboard: Annotated[
        Path | None,
        typer.Option(
            "--tensorboard",
            metavar="DIR",
            help="Write TensorBoard logs to DIR/RUN_ID (tensorboard --logdir DIR). Every run also keeps a"
            " metrics.csv, one row per epoch, registered with its version.",
            show_default=False,
        ),
    ] = None,
    dataset: Annotated[
        str | None,
        typer.Option(
            "--dataset",
            metavar="NAME",
            help="Train on this downloaded data set: " + ", ".join(DATASET_NAMES) + " (mnistctl download --dataset;"
            " default mnist, or the parent's with --from).",
            show_default=False,
        ),
    ] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print one JSON document.")] = False,
) -> None:
    """Train an architecture, test it and register a new version.

    The trained model is evaluated on the 10,000 test images before it is registered.
    """
    started = time.perf_counter()
    from mnistctl.devices import parse_devices

    devices = parse_devices(devices)
    if name is not None and not name.strip():
        raise UsageError("--name is empty", hint="give a model name, or drop --name to use the arch's")
    if resume is not None and not resume.strip():
        raise UsageError("--resume is empty", hint='give a RUN_ID, or "--resume" alone for the latest run')
    from mnistctl.training import TrainConfig, find_run
    from mnistctl.training import train as run_training

    if resume is not None:
        given = {
            "--epochs": epochs,
            "--batch-size": batch_size,
            "--lr": lr,
            "--seed": seed,
            "--val-split": val_split,
            "--limit": limit,
            "--augment" if augment else "--no-augment": augment,
            "--augment-profile": augment_profile,
            "--early-stopping": early_stopping,
            "--data": data,
            "--from": from_ref,
            "--dataset": dataset,
        }
        overrides = [flag for flag, value in given.items() if value is not None]
        if overrides:
            raise UsageError(f"--resume continues a run with its own settings; drop {', '.join(overrides)}")
        run_id, config = find_run(resume, name or (_arch_name(arch) if arch else None))
        hint(f"resuming {run_id}")
        if config.arch_source:
            _mention_changed_source(config.arch_source)
    elif from_ref is not None:
        config = _fine_tune_config(
            from_ref, arch, data, name=name, epochs=epochs, batch_size=batch_size, learning_rate=lr, seed=seed,
            val_split=val_split, limit=limit, augment=augment, augment_profile=augment_profile,
            early_stopping=early_stopping, dataset=dataset,
        )  # fmt: skip
        run_id = None
        _mention_abandoned_runs()
    else:
        if arch is None:
            raise UsageError("--arch is required", hint="choose one of: " + ", ".join(arch_names()))
        source = _user_source(arch)
        config = TrainConfig.create(
            CUSTOM_ARCH if source else get_arch(arch).name,
            name=default_name(source) if source and name is None else name,
            epochs=epochs,
            batch_size=batch_size,
            learning_rate=lr,
            seed=seed,
            val_split=val_split,
            limit=limit,
            augment=augment,
            augment_profile=augment_profile,
            arch_source=source,
            data_folder=_data_folder(data),
            early_stopping=early_stopping,
            dataset=dataset or "mnist",
        )
        if source:
            _check_user_arch(source)
        run_id = None
        _mention_abandoned_runs()
    with _sigterm_as_interrupt(), RichTrainProgress() as progress:
        result = run_training(
            config, progress, resume_run=run_id, devices=devices, tensorboard=_tensorboard_dir(tensorboard)
        )
    _report(result, json_output, time.perf_counter() - started)


def _data_folder(data: Path | None) -> str:
    """``--data DIR`` as recorded in the run (absolute); checked to be a folder before anything slow."""
    if data is None:
        return ""
    from mnistctl.data.folder import LAYOUT_HINT
    from mnistctl.folder_training import folder_key

    if not data.expanduser().is_dir():
        raise UsageError(f"--data {data}: no such folder", hint=LAYOUT_HINT)
    return folder_key(data)


def _fine_tune_config(
    from_ref: str, arch: str | None, data: Path | None, *, name: str | None, **flags: Any
) -> "TrainConfig":
    """The config of ``train --from REF``: the parent's architecture and optimizer, a tenth of its learning rate,
    FINE_TUNE_EPOCHS epochs, unless flags say otherwise."""
    from mnistctl.folder_training import FINE_TUNE_EPOCHS, fine_tune_learning_rate, parent_record, resolve_parent
    from mnistctl.training import TrainConfig

    if not from_ref.strip():
        raise UsageError("--from is empty", hint='give a model reference, e.g. "builtin" or "mlp:1"')
    parent = resolve_parent(from_ref)
    if arch is not None and arch != parent.arch:
        raise UsageError(
            f"--arch {arch} contradicts --from {parent.ref}, whose architecture is {parent.arch}",
            hint="drop --arch: fine-tuning keeps the parent's architecture",
        )
    source = parent.params.get("arch_source") or None
    return TrainConfig.create(
        parent.arch,
        name=name if name is not None else (parent.arch if parent.builtin else parent.name),
        epochs=flags.pop("epochs") or FINE_TUNE_EPOCHS,
        learning_rate=flags.pop("learning_rate") or fine_tune_learning_rate(parent),
        arch_source=source,
        data_folder=_data_folder(data),
        parent=parent_record(parent),
        dataset=flags.pop("dataset") or parent.params.get("dataset", "mnist"),
        **flags,
    )


def _tensorboard_dir(folder: Path | None) -> Path | None:
    """--tensorboard DIR, made (absolute: TensorBoard is pointed at it later, from anywhere)."""
    if folder is None:
        return None
    import importlib.util

    if importlib.util.find_spec("tensorboard") is None:  # TensorFlow 2.21 no longer installs it
        raise MnistctlError(
            "--tensorboard needs the tensorboard package, which is not installed",
            hint='install it with "pip install tensorboard", or drop --tensorboard',
        )
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"--tensorboard {printable(str(folder))}: {exc.strerror or exc}") from None
    return folder.resolve()


def _user_source(arch: str) -> dict | None:
    """The file an ``--arch FILE.py:FUNCTION`` or ``--arch FILE.json`` names, read; None for a built-in name."""
    if arch in arch_names() or not is_user_arch(arch):
        return None
    return read_source(arch)


def _arch_name(arch: str) -> str:
    """The model name --resume looks for: a built-in arch's, or the one a user arch's file gives."""
    if not is_user_arch(arch):
        return arch
    path, _ = parse_spec(arch)
    return default_name({"path": str(path)})


def _check_user_arch(source: dict) -> None:
    """Build the user's model once before the run starts: a broken file costs no run folder."""
    hint(f"building {described(source)} (your own code)…")
    check_user_model(source)


def _mention_changed_source(source: dict) -> None:
    if changed_on_disk(source):
        hint(
            f"note: {source['path']} changed since the run started;"
            f" resuming with the text recorded in the run (sha256 {source['sha256'][:12]})"
        )


@contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """Treat SIGTERM (kill, a service manager, docker stop) as Ctrl-C: training keeps the run for --resume and
    says so, and the process exits 143 (128 + SIGTERM) instead of dying wherever it was."""
    from mnistctl.interrupts import Terminated, request
    from mnistctl.training import interrupted_error

    if threading.current_thread() is not threading.main_thread():  # handlers can only be set there
        yield
        return

    def terminate(signum: int, frame: object) -> None:
        request(signum)  # remembered: a library may swallow what is raised here, and training must still stop
        raise Terminated

    previous = signal.signal(signal.SIGTERM, terminate)
    try:
        yield
    except Terminated as exc:  # outside the epochs and registration (e.g. loading TensorFlow): no run to keep
        raise interrupted_error(exc) from None
    finally:
        signal.signal(signal.SIGTERM, previous)


def _mention_abandoned_runs() -> None:
    """Interrupted runs keep a checkpoint of several MB each until resumed: mention those left for a week."""
    from mnistctl.paths import runs_dir
    from mnistctl.training import ABANDONED_AFTER_DAYS, abandoned_runs

    runs = abandoned_runs()
    if not runs:
        return
    size = sum(run.bytes_on_disk() for run in runs) / 1e6
    count = f"{len(runs)} interrupted run" + ("" if len(runs) == 1 else "s")
    shown = [printable(run.run_id) + (" (damaged)" if run.damage else "") for run in runs[:SHOWN_RUNS]]
    if len(runs) > SHOWN_RUNS:
        shown.append(f"{len(runs) - SHOWN_RUNS} more")
    hint(
        f"note: {count} untouched for more than {ABANDONED_AFTER_DAYS} days in {runs_dir()} ({size:,.1f} MB):"
        f' {", ".join(shown)}; resume one with "mnistctl train --resume RUN_ID", or delete its folder'
    )


def _report(result: "TrainResult", json_output: bool, wall_seconds: float) -> None:
    version = result.version
    if json_output:
        print_json(
            {
                "model": version.ref,
                "name": version.name,
                "version": version.version,
                "arch": version.arch,
                "epochs": version.params["epochs"],
                "params": version.params,
                "metrics": version.metrics,
                "history": result.history,
                "train_seconds": result.train_seconds,
                "epoch_seconds": result.epoch_seconds,
                "weights_sha256": version.weights_sha256,
                "run_id": result.run_id,
            }
        )
        return
    metrics = version.metrics
    print(
        f"registered {version.ref}: test accuracy {metrics['test_accuracy']:.4f}, test loss {metrics['test_loss']:.4f}"
        f" ({_time_spent(metrics['epochs_trained'], result, wall_seconds)})"
    )


def _time_spent(epochs: int, result: "TrainResult", wall_seconds: float) -> str:
    """E.g. "1 epoch, 3.2 s training, 9.8 s in all"; after --resume the training time covers every session
    of the run, so this process's own time is named as such (it can be shorter than the training time)."""
    count = f"{epochs:,} epoch" + ("" if epochs == 1 else "s")
    if result.resumed_from_epoch:
        return (
            f"{count}, {result.train_seconds:.1f} s training across sessions, "
            f"{wall_seconds:.1f} s in this session from epoch {result.resumed_from_epoch + 1}"
        )
    return f"{count}, {result.train_seconds:.1f} s training, {wall_seconds:.1f} s in all"
