"""``mnistctl evaluate``: accuracy, loss, how many mistakes the low-confidence flag marks, per-class
precision/recall/F1 and a confusion table.

On an MNIST split, or with ``--data DIR`` on a labelled folder (``DIR/<digit>/*.png``) preprocessed as
``predict`` does, adding the calibration error, skipped files and the most confident mistakes.
"""

from dataclasses import asdict
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from mnistctl.cli import env_read_by_library
from mnistctl.cli._output import (
    check_distinct,
    check_figure_path,
    hint,
    print_json,
    print_table,
    printable,
    stdout_console,
)
from mnistctl.errors import UsageError
from mnistctl.paths import ENV_MODEL

if TYPE_CHECKING:
    from mnistctl.evaluation import FolderReport
    from mnistctl.metrics import Evaluation
    from mnistctl.registry import ModelVersion

ModelOption = Annotated[
    str | None,
    typer.Option(
        "--model",
        "-m",
        metavar="REF",
        help='NAME, NAME:VERSION or NAME@ALIAS (default: MNISTCTL_MODEL, then "models default", then the newest).',
        envvar=ENV_MODEL,
        show_envvar=True,
        callback=env_read_by_library,
    ),
]
WORST_SHOWN = 5  # mistakes listed in the text output; --json and --save-worst take --worst
SKIPPED_SHOWN = 10


class Split(str, Enum):
    test = "test"
    train = "train"


def evaluate(
    model: ModelOption = None,
    split: Annotated[
        Split | None, typer.Option(help="Which MNIST images to evaluate on (default: test).", show_default=False)
    ] = None,
    data: Annotated[
        Path | None,
        typer.Option("--data", metavar="DIR", help="A labelled folder, DIR/<digit>/*.png, instead of MNIST."),
    ] = None,
    raw: Annotated[
        bool, typer.Option("--raw", help="With --data: images are already MNIST-style 28x28, skip preprocessing.")
    ] = False,
    save_worst: Annotated[
        Path | None,
        typer.Option(
            "--save-worst", metavar="FILE", help="With --data: draw the worst mistakes, as given and as seen."
        ),
    ] = None,
    worst: Annotated[
        int | None,
        typer.Option(
            "--worst", min=1, max=400, metavar="N", help="With --data: how many worst mistakes (default: 16)."
        ),
    ] = None,
    save_confusion: Annotated[
        Path | None, typer.Option("--save-confusion", metavar="FILE", help="Also draw the confusion heatmap (PNG).")
    ] = None,
    dataset: Annotated[
        str | None,
        typer.Option(
            "--dataset",
            metavar="NAME",
            help="Evaluate on this data set's split (default: the one the model was trained on; an MNIST model"
            " also on qmnist, whose test split holds 60,000 digits).",
            show_default=False,
        ),
    ] = None,
    any_dataset: Annotated[
        bool,
        typer.Option(
            "--any-dataset",
            help="Allow a --dataset whose labels mean other things than the model's own (fashion-mnist for a"
            " digit model).",
        ),
    ] = False,
    json_output: Annotated[bool, typer.Option("--json", help="Print one JSON document.")] = False,
) -> None:
    """Evaluate a model on MNIST or on a labelled folder of images.

    Accuracy, loss, the wrong and right answers flagged as low confidence, per-class table, confusion table,
    most confused pairs.
    """
    if data is not None:
        if dataset is not None or any_dataset:
            raise UsageError("--data and --dataset are alternatives", hint="evaluate on a folder or on a data set")
        if split is not None:
            raise UsageError("--data and --split are alternatives", hint="evaluate on a folder or on an MNIST split")
        _check_figures(save_worst, save_confusion)
        _evaluate_folder(model, data, raw, save_worst, worst, save_confusion, json_output)
        return
    inspect_hint = 'for MNIST\'s own mistakes use "mnistctl inspect --wrong N --save FILE"'
    for flag, value, why in (
        ("--raw", raw or None, "MNIST splits are never preprocessed"),
        ("--save-worst", save_worst, inspect_hint),
        ("--worst", worst, inspect_hint),
    ):
        if value is not None:
            raise UsageError(f"{flag} works with --data DIR", hint=why)
    _check_figures(None, save_confusion)
    from mnistctl.evaluation import evaluate_version, record_evaluation

    report = evaluate_version(
        model, (split or Split.test).value, record=False, dataset=dataset, any_dataset=any_dataset
    )
    result = report.result
    names = report.version.class_names
    _save_confusion(result, save_confusion, f"{report.version.ref} on {report.split}", names)
    _note_unrecorded(report.version, record_evaluation(report))  # only once the figure is written
    if json_output:
        print_json(
            {
                "model": report.version.ref,
                "split": report.split,
                "dataset": report.dataset,
                "images": report.images,
                "backend": report.backend,
                "seconds": round(report.seconds, 3),
                "calibration_error": report.calibration_error,
                **_metrics_json(result, names),
            }
        )
        return
    split_text = report.split if report.dataset == "mnist" else f"{report.dataset} {report.split}"
    print(
        f"{report.version.ref} on {report.images:,} {split_text} {_plural(report.images, 'image')}: "
        f"accuracy {result.accuracy:.4f}, "
        f"loss {result.loss:.4f}, calibration error {report.calibration_error:.4f} "
        f"({report.backend}, {report.seconds:.2f} s)"
    )
    print(_flagged_line(result))
    _print_metrics(result, names)


