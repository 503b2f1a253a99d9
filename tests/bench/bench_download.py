"""Download the real MNIST through a local HTTP mirror that drops train-images half way.

Checks resume (a Range request) on the real 9.9 MB file and reports the time taken.
Run: python -m tests.bench.bench_download [path/to/shared/mnist]
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.mirror_server import Fault, MirrorServer

SHARED = Path(__file__).resolve().parents[3] / "shared" / "mnist"


def main() -> None:
    source = Path(sys.argv[1]) if len(sys.argv) > 1 else SHARED
    server = MirrorServer(source).start()
    server.faults["train-images-idx3-ubyte.gz"] = Fault("drop", times=1)
    home = tempfile.mkdtemp()
    env = {**os.environ, "MNISTCTL_HOME": home, "MNISTCTL_NO_DEFAULT_MIRRORS": "1"}
    started = time.perf_counter()
    try:
        result = subprocess.run(
            [sys.executable, "-m", "mnistctl", "download", "--mirror", server.url, "--json"],
            capture_output=True,
            text=True,
            env=env,
            check=True,
        )
    finally:
        server.stop()
    seconds = time.perf_counter() - started
    report = json.loads(result.stdout)
    print("| file | sha256 (first 12) | bytes | requests (Range) |")
    print("| --- | --- | ---: | --- |")
    for entry in report["files"]:
        ranges = server.requests_for(entry["name"])
        print(f"| {entry['name']} | {entry['sha256'][:12]} | {entry['bytes']:,} | {ranges} |")
    print(f"\nserved {server.bytes_sent:,} bytes in {seconds:.2f} s (stderr: {result.stderr.strip()!r})")


if __name__ == "__main__":
    main()
