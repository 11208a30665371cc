"""Random image transforms applied at every optimisation step (robustness).

Activation maximization through a randomly jittered, rotated, scaled or
blurred copy of the image favours patterns that survive small changes, which
removes much of the high-frequency noise plain gradient ascent produces
(Dai 2019, §2.4; Mordvintsev et al. 2015). The transforms run on the device
inside the compiled step and are differentiable with respect to the image.
Their random draws come from the host, keyed by `(seed, image index, step)`,
so a result does not depend on how images are batched together.

Consecutive geometric transforms (`Jitter`, `Rotate`, `Scale`, `RandomFlip`)
are composed into one affine map and the image is resampled once (bilinear,
mirrored at the borders). `Pad` comes first, as in Lucid's
`standard_transforms`: the other transforms act on the padded canvas and the
model sees its centre, of the image's size.

Example:
    >>> from keras_introspect.optimize import transforms
    >>> transforms.Jitter(4)
    Jitter(pixels=4)
"""

from __future__ import annotations

import math

import numpy as np

from keras_introspect._validation import check_instances, check_number, check_one_of


class Transform:
    """Base class: a random image transform with `n_random` uniform draws per row."""

    n_random = 1

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.__dict__.items())
        return f"{type(self).__name__}({args})"


class _Affine(Transform):
    """A transform that is an affine map of pixel coordinates."""

    def matrix(self, u):
        """`(rows, 3, 3)` map from output to source coordinates, centred."""
        raise NotImplementedError


def _check_pixels(pixels) -> int:
    if isinstance(pixels, bool) or not isinstance(pixels, (int, np.integer)) or pixels < 0:
        raise ValueError(f"Expected `pixels` to be an integer >= 0. Received: pixels={pixels!r}")
    return int(pixels)


def _check_range(value, name: str, minimum=None) -> tuple:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        low, high = (-value, value) if minimum is None else (value, value)
    else:
        try:
            low, high = value
        except (TypeError, ValueError) as err:
            raise ValueError(
                f"Expected `{name}` to be a number or a (low, high) pair. "
                f"Received: {name}={value!r}"
            ) from err
    low, high = check_number(low, name), check_number(high, name)
    if low > high or (minimum is not None and low <= minimum):
        raise ValueError(
            f"Expected `{name}` as (low, high) with {minimum if minimum is not None else '-inf'}"
            f" < low <= high. Received: {name}={value!r}"
        )
    return (low, high)


class Jitter(_Affine):
    """Translate by a random whole number of pixels in `[-pixels, pixels]` per axis.

    Args:
        pixels: largest shift.
    """

    n_random = 2

    def __init__(self, pixels: int = 4):
        self.pixels = _check_pixels(pixels)

    def matrix(self, u):
        import tensorflow as tf

        p = self.pixels
        shift = tf.floor(u * (2 * p + 1)) - p  # (rows, 2), integers in [-p, p]
        one, zero = tf.ones_like(shift[:, 0]), tf.zeros_like(shift[:, 0])
        return tf.stack(
            [
                tf.stack([one, zero, -shift[:, 0]], 1),
                tf.stack([zero, one, -shift[:, 1]], 1),
                tf.stack([zero, zero, one], 1),
            ],
            1,
        )


class Rotate(_Affine):
    """Rotate about the image centre by a random angle.

    Args:
        degrees: largest angle `d` (drawn uniformly in `[-d, d]`) or a
            `(low, high)` range in degrees.
    """

    def __init__(self, degrees=5.0):
        self.degrees = _check_range(degrees, "degrees")

    def matrix(self, u):
        import tensorflow as tf

        low, high = self.degrees
        angle = (low + (high - low) * u[:, 0]) * (math.pi / 180.0)
        c, s = tf.cos(angle), tf.sin(angle)
        one, zero = tf.ones_like(c), tf.zeros_like(c)
        # output -> source is the inverse rotation
        return tf.stack(
            [tf.stack([c, s, zero], 1), tf.stack([-s, c, zero], 1), tf.stack([zero, zero, one], 1)],
            1,
        )


