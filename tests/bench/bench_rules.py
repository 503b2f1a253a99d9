"""Ruling lines through and under a digit: how often the picture the model sees is still the digit alone.

Every digit of ``tests.photos.HANDWRITTEN`` at 14, 20 and 28 px, in a dark or a pencil-grey pen 1.0 or 2.2 px
wide, on the tests' grey paper, with one ruling line printed under the ink (reflectances multiply) at every
second row (every third for 28 px) from the digit's top to just below it: 1-3 px thick, grey 110 or black-ish
40. The line runs straight ("flat") or steps one row down part-way ("tilted", as a rule tilted by a fraction
of a degree does every few dozen pixels). A page counts when its preprocessed picture correlates >= 0.85
with that of the digit alone, both read by the same checkout (the tests' ``MIN_CORRELATION``). Pages are
written once as PNGs and read by ``to_mnist`` in a subprocess with the checkout first on the path: this one
("after"), and with ``--before CHECKOUT`` also that one. This is the sweep a review of the ninth session's
rule fix ran; no model is involved.

Run: python -m tests.bench.bench_rules [--before /tmp/before]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from tests.bench.results import run_line

REPO = Path(__file__).resolve().parents[2]

# Run in the checkout's own Python path: preprocess every PNG of a folder into an .npz (NaN: no digit found).
READ = """
import sys
from pathlib import Path
import numpy as np
from mnistctl.preprocess import preprocess_many
files = sorted(Path(sys.argv[1]).glob("*.png"))
pictures = preprocess_many([(path, path.name) for path in files])
blank = np.full((28, 28), np.nan, dtype=np.float32)
np.savez(sys.argv[2], names=[path.stem for path in files],
         pictures=np.stack([blank if isinstance(p, str) else p for p in pictures]))
"""


def write_pages(folder: Path) -> dict[str, list[tuple[str, str]]]:
    """Write every page and every digit alone as PNGs; per geometry, the (page, digit alone) name pairs."""
    from tests.photos import HANDWRITTEN, draw
    from tests.test_locate import PAPER, finish, put_ink, sheet

    pairs: dict[str, list[tuple[str, str]]] = {"flat": [], "tilted": []}
    for label in range(10):
        for size in (14, 20, 28):
            for pen in (45.0, 120.0):
                for width in (1.0, 2.2):
                    alone = sheet()
                    put_ink(alone, draw(HANDWRITTEN[label], side=size, width=width), 50, 74, pen)
                    alone_name = f"alone-{label}-{size}-{pen:.0f}-{width}"
                    _save(folder, alone_name, finish(alone))
                    for thickness in (1, 2, 3):
                        for grey in (110.0, 40.0):
                            for row in range(50, 52 + size, 2 if size < 28 else 3):
                                step = 74 + (row * 7) % size  # where a tilted rule steps: somewhere under the digit
                                for geometry in pairs:
                                    page = alone.copy()
                                    if geometry == "flat":
                                        page[row : row + thickness, :] *= grey / PAPER
                                    else:
                                        page[row : row + thickness, :step] *= grey / PAPER
                                        page[row + 1 : row + 1 + thickness, step:] *= grey / PAPER
                                    name = f"{geometry}-{label}-{size}-{pen:.0f}-{width}-{thickness}-{grey:.0f}-{row}"
                                    _save(folder, name, finish(page))
                                    pairs[geometry].append((name, alone_name))
    return pairs


def _save(folder: Path, name: str, page: np.ndarray) -> None:
    from tests.photos import as_uint8

    Image.fromarray(as_uint8(page)).save(folder / f"{name}.png")


def read_with(checkout: Path, folder: Path, out: Path) -> dict[str, np.ndarray]:
    """Every page of ``folder`` as ``checkout``'s preprocessing sees it, by name."""
    env = {**os.environ, "PYTHONPATH": str(checkout)}
    subprocess.run([sys.executable, "-c", READ, str(folder), str(out)], check=True, cwd=checkout, env=env)
    saved = np.load(out)
    return dict(zip(saved["names"].tolist(), saved["pictures"], strict=True))


def passing(pictures: dict[str, np.ndarray], pairs: list[tuple[str, str]]) -> np.ndarray:
    """Per pair: whether the page reads like its digit alone (no digit found on either side: it does not)."""
    from tests.photos import correlation
    from tests.test_locate import MIN_CORRELATION

    def reads_alike(page: np.ndarray, alone: np.ndarray) -> bool:
        return not (np.isnan(page).any() or np.isnan(alone).any()) and correlation(page, alone) >= MIN_CORRELATION

    return np.array([reads_alike(pictures[page], pictures[alone]) for page, alone in pairs])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", type=Path, help="another checkout to read the same pages with")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="mnistctl-rules-") as scratch:
        folder = Path(scratch, "pages")
        folder.mkdir()
        pairs = write_pages(folder)
        after = read_with(REPO, folder, Path(scratch, "after.npz"))
        before = read_with(args.before, folder, Path(scratch, "before.npz")) if args.before else None
    print(run_line())
    print()
    if before is None:
        print("| rule | pages | read like the digit alone |")
        print("| --- | ---: | ---: |")
        for geometry, geometry_pairs in pairs.items():
            print(f"| {geometry} | {len(geometry_pairs):,} | {passing(after, geometry_pairs).sum():,} |")
        return
    print(f"Before: {args.before}.")
    print()
    print("| rule | pages | read alike: before | after | now pass, failed before | now fail, passed before |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for geometry, geometry_pairs in pairs.items():
        old, new = passing(before, geometry_pairs), passing(after, geometry_pairs)
        print(
            f"| {geometry} | {len(geometry_pairs):,} | {old.sum():,} | {new.sum():,} | {(new & ~old).sum():,} "
            f"| {(old & ~new).sum():,} |"
        )


if __name__ == "__main__":
    main()
