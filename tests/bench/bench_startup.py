"""Start-up time of ``mnistctl --help`` against ``python -c "import typer, rich"`` (target: <= 1.5x).

Run: python -m tests.bench.bench_startup [runs]
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import time

TARGET_RATIO = 1.5


# Measure an ordinary installation: this machine sets PYTHONDONTWRITEBYTECODE, which would make
# every run recompile mnistctl from source; the first (warm-up) run writes the .pyc files.
ENV = {key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"}


def median_seconds(command: list[str], runs: int) -> float:
    subprocess.run(command, check=True, capture_output=True, env=ENV)
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True, env=ENV)
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 15
    entry = shutil.which("mnistctl") or "mnistctl"
    cases = {
        'python -c "import typer, rich"': [sys.executable, "-c", "import typer, rich"],
        "mnistctl --help": [entry, "--help"],
        "mnistctl download --help": [entry, "download", "--help"],
        "mnistctl completion bash": [entry, "completion", "bash"],
    }
    baseline = None
    print(f"| command | median of {runs} (s) | ratio to baseline |")
    print("| --- | ---: | ---: |")
    for label, command in cases.items():
        seconds = median_seconds(command, runs)
        baseline = baseline or seconds
        print(f"| {label} | {seconds:.3f} | {seconds / baseline:.2f}x |")
    print(f"\ntarget: mnistctl --help <= {TARGET_RATIO}x baseline")


if __name__ == "__main__":
    main()
