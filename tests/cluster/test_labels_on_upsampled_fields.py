"""Label maps of an upsampled layer: each pixel takes the unit whose field is centred nearest."""

import keras
import numpy as np
import tensorflow as tf

import keras_introspect as ki
from keras_introspect.cluster.pixel import upsample_labels


def _support_centres(model, n_units):
    """Brute force: the centre of each unit's input-gradient support along the rows."""
    x = tf.constant(np.random.default_rng(0).uniform(1, 2, (1, 16, 16, 1)), tf.float32)
    centres = []
    for i in range(n_units):
        with tf.GradientTape() as tape:
            tape.watch(x)
            unit = model(x)[0, i, 0, 0]
        rows = np.flatnonzero(np.abs(tape.gradient(unit, x).numpy()[0, :, :, 0]).sum(axis=1))
        centres.append((rows.min() + rows.max()) / 2)
    return np.array(centres)


def test_labels_follow_the_phases_of_an_upsampled_layer():
    keras.utils.set_random_seed(0)
    L = keras.layers
    inputs = keras.Input((16, 16, 1))
    # no padding: every unit's gradient support is its whole field (no clipped edges)
    h = L.Conv2D(2, 2, strides=2, kernel_initializer="ones", name="down")(inputs)
    h = L.Conv2D(2, 3, kernel_initializer="ones", name="mix")(h)
    model = keras.Model(inputs, L.UpSampling2D(2, name="up")(h))
    field = ki.Introspector(model).receptive_field("up")
    assert field is not None and field.phases is not None
    labels = np.arange(144).reshape(1, 12, 12)  # one label per unit of the 12 x 12 layer
    mapped = upsample_labels(labels, (16, 16), field)[0]
    centres = _support_centres(model, 12)
    # nearest centre per pixel row, the earlier unit on a tie
    expected_rows = np.abs(np.arange(16)[:, None] - centres[None]).argmin(axis=1)
    np.testing.assert_array_equal(mapped[:, 0] // 12, expected_rows)
    np.testing.assert_array_equal(mapped[0] % 12, expected_rows)  # the same along columns
