"""Integrated Gradients (Sundararajan, Taly & Yan 2017)."""

from __future__ import annotations

import numpy as np

from keras_introspect._validation import check_baseline, check_positive_int
from keras_introspect.attribution._base import GradientMethod


class IntegratedGradients(GradientMethod):
    """Path integral of the gradient from a baseline to the image.

    `(x - baseline) * integral_0^1 grad(baseline + a (x - baseline)) da`,
    with the integral by the trapezoidal rule on `steps` equally spaced
    points (both ends included). The attributions of an image sum to
    `score(x) - score(baseline)` (completeness) up to the quadrature error.

    Args:
        model, target, reduce_channels, batch_size, verbose, input_index:
            as `Saliency` (use ``reduce_channels="sum"`` to keep
            completeness per pixel).
        steps: number of points on the path (>= 2).
        baseline: a number (filled image) or an array of the image shape.

    Example:
        >>> import numpy as np, keras, keras_introspect as ki
        >>> model = keras.Sequential([keras.Input((4, 4, 1)), keras.layers.Flatten(),
        ...                           keras.layers.Dense(2)])
        >>> ig = ki.IntegratedGradients(model, 0, steps=16, reduce_channels="sum")
        >>> ig.explain(np.ones((2, 4, 4, 1))).shape
        (2, 4, 4)
    """

    def __init__(self, model, target, *, steps=50, baseline=0.0, **kwargs):
        super().__init__(model, target, **kwargs)
        self.steps = check_positive_int(steps, "steps")
        if self.steps < 2:
            raise ValueError(f"Expected `steps` >= 2. Received: steps={steps!r}")
        self.baseline = check_baseline(baseline)

    @property
    def _n_draws(self):
        return self.steps

    def _check_options(self, image, shape):
        if isinstance(self.baseline, np.ndarray):
            if self.baseline.shape != tuple(shape):
                raise ValueError(
                    f"Expected `baseline` of the image shape {tuple(shape)}. Received: "
                    f"baseline with shape {self.baseline.shape}"
                )

    def _draws(self):
        n = self.steps
        weights = np.full(n, 1.0 / (n - 1), np.float32)
        weights[[0, -1]] /= 2
        return np.arange(n, dtype=np.int32), np.linspace(0, 1, n, dtype=np.float32), weights

    def _extra_inputs(self, image, shape):
        # the baseline is an input of the compiled step, never a constant
        if isinstance(self.baseline, np.ndarray):
            return [self.baseline.astype(np.float32)]
        return [np.full(shape, float(self.baseline), np.float32)]

    def _perturb(self, images, image_ids, draw_ids, draw_values, extra):
        import tensorflow as tf

        x = tf.cast(images, tf.float32)
        base = tf.broadcast_to(extra[0], tf.shape(x)[1:])[None]
        alpha = tf.reshape(draw_values, [1, -1] + [1] * (x.shape.rank - 1))
        path = tf.expand_dims(base, 1) + alpha * tf.expand_dims(x - base, 1)
        return tf.cast(path, images.dtype)

    def _finish(self, stats, images):
        base = self.baseline if isinstance(self.baseline, np.ndarray) else float(self.baseline)
        return stats[0] * (images - base)
