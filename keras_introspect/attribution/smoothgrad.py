"""SmoothGrad and its SquareGrad / VarGrad variants (Smilkov et al. 2017)."""

from __future__ import annotations

import numpy as np

from keras_introspect._validation import check_number, check_positive_int
from keras_introspect.attribution._base import GradientMethod


class SmoothGrad(GradientMethod):
    """Mean gradient over noisy copies of the image.

    Each image gets `samples` copies with Gaussian noise of standard deviation
    `noise * (max(x) - min(x))` of that image. The noise is drawn on the
    device from a stateless generator keyed by `(seed, image index, draw)`, so
    maps are identical for the same seed whatever the batch size, and no
    global random state is touched. Only the noisy copies of one step
    (`batch_size` rows) exist at a time, so memory does not grow with
    `samples`.

    Args:
        model, target, reduce_channels, batch_size, verbose, input_index:
            as `Saliency`.
        samples: number of noisy copies per image.
        noise: noise level as a fraction of the image's value range (0.15 in
            the paper is 10-20 %).
        seed: integer seed.

    Example:
        >>> import numpy as np, keras, keras_introspect as ki
        >>> model = keras.Sequential([keras.Input((4, 4, 1)), keras.layers.Flatten(),
        ...                           keras.layers.Dense(2)])
        >>> sg = ki.SmoothGrad(model, 0, samples=8, noise=0.1, seed=0)
        >>> sg.explain(np.ones((2, 4, 4, 1))).shape
        (2, 4, 4)
    """

    def __init__(self, model, target, *, samples=25, noise=0.15, seed=0, **kwargs):
        super().__init__(model, target, **kwargs)
        self.samples = check_positive_int(samples, "samples")
        self.noise = check_number(noise, "noise", 0.0)
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
            raise ValueError(f"Expected `seed` to be an integer. Received: seed={seed!r}")
        self.seed = int(seed)

    @property
    def _n_draws(self):
        return self.samples

    def _draws(self):
        n = self.samples
        return (
            np.arange(n, dtype=np.int32),
            np.zeros(n, np.float32),
            np.full(n, 1.0 / n, np.float32),
        )

    def _extra_inputs(self, image, shape):
        # inputs, not constants: another seed, noise level or sample count
        # reuses the compiled step
        return [np.int64(self.seed), np.int64(self.samples), np.float32(self.noise)]

    def _perturb(self, images, image_ids, draw_ids, draw_values, extra):
        import tensorflow as tf

        seed, samples, level = extra
        shape = images.shape[1:]
        x = tf.cast(images, tf.float32)
        axes = list(range(1, x.shape.rank))
        scale = level * (tf.reduce_max(x, axis=axes) - tf.reduce_min(x, axis=axes))
        # The noise of (image i, draw j) comes from the stateless seed
        # (seed, i * samples + j): whatever the batch size and the chunking of
        # draws, it is the same, and only this step's rows are ever drawn.
        b, m = tf.shape(image_ids)[0], tf.shape(draw_ids)[0]
        rows = tf.reshape(
            tf.cast(image_ids, tf.int64)[:, None] * samples + tf.cast(draw_ids, tf.int64)[None, :],
            [-1],
        )
        seeds = tf.stack([tf.fill(tf.shape(rows), seed), rows], 1)
        noise = tf.map_fn(
            lambda s: tf.random.stateless_normal(shape, seed=s),
            seeds,
            fn_output_signature=tf.float32,
        )
        noise = tf.reshape(noise, [b, m, *shape])
        noise = noise * tf.reshape(scale, [-1, 1] + [1] * len(shape))
        return tf.cast(tf.expand_dims(x, 1) + noise, images.dtype)


class SquareGrad(SmoothGrad):
    """Mean squared gradient over noisy copies (Hooker et al. 2019).

    Arguments as `SmoothGrad`. The map is non-negative.
    """

    def _statistics(self, grads, weights, images, draws=None):
        return super()._statistics(grads * grads, weights, images)


class VarGrad(SmoothGrad):
    """Variance of the gradient over noisy copies (Adebayo et al. 2018).

    Arguments as `SmoothGrad`. The map is non-negative.
    """

    def _statistics(self, grads, weights, images, draws=None):
        return super()._statistics(grads, weights, images) + super()._statistics(
            grads * grads, weights, images
        )

    def _finish(self, stats, images):
        mean, mean_sq = stats
        return np.maximum(mean_sq - mean * mean, 0.0)
