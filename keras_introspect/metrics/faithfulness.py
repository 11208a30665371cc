"""Faithfulness: do the map's values follow what removing pixels does to the score?

Three measures; each replaces pixels of an image by a baseline and scores
the target on the perturbed copies (in batches of `batch_size` rows, through
the scorer of the causal curves). Maps are used as they are, signed; a map
with channels is summed over them (a pixel is removed with all its channels),
and a map of another size is resized bilinearly, as for `deletion`.

- `faithfulness_correlation` (Bhatt et al. 2020, "Evaluating and Aggregating
  Feature-based Model Explanations", def. 3): `n_samples` random subsets
  `S` of `subset_size` pixels; per image the correlation, over the subsets,
  between the map's sum over `S` and the score drop
  `f(x) - f(x with S replaced by the baseline)`.
- `mu_fidelity` (the same definition on a coarse grid, as Xplique's
  `MuFidelity`): each subset is a random set of cells of a
  `grid_size x grid_size` grid, upsampled to the image (nearest neighbour).
- `irof` (Rieger & Hansen 2020, "IROF: a low resource evaluation metric for
  explanation methods"): superpixels removed one after another, highest mean
  attribution first; the area over the curve of the normalised score.

Higher is better for all three: a correlation of 1 means that every
subset's attribution sum predicts its score drop up to an affine map.
For a linear model `f(x) = w . x` with baseline 0 the drop of a subset is
the sum of `w * x` over it, so the Gradient x Input map scores exactly 1 in
both correlations (its negation -1).

Determinism: the subsets depend on `seed` only (one draw shared by every
image, exposed as `subsets` on the result); IROF's tied segments are
ordered by a stream of `seed` per image. Every perturbed copy is scored on
its own, so the same seed gives the same result for any `batch_size`.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass, field

import numpy as np

from keras_introspect._data import as_array
from keras_introspect._progress import progress_bar
from keras_introspect._validation import (
    check_number,
    check_one_of,
    check_positive_int,
    check_seed,
    check_verbose,
)
from keras_introspect.metrics._scoring import Scorer
from keras_introspect.metrics.causal import (
    area,
    baseline_images,
    check_maps,
    spatial_axes,
    with_channels,
)
from keras_introspect.metrics.complexity import PerImage, warn_undefined

CORRELATIONS = ("pearson", "spearman")


@dataclass(repr=False)
class FaithfulnessResult(PerImage):
    """The correlation between attribution sums and score drops, per image.

    Attributes:
        measure: ``"faithfulness correlation"`` or ``"mu fidelity"``;
            in [-1, 1], higher is better.
        values: `(n,)` the correlation of each image (NaN, with a warning,
            when its score drops or its attribution sums do not vary).
        subsets: bool `(n_samples, H, W)`, True where sample `k` replaces a
            pixel (all its channels) by the baseline; the same for every image.
        attribution_sums: `(n, n_samples)` the map's sum over each subset.
        score_drops: `(n, n_samples)` `f(x) - f(x with the subset replaced)`.
        scores: `(n,)` `f(x)`, the target's score on each image.
        params: the settings (subset size in pixels or cells, `n_samples`,
            `correlation`, `seed`, ...).
    """

    measure: str
    values: np.ndarray
    subsets: np.ndarray
    attribution_sums: np.ndarray
    score_drops: np.ndarray
    scores: np.ndarray
    params: dict = field(default_factory=dict)


@dataclass(repr=False)
class IROFResult(PerImage):
    """IROF of each map: the area over its curve of segments removed.

    Attributes:
        measure: ``"irof"``; in [0, 1] for normalised curves of a score that
            stays between 0 and its value on the image; higher is better.
        values: `(n,)` the area over each curve (NaN, with a warning, for an
            image whose score is not positive when `normalized`).
        curves: list of n arrays `(M_i + 1,)`: point `k` after the `k`
            segments of highest mean attribution are removed (point 0 the
            image, point `M_i` the baseline image); normalised by the score
            of the image unless `normalized` is False.
        scores: list of n arrays `(M_i + 1,)`, the raw scores.
        segments: int32 `(n, H, W)`, each image's segment labels 0..M_i-1.
        order: list of n arrays `(M_i,)`, the segments in the order removed.
        normalized: whether `curves` are divided by the image's score.
    """

    measure: str
    values: np.ndarray
    curves: list
    scores: list
    segments: np.ndarray
    order: list
    normalized: bool = True

    @property
    def fractions(self) -> list:
        """Per image `(M_i + 1,)`: the fraction `k / M_i` of segments removed."""
        return [np.linspace(0.0, 1.0, len(c)) for c in self.curves]

    @property
    def table(self) -> list:
        """One dict per image: its IROF and number of segments."""
        return [
            {"image": i, self.measure: float(v), "segments": len(c) - 1}
            for i, (v, c) in enumerate(zip(self.values, self.curves, strict=True))
        ]


# ---------------------------------------------------------------- shared pieces
def _setup(model, x, maps, target, baseline, batch_size, verbose, what):
    """`(scorer, x, maps (n, H, W), base images in the dtype of x, batch size, verbose)`."""
    verbose = check_verbose(verbose)
    scorer = Scorer(model, target, batch_size, what)
    x = scorer.images(x)
    maps = check_maps(maps, x, sum_channels=True)
    base = baseline_images(baseline, x).astype(x.dtype)
    return scorer, x, maps, base, scorer.halver.size, verbose


def _scores(scorer, x, base, image_ids, hidden, batch_size, verbose) -> np.ndarray:
    """float64 scores of rows: row `j` is image `image_ids[j]` with the pixels of
    `hidden(slice of rows)` (bool `(rows, H, W)`) replaced by its baseline."""
    n_rows = len(image_ids)
    progbar = progress_bar(-(-n_rows // batch_size), verbose=verbose, unit_name="batch")
    scores = np.empty(n_rows, np.float64)
    for first in range(0, n_rows, batch_size):
        rows = slice(first, first + batch_size)
        ids = image_ids[rows]
        perturbed = np.where(with_channels(hidden(rows), x), base[ids], x[ids])
        scores[rows] = scorer(perturbed, ids)
        progbar.add(1)
    return scores


def _correlations(a: np.ndarray, b: np.ndarray, kind: str) -> np.ndarray:
    """The row-wise correlation of `a` and `b` `(n, k)`; NaN for a constant row."""
    if kind == "spearman":
        from scipy.stats import rankdata

        a, b = rankdata(a, axis=1), rankdata(b, axis=1)  # ties: mean rank, as scipy
    a = a - a.mean(axis=1, keepdims=True)
    b = b - b.mean(axis=1, keepdims=True)
    norms = np.sqrt((a * a).sum(axis=1) * (b * b).sum(axis=1))
    r = np.divide((a * b).sum(axis=1), norms, out=np.full(len(a), np.nan), where=norms > 0)
    return np.clip(r, -1.0, 1.0)


def _check_samples(n_samples) -> int:
    n_samples = check_positive_int(n_samples, "n_samples")
    if n_samples < 2:
        raise ValueError(
            f"Expected `n_samples` >= 2 (a correlation needs at least two subsets). "
            f"Received: n_samples={n_samples!r}"
        )
    return n_samples


def _draw(rng, n_samples: int, n_units: int, k: int) -> np.ndarray:
    """bool `(n_samples, n_units)`: `k` distinct units drawn uniformly per row."""
    keys = rng.random((n_samples, n_units))
    chosen = np.argpartition(keys, k - 1, axis=1)[:, :k]  # the k smallest keys
    out = np.zeros((n_samples, n_units), bool)
    np.put_along_axis(out, chosen, True, axis=1)
    return out


def grid_cells(height: int, width: int, grid_size: int) -> np.ndarray:
    """int `(height, width)`: the cell (row-major, 0..grid_size**2 - 1) of each pixel.

    The grid is upsampled as `tf.image.resize(..., method="nearest")` does
    (half-pixel centres): pixel row `r` lies in grid row
    `min(floor((r + 1/2) * grid_size / height), grid_size - 1)`, in float32.

    Example:
        >>> from keras_introspect.metrics.faithfulness import grid_cells
        >>> grid_cells(4, 4, 2).tolist()
        [[0, 0, 1, 1], [0, 0, 1, 1], [2, 2, 3, 3], [2, 2, 3, 3]]
    """

    return grid_cell_labels((height, width), grid_size)


def grid_cell_labels(size, grid_size: int) -> np.ndarray:
    """int `size`: the cell (row-major over `grid_size` cells per axis) of each
    position, on 1 to 3 axes, as `grid_cells` does on two.

    Example:
        >>> from keras_introspect.metrics.faithfulness import grid_cell_labels
        >>> grid_cell_labels((6,), 3).tolist()
        [0, 0, 1, 1, 2, 2]
    """

    def index(length):
        scale = np.float32(grid_size) / np.float32(length)
        centres = (np.arange(length, dtype=np.float32) + np.float32(0.5)) * scale
        return np.minimum(np.floor(centres).astype(np.int64), grid_size - 1)

    labels = np.zeros((), np.int64)
    for length in size:
        labels = labels[..., None] * grid_size + index(length)
    return labels


def _correlation_result(
    measure, scorer, x, maps, base, subsets, kind, params, batch_size, verbose
) -> FaithfulnessResult:
    """Score every image and its copies, and correlate attribution sums with drops."""
    n, n_samples = len(x), len(subsets)
    # row 0 of each image is the image itself, rows 1..n_samples its copies
    hidden = np.concatenate([np.zeros((1, *subsets.shape[1:]), bool), subsets])
    image_ids = np.repeat(np.arange(n), n_samples + 1)
    sample_ids = np.tile(np.arange(n_samples + 1), n)
    raw = _scores(
        scorer, x, base, image_ids, lambda rows: hidden[sample_ids[rows]], batch_size, verbose
    ).reshape(n, n_samples + 1)
    scores, drops = raw[:, 0], raw[:, :1] - raw[:, 1:]
    sums = maps.reshape(n, -1) @ subsets.reshape(n_samples, -1).T.astype(np.float64)
    values = _correlations(sums, drops, kind)
    # a spread at rounding level (float32 scores, float64 sums) is no variation
    undefined = np.ptp(drops, axis=1) <= 1e-6 * np.abs(raw).max(axis=1)
    undefined |= np.ptp(sums, axis=1) <= 1e-12 * np.abs(sums).max(axis=1)
    values[undefined] = np.nan
    name = measure[0].upper() + measure[1:]
    warn_undefined(undefined, name, "its score drops or attribution sums do not vary", stacklevel=4)
    return FaithfulnessResult(measure, values, subsets, sums, drops, scores, params)


_COMMON_ARGS = """
        model: a single-input Keras 3 model.
        x: images `(n, H, W, C)` (one image without batch axis is accepted);
            also signals `(n, L, C)`, vectors `(n, L)`, volumes `(n, D, H, W, C)`
            with maps `(n, L)` and `(n, D, H, W)`.
        maps: one map per image `(n, H, W)`, `(n, H, W, 1)` or `(n, H, W, C)`
            (channels are summed), signed as the method returns it; maps of
            another size are resized bilinearly.
        target: what is scored: a `keras_introspect.targets` object (one
            score per image), a class index or a callable; usually the target
            the maps explain."""

_TAIL_ARGS = """
        seed: of the random draws.
        batch_size: perturbed images per forward pass.
        verbose: 0 silent, 1 progress bar, 2 one line at the end."""


# ---------------------------------------------------------------- the measures
def faithfulness_correlation(
    model,
    x,
    maps,
    target,
    *,
    subset_size: int | float = 0.05,
    n_samples: int = 100,
    baseline=0.0,
    correlation: str = "pearson",
    seed: int = 0,
    batch_size: int = 64,
    verbose: int = 0,
) -> FaithfulnessResult:
    """Faithfulness correlation (Bhatt et al. 2020): attribution sums vs score drops.

    For each of `n_samples` random subsets `S` of `k` pixels (all channels of
    a pixel; drawn without replacement, the same subsets for every image)::

        a_S = sum_{p in S} map[p]
        d_S = f(x) - f(x with the pixels of S replaced by the baseline)

    and the value of an image is the Pearson correlation of `a_S` and `d_S`
    over the subsets (Spearman's with ``correlation="spearman"``).

    Defaults: `subset_size=0.05`, a twentieth of the pixels whatever the
    image size (51 of 1 024 at 32x32, 2 509 of 50 176 at 224x224), and 100
    subsets. Quantus' `FaithfulnessCorrelation` fixes 224 pixels (0.45 % at
    224x224, where single scattered pixels barely move a CNN's score) and
    `nr_runs=100`: pass `subset_size=224` for it.

    Args:{common}
        subset_size: pixels per subset: an integer `k` (1 <= k < H * W), or a
            fraction of the `H * W` pixels in (0, 1), rounded (at least 1).
        n_samples: subsets per image (at least 2).
        baseline: what the pixels of a subset become: a number, an array
            `(H, W, C)` or `(n, H, W, C)`, ``"mean"`` (the image's mean
            colour) or ``"blur"`` (as for `deletion`).
        correlation: ``"pearson"`` (Bhatt et al., Quantus) or
            ``"spearman"`` (Xplique's `MuFidelity`).{tail}

    Returns:
        `FaithfulnessResult`: `values` per image, `mean`, `subsets`,
        `attribution_sums`, `score_drops`.

    Raises:
        ValueError: maps that are not one per image, a subset of the whole
            image or larger, `n_samples` < 2, a target with several scores
            per image, a multi-input model.

    Example:
        >>> import numpy as np, keras, keras_introspect as ki
        >>> model = keras.Sequential([keras.Input((4, 4, 1)), keras.layers.Flatten(),
        ...     keras.layers.Dense(1, kernel_initializer="ones", use_bias=False)])
        >>> x = np.random.default_rng(0).random((2, 4, 4, 1), "float32")  # f = sum(x)
        >>> result = ki.metrics.faithfulness_correlation(model, x, x, 0, subset_size=4)
        >>> result.values.round(6).tolist()      # Gradient x Input of f: exactly 1
        [1.0, 1.0]
    """
    n_samples = _check_samples(n_samples)
    check_one_of(correlation, "correlation", CORRELATIONS)
    seed = check_seed(seed)
    what = "faithfulness_correlation"
    scorer, x, maps, base, batch_size, verbose = _setup(
        model, x, maps, target, baseline, batch_size, verbose, what
    )
    size = spatial_axes(x)
    total = int(np.prod(size))
    k = _subset_count(subset_size, "subset_size", total, "pixels of the image")
    subsets = _draw(np.random.default_rng(seed), n_samples, total, k).reshape(n_samples, *size)
    params = {"subset_size": k, "n_samples": n_samples, "correlation": correlation, "seed": seed}
    return _correlation_result(
        "faithfulness correlation",
        scorer,
        x,
        maps,
        base,
        subsets,
        correlation,
        params,
        batch_size,
        verbose,
    )


def mu_fidelity(
    model,
    x,
    maps,
    target,
    *,
    grid_size: int = 9,
    subset_percent: float = 0.2,
    n_samples: int = 200,
    baseline=0.0,
    correlation: str = "pearson",
    seed: int = 0,
    batch_size: int = 64,
    verbose: int = 0,
) -> FaithfulnessResult:
    """MuFidelity (Bhatt et al. 2020 on a grid, as Xplique): cell sums vs score drops.

    The image is cut into a `grid_size x grid_size` grid, upsampled to `H x W`
    by nearest neighbour as `tf.image.resize` does (`grid_cells`: cells of
    unequal size when `grid_size` does not divide the image). Each of
    `n_samples` subsets is `k = round(subset_percent * grid_size**2)` cells
    (at least 1) drawn without replacement, the same for every image; with
    `S` its pixels, `a_S` and `d_S` as in `faithfulness_correlation`, the
    value of an image is their Pearson correlation over the subsets.

    Defaults are Xplique's (`grid_size=9`, `subset_percent=0.2`,
    `nb_samples=200`, baseline 0). Xplique differs in two ways: its subsets
    remove each cell independently with probability `subset_percent` (a
    varying number of cells, unseeded), and it correlates with Spearman's
    coefficient (``correlation="spearman"`` here), counting an undefined
    correlation as 0 (NaN here, left out of `mean`).

    Args:{common}
        grid_size: cells per side of the grid (2 to min(H, W)).
        subset_percent: share of the cells in a subset, in (0, 1).
        n_samples: subsets per image (at least 2).
        baseline: what the pixels of a subset become: a number, an array
            `(H, W, C)` or `(n, H, W, C)`, ``"mean"`` or ``"blur"``.
        correlation: ``"pearson"`` (Bhatt et al.) or ``"spearman"``
            (Xplique).{tail}

    Returns:
        `FaithfulnessResult`: `values` per image, `mean`, `subsets` (in
        pixels), `attribution_sums`, `score_drops`.

    Raises:
        ValueError: maps that are not one per image, a grid finer than the
            image, a subset of all cells, `n_samples` < 2, a target with
            several scores per image, a multi-input model.

    Example:
        >>> import numpy as np, keras, keras_introspect as ki
        >>> model = keras.Sequential([keras.Input((6, 6, 1)), keras.layers.Flatten(),
        ...     keras.layers.Dense(1, kernel_initializer="ones", use_bias=False)])
        >>> x = np.random.default_rng(0).random((2, 6, 6, 1), "float32")  # f = sum(x)
        >>> result = ki.metrics.mu_fidelity(model, x, -x, 0, grid_size=3)
        >>> result.values.round(6).tolist()      # the negated Gradient x Input
        [-1.0, -1.0]
    """
    n_samples = _check_samples(n_samples)
    check_one_of(correlation, "correlation", CORRELATIONS)
    seed = check_seed(seed)
    if isinstance(grid_size, bool) or not isinstance(grid_size, numbers.Integral) or grid_size < 2:
        raise ValueError(
            f"Expected `grid_size` to be an integer >= 2. Received: grid_size={grid_size!r}"
        )
    fraction = check_number(subset_percent, "subset_percent", minimum=0.0, strict=True)
    if fraction >= 1.0:
        raise ValueError(
            f"Expected `subset_percent` in (0, 1). Received: subset_percent={subset_percent!r}"
        )
    scorer, x, maps, base, batch_size, verbose = _setup(
        model, x, maps, target, baseline, batch_size, verbose, "mu_fidelity"
    )
    size = spatial_axes(x)
    if grid_size > min(size):
        names = "min(H, W)" if len(size) == 2 else "the shortest axis"
        raise ValueError(
            f"Expected `grid_size` <= {names} = {min(size)} (every cell holds a pixel). "
            f"Received: grid_size={grid_size!r} for images of shape {x.shape}"
        )
    n_cells = grid_size ** len(size)
    k = _subset_count(fraction, "subset_percent", n_cells, "cells of the grid")
    cells = _draw(np.random.default_rng(seed), n_samples, n_cells, k)
    subsets = cells[:, grid_cell_labels(size, grid_size)]  # (n_samples, *size)
    params = {
        "grid_size": int(grid_size),
        "subset_cells": k,
        "n_samples": n_samples,
        "correlation": correlation,
        "seed": seed,
    }
    return _correlation_result(
        "mu fidelity", scorer, x, maps, base, subsets, correlation, params, batch_size, verbose
    )


def _subset_count(size, name: str, total: int, what: str) -> int:
    """`k` units of `total`: an integer as it is, a fraction rounded (at least 1); k < total."""
    if isinstance(size, bool) or not isinstance(size, numbers.Real):
        raise ValueError(
            f"Expected `{name}` to be an integer or a fraction in (0, 1). Received: {name}={size!r}"
        )
    if isinstance(size, numbers.Integral):
        k = int(size)
    elif 0.0 < size < 1.0:
        k = max(1, round(size * total))
    else:
        raise ValueError(
            f"Expected `{name}` to be an integer or a fraction in (0, 1). Received: {name}={size!r}"
        )
    if not 1 <= k < total:
        raise ValueError(
            f"Expected `{name}` to give between 1 and {total - 1} of the {total} {what} "
            f"(a subset of all of them never varies). Received: {name}={size!r} ({k})"
        )
    return k


def _segment_labels(segmentation, options, x: np.ndarray) -> np.ndarray:
    """int32 `(n, H, W)` labels 0..M_i-1 per image, from a method name, a callable or labels
    (`(n, L)` and `(n, D, H, W)` for signals and volumes)."""
    n, shape = len(x), spatial_axes(x)
    if isinstance(segmentation, str):
        # here, not at import: the attribution package brings TensorFlow with it
        from keras_introspect.attribution.surrogate import superpixels

        return np.stack([superpixels(image, segmentation, len(shape), **options) for image in x])
    if options:
        raise ValueError(
            f"`segmentation_options` are for a segmentation method name. Received: "
            f"segmentation_options={options!r} with segmentation of type "
            f"{type(segmentation).__name__}"
        )
    if callable(segmentation):
        labels = [np.asarray(segmentation(image)) for image in x]
        for found in labels:
            if found.shape != shape or not np.issubdtype(found.dtype, np.integer):
                raise ValueError(
                    f"Expected the `segmentation` callable to return integer labels of shape "
                    f"{shape}. Received: {found.dtype} labels of shape {found.shape}"
                )
    else:
        labels = as_array(segmentation, "segmentation")
        if labels.ndim == len(shape):
            labels = np.broadcast_to(labels, (n, *labels.shape))
        if labels.shape != (n, *shape) or not np.issubdtype(labels.dtype, np.integer):
            raise ValueError(
                f"Expected `segmentation` to be 'slic', 'quickshift', a callable or integer "
                f"labels of shape {shape} or {(n, *shape)}. Received: {labels.dtype} labels "
                f"of shape {labels.shape}"
            )
    out = np.empty((n, *shape), np.int32)
    for i, found in enumerate(labels):
        out[i] = np.unique(found, return_inverse=True)[1].reshape(shape)  # 0..M-1
    return out


def irof(
    model,
    x,
    maps,
    target,
    *,
    segmentation="slic",
    segmentation_options: dict | None = None,
    baseline="mean",
    normalize: bool = True,
    seed: int = 0,
    batch_size: int = 64,
    verbose: int = 0,
) -> IROFResult:
    """IROF (Rieger & Hansen 2020): remove superpixels, best first; area over the curve.

    Each image is cut into `M` superpixels, ranked by their mean attribution
    (highest first; segments with equal means in an order drawn from
    `seed`). Step `k = 0..M` replaces the `k` top-ranked segments by the
    baseline and scores the target: `s_0` is the image, `s_M` the baseline
    image. With `normalize=True` the curve is `c_k = s_k / s_0` (the paper's
    score relative to the original one: pass probabilities,
    `targets.Class(c, logits=False)`, for the paper's convention), else
    `c_k = s_k`. At the fractions `t_k = k / M`::

        AUC = sum_k (c_k + c_{k+1}) / 2 / M       (trapezoids over [0, 1])
        IROF = c_0 - AUC                          (1 - AUC when normalised)

    Higher is better: a map that ranks first the segments the model needs
    makes the score fall at once. For a score carried by one of `M`
    segments (0 once it is removed) the IROF is `1 - 1 / (2 M)` when the map
    ranks it first and `1 / (2 M)` when last.

    Against Quantus' `IROF`: its curve has no point 0 and steps of 1 (its
    AOC is `M - trapz(c_1..c_M)`, in segments, not a fraction); its
    ``"mean"`` baseline is one value, the mean over all channels; and by
    default it rescales the map's positive and negative parts separately
    first, which can reorder segments whose pixels mix signs
    (`normalise=False` to compare).

    Args:{common}
        segmentation: ``"slic"`` or ``"quickshift"`` (see
            `attribution.surrogate.superpixels`, with `segmentation_options`),
            a callable `image (H, W, C) -> integer labels (H, W)`, or integer
            labels `(H, W)` (every image) or `(n, H, W)`.
        segmentation_options: keyword arguments of the scikit-image function.
        baseline: what removed segments become: ``"mean"`` (the image's mean
            colour, as the paper), a number, an array `(H, W, C)` or
            `(n, H, W, C)`, or ``"blur"``.
        normalize: divide each curve by the score of the image (`s_0`); an
            image whose score is not positive then has NaN (with a warning).
        seed: of the order of segments with equal mean attribution.
        batch_size: perturbed images per forward pass.
        verbose: 0 silent, 1 progress bar, 2 one line at the end.

    Returns:
        `IROFResult`: `values` per image, `mean`, `curves`, `scores`,
        `segments`, `order`.

    Raises:
        ValueError: maps that are not one per image, labels of the wrong
            shape, an unknown segmentation or option, a target with several
            scores per image, a multi-input model.

    Example:
        >>> import numpy as np, keras, keras_introspect as ki
        >>> model = keras.Sequential([keras.Input((2, 2, 1)), keras.layers.Flatten(),
        ...     keras.layers.Dense(1, kernel_initializer="ones", use_bias=False)])
        >>> x = np.array([[[[3.0], [1.0]], [[0.0], [0.0]]]], "float32")   # f = sum(x)
        >>> labels = np.array([[0, 1], [2, 3]])                   # one segment a pixel
        >>> result = ki.metrics.irof(model, x, x, 0, segmentation=labels, baseline=0.0)
        >>> result.curves[0].tolist(), float(result.values[0])
        ([1.0, 0.25, 0.0, 0.0, 0.0], 0.8125)
    """
    seed = check_seed(seed)
    options = dict(segmentation_options or {})
    scorer, x, maps, base, batch_size, verbose = _setup(
        model, x, maps, target, baseline, batch_size, verbose, "irof"
    )
    n = len(x)
    segments = _segment_labels(segmentation, options, x)
    ranks, orders, counts = np.empty_like(segments), [], []
    for i in range(n):
        m = int(segments[i].max()) + 1
        labels = segments[i].ravel()
        means = np.bincount(labels, maps[i].ravel(), m) / np.bincount(labels, minlength=m)
        ties = np.random.default_rng([seed, i]).random(m)
        order = np.lexsort((ties, -means))  # highest mean first
        rank = np.empty(m, np.int32)
        rank[order] = np.arange(m)
        ranks[i] = rank[segments[i]]
        orders.append(order)
        counts.append(m)
    counts = np.asarray(counts)
    image_ids = np.repeat(np.arange(n), counts + 1)
    steps = np.concatenate([np.arange(m + 1) for m in counts])
    raw = _scores(
        scorer,
        x,
        base,
        image_ids,
        lambda rows: ranks[image_ids[rows]] < steps[rows].reshape(-1, *[1] * (ranks.ndim - 1)),
        batch_size,
        verbose,
    )
    scores = np.split(raw, np.cumsum(counts + 1)[:-1])
    if normalize:
        undefined = np.array([s[0] <= 0 for s in scores])
        curves = [s / s[0] if s[0] > 0 else np.full_like(s, np.nan) for s in scores]
        warn_undefined(
            undefined,
            "IROF",
            "a score <= 0 on the image, which cannot normalise the curve: score "
            "probabilities or pass normalize=False",
        )
    else:
        curves = [s.copy() for s in scores]
    values = np.array([c[0] - area(c[None], np.linspace(0.0, 1.0, len(c)))[0] for c in curves])
    return IROFResult("irof", values, curves, scores, segments, orders, bool(normalize))


for _function in (faithfulness_correlation, mu_fidelity, irof):
    _function.__doc__ = _function.__doc__.replace("Args:{common}", "Args:" + _COMMON_ARGS).replace(
        "{tail}", _TAIL_ARGS
    )
del _function
