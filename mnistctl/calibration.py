"""Honest confidence: temperature scaling fitted on held-out data, and the calibration error that checks it.

A network's softmax is usually over-confident (or, trained with label smoothing, under-confident).
Temperature scaling (Guo et al. 2017) divides the logits by one number T fitted to minimise the
negative log-likelihood on held-out images; it never changes which class wins, only how sure the
answer claims to be. The .tflite keeps its softmax output: ``log(p)`` equals the logits up to a
per-image constant, so ``softmax(log(p) / T)`` is the same as ``softmax(logits / T)``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

ECE_BINS = 15
# Temperatures outside this range mean the held-out data says something is wrong, not "calibrate".
MIN_TEMPERATURE = 0.05
MAX_TEMPERATURE = 20.0
# A temperature is only fitted from held-out data with at least this many mistakes to learn from.
MIN_MISTAKES = 10
# float32 probabilities underflow to exactly 0; this keeps their logarithm finite and far below the rest.
_TINY = 1e-30


@dataclass(frozen=True)
class Calibration:
    """A fitted temperature and what it did on the data it was fitted on."""

    temperature: float
    images: int
    nll_before: float
    nll_after: float
    ece_before: float
    ece_after: float

    def to_dict(self) -> dict[str, float | int]:
        return {key: round(value, 6) if isinstance(value, float) else value for key, value in asdict(self).items()}


def calibrated(probabilities: np.ndarray, temperature: float) -> np.ndarray:
    """``probabilities`` (N, C) rescaled by ``temperature`` (1.0 changes nothing), float32, rows summing to 1."""
    probabilities = np.asarray(probabilities, dtype=np.float32)
    if temperature == 1.0 or probabilities.size == 0:
        return probabilities
    return softmax(logits_of(probabilities) / temperature)


def logits_of(probabilities: np.ndarray) -> np.ndarray:
    """``log(probabilities)`` in float64: the logits up to a per-image constant (finite even where p is 0)."""
    return np.log(np.maximum(np.asarray(probabilities, dtype=np.float64), _TINY))


def softmax(logits: np.ndarray) -> np.ndarray:
    """Probabilities (float32, rows summing to 1) for logits along the last axis."""
    logits = logits - logits.max(axis=-1, keepdims=True)
    scaled = np.exp(logits)
    scaled /= scaled.sum(axis=-1, keepdims=True)
    return scaled.astype(np.float32)


def negative_log_likelihood(labels: np.ndarray, probabilities: np.ndarray) -> float:
    picked = np.asarray(probabilities, dtype=np.float64)[np.arange(len(labels)), np.asarray(labels, dtype=np.int64)]
    return float(-np.mean(np.log(np.maximum(picked, _TINY))))


def expected_calibration_error(labels: np.ndarray, probabilities: np.ndarray, bins: int = ECE_BINS) -> float:
    """Top-label expected calibration error: the gap between confidence and accuracy, averaged over
    ``bins`` equal-width confidence bins weighted by how many answers fall in each (0 is perfect)."""
    probabilities = np.asarray(probabilities, dtype=np.float64)
    if len(probabilities) == 0:
        return 0.0
    confidence = probabilities.max(axis=1)
    correct = probabilities.argmax(axis=1) == np.asarray(labels)
    # Bin i holds confidences in (i/bins, (i+1)/bins]; a confidence of exactly 0 cannot occur (it is the max of C).
    index = np.clip(np.ceil(confidence * bins).astype(np.int64) - 1, 0, bins - 1)
    gap = np.bincount(index, weights=confidence, minlength=bins) - np.bincount(index, weights=correct, minlength=bins)
    return float(np.abs(gap).sum() / len(probabilities))


def too_few_mistakes(labels: np.ndarray, probabilities: np.ndarray) -> str | None:
    """Why ``probabilities`` cannot be calibrated on ``labels`` (fewer than ``MIN_MISTAKES`` wrong answers:
    the likelihood then only asks for ever more confidence), or None when they can."""
    mistakes = int(np.count_nonzero(np.argmax(probabilities, axis=1) != np.asarray(labels)))
    if mistakes >= MIN_MISTAKES:
        return None
    return f"{mistakes} mistakes on {len(labels):,} held-out images, under {MIN_MISTAKES} to fit on"


def fit_temperature(labels: np.ndarray, probabilities: np.ndarray) -> Calibration:
    """The temperature that minimises the negative log-likelihood of ``labels`` under ``probabilities``.

    The likelihood is unimodal in log T, so a golden-section search over log T finds it to 1e-4. With
    fewer than ``MIN_MISTAKES`` wrong answers, or an optimum at a bound, the temperature stays 1.0.
    """
    labels = np.asarray(labels, dtype=np.int64)
    logits = np.log(np.maximum(np.asarray(probabilities, dtype=np.float64), _TINY))

    def nll(log_temperature: float) -> float:
        scaled = logits / math.exp(log_temperature)
        scaled -= scaled.max(axis=1, keepdims=True)
        log_norm = np.log(np.exp(scaled).sum(axis=1))
        return float(np.mean(log_norm - scaled[np.arange(len(labels)), labels]))

    low, high = math.log(MIN_TEMPERATURE), math.log(MAX_TEMPERATURE)
    ratio = (math.sqrt(5) - 1) / 2
    a, b = high - ratio * (high - low), low + ratio * (high - low)
    nll_a, nll_b = nll(a), nll(b)
    while high - low > 1e-4:
        if nll_a < nll_b:
            high, b, nll_b = b, a, nll_a
            a = high - ratio * (high - low)
            nll_a = nll(a)
        else:
            low, a, nll_a = a, b, nll_b
            b = low + ratio * (high - low)
            nll_b = nll(b)
    temperature = math.exp((low + high) / 2)
    at_a_bound = min(abs(math.log(temperature) - math.log(bound)) for bound in (MIN_TEMPERATURE, MAX_TEMPERATURE))
    if too_few_mistakes(labels, probabilities) or at_a_bound < 1e-3:
        # A perfect held-out set drives T to its lower bound: keep the network's own softmax rather than
        # claim certainty.
        temperature = 1.0
    after = calibrated(probabilities, temperature)
    return Calibration(
        temperature=temperature,
        images=len(labels),
        nll_before=negative_log_likelihood(labels, probabilities),
        nll_after=negative_log_likelihood(labels, after),
        ece_before=expected_calibration_error(labels, probabilities),
        ece_after=expected_calibration_error(labels, after),
    )
