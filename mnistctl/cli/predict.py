"""``mnistctl predict``: digits in image files, folders, globs or stdin, through LiteRT (no TensorFlow)."""

import functools
import sys
from pathlib import Path
from typing import Annotated

import typer

from mnistctl.cli._output import announce_model, print_json, printable, stdout_console
from mnistctl.cli.evaluate import ModelOption
from mnistctl.data.folder import IMAGE_SUFFIXES, files_below

GLOB_CHARS = set("*?[")


def expand_paths(arguments: list[str]) -> list[tuple[str, Path | None, str | None]]:
    """(display name, path or None for stdin, error) for every image the arguments name, in order."""
    found: list[tuple[str, Path | None, str | None]] = []
    for argument in arguments:
        if argument == "-":
            found.append(("-", None, None))
            continue
        path = Path(argument).expanduser()
        try:
            found += _entries_for(argument, path)
        except OSError as exc:  # e.g. a name too long for the file system: that argument's row, not the whole run
            found.append((argument, None, f"cannot read this path ({exc.strerror or exc})"))
    return found


def _entries_for(argument: str, path: Path) -> list[tuple[str, Path | None, str | None]]:
    """The images one argument names: a folder's (recursively), a file, or a glob's matches."""
    if path.is_dir():
        images = [p for p in files_below(path) if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES]
        if not images:
            return [(argument, None, f"no images in folder (looked for {', '.join(sorted(IMAGE_SUFFIXES))})")]
        return [(str(p), p, None) for p in images]
    if path.is_file() or (path.exists() and not GLOB_CHARS & set(argument)):
        # Not a regular file (a pipe, a device, a <(...) substitution): the decoder says why it is refused.
        return [(argument, path, None)]
    if GLOB_CHARS & set(argument):
        import glob

        matches = sorted(Path(m) for m in glob.glob(str(path), recursive=True) if Path(m).is_file())
        return [(str(m), m, None) for m in matches] or [(argument, None, "no file matches this pattern")]
    return [(argument, None, "no such file or folder")]


def with_stdin(
    entries: list[tuple[str, Path | None, str | None]],
) -> list[tuple[str, Path | bytes | None, str | None]]:
    """``entries`` with the image bytes on stdin in place of each "-" (read up to the byte limit), or the error
    that stopped the reading: an error row, like any other unreadable image."""
    from mnistctl.preprocess.decode import InvalidImageError, read_capped

    found: list[tuple[str, Path | bytes | None, str | None]] = []
    for name, path, error in entries:
        if name != "-" or path is not None or error:
            found.append((name, path, error))
        elif sys.stdin is None or sys.stdin.isatty():  # waiting for a person to type a PNG would look like a hang
            found.append((name, None, "stdin is a terminal, not an image; pipe one in: mnistctl predict - < digit.png"))
        else:
            try:
                found.append((name, read_capped(sys.stdin.buffer, name), None))
            except InvalidImageError as exc:
                found.append((name, None, str(exc)))
    return found


def predict(
    paths: Annotated[list[str], typer.Argument(metavar="PATH...", help="Image files, folders, globs, or - for stdin.")],
    model: ModelOption = None,
    top_k: Annotated[
        int, typer.Option("--top-k", "-k", min=1, max=10, metavar="K", help="Show the K best digits.")
    ] = 3,
    raw: Annotated[
        bool, typer.Option("--raw", help="Images are already MNIST-style 28x28: skip preprocessing.")
    ] = False,
    show: Annotated[
        bool, typer.Option("--show", help="Draw the 28x28 input the model saw (the strokes kept).")
    ] = False,
    min_confidence: Annotated[
        float | None,
        typer.Option(
            "--min-confidence",
            min=0.0,
            max=1.0,
            metavar="P",
            help="Answers below this calibrated confidence become 'unsure' rows: digit null in --json, the best"
            " guess kept as best_guess. Unsure rows do not change the exit code (0), unlike unreadable images.",
        ),
    ] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print one JSON document.")] = False,
) -> None:
    """Recognise handwritten digits in images, photos and scans.

    Crops of forms work too.

    Confidences are calibrated probabilities; below 0.9 they are flagged as low. An image with no
    digit-like strokes (only lines, specks or printed text) is an error row, not a guess.
    """
    from mnistctl.inference import Predictor
    from mnistctl.prediction import predict_rows, public
    from mnistctl.registry import Registry

    registry = Registry()
    version = registry.resolve(model)
    announce_model(version.ref)
    entries = with_stdin(expand_paths(paths))

    @functools.cache
    def predictor() -> Predictor:
        # Built only when some image could be read (a damaged version still lists unreadable files as error
        # rows), and once: the second look asks again.
        return Predictor(registry, version)

    rows = predict_rows(
        entries,
        lambda batch: predictor().predict(batch),
        raw=raw,
        top_k=top_k,
        min_confidence=min_confidence,
        classes=version.class_names,
    )
    if json_output:
        print_json({"model": version.ref, "results": [public(row) for row in rows]})
    else:
        _print_rows(rows, version.ref, show)
    if any("error" in row for row in rows):
        raise typer.Exit(1)


_WIDE_ENOUGH = 110  # terminal columns for two readings side by side and the table's other columns beside them


def _print_rows(rows: list[dict], model_ref: str, show: bool) -> None:
    from rich import box
    from rich.table import Table
    from rich.text import Text

    from mnistctl.prediction import readings_picture
    from mnistctl.render import digit_text, uses_colour

    console = stdout_console()
    colour = uses_colour(console)
    # A file name is shown, never obeyed: no newline or tab of its own starts a row or a column, no "[red]" is markup.
    if not console.is_terminal:
        for row in rows:
            if "error" in row:
                print(f"{printable(row['file'])}\terror: {printable(row['error'])}")
                continue
            if show:
                print(digit_text(readings_picture(row["_readings"]), colour=False).plain)
            flag = "\tlow confidence" if row["low_confidence"] else ""
            top = " ".join(f"{d}:{p:.3f}" for d, p in row["top_k"])
            digit = "unsure" if row.get("unsure") else row.get("label", row["digit"])
            print(f"{printable(row['file'])}\t{digit}\t{row['confidence']:.3f}\t{top}{flag}")
        return
    table = Table(title=f"model {model_ref}", title_justify="left", box=box.SIMPLE_HEAD)
    if show:
        table.add_column("input", no_wrap=True)
    # Two readings side by side take 58 columns: on a narrow terminal, one above the other leaves room for the rest.
    across = console.width >= _WIDE_ENOUGH
    for column in ("file", "digit", "confidence", "top k"):
        table.add_column(column, overflow="fold")
    for row in rows:
        picture = [""] if show else []
        if show and "_readings" in row:
            picture = [digit_text(readings_picture(row["_readings"], across), colour=colour)]
        file = Text(printable(row["file"]))
        if "error" in row:
            error = Text(printable(row["error"]), style="red")
            table.add_row(*picture, file, Text("error", style="bold red"), "", error)
            continue
        low = row["low_confidence"]
        confidence = Text(f"{row['confidence']:.1%}" + (" (low)" if low else ""), style="yellow" if low else "green")
        top = ", ".join(f"{d} {p:.1%}" for d, p in row["top_k"])
        answer = f"{row['digit']} {row['label']}" if "label" in row else str(row["digit"])
        digit = Text("unsure", style="bold yellow") if row.get("unsure") else Text(answer, style="bold")
        table.add_row(*picture, file, digit, confidence, top)
    console.print(table)
