"""Helpers for benchmark scripts: describe the machine, and rewrite one section of RESULTS.md."""

from __future__ import annotations

import os
import platform
from datetime import date
from pathlib import Path


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = ""
    try:
        pages, page_size = os.sysconf("SC_PHYS_PAGES"), os.sysconf("SC_PAGE_SIZE")
        memory = f", {pages * page_size / 2**30:.0f} GiB"
    except (ValueError, OSError):
        pass
    return f"{os.cpu_count()} x {cpu}{memory}, no GPU"


def run_line() -> str:
    """ "Run on DATE, MACHINE, Python X.Y.Z" without the final full stop, for the line above a table."""
    return f"Run on {date.today().isoformat()}, {machine()}, Python {platform.python_version()}"


def replace_section(path: Path, title: str, body: str) -> None:
    """Replace (or append) the ``## title`` section of a Markdown file with ``body``."""
    text = path.read_text() if path.exists() else "# Benchmark results\n"
    heading = f"## {title}"
    start = text.find(heading)
    if start == -1:
        text = text.rstrip("\n") + f"\n\n{heading}\n\n{body}\n"
    else:
        end = text.find("\n## ", start + len(heading))
        end = len(text) if end == -1 else end + 1
        text = text[:start] + f"{heading}\n\n{body}\n" + ("\n" + text[end:] if end < len(text) else "")
    path.write_text(text)
