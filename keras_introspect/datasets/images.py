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


# Pillow modes of 16-bit (and 32-bit integer) images: scaled to 0-255 like 8-bit ones
_WIDE_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I")


def read_image(path, size=None, channels=3):
    """One image file as float32 `(H, W, channels)` in 0-255, resized to `size`.

    The rules (documented in docs/cli.md):

    - CMYK (print JPEGs), palette, YCbCr and other colour modes are converted
      to RGB; alpha channels are dropped (also grey + alpha);
    - 16-bit images are scaled to 0-255 like 8-bit ones (grey: value / 257;
      16-bit RGB PNGs are read by Pillow as their high bytes), so every image
      of a folder is on one scale;
    - an animated file (several frames) is refused;
    - a large image is first reduced in the decoder (JPEG) and by an integer
      box filter to about twice `size`, then resized with anti-aliasing, so a
      photo of tens of megapixels takes a fraction of a second.

    Raises:
        ValueError: an animated image, or a file Pillow cannot decode.
    """
    from PIL import Image

    with Image.open(path) as image:
        frames = getattr(image, "n_frames", 1)
        if frames > 1:
            raise ValueError(f"{path!r} is animated ({frames} frames); give one image per file")
        if size is not None and image.format == "JPEG":
            image.draft(image.mode, (2 * size[1], 2 * size[0]))
        if image.mode in _WIDE_MODES:
            image = image.convert("F").point(lambda v: v / 257.0)
        elif image.mode == "F":
            pass
        elif image.mode in ("1", "L", "LA", "La"):
            image = image.convert("L")
        else:
            image = image.convert("RGB")
        if size is not None:
            factor = min(image.width // size[1], image.height // size[0]) // 2
            if factor >= 2:
                image = image.reduce(factor)
        array = np.asarray(image, dtype=np.float32)
    return conform_image(array, size, channels)


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
