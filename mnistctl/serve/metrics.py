"""Prometheus metrics of one worker process: requests, errors, images and a latency histogram, in text format 0.0.4.

Each worker counts its own requests; a scraper reaching the server through its one port sees whichever worker
answers that scrape. Updated on the event loop only (never from a worker thread), so no lock is needed.
"""

from __future__ import annotations

import bisect
from collections import Counter

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# Seconds. The benchmark's goal (p99 <= 50 ms) sits on a bucket boundary.
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


def error_kind(status: int) -> str | None:
    """How ``mnistctl_errors_total`` counts a response: client (4xx), timeout (504), server (other 5xx)."""
    if status == 504:
        return "timeout"
    if status >= 500:
        return "server"
    if status >= 400:
        return "client"
    return None


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _labels(names: tuple[str, ...], values: tuple[str, ...]) -> str:
    return ",".join(f'{name}="{_escape(value)}"' for name, value in zip(names, values, strict=True))


class Metrics:
    """The counters and the histogram; ``render`` writes them in Prometheus' text exposition format."""

    def __init__(self) -> None:
        self.requests: Counter[tuple[str, str, str]] = Counter()  # (endpoint, model, status)
        self.errors: Counter[tuple[str, str, str]] = Counter()  # (endpoint, model, kind)
        self.images: Counter[tuple[str, str]] = Counter()  # (endpoint, model)
        # (endpoint, model) -> [count in each bucket (not cumulative), then the +Inf one], sum
        self.latency: dict[tuple[str, str], tuple[list[int], list[float]]] = {}

    def observe(
        self, endpoint: str, model: str, status: int, seconds: float, images: int = 0, image_errors: int = 0
    ) -> None:
        """Count one answered request: its status, its time, the images it answered and its error rows."""
        self.requests[endpoint, model, str(status)] += 1
        kind = error_kind(status)
        if kind is not None:
            self.errors[endpoint, model, kind] += 1
        if image_errors:
            self.errors[endpoint, model, "image"] += image_errors
        if images:
            self.images[endpoint, model] += images
        counts, total = self.latency.setdefault((endpoint, model), ([0] * (len(BUCKETS) + 1), [0.0]))
        counts[bisect.bisect_left(BUCKETS, seconds)] += 1
        total[0] += seconds

    def render(self) -> str:
        lines: list[str] = []

        def counter(name: str, text: str, names: tuple[str, ...], values: Counter) -> None:
            lines.extend((f"# HELP {name} {text}", f"# TYPE {name} counter"))
            lines.extend(f"{name}{{{_labels(names, key)}}} {count}" for key, count in sorted(values.items()))

        counter("mnistctl_requests_total", "HTTP requests answered.", ("endpoint", "model", "status"), self.requests)
        counter(
            "mnistctl_errors_total",
            "Error answers (kind client, server, timeout) and per-image error rows (kind image).",
            ("endpoint", "model", "kind"),
            self.errors,
        )
        counter("mnistctl_images_total", "Images answered with a digit.", ("endpoint", "model"), self.images)
        name = "mnistctl_request_seconds"
        lines.extend((f"# HELP {name} Time from a request's arrival to its answer.", f"# TYPE {name} histogram"))
        for key, (counts, total) in sorted(self.latency.items()):
            labels = _labels(("endpoint", "model"), key)
            cumulative = 0
            for bound, count in zip((*BUCKETS, None), counts, strict=True):
                cumulative += count
                edge = "+Inf" if bound is None else repr(bound)
                lines.append(f'{name}_bucket{{{labels},le="{edge}"}} {cumulative}')
            lines.append(f"{name}_sum{{{labels}}} {total[0]!r}")
            lines.append(f"{name}_count{{{labels}}} {cumulative}")
        return "\n".join(lines) + "\n"