class Scale(_Affine):
    """Zoom about the image centre by a random factor in `factors`.

    Args:
        factors: `(low, high)` range of scale factors (> 0), or one factor.
    """

    def __init__(self, factors=(0.9, 1.1)):
        self.factors = _check_range(factors, "factors", minimum=0.0)

    def matrix(self, u):
        import tensorflow as tf

        low, high = self.factors
        inverse = 1.0 / (low + (high - low) * u[:, 0])
        one, zero = tf.ones_like(inverse), tf.zeros_like(inverse)
        return tf.stack(
            [
                tf.stack([inverse, zero, zero], 1),
                tf.stack([zero, inverse, zero], 1),
                tf.stack([zero, zero, one], 1),
            ],
            1,
        )


class Blur(Transform):
    """Gaussian blur with a random standard deviation in `sigma` (pixels).

    Args:
        sigma: largest standard deviation `s` (drawn in `[0, s]`), or a
            `(low, high)` range.
    """

    def __init__(self, sigma=1.0):
        if isinstance(sigma, (int, float)) and not isinstance(sigma, bool):
            sigma = (0.0, check_number(sigma, "sigma", minimum=0.0))
        self.sigma = _check_range(sigma, "sigma")
        if self.sigma[0] < 0:
            raise ValueError(f"Expected `sigma` >= 0. Received: sigma={sigma!r}")

    def apply(self, images, u):
        low, high = self.sigma
        return gaussian_blur(images, low + (high - low) * u[:, 0], high)


class RandomFlip(_Affine):
    """Mirror the image left-right, and optionally top-bottom, each with probability 1/2.

    One uniform draw `u` per enabled axis and step; the axis is flipped
    where `u < 0.5` (horizontal first, then vertical). A flip is an exact
    permutation of the pixels and composes with `Jitter`, `Rotate` and
    `Scale` into one resampling.

    Args:
        horizontal: flip the columns (left-right).
        vertical: flip the rows (top-bottom).

    Example:
        >>> RandomFlip(horizontal=True, vertical=True).n_random  # draws per step
        2
    """

    def __init__(self, horizontal: bool = True, vertical: bool = False):
        for name, value in (("horizontal", horizontal), ("vertical", vertical)):
            if not isinstance(value, (bool, np.bool_)):
                raise ValueError(f"Expected `{name}` to be True or False. Received: {value!r}")
        if not (horizontal or vertical):
            raise ValueError(
                "Expected at least one axis to flip. Received: horizontal=False, vertical=False"
            )
        self.horizontal = bool(horizontal)
        self.vertical = bool(vertical)

    @property
    def n_random(self) -> int:
        return int(self.horizontal) + int(self.vertical)

    def matrix(self, u):
        import tensorflow as tf

        def sign(draw):  # -1 mirrors the centred coordinate
            return tf.where(draw < 0.5, -1.0, 1.0)

        one = tf.ones_like(u[:, 0])
        zero = tf.zeros_like(one)
        sx = sign(u[:, 0]) if self.horizontal else one
        sy = sign(u[:, -1]) if self.vertical else one
        return tf.stack(
            [
                tf.stack([sy, zero, zero], 1),
                tf.stack([zero, sx, zero], 1),
                tf.stack([zero, zero, one], 1),
            ],
            1,
        )


PAD_MODES = ("constant", "reflect")


