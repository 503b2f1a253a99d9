"""Load test of ``mnistctl serve`` from the same machine: requests/s, p50/p99 latency, peak memory per worker.

Bounded: a fixed number of requests per case over loopback keep-alive connections, then the server is stopped.
Cases: single 28x28 PNGs and phone-photo-size JPEGs (3024x4032), each with 1 and 2 workers.
Goal (issue 13): >= 500 requests/s of 28x28 PNGs with p99 <= 50 ms on 2 cores; each worker <= 150 MB.

Run: python -m tests.bench.bench_serve [--requests N] [--connections C] [--home HOME]
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np
from PIL import Image

ENTRY = str(Path(sys.executable).with_name("mnistctl"))
URL_PATTERN = re.compile(r"http://127\.0\.0\.1:(\d+)/")


def digit_png() -> bytes:
    """A 28x28 white-on-black "1"-like stroke, as the page or a script would send."""
    pixels = np.zeros((28, 28), np.uint8)
    pixels[5:23, 13:16] = 255
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "PNG")
    return buffer.getvalue()


def phone_jpeg() -> bytes:
    """A 3024x4032 photo-like JPEG: a dark pen "7" on lit, noisy paper (about a phone camera's size)."""
    from tests.photos import HANDWRITTEN, as_uint8, draw, gradient, noisy, on_paper, place

    width, height = 3024, 4032
    coverage = draw(HANDWRITTEN[7], side=1600, width=60.0)
    canvas = place(coverage, height, width, 1200, 700)
    image = as_uint8(noisy(on_paper(canvas) * gradient(height, width, 1.05, 0.85), 4))
    buffer = io.BytesIO()
    Image.fromarray(image).convert("RGB").save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def start_server(home: Path, workers: int) -> tuple[subprocess.Popen, int]:
    env = {**os.environ, "MNISTCTL_HOME": str(home)}
    process = subprocess.Popen(
        [ENTRY, "serve", "--port", "0", "--workers", str(workers)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    deadline = time.monotonic() + 120
    port = None
    assert process.stderr is not None
    while port is None and time.monotonic() < deadline:
        line = process.stderr.readline().decode()
        if not line and process.poll() is not None:
            raise RuntimeError("the server exited before printing its URL")
        found = URL_PATTERN.search(line)
        port = int(found[1]) if found else None
    if port is None:
        raise RuntimeError("the server printed no URL within 120 s")
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as response:
                if response.status == 200:
                    return process, port
        except OSError:
            time.sleep(0.2)
    raise RuntimeError("the server never became healthy")


def stop_server(process: subprocess.Popen) -> None:
    os.killpg(process.pid, signal.SIGINT)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def process_tree(root: int) -> list[int]:
    """``root`` and its descendants (uvicorn's workers are children of the supervisor)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(parent, []).append(int(entry.name))
    found, pending = [], [root]
    while pending:
        pid = pending.pop()
        found.append(pid)
        pending += children.get(pid, [])
    return found


def peak_rss_mb(pid: int) -> float | None:
    """The process's peak resident memory so far (VmHWM), in MB."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


async def one_connection(port: int, request: bytes, count: int, latencies: list[float], failures: list[str]) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        for _ in range(count):
            started = time.perf_counter()
            writer.write(request)
            await writer.drain()
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head.split(b" ", 2)[1])
            length = int(re.search(rb"(?i)content-length:\s*(\d+)", head)[1])
            body = await reader.readexactly(length)
            latencies.append(time.perf_counter() - started)
            if status != 200 or b'"digit"' not in body:
                failures.append(f"{status} {body[:120]!r}")
    finally:
        writer.close()


async def load(
    port: int, body: bytes, content_type: str, total: int, connections: int
) -> tuple[float, list[float], list[str]]:
    request = (
        f"POST /v1/predict HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: {content_type}\r\n"
        f"Content-Length: {len(body)}\r\nConnection: keep-alive\r\n\r\n"
    ).encode() + body
    latencies: list[float] = []
    failures: list[str] = []
    share = [total // connections + (1 if i < total % connections else 0) for i in range(connections)]
    started = time.perf_counter()
    await asyncio.gather(*(one_connection(port, request, n, latencies, failures) for n in share if n))
    return time.perf_counter() - started, latencies, failures


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def run_case(home: Path, workers: int, name: str, body: bytes, content_type: str, total: int, connections: int) -> dict:
    process, port = start_server(home, workers)
    try:
        # Warm-up: every worker loads its model and fills its caches before the clock starts.
        asyncio.run(load(port, body, content_type, max(20, 4 * connections), connections))
        seconds, latencies, failures = asyncio.run(load(port, body, content_type, total, connections))
        pids = process_tree(process.pid)
        workers_rss = [peak_rss_mb(pid) for pid in pids[1:]] or [peak_rss_mb(pids[0])]
        if workers == 1 and len(pids) == 1:
            workers_rss = [peak_rss_mb(pids[0])]
    finally:
        stop_server(process)
    return {
        "case": name,
        "workers": workers,
        "requests": len(latencies),
        "failures": len(failures),
        "rps": len(latencies) / seconds,
        "p50_ms": statistics.median(latencies) * 1000,
        "p99_ms": percentile(latencies, 0.99) * 1000,
        "worker_peak_mb": max(v for v in workers_rss if v is not None),
        "first_failure": failures[0] if failures else "",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=5000, help="requests per 28x28 case (photos: a tenth)")
    parser.add_argument("--connections", type=int, default=8, help="concurrent keep-alive connections")
    parser.add_argument("--home", type=Path, help="MNISTCTL_HOME (default: an empty one: the builtin model)")
    args = parser.parse_args()
    home = args.home or Path(tempfile.mkdtemp(prefix="mnistctl-bench-serve-"))
    png, jpeg = digit_png(), phone_jpeg()
    cases = [
        ("28x28 PNG", png, "image/png", args.requests),
        (f"{3024}x{4032} JPEG ({len(jpeg) / 1e6:.1f} MB)", jpeg, "image/jpeg", max(50, args.requests // 10)),
    ]
    print(f"CPU: {os.cpu_count()} cores; {args.connections} connections; Python {sys.version.split()[0]}")
    print("| case | workers | requests | failures | requests/s | p50 ms | p99 ms | peak MB per worker |")
    print("|---|---|---|---|---|---|---|---|")
    results = []
    for name, body, content_type, total in cases:
        for workers in (1, 2):
            result = run_case(home, workers, name, body, content_type, total, args.connections)
            results.append(result)
            print(
                f"| {name} | {workers} | {result['requests']:,} | {result['failures']} | {result['rps']:.0f} "
                f"| {result['p50_ms']:.1f} | {result['p99_ms']:.1f} | {result['worker_peak_mb']:.0f} |",
                flush=True,
            )
            if result["first_failure"]:
                print(f"  first failure: {result['first_failure']}")
    best = max((r for r in results if r["case"] == "28x28 PNG"), key=lambda r: r["rps"])
    met = best["rps"] >= 500 and best["p99_ms"] <= 50
    print(
        f"\ngoal >= 500 requests/s with p99 <= 50 ms (28x28 PNG): {'met' if met else 'NOT met'} "
        f"(best: {best['rps']:.0f}/s, p99 {best['p99_ms']:.1f} ms, {best['workers']} worker(s))"
    )
    peak = max(r["worker_peak_mb"] for r in results)
    print(f"goal <= 150 MB per worker: {'met' if peak <= 150 else 'NOT met'} (largest: {peak:.0f} MB)")


if __name__ == "__main__":
    main()
