"""Fine-tuning the builtin model on 1,000 USPS training digits: accuracy on the other USPS digits, before and after.

1,000 digits of ``../shared/usps/train/<digit>/*.png`` are drawn with a fixed seed; the rest (6,291) are the
held-out digits. The builtin model is scored on the held-out digits (``evaluate --data``), fine-tuned exactly as a
user would (``train --from builtin --data <the 1,000> --seed 1``: the parent's Adam at a tenth of its learning
rate, 3 epochs; of the 1,000, train itself holds out 10% for its own test metrics and 10% of the rest for
validation and calibration), and the child is scored on the same held-out digits. Everything happens in a
temporary home: the shipped model is never changed.

Run: python -m tests.bench.bench_finetune [--usps ../shared/usps/train] [--count 1000] [--seed 0] [--write]
(about 3 minutes on 2 cores). Prints the table; --write also puts it into tests/bench/RESULTS.md
("Fine-tuning on USPS").
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
from pathlib import Path

from tests.bench.results import replace_section, run_line

REPO = Path(__file__).resolve().parents[2]


def mnistctl(home: Path, *args: str) -> dict:
    command = [sys.executable, "-m", "mnistctl", *args, "--json"]
    env = {**os.environ, "MNISTCTL_HOME": str(home), "MNISTCTL_NO_DEFAULT_MIRRORS": "1"}
    result = subprocess.run(command, capture_output=True, env=env, cwd=REPO, text=True)
    if result.returncode != 0:
        sys.exit(f"{' '.join(args)} failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout)


def link_folder(root: Path, files: list[Path]) -> None:
    for path in files:
        target = root / path.parent.name / path.name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.symlink_to(path.resolve())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--usps", type=Path, default=REPO.parent / "shared" / "usps" / "train")
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--train-args", default="--seed 1", help="extra train flags (default: --seed 1)")
    parser.add_argument("--write", action="store_true", help="write the table into tests/bench/RESULTS.md")
    args = parser.parse_args()

    files = sorted(path for path in args.usps.glob("[0-9]/*.png"))
    if len(files) <= args.count:
        sys.exit(f"{args.usps} holds {len(files)} digits: too few to fine-tune on {args.count}")
    random.Random(args.seed).shuffle(files)
    tuning, held_out = files[: args.count], files[args.count :]
    with tempfile.TemporaryDirectory(prefix="bench-finetune-") as scratch:
        scratch_path = Path(scratch)
        home, tune_dir, test_dir = (scratch_path / name for name in ("home", "tune", "held-out"))
        link_folder(tune_dir, tuning)
        link_folder(test_dir, held_out)
        before = mnistctl(home, "evaluate", "--model", "builtin", "--data", str(test_dir))
        trained = mnistctl(home, "train", "--from", "builtin", "--data", str(tune_dir), *args.train_args.split())
        after = mnistctl(home, "evaluate", "--model", trained["model"], "--data", str(test_dir))
    params = trained["params"]
    command = f"mnistctl train --from builtin --data <{args.count:,} USPS digits> {args.train_args}".strip()
    rows = [
        ("builtin (MNIST only)", before),
        (f"builtin fine-tuned on {args.count:,} USPS digits", after),
    ]
    lines = [
        f"{run_line()}. Held out: {before['images']:,} USPS training digits (all but {args.count:,} drawn with seed"
        f" {args.seed}), the same for both rows. Fine-tuning: `{command}` ({params['optimizer']} lr"
        f" {params['learning_rate']:g}, {params['epochs']} epochs, batch {params['batch_size']},"
        f" {params['train_samples']:,} train / {params['val_samples']:,} validation images,"
        f" {trained['train_seconds']:.0f} s).",
        "",
        "| model | accuracy | calibration error | loss |",
        "|---|---:|---:|---:|",
    ]
    lines += [
        f"| {label} | {report['accuracy']:.4f} | {report['calibration_error']:.4f} | {report['loss']:.4f} |"
        for label, report in rows
    ]
    table = "\n".join(lines)
    print(table)
    if args.write:
        replace_section(REPO / "tests" / "bench" / "RESULTS.md", "Fine-tuning on USPS", table)


if __name__ == "__main__":
    main()