def _evaluate_folder(
    model: str | None,
    data: Path,
    raw: bool,
    save_worst: Path | None,
    worst: int | None,
    save_confusion: Path | None,
    json_output: bool,
) -> None:
    from mnistctl.evaluation import WORST_COUNT, evaluate_folder, record_evaluation, save_worst_grid

    report = evaluate_folder(model, data, raw=raw, worst=worst or WORST_COUNT, record=False)
    if report.folder.ignored:
        ignored = report.folder.ignored
        hint(f"ignored {_files(len(ignored))} without an image suffix (e.g. {printable(ignored[0].as_posix())})")
    _save_confusion(report.result, save_confusion, f"{report.version.ref} on {data}")
    if save_worst is not None:
        save_worst_grid(report, save_worst)
        what = f"{len(report.worst)} worst mistakes" if report.worst else "no mistakes to draw (figure says so)"
        hint(f"{what} written to {printable(str(save_worst))}")
    _note_unrecorded(report.version, record_evaluation(report))  # only once the figures are written
    if json_output:
        print_json(_folder_json(report))
        return
    _print_folder(report, data)


def _check_figures(save_worst: Path | None, save_confusion: Path | None) -> None:
    """Every figure path is checked before any work: a bad one fails now, not after scoring thousands of images
    (and before anything is recorded)."""
    for option, path in (("--save-worst", save_worst), ("--save-confusion", save_confusion)):
        if path is not None:
            check_figure_path(path, option)
    check_distinct(("--save-worst", save_worst), ("--save-confusion", save_confusion))


def _plural(count: int, word: str) -> str:
    return word if count == 1 else f"{word}s"


def _files(count: int) -> str:
    return f"{count:,} {_plural(count, 'file')}"


def _images(count: int) -> str:
    return f"{count:,} {_plural(count, 'image')}"


def _save_confusion(result: "Evaluation", path: Path | None, title: str, names: list[str] | None = None) -> None:
    if path is None:
        return
    from mnistctl.plots import confusion_heatmap

    confusion_heatmap(result.confusion, path, title=title, names=names)
    hint(f"confusion heatmap written to {printable(str(path))}")


def _metrics_json(result: "Evaluation", names: list[str] | None = None) -> dict[str, Any]:
    return {
        "accuracy": result.accuracy,
        "loss": result.loss,
        "per_class": [
            {"digit": c.digit, "precision": c.precision, "recall": c.recall, "f1": c.f1, "support": c.support}
            | ({"label": names[c.digit]} if names else {})
            for c in result.per_class
        ],
        "low_confidence": asdict(result.flagged),
        "confusion": result.confusion.tolist(),
        "most_confused": [{"true": t, "predicted": p, "count": n} for t, p, n in result.most_confused()],
    }


