"""Integrated Gradients (Sundararajan, Taly & Yan 2017)."""

from __future__ import annotations

import warnings

import numpy as np

from keras_introspect._validation import check_baseline, check_number, check_positive_int
from keras_introspect.attribution._base import GradientMethod
from keras_introspect.exceptions import KerasIntrospectWarning


class IntegratedGradients(GradientMethod):
    """Path integral of the gradient from a baseline to the image.

    `(x - baseline) * integral_0^1 grad(baseline + a (x - baseline)) da`,
    with the integral by the trapezoidal rule on `steps` equally spaced
    points (both ends included). The attributions of an image sum to
    `score(x) - score(baseline)` (completeness) up to the quadrature error.

    After `explain`, `delta_` holds that error per image (and target):
    the sum of the image's attributions (before `reduce_channels`) minus
    `score(x) - score(baseline)`, as Captum's `compute_convergence_delta`;
    the scores at both ends of the path come from the same forward passes.
    A `KerasIntrospectWarning` names the images whose `|delta_|` exceeds
    `tolerance` times `|score(x) - score(baseline)|` (5 % by default, where
    Sundararajan et al. suggest checking): more `steps` shrink it.

    Args:
        model, target, reduce_channels, batch_size, verbose, input_index:
            as `Saliency`; the default reduction sums the signed attributions
            over channels, which keeps completeness per pixel.
        steps: number of points on the path (>= 2).
        baseline: a number (filled image) or an array of the image shape.
        tolerance: the share of `|score(x) - score(baseline)|` the
            completeness error may reach before the warning (`None`: never warn).

    Attributes:
        delta_: float64 `(n,)` (`(n, K)` for a target of K scores) after
            `explain`: the completeness error of each image.
        score_change_: `score(x) - score(baseline)`, of the same shape.

    Example:
        >>> import numpy as np, keras, keras_introspect as ki
        >>> model = keras.Sequential([keras.Input((4, 4, 1)), keras.layers.Flatten(),
        ...                           keras.layers.Dense(2)])
        >>> ig = ki.IntegratedGradients(model, 0, steps=16, reduce_channels="sum")
        >>> ig.explain(np.ones((2, 4, 4, 1))).shape
        (2, 4, 4)
    """

    _signed = True

    def __init__(self, model, target, *, steps=50, baseline=0.0, tolerance=0.05, **kwargs):
        super().__init__(model, target, **kwargs)
        self.steps = check_positive_int(steps, "steps")
        if self.steps < 2:
            raise ValueError(f"Expected `steps` >= 2. Received: steps={steps!r}")
        self.baseline = check_baseline(baseline)
        self.tolerance = (
            None if tolerance is None else check_number(tolerance, "tolerance", minimum=0.0)
        )
        self._deltas, self._changes = [], []

    def explain(self, x, batch_size=None, verbose=None):
        """Attribution maps of `x` (see `Attribution.explain`); sets `delta_`.

        Example:
            >>> import numpy as np, keras, keras_introspect as ki
            >>> model = keras.Sequential([keras.Input((2, 2, 1)), keras.layers.Flatten(),
            ...     keras.layers.Dense(1, kernel_initializer="ones", use_bias=False)])
            >>> ig = ki.IntegratedGradients(model, 0, steps=4)      # a linear model:
            >>> _ = ig.explain(np.ones((1, 2, 2, 1)))              # exact completeness
            >>> ig.score_change_.tolist(), ig.delta_.tolist()
            ([4.0], [0.0])
        """
        self._deltas, self._changes = [], []
        maps = super().explain(x, batch_size, verbose)
        delta, change = np.concatenate(self._deltas), np.concatenate(self._changes)
        if delta.shape[1] == 1:
            delta, change = delta[:, 0], change[:, 0]
        self.delta_, self.score_change_ = delta, change
        if self.tolerance is not None:
            over = np.abs(delta) > self.tolerance * np.abs(change) + 1e-6
            if over.any():
                where = np.flatnonzero(over.reshape(len(over), -1).any(axis=1))
                share = np.abs(delta) / np.maximum(np.abs(change), 1e-12)
                warnings.warn(
                    f"IntegratedGradients: the attributions of {len(where)} of {len(delta)} "
                    f"images miss score(x) - score(baseline) by more than "
                    f"{self.tolerance:.0%} of it (completeness error up to {share.max():.1%}, "
                    f"images {where[:10].tolist()}): raise `steps` (now {self.steps}); "
                    "`delta_` holds the error per image",
                    KerasIntrospectWarning,
                    stacklevel=2,
                )
        return maps

    __call__ = explain

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

    def _score_statistics(self, scores, draw_values, weights):
        import tensorflow as tf

        # score at the image (alpha 1) minus at the baseline (alpha 0); padded draws
        # repeat the last one with weight 0 and count for nothing
        used = tf.cast(weights > 0, tf.float32)
        at = lambda alpha: tf.cast(draw_values == alpha, tf.float32)  # noqa: E731
        ends = (at(1.0) - at(0.0)) * used
        return [tf.reduce_sum(scores * ends[None, :, None], axis=1)]

    def _check_chunk(self, maps, score_totals, images):
        change = score_totals[0].astype(np.float64)  # (b, K)
        total = maps.reshape(*maps.shape[:2], -1).sum(axis=-1, dtype=np.float64)
        self._deltas.append(total - change)
        self._changes.append(change)

    def _finish(self, stats, images):
        base = self.baseline if isinstance(self.baseline, np.ndarray) else float(self.baseline)
        return stats[0] * (images - base)
