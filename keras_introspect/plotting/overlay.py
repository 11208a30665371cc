"""The overlay procedure of Kalmeijer (2016, §4.3, seed `004`).

A saliency map is smoothed with a small Gaussian, thresholded into important
and unimportant pixels with a watershed, and drawn on the image: important
areas brightened and outlined in green, the receptive field of the explained
neuron (if any) marked with a blue box. A signed map (Gradient x Input,
Integrated Gradients, occlusion: values for and against the target) is drawn
by `signed_overlay` instead, on a diverging scale, so its sign is not lost.
"""

from __future__ import annotations

import numpy as np

from keras_introspect._validation import check_number

GREEN = (0.0, 0.85, 0.0)
BLUE = (0.1, 0.3, 1.0)


def to_unit(image, value_range=None):
    """`image` mapped from `value_range` (default: its own min and max) to [0, 1], clipped.

    A constant image (empty range) gives zeros.
    """
    image = np.asarray(image, dtype=np.float64)
    low, high = (image.min(), image.max()) if value_range is None else map(float, value_range)
    if high <= low:
        return np.zeros_like(image)
    return np.clip((image - low) / (high - low), 0.0, 1.0)


def important_mask(saliency, sigma=1.0, low=0.5, high=0.95):
    """Important pixels of a saliency map: Gaussian smoothing, then a watershed.

    The smoothed map's gradient magnitude is flooded from two sets of
    markers: pixels at or below the `low` quantile of the smoothed map
    (unimportant) and pixels at or above the `high` quantile (important).
    Every other pixel joins the basin that reaches it first, so the boundary
    follows the steepest change of the map between the two levels.

    Args:
        saliency: `(H, W)` map (or `(H, W, C)`, summed over channels after
            taking absolute values).
        sigma: standard deviation of the Gaussian, in pixels.
        low, high: quantiles of the markers, `0 <= low < high <= 1`.

    Returns:
        bool `(H, W)`; all False for a constant map.
    """
    from scipy import ndimage
    from skimage.filters import sobel
    from skimage.segmentation import watershed

    saliency = np.asarray(saliency, dtype=np.float64)
    if saliency.ndim == 3:
        saliency = np.abs(saliency).sum(axis=-1)
    if saliency.ndim != 2:
        raise ValueError(
            f"Expected a saliency map of shape (H, W) or (H, W, C). Received: {saliency.shape}"
        )
    if not np.all(np.isfinite(saliency)):
        raise ValueError("Expected a finite saliency map. Received: NaN or inf values")
    check_number(sigma, "sigma", minimum=0.0)
    low = check_number(low, "low", minimum=0.0)
    high = check_number(high, "high", minimum=0.0)
    if not low < high <= 1.0:
        raise ValueError(f"Expected 0 <= low < high <= 1. Received: low={low}, high={high}")
    smooth = ndimage.gaussian_filter(saliency, sigma) if sigma > 0 else saliency
    lo, hi = np.quantile(smooth, [low, high])
    if hi <= lo:
        return np.zeros(smooth.shape, dtype=bool)
    markers = np.zeros(smooth.shape, dtype=np.int32)
    markers[smooth <= lo] = 1
    markers[smooth >= hi] = 2
    return watershed(sobel(smooth), markers) == 2


def overlay(
    image,
    saliency,
    receptive_field=None,
    sigma=1.0,
    low=0.5,
    high=0.95,
    brighten=0.5,
    dim=1.0,
    value_range=None,
):
    """Draw a saliency map on its image the way the thesis does (§4.3).

    Important areas (`important_mask`) are brightened: their values move
    towards white by `brighten`. Their borders are drawn in green, and the
    receptive field (if given) as a blue box. `dim` below 1 also darkens the
    unimportant pixels, which the thesis does not do.

    Other ranks: a signal `(L,)` / `(L, C)` with a map `(L,)` gives
    `plotting.nd.signal_strip` (the line above the map as a band); a volume
    `(D, H, W, C)` with a map `(D, H, W)` gives the three orthogonal slices
    through the map's maximum side by side (`plotting.nd.orthogonal_slices`).

    Args:
        image: `(H, W)`, `(H, W, 1)` or `(H, W, 3)`.
        saliency: `(H, W)` map (or `(H, W, C)`) for this image.
        receptive_field: `((row_start, row_stop), (col_start, col_stop))`
            (stops exclusive; e.g. `ReceptiveField.bounds(position)`), clipped
            to the image; `None` draws no box.
        sigma, low, high: see `important_mask`.
        brighten: 0..1, how far important pixels move towards white.
        dim: 0..1, brightness factor of the unimportant pixels (1, the
            default, keeps them).
        value_range: `(low, high)` of the image values; `None` uses the
            image's own minimum and maximum.

    Returns:
        float `(H, W, 3)` RGB in [0, 1], ready for `imshow` or a report.

    Example:
        >>> import numpy as np
        >>> image = np.zeros((16, 16))
        >>> saliency = np.zeros((16, 16)); saliency[4:8, 4:8] = 1.0
        >>> rgb = overlay(image, saliency, receptive_field=((2, 10), (2, 10)))
        >>> rgb.shape, bool(rgb[2, 2, 2] > rgb[2, 2, 0])     # a blue corner
        ((16, 16, 3), True)
    """
    from skimage.segmentation import find_boundaries

    image = np.asarray(image, dtype=np.float64)
    if np.ndim(saliency) == 1 or image.ndim == 4:  # a signal (L,) or a volume (D, H, W, C)
        from keras_introspect.plotting.nd import montage, orthogonal_slices, signal_strip

        if np.ndim(saliency) == 1:
            return signal_strip(image, saliency, value_range=value_range)
        return montage(orthogonal_slices(image, saliency, value_range=value_range)[1])
    if image.ndim == 3 and image.shape[-1] == 1:
        image = image[..., 0]
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=-1)
    if image.ndim != 3 or image.shape[-1] != 3:
        raise ValueError(
            f"Expected an image (H, W), (H, W, 1) or (H, W, 3). Received: {image.shape}"
        )
    saliency = np.asarray(saliency)
    if saliency.shape[:2] != image.shape[:2]:
        raise ValueError(
            f"Expected a saliency map of the image's size {image.shape[:2]}. "
            f"Received: {saliency.shape}"
        )
    brighten = check_number(brighten, "brighten", minimum=0.0)
    dim = check_number(dim, "dim", minimum=0.0)
    rgb = to_unit(image, value_range)
    mask = important_mask(saliency, sigma, low, high)
    out = rgb * dim
    out[mask] = rgb[mask] + brighten * (1.0 - rgb[mask])
    out[find_boundaries(mask, mode="inner")] = GREEN
    if receptive_field is not None:
        draw_box(out, receptive_field)
    return out


