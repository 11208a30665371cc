"""Complexity of attribution maps: how few pixels carry the relevance.

Both measures read the maps only (no model) and work on the absolute values
of every entry of a map, pixels and channels alike:

- `sparseness` (Chalasani et al. 2020): the Gini index of `|a|`. 0 for a
  map that spreads the relevance evenly, `(N - 1) / N` for a map with one
  non-zero entry out of `N`; higher is sparser (more concise).
- `complexity` (Bhatt et al. 2020): the entropy of the fractional
  contributions `p_i = |a_i| / sum_j |a_j|`, natural logarithm. 0 for one
  non-zero entry, `ln N` for a constant map; lower is simpler.

Conventions against Quantus (`Sparseness`, `Complexity`): the same
formulas on `|a|`, without Quantus' default normalisation by the maximum
(neither measure depends on the scale of a map) and without the `1e-7`
Quantus' `Sparseness` adds to every entry (so a one-hot map gives exactly
`(N - 1) / N`). A map that is zero everywhere has neither measure: NaN,
with a warning, and it is left out of `mean`.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from keras_introspect._data import as_array
from keras_introspect._repr import Tabular
from keras_introspect._validation import check_finite
from keras_introspect.exceptions import KerasIntrospectWarning


def nanmean(values) -> float:
    """Mean of the finite values, NaN when there are none."""
    values = np.asarray(values, np.float64)
    finite = values[np.isfinite(values)]
    return float(finite.mean()) if finite.size else float("nan")


def map_array(maps, name: str = "maps") -> np.ndarray:
    """`maps` as a finite float64 array `(n, H, W)` or `(n, H, W, C)`.

    The one check of maps given to the map-only metrics (complexity and
    localisation) and of the maps a method returns in the stability metrics.
    Volumes' maps `(n, D, H, W)` pass as they are (the localisation metrics
    read them with masks of the same shape); signals' maps `(n, L)` need a
    trailing axis, `(n, L, 1)` (a 2-D array reads as one image's map, which
    is refused).
    """
    maps = as_array(maps, name)
    if maps.ndim not in (3, 4) or 0 in maps.shape:
        raise ValueError(
            f"Expected `{name}` with one map per image, shape (n, H, W) or (n, H, W, C). "
            f"Received: {name} with shape {maps.shape}"
        )
    if maps.dtype.kind not in "biuf":
        raise ValueError(
            f"Expected `{name}` with real values. Received: {name} of dtype {maps.dtype}"
        )
    maps = maps.astype(np.float64)
    check_finite(maps, name)
    return maps


def warn_undefined(undefined: np.ndarray, what: str, why: str, stacklevel: int = 3) -> None:
    """Warn about the images whose value is NaN (`undefined` is a boolean mask);
    `stacklevel` 3 points at the caller of the function that calls this one."""
    if undefined.any():
        shown = np.flatnonzero(undefined)[:10].tolist()
        warnings.warn(
            f"{what} is undefined for {int(undefined.sum())} image(s) ({why}), e.g. image(s) "
            f"{shown}: NaN, left out of `mean`",
            KerasIntrospectWarning,
            stacklevel=stacklevel,
        )


class PerImage(Tabular):
    """A measure with one value per image (`measure`, `values`): `mean`, `.table`, `str()`."""

    @property
    def mean(self) -> float:
        """Mean over the images (NaN images left out)."""
        return nanmean(self.values)

    @property
    def table(self) -> list:
        """One dict per image: its value."""
        return [{"image": i, self.measure: float(v)} for i, v in enumerate(self.values)]

    def __repr__(self):
        name = type(self).__name__
        return f"{name}({self.measure}, {len(self.values)} images, mean {self.mean:.3f})"


@dataclass(repr=False)
class ComplexityResult(PerImage):
    """A complexity measure of each map.

    Attributes:
        measure: ``"sparseness"`` (Gini index, higher is sparser) or
            ``"complexity"`` (entropy, lower is simpler).
        values: `(n,)` the measure of each map (NaN for a map of zeros).
    """

    measure: str
    values: np.ndarray


def _magnitudes(maps) -> tuple:
    """`(|maps|` flattened per image `(n, N)`, images whose map is zero everywhere)."""
    maps = map_array(maps)
    flat = np.abs(maps).reshape(len(maps), -1)
    return flat, ~flat.any(axis=1)


def sparseness(maps) -> ComplexityResult:
    """Gini index of the absolute map values (Chalasani et al. 2020): higher is sparser.

    With `|a|` sorted ascending, `a_(1) <= ... <= a_(N)` over the `N` entries
    of a map (pixels times channels)::

        G = sum_i (2 i - N - 1) a_(i) / (N sum_i a_(i))

    0 for a constant map, `(N - 1) / N` for one non-zero entry.

    Args:
        maps: one map per image, `(n, H, W)` or `(n, H, W, C)`.

    Returns:
        `ComplexityResult` with `values` `(n,)` and their `mean`.

    Raises:
        ValueError: maps of another rank, or with NaN or infinite values.

    Example:
        >>> import numpy as np, keras_introspect as ki
        >>> maps = np.zeros((2, 2, 2))
        >>> maps[0, 0, 0] = 3.0         # one non-zero pixel of 4
        >>> maps[1] = -1.0              # the same everywhere
        >>> ki.metrics.sparseness(maps).values.tolist()
        [0.75, 0.0]
    """
    flat, zero = _magnitudes(maps)
    warn_undefined(zero, "Sparseness", "a map of zeros")
    n_entries = flat.shape[1]
    ordered = np.sort(flat, axis=1)
    weights = 2.0 * np.arange(1, n_entries + 1) - n_entries - 1
    totals = ordered.sum(axis=1)
    values = np.divide(
        ordered @ weights,
        n_entries * totals,
        out=np.full(len(flat), np.nan),
        where=~zero,
    )
    return ComplexityResult("sparseness", values)


def complexity(maps) -> ComplexityResult:
    """Entropy of the fractional contributions (Bhatt et al. 2020): lower is simpler.

    With `p_i = |a_i| / sum_j |a_j|` over the `N` entries of a map (pixels
    times channels), natural logarithm and `0 ln 0 = 0`::

        H = - sum_i p_i ln p_i

    0 for one non-zero entry, `ln N` for a constant map.

    Args:
        maps: one map per image, `(n, H, W)` or `(n, H, W, C)`.

    Returns:
        `ComplexityResult` with `values` `(n,)` and their `mean`.

    Raises:
        ValueError: maps of another rank, or with NaN or infinite values.

    Example:
        >>> import numpy as np, keras_introspect as ki
        >>> maps = np.zeros((2, 2, 2))
        >>> maps[0, 0, 0] = 3.0         # all relevance on one pixel
        >>> maps[1] = 1.0               # spread evenly over 4 pixels: ln 4
        >>> ki.metrics.complexity(maps).values.round(4).tolist()
        [0.0, 1.3863]
    """
    flat, zero = _magnitudes(maps)
    warn_undefined(zero, "Complexity", "a map of zeros")
    totals = np.where(zero, 1.0, flat.sum(axis=1))
    shares = flat / totals[:, None]
    used = shares > 0
    surprise = np.log(np.divide(1.0, shares, out=np.ones_like(shares), where=used))
    values = (shares * surprise).sum(axis=1)  # sum p ln(1/p): no -0.0 for one entry
    values[zero] = np.nan
    return ComplexityResult("complexity", values)
