"""``mnistctl download``: fetch and verify MNIST from mirrors, or import an offline copy."""

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from mnistctl.cli import env_read_by_library
from mnistctl.cli._output import hint, print_json, print_table, stderr_console
from mnistctl.data.spec import DATASET_NAMES, get_dataset
from mnistctl.errors import UsageError
from mnistctl.paths import ENV_MIRROR

if TYPE_CHECKING:
    from mnistctl.data.download import DatasetResult
    from mnistctl.data.manifest import FileRecord
    from mnistctl.data.spec import DataFile


class RichDownloadProgress:
    """Draws one progress bar per file on stderr; silent when stderr is not a terminal."""

    def __init__(self) -> None:
        self._progress = None
        self._tasks: dict[str, int] = {}
        if sys.stderr.isatty():
            from rich.progress import (
                BarColumn,
                DownloadColumn,
                Progress,
                TextColumn,
                TimeRemainingColumn,
                TransferSpeedColumn,
            )

            self._progress = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                DownloadColumn(),
                TransferSpeedColumn(),
                TimeRemainingColumn(),
                console=stderr_console(),
                transient=False,
            )

    def __enter__(self) -> "RichDownloadProgress":
        if self._progress is not None:
            self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()

    def file_started(self, spec: "DataFile", source: str) -> None:
        if self._progress is None:
            return
        task = self._tasks.get(spec.name)
        if task is None:
            self._tasks[spec.name] = self._progress.add_task(spec.name, total=spec.size)
        else:
            self._progress.reset(task, total=spec.size)

    def advanced(self, spec: "DataFile", nbytes: int) -> None:
        if self._progress is not None:
            self._progress.advance(self._tasks[spec.name], nbytes)

    def restarted(self, spec: "DataFile") -> None:
        if self._progress is not None:
            self._progress.reset(self._tasks[spec.name], total=spec.size)

    def file_finished(self, spec: "DataFile") -> None:
        if self._progress is not None:
            self._progress.update(self._tasks[spec.name], completed=spec.size)

    def note(self, message: str) -> None:
        if self._progress is not None:
            self._progress.console.print(f"[dim]{message}[/dim]", markup=True, highlight=False)
        else:
            hint(message)


def download(
    mirror: Annotated[
        list[str] | None,
        typer.Option(
            "--mirror",
            metavar="URL",
            help="Try this mirror first (repeatable; a file:// URL or folder works).",
            envvar=ENV_MIRROR,
            show_envvar=True,
            callback=env_read_by_library,
        ),
    ] = None,
    from_path: Annotated[
        Path | None,
        typer.Option("--from", metavar="PATH", help="Import mnist.npz or a folder of the four IDX files instead."),
    ] = None,
    no_default_mirrors: Annotated[
        bool,
        typer.Option("--no-default-mirrors", help="Use only --mirror / MNISTCTL_MIRROR, never the public mirrors."),
    ] = False,
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="Fetch again even if verified files are present; with --from, let an unofficial copy replace them.",
        ),
    ] = False,
    timeout: Annotated[
        float, typer.Option(min=0.1, max=3600, metavar="SECONDS", help="Seconds to wait on a silent connection.")
    ] = 30.0,
    retries: Annotated[
        int, typer.Option(min=0, max=100, metavar="N", help="Retries per mirror after a transient failure.")
    ] = 3,
    min_speed: Annotated[
        float,
        typer.Option(
            min=0,
            max=1_000_000,
            metavar="KB/S",
            help="Try the next mirror when one averages less than this after 30 s (0: wait for any).",
        ),
    ] = 10.0,
    dataset: Annotated[
        str,
        typer.Option(
            "--dataset",
            metavar="NAME",
            help="Which data set: " + ", ".join(DATASET_NAMES) + " (kept in datasets/NAME).",
        ),
    ] = "mnist",
    json_output: Annotated[bool, typer.Option("--json", help="Print one JSON document.")] = False,
) -> None:
    """Fetch and verify MNIST, or import an offline copy.

    Downloads are sha256-verified and resume after a broken connection. --dataset fashion-mnist, kmnist or
    qmnist fetches that data set the same way from its official mirrors, into datasets/NAME.
    """
    if timeout != timeout:  # NaN passes every range check
        raise UsageError("--timeout must be a number of seconds, got nan")
    if min_speed != min_speed:
        raise UsageError("--min-speed must be a number of KB/s, got nan")
    if from_path is not None and (mirror or no_default_mirrors):
        raise UsageError("--from imports a local copy; drop --mirror and --no-default-mirrors")
    get_dataset(dataset)  # an unknown name is refused before anything else
    if from_path is not None:
        from mnistctl.data.importer import import_dataset

        result = import_dataset(from_path, force=force, on_wait=hint, dataset=dataset)
    else:
        from mnistctl.data.download import RetryPolicy
        from mnistctl.data.download import download as fetch

        with RichDownloadProgress() as progress:
            result = fetch(
                mirror or (),
                force=force,
                listener=progress,
                policy=RetryPolicy(timeout, retries, min_rate=min_speed * 1000),
                include_default_mirrors=not no_default_mirrors,
                dataset=dataset,
            )
    _report(result, json_output)


def _where(record: "FileRecord") -> str:
    """The mirror or file a record came from, without repeating the file's own name."""
    source = record.source
    return source[: -len(record.name)] if source.endswith("/" + record.name) else source


def _report(result: "DatasetResult", json_output: bool) -> None:
    if json_output:
        print_json(
            {
                "dataset": result.dataset,
                "dir": str(result.folder),
                "files": [
                    {
                        "name": item.record.name,
                        "sha256": item.record.sha256,
                        "bytes": item.record.bytes,
                        "source": item.record.source,
                        "status": item.status,
                        "official": item.record.official,
                    }
                    for item in result.files
                ],
            }
        )
        return
    rows = [(item.record.name, item.status, f"{item.record.bytes:,}", item.record.sha256[:16]) for item in result.files]
    print_table(None, ("file", "status", "bytes", "sha256"), rows)
    for where in dict.fromkeys(_where(item.record) for item in result.files):
        hint(f"from {where}")
    table = get_dataset(result.dataset)
    title = table.title
    unofficial = [item.record.name for item in result.files if not item.record.official]
    if unofficial and not table.content_pinned:
        hint(f"note: {', '.join(unofficial)} are not the official {title} .gz files (only those can be verified)")
    elif unofficial:
        hint(f"note: {', '.join(unofficial)} differ from the official {title}; results will not match published ones")
    hint(f"{title} ready in {result.folder}")
