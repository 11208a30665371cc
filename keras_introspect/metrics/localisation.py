"""Localisation: does a map point at the object, given the object's mask?

Each image comes with a boolean mask `(n, H, W)` of where its object is
(a segmentation or a filled bounding box). The maps are used as they are,
signed: pass `np.abs(maps)` to score magnitudes.

- `pointing_game` (Zhang et al. 2018): is the map's maximum on the object
  (within `tolerance` pixels of it)? The mean is the hit rate.
- `relevance_mass` (Arras et al. 2022, "CLEVR-XAI"): the share of the map's
  positive relevance that lies inside the mask.
- `relevance_rank` (Arras et al. 2022): with `K` the size of the mask, the
  share of the map's top-`K` pixels that lie inside it.

A map with channels `(n, H, W, C)` is scored entry by entry, every channel
of a pixel taking that pixel's mask value.

Ties count with equal weight, so that a map does not gain from a pixel
order: in the pointing game every maximal pixel counts as a share of the
hit (a unique maximum is a hit or not), and in the rank measure the top-`K`
pixels tied at the `K`-th value are scored by the share of that tie that
lies in the mask. A constant map therefore scores the mask's share of the
image in both: chance level.

Conventions against Quantus (`PointingGame`, `RelevanceMassAccuracy`,
`RelevanceRankAccuracy`), which by default normalise maps first (which does
not change these measures): Quantus counts a pointing-game hit when *any*
tied maximum is in the mask and has no tolerance; its mass accuracy sums
signed relevance (equal to ours for non-negative maps); its rank accuracy
breaks ties by the sort order. Quantus returns NaN for an empty mask; here
an empty mask is an error.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from keras_introspect._data import as_array
from keras_introspect._validation import check_number
from keras_introspect.metrics.complexity import PerImage, map_array, warn_undefined


@dataclass(repr=False)
class LocalisationResult(PerImage):
    """A localisation measure of each map against its object mask.

    Attributes:
        measure: ``"pointing game"``, ``"relevance mass"`` or
            ``"relevance rank"``; higher is better for all three.
        values: `(n,)` per image, in [0, 1] (the pointing game: 1 for a hit,
            0 for a miss, a share when the maximum is tied; NaN for a map
            without positive relevance in `relevance_mass`).
        details: the settings (`tolerance` of the pointing game).
    """

    measure: str
    values: np.ndarray
    details: dict = field(default_factory=dict)


def _check(maps, masks) -> tuple:
    """`(maps (n, H, W, C) float64, masks (n, H, W, 1) bool)`, validated together.

    Masks have the maps' shape (maps without channels: `(n, H, W)`, also
    `(n, L)` and `(n, D, H, W)`) or the maps' shape without the last axis
    (maps with channels).
    """
    maps = map_array(maps)
    masks = as_array(masks, "masks")
    if masks.ndim >= 2 and masks.shape[-1] == 1 and masks.shape[:-1] == maps.shape[:-1]:
        masks = masks[..., 0]
    if masks.ndim >= 2 and masks.shape[-1] == 1 and masks.shape[:-1] == maps.shape:
        masks = masks[..., 0]
    if masks.shape == maps.shape:
        channels = False
    elif maps.ndim >= 3 and masks.shape == maps.shape[:-1]:
        channels = True
    else:
        raise ValueError(
            f"Expected one mask per map, shape {maps.shape[:3]} (n, H, W). Received: masks "
            f"with shape {masks.shape} for maps of shape {maps.shape}"
        )
    if masks.dtype != bool:
        if masks.dtype.kind not in "iuf":
            raise ValueError(
                f"Expected boolean masks (or 0/1 values). Received: masks of dtype {masks.dtype}"
            )
        other = ~np.isin(masks, (0, 1))
        if other.any():
            raise ValueError(
                "Expected boolean masks (or 0/1 values). Received: masks with "
                f"{int(other.sum())} other values, e.g. {masks[other][0].item()!r}"
            )
        masks = masks.astype(bool)
    empty = ~masks.reshape(len(masks), -1).any(axis=1)
    if empty.any():
        raise ValueError(
            "Expected every mask to mark at least one pixel. Received: empty masks for "
            f"image(s) {np.flatnonzero(empty)[:10].tolist()}"
        )
    if not channels:
        maps = maps[..., None]
    return maps, masks[..., None]


def pointing_game(maps, masks, tolerance: float = 0) -> LocalisationResult:
    """Whether the maximum of each map lies on the object (Zhang et al. 2018).

    A hit when the pixel of the map's maximum is in the mask, or within
    `tolerance` pixels of it (Euclidean distance between pixel centres: a
    disc of that radius around the maximum; Zhang et al. use 15 pixels at
    224). When several entries share the maximum, each counts with equal
    weight: the value is the share of them that hit.

    Args:
        maps: one map per image, `(n, H, W)` or `(n, H, W, C)` (the maximum
            over every entry).
        masks: `(n, H, W)` boolean (or 0/1) object masks, none empty.
        tolerance: in pixels, a number >= 0.

    Returns:
        `LocalisationResult`: `values` `(n,)` (1 hit, 0 miss), `mean` the hit rate.

    Raises:
        ValueError: maps and masks of different shapes, masks that are not
            boolean or 0/1, an empty mask, a negative tolerance.

    Example:
        >>> import numpy as np, keras_introspect as ki
        >>> maps = np.zeros((1, 5, 5)); maps[0, 0, 0] = 1.0
        >>> masks = np.zeros((1, 5, 5), bool); masks[0, 2:, 2:] = True
        >>> ki.metrics.pointing_game(maps, masks).values.tolist()
        [0.0]
        >>> ki.metrics.pointing_game(maps, masks, tolerance=3).values.tolist()  # 2.83 px away
        [1.0]
    """
    from scipy.ndimage import distance_transform_edt

    tolerance = check_number(tolerance, "tolerance", 0.0)
    maps, masks = _check(maps, masks)
    values = np.empty(len(maps))
    for i, (a, mask) in enumerate(zip(maps, masks[..., 0], strict=True)):
        near = mask if tolerance == 0 else distance_transform_edt(~mask) <= tolerance
        top = a == a.max()
        values[i] = (top & near[..., None]).sum() / top.sum()
    return LocalisationResult("pointing game", values, {"tolerance": tolerance})


def relevance_mass(maps, masks) -> LocalisationResult:
    """Share of the positive relevance inside the mask (Arras et al. 2022).

    With `R+ = max(a, 0)` over every entry of a map::

        mass = sum_{in mask} R+ / sum R+

    1 when all positive relevance is on the object. A map without positive
    relevance has no value (NaN, with a warning).

    Args:
        maps: one map per image, `(n, H, W)` or `(n, H, W, C)`.
        masks: `(n, H, W)` boolean (or 0/1) object masks, none empty.

    Returns:
        `LocalisationResult` with `values` `(n,)` in [0, 1].

    Raises:
        ValueError: maps and masks of different shapes, masks that are not
            boolean or 0/1, an empty mask.

    Example:
        >>> import numpy as np, keras_introspect as ki
        >>> maps = np.array([[[3.0, 1.0], [-5.0, 0.0]]])
        >>> masks = np.array([[[True, False], [True, False]]])
        >>> ki.metrics.relevance_mass(maps, masks).values.tolist()   # 3 / (3 + 1)
        [0.75]
    """
    maps, masks = _check(maps, masks)
    positive = np.maximum(maps, 0.0)
    inside = (positive * masks).reshape(len(maps), -1).sum(axis=1)
    total = positive.reshape(len(maps), -1).sum(axis=1)
    none = total == 0
    warn_undefined(none, "Relevance mass", "no positive relevance")
    values = np.divide(inside, total, out=np.full(len(maps), np.nan), where=~none)
    return LocalisationResult("relevance mass", values)


def relevance_rank(maps, masks) -> LocalisationResult:
    """Share of the map's top-K entries inside the mask, K the mask's size (Arras et al. 2022).

    With `K` the number of mask entries (pixels, times channels for maps
    with channels) and `top_K` the `K` largest entries of the map::

        rank = |top_K inside the mask| / K

    1 when the `K` most relevant entries cover the object exactly. The
    entries tied at the `K`-th value are scored by the share of that tie
    inside the mask (the expected value over orders of the tie).

    Args:
        maps: one map per image, `(n, H, W)` or `(n, H, W, C)`.
        masks: `(n, H, W)` boolean (or 0/1) object masks, none empty.

    Returns:
        `LocalisationResult` with `values` `(n,)` in [0, 1].

    Raises:
        ValueError: maps and masks of different shapes, masks that are not
            boolean or 0/1, an empty mask.

    Example:
        >>> import numpy as np, keras_introspect as ki
        >>> maps = np.array([[[4.0, 3.0], [2.0, 1.0]]])
        >>> masks = np.array([[[True, False], [True, False]]])   # K = 2: top 4 and 3
        >>> ki.metrics.relevance_rank(maps, masks).values.tolist()
        [0.5]
    """
    maps, masks = _check(maps, masks)
    masks = np.broadcast_to(masks, maps.shape)
    values = np.empty(len(maps))
    for i, (a, mask) in enumerate(zip(maps, masks, strict=True)):
        a, mask = a.ravel(), mask.ravel()
        k = int(mask.sum())
        kth = np.partition(a, a.size - k)[a.size - k]  # the K-th largest value
        above, tied = a > kth, a == kth
        wanted = k - int(above.sum())  # entries still to take from the tie
        hits = (above & mask).sum() + wanted * (tied & mask).sum() / tied.sum()
        values[i] = hits / k
    return LocalisationResult("relevance rank", values)
