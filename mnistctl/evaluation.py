"""Evaluate a registered version on a split of MNIST or on a labelled folder, and record the result.

A labelled folder (``DIR/<digit>/*.png``) goes through the same preprocessing as ``predict``.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from mnistctl.data.folder import LabelledFolder, read_labelled_folder
from mnistctl.errors import InvalidDataError, UsageError
from mnistctl.inference import Predictor
from mnistctl.metrics import NUM_CLASSES, Evaluation, evaluate
from mnistctl.prediction import predict_readings, readings_picture
from mnistctl.registry import ModelVersion, Registry
from mnistctl.second_look import LOOK_AGAIN_BELOW

WORST_COUNT = 16


@dataclass(frozen=True)
class EvaluationReport:
    version: ModelVersion
    split: str
    images: int
    backend: str
    seconds: float
    result: Evaluation
    calibration_error: float
    recorded: bool  # stored against the version (not for the builtin model, nor in a read-only home)
    dataset: str = "mnist"  # the data set whose split was evaluated


@dataclass(frozen=True)
class Mistake:
    """A wrong answer: which file, its label, what the model said and how sure it was."""

    file: Path  # relative to the folder
    label: int
    digit: int
    confidence: float
    seen: np.ndarray  # the 28x28 input the model saw (two side by side when the answer weighed two readings)


@dataclass(frozen=True)
class FolderReport:
    version: ModelVersion
    folder: LabelledFolder
    images: int  # the images scored (the folder's images less the skipped ones)
    backend: str
    seconds: float  # reading, preprocessing and inference
    result: Evaluation
    calibration_error: float
    recorded: bool  # stored against the version (not for the builtin model, nor in a read-only home)
    skipped: tuple[tuple[Path, str], ...]  # (file relative to the folder, why)
    worst: tuple[Mistake, ...]  # the most confident mistakes, most confident first
    raw: bool


def evaluate_version(
    ref: str | None,
    split: str = "test",
    *,
    record: bool = True,
    dataset: str | None = None,
    any_dataset: bool = False,
) -> EvaluationReport:
    """Run the version ``ref`` names over ``split`` of ``dataset`` (default: the one it was trained on); store
    accuracy, loss and calibration error against it (``record=False``: the caller does, with
    ``record_evaluation``, once its own outputs are written). A data set other than the model's own is refused
    (``UsageError``) unless ``any_dataset``."""
    from mnistctl.calibration import expected_calibration_error
    from mnistctl.data.loader import load
    from mnistctl.data.spec import DATASETS, get_dataset, same_task

    registry = Registry()
    version = registry.resolve(ref)
    trained_on = version.dataset
    dataset = dataset or trained_on
    title = get_dataset(dataset).title
    if not same_task(dataset, trained_on) and not any_dataset:
        own = DATASETS[trained_on].title if trained_on in DATASETS else trained_on
        raise UsageError(
            f"{version.ref} was trained on {own}, not {title}: its labels mean other things there",
            hint=f"drop --dataset (or give --dataset {trained_on}), or pass --any-dataset to score it anyway",
        )
    images, labels = load(split, dataset=dataset)
    started = time.perf_counter()
    predictor = Predictor(registry, version)
    probabilities = predictor.predict(images)
    result = evaluate(labels, probabilities)
    ece = expected_calibration_error(labels, probabilities)
    seconds = time.perf_counter() - started
    report = EvaluationReport(version, split, len(labels), predictor.backend, seconds, result, ece, False, dataset)
    return replace(report, recorded=record_evaluation(report, registry)) if record else report


def record_evaluation(report: EvaluationReport | FolderReport, registry: Registry | None = None) -> bool:
    """Store a report's accuracy, loss and calibration error against its version, under its split (or its
    folder); False where it cannot be stored (the builtin model, a read-only home)."""
    result = report.result
    metrics = {
        "accuracy": result.accuracy,
        "loss": result.loss,
        "calibration_error": report.calibration_error,
        "images": report.images,
    }
    if isinstance(report, FolderReport):
        split = folder_split(report.folder.root)
        # Folders are read as predict reads them, second look included; records made before it lack the key.
        metrics |= {"skipped": len(report.skipped), "raw": report.raw, "second_look_below": LOOK_AGAIN_BELOW}
    elif report.dataset != report.version.dataset:
        split = f"{report.dataset}:{report.split}"  # another data set's split: never mistaken for its own
    else:
        split = report.split
    return (registry or Registry()).add_evaluation(report.version.ref, split, {**metrics, "backend": report.backend})


def folder_split(root: Path) -> str:
    """The split name a folder's evaluation is recorded under (never "test" or "train")."""
    return f"folder:{Path(root).expanduser().resolve()}"


