"""Rebuild the builtin model: train it on MNIST with ``mnistctl train`` and write its files here.

    python -m mnistctl.builtin.build --mnist ../shared/mnist [--epochs 15] [--fine-tune-epochs 6]
        [--seed 1] [--into FOLDER]

Run it from a checkout of the repository: the second stage draws its pictures with ``tests/wild.py``.
It downloads (verifies) MNIST into a temporary home from the given mirror, then trains in two stages,
on MNIST's training images only:

1. ``mnistctl train --arch wildcnn --augment wild --val-split 0.1 --seed 1 --epochs N``: the digits as
   MNIST has them, with the wild augmentation;
2. ``mnistctl train --from <stage 1> --data WILD --augment wild --seed 1 --epochs M``: fine-tuned on WILD, a
   folder of 48,000 pictures of training digits read through predict's preprocessing, as real documents
   bring them: form crops, pens on printed forms, sloppy photos, tiny bitmaps, and clean digits, a quarter
   of their 1s and 7s drawn as continental European writers draw them (``CONTINENTAL``)
   (``write_wild_set``; the digits of the held-out draws in tests/bench/RESULTS.md are left out).
   Stage 2's validation split calibrates its confidence; the 10% of WILD it holds out give the
   ``wild_set_*`` metrics.

It then copies the version's model.tflite, model.keras and history.json beside this module (or into
``--into FOLDER``) with a model.json that records everything the registry knew about it, its accuracy on
MNIST's test set, and the commands that made it.

Builds that differ only in ``--seed`` differ in how many of their mistakes they leave unflagged, by more
than a change of recipe often does (tests/bench/RESULTS.md). To choose among them, build each with
``--into`` and compare them with ``tests/bench/bench_candidates.py``; the WILD set itself does not depend on
the seed.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
from multiprocessing import Pool
from pathlib import Path

import numpy as np

from mnistctl.builtin import ARTIFACT_FILES, FOLDER, METADATA_FILE
from mnistctl.fsutil import atomic_write_bytes

ARCH = "wildcnn"
SEED = 1
# Pictures per kind in the fine-tuning set ("clean": the MNIST digit itself, as a 28x28 PNG).
WILD_SET = {"form_crop": 12_000, "pen_on_form": 4_000, "sloppy": 4_000, "tiny_bitmap": 4_000, "clean": 24_000}
WILD_SEED = 2026
# Share of the set's 1s and 7s drawn as continental European writers draw them (a flag on the 1, a bar across
# the 7's stem: ``tests.wild.continental``); MNIST's writers drew neither.
CONTINENTAL = 0.25
# Training digits never drawn into the set: RESULTS.md's held-out draws of form crops are made from them.
HELD_OUT = ((10_000, 11_000), (20_000, 22_000), (50_000, 51_000))


def plan_wild_set(digits: int) -> list[tuple[str, int, int, int]]:
    """Which training digit each picture of ``WILD_SET`` shows: ``(kind, kind's number, n, digit index)``.
    The synthetic kinds share out one shuffle of the digits outside ``HELD_OUT``, so no two show the same
    digit; the clean ones are drawn from the same digits anew."""
    usable = np.ones(digits, dtype=bool)
    for start, stop in HELD_OUT:
        usable[start:stop] = False
    pool = np.flatnonzero(usable)
    rng = np.random.default_rng(WILD_SEED)
    order = rng.permutation(pool)
    plan, start = [], 0
    for number, (kind, count) in enumerate(WILD_SET.items()):
        if kind == "clean":
            chosen = rng.permutation(pool)[:count]
        else:
            chosen, start = order[start : start + count], start + count
        plan += [(kind, number, n, int(index)) for n, index in enumerate(chosen)]
    return plan


def write_wild_set(root: Path, images: np.ndarray, labels: np.ndarray) -> int:
    """Write ``WILD_SET`` as an ImageFolder under ``root`` (``root/<label>/<kind>-<n>.png|jpg``); return how
    many pictures. Picture ``n`` of a kind depends only on the seeds, so the set is the same wherever the
    same versions of numpy, Pillow and matplotlib (whose font prints the words on the forms) run."""
    jobs = [
        (root, kind, number, n, images[index], int(labels[index]))
        for kind, number, n, index in plan_wild_set(len(images))
    ]
    for label in range(10):
        (root / str(label)).mkdir(parents=True, exist_ok=True)
    chunk = 200
    with Pool(max(1, min(os.cpu_count() or 1, math.ceil(len(jobs) / chunk)))) as workers:
        workers.map(_write_picture, jobs, chunksize=chunk)
    return len(jobs)


def _write_picture(job: tuple) -> None:
    from PIL import Image

    from tests import wild

    root, kind, number, n, digit, label = job
    stem = root / str(label) / f"{kind}-{n:05d}"
    style = np.random.default_rng([78, number, n])  # its own stream: the other pictures stay as they were
    if label in (1, 7) and style.random() < CONTINENTAL:
        digit = wild.continental(digit, label, style)
    if kind == "clean":
        Image.fromarray(digit).save(stem.with_suffix(".png"))
        return
    rng = np.random.default_rng([77, number, n])
    wild.save(wild.KINDS[kind](digit, rng), stem, kind, rng)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mnist", required=True, help="folder (or URL) holding the four MNIST .gz files")
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--fine-tune-epochs", type=int, default=6)
    parser.add_argument("--seed", type=int, default=SEED, help="seed of both training stages")
    parser.add_argument(
        "--into", type=Path, default=FOLDER, help="folder for the files (default: the package's, shipping them)"
    )
    args = parser.parse_args()
    args.into.mkdir(parents=True, exist_ok=True)

    home = tempfile.mkdtemp(prefix="mnistctl-builtin-")
    env = {**os.environ, "MNISTCTL_HOME": home}
    mnistctl = [sys.executable, "-m", "mnistctl"]
    subprocess.run([*mnistctl, "download", "--mirror", args.mnist, "--no-default-mirrors"], env=env, check=True)
    train = ["train", "--arch", ARCH, "--augment", "wild", "--val-split", "0.1", "--seed", str(args.seed)]
    train += ["--epochs", str(args.epochs)]
    subprocess.run([*mnistctl, *train, "--name", "candidate"], env=env, check=True)

    os.environ["MNISTCTL_HOME"] = home
    from mnistctl.data.loader import load

    wild = Path(home) / "wild"
    count = write_wild_set(wild, *load("train"))
    fine_tune = ["train", "--from", "candidate:1", "--data", str(wild), "--augment", "wild", "--seed", str(args.seed)]
    fine_tune += ["--epochs", str(args.fine_tune_epochs)]
    subprocess.run([*mnistctl, *fine_tune, "--name", "candidate"], env=env, check=True)
    evaluated = subprocess.run(
        [*mnistctl, "evaluate", "--model", "candidate:2", "--json"], env=env, check=True, capture_output=True
    )
    mnist_test = json.loads(evaluated.stdout)

    from mnistctl.registry import Registry

    registry = Registry()
    version = registry.resolve("candidate:2")
    for kind in ARTIFACT_FILES:
        atomic_write_bytes(args.into / kind, registry.artifact(version, kind))
    commands = ["mnistctl " + " ".join(train), "mnistctl " + " ".join(fine_tune).replace(str(wild), "WILD")]
    metadata = {
        "arch": version.arch,
        "params": {
            **version.params,
            "name": "builtin",
            # Trained on MNIST, and on pictures of MNIST digits: `models list` shows "mnist", not "folder".
            "data_folder": None,
            "parent": {**version.params["parent"], "ref": "candidate:1 (stage 1)"},
            # (the pictures preprocessing refused, as "no digit found", are counted, not listed)
            "data": {**version.params["data"], "folder": "WILD", "skipped": len(version.params["data"]["skipped"])},
            "command": " && ".join(commands),
            "wild_set": {
                "made_by": "python -m mnistctl.builtin.build (write_wild_set)",
                "pictures": count,
                "kinds": WILD_SET,
                "seed": WILD_SEED,
                "continental_share_of_ones_and_sevens": CONTINENTAL,
                "held_out_training_digits": [list(span) for span in HELD_OUT],
            },
        },
        "metrics": {
            # What every registered MNIST model reports: its accuracy on MNIST's 10,000 test images.
            "test_accuracy": mnist_test["accuracy"],
            "test_loss": mnist_test["loss"],
            "test_calibration_error": mnist_test["calibration_error"],
            # ...and on the 10% of WILD that stage 2 held out.
            "wild_set_accuracy": version.metrics["test_accuracy"],
            "wild_set_loss": version.metrics["test_loss"],
            "wild_set_calibration_error": version.metrics["test_calibration_error"],
            "epochs_trained": version.metrics["epochs_trained"],
        },
        "layers": version.layers,
        "weights_sha256": version.weights_sha256,
        "data_fingerprint": version.data_fingerprint,
        "environment": version.environment,
        "created_at": version.created_at,
        "artifacts": {
            kind: {"sha256": a.sha256, "bytes": a.bytes}
            for kind, a in version.artifacts.items()
            if kind in ARTIFACT_FILES
        },
    }
    atomic_write_bytes(args.into / METADATA_FILE, (json.dumps(metadata, indent=2) + "\n").encode())
    print(f"builtin model rebuilt in {args.into}: MNIST test accuracy {mnist_test['accuracy']:.4f}")


if __name__ == "__main__":
    main()
