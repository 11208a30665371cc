"""Image parameterizations: what the optimizer actually changes.

- ``"pixel"``: the pixels themselves. With a `value_range` they are clipped
  to it after every step (projected gradient ascent).
- ``"fft"``: the 2-D Fourier spectrum of each channel, scaled by `1 / f`
  (frequency `f`), so that the optimizer, which moves every parameter by a
  similar amount, changes low frequencies more than high ones (Olah et al.
  2017, "Feature Visualization"). Signals and vectors take the 1-D spectrum,
  volumes the 3-D one, with the same `1 / f` scaling.
- ``"decorrelated"``: pixels in a decorrelated colour basis: the image is
  `L @ z` per pixel, `L` a square root of the channel covariance (of the
  dataset when one is given, else the ImageNet RGB statistics, for 3
  channels only). Inputs without a channel axis (flat vectors) have no
  colours to decorrelate.
- ``"fft_decorrelated"``: both.

Samples of any rank are parameterized: vectors `(L,)`, signals `(L, C)`,
images `(H, W, C)` and volumes `(D, H, W, C)`.

Except for ``"pixel"``, a `value_range` is reached through a sigmoid, so
every parameter value is a valid image. Every parameterization is exactly
invertible, so any starting image (dataset mean, a given image, the most
activating patch) can be used with any of them.

Example:
    >>> import numpy as np
    >>> p = Parameterization("fft", (8, 8, 3))
    >>> image = np.random.default_rng(0).normal(size=(1, 8, 8, 3)).astype("float32")
    >>> bool(np.allclose(p.to_image(p.from_image(image)), image, atol=1e-4))
    True
"""

from __future__ import annotations

import numpy as np

from keras_introspect._validation import check_one_of

KINDS = ("pixel", "fft", "decorrelated", "fft_decorrelated")

# Square root of the RGB covariance of ImageNet (Olah et al. 2017), in the
# column-normalised form used when no dataset is given.
_IMAGENET_RGB = np.array(
    [[0.26, 0.09, 0.02], [0.27, 0.00, -0.05], [0.27, -0.09, 0.03]], dtype=np.float64
)


def colour_matrix(x=None, n_channels: int = 3) -> np.ndarray:
    """`L` with `L @ L.T` proportional to the channel covariance, columns <= 1 in norm.

    Args:
        x: images `(n, H, W, C)` to estimate the covariance from, or `None`
            for the ImageNet RGB statistics (3 channels only).
        n_channels: number of channels (used when `x` is None).
    """
    if x is None:
        if n_channels != 3:
            raise ValueError(
                "The decorrelated parameterization needs a dataset (`x`) to estimate the "
                f"colour covariance of {n_channels}-channel images; without one only RGB "
                f"statistics are known. Received: {n_channels} channels and no `x`"
            )
        matrix = _IMAGENET_RGB
    else:
        flat = np.asarray(x, np.float64).reshape(-1, np.shape(x)[-1])
        covariance = np.atleast_2d(np.cov(flat, rowvar=False))
        u, s, _ = np.linalg.svd(covariance)
        matrix = u * np.sqrt(np.maximum(s, 1e-12 * max(s.max(), 1e-12)))
    return (matrix / np.linalg.norm(matrix, axis=0).max()).astype(np.float32)


def _rfft(x, size):
    """Real FFT over the last `len(size)` axes. In 3-D: a 1-D real FFT of the last
    axis, then a 2-D FFT of the other two (TensorFlow has no gradient of RFFT3D)."""
    import tensorflow as tf

    if len(size) == 1:
        return tf.signal.rfft(x, fft_length=list(size))
    if len(size) == 2:
        return tf.signal.rfft2d(x, fft_length=list(size))
    half = tf.signal.rfft(x, fft_length=[size[-1]])  # (..., D, H, W // 2 + 1)
    moved = tf.transpose(half, [0, 1, 4, 2, 3])
    return tf.transpose(tf.signal.fft2d(moved), [0, 1, 3, 4, 2])


def _inverse_rfft(spectrum, size):
    """Inverse of `_rfft` (the inverse FFT of the first axes, then the real one)."""
    import tensorflow as tf

    if len(size) == 1:
        return tf.signal.irfft(spectrum, fft_length=list(size))
    if len(size) == 2:
        return tf.signal.irfft2d(spectrum, fft_length=list(size))
    moved = tf.transpose(spectrum, [0, 1, 4, 2, 3])
    inner = tf.transpose(tf.signal.ifft2d(moved), [0, 1, 3, 4, 2])
    return tf.signal.irfft(inner, fft_length=[size[-1]])