def _flagged_line(result: "Evaluation") -> str:
    """E.g. "flagged low confidence (below 90%): 45 of 54 wrong answers, 157 of 9,946 right ones"."""
    flagged = result.flagged
    return (
        f"flagged low confidence (below {flagged.below:.0%}): {flagged.wrong_flagged:,} of {flagged.wrong:,} wrong "
        f"{_plural(flagged.wrong, 'answer')}, {flagged.right_flagged:,} of {flagged.right:,} right "
        f"{_plural(flagged.right, 'one')}"
    )


def _folder_json(report: "FolderReport") -> dict[str, Any]:
    return {
        "model": report.version.ref,
        "data": str(report.folder.root.resolve()),
        "raw": report.raw,
        "images": report.images,
        "backend": report.backend,
        "seconds": round(report.seconds, 3),
        "calibration_error": report.calibration_error,
        **_metrics_json(report.result),
        "skipped": [{"file": file.as_posix(), "error": error} for file, error in report.skipped],
        "worst": [
            {"file": m.file.as_posix(), "label": m.label, "digit": m.digit, "confidence": m.confidence}
            for m in report.worst
        ],
    }


def _print_folder(report: "FolderReport", data: Path) -> None:
    result = report.result
    print(
        f"{report.version.ref} on {_images(report.images)} in {printable(str(data))}: accuracy {result.accuracy:.4f}, "
        f"loss {result.loss:.4f}, calibration error {report.calibration_error:.4f} "
        f"({report.backend}, {report.seconds:.2f} s)"
    )
    print(_flagged_line(result))
    if report.skipped:
        print(f"{_files(len(report.skipped))} skipped (unreadable, or no digit found):")
        for file, error in report.skipped[:SKIPPED_SHOWN]:
            # Most reasons already start with the file's name ("3/x.png is not an image ..."): not twice.
            named = error if error.startswith(file.as_posix()) else f"{file.as_posix()}: {error}"
            print(f"  {printable(named)}")
        if len(report.skipped) > SKIPPED_SHOWN:
            print(f"  … and {len(report.skipped) - SKIPPED_SHOWN:,} more (--json lists them all)")
    _print_metrics(result)
    if not report.worst:
        print("\nworst mistakes: none")
        return
    from mnistctl.evaluation import percent

    print(f"\nworst mistakes (wrong and sure; {len(report.worst)} in --json and --save-worst):")
    rows = [(m.file.as_posix(), m.label, m.digit, percent(m.confidence, 1)) for m in report.worst[:WORST_SHOWN]]
    print_table(None, ("file", "label", "predicted", "confidence"), rows)


def _print_metrics(result: "Evaluation", names: list[str] | None = None) -> None:
    """Per-class table, confusion table and the most confused pairs; classes named where ``names`` are given
    (a model whose classes are not digits, such as Fashion-MNIST's "Sneaker")."""
    from mnistctl.render import class_label

    what = "class" if names else "digit"
    print()
    rows = [
        (class_label(c.digit, names), f"{c.precision:.4f}", f"{c.recall:.4f}", f"{c.f1:.4f}", f"{c.support:,}")
        for c in result.per_class
    ]
    print_table(None, (what, "precision", "recall", "f1", "support"), rows)
    print()
    console = stdout_console()
    if console.is_terminal:
        from mnistctl.render import confusion_table

        title = f"confusion (rows: true {what}, columns: predicted)"
        console.print(confusion_table(result.confusion, title=title, names=names))
    else:
        header = ["true\\pred", *map(str, range(10))]
        table = [[class_label(t, names), *map(str, row)] for t, row in enumerate(result.confusion.tolist())]
        print_table(None, header, table)
    pairs = ", ".join(
        f"{names[t] if names else t} as {names[p] if names else p} ({n})" for t, p, n in result.most_confused()
    )
    print(f"\nmost confused: {pairs or 'none'}")


def _note_unrecorded(version: "ModelVersion", recorded: bool) -> None:
    if not recorded and not version.builtin:
        hint(f"note: not recorded against {version.ref}: the home folder is read-only")
