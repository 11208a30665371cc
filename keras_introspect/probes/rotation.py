"""What changes along a one-degree rotation (`004` §5.4, Figs 5.2 and 5.5).

The thesis walks the Die360 images of a class in one-degree steps of the
die's rotation and watches a feature's saliency (Fig. 5.2) and the networks'
posteriors (Fig. 5.5) jump between images that look nearly the same. These
functions compute those views from images and their `DieRotations`
(`datasets.die360(..., return_rotations=True)`); `plotting.rotation` draws
them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from keras_introspect._repr import Tabular, summary_repr
from keras_introspect._validation import check_positive_int, check_seed


def _check_rotations(x, rotations):
    neighbours = np.asarray(getattr(rotations, "neighbours", None))
    if neighbours.ndim != 2 or len(neighbours) != len(x):
        raise ValueError(
            "Expected `rotations` with one row of one-degree neighbours per image "
            f"(datasets.DieRotations). Received: {type(rotations).__name__} for {len(x)} images"
        )
    if not (neighbours >= 0).any():
        raise ValueError(
            "Expected images with one-degree rotation neighbours (die360(layout='thesis')). "
            "Received: no image has a neighbour"
        )
    return neighbours


def sequence_saliency(model, x, indices, layer, channel, aggregate="max", batch_size=64):
    """A feature's aggregated filter saliency on a sequence of images (Fig. 5.2).

    Args:
        model: a Keras model.
        x: images `(n, H, W, C)`.
        indices: the images of the sequence, e.g. `DieRotations.sequence(...)`.
        layer, channel: the feature (a filter of an inner layer).
        aggregate: ``"max"`` or ``"sum"`` over the feature map (Kalmeijer's
            aggregation).
        batch_size: rows per pass.

    Returns:
        float32 `(len(indices), H, W)`: the gradient of the aggregated
        feature map with respect to each image (max |.| over colour channels).

    Example:
        >>> maps = sequence_saliency(model, x, rot.sequence(0, 8), "pool1", 0)  # doctest: +SKIP
    """
    from keras_introspect.attribution.saliency import Saliency
    from keras_introspect.targets import Channel

    images = np.asarray(x)[np.asarray(indices, np.int64)]
    explainer = Saliency(model, Channel(layer, int(channel), aggregate=aggregate))
    return explainer.explain(images, batch_size=batch_size)


def _rank_correlation(a, b):
    """Spearman's rank correlation of the rows of `a` and `b` `(k, m)` (ties averaged)."""
    from scipy.stats import rankdata

    ra = rankdata(a, axis=1)
    rb = rankdata(b, axis=1)
    ra -= ra.mean(1, keepdims=True)
    rb -= rb.mean(1, keepdims=True)
    denominator = np.sqrt((ra**2).sum(1) * (rb**2).sum(1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denominator > 0, (ra * rb).sum(1) / denominator, np.nan)


@dataclass
class NeighbourCorrelation(Tabular):
    """How alike a feature's saliency is on images one degree apart, against the images.

    Attributes:
        layer, channel, aggregate: the feature.
        pairs: `(k, 2)` indices of image pairs one degree apart.
        maps: `(k,)` Spearman rank correlation of the two saliency maps of
            each pair (NaN where a map is constant, e.g. a dead filter).
        images: `(k,)` Spearman rank correlation of the two images.
    """

    __repr__ = summary_repr

    layer: str
    channel: int
    aggregate: str
    pairs: np.ndarray
    maps: np.ndarray
    images: np.ndarray

    @property
    def table(self) -> list:
        """One row: the means (over pairs with a defined correlation) and the pair count."""

        def mean(values):
            values = values[np.isfinite(values)]
            return float(values.mean()) if len(values) else float("nan")

        return [
            {
                "layer": self.layer,
                "channel": self.channel,
                "pairs": len(self.pairs),
                "maps rank corr.": mean(self.maps),
                "images rank corr.": mean(self.images),
            }
        ]


def most_active_channel(model, x, layer, batch_size=256):
    """The channel of `layer` with the largest mean activation over `x`, or `None` if all are 0.

    A filter that is 0 on every image (a dead ReLU) has no saliency to show.

    Example:
        >>> most_active_channel(model, x, "pool1")  # doctest: +SKIP
        2
    """
    from keras_introspect.probes._scan import introspector

    found = introspector(model).activations(x, [layer], batch_size=batch_size, pooling="avg")
    means = np.asarray(next(iter(found.values())), np.float64).mean(0)
    return int(np.argmax(means)) if means.max() > 0 else None


def neighbour_correlation(
    model, x, rotations, layer, channel, aggregate="max", pairs=200, seed=0, batch_size=64
):
    """Rank correlation of a feature's saliency maps on one-degree neighbours vs of the images.

    `pairs` image pairs one degree apart are drawn (seeded) from the images
    that have a neighbour; each pair's two saliency maps
    (`sequence_saliency`) and its two images are compared by Spearman's
    rank correlation over pixels. Images one degree apart correlate nearly
    perfectly; if the maps correlate much less, the feature is not
    invariant to small rotations (the thesis' reading of Fig. 5.2).

    Args:
        model, x, layer, channel, aggregate, batch_size: see `sequence_saliency`.
        rotations: the images' `datasets.DieRotations`.
        pairs: number of pairs.
        seed: of the draw.

    Returns:
        `NeighbourCorrelation`.

    Raises:
        ValueError: no image has a one-degree neighbour.
    """
    x = np.asarray(x)
    neighbours = _check_rotations(x, rotations)
    pairs = check_positive_int(pairs, "pairs")
    rng = np.random.default_rng(check_seed(seed))
    having = np.flatnonzero((neighbours >= 0).any(1))
    first = rng.choice(having, size=min(pairs, len(having)), replace=False)
    second = np.array([rng.choice(neighbours[i][neighbours[i] >= 0]) for i in first])
    chosen = np.stack([first, second], 1)
    unique, inverse = np.unique(chosen, return_inverse=True)
    maps = sequence_saliency(model, x, unique, layer, channel, aggregate, batch_size)
    maps = maps.reshape(len(unique), -1)[inverse.reshape(-1, 2)]
    images = x[chosen].reshape(len(chosen), 2, -1)
    return NeighbourCorrelation(
        str(layer),
        int(channel),
        aggregate,
        chosen,
        _rank_correlation(maps[:, 0], maps[:, 1]),
        _rank_correlation(images[:, 0], images[:, 1]),
    )


@dataclass
class Disagreement(Tabular):
    """The image on which the networks disagree most, and its one-degree neighbours (Fig. 5.5).

    Attributes:
        index: the image with the largest disagreement.
        neighbours: its one-degree neighbours (`STEPS` order, absent ones left out).
        names: the networks.
        posteriors: `(networks, 1 + len(neighbours), classes)`: each network's
            posterior on the image (row 0) and on each neighbour.
        scores: `(n,)` the disagreement of every image (NaN for images
            without a one-degree neighbour).
        measure: how `scores` was computed.
    """

    __repr__ = summary_repr

    index: int
    neighbours: np.ndarray
    names: list
    posteriors: np.ndarray
    scores: np.ndarray
    measure: str

    @property
    def images(self) -> np.ndarray:
        """Indices of the image and its neighbours, in `posteriors` order."""
        return np.concatenate([[self.index], self.neighbours]).astype(np.int64)

    @property
    def table(self) -> list:
        """One row per (image, network): the predicted class and its posterior."""
        rows = []
        for k, image in enumerate(self.images):
            for name, posterior in zip(self.names, self.posteriors[:, k], strict=True):
                rows.append(
                    {
                        "image": int(image),
                        "role": "largest disagreement" if k == 0 else "one-degree neighbour",
                        "network": name,
                        "predicted": int(posterior.argmax()),
                        "posterior": float(posterior.max()),
                    }
                )
        return rows


def largest_disagreement(models, x, rotations, batch_size=256):
    """Find the image with the largest disagreement between networks (Fig. 5.5).

    With several networks an image's disagreement is the mean total
    variation distance of each network's posterior from the networks' mean
    posterior, `mean_m 0.5 * |p_m - p_mean|_1`: 0 when all agree, up to
    `1 - 1/M` when each is sure of another class. With one network it is
    the largest total variation distance between its posterior on the image
    and on a one-degree neighbour (the jump Fig. 5.5 shows). Only images with
    a one-degree neighbour count.

    Args:
        models: `{name: keras.Model}` (or a single model), softmax outputs.
        x: images `(n, H, W, C)`.
        rotations: the images' `datasets.DieRotations`.
        batch_size: rows per prediction pass.

    Returns:
        `Disagreement`.

    Raises:
        ValueError: no image has a one-degree neighbour.
    """
    x = np.asarray(x)
    neighbours = _check_rotations(x, rotations)
    if not isinstance(models, dict):
        models = {getattr(models, "name", "model"): models}
    names = list(models)
    posteriors = np.stack(
        [np.asarray(models[name].predict(x, batch_size=batch_size, verbose=0)) for name in names]
    )
    having = (neighbours >= 0).any(1)
    if len(names) > 1:
        spread = 0.5 * np.abs(posteriors - posteriors.mean(0)).sum(-1)
        scores = spread.mean(0)
        measure = "mean total variation distance of each network's posterior from their mean"
    else:
        p = posteriors[0]
        jumps = 0.5 * np.abs(p[:, None] - p[np.maximum(neighbours, 0)]).sum(-1)
        scores = np.where(neighbours >= 0, jumps, 0.0).max(1)
        measure = "largest total variation distance of the posterior to a one-degree neighbour"
    scores = np.where(having, scores, np.nan)
    index = int(np.nanargmax(scores))
    near = neighbours[index][neighbours[index] >= 0]
    shown = np.concatenate([[index], near])
    return Disagreement(index, near, names, posteriors[:, shown], scores, measure)


def pip_masks(x, threshold=0.25):
    """Pip and plain-face pixels of Die360 images, from their grey levels.

    The renderer shades a face 0.35-0.95 and its pips 0.15 times that
    (< 0.15); the background is 0. Inside the die's silhouette (holes filled,
    one pixel of rim left out, where anti-aliasing mixes levels) a pixel
    darker than `threshold` is a pip, one lighter than `threshold + 0.05` a
    plain face.

    Args:
        x: Die360 images `(n, H, W[, 1])` in [0, 1].
        threshold: grey level between pips and faces.

    Returns:
        `(pips, faces)`: boolean `(n, H, W)` masks.
    """
    from scipy import ndimage

    x = np.asarray(x, np.float32)
    x = x[..., 0] if x.ndim == 4 else x
    die = np.stack([ndimage.binary_fill_holes(image > 0.02) for image in x])
    inner = ndimage.binary_erosion(die, structure=np.ones((1, 3, 3), bool))
    return inner & (x < threshold), inner & (x > threshold + 0.05)


def pip_selectivity(model, x, layer, batch_size=256):
    """How much more a layer's filters respond on a die's pips than on its plain faces.

    Each filter's feature map is brought to the input's size (nearest,
    every unit covering its stride's block of pixels) and averaged over the
    pip pixels and over the plain-face pixels of `pip_masks(x)`; the ratio
    is the filter's selectivity for spots (> 1: it responds more on pips).
    The thesis (§5.3) finds only c9's first pooling layer detects spots.

    Args:
        model: a Keras model on Die360 images.
        x: images `(n, H, W, 1)` in [0, 1].
        layer: a layer with feature maps `(n, h, w, channels)`, `H` and `W`
            multiples of `h` and `w`.
        batch_size: rows per forward pass.

    Returns:
        float `(channels,)`: mean activation on pips / mean on plain faces
        (NaN where a filter is 0 on both).
    """
    from keras_introspect.probes._scan import introspector

    x = np.asarray(x, np.float32)
    maps = introspector(model).activations(x, [layer], batch_size=batch_size)
    maps = np.asarray(next(iter(maps.values())), np.float32)
    if maps.ndim != 4 or x.shape[1] % maps.shape[1] or x.shape[2] % maps.shape[2]:
        raise ValueError(
            f"Expected a layer with feature maps dividing the image size {x.shape[1:3]}. "
            f"Received: {layer!r} with output {maps.shape[1:]}"
        )
    fy, fx = x.shape[1] // maps.shape[1], x.shape[2] // maps.shape[2]
    full = np.repeat(np.repeat(maps, fy, axis=1), fx, axis=2)
    pips, faces = pip_masks(x)
    on_pips = full[pips].mean(0)
    on_faces = full[faces].mean(0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(on_pips + on_faces > 0, on_pips / on_faces, np.nan)
