"""Saliency and GradientInput against values worked out independently."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_introspect as ki
from keras_introspect.exceptions import KerasIntrospectWarning

T = ki.targets
L = keras.layers


def _linear(activation=None):
    keras.utils.set_random_seed(3)
    return keras.Sequential(
        [keras.Input((5, 6, 3)), L.Flatten(), L.Dense(4, activation=activation, name="out")]
    )


@pytest.fixture(scope="module")
def cnn():
    keras.utils.set_random_seed(4)
    return keras.Sequential(
        [
            keras.Input((12, 12, 3)),
            L.Conv2D(6, 3, activation="relu", name="conv1"),
            L.MaxPooling2D(name="pool1"),
            L.Conv2D(5, 3, activation="relu", name="conv2"),
            L.GlobalAveragePooling2D(),
            L.Dense(3, name="out"),
        ]
    )


def _x(shape, n=4, seed=0):
    return np.random.default_rng(seed).normal(size=(n, *shape)).astype("float32")


def _manual_gradient(model, layer, fn, x):
    sub = keras.Model(model.inputs[0], model.get_layer(layer).output)
    xt = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(xt)
        value = fn(sub(xt))
    return tape.gradient(value, xt).numpy()


@pytest.mark.parametrize("activation", [None, "softmax"])
def test_linear_model_saliency_is_abs_weights(activation):
    model = _linear(activation)
    w = model.get_layer("out").kernel.numpy()[:, 2].reshape(5, 6, 3)
    x = _x((5, 6, 3))
    maps = ki.Saliency(model, T.Class(2)).explain(x)
    np.testing.assert_allclose(maps, np.broadcast_to(np.abs(w).max(-1), maps.shape), atol=1e-6)
    raw = ki.Saliency(model, 2, reduce_channels=None).explain(x)
    np.testing.assert_allclose(raw, np.broadcast_to(w, raw.shape), atol=1e-6)
    summed = ki.Saliency(model, 2, reduce_channels="sum").explain(x)
    np.testing.assert_allclose(summed[0], w.sum(-1), atol=1e-6)
    absum = ki.Saliency(model, 2, reduce_channels="abs_sum").explain(x)
    np.testing.assert_allclose(absum[0], np.abs(w).sum(-1), atol=1e-6)
    contribution = ki.GradientInput(model, 2, reduce_channels=None).explain(x)
    np.testing.assert_allclose(contribution, x * w, atol=1e-6)


@pytest.mark.parametrize("aggregate", ["max", "sum", "mean"])
def test_channel_saliency_equals_manual_tape(cnn, aggregate):
    x = _x((12, 12, 3))
    reduce = {"max": tf.reduce_max, "sum": tf.reduce_sum, "mean": tf.reduce_mean}[aggregate]
    expected = _manual_gradient(cnn, "conv2", lambda a: reduce(a[..., 3], axis=[1, 2]), x)
    maps = ki.Saliency(cnn, T.Channel("conv2", 3, aggregate), reduce_channels=None).explain(x)
    np.testing.assert_allclose(maps, expected, rtol=1e-5, atol=1e-6)


def test_all_channels_in_one_call_equal_one_call_per_channel(cnn):
    x = _x((12, 12, 3), n=3)
    many = ki.Saliency(cnn, T.Channel("conv1", "all", "sum"), batch_size=16).explain(x)
    assert many.shape == (3, 6, 12, 12)
    for c in range(6):
        single = ki.Saliency(cnn, T.Channel("conv1", c, "sum")).explain(x)
        np.testing.assert_allclose(many[:, c], single, rtol=1e-5, atol=1e-6)
    listed = ki.Saliency(cnn, T.Channel("conv1", [4, 1], "sum")).explain(x)
    np.testing.assert_allclose(listed[:, 0], many[:, 4], rtol=1e-5, atol=1e-6)


def test_neuron_saliency_is_zero_outside_the_receptive_field(cnn):
    x = _x((12, 12, 3), n=2)
    maps = ki.Saliency(cnn, T.Neuron("conv2", 0, (1, 1))).explain(x)
    field = ki.Introspector(cnn).receptive_field("conv2")
    rows, cols = field.slices((1, 1), (12, 12))
    outside = np.ones((12, 12), bool)
    outside[rows, cols] = False
    assert np.all(maps[:, outside] == 0)


def test_no_retracing_on_later_calls(cnn):
    method = ki.Saliency(cnn, T.Class(1), batch_size=4)
    method.explain(_x((12, 12, 3), n=10))  # chunks of 4, the last one padded
    assert method.trace_count == 1
    method.explain(_x((12, 12, 3), n=7, seed=2))
    assert method.trace_count == 1


def test_multi_input_model_explains_the_image_with_others_fixed():
    keras.utils.set_random_seed(5)
    image = keras.Input((8, 8, 2), name="image")
    meta = keras.Input((3,), name="meta")
    h = L.GlobalAveragePooling2D()(L.Conv2D(4, 3, activation="tanh")(image))
    h = L.Concatenate()([h, L.Dense(4)(meta)])
    model = keras.Model([meta, image], L.Dense(2, name="out")(h))
    x_img, x_meta = _x((8, 8, 2), n=3), _x((3,), n=3, seed=1)
    xt = tf.constant(x_img)
    with tf.GradientTape() as tape:
        tape.watch(xt)
        value = model([tf.constant(x_meta), xt])[:, 1]
    expected = np.abs(tape.gradient(value, xt).numpy()).max(-1)
    maps = ki.Saliency(model, 1, batch_size=2).explain([x_meta, x_img])
    np.testing.assert_allclose(maps, expected, rtol=1e-5, atol=1e-7)


def test_mixed_precision_scores_in_float32():
    policy = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_float16")
    try:
        keras.utils.set_random_seed(6)
        model = keras.Sequential(
            [
                keras.Input((8, 8, 1)),
                L.Conv2D(3, 3, activation="relu"),
                L.Flatten(),
                L.Dense(2, dtype="float32", name="out"),
            ]
        )
    finally:
        keras.config.set_dtype_policy(policy)
    x = _x((8, 8, 1), n=2)
    maps = ki.Saliency(model, 1).explain(x)
    assert maps.dtype == np.float32
    xt = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(xt)
        value = tf.cast(model(xt)[:, 1], tf.float32)
    expected = np.abs(tape.gradient(value, xt).numpy()).max(-1)
    np.testing.assert_allclose(maps, expected, rtol=2e-2, atol=2e-3)


def test_warns_when_every_gradient_is_zero():
    model = keras.Sequential(
        [keras.Input((4, 4, 1)), L.Flatten(), L.Dense(2, kernel_initializer="zeros")]
    )
    with pytest.warns(KerasIntrospectWarning, match="is zero"):
        ki.Saliency(model, 0).explain(np.ones((2, 4, 4, 1), "float32"))


def test_bad_options_raise():
    model = _linear()
    with pytest.raises(ValueError, match="reduce_channels"):
        ki.Saliency(model, 0, reduce_channels="mean")
    with pytest.raises(ValueError, match="batch_size"):
        ki.Saliency(model, 0, batch_size=0)
    with pytest.raises(TypeError, match=r"keras\.Model"):
        ki.Saliency("model.keras", 0)
    with pytest.raises(ValueError, match=r"Expected input of shape \(None, 5, 6, 3\)"):
        ki.Saliency(model, 0).explain(np.zeros((2, 5, 5, 3)))


@pytest.mark.parametrize("method", [ki.Saliency, ki.GradCAM, ki.Occlusion])
def test_bfloat16_compute_is_opt_in_and_close(cnn, method):
    x = _x((12, 12, 3), n=3)
    options = {ki.Occlusion: {"window": 3}, ki.GradCAM: {"layer": "conv1"}}.get(method, {})
    exact = method(cnn, T.Class(1), **options).explain(x)
    assert np.any(exact)
    fast = method(cnn, T.Class(1), compute_dtype="bfloat16", **options).explain(x)
    assert fast.dtype == np.float32
    assert not np.array_equal(fast, exact)  # it did run in another precision
    corr = np.corrcoef(fast.ravel(), exact.ravel())[0, 1]
    assert corr > 0.95
    assert all(layer.dtype_policy.name == "float32" for layer in cnn.layers)
    with pytest.raises(ValueError, match="compute_dtype"):
        method(cnn, 0, compute_dtype="int8")
