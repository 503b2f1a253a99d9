"""Shared output helpers: results to stdout (Rich table on a terminal, plain text otherwise, or JSON),
progress and hints to stderr. ``NO_COLOR`` is honoured by Rich itself.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from mnistctl.jsonsafe import json_safe

if TYPE_CHECKING:
    from rich.console import Console


def stdout_console() -> Console:
    from rich.console import Console

    return Console(highlight=False, soft_wrap=False)


def stderr_console() -> Console:
    from rich.console import Console

    return Console(stderr=True, highlight=False)


def print_json(document: Any) -> None:
    """One JSON document on stdout; NaN and infinities are written as null (strict parsers reject NaN)."""
    sys.stdout.write(json.dumps(json_safe(document), indent=2, allow_nan=False) + "\n")


def hint(message: str) -> None:
    """A hint or note for a person, on stderr."""
    print(message, file=sys.stderr)


def print_table(title: str | None, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """A Rich table when stdout is a terminal, tab-free aligned plain text otherwise."""
    if sys.stdout.isatty():
        from rich import box
        from rich.table import Table

        table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, show_header=any(columns))
        last = len(columns) - 1
        for index, column in enumerate(columns):
            # Keep cells whole; only the last (usually a path or URL) may fold onto more lines.
            table.add_column(column, no_wrap=index != last, overflow="fold")
        for row in rows:
            table.add_row(*(str(cell) for cell in row))
        stdout_console().print(table)
        return
    cells = [list(columns)] if any(columns) else []
    cells += [[str(cell) for cell in row] for row in rows]
    if not cells:
        return
    widths = [max(len(row[i]) for row in cells) for i in range(len(columns))]
    for row in cells:
        sys.stdout.write("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() + "\n")


def announce_model(ref: str) -> None:
    """``model: REF`` on stderr when stdout is piped, so a script's log says which model answered (a terminal
    shows it in the table's title; ``--json`` documents carry it too)."""
    if not sys.stdout.isatty():
        print(f"model: {ref}", file=sys.stderr)
