"""scikit-learn's bundled 8x8 handwritten digits as images."""

from __future__ import annotations

import numpy as np


def digits():
    """Return `(x, y)`: 1 797 images `(n, 8, 8, 1)` float32 in [0, 16], labels 0-9.

    The data ships inside scikit-learn, so nothing is downloaded.

    Example:
        >>> x, y = digits()
        >>> x.shape, y.shape
        ((1797, 8, 8, 1), (1797,))
    """
    from sklearn.datasets import load_digits

    bunch = load_digits()
    return bunch.images[..., np.newaxis].astype("float32"), bunch.target.astype("int64")
