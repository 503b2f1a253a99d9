"""The answer for each image -- digit, calibrated confidence, top K, the low-confidence flag -- as rows.

Shared by ``mnistctl predict`` and the HTTP server (``mnistctl serve``): the same image and model give the same
row either way. The library never prints; callers drop the private ``_`` keys before showing a row.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from mnistctl.second_look import looked_again

# Below this calibrated confidence an answer is flagged "low" (in the table and as "low_confidence" in JSON):
# where the model itself puts the chance of being wrong at 1 in 10 or more. A confidently wrong answer is the
# worst this tool can print. At 0.6 the flag left about 60% of the builtin's mistakes on synthetic form crops
# unflagged (answers between 0.6 and 0.9 there were wrong 1 time in 6); at 0.9 it marks about 85% of them and
# 5% of the right answers (1.6% on MNIST's test set). tests/bench/RESULTS.md has the measurements.
LOW_CONFIDENCE = 0.9
NO_ANSWER = "the model gave no answer for this image (NaN or infinite output)"


def is_low(confidence: float | np.ndarray) -> bool | np.ndarray:
    """Whether a confidence (or each of an array of them) is flagged low. In float64: float32(0.9) is just
    under 0.9, and an answer must be flagged the same whichever way its confidence was stored."""
    low = np.asarray(confidence, dtype=np.float64) < LOW_CONFIDENCE
    return bool(low) if low.ndim == 0 else low


# (display name, a path or the image's bytes or None, the error that already stopped it or None)
Entry = tuple[str, "Path | bytes | None", "str | None"]


def answer(probabilities: np.ndarray, top_k: int, classes: list[str] | None = None) -> dict[str, Any] | None:
    """``digit``, ``confidence``, ``top_k`` (``[[digit, p], ...]``, best first) and ``low_confidence`` for one
    image's 10 probabilities; None when they are not all finite (no answer beats a made-up one).

    ``classes`` (a model's class names, when its labels are not the digits) adds ``label``, the name of
    ``digit`` (which stays the class index), e.g. "Sneaker" for 7 of a Fashion-MNIST model.
    """
    if not np.isfinite(probabilities).all():
        return None
    order = np.argsort(probabilities)[::-1][:top_k]
    confidence = float(probabilities[order[0]])
    found = {
        "digit": int(order[0]),
        "confidence": confidence,
        "top_k": [[int(d), float(probabilities[d])] for d in order],
        "low_confidence": is_low(confidence),
    }
    if classes:
        found["label"] = classes[found["digit"]]
    return found


def _preprocessed(entries: list[Entry], raw: bool, parallel: bool) -> list[np.ndarray | str]:
    """A (K, 28, 28) stack of readings or an error message for each entry without an error of its own, in order."""
    from mnistctl.preprocess import preprocess_many

    readable = [(source, name) for name, source, error in entries if not error and source is not None]
    return preprocess_many(readable, raw=raw, parallel=parallel, readings=True)


# Weighed readings whose best two digits are closer than this are a tie (see ``weigh_readings``).
_TIE = 0.01


def weigh_readings(first: np.ndarray, other: np.ndarray) -> np.ndarray:
    """The probabilities for an image read two ways (``first``: the digit as located; ``other``: with strokes
    in its ink that may belong to it, ``Located.doubt``; the other way round where the fuller reading is the
    likelier, ``Located.doubt_first``): the first reading's, unless the other is a sure
    answer (not flagged low) for a different digit. Then the image may as well be either digit, and the mean of
    the two says so: its best confidence is at most 0.75 (the first reading gave the other's digit at most
    0.5), so the answer is flagged whichever digit wins. (When the first reading was unsure itself, the mean
    may be surer than it was, up to that 0.75.) A reading with a stroke that is not the digit's seldom makes a
    sure answer; the second reading of a 7 whose bar stands apart from its stem (a sure "1" without it) does."""
    if not second_counts(first, other):
        return first
    mean = (first + other) / 2
    # Two sure readings make a tie (0.50 against 0.50, either way by a hair): it goes to the first reading's
    # digit (the likelier, ``Located.doubt_first``), not to whichever rounding favoured.
    mine, best = int(first.argmax()), int(mean.argmax())
    if mean[best] - mean[mine] < _TIE:
        mean[[mine, best]] = mean[[best, mine]]
    return mean


def second_counts(first: np.ndarray, other: np.ndarray) -> bool:
    """Whether ``weigh_readings`` takes the mean: the other reading is a sure answer for a different digit."""
    return bool(np.isfinite(other).all() and first.argmax() != other.argmax() and not is_low(float(other.max())))


def predict_readings(
    readings: list[np.ndarray], predict: Callable[[np.ndarray], np.ndarray]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The first reading of each image (N, 28, 28), its probabilities (N, 10), each image's readings weighed
    by ``weigh_readings``, and whether both readings counted (N,); ``readings`` holds a (K, 28, 28) stack per
    image, K 1 or 2 (``to_mnist``). Every reading the model is unsure of gets a second look
    (``second_look.looked_again``) before they are weighed; ``predict`` is called once, or twice for that."""
    if not readings:
        return np.zeros((0, 28, 28), np.float32), np.zeros((0, 10), np.float32), np.zeros(0, bool)
    counts = [len(stack) for stack in readings]
    stacked = np.concatenate(readings)
    probabilities = looked_again(stacked, predict(stacked), predict)
    starts = np.cumsum([0, *counts[:-1]])
    both = np.array(
        [
            count > 1 and second_counts(probabilities[start], probabilities[start + 1])
            for start, count in zip(starts, counts, strict=True)
        ],
        dtype=bool,
    )
    weighed = [
        weigh_readings(probabilities[start], probabilities[start + 1]) if count > 1 else probabilities[start]
        for start, count in zip(starts, counts, strict=True)
    ]
    return np.stack([stack[0] for stack in readings]), np.stack(weighed), both


def readings_picture(readings: np.ndarray, across: bool = True) -> np.ndarray:
    """The readings of one image (K, 28, 28) in one picture, left to right (``across``) or top to bottom,
    parted by a grey bar 2 px wide: what ``--show`` and ``--save-worst`` draw when the answer weighed two."""
    bar = np.full((28, 2) if across else (2, 28), 96, readings.dtype)
    parts = [readings[0]]
    for reading in readings[1:]:
        parts += [bar, reading]
    return np.hstack(parts) if across else np.vstack(parts)


def predict_rows(
    entries: list[Entry],
    predict: Callable[[np.ndarray], np.ndarray],
    *,
    raw: bool = False,
    top_k: int = 3,
    min_confidence: float | None = None,
    parallel: bool = True,
    classes: list[str] | None = None,
) -> list[dict[str, Any]]:
    """One row per entry, in order: ``{"file", "digit", "confidence", "top_k", "low_confidence"}`` or
    ``{"file", "error"}``.

    ``predict`` maps a (N, 28, 28) batch to calibrated (N, 10) probabilities; it is called only when some image
    could be read, once, and a second time for the unsure answers' second look (``second_look``). Answers below
    ``min_confidence`` become unsure rows (``digit`` None, the best guess kept as ``best_guess``). A row with an
    answer also carries the 28x28 input under ``_image``, the readings its answer weighed under ``_readings``
    (K, 28, 28; the first, or both) and all ten probabilities under ``_probabilities``. ``parallel`` lets large
    batches be preprocessed in forked processes. ``classes`` names the answers as ``answer`` does.
    """
    processed = iter(_preprocessed(entries, raw, parallel))
    inputs: list[np.ndarray] = []
    rows: list[dict[str, Any]] = []
    for name, source, error in entries:
        outcome = error or (next(processed) if source is not None else "no image")
        if isinstance(outcome, str):
            rows.append({"file": name, "error": outcome})
        else:
            inputs.append(outcome)
            rows.append({"file": name})
    if not inputs:
        return rows
    batch, probabilities, both = predict_readings(inputs, predict)
    ok_rows = [row for row in rows if "error" not in row]
    for row, image, probs, readings, twice in zip(ok_rows, batch, probabilities, inputs, both, strict=True):
        found = answer(probs, top_k, classes)
        if found is None:
            # A model can still fail on one input (e.g. an overflow).
            row["error"] = NO_ANSWER
            continue
        row.update(found)
        if min_confidence is not None and found["confidence"] < min_confidence:
            row.update(digit=None, best_guess=found["digit"], unsure=True)
            if classes:
                row.update(label=None, best_guess_label=classes[found["digit"]])
        row["_image"] = image
        row["_readings"] = readings[: 2 if twice else 1]
        row["_probabilities"] = probs
    return rows


def public(row: dict[str, Any]) -> dict[str, Any]:
    """``row`` without its private ``_`` keys: what ``predict --json`` prints."""
    return {key: value for key, value in row.items() if not key.startswith("_")}
