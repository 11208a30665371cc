"""Gradient times input (Shrikumar et al. 2016)."""

from __future__ import annotations

from keras_introspect.attribution._base import GradientMethod


class GradientInput(GradientMethod):
    """Gradient of the target multiplied element-wise by the input.

    For a linear score `w . x` this is each pixel's additive contribution
    `w_i * x_i`. Arguments as `Saliency`. The contributions are signed (for
    or against the target), so the default reduction sums them over colour
    channels (``reduce_channels="sum"``); before issue 21 it was max |.|,
    which dropped the sign of every negative pixel.

    Example:
        >>> import numpy as np, keras, keras_introspect as ki
        >>> model = keras.Sequential([keras.Input((4, 4, 1)), keras.layers.Flatten(),
        ...                           keras.layers.Dense(2)])
        >>> ki.GradientInput(model, 0, reduce_channels="sum").explain(np.ones((1, 4, 4, 1))).shape
        (1, 4, 4)
    """

    _signed = True

    def _finish(self, stats, images):
        return stats[0] * images
