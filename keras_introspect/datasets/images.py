"""Photographs that ship with scikit-image, and fitting images to a model's input."""

from __future__ import annotations

import numpy as np


def conform_image(image, size=None, channels=3):
    """An image as float32 `(H, W, channels)`, resized to `size` if given.

    Grey images get `channels` copies, RGB(A) images drop alpha and, for
    `channels=1`, are averaged. Resizing is anti-aliased and keeps the value
    range (e.g. 0-255).
    """
    import skimage.transform

    image = np.asarray(image, dtype=np.float32)
    if image.ndim == 2:
        image = image[..., None]
    if image.shape[-1] >= 3:
        image = image[..., :3]
    if channels == 1 and image.shape[-1] == 3:
        image = image.mean(axis=-1, keepdims=True)
    elif channels == 3 and image.shape[-1] == 1:
        image = np.repeat(image, 3, axis=-1)
    if size is not None and image.shape[:2] != tuple(size):
        image = skimage.transform.resize(image, size, anti_aliasing=True, preserve_range=True)
    return image.astype(np.float32)


SAMPLE_IMAGES = (
    "astronaut",
    "coffee",
    "chelsea",
    "rocket",
    "immunohistochemistry",
    "retina",
    "camera",
    "coins",
    "moon",
    "horse",
)


def sample_images(names=None, size=None):
    """Images that ship with scikit-image (no download), as float32 RGB in [0, 255].

    Args:
        names: which images (default: `SAMPLE_IMAGES`, e.g. "astronaut",
            "retina", "immunohistochemistry"); greyscale ones are repeated to
            three channels.
        size: `(height, width)` or an int to resize all to one shape
            (anti-aliased); `None` keeps each image's own size.

    Returns:
        A dict `name -> (H, W, 3)` array; with `size`, use
        `np.stack(list(d.values()))` for a batch.

    Example:
        >>> images = sample_images(["astronaut", "camera"], size=64)
        >>> images["camera"].shape
        (64, 64, 3)
    """
    import skimage.data

    names = SAMPLE_IMAGES if names is None else tuple(names)
    unknown = [name for name in names if name not in SAMPLE_IMAGES]
    if unknown:
        raise ValueError(f"Unknown sample image(s) {unknown}. Expected some of {SAMPLE_IMAGES}")
    if isinstance(size, (int, np.integer)):
        size = (int(size), int(size))
    images = {}
    for name in names:
        image = np.asarray(getattr(skimage.data, name)(), dtype=np.float32)
        if image.max() <= 1.0:
            image = image * 255.0
        images[name] = conform_image(image, size, channels=3)
    return images
