"""``mnistctl inspect``: look at digits a model gets wrong or right, its confusion, curves and layers."""

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from mnistctl.cli._output import (
    announce_model,
    check_figure_path,
    check_output_path,
    hint,
    print_json,
    print_table,
    printable,
    stdout_console,
)
from mnistctl.cli.evaluate import ModelOption
from mnistctl.errors import UsageError
from mnistctl.run_metrics import METRICS_CSV, metrics_table

if TYPE_CHECKING:
    import numpy as np

    from mnistctl.registry import ModelVersion, Registry

Count = Annotated[int | None, typer.Option(min=1, max=400, metavar="N")]
SEED_MAX = 2**32 - 1  # numpy's legacy seeds are 32-bit; one range for every seed mnistctl takes
GRID_MODES = ("wrong", "right", "random", "samples")


def _choose(candidates: "np.ndarray", count: int, seed: int | None) -> "np.ndarray":
    """The first ``count`` candidates, or a seeded random sample of them."""
    import numpy as np

    if seed is None or len(candidates) <= count:
        return candidates[:count]
    return np.sort(np.random.default_rng(seed).choice(candidates, size=count, replace=False))


def inspect(
    model: ModelOption = None,
    wrong: Annotated[
        int | None, typer.Option("--wrong", min=1, max=400, metavar="N", help="Misclassified test digits.")
    ] = None,
    right: Annotated[
        int | None, typer.Option("--right", min=1, max=400, metavar="N", help="Correctly classified test digits.")
    ] = None,
    random: Annotated[
        int | None,
        typer.Option("--random", min=1, max=400, metavar="N", help="Random test digits (wrong ones in red)."),
    ] = None,
    samples: Annotated[
        int | None, typer.Option("--samples", min=1, max=400, metavar="N", help="Training images with their class.")
    ] = None,
    confusion: Annotated[bool, typer.Option("--confusion", help="The test-set confusion matrix.")] = False,
    history: Annotated[
        bool, typer.Option("--history", help="Loss and accuracy per epoch, train vs validation.")
    ] = False,
    summary: Annotated[bool, typer.Option("--summary", help="The layer table.")] = False,
    save: Annotated[
        Path | None,
        typer.Option(
            "--save",
            metavar="FILE",
            help="Write a PNG instead of drawing in the terminal (--history FILE.csv: the run's metrics.csv).",
        ),
    ] = None,
    seed: Annotated[
        int | None,
        typer.Option(
            min=0,
            max=SEED_MAX,
            metavar="S",
            help="Pick a random sample instead of the first N.",
        ),
    ] = None,
    dataset: Annotated[
        str | None,
        typer.Option(
            "--dataset",
            metavar="NAME",
            help="The data set to show (default: the model's own; mnist for --samples).",
            show_default=False,
        ),
    ] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print one JSON document.")] = False,
) -> None:
    """Show a model's wrong or right digits, confusion, curves, layers.

    Grids of wrong or right predictions or of training samples, the confusion matrix, training curves
    or the layer table.
    """
    modes = {
        "wrong": wrong,
        "right": right,
        "random": random,
        "samples": samples,
        "confusion": confusion or None,
        "history": history or None,
        "summary": summary or None,
    }
    chosen = [name for name, value in modes.items() if value is not None]
    if len(chosen) != 1:
        raise UsageError(
            "choose exactly one of --wrong N, --right N, --random N, --samples N, --confusion, --history, --summary"
        )
    mode = chosen[0]
    if save is not None and mode == "summary":
        raise UsageError("--summary is a table; --save works with the grids, --confusion and --history")
    if seed is not None and mode not in GRID_MODES:
        raise UsageError("--seed only applies to --wrong/--right/--random/--samples", hint=f"drop --seed for --{mode}")
    if dataset is not None and mode in ("history", "summary"):
        raise UsageError(f"--dataset does not apply to --{mode}", hint="drop --dataset")
    if save is not None and mode == "history" and save.suffix.lower() == ".csv":
        check_output_path(save, "--save")  # the run's metrics.csv, not a figure
    elif save is not None:
        check_figure_path(save, "--save")  # before predicting 10,000 test digits, not after
    from mnistctl.data.spec import get_dataset, same_task
    from mnistctl.registry import Registry

    if dataset is not None:
        get_dataset(dataset)  # an unknown name is a usage error before anything is loaded
    registry = Registry()
    if mode == "samples":
        _show_samples(samples or 0, seed, save, json_output, dataset or "mnist")
        return
    version = registry.resolve(model)
    if dataset is not None and not same_task(dataset, version.dataset):
        raise UsageError(
            f"{version.ref} was trained on {version.dataset}, not {dataset}: its labels mean other things there",
            hint=f'drop --dataset, or score it anyway with "mnistctl evaluate --dataset {dataset} --any-dataset"',
        )
    announce_model(version.ref)
    shown = dataset or version.dataset  # another data set of the same task (QMNIST for MNIST), or its own
    if mode == "summary":
        _show_summary(version, json_output)
    elif mode == "history":
        _show_history(registry, version, save, json_output)
    elif mode == "confusion":
        _show_confusion(version, save, json_output, shown)
    else:
        _show_predictions(registry, version, mode, modes[mode] or 0, seed, save, json_output, shown)


