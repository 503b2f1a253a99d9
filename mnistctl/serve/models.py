"""The models a server answers with: refs re-resolved every second, one locked LiteRT predictor per version.

A ref (``mlp@best``, the default) is resolved against the registry at most once a second, so an alias that moves,
a new default or a removed version is seen within a second, without a restart and without SQLite on every
request. Predictors are kept per version (the last few used): a LiteRT interpreter is not thread-safe, so each
answers one batch at a time under its own lock.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from mnistctl.errors import MnistctlError
from mnistctl.inference import Predictor
from mnistctl.registry import ModelVersion, Registry

RESOLVE_TTL_S = 1.0
MAX_REFS = 1024  # refs come from requests: a flood of new ones empties the cache rather than filling memory
MAX_PREDICTORS = 8


@dataclass
class ServedModel:
    """One version, loaded and warmed up; ``predict`` is safe to call from any thread."""

    version: ModelVersion
    predictor: Predictor
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def ref(self) -> str:
        return self.version.ref

    def predict(self, batch: np.ndarray) -> np.ndarray:
        """Calibrated probabilities (N, 10) for pixels (N, 28, 28)."""
        with self.lock:
            return self.predictor.predict(batch)


def _copy(exc: MnistctlError) -> MnistctlError:
    # A cached failure is raised afresh each time: one exception object raised in several threads at once would
    # have its traceback rewritten under the others.
    fresh = MnistctlError.__new__(type(exc))
    MnistctlError.__init__(fresh, exc.message, hint=exc.hint)
    return fresh


class ModelCache:
    """Resolves refs (``None``: the server's default) and hands out loaded models; thread-safe."""

    def __init__(
        self, default: str | None = None, registry: Registry | None = None, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.default = default
        self.registry = registry or Registry()
        self._clock = clock
        self._lock = threading.Lock()
        self._load_lock = threading.Lock()
        self._resolved: dict[str | None, tuple[float, ModelVersion | MnistctlError]] = {}
        self._loaded: OrderedDict[tuple[int, str], ServedModel] = OrderedDict()
        self._listed: tuple[float, list[ModelVersion]] | None = None

    @staticmethod
    def _key(version: ModelVersion) -> tuple[int, str]:
        # Row ids can be reused after the newest version is removed; the weights' checksum tells versions apart.
        return version.id, version.weights_sha256

    def _fresh(self, ref: str | None) -> ModelVersion | None:
        """The version ``ref`` resolved to less than a second ago (raising what it failed with), else None."""
        entry = self._resolved.get(ref)
        if entry is None or entry[0] <= self._clock():
            return None
        if isinstance(entry[1], MnistctlError):
            raise _copy(entry[1])
        return entry[1]

    def resolve(self, ref: str | None) -> ModelVersion:
        """The version ``ref`` names now (at most a second old). Raises ``MnistctlError`` as ``Registry.resolve``."""
        ref = self.default if ref is None else ref
        version = self._fresh(ref)
        if version is not None:
            return version
        try:
            outcome: ModelVersion | MnistctlError = self.registry.resolve(ref)
        except MnistctlError as exc:
            outcome = exc
        with self._lock:
            if len(self._resolved) >= MAX_REFS:
                self._resolved.clear()
            self._resolved[ref] = (self._clock() + RESOLVE_TTL_S, outcome)
        if isinstance(outcome, MnistctlError):
            raise _copy(outcome)
        return outcome

    def cached(self, ref: str | None) -> ServedModel | None:
        """The loaded model for ``ref`` when both its resolution and its predictor are at hand (no I/O, for the
        event loop); None when ``get`` must be called (in a thread). A failure still fresh is raised."""
        version = self._fresh(self.default if ref is None else ref)
        return None if version is None else self._loaded.get(self._key(version))

    def get(self, ref: str | None) -> ServedModel:
        """The loaded model ``ref`` names now; loads it (reads and verifies its .tflite, warms it up) if needed."""
        version = self.resolve(ref)
        key = self._key(version)
        with self._load_lock:  # one load at a time: a burst of requests for a new version loads it once
            model = self._loaded.get(key)
            if model is None:
                model = ServedModel(version, Predictor(self.registry, version, backend="litert"))
                model.predict(np.zeros((1, 28, 28), np.float32))  # builds the interpreter before a client waits
                self._loaded[key] = model
                while len(self._loaded) > MAX_PREDICTORS:
                    self._loaded.popitem(last=False)
            else:
                self._loaded.move_to_end(key)
            return model

    def versions(self) -> list[ModelVersion]:
        """Every registered version and the builtin one, at most a second old."""
        entry = self._listed
        if entry is not None and entry[0] > self._clock():
            return entry[1]
        listed = self.registry.list()
        with self._lock:
            self._listed = (self._clock() + RESOLVE_TTL_S, listed)
        return listed