class Pad(Transform):
    """Pad the image by `pixels` on every side before the other transforms (Lucid's `pad`).

    The transforms after it act on the `(H + 2k, W + 2k)` canvas and the
    model sees the canvas' centre `H x W` window, so `Pad` alone changes
    nothing: with `Jitter`, `Rotate` or `Scale` after it, what moves into
    view at the borders is the padding instead of the mirrored image, which
    keeps the optimisation from relying on the image's edges (Olah et al.
    2017, "Feature Visualization", transformation robustness). It must come
    first in the list (no random draws).

    Args:
        pixels: `k`, the padding on each side.
        mode: ``"constant"`` (every padded pixel is `value`) or
            ``"reflect"`` (mirrored about the edge pixels, which are not
            repeated: a row `x1 x2 x3` padded by 2 is `x3 x2 x1 x2 x3 x2
            x1`; a larger `k` mirrors again, with period `2 (W - 1)`, as the
            other transforms' borders do).
        value: the constant, in the model's input units (e.g. 0.5 is the
            mid-grey of a `(0, 1)` model); ignored by ``"reflect"``.

    Example:
        >>> [Pad(8, value=0.5), Jitter(8)]  # Lucid-like, for (0, 1) inputs
        [Pad(pixels=8, mode='constant', value=0.5), Jitter(pixels=8)]
    """

    n_random = 0

    def __init__(self, pixels: int = 4, mode: str = "constant", value: float = 0.0):
        self.pixels = _check_pixels(pixels)
        check_one_of(mode, "mode", PAD_MODES)
        self.mode = mode
        self.value = check_number(value, "value")

    def apply(self, images, u=None):
        """`(rows, H + 2k, W + 2k, C)` padded images (`u` is not used)."""
        import tensorflow as tf

        k = self.pixels
        if self.mode == "constant":
            return tf.pad(images, [[0, 0], [k, k], [k, k], [0, 0]], constant_values=self.value)
        for axis in (1, 2):
            size = images.shape[axis]
            images = tf.gather(images, _reflected_indices(size, k), axis=axis)
        return images


def _reflected_indices(size: int, k: int) -> np.ndarray:
    """Source index of each of `size + 2k` positions, mirrored about the edge pixels."""
    index = np.arange(-k, size + k)
    if size == 1:
        return np.zeros_like(index)
    period = 2 * (size - 1)
    index = np.mod(index, period)
    return np.where(index > size - 1, period - index, index)


def _reflect(coordinate, size: int):
    """Mirror coordinates into `[0, size - 1]` (period `2 * (size - 1)`)."""
    import tensorflow as tf

    if size == 1:
        return tf.zeros_like(coordinate)
    period = 2.0 * (size - 1)
    c = tf.math.floormod(coordinate, period)
    return tf.where(c > size - 1, period - c, c)


def affine_resample(images, matrices):
    """Bilinear resampling of `(rows, H, W, C)` images by `(rows, 3, 3)` maps.

    `matrices` map centred output coordinates `(row, col, 1)` to centred
    source coordinates; the image is mirrored beyond its borders. The result
    is differentiable with respect to `images` (exact adjoint: gathers).
    """
    import tensorflow as tf

    rows, H, W, C = (tf.shape(images)[0], *images.shape[1:])
    cy, cx = (H - 1) / 2.0, (W - 1) / 2.0
    gy, gx = np.meshgrid(np.arange(H, dtype=np.float32) - cy, np.arange(W) - cx, indexing="ij")
    grid = tf.constant(np.stack([gy.ravel(), gx.ravel(), np.ones(H * W)], 0), tf.float32)
    source = tf.einsum("rij,jp->rip", matrices[:, :2], grid)  # (rows, 2, H*W)
    y = _reflect(source[:, 0] + cy, H)
    x = _reflect(source[:, 1] + cx, W)
    y0, x0 = tf.floor(y), tf.floor(x)
    wy, wx = (y - y0)[..., None], (x - x0)[..., None]
    y0 = tf.cast(y0, tf.int32)
    x0 = tf.cast(x0, tf.int32)
    y1, x1 = tf.minimum(y0 + 1, H - 1), tf.minimum(x0 + 1, W - 1)
    flat = tf.reshape(images, [rows, H * W, C])

    def at(yy, xx):
        return tf.gather(flat, yy * W + xx, axis=1, batch_dims=1)

    out = (1 - wy) * ((1 - wx) * at(y0, x0) + wx * at(y0, x1)) + wy * (
        (1 - wx) * at(y1, x0) + wx * at(y1, x1)
    )
    return tf.reshape(out, [rows, H, W, C])


