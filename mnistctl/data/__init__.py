"""MNIST data: file specs, download with verification, offline import, and loading into numpy.

Importing this package is cheap: numpy is imported by the submodules that decode data only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np


def load(split: str = "train") -> tuple[np.ndarray, np.ndarray]:
    """Images (N x 28 x 28 uint8) and labels (N uint8) of ``split`` from the verified files."""
    from mnistctl.data.loader import load as _load

    return _load(split)


__all__ = ["load"]