class Parameterization:
    """Map between optimisation parameters `z` and images (TensorFlow, batched).

    Args:
        kind: one of ``"pixel"``, ``"fft"``, ``"decorrelated"``,
            ``"fft_decorrelated"``.
        image_shape: `(H, W, C)` of one image (or `(L,)`, `(L, C)`,
            `(D, H, W, C)`).
        value_range: `(low, high)` of valid pixel values, or `None`
            (unbounded).
        colour: the `(C, C)` colour matrix of the decorrelated kinds
            (default: `colour_matrix()` for RGB).
        decay: exponent of the `1 / f` spectrum scaling (fft kinds).
    """

    def __init__(self, kind: str, image_shape, value_range=None, colour=None, decay: float = 1.0):
        check_one_of(kind, "parameterization", KINDS)
        self.kind = kind
        self.image_shape = tuple(int(d) for d in image_shape)
        if not 1 <= len(self.image_shape) <= 4:
            raise ValueError(
                "Expected images with two spatial axes and channels last, (H, W, C) (or a "
                "vector (L,), a signal (L, C), a volume (D, H, W, C)). "
                f"Received: image shape {self.image_shape}"
            )
        self.value_range = value_range
        # a flat vector (L,) is one channel without a channel axis
        self.channels = len(self.image_shape) > 1
        self.size = self.image_shape[:-1] if self.channels else self.image_shape
        C = self.image_shape[-1] if self.channels else 1
        self.fft = kind.startswith("fft")
        self.decorrelate = kind.endswith("decorrelated")
        self.colour = None
        if self.decorrelate and not self.channels:
            raise ValueError(
                f"Expected samples with a channel axis for parameterization={kind!r} (it "
                f"decorrelates colours). Received: flat vectors of shape {self.image_shape}"
            )
        if self.decorrelate:
            self.colour = colour_matrix(n_channels=C) if colour is None else np.asarray(colour)
            if self.colour.shape != (C, C):
                raise ValueError(
                    f"Expected a ({C}, {C}) colour matrix. Received: shape {self.colour.shape}"
                )
        if self.fft:
            size = self.size
            k = len(size)
            squared = 0.0
            for axis, n in enumerate(size):  # the last axis is halved (a real FFT)
                f = np.fft.rfftfreq(n) if axis == k - 1 else np.fft.fftfreq(n)
                squared = squared + (f * f).reshape([-1 if a == axis else 1 for a in range(k)])
            frequency = np.sqrt(squared)
            longest = max(size)
            self.spectrum_scale = (
                1.0
                / np.maximum(frequency, 1.0 / longest) ** decay
                * np.sqrt(np.prod(size))
                / longest
            ).astype(np.float32)
            self.param_shape = (2, C, *size[:-1], size[-1] // 2 + 1)
        else:
            self.param_shape = self.image_shape

    @property
    def squashed(self) -> bool:
        """Whether a sigmoid maps the parameters into `value_range`."""
        return self.value_range is not None and self.kind != "pixel"

    def to_image(self, z):
        """Images `(rows, H, W, C)` float32 from parameters `(rows, *param_shape)`."""
        import tensorflow as tf

        z = tf.convert_to_tensor(z, tf.float32)
        if self.fft:
            k = len(self.size)
            scale = tf.constant(self.spectrum_scale, tf.complex64)
            spectrum = tf.complex(z[:, 0], z[:, 1]) * scale  # (rows, C, *spectrum)
            image = _inverse_rfft(spectrum, self.size)  # (rows, C, *size)
            image = tf.transpose(image, [0, *range(2, k + 2), 1])
            if not self.channels:
                image = image[..., 0]
        else:
            image = z
        if self.decorrelate:
            image = tf.einsum("r...d,cd->r...c", image, tf.constant(self.colour, tf.float32))
        if self.squashed:
            low, high = self.value_range
            image = low + (high - low) * tf.sigmoid(image)
        return image

    def from_image(self, images):
        """Parameters `(rows, *param_shape)` whose image is `images` (clipped to range)."""
        import tensorflow as tf

        images = tf.convert_to_tensor(images, tf.float32)
        if self.value_range is not None:
            low, high = self.value_range
            images = tf.clip_by_value(images, low, high)
            if self.squashed:
                unit = (images - low) / (high - low)
                unit = tf.clip_by_value(unit, 1e-4, 1.0 - 1e-4)
                images = tf.math.log(unit) - tf.math.log1p(-unit)
        if self.decorrelate:
            inverse = tf.constant(np.linalg.inv(self.colour.astype(np.float64)), tf.float32)
            images = tf.einsum("r...c,dc->r...d", images, inverse)
        if not self.fft:
            return images
        k = len(self.size)
        if not self.channels:
            images = images[..., None]
        moved = tf.transpose(images, [0, k + 1, *range(1, k + 1)])  # (rows, C, *size)
        spectrum = _rfft(moved, self.size)
        spectrum = spectrum / tf.constant(self.spectrum_scale, tf.complex64)
        return tf.stack([tf.math.real(spectrum), tf.math.imag(spectrum)], axis=1)

    def project(self, z):
        """Keep pixel parameters inside `value_range` (other kinds are squashed)."""
        import tensorflow as tf

        if self.kind == "pixel" and self.value_range is not None:
            low, high = self.value_range
            return tf.clip_by_value(z, low, high)
        return z

    def __repr__(self):
        return (
            f"Parameterization({self.kind!r}, {self.image_shape}, value_range={self.value_range})"
        )
