"""Top-k exemplars against a brute-force argsort over all activations."""

import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_introspect as ki


def brute_force(values, k):
    """Indices of the k largest values, ties broken by the lower index."""
    order = np.lexsort((np.arange(len(values)), -values))
    return order[:k]


@pytest.fixture
def data(digits_cnn):
    model, x, _ = digits_cnn
    acts = np.asarray(keras.Model(model.inputs[0], model.get_layer("conv2").output)(x))
    return model, x[:300], acts[:300]


@pytest.mark.parametrize("aggregate", ["max", "sum", "mean"])
@pytest.mark.parametrize("batch_size", [1, 7, 300])
def test_equals_brute_force_argsort_for_any_batch_size(data, aggregate, batch_size):
    model, x, acts = data
    values = {"max": np.max, "sum": np.sum, "mean": np.mean}[aggregate](acts[..., 6], axis=(1, 2))
    top = ki.top_activating(
        model, "conv2", 6, x, k=9, aggregate=aggregate, batch_size=batch_size, crops=True
    )
    expected = brute_force(values, 9)
    np.testing.assert_array_equal(top.indices, expected)
    np.testing.assert_allclose(top.values, values[expected], rtol=1e-5)


def test_positions_boxes_and_crops(data):
    model, x, acts = data
    top = ki.top_activating(model, "conv2", 6, x, k=5, crops=True)
    for i, (index, position) in enumerate(zip(top.indices, top.positions, strict=True)):
        r, c = position
        assert acts[index, r, c, 6] == pytest.approx(top.values[i])
        np.testing.assert_array_equal(top.boxes[i], [[r, r + 5], [c, c + 5]])  # 5 x 5 field
        np.testing.assert_array_equal(top.crops[i], x[index, r : r + 5, c : c + 5])


def test_ties_and_a_tf_data_stream(data):
    model, x, acts = data
    x_tied = np.concatenate([x[:20], x[:20]])  # every value appears twice
    dataset = tf.data.Dataset.from_tensor_slices((x_tied, np.zeros(40))).batch(6)
    top = ki.top_activating(model, "conv2", 1, dataset, k=6, crops=True)
    values = acts[:20, ..., 1].max(axis=(1, 2))
    np.testing.assert_array_equal(top.indices, brute_force(np.concatenate([values, values]), 6))
    for j, index in enumerate(top.indices):  # crops come from the right images of the stream
        r, c = top.positions[j]
        np.testing.assert_array_equal(top.crops[j], x_tied[index, r : r + 5, c : c + 5])


def test_all_channels_in_one_pass_equal_channel_by_channel(data):
    model, x, _ = data
    every = ki.top_activating_all(model, "conv2", x, k=4, crops=True, batch_size=64)
    assert every.indices.shape == (16, 4) and every.crops.shape == (16, 4, 5, 5, 1)
    for channel in (0, 7, 15):
        one = ki.top_activating(model, "conv2", channel, x, k=4, crops=True)
        np.testing.assert_array_equal(every.indices[channel], one.indices)
        np.testing.assert_array_equal(every.crops[channel], one.crops)


def test_dense_layers_and_nested_layers(digits_cnn, built_models):
    model, x, _ = digits_cnn
    top = ki.top_activating(model, "out", 3, x, k=3, crops=True)
    probs = model.predict(x, verbose=0)[:, 3]
    np.testing.assert_array_equal(top.indices, brute_force(probs, 3))
    assert top.positions is None and top.crops is None
    nested = built_models["nested"]
    path = next(p for p in ki.Introspector(nested).layer_paths if p.endswith("Conv1"))
    images = np.random.default_rng(0).uniform(0, 255, size=(12, 32, 32, 3)).astype("float32")
    sub = ki.Introspector(nested).submodel(path)
    values = np.asarray(sub(images))[..., 2].max(axis=(1, 2))
    top = ki.top_activating(nested, path, 2, images, k=4, crops=True)
    np.testing.assert_array_equal(top.indices, brute_force(values, 4))


def test_bad_input(data):
    model, x, _ = data
    with pytest.raises(ValueError, match="at least k=9"):
        ki.top_activating(model, "conv2", 0, x[:5], k=9, crops=True)
    with pytest.raises(ValueError, match="channel"):
        ki.top_activating(model, "conv2", 16, x, crops=True)
    with pytest.raises(ValueError, match="aggregate"):
        ki.top_activating(model, "conv2", 0, x, aggregate="median", crops=True)


def test_one_crops_default_for_both_functions_announced(data):
    """Issue 20: `crops=None` is each function's old default this release; the one that
    changes (top_activating: True -> False) says so."""
    model, x, _ = data
    x = x[:40]
    with pytest.warns(FutureWarning, match="crops defaults to False"):
        kept = ki.top_activating(model, "conv2", 0, x, k=2)
    assert kept.crops is not None
    np.testing.assert_array_equal(
        kept.crops, ki.top_activating(model, "conv2", 0, x, k=2, crops=True).crops
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)
        assert ki.top_activating_all(model, "conv2", x, k=2).crops is None
        assert ki.top_activating(model, "conv2", 0, x, k=2, crops=False).crops is None
