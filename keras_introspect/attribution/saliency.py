"""Gradient saliency (Simonyan, Vedaldi & Zisserman 2014)."""

from __future__ import annotations

from keras_introspect.attribution._base import GradientMethod


class Saliency(GradientMethod):
    """Gradient of the target with respect to the input pixels.

    For a class this is the saliency map of Simonyan et al. (2014); for a
    filter of an inner layer (`targets.Channel`), the feature map is first
    aggregated to a scalar by max or sum, the extension of Kalmeijer (2016,
    eqs. 3.4-3.7), so any filter of any layer can be explained.

    Args:
        model: a Keras 3 model.
        target: a `keras_introspect.targets` object, a class index or a
            callable on the model output.
        reduce_channels: ``"auto"`` (the default): ``"max"`` (max of
            |gradient| over colour channels, the Simonyan convention) here
            and for the other unsigned methods, ``"sum"`` for the signed
            ones (`GradientInput`, `IntegratedGradients`, `GuidedBackprop`),
            which keeps the sign; or ``"max"``, ``"sum"``, ``"abs_sum"``,
            `None` (keep the channels).
        batch_size: rows per forward/backward pass (bounds memory).
        verbose: 0, 1 (progress bar) or 2.
        input_index: the image input of a multi-input model.

    Returns (from `explain(x)`):
        float32 `(n, H, W)`, or `(n, H, W, C)` with `reduce_channels=None`.
        Other inputs keep their shape without the channel axis: `(n, L)` for
        signals `(n, L, C)` and flat vectors `(n, L)` (even one reshaped
        inside the model: the map is of the model's own input), `(n, D, H,
        W)` for volumes; every attribution method follows this rule.

    Example:
        >>> import numpy as np, keras, keras_introspect as ki
        >>> model = keras.Sequential([keras.Input((4, 4, 1)), keras.layers.Flatten(),
        ...                           keras.layers.Dense(2)])
        >>> maps = ki.Saliency(model, ki.targets.Class(1)).explain(np.ones((3, 4, 4, 1)))
        >>> maps.shape
        (3, 4, 4)
    """
