"""Shared output helpers: results to stdout (Rich table on a terminal, plain text otherwise, or JSON),
progress and hints to stderr. ``NO_COLOR`` is honoured by Rich itself.
"""

from __future__ import annotations

import os
import sys
import unicodedata
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mnistctl.errors import UsageError
from mnistctl.jsonsafe import strict_dumps

if TYPE_CHECKING:
    from rich.console import Console

# Control, format (e.g. right-to-left overrides), surrogate (undecodable bytes) and line/paragraph separators.
_ESCAPED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})
# Rich lays tables out to the terminal's width; below this (COLUMNS=0, say) cells fold to nothing.
MIN_WIDTH = 40
NAME_MAX = 255  # bytes in one file name on Linux and macOS file systems


def printable(text: str) -> str:
    """``text`` with its control characters written as escapes (``\\n``, ``\\t``, ``\\x1b``, ``\\u202e``), so a file
    name shown in plain text or a table cannot start a line, split a column or drive the terminal."""
    if text.isprintable():
        return text
    return "".join(
        character.encode("unicode_escape").decode("ascii")
        if unicodedata.category(character) in _ESCAPED_CATEGORIES
        else character
        for character in text
    )


def stdout_console() -> Console:
    from rich.console import Console

    return _sane_width(Console(highlight=False, soft_wrap=False))


def stderr_console() -> Console:
    from rich.console import Console

    return _sane_width(Console(stderr=True, highlight=False))


def _sane_width(console: Console) -> Console:
    """``console``, at least ``MIN_WIDTH`` wide: a COLUMNS of 0 or 5 is ignored for the terminal's own width (80
    where it reports none), so results are never folded away to nothing."""
    if console.width < MIN_WIDTH:
        columns = 0
        for descriptor in (1, 2, 0):
            try:
                columns = os.get_terminal_size(descriptor).columns
                break
            except (OSError, ValueError):
                continue
        console.width = max(MIN_WIDTH, columns or 80)
    return console


def print_json(document: Any) -> None:
    """One JSON document on stdout; NaN and infinities are written as null (strict parsers reject NaN)."""
    sys.stdout.write(strict_dumps(document, indent=2) + "\n")


def hint(message: str) -> None:
    """A hint or note for a person, on stderr."""
    print(message, file=sys.stderr)


def print_table(title: str | None, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """A Rich table when stdout is a terminal, tab-free aligned plain text otherwise.

    Cells are shown as they are (never read as Rich markup), control characters escaped (see ``printable``)."""
    if sys.stdout.isatty():
        from rich import box
        from rich.table import Table
        from rich.text import Text

        table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, show_header=any(columns))
        last = len(columns) - 1
        for index, column in enumerate(columns):
            # Keep cells whole; only the last (usually a path or URL) may fold onto more lines.
            table.add_column(column, no_wrap=index != last, overflow="fold")
        for row in rows:
            table.add_row(*(Text(printable(str(cell))) for cell in row))
        stdout_console().print(table)
        return
    cells = [list(columns)] if any(columns) else []
    cells += [[printable(str(cell)) for cell in row] for row in rows]
    if not cells:
        return
    widths = [max(len(row[i]) for row in cells) for i in range(len(columns))]
    for row in cells:
        sys.stdout.write("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() + "\n")


def check_figure_path(path: Path, option: str) -> None:
    """Refuse, before any work, a figure file that could not be written: no file name, an unsupported suffix,
    an existing folder or other non-regular file, a name too long, or a parent that cannot be made a folder."""
    from mnistctl.plots import figure_format

    if path.name in ("", ".", ".."):
        raise UsageError(f"{option} needs a file name", hint=f"e.g. {option} figure.png")
    figure_format(path)
    check_output_path(path, option)


def check_output_path(path: Path, option: str) -> None:
    """``check_figure_path`` for any file: a name, not too long, not a folder or a device, in a usable folder."""
    if path.name in ("", ".", ".."):
        raise UsageError(f"{option} needs a file name", hint=f"e.g. {option} history.csv")
    if len(os.fsencode(path.name)) > NAME_MAX:
        raise UsageError(f"the file name {printable(path.name[:40])}… is too long", hint="choose a shorter one")
    try:
        _check_writable(path, option)
    except OSError as exc:  # a path too long in all, a loop of links, a folder that cannot be searched
        reason = exc.strerror or str(exc)
        raise UsageError(f"cannot write {printable(str(path))}: {reason}", hint="choose another path") from exc


def _check_writable(path: Path, option: str) -> None:
    """The checks of ``check_figure_path`` that look at the file system."""
    shown = printable(str(path))
    if path.is_dir():
        raise UsageError(f"{shown} is a folder", hint=f"name a file inside it, e.g. {option} {shown}/figure.png")
    if path.exists() and not path.is_file():
        # The figure is renamed over its target: a pipe or a device (as root, even /dev/null) would be replaced.
        raise UsageError(f"{shown} is not a regular file", hint="name a new or an ordinary file")
    for folder in (path.parent, *path.parent.parents):
        if folder.is_dir():
            if not os.access(folder, os.W_OK | os.X_OK):
                raise UsageError(f"cannot write in {printable(str(folder))}", hint="choose a folder you can write to")
            return
        if folder.exists() or folder.is_symlink():
            kind = "a file, not a folder" if folder.is_file() else "not a folder"
            raise UsageError(
                f"cannot write {shown}: {printable(str(folder))} is {kind}", hint="choose another folder for it"
            )


def check_distinct(*outputs: tuple[str, Path | None]) -> None:
    """Refuse two options that name the same output file (the second would overwrite the first)."""
    seen: dict[Path, str] = {}
    for option, path in outputs:
        if path is None:
            continue
        key = path.expanduser().resolve()  # "a.png", "./a.png" and "x/../a.png" are one file
        if key in seen:
            raise UsageError(f"{seen[key]} and {option} name the same file", hint="give each its own file name")
        seen[key] = option


def announce_model(ref: str) -> None:
    """``model: REF`` on stderr when stdout is piped, so a script's log says which model answered (a terminal
    shows it in the table's title; ``--json`` documents carry it too)."""
    if not sys.stdout.isatty():
        print(f"model: {ref}", file=sys.stderr)
