"""Pieces of images whose activations become concepts: fixed crops or superpixels.

- Fixed crops (CRAFT, Fel et al. 2023): square windows on a grid, with a
  stride of 80 % of their size as CRAFT's reference code uses.
- Superpixels (ACE, Ghorbani et al. 2019): SLIC segments; each segment is
  cut out by its bounding box and the pixels outside the segment are filled
  with the mean value of the images (ACE's grey) or a given value.

Either way each piece is resized to the model's input size (bilinear), as
both papers do, so the layer sees it at the scale of a whole image.
"""

from __future__ import annotations

import numpy as np

PIECES = ("patches", "superpixels")


def default_patch_size(shape) -> int:
    """A quarter of the image's shorter side (at least 4 pixels)."""
    return max(4, min(shape[:2]) // 4)


def patch_boxes(shape, size: int, stride: int) -> list:
    """`(top, left, size, size)` of every window of a VALID grid over an image of `shape`."""
    h, w = shape[:2]
    tops = range(0, h - size + 1, stride)
    lefts = range(0, w - size + 1, stride)
    return [(t, left, size, size) for t in tops for left in lefts]


def segments(image, n_segments: int, random_state=None) -> np.ndarray:
    """SLIC superpixel labels `(H, W)` of one image (values rescaled to [0, 1] first)."""
    from skimage.segmentation import slic

    low, high = float(image.min()), float(image.max())
    scaled = (image - low) / (high - low) if high > low else np.zeros_like(image)
    channel_axis = -1 if image.shape[-1] in (1, 3) else None
    if channel_axis is None:
        scaled = scaled.mean(axis=-1)
    return slic(
        scaled.astype(np.float64),
        n_segments=n_segments,
        compactness=10.0 if channel_axis is not None else 0.1,
        start_label=0,
        channel_axis=channel_axis,
    )


class Pieces:
    """The pieces of a set of images: where each comes from and how to make it.

    Attributes:
        origins: `(n_pieces, 5)` int: image index, top, left, height, width.
        masks: per piece, the boolean segment mask inside its box (superpixels),
            or `None` (fixed crops).
    """

    def __init__(self, X, kind, patch_size, stride, n_segments, fill="mean", min_fraction=0.002):
        self.X = X
        self.kind = kind
        if isinstance(fill, str):
            fill = X.reshape(-1, X.shape[-1]).mean(axis=0)
        self.fill = np.broadcast_to(np.asarray(fill, np.float32), X.shape[-1:])
        origins, masks = [], []
        if kind == "patches":
            boxes = patch_boxes(X.shape[1:], patch_size, stride)
            for i in range(len(X)):
                origins += [(i, *box) for box in boxes]
            masks = [None] * len(origins)
        else:
            min_size = max(4, int(min_fraction * X.shape[1] * X.shape[2]))
            for i, image in enumerate(X):
                labels = segments(image, n_segments)
                for s in np.unique(labels):
                    where = labels == s
                    if where.sum() < min_size:
                        continue
                    rows, cols = np.flatnonzero(where.any(1)), np.flatnonzero(where.any(0))
                    top, left = rows[0], cols[0]
                    h, w = rows[-1] - top + 1, cols[-1] - left + 1
                    origins.append((i, top, left, h, w))
                    masks.append(where[top : top + h, left : left + w])
        self.origins = np.array(origins, np.int64).reshape(-1, 5)
        self.masks = masks

    def __len__(self) -> int:
        return len(self.origins)

    def piece(self, j) -> np.ndarray:
        """Piece `j` at its own size (outside its segment: the fill value)."""
        i, top, left, h, w = self.origins[j]
        crop = self.X[i, top : top + h, left : left + w]
        if self.masks[j] is not None:
            crop = np.where(self.masks[j][..., None], crop, self.fill)
        return crop

    def batches(self, indices, batch_size: int, size):
        """Pieces `indices` resized to `size` `(H, W)`, `batch_size` at a time."""
        for start in range(0, len(indices), batch_size):
            yield self.resized(indices[start : start + batch_size], size)

    def resized(self, indices, size) -> np.ndarray:
        """Pieces `indices` resized to `size` `(H, W)` (bilinear), float32 `(len, *size, C)`."""
        import tensorflow as tf

        if not len(indices):
            return np.zeros((0, *size, self.X.shape[-1]), np.float32)
        pieces = [self.piece(j) for j in indices]
        if len({p.shape for p in pieces}) == 1:  # fixed crops: one resize for the batch
            return np.asarray(tf.image.resize(np.stack(pieces), size, method="bilinear"))
        return np.stack(
            [np.asarray(tf.image.resize(p, size, method="bilinear")) for p in pieces]
        ).astype(np.float32)
