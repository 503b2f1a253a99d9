"""Evaluate a registered version on a split of MNIST and record the result in the registry."""

from __future__ import annotations

import time
from dataclasses import dataclass

from mnistctl.inference import Predictor
from mnistctl.metrics import Evaluation, evaluate
from mnistctl.registry import ModelVersion, Registry


@dataclass(frozen=True)
class EvaluationReport:
    version: ModelVersion
    split: str
    images: int
    backend: str
    seconds: float
    result: Evaluation


def evaluate_version(ref: str | None, split: str = "test", *, record: bool = True) -> EvaluationReport:
    """Run the version ``ref`` names over ``split``; store accuracy and loss against it."""
    from mnistctl.data.loader import load

    registry = Registry()
    version = registry.resolve(ref)
    images, labels = load(split)
    started = time.perf_counter()
    predictor = Predictor(registry, version)
    result = evaluate(labels, predictor.predict(images))
    seconds = time.perf_counter() - started
    if record:
        registry.add_evaluation(
            version.ref,
            split,
            {"accuracy": result.accuracy, "loss": result.loss, "images": len(labels), "backend": predictor.backend},
        )
    return EvaluationReport(version, split, len(labels), predictor.backend, seconds, result)
