"""Score ``predict`` with the builtin model on the blind pictures of ``tests.bench.blind``.

The blind pictures were drawn by a generator written without sight of mnistctl's preprocessing or of
``tests/wild.py``: they stand in for the hidden sets, whose makers did not read our code either. Each kind
is scored per source of its digits (MNIST's test digits 5,000-9,999; USPS's real other writers), and the
negatives by how many answers they get at confidence >= 0.6 (the issue's bar) and >= 0.9 (not flagged).

Every picture is read through ``python -m mnistctl predict --json --model builtin`` in a subprocess (the
production path, second look included), from this checkout and, with ``--before CHECKOUT``, from another.

Run: python -m tests.bench.bench_blind --pictures DIR [--before CHECKOUT]
     (make DIR first: python -m tests.bench.blind --out DIR --count 300)
     or, for the scenes of ``tests.bench.scenes`` (desks, shadows, boxes, combs), with --scenes.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from mnistctl.prediction import is_low
from tests.bench import bench_candidates as candidates
from tests.bench.results import replace_section, run_line

REPO = Path(__file__).resolve().parents[2]
SURE = 0.6
SECTION = "Blind pictures (bench_blind)"


def predict(checkout: Path, folder: Path) -> list[dict]:
    """Every picture under ``folder``, read by ``checkout``'s code and builtin model (in an empty home)."""
    with tempfile.TemporaryDirectory(prefix="mnistctl-blind-") as home:
        return candidates.predict(checkout, folder, home)


def digits_cell(rows: list[dict]) -> str:
    """Accuracy ("no digit found" counts as wrong), wrong answers not flagged, right answers flagged."""
    counts = candidates.tally(rows)
    return f"{1 - counts['wrong'] / counts['pictures']:.1%}, {counts['unflagged']} / {counts['flagged_right']}"


def negatives_cell(rows: list[dict]) -> str:
    answered = [row for row in rows if "digit" in row]
    sure = sum(row["confidence"] >= SURE for row in answered)
    unflagged = sum(not is_low(row["confidence"]) for row in answered)
    return f"{sure} / {unflagged} of {len(rows)}"


def scores(checkout: Path, pictures: Path) -> dict[str, str]:
    cells = {}
    for kind in sorted(path.name for path in pictures.iterdir() if path.is_dir() and path.name != "negatives"):
        rows = predict(checkout, pictures / kind)
        for source in ("mnist", "usps"):
            mine = [row for row in rows if Path(row["file"]).name.startswith(source)]
            if mine:
                cells[f"{kind}, {source}"] = digits_cell(mine)
    for kind in sorted(path.name for path in (pictures / "negatives").iterdir() if path.is_dir()):
        cells[f"no digit: {kind}"] = negatives_cell(predict(checkout, pictures / "negatives" / kind))
    return cells


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pictures", type=Path, required=True, help="what python -m tests.bench.blind wrote")
    parser.add_argument("--before", type=Path, metavar="CHECKOUT", help="a checkout of the code before a change")
    parser.add_argument(
        "--scenes", action="store_true", help="the pictures are python -m tests.bench.scenes's (their own section)"
    )
    args = parser.parse_args()
    maker, section = ("scenes", "Scenes (bench_blind --scenes)") if args.scenes else ("blind", SECTION)
    columns = {"before": args.before} if args.before else {}
    columns["after" if args.before else "this checkout"] = REPO
    measured = {name: scores(checkout, args.pictures) for name, checkout in columns.items()}
    rows = list(next(iter(measured.values())))
    table = ["| set | " + " | ".join(columns) + " |", "| --- |" + " --- |" * len(columns)]
    table += [f"| {row} | " + " | ".join(measured[name][row] for name in columns) + " |" for row in rows]
    command = f"python -m tests.bench.bench_blind --pictures {args.pictures}"
    command += f" --before {args.before}" if args.before else ""
    command += " --scenes" if args.scenes else ""
    body = "\n".join(
        [
            f"{run_line()}. Pictures: `{args.pictures}` (`tests/bench/{maker}.py`).",
            "",
            f"Command: `{command}`",
            "",
            'Cells: accuracy ("no digit found" counts as wrong), wrong answers not flagged / right answers flagged;'
            f" for pictures with no digit, answers at confidence >= {SURE} / not flagged (>= 0.9) of all.",
            "",
            *table,
        ]
    )
    print(body)
    replace_section(REPO / "tests" / "bench" / "RESULTS.md", section, body)


if __name__ == "__main__":
    main()
