"""Compare two models on the same labelled images: paired accuracy difference, 2x2 table, McNemar's exact test,
per-class accuracy and the images one model gets right and the other wrong.

Pure functions over numpy arrays, no I/O; ``mnistctl models compare`` runs the models and prints the result.
In the 2x2 table ``b`` counts the images A gets right and B wrong, ``c`` those A gets wrong and B right (the
discordant pairs); every difference is B minus A.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mnistctl.metrics import NUM_CLASSES, answered

Z_95 = 1.959963984540054  # the standard normal's 97.5th percentile: a two-sided 95% interval
ALPHA = 0.05  # the significance level of the verdict


def mcnemar_exact(b: int, c: int) -> float:
    """McNemar's exact test: the two-sided p-value that two models are equally accurate, from the discordant
    counts ``b`` (A right, B wrong) and ``c`` (A wrong, B right).

    Under the null hypothesis each discordant image is equally likely to go either way, so ``min(b, c)`` is
    Binomial(b + c, 1/2); the p-value is twice its lower tail, capped at 1. It is computed exactly with
    integers (no normal approximation, so small counts are right; no chi-square with continuity correction,
    which is only an approximation of this). ``b == c`` gives 1.0, and so does ``b == c == 0``.
    """
    if b < 0 or c < 0:
        raise ValueError(f"counts must not be negative (b={b}, c={c})")
    n = b + c
    low = min(b, c)
    if n == 0 or b == c:
        return 1.0
    # sum_{k <= low} C(n, k), each term from the last: C(n, k + 1) = C(n, k) (n - k) / (k + 1), exact in integers.
    term = total = 1
    for k in range(low):
        term = term * (n - k) // (k + 1)
        total += term
    return min(1.0, 2 * total / (1 << n))  # int / int is correctly rounded, however large the two are


def paired_difference(b: int, c: int, n: int, z: float = Z_95) -> tuple[float, float, float]:
    """The accuracy difference B - A on ``n`` paired images and its confidence interval (95% by default).

    The difference is (c - b) / n; its standard error is the paired (Wald) one,
    sqrt(((b + c) / n - ((c - b) / n) ** 2) / n), which accounts for both models answering the same images
    (it is much narrower than the unpaired interval when the models mostly agree). The bounds are clipped to
    [-1, 1]. No discordant pairs give (0.0, 0.0, 0.0).
    """
    if n <= 0:
        raise ValueError("no images to compare")
    if b < 0 or c < 0 or b + c > n:
        raise ValueError(f"discordant counts b={b}, c={c} do not fit {n} images")
    difference = (c - b) / n
    variance = max(0.0, ((b + c) / n - difference**2) / n)
    margin = z * variance**0.5
    return difference, max(-1.0, difference - margin), min(1.0, difference + margin)


def format_p(p: float) -> str:
    """A p-value for people: two significant digits ("0.41", "0.0031", "1"), "< 0.001" below 0.001."""
    return "< 0.001" if p < 0.001 else f"= {p:.2g}"


def verdict(p: float, b: int, c: int, name_a: str = "A", name_b: str = "B", alpha: float = ALPHA) -> str:
    """One plain-English line: "B is better: p = 0.003" or "no significant difference: p = 0.41"."""
    if p < alpha and b != c:
        better = name_b if c > b else name_a
        return f"{better} is better: p {format_p(p)}"
    return f"no significant difference: p {format_p(p)}"


@dataclass(frozen=True)
class ClassComparison:
    digit: int
    support: int
    accuracy_a: float | None  # None where the class has no images
    accuracy_b: float | None

    @property
    def difference(self) -> float | None:
        return None if self.accuracy_a is None or self.accuracy_b is None else self.accuracy_b - self.accuracy_a


@dataclass(frozen=True)
class Comparison:
    """Two models' answers to the same ``labels``; predictions are -1 where a model gave no answer (NaN)."""

    labels: np.ndarray  # (N,) int
    predicted_a: np.ndarray  # (N,) int
    predicted_b: np.ndarray

    @property
    def images(self) -> int:
        return len(self.labels)

    @property
    def correct_a(self) -> np.ndarray:
        return self.predicted_a == self.labels

    @property
    def correct_b(self) -> np.ndarray:
        return self.predicted_b == self.labels

    @property
    def table(self) -> tuple[tuple[int, int], tuple[int, int]]:
        """((both right, A right B wrong), (A wrong B right, both wrong))."""
        a, b = self.correct_a, self.correct_b
        count = np.count_nonzero
        return (count(a & b), count(a & ~b)), (count(~a & b), count(~a & ~b))

    @property
    def discordant(self) -> tuple[int, int]:
        """(b, c): A right and B wrong, A wrong and B right."""
        (_, b), (c, _) = self.table
        return b, c

    @property
    def accuracy_a(self) -> float:
        return float(np.count_nonzero(self.correct_a)) / max(self.images, 1)

    @property
    def accuracy_b(self) -> float:
        return float(np.count_nonzero(self.correct_b)) / max(self.images, 1)

    @property
    def p_value(self) -> float:
        return mcnemar_exact(*self.discordant)

    def difference(self, z: float = Z_95) -> tuple[float, float, float]:
        """Accuracy B - A and its 95% interval (see ``paired_difference``)."""
        return paired_difference(*self.discordant, self.images, z)

    def per_class(self) -> tuple[ClassComparison, ...]:
        """Each digit's accuracy (recall) for both models."""
        rows = []
        for digit in range(NUM_CLASSES):
            mask = self.labels == digit
            support = int(np.count_nonzero(mask))
            if support == 0:
                rows.append(ClassComparison(digit, 0, None, None))
                continue
            rows.append(
                ClassComparison(
                    digit,
                    support,
                    float(np.count_nonzero(self.correct_a[mask])) / support,
                    float(np.count_nonzero(self.correct_b[mask])) / support,
                )
            )
        return tuple(rows)

    def only_a_right(self, count: int | None = None) -> np.ndarray:
        """Indices of the images A gets right and B wrong, in order; the first ``count`` of them."""
        return np.flatnonzero(self.correct_a & ~self.correct_b)[:count]

    def only_b_right(self, count: int | None = None) -> np.ndarray:
        """Indices of the images B gets right and A wrong, in order; the first ``count`` of them."""
        return np.flatnonzero(~self.correct_a & self.correct_b)[:count]


def predictions(probabilities: np.ndarray) -> np.ndarray:
    """Each row's digit, or -1 where the row is no answer (NaN, infinity): counted wrong, as ``evaluate`` does."""
    probabilities = np.asarray(probabilities)
    if len(probabilities) == 0:
        return np.zeros(0, dtype=np.int64)
    ok = answered(probabilities)
    return np.where(ok, np.nan_to_num(probabilities).argmax(axis=1), -1).astype(np.int64)


def compare(labels: np.ndarray, probabilities_a: np.ndarray, probabilities_b: np.ndarray) -> Comparison:
    """Compare two models' class probabilities (N, 10) on the same ``labels`` (N,)."""
    labels = np.asarray(labels).astype(np.int64)
    predicted_a, predicted_b = predictions(probabilities_a), predictions(probabilities_b)
    if not len(labels) == len(predicted_a) == len(predicted_b):
        raise ValueError(f"{len(labels)} labels but {len(predicted_a)} and {len(predicted_b)} answers")
    return Comparison(labels, predicted_a, predicted_b)
