"""Form crops over several draws: how the builtin model reads synthetic register crops, draw by draw.

A draw is SPLIT:FIRST:COUNT:SEED: ``tests.wild.form_crop`` of MNIST digits FIRST..FIRST+COUNT-1 of SPLIT,
drawn in that order from one ``np.random.default_rng(SEED)``, each saved as a JPEG at a quality of 60-90
drawn from the same generator. Every crop is read by ``to_mnist`` and the builtin model of a checkout, in a
subprocess with the checkout first on the path: this one ("after"), and with ``--before CHECKOUT`` also
that one, on the same files. "No digit found" counts as wrong; "confident" counts wrong answers with
confidence >= 0.6. The default draws are those of RESULTS.md's fourth-session table (draws 4-7).

Run: python -m tests.bench.bench_form_draws --home HOME_WITH_MNIST [--before /tmp/before]
     [--draw test:8000:2000:101 ...]
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

from tests.bench.results import run_line

REPO = Path(__file__).resolve().parents[2]
DRAWS = ["test:8000:2000:101", "test:2000:2000:303", "train:20000:2000:404", "test:5000:1000:505", "test:7000:1000:707"]

# Run in the checkout's own Python path: prints [[label, answer (-1: no digit), confidence], ...] for a folder.
SCORE = """
import json, sys
from pathlib import Path
import numpy as np
from mnistctl.inference import Predictor
from mnistctl.preprocess import preprocess_many
from mnistctl.registry import Registry
try:  # read as predict reads: each crop's readings weighed together
    from mnistctl.prediction import predict_readings
except ImportError:  # a checkout from before there were second readings
    predict_readings = None
files = sorted(Path(sys.argv[1]).glob("*/*.jpg"))
options = {"readings": True} if predict_readings else {}
pictures = preprocess_many([(path, path.name) for path in files], **options)
found = [i for i, picture in enumerate(pictures) if not isinstance(picture, str)]
registry = Registry()
predictor = Predictor(registry, registry.resolve("builtin"))
probabilities = np.zeros((len(files), 10), dtype=np.float32)
if found and predict_readings:
    probabilities[found] = predict_readings([pictures[i] for i in found], predictor.predict)[1]
elif found:
    probabilities[found] = predictor.predict(np.stack([pictures[i] for i in found]))
answered = set(found)
rows = [[int(path.parent.name), int(p.argmax()) if i in answered else -1, float(p.max())]
        for i, (path, p) in enumerate(zip(files, probabilities))]
print(json.dumps(rows))
"""


def write_draw(folder: Path, draw: str) -> None:
    """Write the crops of ``draw`` as ``folder/<label>/<index>.jpg``."""
    from mnistctl.data.loader import load
    from tests import wild

    split, first, count, seed = draw.split(":")
    images, labels = load(split)
    rng = np.random.default_rng(int(seed))
    for index in range(int(first), int(first) + int(count)):
        crop = wild.form_crop(images[index], rng)
        (folder / str(labels[index])).mkdir(parents=True, exist_ok=True)
        crop.save(folder / str(labels[index]) / f"{index:05d}.jpg", "JPEG", quality=int(rng.integers(60, 91)))


def score(checkout: Path, folder: Path, home: str) -> tuple[int, int, int, int]:
    """Right answers, "no digit found" rows, confident mistakes and crops, as ``checkout`` reads ``folder``."""
    env = {**os.environ, "MNISTCTL_HOME": home, "PYTHONPATH": str(checkout)}
    result = subprocess.run(
        [sys.executable, "-c", SCORE, str(folder)], env=env, cwd=checkout, capture_output=True, text=True, check=True
    )
    rows = json.loads(result.stdout)
    right = sum(label == answer for label, answer, _ in rows)
    missing = sum(answer == -1 for _, answer, _ in rows)
    confident = sum(label != answer and answer != -1 and confidence >= 0.6 for label, answer, confidence in rows)
    return right, missing, confident, len(rows)


def cell(counts: tuple[int, int, int, int]) -> str:
    right, missing, confident, total = counts
    return f"{right / total:.2%}, {confident} (no digit: {missing})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", required=True, help="an MNISTCTL_HOME holding MNIST")
    parser.add_argument("--before", metavar="CHECKOUT", help="a checkout of the code before the change")
    parser.add_argument("--draw", action="append", help="SPLIT:FIRST:COUNT:SEED (repeatable)")
    args = parser.parse_args()
    os.environ["MNISTCTL_HOME"] = args.home
    checkouts = {"after (this checkout)": REPO}
    if args.before:
        checkouts = {"before": Path(args.before).resolve(), **checkouts}
    work = Path(tempfile.mkdtemp(prefix="mnistctl-form-draws-"))
    print(f"{run_line()}. Crops in {work}.\n")
    print("| draw | " + " | ".join(checkouts) + " |")
    print("| --- |" + " ---: |" * len(checkouts))
    totals = {name: np.zeros(4, dtype=int) for name in checkouts}
    for draw in args.draw or DRAWS:
        folder = work / draw.replace(":", "-")
        write_draw(folder, draw)
        counts = {name: score(checkout, folder, args.home) for name, checkout in checkouts.items()}
        for name, value in counts.items():
            totals[name] += value
        print(f"| {draw} | " + " | ".join(cell(value) for value in counts.values()) + " |", flush=True)
    print("| all | " + " | ".join(cell(tuple(int(v) for v in total)) for total in totals.values()) + " |")
    print("\nCells: accuracy, wrong answers with confidence >= 0.6 (no digit found: rows counted as wrong).")


if __name__ == "__main__":
    main()
