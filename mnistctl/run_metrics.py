"""metrics.csv: a training run's table of epochs, written by ``train`` and read back by ``inspect --history``.

Kept apart from ``mnistctl.training`` so that reading a version's history back does not load the trainer.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

METRICS_CSV = "metrics.csv"
METRICS_COLUMNS = ("epoch", "loss", "accuracy", "val_loss", "val_accuracy", "seconds", "learning_rate")


def metrics_table(
    history: Mapping[str, Sequence[float]],
    epoch_seconds: Sequence[float],
    learning_rates: Sequence[float],
    epochs: int,
) -> str:
    """A header, then one row per epoch (numbered from 1); a value not recorded, or not finite, is an empty cell."""

    def cell(values: Sequence[float], index: int) -> str:
        value = values[index] if index < len(values) else None
        return repr(float(value)) if isinstance(value, int | float) and math.isfinite(value) else ""

    columns = [history.get(key, []) for key in METRICS_COLUMNS[1:5]] + [epoch_seconds, learning_rates]
    rows = [",".join(METRICS_COLUMNS)]
    rows += [",".join([str(index + 1), *(cell(values, index) for values in columns)]) for index in range(epochs)]
    return "\n".join(rows) + "\n"
