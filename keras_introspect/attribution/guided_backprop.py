"""Guided backpropagation (Springenberg et al. 2015)."""

from __future__ import annotations

from keras_introspect.attribution.saliency import Saliency


class GuidedBackprop(Saliency):
    """Gradient where every rectifier also blocks negative incoming gradients.

    Through each ReLU the backward pass keeps only positions where both the
    forward input and the incoming gradient are positive:
    `f'(x) * max(dy, 0)`. The rule covers ReLU/ReLU6/LeakyReLU/ELU/PReLU
    layers and ``activation=`` arguments (see `keras_introspect.model.backward`
    for the exact rule); it is applied while the explanation is traced, the
    model itself is never modified. Arguments as `Saliency`. The map is
    signed (the first layer's weights carry the sign of the input pixels),
    so the default reduction sums it over colour channels.

    Example:
        >>> import numpy as np, keras, keras_introspect as ki
        >>> model = keras.Sequential([keras.Input((8, 8, 1)),
        ...     keras.layers.Conv2D(4, 3, activation="relu"), keras.layers.Flatten(),
        ...     keras.layers.Dense(2)])
        >>> ki.GuidedBackprop(model, 1).explain(np.ones((1, 8, 8, 1))).shape
        (1, 8, 8)
    """

    _backward = "guided"
    _signed = True
