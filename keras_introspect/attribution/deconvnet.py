"""Deconvolutional network visualization (Zeiler & Fergus 2014)."""

from __future__ import annotations

from keras_introspect.attribution.saliency import Saliency


class Deconvnet(Saliency):
    """Project a class or a filter back to pixels with a deconvnet.

    The downward pass of Zeiler & Fergus: max-pooling is inverted by
    unpooling with the switches recorded in the forward pass (which is what
    the gradient of max-pooling does), convolutions by their transposed
    filters (the gradient of a convolution), and rectifiers rectify the
    signal coming down, `max(dy, 0)`, regardless of the forward activation.
    For a filter (`targets.Channel`), only that filter's feature map is
    projected, the other maps of its layer being zero (Kalmeijer 2016,
    §3.1.2). Arguments as `Saliency`; see `keras_introspect.model.backward`
    for which layers count as rectifiers.

    Example:
        >>> import numpy as np, keras, keras_introspect as ki
        >>> model = keras.Sequential([keras.Input((8, 8, 1)),
        ...     keras.layers.Conv2D(4, 3, activation="relu", name="conv"),
        ...     keras.layers.MaxPooling2D(), keras.layers.Flatten(), keras.layers.Dense(2)])
        >>> t = ki.targets.Channel("conv", 2, aggregate="sum")
        >>> ki.Deconvnet(model, t).explain(np.ones((1, 8, 8, 1))).shape
        (1, 8, 8)
    """

    _backward = "deconvnet"