def draw_box(rgb, bounds):
    """Draw a receptive field `((r0, r1), (c0, c1))` on `rgb` `(H, W, 3)` in place
    (blue, clipped to the image)."""
    (r0, r1), (c0, c1) = bounds
    h, w = rgb.shape[:2]
    r0, c0 = max(int(r0), 0), max(int(c0), 0)
    r1, c1 = min(int(r1), h) - 1, min(int(c1), w) - 1
    if r1 < r0 or c1 < c0:
        return
    rgb[r0, c0 : c1 + 1] = BLUE
    rgb[r1, c0 : c1 + 1] = BLUE
    rgb[r0 : r1 + 1, c0] = BLUE
    rgb[r0 : r1 + 1, c1] = BLUE


def is_signed(maps, share=0.01) -> bool:
    """Whether `maps` hold negative values larger than `share` of their largest |value|
    (a map that says "against the target" somewhere, drawn by `signed_overlay`)."""
    maps = np.asarray(maps, dtype=np.float64)
    top = float(np.abs(maps).max()) if maps.size else 0.0
    return top > 0 and float(maps.min()) < -share * top


def signed_overlay(image, saliency, value_range=None, strength=0.75, limit=None):
    """A signed map on its image: red where it speaks for the target, blue against it.

    The image is shown in grey; each pixel is blended towards the colour of
    its value on a diverging scale (matplotlib's ``RdBu_r``, symmetric around
    0) by `strength` times `|value| / limit`, so pixels near 0 keep the
    image and the strongest ones take the full colour.

    Args:
        image: `(H, W)`, `(H, W, 1)` or `(H, W, 3)`.
        saliency: `(H, W)` signed map for this image.
        value_range: `(low, high)` of the image values; `None`: its own range.
        strength: 0..1, the blend of the strongest pixels.
        limit: the |value| that takes the full colour (default: the map's
            largest |value|; pass one limit to compare several maps).

    Returns:
        float `(H, W, 3)` RGB in [0, 1].

    Example:
        >>> import numpy as np
        >>> saliency = np.zeros((4, 4)); saliency[0, 0], saliency[3, 3] = 1.0, -1.0
        >>> rgb = signed_overlay(np.full((4, 4), 0.5), saliency)
        >>> bool(rgb[0, 0, 0] > rgb[0, 0, 2]), bool(rgb[3, 3, 2] > rgb[3, 3, 0])  # red, blue
        (True, True)
    """
    from matplotlib import colormaps

    image = np.asarray(image, dtype=np.float64)
    if image.ndim == 3:
        image = image.mean(axis=-1)  # grey, so the colours read as the map's
    saliency = np.asarray(saliency, dtype=np.float64)
    if saliency.shape != image.shape:
        raise ValueError(
            f"Expected a saliency map of the image's size {image.shape}. Received: {saliency.shape}"
        )
    strength = check_number(strength, "strength", minimum=0.0)
    grey = np.repeat(to_unit(image, value_range)[..., None], 3, axis=-1)
    top = float(np.abs(saliency).max()) if limit is None else check_number(limit, "limit")
    if top <= 0:
        return grey
    scaled = np.clip(saliency / top, -1.0, 1.0)
    colour = colormaps["RdBu_r"](0.5 + 0.5 * scaled)[..., :3]
    alpha = strength * np.abs(scaled)[..., None]
    return (1.0 - alpha) * grey + alpha * colour
