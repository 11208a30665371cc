"""Expected Gradients (Erion et al. 2021), GradientSHAP's estimator (Lundberg & Lee 2017)."""

from __future__ import annotations

import numpy as np

from keras_introspect._validation import check_positive_int, check_seed
from keras_introspect.attribution._base import GradientMethod


class ExpectedGradients(GradientMethod):
    """Integrated Gradients averaged over baselines drawn from data.

    `E_{b ~ baselines, a ~ U(0, 1)} [(x - b) * grad f(b + a (x - b))]`,
    estimated with `samples` draws: each draw picks one of the `baselines`
    and a point `a` on the path to it. It removes IG's choice of one
    baseline (a black image says "black is neutral"); the attributions of an
    image sum to `f(x) - E_b f(b)` in expectation. This is the estimator of
    Captum's and shap's GradientSHAP without input noise.

    The draws (baseline indices and path points) come from `seed` on the
    host and are the same for every image, so the maps do not depend on
    the batch size; `draws_(n)` returns them.

    Args:
        model, target, reduce_channels, batch_size, verbose, input_index:
            as `Saliency` (a signed method: the default reduction sums the
            channels).
        baselines: images `(k, H, W, C)` the baselines are drawn from, e.g.
            a few dozen training images.
        samples: draws per image.
        seed: integer seed of the draws.

    Example:
        >>> import numpy as np, keras, keras_introspect as ki
        >>> model = keras.Sequential([keras.Input((2, 2, 1)), keras.layers.Flatten(),
        ...     keras.layers.Dense(1, kernel_initializer="ones", use_bias=False)])
        >>> eg = ki.ExpectedGradients(model, 0, baselines=np.zeros((3, 2, 2, 1)), samples=4)
        >>> eg.explain(np.ones((1, 2, 2, 1))).tolist()   # linear, baselines 0: w * x
        [[[1.0, 1.0], [1.0, 1.0]]]
    """

    _signed = True

    def __init__(self, model, target, *, baselines, samples=64, seed=0, **kwargs):
        super().__init__(model, target, **kwargs)
        baselines = np.asarray(baselines, np.float32)
        if baselines.ndim < 2 or len(baselines) == 0:
            raise ValueError(
                "Expected `baselines`: a batch of images (k, H, W, C), e.g. training images. "
                f"Received: shape {baselines.shape}"
            )
        if not np.isfinite(baselines).all():
            raise ValueError("Expected finite `baselines`. Received: NaN or inf values")
        self.baselines = baselines
        self.samples = check_positive_int(samples, "samples")
        self.seed = check_seed(seed)

    @property
    def _n_draws(self):
        return self.samples

    def draws_(self, n=None):
        """`(baseline indices (n,), path points (n,))` of the first `n` draws (default
        all `samples`), the same for every image."""
        random = np.random.default_rng(self.seed)
        picks = random.integers(0, len(self.baselines), self.samples).astype(np.int32)
        alphas = random.random(self.samples).astype(np.float32)
        return picks[:n], alphas[:n]

    def _check_options(self, image, shape):
        if self.baselines.shape[1:] != tuple(shape):
            raise ValueError(
                f"Expected `baselines` of the image shape (k, {', '.join(map(str, shape))}). "
                f"Received: baselines with shape {self.baselines.shape}"
            )

    def _draws(self):
        picks, alphas = self.draws_()
        # the draw id is the baseline's index; the value, the point on its path
        return picks, alphas, np.full(self.samples, 1.0 / self.samples, np.float32)

    def _extra_inputs(self, image, shape):
        return [self.baselines]  # an input: other baselines reuse the compiled step

    def _perturb(self, images, image_ids, draw_ids, draw_values, extra):
        import tensorflow as tf

        x = tf.cast(images, tf.float32)[:, None]  # (b, 1, ...)
        base = tf.gather(extra[0], draw_ids)[None]  # (1, m, ...)
        alpha = tf.reshape(draw_values, [1, -1] + [1] * (x.shape.rank - 2))
        return tf.cast(base + alpha * (x - base), images.dtype)

    def _statistics(self, grads, weights, images, draws=None):
        import tensorflow as tf

        draw_ids, _, extra = draws
        base = tf.gather(extra[0], draw_ids)  # (m, ...)
        # (x - b_d) for every image and draw, times the gradient: (b, m, 1, ...)
        delta = tf.expand_dims(tf.expand_dims(images, 1) - base[None], 2)
        w = tf.reshape(weights, [1, -1] + [1] * (grads.shape.rank - 2))
        return [tf.reduce_sum(grads * delta * w, axis=1)]
