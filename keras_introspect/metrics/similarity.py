"""How alike two attribution maps of the same image are.

The sanity checks of Adebayo et al. (2018) compare maps with the Spearman
rank correlation, with and without absolute values (a method that only
flips signs when the model is randomised still has alike absolute maps),
and with the structural similarity index (SSIM) of the maps rescaled to
[0, 1].
"""

from __future__ import annotations

import numpy as np

from keras_introspect._data import as_array
from keras_introspect._validation import check_finite, check_one_of

MEASURES = ("spearman", "ssim")


def _rank_rows(values: np.ndarray) -> np.ndarray:
    from scipy.stats import rankdata

    return rankdata(values, axis=1)


def spearman(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Spearman rank correlation of each pair of rows of `a` and `b` `(n, d)`; NaN if constant."""
    ra, rb = _rank_rows(a), _rank_rows(b)
    ra -= ra.mean(axis=1, keepdims=True)
    rb -= rb.mean(axis=1, keepdims=True)
    norm = np.sqrt((ra * ra).sum(axis=1) * (rb * rb).sum(axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        rho = (ra * rb).sum(axis=1) / norm
    return np.where(norm > 0, rho, np.nan)


def _unit(maps: np.ndarray) -> np.ndarray:
    axes = tuple(range(1, maps.ndim))
    low = maps.min(axis=axes, keepdims=True)
    span = maps.max(axis=axes, keepdims=True) - low
    return np.divide(maps - low, span, out=np.zeros_like(maps), where=span > 0)


def ssim(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """SSIM of each pair of maps `(n, H, W)`, each rescaled to [0, 1] first.

    The window is 7 pixels, or the largest odd size that fits smaller maps.
    Signals `(n, L)` and volumes `(n, D, H, W)` use a window of that size
    along each of their axes (scikit-image's N-d SSIM).
    """
    from skimage.metrics import structural_similarity

    if not 2 <= a.ndim <= 4:
        raise ValueError(
            f"Expected 2-D maps (n, H, W) for SSIM (or (n, L), (n, D, H, W)). Received: maps "
            f"with shape {a.shape}"
        )
    side = min(a.shape[1:])
    if side < 3:
        raise ValueError(f"Expected maps of at least 3 x 3 pixels for SSIM. Received: {a.shape}")
    window = min(7, side if side % 2 else side - 1)
    a, b = _unit(a), _unit(b)
    return np.array(
        [
            structural_similarity(p, q, win_size=window, data_range=1.0)
            for p, q in zip(a, b, strict=True)
        ]
    )


def map_similarity(a, b, measure: str = "spearman", absolute: bool = False) -> np.ndarray:
    """Similarity of each image's two maps: `(n,)` float64.

    Args:
        a, b: maps of the same images, `(n, H, W)` (Spearman also takes any
            `(n, ...)`).
        measure: ``"spearman"`` (rank correlation, in [-1, 1]) or ``"ssim"``
            (structural similarity of the maps rescaled to [0, 1]).
        absolute: compare `|a|` and `|b|`.

    Returns:
        one value per image; NaN where a map is constant (Spearman).

    Example:
        >>> import numpy as np
        >>> a = np.arange(16.0).reshape(1, 4, 4)
        >>> map_similarity(a, 2 * a + 1).round(3).tolist()
        [1.0]
        >>> map_similarity(a, -a).round(3).tolist(), map_similarity(a, -a, absolute=True).tolist()
        ([-1.0], [1.0])
    """
    check_one_of(measure, "measure", MEASURES)
    a, b = (as_array(m, name).astype(np.float64) for m, name in ((a, "a"), (b, "b")))
    if a.shape != b.shape or a.ndim < 2:
        raise ValueError(
            f"Expected two stacks of maps of the same shape (n, ...). Received: shapes "
            f"{a.shape} and {b.shape}"
        )
    check_finite(a, "a")
    check_finite(b, "b")
    if absolute:
        a, b = np.abs(a), np.abs(b)
    if measure == "ssim":
        return ssim(a, b)
    return spearman(a.reshape(len(a), -1), b.reshape(len(b), -1))