def gaussian_blur(images, sigma, max_sigma: float):
    """Blur each row of `(rows, H, W, C)` with its own standard deviation.

    Args:
        images: image batch.
        sigma: `(rows,)` tensor of standard deviations (0 leaves a row as is).
        max_sigma: largest possible sigma; sets the (static) kernel size.
    """
    import tensorflow as tf

    radius = max(1, math.ceil(3 * max_sigma))
    offsets = tf.range(-radius, radius + 1, dtype=tf.float32)
    sigma = tf.maximum(tf.reshape(sigma, [-1, 1]), 1e-3)
    kernel = tf.exp(-0.5 * tf.square(offsets[None] / sigma))
    kernel = kernel / tf.reduce_sum(kernel, axis=1, keepdims=True)  # (rows, k)
    rows, H, W, C = (tf.shape(images)[0], *images.shape[1:])
    # Rows become channels so that one depthwise convolution blurs each row
    # with its own kernel; mirrored padding keeps the borders unbiased.
    stacked = tf.reshape(tf.transpose(images, [1, 2, 0, 3]), [1, H, W, rows * C])
    pad_h, pad_w = min(radius, H - 1), min(radius, W - 1)
    stacked = tf.pad(stacked, [[0, 0], [pad_h, pad_h], [pad_w, pad_w], [0, 0]], mode="REFLECT")
    stacked = tf.pad(
        stacked, [[0, 0], [radius - pad_h] * 2, [radius - pad_w] * 2, [0, 0]], mode="SYMMETRIC"
    )
    per_channel = tf.reshape(tf.repeat(kernel, C, axis=0), [-1, 2 * radius + 1])  # (rows*C, k)
    vertical = tf.reshape(tf.transpose(per_channel), [2 * radius + 1, 1, -1, 1])
    horizontal = tf.reshape(tf.transpose(per_channel), [1, 2 * radius + 1, -1, 1])
    out = tf.nn.depthwise_conv2d(stacked, vertical, [1, 1, 1, 1], "VALID")
    out = tf.nn.depthwise_conv2d(out, horizontal, [1, 1, 1, 1], "VALID")
    return tf.transpose(tf.reshape(out, [H, W, rows, C]), [2, 0, 1, 3])


def check_transforms(transforms) -> list:
    """Validate a transform list (`None` for none); `Pad` only at its start."""
    transforms = check_instances(
        transforms,
        Transform,
        "transforms",
        "keras_introspect.optimize.transforms objects (Pad, Jitter, Rotate, Scale, "
        "RandomFlip, Blur)",
    )
    leading = 0
    while leading < len(transforms) and isinstance(transforms[leading], Pad):
        leading += 1
    late = [t for t in transforms[leading:] if isinstance(t, Pad)]
    if late:
        raise ValueError(
            "Expected `Pad` before the other transforms (it pads the canvas they act on). "
            f"Received: transforms={transforms!r}"
        )
    return transforms


def n_random(transforms) -> int:
    """Uniform draws per row and step that `transforms` consume."""
    return sum(t.n_random for t in transforms)


def apply(transforms, images, u):
    """Apply `transforms` in order to `(rows, H, W, C)` images; `(rows, H, W, C)` out.

    With `Pad` the others act on the padded canvas, cropped back to its
    centre `H x W` at the end.

    Args:
        transforms: the transform list.
        images: image batch (float32).
        u: `(rows, n_random(transforms))` uniform draws in `[0, 1)`.
    """
    import tensorflow as tf

    matrix, start, padded = None, 0, 0
    height, width = images.shape[1:3]
    for t in transforms:
        draws = u[:, start : start + t.n_random]
        start += t.n_random
        if isinstance(t, _Affine):
            m = t.matrix(draws)
            matrix = m if matrix is None else tf.matmul(matrix, m)
            continue
        if matrix is not None:
            images, matrix = affine_resample(images, matrix), None
        images = t.apply(images, draws)
        if isinstance(t, Pad):
            padded += t.pixels
    if matrix is not None:
        images = affine_resample(images, matrix)
    if padded:  # the model sees the canvas' centre, of the image's size
        images = images[:, padded : padded + height, padded : padded + width]
    return images
