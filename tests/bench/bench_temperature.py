"""Could a higher temperature flag builtin's confident mistakes on digits from the wild? Print a table.

For each temperature (the fitted one times 1.0, 1.2, 1.4, 1.7 and 2.0): MNIST test calibration error, and
per wild set the wrong answers with confidence >= 0.6, the right ones below it, and the set's
calibration error; and clutter-only negatives answered with confidence >= 0.6. The sets are those of a
``bench_wild`` run (its "Sets:" folder) and ../shared/usps/train.

Run: python -m tests.bench.bench_temperature --home HOME_WITH_MNIST --sets /tmp/mnistctl-wild-XXXX [--model builtin]
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
USPS = REPO.parent / "shared" / "usps" / "train"
KINDS = ("form_crop", "pen_on_form", "tiny_bitmap", "sloppy")
LOW = 0.6


def scaled(probabilities: np.ndarray, temperature: float) -> np.ndarray:
    """Uncalibrated softmax outputs re-scaled by ``temperature``."""
    logits = np.log(np.clip(probabilities, 1e-12, 1.0)) / temperature
    logits -= logits.max(axis=1, keepdims=True)
    exp = np.exp(logits)
    return exp / exp.sum(axis=1, keepdims=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--home", required=True)
    parser.add_argument("--sets", required=True, help="the Sets: folder a bench_wild run printed")
    parser.add_argument("--model", default="builtin")
    args = parser.parse_args()
    os.environ["MNISTCTL_HOME"] = args.home
    from mnistctl.calibration import expected_calibration_error
    from mnistctl.data.loader import load
    from mnistctl.inference import Predictor
    from mnistctl.preprocess import preprocess_many
    from mnistctl.registry import Registry

    registry = Registry()
    version = registry.resolve(args.model)
    predictor = Predictor(registry, version)

    def answered(files: list[Path]) -> tuple[np.ndarray, np.ndarray]:
        pixels = preprocess_many([(file, file.name) for file in files])
        kept = np.array([not isinstance(item, str) for item in pixels])
        found = np.stack([item for item in pixels if not isinstance(item, str)])
        return kept, predictor.predict(found, calibrate=False)

    sets: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for name, folder in [*((kind, Path(args.sets) / kind) for kind in KINDS), ("usps", USPS)]:
        files = sorted(path for path in folder.glob("*/*") if path.is_file())
        labels = np.array([int(path.parent.name) for path in files])
        kept, probabilities = answered(files)
        sets[name] = (labels[kept], probabilities)
    _, negatives = answered(sorted(path for path in (Path(args.sets) / "negatives").glob("*/*") if path.is_file()))
    images, labels = load("test")
    mnist = predictor.predict(images, calibrate=False)

    print(
        "| T | MNIST test ECE | "
        + " | ".join(f"{name}: wrong >= {LOW} / right < {LOW} / ECE" for name in sets)
        + f" | negatives >= {LOW} |"
    )
    print("| ---: | ---: |" + " --- |" * len(sets) + " ---: |")
    for factor in (1.0, 1.2, 1.4, 1.7, 2.0):
        temperature = version.temperature * factor
        cells = [f"{temperature:.2f}", f"{expected_calibration_error(labels, scaled(mnist, temperature)):.4f}"]
        for truth, probabilities in sets.values():
            calibrated = scaled(probabilities, temperature)
            right = calibrated.argmax(axis=1) == truth
            sure = calibrated.max(axis=1) >= LOW
            ece = expected_calibration_error(truth, calibrated)
            cells.append(f"{int((~right & sure).sum())} / {int((right & ~sure).sum())} / {ece:.3f}")
        cells.append(str(int((scaled(negatives, temperature).max(axis=1) >= LOW).sum())))
        print("| " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