def _show_predictions(
    registry: "Registry",
    version: "ModelVersion",
    mode: str,
    count: int,
    seed: int | None,
    save: Path | None,
    as_json: bool,
    dataset: str,
) -> None:
    import numpy as np

    from mnistctl.data.loader import load
    from mnistctl.inference import Predictor

    images, labels = load("test", dataset=dataset)
    probabilities = Predictor(registry, version).predict(images)
    predicted = probabilities.argmax(axis=1)
    if mode == "wrong":
        candidates = np.flatnonzero(predicted != labels)
    elif mode == "right":
        candidates = np.flatnonzero(predicted == labels)
    else:
        candidates = np.arange(len(labels))
        seed = 0 if seed is None else seed
    picked = _choose(candidates, count, seed)
    if len(picked) < count:
        hint(f"only {len(picked)} {mode} test images for {version.ref}")
    records = [
        {
            "index": int(i),
            "label": int(labels[i]),
            "predicted": int(predicted[i]),
            "confidence": float(probabilities[i, predicted[i]]),
        }
        for i in picked
    ]
    names = version.class_names
    if names:
        for record in records:
            record |= {"label_name": names[record["label"]], "predicted_name": names[record["predicted"]]}
    titles = [f"Predicted {version.label(r['predicted'])}, Class {version.label(r['label'])}" for r in records]
    colours = ["red" if r["predicted"] != r["label"] and mode == "random" else "black" for r in records]
    document = {"model": version.ref, "mode": mode, "dataset": dataset, "digits": records}
    _output_grid(images[picked], titles, colours, save, as_json, document)


def _show_samples(count: int, seed: int | None, save: Path | None, as_json: bool, dataset: str) -> None:
    import numpy as np

    from mnistctl.data.loader import load
    from mnistctl.data.spec import get_dataset

    images, labels = load("train", dataset=dataset)
    table = get_dataset(dataset)
    names = None if table.digits else list(table.classes)
    picked = _choose(np.arange(len(labels)), count, seed)
    records = [{"index": int(i), "label": int(labels[i])} for i in picked]
    if names:
        for record in records:
            record["label_name"] = names[record["label"]]
    titles = [f"Class {names[r['label']] if names else r['label']}" for r in records]
    document = {"mode": "samples", "dataset": dataset, "digits": records}
    _output_grid(images[picked], titles, ["black"] * len(records), save, as_json, document)


def _output_grid(
    images: "np.ndarray", titles: list[str], colours: list[str], save: Path | None, as_json: bool, document: dict
) -> None:
    if save is not None and len(images):
        from mnistctl.plots import digit_grid

        digit_grid(images, titles, save, title_colors=colours)
        document["saved"] = str(save)
        if not as_json:
            print(f"wrote {len(images)} digits to {printable(str(save))}")
    if as_json:
        print_json(document)
        return
    if save is None:
        from mnistctl.plots import grid_shape
        from mnistctl.render import digit_gallery, uses_colour

        console = stdout_console()
        if not len(images):
            hint("nothing to show")
            return
        columns = min(grid_shape(len(images))[1], max(1, console.width // 31))
        console.print(digit_gallery(images, titles, colour=uses_colour(console), columns=columns))


def _show_confusion(version: "ModelVersion", save: Path | None, as_json: bool, dataset: str) -> None:
    from mnistctl.evaluation import evaluate_version

    report = evaluate_version(version.ref, "test", record=False, dataset=dataset)
    matrix = report.result.confusion
    names = version.class_names
    if save is not None:
        from mnistctl.plots import confusion_heatmap

        confusion_heatmap(matrix, save, title=f"{version.ref} on {report.dataset} test", names=names)
    if as_json:
        print_json({"model": version.ref, "confusion": matrix.tolist(), **({"saved": str(save)} if save else {})})
    elif save is not None:
        print(f"wrote the confusion heatmap to {printable(str(save))}")
    else:
        from mnistctl.render import confusion_table

        what = "class" if names else "digit"
        title = f"{version.ref}: rows true {what}, columns predicted"
        stdout_console().print(confusion_table(matrix, title=title, names=names))


def _show_history(registry: "Registry", version: "ModelVersion", save: Path | None, as_json: bool) -> None:
    if "history.json" not in version.artifacts:
        raise UsageError(f"{version.ref} has no training history (it was imported)")
    recorded = json.loads(registry.artifact(version, "history.json"))
    history = recorded["history"]
    as_csv = save is not None and save.suffix.lower() == ".csv"
    if as_csv:
        from mnistctl.fsutil import atomic_write_bytes

        if METRICS_CSV in version.artifacts:
            table = registry.artifact(version, METRICS_CSV)
        else:  # versions from before metrics.csv: the same table from history.json, without learning rates
            epochs = max((len(values) for values in history.values()), default=0)
            table = metrics_table(history, recorded.get("epoch_seconds") or [], [], epochs).encode()
        atomic_write_bytes(save, table)
    elif save is not None:
        from mnistctl.plots import training_curves

        training_curves(history, save, title=f"{version.ref} ({version.arch})")
    if as_json:
        print_json({"model": version.ref, "history": history, **({"saved": str(save)} if save else {})})
    elif as_csv:
        print(f"wrote the metrics of each epoch to {printable(str(save))}")
    elif save is not None:
        print(f"wrote training curves to {printable(str(save))}")
    else:
        keys = [k for k in ("loss", "accuracy", "val_loss", "val_accuracy") if k in history]
        epochs = len(history[keys[0]]) if keys else 0
        print_table(None, ("epoch", *keys), [(e + 1, *(f"{history[k][e]:.4f}" for k in keys)) for e in range(epochs)])


def _show_summary(version: "ModelVersion", as_json: bool) -> None:
    if as_json:
        print_json({"model": version.ref, "layers": version.layers})
        return
    rows = [
        (layer["name"], layer["type"], str(tuple(layer["output_shape"] or ())), f"{layer['params']:,}")
        for layer in version.layers
    ]
    rows.append(("total", "", "", f"{sum(layer['params'] for layer in version.layers):,}"))
    print_table(None, ("layer", "type", "output shape", "params"), rows)
