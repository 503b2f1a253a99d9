"""Choose the builtin model among several builds: how each candidate flags its mistakes on held-out pictures.

Builds of one recipe with different seeds answer the same pictures differently, and which of them leaves the
fewest confident mistakes is not known until measured (two builds of one recipe left 124 and 150 mistakes
unflagged over the same 39,291 pictures: tests/bench/RESULTS.md). Build the candidates with
``python -m mnistctl.builtin.build --seed S --into FOLDER``, then measure them here.

The pictures are MNIST *training* digits 50,000-50,999, the third of the build's ``HELD_OUT`` spans: the
fine-tuning set never shows them, and no benchmark of the test digits uses them. (Stage 1 trains on them as
MNIST has them, as it trains on every training digit outside its validation split; that holds for every
candidate alike.) Each is drawn once in every kind of ``tests.wild`` and as a photo (``bench_photos.photo``),
and 500 pictures of each negative kind hold no digit; the choice is made here, and the test digits of
``bench_wild`` stay unseen to judge it.

Every candidate reads every picture through ``python -m mnistctl predict --json --model builtin`` in a
subprocess, from a copy of this checkout's ``mnistctl`` package with the candidate's files in place of the
shipped builtin's: the production path, preprocessing and second look included.

The ranking: fewest wrong answers left unflagged (a confidently wrong answer is the worst the tool can
print), then fewest wrong answers, then fewest right answers flagged.

Run: python -m tests.bench.bench_candidates --home HOME_WITH_MNIST --candidate seed2=/tmp/seed2 [...]
     [--sets DIR] [--count 1000]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from mnistctl.builtin import ARTIFACT_FILES, FOLDER, METADATA_FILE
from mnistctl.builtin.build import HELD_OUT
from mnistctl.prediction import is_low
from tests.bench.results import replace_section, run_line

REPO = Path(__file__).resolve().parents[2]
SURE = 0.6  # negatives answered at or above this are counted (the bar for clutter)
NEGATIVES_PER_KIND = 500


def build_sets(work: Path, count: int, home: str) -> dict[str, Path]:
    """Write (or find, when ``work`` already holds them) the held-out pictures; return kind -> folder."""
    os.environ["MNISTCTL_HOME"] = home
    from mnistctl.data.loader import load
    from tests import wild
    from tests.bench.bench_photos import photo

    start, stop = HELD_OUT[2]
    images, labels = load("train")
    images, labels = images[start:stop][:count], labels[start:stop][:count]
    sets: dict[str, Path] = {}
    for number, kind in enumerate(wild.KINDS):
        folder = work / kind
        if not folder.is_dir():
            wild.write_folder(folder, images, labels, kind, seed=9600 + number)
        sets[kind] = folder
    folder = work / "photo"
    if not folder.is_dir():
        for index, (digit, label) in enumerate(zip(images, labels, strict=True)):
            (folder / str(int(label))).mkdir(parents=True, exist_ok=True)
            rng = np.random.default_rng([9650, index])
            photo(digit, rng).save(folder / str(int(label)) / f"{index:05d}.jpg", quality=85)
    sets["photo"] = folder
    folder = work / "negatives"
    if not folder.is_dir():
        wild.write_negatives(folder, NEGATIVES_PER_KIND, seed=9660)
    sets["negatives"] = folder
    return sets


def checkout_with(candidate: Path, scratch: Path) -> Path:
    """A copy of this checkout's ``mnistctl`` package under ``scratch`` whose builtin is ``candidate``'s files."""
    shutil.copytree(REPO / "mnistctl", scratch / "mnistctl", ignore=shutil.ignore_patterns("__pycache__"))
    for name in (*ARTIFACT_FILES, METADATA_FILE):
        if (candidate / name).is_file():
            shutil.copy2(candidate / name, scratch / "mnistctl" / "builtin" / name)
    return scratch


def predict(checkout: Path, folder: Path, home: str) -> list[dict]:
    command = [sys.executable, "-m", "mnistctl", "predict", "--json", "--model", "builtin", str(folder)]
    env = {**os.environ, "MNISTCTL_HOME": home, "PYTHONPATH": str(checkout)}
    # Exit code 1 only says some picture had no digit found; those rows are in the JSON as errors.
    done = subprocess.run(command, env=env, capture_output=True, text=True, cwd=checkout)
    if not done.stdout.strip():
        raise SystemExit(f"predict failed on {folder}: {done.stderr.strip()[-500:]}")
    return json.loads(done.stdout)["results"]


def tally(rows: list[dict]) -> dict[str, int]:
    """Pictures, wrong answers (a "no digit found" row is one), wrong ones not flagged, right ones flagged."""
    counts = {"pictures": len(rows), "wrong": 0, "unflagged": 0, "flagged_right": 0}
    for row in rows:
        label = int(Path(row["file"]).parent.name)
        if row.get("digit") != label:
            counts["wrong"] += 1
            counts["unflagged"] += "digit" in row and not is_low(row["confidence"])
        else:
            counts["flagged_right"] += bool(is_low(row["confidence"]))
    return counts


def cell(counts: dict[str, int]) -> str:
    accuracy = 1 - counts["wrong"] / counts["pictures"]
    return f"{accuracy:.2%}, {counts['unflagged']} / {counts['flagged_right']}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", required=True, help="an MNISTCTL_HOME holding MNIST")
    parser.add_argument(
        "--candidate", action="append", default=[], metavar="NAME=FOLDER", help="a build's files (repeatable)"
    )
    parser.add_argument("--sets", type=Path, help="folder for the pictures (kept, and reused when it holds them)")
    parser.add_argument("--count", type=int, default=1000, help="digits per kind (at most 1,000)")
    parser.add_argument("--without-shipped", action="store_true", help="measure the candidates only")
    args = parser.parse_args()
    candidates = {} if args.without_shipped else {"shipped": FOLDER}
    for entry in args.candidate:
        name, _, folder = entry.partition("=")
        candidates[name] = Path(folder)
    work = args.sets or Path(tempfile.mkdtemp(prefix="mnistctl-candidates-"))
    sets = build_sets(work, args.count, args.home)

    totals: dict[str, dict[str, int]] = {}
    columns: dict[str, dict[str, str]] = {}
    for name, folder in candidates.items():
        with tempfile.TemporaryDirectory(prefix="mnistctl-candidate-") as scratch:
            checkout = checkout_with(folder, Path(scratch))
            total = {"pictures": 0, "wrong": 0, "unflagged": 0, "flagged_right": 0}
            column = {}
            for kind, set_folder in sets.items():
                rows = predict(checkout, set_folder, args.home)
                if kind == "negatives":
                    sure = sum(1 for row in rows if "digit" in row and row["confidence"] >= SURE)
                    column[kind] = f"{sure} of {len(rows)}"
                    continue
                counts = tally(rows)
                column[kind] = cell(counts)
                total = {key: total[key] + counts[key] for key in total}
            column["all"] = f"{total['wrong']} wrong, {total['unflagged']} / {total['flagged_right']}"
        weights = json.loads((folder / METADATA_FILE).read_text()).get("weights_sha256", "")[:8]
        column["weights"] = weights
        totals[name], columns[name] = total, column
        print(f"{name} ({weights}): {column['all']}", flush=True)

    ranking = sorted(
        totals, key=lambda name: (totals[name]["unflagged"], totals[name]["wrong"], totals[name]["flagged_right"])
    )
    names = list(candidates)
    table = ["| kind | " + " | ".join(f"{name} ({columns[name]['weights']})" for name in names) + " |"]
    table.append("| --- |" + " --- |" * len(names))
    for kind in [*sets, "all"]:
        table.append(f"| {kind} | " + " | ".join(columns[name][kind] for name in names) + " |")
    command = "python -m tests.bench.bench_candidates --home HOME" + "".join(
        f" --candidate {entry}" for entry in args.candidate
    )
    body = "\n".join(
        [
            f"{run_line()}; {args.count} training digits ({HELD_OUT[2][0]:,} on) per kind. Pictures: {work}.",
            "",
            f"Command: `{command}`",
            "",
            'Cells: accuracy ("no digit found" counts as wrong), wrong answers not flagged / right answers'
            f" flagged. Negatives: answers with confidence >= {SURE}.",
            "",
            *table,
            "",
            "Ranking (fewest unflagged, then fewest wrong, then fewest flagged right): " + ", ".join(ranking) + ".",
        ]
    )
    print(body)
    replace_section(REPO / "tests" / "bench" / "RESULTS.md", "Choosing the builtin (bench_candidates)", body)


if __name__ == "__main__":
    main()
