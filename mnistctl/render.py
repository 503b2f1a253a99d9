"""Rich renderables: confusion tables, per-class tables, and digits drawn in the terminal.

Digits use Unicode half blocks (two pixel rows per line, grey levels as colours) where the
terminal has colour, and an ASCII ramp otherwise (NO_COLOR, pipes, files).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

ASCII_RAMP = " .:-=+*#%@"


def uses_colour(console: Console) -> bool:
    return console.is_terminal and console.color_system is not None and not console.no_color


def digit_text(image: np.ndarray, *, colour: bool) -> Text:
    """An image (0..255, white ink) as text: a character per pixel across, a line per two rows (a 28x28 digit:
    14 lines of 28 characters; two readings side by side, 28x58: 14 lines of 58)."""
    from rich.style import Style
    from rich.text import Text

    pixels = np.clip(np.asarray(image, dtype=np.float32), 0, 255).astype(np.uint8)
    if pixels.shape[0] % 2:
        pixels = np.vstack([pixels, np.zeros((1, pixels.shape[1]), np.uint8)])
    text = Text(no_wrap=True)
    for line, (top, bottom) in enumerate(zip(pixels[0::2], pixels[1::2], strict=True)):
        if line:
            text.append("\n")
        if colour:
            for upper, lower in zip(top, bottom, strict=True):
                style = Style(color=f"rgb({upper},{upper},{upper})", bgcolor=f"rgb({lower},{lower},{lower})")
                text.append("▀", style=style)
        else:
            level = (top.astype(np.int32) + bottom) / 2 / 256 * len(ASCII_RAMP)
            text.append("".join(ASCII_RAMP[int(v)] for v in level))
    return text


def digit_gallery(images: np.ndarray, titles: list[str], *, colour: bool, columns: int) -> Table:
    """Digits side by side with a title under each, ``columns`` per row."""
    from rich import box
    from rich.table import Table
    from rich.text import Text

    table = Table(box=box.SIMPLE, show_header=False, padding=(0, 1))
    for _ in range(columns):
        table.add_column(no_wrap=True)
    cells = [
        Text.assemble(digit_text(image, colour=colour), "\n", title)
        for image, title in zip(images, titles, strict=True)
    ]
    for start in range(0, len(cells), columns):
        row = cells[start : start + columns]
        table.add_row(*row, *([""] * (columns - len(row))))
    return table


def class_label(index: int, names: list[str] | None = None) -> str:
    """Class ``index`` for a table's row: "7", or "7 Sneaker" for a model with named classes."""
    return f"{index} {names[index]}" if names else str(index)


def confusion_table(matrix: np.ndarray, title: str | None = None, names: list[str] | None = None) -> Table:
    """Rows true classes, columns predictions; the diagonal highlighted, errors shaded by count. With ``names``
    (a model whose classes are not digits) each row is named; columns keep the numbers, to stay narrow."""
    from rich import box
    from rich.table import Table
    from rich.text import Text

    off = matrix.copy()
    np.fill_diagonal(off, 0)
    worst = max(int(off.max()), 1)
    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD)
    table.add_column("true\\pred", justify="right", style="bold")
    for digit in range(matrix.shape[1]):
        table.add_column(str(digit), justify="right")
    for true in range(matrix.shape[0]):
        cells = []
        for predicted in range(matrix.shape[1]):
            count = int(matrix[true, predicted])
            if true == predicted:
                cells.append(Text(str(count), style="bold green"))
            elif count == 0:
                cells.append(Text("·", style="dim"))
            else:
                # Shade from pale to strong red as the cell approaches the largest error count.
                strength = 0.25 + 0.75 * count / worst
                red = int(255 * strength)
                cells.append(
                    Text(str(count), style=f"bold rgb({red},{int(80 * (1 - strength))},{int(80 * (1 - strength))})")
                )
        table.add_row(class_label(true, names), *cells)
    return table
