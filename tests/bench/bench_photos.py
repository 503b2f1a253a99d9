"""Accuracy on synthetic "phone photos" of real MNIST test digits, through ``mnistctl predict``.

Each of the first N test digits becomes a photo: dark ink on light paper, enlarged 8-16x with
thicker or thinner strokes, placed off-centre on a larger sheet, lit by a gradient and a shadow,
with sensor noise, saved as JPEG. The photos go through the default preprocessing; the table
compares accuracy on them with accuracy on the original 28x28 digits (``--raw``).
This is a proxy for real photos (whose strokes, pens and cameras vary more), not a substitute.

Run: python -m tests.bench.bench_photos --home HOME [--model REF] [--count 500]
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

from tests.bench.results import replace_section, run_line
from tests.photos import as_uint8, enlarge, gradient, lit, noisy, on_paper, place, shadow

REPO = Path(__file__).resolve().parents[2]


def photo(digit: np.ndarray, rng: np.random.Generator) -> Image.Image:
    scale = float(rng.uniform(8, 16))
    coverage = enlarge(digit, scale, thicken=int(rng.choice([0, 0, 3])))  # 3 at 28 px: a bold marker
    side = coverage.shape[0]
    height, width = side + int(rng.integers(60, 300)), side + int(rng.integers(60, 300))
    top, left = int(rng.integers(0, height - side)), int(rng.integers(0, width - side))
    paper = on_paper(
        place(coverage, height, width, top, left), paper=float(rng.uniform(190, 240)), ink=float(rng.uniform(20, 80))
    )
    light = gradient(height, width, float(rng.uniform(0.75, 1.0)), float(rng.uniform(0.85, 1.0)))
    light = light * shadow(height, width, (rng.uniform(0, height), rng.uniform(0, width)), side * 0.6, 0.25)
    return Image.fromarray(as_uint8(noisy(lit(paper, light), float(rng.uniform(2, 8)), seed=int(rng.integers(1e9)))))


def accuracy(command: list[str], env: dict, labels: np.ndarray) -> float:
    results = json.loads(subprocess.run(command, env=env, capture_output=True, text=True).stdout)["results"]
    digits = np.array([r.get("digit", -1) for r in results])
    return float((digits == labels).mean())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--home", required=True)
    parser.add_argument("--model")
    parser.add_argument("--count", type=int, default=500)
    args = parser.parse_args()
    env = {**os.environ, "MNISTCTL_HOME": args.home}
    os.environ["MNISTCTL_HOME"] = args.home
    from mnistctl.data.loader import load

    images, labels = load("test")
    images, labels = images[: args.count], labels[: args.count]
    work = Path(tempfile.mkdtemp(prefix="mnistctl-photos-"))
    (work / "raw").mkdir()
    (work / "photos").mkdir()
    rng = np.random.default_rng(0)
    for index, digit in enumerate(images):
        Image.fromarray(digit).save(work / "raw" / f"{index:05d}.png")
        photo(digit, rng).save(work / "photos" / f"{index:05d}.jpg", quality=85)
    model = ["--model", args.model] if args.model else []
    base = [sys.executable, "-m", "mnistctl", "predict", "--json", *model]
    raw = accuracy([*base, "--raw", str(work / "raw")], env, labels)
    photos = accuracy([*base, str(work / "photos")], env, labels)
    ref = args.model or "newest"
    table = "\n".join(
        [
            f"{run_line()}; model {ref}; the first {args.count} MNIST test digits. Example photos: {work / 'photos'}.",
            "",
            f"Command: `python -m tests.bench.bench_photos --home HOME{' --model ' + args.model if args.model else ''}"
            f" --count {args.count}`",
            "",
            "| input | accuracy |",
            "| --- | ---: |",
            f"| original 28x28 digits (`--raw`) | {raw:.4f} |",
            f"| synthetic photos (JPEG, default preprocessing) | {photos:.4f} |",
        ]
    )
    print(table)
    title = "Photos: synthetic phone photos of MNIST digits" + (f" ({args.model})" if args.model else "")
    replace_section(REPO / "tests" / "bench" / "RESULTS.md", title, table)


if __name__ == "__main__":
    main()
