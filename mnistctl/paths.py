"""Where mnistctl keeps its files, and the name of every environment variable it reads.

Nothing here touches the disk at import time; folders are created by the code that writes them.
"""

from __future__ import annotations

import os
from pathlib import Path

from mnistctl.errors import MnistctlError

ENV_HOME = "MNISTCTL_HOME"
ENV_MIRROR = "MNISTCTL_MIRROR"
ENV_NO_DEFAULT_MIRRORS = "MNISTCTL_NO_DEFAULT_MIRRORS"
ENV_DEBUG = "MNISTCTL_DEBUG"
ENV_MODEL = "MNISTCTL_MODEL"
ENV_KERAS_HOME = "KERAS_HOME"
# Seconds to wait for another mnistctl that holds a dataset folder's lock (default 600).
ENV_LOCK_TIMEOUT = "MNISTCTL_LOCK_TIMEOUT"
# Test hook: the registry kills its own process with SIGKILL at this named point.
ENV_CRASH_POINT = "MNISTCTL_CRASH_POINT"
# The bearer token ``mnistctl serve`` requires of API requests (blank means none).
ENV_TOKEN = "MNISTCTL_TOKEN"
# Internal: ``mnistctl serve`` hands its settings to its worker processes in this variable (JSON).
ENV_SERVE_CONFIG = "MNISTCTL_SERVE_CONFIG"


def home() -> Path:
    """The home folder: ``$MNISTCTL_HOME`` (blank means unset) or the platform's user data dir.

    A ``$MNISTCTL_HOME`` that exists but is not a folder (a file, a dangling symlink) is refused here, once,
    instead of surfacing as "File exists" or "Not a directory" from whichever write comes first.
    """
    configured = os.environ.get(ENV_HOME, "").strip()
    if configured:
        path = Path(configured).expanduser()
        if path.is_symlink() and not path.exists():
            raise HomeFolderError(f"{ENV_HOME}={configured} is a symlink to a missing folder")
        if path.exists() and not path.is_dir():
            raise HomeFolderError(f"{ENV_HOME}={configured} is a file, not a folder")
        return path
    from platformdirs import user_data_dir

    return Path(user_data_dir("mnistctl", appauthor=False))


class HomeFolderError(MnistctlError):
    """``$MNISTCTL_HOME`` names something that cannot be the home folder."""

    default_hint = f"point {ENV_HOME} at a folder (it is created when missing) or unset it"


def runs_dir() -> Path:
    """In-progress training runs (checkpoints for --resume), removed once registered."""
    return home() / "runs"


def dataset_dir(name: str = "mnist") -> Path:
    """Folder holding one data set's verified files."""
    return home() / "datasets" / name


def keras_cached_npz() -> Path | None:
    """The Keras cache file ``mnist.npz`` if present (``$KERAS_HOME`` or ``~/.keras``)."""
    keras_home = os.environ.get(ENV_KERAS_HOME)
    base = Path(keras_home).expanduser() if keras_home else Path.home() / ".keras"
    candidate = base / "datasets" / "mnist.npz"
    return candidate if candidate.is_file() else None


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() not in ("", "0", "false", "no")


def debug_enabled() -> bool:
    """True when ``MNISTCTL_DEBUG`` asks for tracebacks and library chatter."""
    return _env_flag(ENV_DEBUG)


def default_mirrors_disabled() -> bool:
    """True when ``MNISTCTL_NO_DEFAULT_MIRRORS`` restricts downloads to the user's own mirrors."""
    return _env_flag(ENV_NO_DEFAULT_MIRRORS)


def env_mirrors() -> list[str]:
    """Mirrors from ``$MNISTCTL_MIRROR`` (several may be separated by whitespace or commas)."""
    raw = os.environ.get(ENV_MIRROR, "")
    return [part for part in raw.replace(",", " ").split() if part]
