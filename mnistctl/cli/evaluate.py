"""``mnistctl evaluate``: accuracy, loss, per-class precision/recall/F1 and a confusion table."""

from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from mnistctl.cli._output import hint, print_json, print_table, stdout_console

ModelOption = Annotated[
    str | None,
    typer.Option("--model", "-m", metavar="REF", help="NAME, NAME:VERSION or NAME@ALIAS (default: the newest)."),
]


class Split(str, Enum):
    test = "test"
    train = "train"


def evaluate(
    model: ModelOption = None,
    split: Annotated[Split, typer.Option(help="Which images to evaluate on.")] = Split.test,
    save_confusion: Annotated[
        Path | None, typer.Option("--save-confusion", metavar="FILE", help="Also draw the confusion heatmap (PNG).")
    ] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print one JSON document.")] = False,
) -> None:
    """Evaluate a model: accuracy, loss, per-class table, confusion table, most confused pairs."""
    from mnistctl.evaluation import evaluate_version

    report = evaluate_version(model, split.value)
    result = report.result
    if save_confusion is not None:
        from mnistctl.plots import confusion_heatmap

        confusion_heatmap(result.confusion, save_confusion, title=f"{report.version.ref} on {report.split}")
        hint(f"confusion heatmap written to {save_confusion}")
    if json_output:
        print_json(
            {
                "model": report.version.ref,
                "split": report.split,
                "images": report.images,
                "backend": report.backend,
                "seconds": round(report.seconds, 3),
                "accuracy": result.accuracy,
                "loss": result.loss,
                "per_class": [
                    {"digit": c.digit, "precision": c.precision, "recall": c.recall, "f1": c.f1, "support": c.support}
                    for c in result.per_class
                ],
                "confusion": result.confusion.tolist(),
                "most_confused": [{"true": t, "predicted": p, "count": n} for t, p, n in result.most_confused()],
            }
        )
        return
    print(
        f"{report.version.ref} on {report.images:,} {report.split} images: accuracy {result.accuracy:.4f}, "
        f"loss {result.loss:.4f} ({report.backend}, {report.seconds:.2f} s)"
    )
    print()
    rows = [
        (c.digit, f"{c.precision:.4f}", f"{c.recall:.4f}", f"{c.f1:.4f}", f"{c.support:,}") for c in result.per_class
    ]
    print_table(None, ("digit", "precision", "recall", "f1", "support"), rows)
    print()
    console = stdout_console()
    if console.is_terminal:
        from mnistctl.render import confusion_table

        console.print(confusion_table(result.confusion, title="confusion (rows: true digit, columns: predicted)"))
    else:
        header = ["true\\pred", *map(str, range(10))]
        print_table(None, header, [[str(t), *map(str, row)] for t, row in enumerate(result.confusion.tolist())])
    pairs = ", ".join(f"{t} as {p} ({n})" for t, p, n in result.most_confused())
    print(f"\nmost confused: {pairs or 'none'}")
