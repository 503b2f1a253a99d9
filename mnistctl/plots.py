"""matplotlib figures (Agg backend, files only): digit grids, worst mistakes, confusion heatmap, training curves.

Every figure is written atomically: saved to a temp file beside the target, then renamed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from mnistctl.errors import UsageError
from mnistctl.fsutil import temp_path_for

if TYPE_CHECKING:
    from matplotlib.figure import Figure

FORMATS = ("png", "pdf", "svg", "jpg", "jpeg")
# Titles hold file and folder names: "$" there is a dollar sign, not the start of mathtext (which can fail to parse).
PLAIN = {"parse_math": False}


def grid_shape(count: int) -> tuple[int, int]:
    """Rows and columns of a near-square grid: 3x3 for 9, 4x3 for 10, 5x4 for 20."""
    columns = math.ceil(math.sqrt(count))
    return math.ceil(count / columns), columns


def _figure(width: float, height: float) -> Figure:
    import matplotlib

    matplotlib.use("Agg", force=True)
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=100)


def figure_format(path: Path) -> str:
    """The format a figure file name asks for ("png" when it has no suffix); checked before any work."""
    fmt = path.suffix.lower().lstrip(".") or "png"
    if fmt not in FORMATS:
        raise UsageError(f"cannot save a figure as .{fmt}", hint="use a .png, .pdf, .svg or .jpg file name")
    return fmt


def save_figure(figure: Figure, path: Path) -> None:
    fmt = figure_format(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path_for(path)
    try:
        figure.savefig(tmp, format=fmt, bbox_inches="tight")
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)


_TITLE_CHARS = 22  # the widest title that fits over a 2-inch tile at 10 pt


def digit_grid(
    images: np.ndarray, titles: Sequence[str], path: Path, *, title_colors: Sequence[str] | None = None
) -> None:
    """Digits in a near-square grid, each titled (e.g. "Predicted 4, Class 9")."""
    rows, columns = grid_shape(len(images))
    two_lines = any(len(title) > _TITLE_CHARS for title in titles)
    figure = _figure(2.0 * columns, (2.5 if two_lines else 2.2) * rows)
    for index, (image, title) in enumerate(zip(images, titles, strict=True)):
        axes = figure.add_subplot(rows, columns, index + 1)
        axes.imshow(image, cmap="gray", interpolation="none", vmin=0, vmax=255)
        # Class names ("Predicted Sneaker, Class Ankle boot") are wider than a tile: one clause per line.
        shown = title.replace(", ", "\n") if len(title) > _TITLE_CHARS else title
        axes.set_title(shown, fontsize=10, color=(title_colors[index] if title_colors else "black"), **PLAIN)
        axes.set_xticks([])
        axes.set_yticks([])
    figure.tight_layout()
    save_figure(figure, path)


def _shortened(text: str, limit: int = 24) -> str:
    """The end of a long file name (where the name differs), e.g. "…ers/anna/0042.png"."""
    return text if len(text) <= limit else "…" + text[-(limit - 1) :]


def mistakes_grid(
    panels: Sequence[tuple[np.ndarray, np.ndarray, str, str]], path: Path, *, title: str, empty: str
) -> None:
    """Per mistake, two panels: the image as given (any size, aspect kept) and the 28x28 the model saw (two
    side by side, 28x58, when the answer weighed two readings).

    ``panels`` holds (as given, as seen, title such as "7 (93%) true 1", file name). With no panels the
    figure says ``empty``, so the file the user asked for always exists.
    """
    if not panels:
        figure = _figure(5, 1.5)
        figure.text(0.5, 0.5, empty, ha="center", va="center", fontsize=12, **PLAIN)
        save_figure(figure, path)
        return
    rows, columns = grid_shape(len(panels))
    figure = _figure(3.6 * columns, 2.4 * rows + 0.4)
    for index, (given, seen, label, name) in enumerate(panels):
        row, column = divmod(index, columns)
        seen_caption = "model input, two readings" if seen.shape[1] > seen.shape[0] else "model input"
        for side, (image, caption) in enumerate(((given, f"{label}\n{_shortened(name)}"), (seen, seen_caption))):
            axes = figure.add_subplot(rows, 2 * columns, row * 2 * columns + 2 * column + side + 1)
            # "antialiased" shows a 16x16 scan as crisp pixels and a 3000-pixel photo without aliasing.
            axes.imshow(image, cmap="gray", vmin=0, vmax=255, interpolation="antialiased" if side == 0 else "none")
            axes.set_title(caption, fontsize=9, color="firebrick" if side == 0 else "dimgray", **PLAIN)
            axes.set_xticks([])
            axes.set_yticks([])
    figure.suptitle(title, fontsize=11, **PLAIN)
    figure.tight_layout()
    save_figure(figure, path)


def confusion_heatmap(matrix: np.ndarray, path: Path, *, title: str, names: list[str] | None = None) -> None:
    figure = _figure(6.5, 5.5)
    axes = figure.add_subplot(1, 1, 1)
    # Log-ish scale so a few errors stay visible next to ~1,000 correct ones.
    image = axes.imshow(np.log1p(matrix), cmap="Blues")
    for (true, predicted), count in np.ndenumerate(matrix):
        colour = "white" if matrix[true, predicted] > matrix.max() / 3 else "black"
        axes.text(predicted, true, str(count), ha="center", va="center", fontsize=8, color=colour)
    axes.set_xlabel("predicted")
    axes.set_ylabel("true")
    axes.set_xticks(range(10), labels=names or [str(index) for index in range(10)], rotation=90 if names else 0)
    axes.set_yticks(range(10), labels=names or [str(index) for index in range(10)])
    axes.set_title(title, **PLAIN)
    figure.colorbar(image, ax=axes, label="log(1 + count)")
    save_figure(figure, path)


def training_curves(history: dict[str, Any], path: Path, *, title: str) -> None:
    """Loss and accuracy per epoch, training against validation where there is one."""
    figure = _figure(10, 4)
    for index, metric in enumerate(("loss", "accuracy")):
        axes = figure.add_subplot(1, 2, index + 1)
        for key, label in ((metric, "train"), (f"val_{metric}", "validation")):
            values = history.get(key)
            if values:
                axes.plot(range(1, len(values) + 1), values, marker="o", label=label)
        axes.set_xlabel("epoch")
        axes.set_ylabel(metric)
        axes.grid(alpha=0.3)
        axes.legend()
    figure.suptitle(title, **PLAIN)
    figure.tight_layout()
    save_figure(figure, path)
