"""Rebuild the builtin model: train it on MNIST with ``mnistctl train`` and write its files here.

    python -m mnistctl.builtin.build --mnist ../shared/mnist [--epochs 15]

It downloads (verifies) MNIST into a temporary home from the given mirror, runs
``mnistctl train --arch wildcnn --augment wild --val-split 0.1 --seed 1 --epochs N`` (MNIST's training
images only; the 6,000 held out calibrate its confidence), then copies the
version's model.tflite, model.keras and history.json beside this module with a model.json that
records everything the registry knew about it, plus the command that made it.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile

from mnistctl.builtin import ARTIFACT_FILES, FOLDER, METADATA_FILE
from mnistctl.fsutil import atomic_write_bytes

ARCH = "wildcnn"
SEED = 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mnist", required=True, help="folder (or URL) holding the four MNIST .gz files")
    parser.add_argument("--epochs", type=int, default=15)
    args = parser.parse_args()

    home = tempfile.mkdtemp(prefix="mnistctl-builtin-")
    env = {**os.environ, "MNISTCTL_HOME": home}
    mnistctl = [sys.executable, "-m", "mnistctl"]
    subprocess.run([*mnistctl, "download", "--mirror", args.mnist, "--no-default-mirrors"], env=env, check=True)
    train = [
        "train",
        "--arch",
        ARCH,
        "--augment",
        "wild",
        "--val-split",
        "0.1",
        "--seed",
        str(SEED),
        "--epochs",
        str(args.epochs),
    ]
    subprocess.run([*mnistctl, *train, "--name", "candidate"], env=env, check=True)

    os.environ["MNISTCTL_HOME"] = home
    from mnistctl.registry import Registry

    registry = Registry()
    version = registry.resolve("candidate")
    for kind in ARTIFACT_FILES:
        atomic_write_bytes(FOLDER / kind, registry.artifact(version, kind))
    metadata = {
        "arch": version.arch,
        "params": {**version.params, "name": "builtin", "command": "mnistctl " + " ".join(train)},
        "metrics": version.metrics,
        "layers": version.layers,
        "weights_sha256": version.weights_sha256,
        "data_fingerprint": version.data_fingerprint,
        "environment": version.environment,
        "created_at": version.created_at,
        "artifacts": {kind: {"sha256": a.sha256, "bytes": a.bytes} for kind, a in version.artifacts.items()},
    }
    atomic_write_bytes(FOLDER / METADATA_FILE, (json.dumps(metadata, indent=2) + "\n").encode())
    print(f"builtin model rebuilt in {FOLDER}: test accuracy {version.metrics['test_accuracy']:.4f}")


if __name__ == "__main__":
    main()
