"""Digits in the wild: accuracy and calibration error of ``mnistctl predict`` on digits that are not clean MNIST.

Sets (each an ImageFolder of ``--count`` images made from MNIST *test* digits by ``tests.wild`` and
``tests.bench.bench_photos``, so no model has seen the digits; the real USPS set from ../shared):

- ``usps``: ../shared/usps/train, 7,291 real 16x16 scans (other writers, other scanner);
- ``form crops``: a 10-25 px digit in a ~120x170 JPEG crop with ruling lines, a scanner-bed bar, a period,
  printed text and stains (``tests.wild.form_crop``);
- ``pen on form``: thin blue or black pen, 1-bit/RGBA/RGB, grid remnants (``pen_on_form``);
- ``tiny bitmaps``: 12-20 px boxes stretched to fill, often binarised (``tiny_bitmap``);
- ``sloppy``: slanted, warped, thin pen to thick marker photos (``sloppy``);
- ``photos``: phone-photo-like JPEGs (``bench_photos.photo``);
- ``continental 1s and 7s``: photos of 1s with a flag and 7s with a bar across the stem, as continental
  European writers draw them (``tests.wild.continental``; test digits the other synthetic sets do not show
  while ``--count`` is under 1,000; the test set has 2,163 1s and 7s, so the set holds at most that many);
- ``askew notebook photos``: a digit on squared or lined paper photographed 1.25-4 degrees askew, the grid as
  dark as a light pen (``askew``; test digits 6,000 on);
- ``pen lifts``: a digit cut clean through in one or two places, as a form crop or a sloppy photo
  (``skipping``; test digits 7,000 on);
- ``tight crops``: photos and scans cropped to the digit's ink, 0-3 px of paper left (``tight``; test digits
  8,000 on);
- ``slanted 25-45 degrees``: photos of digits written slanted 25-45 degrees past their own slant, mostly
  forward (``slanted``; test digits 9,000 on);
- ``turned 15-35 degrees``: photos of digits turned 15-35 degrees either way (``turned``; the test digits
  of ``photos``, drawn anew: the test set has no digits left over);
- ``negatives``: only lines, specks, printed text or a bar: answers with confidence >= 0.6 are counted.

Every cell runs ``python -m mnistctl predict --json`` in a subprocess from a checkout: this one ("after"),
and with ``--before CHECKOUT`` also the code (and its builtin model) from before a change, on the same
models of HOME's registry. Accuracy counts "no digit found" rows as wrong; the MNIST test set is scored
with ``--raw``.

Run: python -m tests.bench.bench_wild --home HOME_WITH_MNIST [--count 500] [--models builtin,mlp,cnn]
     [--before /tmp/before]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from mnistctl.calibration import expected_calibration_error
from tests.bench.results import replace_section, run_line

REPO = Path(__file__).resolve().parents[2]
USPS = REPO.parent / "shared" / "usps" / "train"
LOW = 0.6


def build_sets(work: Path, count: int, home: str) -> dict[str, Path]:
    """Write every synthetic set under ``work``; return name -> folder (ImageFolder, or flat for negatives)."""
    os.environ["MNISTCTL_HOME"] = home
    from mnistctl.data.loader import load
    from tests import wild
    from tests.bench.bench_photos import photo

    images, labels = load("test")
    sets: dict[str, Path] = {}
    if USPS.is_dir():
        sets["usps (real, 7,291)"] = USPS
    # Different digits for each kind, all from the test set.
    for index, (name, kind) in enumerate(
        [
            ("form crops", "form_crop"),
            ("pen on form", "pen_on_form"),
            ("tiny bitmaps", "tiny_bitmap"),
            ("sloppy", "sloppy"),
        ]
    ):
        chosen = slice(index * count, (index + 1) * count)
        sets[name] = wild.write_folder(work / kind, images[chosen], labels[chosen], kind, seed=index)
    rng = np.random.default_rng(7)
    photos = work / "photos"
    chosen = slice(4 * count, 5 * count)
    for position, (digit, label) in enumerate(zip(images[chosen], labels[chosen], strict=True)):
        (photos / str(label)).mkdir(parents=True, exist_ok=True)
        photo(digit, rng).save(photos / str(label) / f"{position:05d}.jpg", quality=85)
    sets["photos"] = photos
    continental = work / "continental"
    ones_and_sevens = np.flatnonzero(np.isin(labels, (1, 7)))
    unseen = ones_and_sevens >= 5 * count
    chosen = np.concatenate([ones_and_sevens[unseen], ones_and_sevens[~unseen]])[:count]
    for position, index in enumerate(chosen):
        label = int(labels[index])
        digit = wild.continental(images[index], label, np.random.default_rng([13, position]))
        (continental / str(label)).mkdir(parents=True, exist_ok=True)
        photo(digit, rng).save(continental / str(label) / f"{position:05d}.jpg", quality=85)
    sets["continental 1s and 7s"] = continental
    # Digits the sets above do not show (but for some 1s and 7s of the continental set).
    chosen = slice(6 * count, 7 * count)
    sets["askew notebook photos"] = wild.write_folder(work / "askew", images[chosen], labels[chosen], "askew", seed=6)
    chosen = slice(7 * count, 8 * count)
    sets["pen lifts"] = wild.write_folder(work / "skipping", images[chosen], labels[chosen], "skipping", seed=7)
    chosen = slice(8 * count, 9 * count)
    sets["tight crops"] = wild.write_folder(work / "tight", images[chosen], labels[chosen], "tight", seed=8)
    chosen = slice(9 * count, 10 * count)
    slanted = wild.write_folder(work / "slanted", images[chosen], labels[chosen], "slanted", seed=9)
    sets["slanted 25-45 degrees"] = slanted
    chosen = slice(4 * count, 5 * count)
    sets["turned 15-35 degrees"] = wild.write_folder(work / "turned", images[chosen], labels[chosen], "turned", seed=10)
    raw = work / "mnist-raw"
    for position, (digit, label) in enumerate(zip(images, labels, strict=True)):
        (raw / str(label)).mkdir(parents=True, exist_ok=True)
        Image.fromarray(digit).save(raw / str(label) / f"{position:05d}.png")
    sets["mnist test (--raw)"] = raw
    sets["negatives"] = wild.write_negatives(work / "negatives", count, seed=11)
    return sets


def predict(checkout: Path, model: str, folder: Path, home: str, raw: bool) -> list[dict]:
    command = [sys.executable, "-m", "mnistctl", "predict", "--json", "--model", model, str(folder)]
    if raw:
        command.append("--raw")
    env = {**os.environ, "MNISTCTL_HOME": home, "PYTHONPATH": str(checkout)}
    done = subprocess.run(command, env=env, capture_output=True, text=True, cwd=checkout)
    return json.loads(done.stdout)["results"]


def score(rows: list[dict], negatives: bool) -> str:
    if negatives:
        sure = sum(1 for row in rows if "digit" in row and row.get("confidence", 0) >= LOW)
        unflagged = sum(1 for row in rows if "digit" in row and not row["low_confidence"])
        return f"{sure} of {len(rows)} answered >= {LOW}, {unflagged} not flagged"
    labels = np.array([int(Path(row["file"]).parent.name) for row in rows])
    answered = np.array(["digit" in row for row in rows])
    digits = np.array([row.get("digit", -1) if row.get("digit") is not None else -1 for row in rows])
    accuracy = float(np.mean(digits == labels))
    probabilities = np.zeros((len(rows), 10))
    for position, row in enumerate(rows):
        for digit, probability in row.get("top_k", []):
            probabilities[position, digit] = probability
    ece = expected_calibration_error(labels[answered], probabilities[answered])
    wrong = answered & (digits != labels)
    flagged = np.array([bool(row.get("low_confidence")) for row in rows])
    confident_wrong = int(sum(1 for row, bad in zip(rows, wrong, strict=True) if bad and row["confidence"] >= LOW))
    unflagged_wrong = int(np.sum(wrong & ~flagged))
    flagged_right = int(np.sum(answered & (digits == labels) & flagged))
    return f"{accuracy:.4f} / {ece:.4f} / {confident_wrong} / {unflagged_wrong} of {int(wrong.sum())} / {flagged_right}"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--home", required=True, help="an MNISTCTL_HOME holding MNIST (and the models to measure)")
    parser.add_argument("--count", type=int, default=500)
    parser.add_argument("--models", default="builtin", help="comma-separated refs, e.g. builtin,mlp,cnn")
    parser.add_argument("--before", metavar="CHECKOUT", help="a checkout of the code before the change")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="mnistctl-wild-"))
    sets = build_sets(work, args.count, args.home)
    sections = []
    for model in args.models.split(","):
        columns = [("after (this checkout)", REPO)]
        if args.before:
            columns.insert(0, ("before", Path(args.before)))
        table = [f"| {model}: set | " + " | ".join(title for title, _ in columns) + " |"]
        table.append("| --- |" + " ---: |" * len(columns))
        for name, folder in sets.items():
            cells = []
            for _, checkout in columns:
                rows = predict(checkout, model, folder, args.home, raw=name.endswith("(--raw)"))
                cells.append(score(rows, negatives=name == "negatives"))
            table.append(f"| {name} | " + " | ".join(cells) + " |")
            print(table[-1], flush=True)
        sections += [*table, ""]
    body = "\n".join(
        [
            f"{run_line()}; {args.count} images per synthetic set, made from MNIST test digits. Sets: {work}.",
            "",
            f"Command: `python -m tests.bench.bench_wild --home HOME --count {args.count} --models {args.models}"
            + (f" --before {args.before}" if args.before else "")
            + "`",
            "",
            "Cells: accuracy (no-digit rows count as wrong) / calibration error (15-bin ECE over answered rows)"
            f" / wrong answers with confidence >= {LOW} / wrong answers not flagged low confidence, of the wrong"
            " answers / right answers flagged low confidence (each checkout's own flag: below 0.6 until"
            f" 86f5bf3, below 0.9 since). Negatives: answers with confidence >= {LOW}, and answers not flagged.",
            "",
            *sections,
        ]
    )
    print(body)
    replace_section(REPO / "tests" / "bench" / "RESULTS.md", "Digits in the wild (bench_wild)", body.rstrip())


if __name__ == "__main__":
    main()
