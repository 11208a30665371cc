"""`ModelSource`, the in-memory activation source (issue 20), and the input kinds."""

import keras
import numpy as np
import tensorflow as tf

from keras_introspect._sources import ModelSource, is_array_source, is_dask, is_zarr
from keras_introspect.model import Introspector


def _doubling(size=None):
    """A 1x1 convolution that doubles its three channels."""
    inputs = keras.Input((size, size, 3))
    conv = keras.layers.Conv2D(3, 1, use_bias=False, name="double")
    model = keras.Model(inputs, conv(inputs))
    conv.set_weights([2 * np.eye(3, dtype="float32")[None, None]])
    return model


def _source(model, x, batch_size=3):
    intro = Introspector(model)
    return ModelSource(intro, intro.layer("double"), x, batch_size, 0)


def test_chunks_are_the_batches_with_their_first_image():
    x = np.random.default_rng(0).random((7, 4, 4, 3)).astype("float32")
    source = _source(_doubling(4), x)
    assert source.shape == (7, 4, 4, 3) and not source.out_of_core
    starts, chunks = zip(*source.iter_chunks(), strict=True)
    assert starts == (0, 3, 6) and [len(c) for c in chunks] == [3, 3, 1]
    np.testing.assert_allclose(np.concatenate(chunks), 2 * x, rtol=1e-6)


def test_map_and_collect_are_the_direct_computation():
    x = np.random.default_rng(1).random((7, 4, 4, 3)).astype("float32")
    source = _source(_doubling(4), x)
    sums = source.map_chunks(lambda c: c.sum(axis=-1), np.float64, item_shape=(4, 4))
    assert sums.dtype == np.float64 and sums.shape == (7, 4, 4)
    np.testing.assert_allclose(sums, 2 * x.sum(axis=-1), rtol=1e-6)
    found = source.collect_chunks(lambda c, share: (share, len(c)), args=lambda s, n: (s, n))
    assert found == [((0, 3), 3), ((3, 3), 3), ((6, 1), 1)]
    # `reduce` runs on the device, before `fn`
    peaks = source.map_chunks(
        lambda c: c, np.float32, (3,), reduce=lambda a: tf.reduce_max(a, axis=(1, 2)), key="max"
    )
    np.testing.assert_allclose(peaks, 2 * x.max(axis=(1, 2)), rtol=1e-6)


def test_unknown_sizes_are_none_until_read():
    x = np.ones((5, 6, 6, 3), "float32")
    assert _source(_doubling(), x).shape == (5, None, None, None)
    stream = tf.data.Dataset.from_tensor_slices(x).batch(2)
    source = _source(_doubling(6), stream)
    assert source.shape == (None, 6, 6, 3)
    assert [start for start, _ in source.iter_chunks()] == [0, 2, 4]


def test_stored_activations_are_told_from_images():
    assert is_array_source("acts.zarr") and not is_array_source(np.zeros(3))
    assert not is_dask(np.zeros(3)) and not is_zarr(np.zeros(3))
