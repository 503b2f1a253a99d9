"""The server's settings, and how they reach uvicorn's worker processes (one environment variable, JSON).

Workers are started fresh (uvicorn spawns them), so what the command line said travels in ``MNISTCTL_SERVE_CONFIG``.
"""

from __future__ import annotations

import ipaddress
import json
import os
from dataclasses import asdict, dataclass, field

from mnistctl.paths import ENV_SERVE_CONFIG

DEFAULT_MAX_REQUEST_BYTES = 10_000_000
DEFAULT_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class ServeConfig:
    """What one server answers with, and its limits."""

    model: str | None = None  # the ref requests without ?model= get; None: the registry's default chain
    token: str | None = None  # API requests must carry "Authorization: Bearer TOKEN" when set
    max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES
    timeout_s: float = DEFAULT_TIMEOUT_S
    cors_origins: tuple[str, ...] = field(default_factory=tuple)

    def to_env(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_env(cls) -> ServeConfig:
        """The settings the parent process left in ``MNISTCTL_SERVE_CONFIG`` (defaults when it is unset)."""
        text = os.environ.get(ENV_SERVE_CONFIG, "").strip()
        if not text:
            return cls()
        values = json.loads(text)
        values["cors_origins"] = tuple(values.get("cors_origins") or ())
        return cls(**values)


def is_loopback(host: str) -> bool:
    """Whether binding ``host`` keeps the server reachable from this machine only (127.0.0.0/8, ::1, localhost)."""
    name = host.strip().strip("[]").lower()
    if name in ("localhost", "localhost.", "ip6-localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to any address
