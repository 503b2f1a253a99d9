"""Speed and memory of light inference: predict one image, a folder of 1,000 PNGs, evaluate the CNN.

Targets (issue 4): ``mnistctl predict digit.png`` in a fresh process <= 0.1x the time of a script
that does keras.models.load_model + predict on the same model (both measured here); >= 1,000
images/s end to end on a folder of 1,000 PNGs; peak memory of predict <= 200 MB; evaluate of the
CNN on 10,000 images <= 5 s after start-up.

Run: python -m tests.bench.bench_predict [--home DIR_WITH_A_TRAINED_CNN] [--runs 5]
Without --home it trains a quick CNN (1 epoch on 5,000 images: speed does not depend on accuracy).
Writes its table into tests/bench/RESULTS.md (section "Inference") and prints it.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.bench.results import replace_section, run_line

REPO = Path(__file__).resolve().parents[2]

KERAS_SCRIPT = """
import sys, numpy as np
from PIL import Image
import keras
model = keras.models.load_model(sys.argv[1])
image = np.asarray(Image.open(sys.argv[2]).convert("L"), dtype=np.float32)[None]
print(int(model.predict(image, verbose=0).argmax()))
"""


def timed(command: list[str], env: dict, runs: int) -> tuple[float, float, str]:
    """Median wall seconds, peak RSS in MB (GNU time's %M, per process), and the last stdout."""
    seconds, peak, out = [], 0.0, ""
    subprocess.run(command, env=env, capture_output=True, check=True)  # warm-up: writes .pyc files
    for _ in range(runs):
        started = time.perf_counter()
        result = subprocess.run(
            ["/usr/bin/time", "-f", "MAXRSS_KB %M", *command], env=env, capture_output=True, text=True, check=True
        )
        seconds.append(time.perf_counter() - started)
        peak = max(peak, int(result.stderr.strip().splitlines()[-1].split()[-1]) / 1024)
        out = result.stdout
    return statistics.median(seconds), peak, out


def big_photo(digit):
    """A 4000x3000 phone-photo-like picture (a PIL image) of one digit: dark ink, 1,500 px tall, lit
    unevenly, noisy."""
    import numpy as np
    from PIL import Image

    ink = np.asarray(Image.fromarray(digit).resize((1500, 1500), Image.Resampling.BICUBIC), dtype=np.float32)
    page = np.linspace(190, 235, 4000, dtype=np.float32)[None, :].repeat(3000, axis=0)
    page[700:2200, 1200:2700] -= ink / 255 * 160
    page += np.random.default_rng(0).normal(0, 5, page.shape).astype(np.float32)
    return Image.fromarray(np.clip(page, 0, 255).astype(np.uint8)).convert("RGB")


def photo_seconds(photo: Path, ref: str, runs: int) -> float:
    """Median seconds to decode, preprocess and predict ``photo`` in a warm process (start-up excluded)."""
    from mnistctl.inference import Predictor
    from mnistctl.preprocess import preprocess
    from mnistctl.registry import Registry

    registry = Registry()
    predictor = Predictor(registry, registry.resolve(ref))
    predictor.predict(preprocess(photo, photo.name)[None])  # warm-up: loads the model
    seconds = []
    for _ in range(runs):
        started = time.perf_counter()
        predictor.predict(preprocess(photo, photo.name)[None])
        seconds.append(time.perf_counter() - started)
    return statistics.median(seconds)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--home")
    parser.add_argument("--model", default="cnn", help="REF to measure (e.g. builtin)")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--mnist", default=str(REPO.parent / "shared" / "mnist"))
    args = parser.parse_args()

    mnistctl = [sys.executable, "-m", "mnistctl"]
    home = args.home or tempfile.mkdtemp(prefix="mnistctl-bench-")
    # An ordinary installation caches bytecode; this machine's PYTHONDONTWRITEBYTECODE would not.
    env = {**os.environ, "MNISTCTL_HOME": home}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    if not args.home and args.model == "cnn":
        subprocess.run([*mnistctl, "download", "--mirror", args.mnist, "--no-default-mirrors"], env=env, check=True)
        subprocess.run([*mnistctl, "train", "--arch", "cnn", "--epochs", "1", "--limit", "5000"], env=env, check=True)
    elif not args.home:
        subprocess.run([*mnistctl, "download", "--mirror", args.mnist, "--no-default-mirrors"], env=env, check=True)
    shown = json.loads(
        subprocess.run(
            [*mnistctl, "models", "show", args.model, "--json"], env=env, capture_output=True, text=True, check=True
        ).stdout
    )
    ref, arch = shown["model"], shown["arch"]

    work = Path(tempfile.mkdtemp(prefix="mnistctl-predict-"))
    subprocess.run(
        [*mnistctl, "models", "export", ref, "--format", "keras", "-o", str(work / "model.keras")], env=env, check=True
    )
    from PIL import Image

    sys.path.insert(0, str(REPO))
    os.environ["MNISTCTL_HOME"] = home
    from mnistctl.data.loader import load

    images, _ = load("test")
    folder = work / "digits"
    folder.mkdir()
    for index in range(1000):
        Image.fromarray(images[index]).save(folder / f"{index:04d}.png")
    digit = folder / "0000.png"

    one_ours, peak_one, _ = timed([*mnistctl, "predict", str(digit), "--model", ref], env, args.runs)
    one_keras, peak_keras, _ = timed(
        [sys.executable, "-c", KERAS_SCRIPT, str(work / "model.keras"), str(digit)], env, args.runs
    )
    folder_seconds, peak_folder, out = timed(
        [*mnistctl, "predict", str(folder), "--model", ref, "--json"], env, args.runs
    )
    assert len(json.loads(out)["results"]) == 1000
    raw_seconds, _, _ = timed([*mnistctl, "predict", str(folder), "--model", ref, "--json", "--raw"], env, args.runs)
    eval_wall, peak_eval, eval_out = timed([*mnistctl, "evaluate", "--model", ref, "--json"], env, args.runs)
    photo = work / "photo.jpg"
    big_photo(images[0]).save(photo, quality=90)
    photo_wall, peak_photo, _ = timed([*mnistctl, "predict", str(photo), "--model", ref], env, args.runs)
    photo_inside = photo_seconds(photo, ref, args.runs)
    inside = json.loads(eval_out)["seconds"]

    rows = [
        ("predict 1 PNG, fresh process (mnistctl, LiteRT)", f"{one_ours:.2f} s", f"{peak_one:.0f} MB", ""),
        ("same with keras.models.load_model + predict", f"{one_keras:.2f} s", f"{peak_keras:.0f} MB", ""),
        (
            "ratio mnistctl / Keras (target <= 0.10)",
            f"{one_ours / one_keras:.3f}",
            "",
            "met" if one_ours / one_keras <= 0.1 else "NOT met",
        ),
        (
            "predict folder of 1,000 PNGs, end to end",
            f"{folder_seconds:.2f} s = {1000 / folder_seconds:,.0f} images/s",
            f"{peak_folder:.0f} MB",
            "met" if 1000 / folder_seconds >= 1000 else "NOT met",
        ),
        (
            "same folder with --raw (already MNIST-style, no preprocessing)",
            f"{raw_seconds:.2f} s = {1000 / raw_seconds:,.0f} images/s",
            "",
            "met" if 1000 / raw_seconds >= 1000 else "NOT met",
        ),
        (
            "peak memory of predict (target <= 200 MB)",
            f"{max(peak_one, peak_folder):.0f} MB",
            "",
            "met" if max(peak_one, peak_folder) <= 200 else "NOT met",
        ),
        (
            "a 4000x3000 phone photo (JPEG): decode, preprocess, predict (target <= 0.3 s)",
            f"{photo_inside:.3f} s (whole process {photo_wall:.2f} s)",
            f"{peak_photo:.0f} MB",
            "met" if photo_inside <= 0.3 else "NOT met",
        ),
        (
            f"evaluate {arch} on 10,000 test images (after start-up)",
            f"{inside:.2f} s (whole process {eval_wall:.2f} s)",
            f"{peak_eval:.0f} MB",
            "met" if inside <= 5 else "NOT met",
        ),
    ]
    table = "\n".join(
        [
            f"{run_line()}; model {ref} ({arch}); medians of {args.runs} runs, fresh processes.",
            "",
            "Command: `python -m tests.bench.bench_predict"
            + (" --home HOME" if args.home else "")
            + (f" --model {args.model}" if args.model != "cnn" else "")
            + "`",
            "",
            "| measurement | time | peak RSS | target |",
            "| --- | ---: | ---: | --- |",
            *[f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows],
        ]
    )
    print(table)
    section = "Inference: predict and evaluate" + ("" if args.model == "cnn" else f" ({args.model})")
    replace_section(REPO / "tests" / "bench" / "RESULTS.md", section, table)


if __name__ == "__main__":
    main()
