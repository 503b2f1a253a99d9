"""A labelled folder of images, ``DIR/<label>/*.png`` (the ImageFolder convention): files and class names.

Only lists files; decoding belongs to ``mnistctl.preprocess``. Hidden files and folders are ignored.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from mnistctl.errors import UsageError

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".pgm", ".ppm", ".pbm"})
LAYOUT_HINT = "lay it out as DIR/<label>/<image>.png, one folder per class (e.g. DIR/7/mine.png)"


@dataclass(frozen=True)
class LabelledFolder:
    """The images under ``root``, each labelled by the folder it is in (an index into ``classes``)."""

    root: Path
    classes: tuple[str, ...]  # label folder names, sorted
    files: tuple[Path, ...]  # relative to root, sorted by class then path
    labels: tuple[int, ...]  # one per file: its index in ``classes``
    ignored: tuple[Path, ...] = ()  # files in label folders without an image suffix, relative to root

    def __len__(self) -> int:
        return len(self.files)


def _hidden(relative: Path) -> bool:
    return any(part.startswith(".") for part in relative.parts)


def _is_image(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_SUFFIXES


def files_below(folder: Path) -> list[Path]:
    """Every non-folder entry below ``folder``, sorted, without following symlinked folders (no loops).

    Iterative, unlike ``Path.rglob`` on Python 3.11, which recurses once per level and dies with RecursionError
    on a tree a thousand folders deep. Folders that cannot be read are skipped, as rglob skips them.
    """
    found: list[Path] = []
    pending = [folder]
    while pending:
        current = pending.pop()
        try:
            with os.scandir(current) as entries:
                for entry in entries:
                    path = current / entry.name
                    try:
                        is_folder = entry.is_dir(follow_symlinks=False)
                    except OSError:
                        continue
                    (pending if is_folder else found).append(path)
        except OSError:
            continue
    return sorted(found)


def read_labelled_folder(root: Path) -> LabelledFolder:
    """List ``root/<label>/**/<image>``; every non-hidden sub-folder of ``root`` is a class.

    Raises ``UsageError`` when ``root`` is missing or not a folder, or holds no labelled images.
    """
    root = Path(root).expanduser()
    if not root.exists():
        raise UsageError(f"no such folder: {root}", hint=f"check the path; {LAYOUT_HINT}")
    if not root.is_dir():
        raise UsageError(f"{root} is a file, not a folder", hint=LAYOUT_HINT)
    folders = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not folders:
        loose = sum(1 for p in root.iterdir() if p.is_file() and _is_image(p))
        found = f"{loose} images but no label folders" if loose else "no label folders"
        raise UsageError(f"{root} has {found}", hint=LAYOUT_HINT)
    files: list[Path] = []
    labels: list[int] = []
    ignored: list[Path] = []
    for index, folder in enumerate(folders):
        # Recursively, as ImageFolder does: a class may keep its images in sub-folders (by writer, by date).
        for path in files_below(folder):
            relative = path.relative_to(root)
            if _hidden(relative) or not path.is_file():
                continue
            if _is_image(path):
                files.append(relative)
                labels.append(index)
            else:
                ignored.append(relative)
    if not files:
        suffixes = ", ".join(sorted(IMAGE_SUFFIXES))
        raise UsageError(f"no images in the label folders of {root} (looked for {suffixes})", hint=LAYOUT_HINT)
    return LabelledFolder(root, tuple(f.name for f in folders), tuple(files), tuple(labels), tuple(ignored))
