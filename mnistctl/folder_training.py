"""``train --data DIR`` and ``train --from REF``: a labelled folder as training data, a registered version as the
starting point.

A folder ``DIR/<digit>/*.png`` goes through the same preprocessing as ``predict`` (``preprocess_many``); files that
cannot be read or show no digit are listed and skipped (fatal only when all are). The folder's images are shuffled
with the run's seed (a folder is sorted by class: "the last fraction" would hold out only nines), a fixed
``FOLDER_TEST_SPLIT`` of them is held out as the test set the version's test metrics are measured on, and the
validation split is taken from the rest as usual.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mnistctl.data.spec import DIGIT_CLASSES
from mnistctl.errors import InvalidDataError, UsageError

if TYPE_CHECKING:
    import numpy as np

    from mnistctl.registry import ModelVersion

# The share of a folder's images held out for the test metrics (at least one image).
FOLDER_TEST_SPLIT = 0.1
# Fine-tuning's recipe: the parent's optimizer at a tenth of its learning rate, for this many epochs.
FINE_TUNE_EPOCHS = 3
FINE_TUNE_LR_FACTOR = 0.1


@dataclass(frozen=True)
class FolderData:
    train: tuple[np.ndarray, np.ndarray]  # images (uint8-range float32 28x28) and digit labels, shuffled
    test: tuple[np.ndarray, np.ndarray]  # the held-out part
    fingerprint: str
    record: dict[str, Any]  # params["data"]: folder, images, skipped
    test_on: str  # metrics["test_on"]


def folder_key(root: Path | str) -> str:
    """The folder as recorded (absolute, resolved)."""
    return str(Path(root).expanduser().resolve())


def load_folder(root: Path | str, seed: int, *, stage: Any = None) -> FolderData:
    """Read, preprocess, shuffle (by ``seed``) and split the labelled folder ``root``."""
    import numpy as np

    from mnistctl.data.folder import read_labelled_folder
    from mnistctl.preprocess import preprocess_many

    folder = read_labelled_folder(Path(root))
    wrong = [name for name in folder.classes if name not in DIGIT_CLASSES]
    if wrong:
        named = ", ".join(f'"{name}"' for name in wrong[:3]) + (f" and {len(wrong) - 3} more" if len(wrong) > 3 else "")
        raise UsageError(
            f"label folder {named} in {folder.root} is not a digit: train --data supports only folders named 0 to 9"
            " for now (other class names are future work)",
            hint="rename each folder to the digit its images show, or move it out",
        )
    if stage is not None:
        stage(f"reading {len(folder):,} images from {folder.root}…")
    outcomes = preprocess_many([(folder.root / f, f.as_posix()) for f in folder.files])
    kept = [i for i, outcome in enumerate(outcomes) if not isinstance(outcome, str)]
    skipped = [(folder.files[i].as_posix(), o) for i, o in enumerate(outcomes) if isinstance(o, str)]
    if not kept:
        raise InvalidDataError(
            f"none of the {len(folder):,} images in {folder.root} could be used ({skipped[0][0]}: {skipped[0][1]})",
            hint="check that they are image files showing one digit each",
        )
    images = np.stack([outcomes[i] for i in kept]).astype(np.float32)
    labels = np.array([int(folder.classes[folder.labels[i]]) for i in kept], dtype=np.int64)
    if len(kept) < 2:
        raise UsageError(f"{folder.root} has only {len(kept)} usable image: too few to train and test on")
    digest = hashlib.sha256()
    digest.update(np.ascontiguousarray(images).tobytes())
    digest.update(labels.tobytes())
    order = np.random.default_rng(seed).permutation(len(labels))
    held_out = max(1, round(len(labels) * FOLDER_TEST_SPLIT))
    test, train = order[:held_out], order[held_out:]
    key = folder_key(folder.root)
    return FolderData(
        train=(images[train], labels[train]),
        test=(images[test], labels[test]),
        fingerprint=digest.hexdigest(),
        record={"folder": key, "images": len(kept), "skipped": [f"{name}: {why}" for name, why in skipped]},
        test_on=f"folder:{key} (held out: {held_out:,} images)",
    )


def describe_skipped(data: FolderData, most: int = 10) -> list[str]:
    """Lines naming the skipped files (the first ``most``)."""
    skipped = data.record["skipped"]
    if not skipped:
        return []
    lines = [f"skipped {len(skipped):,} file{'' if len(skipped) == 1 else 's'} of {data.record['folder']}:"]
    lines += [f"  {line}" for line in skipped[:most]]
    if len(skipped) > most:
        lines.append(f"  … and {len(skipped) - most:,} more")
    return lines


def resolve_parent(ref: str) -> ModelVersion:
    """The version ``train --from REF`` starts from (builtin allowed); the registry's usual error otherwise."""
    from mnistctl.archs import CUSTOM_ARCH, arch_names
    from mnistctl.registry import Registry

    version = Registry().resolve(ref)
    if version.arch not in (*arch_names(), CUSTOM_ARCH):
        raise UsageError(
            f"{version.ref} has architecture {version.arch!r}, which train cannot rebuild: it cannot be fine-tuned",
            hint="fine-tune a version trained by mnistctl train, or builtin",
        )
    return version


def parent_record(version: ModelVersion) -> dict[str, Any]:
    """What a child records of its parent (params["parent"])."""
    return {"ref": version.ref, "weights_sha256": version.weights_sha256}


def fine_tune_learning_rate(version: ModelVersion) -> float:
    """A tenth of the parent's learning rate (its recipe's when it recorded none)."""
    from mnistctl.archs import get_arch

    recorded = version.params.get("learning_rate")
    if not isinstance(recorded, (int, float)) or isinstance(recorded, bool) or recorded <= 0:
        recorded = get_arch(version.arch).recipe.learning_rate
    return float(recorded) * FINE_TUNE_LR_FACTOR


def load_parent_weights(model: Any, parent: dict[str, Any]) -> None:
    """Set ``model``'s weights to those of the recorded parent, checked against its recorded sha256."""
    from mnistctl.convert import weights_sha256
    from mnistctl.errors import MnistctlError
    from mnistctl.model_io import load_version_model
    from mnistctl.registry import Registry

    registry = Registry()
    version = registry.resolve(parent["ref"])
    if version.weights_sha256 != parent["weights_sha256"]:
        raise MnistctlError(
            f"{parent['ref']} is no longer the version this run started from (its weights changed)",
            hint="start a new fine-tuning run",
        )
    source = load_version_model(registry, version)
    model.set_weights(source.get_weights())
    if weights_sha256(source) != parent["weights_sha256"]:  # pragma: no cover - the store verifies artifacts
        raise MnistctlError(f"{parent['ref']}'s stored weights do not match its record")
