"""The model shipped inside the package, used when the registry is empty (or with ``--model builtin``).

Its files sit beside this module: ``model.tflite`` (what predict runs), ``model.keras`` (for the
Keras fallback and export) and ``model.json`` (everything the registry would record about it).
``python -m mnistctl.builtin.build`` retrains it from MNIST and rewrites all three.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

BUILTIN_NAME = "builtin"
FOLDER = Path(__file__).resolve().parent
METADATA_FILE = "model.json"
ARTIFACT_FILES = ("model.tflite", "model.keras", "history.json")


def available() -> bool:
    return (FOLDER / METADATA_FILE).is_file() and (FOLDER / "model.tflite").is_file()


@cache
def metadata() -> dict[str, Any]:
    return json.loads((FOLDER / METADATA_FILE).read_text())


def artifact_path(kind: str) -> Path:
    return FOLDER / kind
