"""Deletion and insertion: causal curves of an attribution map (Petsiuk et al. 2018).

A map ranks the pixels of its image. *Deletion* replaces the pixels by a
baseline, most important first, and follows the target's score; a map that
found what the model uses makes the score fall fast (low area under the
curve). *Insertion* starts from the baseline image and puts the pixels back
in the same order; the score should rise fast (high area).

Convention (what `CausalCurves` holds):

- `steps` steps; after step `k` the `round(k * H * W / steps)` top-ranked
  pixels (all channels of a pixel together) are deleted or inserted, so
  each curve has `steps + 1` points at the fractions `k / steps` (point 0:
  the image for deletion, the baseline image for insertion; the last point
  the other way round). Pixels with equal map values (Grad-CAM's flat
  regions, a map that is 0 outside the object) come in a random order
  drawn from `seed` (`ties="random"`, the default): the row-major order
  (`ties="index"`) would delete the top-left of every flat region first and
  score the map by its position in the image.
- With `normalize=True` (default) a score `s` is shown as
  `(s - s_baseline) / (s_image - s_baseline)`: 1 is the score of the
  image, 0 the score of the baseline image, whatever the units of the
  target (a logit, a probability, a filter's activation). With
  `normalize=False` the curves are the raw scores (Petsiuk et al. use the
  class probability: pass `targets.Class(c, logits=False)`).
- The AUC is the trapezoidal area under the curve over the fractions
  `[0, 1]`. For `f(x) = sum(x)` on a constant image both curves are
  straight lines and both AUCs are 0.5; a model whose score drops to its
  baseline value as soon as any pixel is deleted has deletion AUC half the
  fraction the first step deletes (`1 / (2 * steps)` when `steps` divides
  `H * W`), the resolution of the curve: use more steps to resolve it.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from keras_introspect._data import as_array
from keras_introspect._progress import progress_bar
from keras_introspect._repr import Tabular
from keras_introspect._validation import (
    check_baseline,
    check_finite,
    check_one_of,
    check_positive_int,
    check_seed,
    check_verbose,
)
from keras_introspect.exceptions import KerasIntrospectWarning
from keras_introspect.metrics._scoring import Scorer

TIES = ("random", "index")


@dataclass
class CausalCurves(Tabular):
    """Deletion or insertion curves of a set of maps, with their areas.

    Attributes:
        kind: ``"deletion"`` (lower AUC is better) or ``"insertion"``
            (higher is better).
        fractions: `(steps + 1,)` fraction of pixels deleted / inserted.
        scores: `(n, steps + 1)` raw target scores.
        curves: `(n, steps + 1)` the curves (normalised unless
            `normalized` is False; NaN for an image whose score does not
            change between the image and the baseline).
        auc: `(n,)` area under each curve.
        normalized: whether `curves` are normalised.
        random_scores, random_curves, random_auc: the same for random maps
            (one seeded uniform map per image), or `None`.
    """

    kind: str
    fractions: np.ndarray
    scores: np.ndarray
    curves: np.ndarray
    auc: np.ndarray
    normalized: bool = True
    random_scores: np.ndarray | None = None
    random_curves: np.ndarray | None = None
    random_auc: np.ndarray | None = None

    def plot(self, **options):
        """The mean curve with its random maps' band (`plotting.plot_causal_curves`);
        a Figure."""
        from keras_introspect.plotting.quality import plot_causal_curves

        return plot_causal_curves({"maps": [self]}, **options)

    @property
    def table(self) -> list:
        """One dict per image: its AUC (and that of its random map)."""
        rows = [{"image": i, "auc": float(a)} for i, a in enumerate(self.auc)]
        if self.random_auc is not None:
            for row, r in zip(rows, self.random_auc, strict=True):
                row["random auc"] = float(r)
        return rows

    @property
    def mean_auc(self) -> float:
        """Mean AUC over the images (NaN images left out)."""
        return _nanmean(self.auc)

    @property
    def random_mean_auc(self) -> float | None:
        """Mean AUC of the random maps, or `None` without `random_baseline`."""
        return None if self.random_auc is None else _nanmean(self.random_auc)

    @property
    def beats_random(self) -> bool | None:
        """Whether the maps do better than random maps on average (deletion: lower)."""
        if self.random_auc is None:
            return None
        if self.kind == "deletion":
            return self.mean_auc < self.random_mean_auc
        return self.mean_auc > self.random_mean_auc

    def __repr__(self):
        extra = "" if self.random_auc is None else f", random AUC {self.random_mean_auc:.3f}"
        return (
            f"CausalCurves({self.kind}, {len(self.auc)} images, {len(self.fractions) - 1} steps, "
            f"AUC {self.mean_auc:.3f}{extra})"
        )


def _nanmean(values) -> float:
    values = np.asarray(values, np.float64)
    finite = values[np.isfinite(values)]
    return float(finite.mean()) if finite.size else float("nan")


def area(curves: np.ndarray, fractions: np.ndarray) -> np.ndarray:
    """Trapezoidal area under `curves` `(n, k)` over `fractions` `(k,)`."""
    widths = np.diff(fractions)
    return ((curves[:, 1:] + curves[:, :-1]) * 0.5 * widths).sum(axis=1)


def spatial_axes(x: np.ndarray) -> tuple:
    """The spatial shape of samples `x` `(n, ...)`: every axis but the batch and
    channel axes; a flat vector `(n, L)` has no channel axis.

    Example:
        >>> spatial_axes(np.zeros((2, 8, 8, 3))), spatial_axes(np.zeros((2, 100)))
        ((8, 8), (100,))
    """
    return tuple(x.shape[1:]) if x.ndim == 2 else tuple(x.shape[1:-1])


def with_channels(mask: np.ndarray, x: np.ndarray) -> np.ndarray:
    """A per-position `mask` `(..., *spatial)` broadcastable against samples like `x`
    (a trailing channel axis, except for flat vectors)."""
    return mask if x.ndim == 2 else mask[..., None]


def _map_shape_text(n: int, size: tuple) -> str:
    names = {1: "L", 2: "H, W", 3: "D, H, W"}.get(len(size), "...")
    return f"({n}, {names})"


def check_maps(maps, x: np.ndarray, sum_channels: bool = False) -> np.ndarray:
    """`maps` as float64 `(n, H, W)`, resized (bilinear) to the image size if needed.

    Maps `(n, H, W, 1)` lose their channel axis; maps `(n, H, W, C)` with the
    images' channels are summed over them with `sum_channels` (a pixel's
    channels are removed together), and refused without. Signals, vectors
    and volumes: maps `(n, L)` and `(n, D, H, W)` (linear resizing).
    """
    maps = as_array(maps, "maps")
    n, size, c = len(x), spatial_axes(x), x.shape[-1]
    k = len(size)
    if maps.ndim == k and n == 1:
        maps = maps[None]  # one map without batch axis
    if x.ndim > 2 and maps.ndim == k + 2 and maps.shape[-1] == 1:
        maps = maps[..., 0]
    elif x.ndim > 2 and maps.ndim == k + 2 and sum_channels and maps.shape[-1] == c:
        maps = maps.sum(axis=-1)
    if maps.ndim != k + 1 or len(maps) != n or maps.dtype.kind not in "biuf":
        text = _map_shape_text(n, size)
        shapes = text + (f" or {text[:-1]}, {c})" if sum_channels and x.ndim > 2 else "")
        raise ValueError(
            f"Expected one map per image, shape {shapes}, of real numbers. Received: maps "
            f"with shape {maps.shape} and dtype {maps.dtype} for images of shape {x.shape}"
            + ("" if sum_channels else " (reduce the channels first, e.g. reduce_channels='sum')")
        )
    maps = maps.astype(np.float64)
    check_finite(maps, "maps")
    if maps.shape[1:] != size:
        from skimage.transform import resize

        maps = np.stack([resize(m, size, order=1, mode="edge") for m in maps])
    return maps


def baseline_images(baseline, x: np.ndarray) -> np.ndarray:
    """The images the deleted pixels take (and insertion starts from), `(n, H, W, C)`
    (the shape of `x`: also signals, vectors and volumes)."""
    size = spatial_axes(x)
    axes = tuple(range(1, 1 + len(size)))
    if isinstance(baseline, str):
        if baseline == "blur":
            from scipy.ndimage import gaussian_filter

            # Petsiuk et al.: sigma 5 at 224 pixels; at least a pixel for small images
            sigma = max(1.0, max(size) / 45.0)
            sigmas = (0,) + (sigma,) * len(size) + ((0,) if x.ndim > 2 else ())
            return gaussian_filter(x.astype(np.float64), sigma=sigmas)
        if baseline == "mean":
            return np.broadcast_to(x.mean(axis=axes, keepdims=True), x.shape)
        raise ValueError(
            "Expected `baseline` to be a number, an array, 'blur' or 'mean'. Received: "
            f"baseline={baseline!r}"
        )
    values = np.asarray(check_baseline(baseline), np.float64)  # as IG and Occlusion read it
    if x.ndim > 2 and values.shape == size:
        values = values[..., None]
    for shape in ((), x.shape[1:], x.shape):
        if values.shape == shape:
            return np.broadcast_to(values, x.shape)
    raise ValueError(
        f"Expected `baseline` to be a number, 'blur', 'mean', or an array of shape "
        f"{x.shape[1:]} or {x.shape}. Received: baseline with shape {values.shape}"
    )


def pixel_ranks(maps: np.ndarray, ties="index", seed: int = 0, most_first=True) -> np.ndarray:
    """Rank of every pixel, 0 first: the largest map value (`most_first`) or the
    smallest. Ties in a random order drawn from `seed` (`ties="random"`, a stream
    of its own) or row-major (`"index"`)."""
    flat = maps.reshape(len(maps), -1)
    keyed = -flat if most_first else flat
    if ties == "random":
        keys = np.random.default_rng([seed, 1]).random(flat.shape)
        order = np.lexsort((keys, keyed), axis=-1)
    else:
        order = np.argsort(keyed, axis=1, kind="stable")
    ranks = np.empty_like(order)
    np.put_along_axis(ranks, order, np.arange(flat.shape[1])[None], axis=1)
    return ranks


def _curve_scores(kind, scorer, x, base, ranks, counts, batch_size, progbar) -> np.ndarray:
    """Raw scores `(n, steps + 1)`, built and scored `batch_size` rows at a time."""
    n, size = len(x), spatial_axes(x)
    image_ids = np.repeat(np.arange(n), len(counts))
    step_ids = np.tile(np.arange(len(counts)), n)
    scores = np.empty(len(image_ids), np.float64)
    for first in range(0, len(image_ids), batch_size):
        ids = image_ids[first : first + batch_size]
        hidden = ranks[ids] < counts[step_ids[first : first + batch_size], None]
        hidden = with_channels(hidden.reshape(len(ids), *size), x)
        # deletion: the top pixels take the baseline; insertion: only they show the image
        shown, other = (base, x) if kind == "deletion" else (x, base)
        rows = np.where(hidden, shown[ids], other[ids])
        scores[first : first + len(ids)] = scorer(rows, ids)
        progbar.add(1)
    return scores.reshape(n, len(counts))


def _normalise(kind: str, scores: np.ndarray) -> tuple:
    """`(curves, n_flat)`: scores rescaled so the image is 1 and the baseline 0."""
    image, empty = scores[:, 0], scores[:, -1]
    if kind == "insertion":
        image, empty = empty, image
    gap = image - empty
    flat = np.abs(gap) <= 1e-7 * np.maximum(np.abs(image), 1.0)
    safe = np.where(flat, 1.0, gap)
    curves = (scores - empty[:, None]) / safe[:, None]
    curves[flat] = np.nan
    return curves, int(flat.sum())


def _causal(
    kind,
    *,
    model,
    x,
    maps,
    target,
    steps,
    baseline,
    random_baseline,
    seed,
    normalize,
    batch_size,
    verbose,
    ties,
):
    steps = check_positive_int(steps, "steps")
    check_one_of(ties, "ties", TIES)
    verbose = check_verbose(verbose)
    seed = check_seed(seed)
    scorer = Scorer(model, target, batch_size, kind)
    batch_size = scorer.halver.size  # "auto" resolved for the model
    x = scorer.images(x)
    maps = check_maps(maps, x)
    base = baseline_images(baseline, x)
    n_pixels = int(np.prod(spatial_axes(x)))
    counts = np.round(np.linspace(0, n_pixels, steps + 1)).astype(np.int64)
    fractions = counts / n_pixels
    # the ties use a second stream of the seed: the random maps below keep theirs
    orders = [pixel_ranks(maps, ties, seed)]
    if random_baseline:
        orders.append(pixel_ranks(np.random.default_rng(seed).random(maps.shape)))
    n_batches = len(orders) * -(-len(x) * (steps + 1) // batch_size)
    progbar = progress_bar(n_batches, verbose=verbose, unit_name="batch")
    results = []
    for ranks in orders:
        scores = _curve_scores(kind, scorer, x, base, ranks, counts, batch_size, progbar)
        curves, n_flat = _normalise(kind, scores) if normalize else (scores, 0)
        results.append((scores, curves, area(curves, fractions), n_flat))
    if results[0][3]:
        warnings.warn(
            f"The target scores the same on {results[0][3]} image(s) and on their baseline; "
            f"their normalised {kind} curves are NaN (left out of mean_auc). Use another "
            "baseline, or normalize=False",
            KerasIntrospectWarning,
            stacklevel=3,
        )
    scores, curves, auc, _ = results[0]
    random = results[1][:3] if random_baseline else (None, None, None)
    return CausalCurves(kind, fractions, scores, curves, auc, bool(normalize), *random)


_ARGS_DOC = """
    Args:
        model: a single-input Keras 3 model.
        x: images `(n, H, W, C)` (one image without batch axis is accepted);
            also signals `(n, L, C)`, vectors `(n, L)` and volumes
            `(n, D, H, W, C)`, whose positions are deleted in the order of
            their maps `(n, L)` or `(n, D, H, W)`.
        maps: one map per image `(n, H, W)` (or `(n, H, W, 1)`), e.g. from
            `Saliency.explain`; maps of another size are resized bilinearly.
        target: what is scored: a `keras_introspect.targets` object (one
            score per image), a class index or a callable; usually the target
            the maps explain.
        steps: number of steps (the curve has `steps + 1` points).
        baseline: what deleted pixels become: a number, an array `(H, W, C)`
            or `(n, H, W, C)`, ``"blur"`` (Gaussian blur of the image, sigma
            `max(H, W) / 45` but at least 1 pixel, as Petsiuk et al. use for
            insertion) or
            ``"mean"`` (the image's mean colour).
        random_baseline: also score one seeded uniform random map per image
            (`random_auc`), the level a map must beat.
        seed: of the random maps and of the order of tied pixels.
        normalize: rescale each curve so the image scores 1 and the baseline
            image 0 (see the module docstring); `False` keeps raw scores.
        batch_size: perturbed images per forward pass.
        verbose: 0 silent, 1 progress bar, 2 one line at the end.
        ties: the order of pixels with equal map values: ``"random"`` (seeded
            by `seed`) or ``"index"`` (row-major, the order before issue 21).

    Returns:
        `CausalCurves` (curves, `auc` per image, `mean_auc`, `random_auc`).

    Raises:
        ValueError: maps that are not one per image, a target with several
            scores per image, a multi-input model, images of the wrong shape.
"""


def deletion(
    model,
    x,
    maps,
    target,
    steps: int = 20,
    baseline=0.0,
    *,
    random_baseline: bool = False,
    seed: int = 0,
    normalize: bool = True,
    batch_size: int = 64,
    verbose: int = 0,
    ties: str = "random",
) -> CausalCurves:
    """Deletion curve: delete the most important pixels first; a low AUC is good.

    {args}
    Example:
        >>> import numpy as np, keras, keras_introspect as ki
        >>> model = keras.Sequential([keras.Input((4, 4, 1)), keras.layers.Flatten(),
        ...     keras.layers.Dense(1, kernel_initializer="ones", use_bias=False)])
        >>> x = np.ones((1, 4, 4, 1), "float32")        # f(x) = sum(x)
        >>> result = ki.metrics.deletion(model, x, x[..., 0], 0, steps=4)
        >>> result.curves.round(2).tolist(), float(result.auc[0])
        ([[1.0, 0.75, 0.5, 0.25, 0.0]], 0.5)
    """
    return _causal("deletion", **locals())


def insertion(
    model,
    x,
    maps,
    target,
    steps: int = 20,
    baseline=0.0,
    *,
    random_baseline: bool = False,
    seed: int = 0,
    normalize: bool = True,
    batch_size: int = 64,
    verbose: int = 0,
    ties: str = "random",
) -> CausalCurves:
    """Insertion curve: put the most important pixels back first; a high AUC is good.

    {args}
    Example:
        >>> import numpy as np, keras, keras_introspect as ki
        >>> model = keras.Sequential([keras.Input((4, 4, 1)), keras.layers.Flatten(),
        ...     keras.layers.Dense(1, kernel_initializer="ones", use_bias=False)])
        >>> x = np.ones((1, 4, 4, 1), "float32")        # f(x) = sum(x)
        >>> float(ki.metrics.insertion(model, x, x[..., 0], 0, steps=4).auc[0])
        0.5
    """
    return _causal("insertion", **locals())


deletion.__doc__ = deletion.__doc__.replace("{args}", _ARGS_DOC.strip("\n").lstrip())
insertion.__doc__ = insertion.__doc__.replace("{args}", _ARGS_DOC.strip("\n").lstrip())