def digit_labels(folder: LabelledFolder) -> list[int]:
    """Each file's digit, read from its folder name; every class folder must be named 0 to 9."""
    digits = [str(d) for d in range(NUM_CLASSES)]
    wrong = [name for name in folder.classes if name not in digits]
    if wrong:
        named = ", ".join(f'"{name}"' for name in wrong[:3]) + (f" and {len(wrong) - 3} more" if len(wrong) > 3 else "")
        raise UsageError(
            f"label folder {named} in {folder.root} is not a digit: a digit model is evaluated on folders named 0 to 9",
            hint="rename each folder to the digit its images show, or move it out",
        )
    return [int(folder.classes[index]) for index in folder.labels]


def evaluate_folder(
    ref: str | None, root: Path, *, raw: bool = False, worst: int = WORST_COUNT, record: bool = True
) -> FolderReport:
    """Score the version ``ref`` names on the labelled folder ``root``, preprocessed as ``predict`` does, and
    record the result (``record=False``: the caller does, with ``record_evaluation``).

    Files that cannot be read or show no digit are skipped and reported, never fatal (unless all are).
    """
    from mnistctl.calibration import expected_calibration_error
    from mnistctl.preprocess import preprocess_many

    registry = Registry()
    version = registry.resolve(ref)
    started = time.perf_counter()
    folder = read_labelled_folder(root)
    digits = digit_labels(folder)
    outcomes = preprocess_many([(folder.root / f, f.as_posix()) for f in folder.files], raw=raw, readings=True)
    kept = [i for i, outcome in enumerate(outcomes) if not isinstance(outcome, str)]
    skipped = tuple((folder.files[i], o) for i, o in enumerate(outcomes) if isinstance(o, str))
    if not kept:
        raise InvalidDataError(
            f"none of the {len(folder):,} images in {folder.root} could be used ({skipped[0][0]}: {skipped[0][1]})",
            hint="check that they are image files showing one digit each" + ("" if raw else ", or try --raw"),
        )
    labels = np.array([digits[i] for i in kept], dtype=np.int64)
    predictor = Predictor(registry, version)
    # Read as ``predict`` reads them: each image's readings weighed together.
    _, probabilities, both = predict_readings([outcomes[i] for i in kept], predictor.predict)
    result = evaluate(labels, probabilities)
    ece = expected_calibration_error(labels, probabilities)
    seconds = time.perf_counter() - started
    predicted = probabilities.argmax(axis=1)
    confidence = probabilities.max(axis=1)
    wrong = np.flatnonzero(predicted != labels)
    # Wrong and sure is the worst answer this tool can give; ties keep the folder's order.
    order = wrong[np.argsort(-confidence[wrong], kind="stable")][:worst]
    mistakes = tuple(
        Mistake(
            folder.files[kept[i]],
            int(labels[i]),
            int(predicted[i]),
            float(confidence[i]),
            readings_picture(outcomes[kept[i]][: 2 if both[i] else 1]),
        )
        for i in order
    )
    report = FolderReport(
        version, folder, len(kept), predictor.backend, seconds, result, ece, False, skipped, mistakes, raw
    )
    return replace(report, recorded=record_evaluation(report, registry)) if record else report


def percent(confidence: float, decimals: int = 0) -> str:
    """A confidence as a percentage rounded down, so a wrong answer never reads as "100%"."""
    scale = 10**decimals
    return f"{math.floor(confidence * 100 * scale) / scale:.{decimals}f}%"


def mistake_title(mistake: Mistake) -> str:
    """E.g. "7 (93%) true 1": what the model said, how sure, and the label."""
    return f"{mistake.digit} ({percent(mistake.confidence)}) true {mistake.label}"


# The image "as given" in a grid panel needs no more pixels than this on its longer side; a photo of
# 40 megapixels would otherwise hold 160 MB per panel.
THUMBNAIL_SIDE = 512


def _thumbnail(gray: np.ndarray) -> np.ndarray:
    """``gray`` area-averaged down to ``THUMBNAIL_SIDE`` on its longer side, when larger."""
    from PIL import Image

    height, width = gray.shape
    if max(height, width) <= THUMBNAIL_SIDE:
        return gray
    scale = THUMBNAIL_SIDE / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return np.asarray(Image.fromarray(gray, "F").resize(size, Image.Resampling.BOX))


def save_worst_grid(report: FolderReport, path: Path, count: int | None = None) -> None:
    """Draw the worst mistakes to ``path``: each image as given beside the 28x28 the model saw (both readings,
    side by side, where the answer weighed two)."""
    from mnistctl.plots import mistakes_grid
    from mnistctl.preprocess import load_gray

    chosen = report.worst[:count] if count is not None else report.worst
    panels = [
        (
            _thumbnail(load_gray(report.folder.root / m.file, m.file.as_posix())),
            m.seen,
            mistake_title(m),
            m.file.as_posix(),
        )
        for m in chosen
    ]
    empty = f"no mistakes: {report.version.ref} got all {report.images:,} images right"
    mistakes_grid(panels, path, title=f"{report.version.ref}: worst mistakes in {report.folder.root}", empty=empty)
