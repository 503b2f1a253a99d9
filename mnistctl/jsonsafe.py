"""Data made safe for strict JSON: NaN and infinities become null, numpy values plain Python.

``json.dumps`` writes NaN as ``NaN``, which no JSON parser but Python's accepts; every JSON document we
print or store goes through ``json_safe`` and is then dumped with ``allow_nan=False``.
"""

from __future__ import annotations

import json
import math
from typing import Any


def json_safe(value: Any) -> Any:
    """``value`` with every non-finite float replaced by None, recursively through dicts, lists and tuples
    (tuples become lists, as JSON has them); numpy scalars and arrays become Python numbers and lists."""
    if isinstance(value, dict):
        return {key: json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(item) for item in value]
    if hasattr(value, "dtype") and hasattr(value, "tolist"):
        # numpy without importing it: np.float32 is no float subclass, and json.dumps rejects it.
        return json_safe(value.tolist())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def strict_dumps(value: Any, **options: Any) -> str:
    """``value`` as strict JSON (``json_safe`` first, then no NaN allowed); ``options`` go to ``json.dumps``."""
    return json.dumps(json_safe(value), allow_nan=False, **options)
