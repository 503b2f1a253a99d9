"""Classification metrics in numpy: accuracy, log loss, confusion matrix, per-class P/R/F1, and how many
right and wrong answers the low-confidence flag marks.

Rows of the confusion matrix are true classes, columns predicted ones (as scikit-learn does).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mnistctl.prediction import LOW_CONFIDENCE, is_low

NUM_CLASSES = 10


@dataclass(frozen=True)
class ClassReport:
    digit: int
    precision: float
    recall: float
    f1: float
    support: int


@dataclass(frozen=True)
class Flagged:
    """Answers below ``below`` (the confidence ``predict`` flags as low), right and wrong: a useful flag marks
    most of the ``wrong`` answers and few of the ``right`` ones."""

    below: float
    wrong: int  # answered and wrong
    wrong_flagged: int
    right: int
    right_flagged: int


@dataclass(frozen=True)
class Evaluation:
    accuracy: float
    loss: float
    confusion: np.ndarray  # (10, 10) int, rows true, columns predicted; unanswered images are in no cell
    per_class: tuple[ClassReport, ...]
    flagged: Flagged  # how the low-confidence flag splits the answers
    unanswered: int = 0  # images whose probabilities were not finite (a broken model): counted wrong

    def most_confused(self, count: int = 5) -> list[tuple[int, int, int]]:
        """The ``count`` largest off-diagonal cells as (true, predicted, how many), largest first."""
        off = self.confusion.copy()
        np.fill_diagonal(off, 0)
        order = np.argsort(off, axis=None)[::-1][:count]
        pairs = [(int(i // NUM_CLASSES), int(i % NUM_CLASSES), int(off.flat[i])) for i in order]
        return [pair for pair in pairs if pair[2] > 0]


def confusion_matrix(labels: np.ndarray, predictions: np.ndarray) -> np.ndarray:
    matrix = np.zeros((NUM_CLASSES, NUM_CLASSES), dtype=np.int64)
    np.add.at(matrix, (labels.astype(np.int64), predictions.astype(np.int64)), 1)
    return matrix


def answered(probabilities: np.ndarray) -> np.ndarray:
    """Which rows of ``probabilities`` (N, 10) are an answer at all: a row holding NaN or infinity is not."""
    return np.isfinite(probabilities).all(axis=1)


def log_loss(labels: np.ndarray, probabilities: np.ndarray) -> float:
    """Mean categorical cross-entropy, probabilities clipped as Keras does (1e-7).

    A row that is no answer (NaN, infinity) scores as probability 0 for the true class, the worst there is,
    so one broken output cannot turn the whole loss into NaN.
    """
    picked = probabilities[np.arange(len(labels)), labels.astype(np.int64)]
    picked = np.where(answered(probabilities), picked, 0.0)
    return float(-np.mean(np.log(np.clip(picked, 1e-7, 1.0))))


def evaluate(labels: np.ndarray, probabilities: np.ndarray) -> Evaluation:
    """All metrics for true ``labels`` (N,) and predicted ``probabilities`` (N, 10).

    Rows that are no answer (NaN, infinity) count as wrong: argmax would otherwise read NaN as a confident
    vote for some digit and give a broken model a score.
    """
    labels = np.asarray(labels).astype(np.int64)
    probabilities = np.asarray(probabilities)
    ok = answered(probabilities)
    matrix = confusion_matrix(labels[ok], probabilities[ok].argmax(axis=1))
    true_positive = np.diag(matrix).astype(np.float64)
    predicted = matrix.sum(axis=0)
    support = np.bincount(labels, minlength=NUM_CLASSES)  # every image, answered or not
    precision = np.divide(true_positive, predicted, out=np.zeros(NUM_CLASSES), where=predicted > 0)
    recall = np.divide(true_positive, support, out=np.zeros(NUM_CLASSES), where=support > 0)
    denominator = precision + recall
    f1 = np.divide(2 * precision * recall, denominator, out=np.zeros(NUM_CLASSES), where=denominator > 0)
    per_class = tuple(
        ClassReport(digit, float(precision[digit]), float(recall[digit]), float(f1[digit]), int(support[digit]))
        for digit in range(NUM_CLASSES)
    )
    accuracy = float(true_positive.sum() / max(len(labels), 1))
    unanswered = int(len(labels) - np.count_nonzero(ok))
    flagged = flag_counts(labels[ok], probabilities[ok])
    return Evaluation(accuracy, log_loss(labels, probabilities), matrix, per_class, flagged, unanswered)


def flag_counts(labels: np.ndarray, probabilities: np.ndarray) -> Flagged:
    """How many of the right and of the wrong answers (``probabilities``: finite rows only; an image the model
    gave no answer for is neither) ``predict`` would flag as low confidence."""
    right = probabilities.argmax(axis=1) == labels
    low = is_low(probabilities.max(axis=1))
    return Flagged(
        LOW_CONFIDENCE,
        int(np.count_nonzero(~right)),
        int(np.count_nonzero(~right & low)),
        int(np.count_nonzero(right)),
        int(np.count_nonzero(right & low)),
    )
