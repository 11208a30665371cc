"""Chains of positive-weight layers for the receptive-field tests.

With positive weights, zero biases and inputs above 0 no path cancels another, so the
input pixels with a non-zero gradient for a unit are exactly those it sees: its
receptive field, clipped to the input (`gradient_box`).

Usage (from any test under `tests/`, since conftest's folder is on the path):
    from field_models import chain, conv, gradient_box
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

L = keras.layers
POSITIVE = keras.initializers.RandomUniform(0.1, 1.0)
CONV = {1: L.Conv1D, 2: L.Conv2D, 3: L.Conv3D}


def positive(cls, filters, k, **kw):
    """A layer of class `cls` (a convolution or transposed convolution) with positive
    weights and zero biases."""
    return cls(filters, k, kernel_initializer=POSITIVE, bias_initializer="zeros", **kw)


def conv(rank, filters, k, **kw):
    """A positive `Conv1D`/`Conv2D`/`Conv3D`."""
    return positive(CONV[rank], filters, k, **kw)


def chain(shape, layers):
    """A Functional model applying `layers` in turn to an input of `shape`."""
    x = keras.Input(shape)
    h = x
    for layer in layers:
        h = layer(h)
    return keras.Model(x, h)


def gradient_box(model, x, position):
    """The bounding box (slices per spatial axis) of the input pixels with a non-zero
    gradient for unit `position` of channel 0 of the output; `None` without any."""
    x = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = model(x)[(0, *position, 0)]
    g = np.abs(tape.gradient(y, x).numpy()[0]) > 0
    if g.ndim > len(position):
        g = g.reshape(*g.shape[: len(position)], -1).any(-1)  # channels
    if not g.any():
        return None
    return tuple(slice(int(i.min()), int(i.max()) + 1) for i in np.nonzero(g))
