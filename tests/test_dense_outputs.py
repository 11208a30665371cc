"""Dense outputs and regression heads (issue 22): `Class(..., region=)` and `Output`.

Every score is checked against an independent TensorFlow gradient, and the
fixture models (tests/nd_models.py) against their planted structure.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf
from nd_models import detection_head, segmentation_data, segmentation_fcn

import keras_introspect as ki

T = ki.targets
L = keras.layers


def _gradient(x, score):
    """d sum(score(x)) / dx, by TensorFlow directly."""
    xt = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(xt)
        value = tf.reduce_sum(score(xt))
    return tape.gradient(value, xt).numpy()


def _saliency(model, target, x):
    return ki.Saliency(model, target, reduce_channels=None).explain(x)


def _traces(model):
    return ki.Introspector(model).trace_count


@pytest.fixture(scope="module")
def seg():
    fx = segmentation_fcn()
    model = fx.model
    features = keras.Model(model.inputs[0], model.get_layer("conv2").output)
    head = model.get_layer("seg")

    def logits(x):  # the pre-softmax class maps, computed by hand
        return tf.tensordot(features(x), head.kernel[0, 0], 1) + head.bias

    return fx, logits


def test_the_fixture_segments(seg):
    fx, _ = seg
    assert fx.accuracy > 0.95


def test_class_over_a_box_a_mask_and_a_position_is_the_gradient_of_its_logits(seg):
    fx, logits = seg
    model, x = fx.model, fx.x[:3]
    np.testing.assert_allclose(
        _saliency(model, T.Class(1, region=np.s_[2:7, 3:9]), x),
        _gradient(x, lambda t: tf.reduce_mean(logits(t)[:, 2:7, 3:9, 1], axis=[1, 2])),
        atol=1e-5,
    )
    mask = np.zeros((16, 16), bool)
    mask[3:5, 4:10] = mask[12, 1] = True
    np.testing.assert_allclose(
        _saliency(model, T.Class(2, region=mask, aggregate="sum"), x),
        _gradient(x, lambda t: tf.reduce_sum(tf.boolean_mask(logits(t)[0:, ..., 2], mask, axis=1))),
        atol=1e-4,
    )
    np.testing.assert_allclose(
        _saliency(model, T.Class(1, region=(4, 5)), x),
        _gradient(x, lambda t: logits(t)[:, 4, 5, 1]),
        atol=1e-6,
    )
    # max over the region: the gradient of the largest logit in it
    values = logits(x).numpy()[:, 8:12, 8:12, 0].reshape(3, -1).argmax(axis=1)
    rows, cols = 8 + values // 4, 8 + values % 4
    np.testing.assert_allclose(
        _saliency(model, T.Class(0, region=np.s_[8:12, 8:12], aggregate="max"), x),
        _gradient(x, lambda t: tf.gather_nd(logits(t)[..., 0], np.stack([rows, cols], 1), 1)),
        atol=1e-6,
    )
    # no region: the mean over the whole map; probabilities with logits=False
    np.testing.assert_allclose(
        _saliency(model, T.Class(1, logits=False), x),
        _gradient(x, lambda t: tf.reduce_mean(model(t)[..., 1], axis=[1, 2])),
        atol=1e-6,
    )


def test_per_image_classes_masks_and_positions(seg):
    fx, logits = seg
    model, x = fx.model, fx.x[:3]
    masks = fx.y[:3] == 1
    classes = [1, 2, 1]
    expected = np.concatenate(
        [
            _gradient(
                x[i : i + 1], lambda t, i=i: tf.reduce_sum(logits(t)[0][masks[i]][:, classes[i]])
            )
            for i in range(3)
        ]
    )
    np.testing.assert_allclose(
        _saliency(model, T.Class(classes, region=masks, aggregate="sum"), x), expected, atol=1e-4
    )
    positions = np.array([[1, 2], [15, 0], [7, 7]])
    expected = np.concatenate(
        [
            _gradient(
                x[i : i + 1], lambda t, i=i: logits(t)[:, positions[i, 0], positions[i, 1], 1]
            )
            for i in range(3)
        ]
    )
    np.testing.assert_allclose(
        _saliency(model, T.Class(1, region=positions), x), expected, atol=1e-6
    )
    with pytest.raises(ValueError, match=r"one region per image \(2 images\)"):
        _saliency(model, T.Class(1, region=positions), x[:2])


def test_explaining_class_k_in_a_region_highlights_that_region(seg):
    """Planted structure: each image has one bright (class 1) and one dark square."""
    fx, _ = seg
    bright, dark = fx.y == 1, fx.y == 2
    for k, region in ((1, bright), (2, dark)):
        maps = np.abs(ki.Saliency(fx.model, T.Class(k, region=region)).explain(fx.x))
        inside = (maps * region).sum(axis=(1, 2)) / maps.sum(axis=(1, 2))
        assert inside.min() > 0.6  # the squares cover 19 % of the pixels on average
        # and nothing beyond the 5x5 receptive field of the region (2 pixels around it)
        grown = tf.nn.max_pool2d(region[..., None].astype("float32"), 5, 1, "SAME").numpy()
        assert np.all(maps[grown[..., 0] == 0] == 0)
    occlusion = ki.Occlusion(fx.model, T.Class(1, region=bright), window=2).explain(fx.x)
    assert ((occlusion * bright).sum((1, 2)) / np.abs(occlusion).sum((1, 2))).min() > 0.6


def test_another_region_class_or_mask_never_traces_again(seg):
    fx, _ = seg
    model, x = fx.model, fx.x[:2]
    masks = fx.y[:2] == 1
    kinds = [
        (T.Class(1, region=np.s_[0:4, 0:4]), T.Class(2, region=np.s_[5:16, 3:4])),
        (T.Class(1, region=(1, 1)), T.Class(0, region=(9, 3))),
        (T.Class(1, region=masks[0]), T.Class([2, 0], region=masks)),
    ]
    for first, second in kinds:
        a = ki.Saliency(model, first).explain(x)
        count = _traces(model)
        b = ki.Saliency(model, second).explain(x)
        assert _traces(model) == count
        assert not np.allclose(a, b)


def test_free_size_inputs_and_regions_beyond_the_first_size(seg):
    fx, logits = seg
    x = segmentation_data(2, size=20, seed=5)[0]
    np.testing.assert_allclose(
        _saliency(fx.model, T.Class(1, region=np.s_[15:, 12:]), x),
        _gradient(x, lambda t: tf.reduce_mean(logits(t)[:, 15:, 12:, 1], axis=[1, 2])),
        atol=1e-6,
    )
    with pytest.raises(tf.errors.InvalidArgumentError, match="Region position outside"):
        ki.Saliency(fx.model, T.Class(1, region=(16, 0))).explain(fx.x[:1])
    with pytest.raises(ValueError, match=r"mask of the spatial shape \(20, 20\)"):
        ki.Saliency(fx.model, T.Class(1, region=np.ones((16, 16), bool))).explain(x)
    with pytest.raises(ValueError, match="cannot count from the end"):
        ki.Saliency(fx.model, T.Class(1, region=(-1, 0))).explain(x)


def test_detection_head_score_at_one_anchor_and_its_boxes():
    fx = detection_head()
    model, x = fx.model, fx.x
    assert fx.accuracy > 0.95
    scores, _ = model.predict(x, verbose=0)
    anchors = np.array([np.unravel_index(np.argmax(s[..., 1]), s.shape[:2]) for s in scores])
    assert np.mean(fx.y[np.arange(len(x)), anchors[:, 0], anchors[:, 1]]) > 0.9
    target = T.Class(1, output="scores", region=anchors)
    maps = np.abs(ki.Saliency(model, target).explain(x))
    # planted: the evidence for the best anchor lies on the square (7 % of the pixels)
    inside = (maps * fx.truth).sum((1, 2)) / fx.truth.sum((1, 2))
    outside = (maps * ~fx.truth).sum((1, 2)) / (~fx.truth).sum((1, 2))
    assert np.median(inside / outside) > 3
    cam = ki.GradCAM(model, target, layer="conv3").explain(x)
    peaks = [np.unravel_index(np.argmax(c), c.shape) for c in cam]
    assert np.mean([fx.truth[i][p] for i, p in enumerate(peaks)]) > 0.9
    # the same score by index and by name; by hand at one anchor
    features = keras.Model(model.inputs[0], model.get_layer("conv3").output)
    head = model.get_layer("scores")
    by_index = _saliency(model, T.Class(1, output=0, region=(3, 5)), x[:2])
    expected = _gradient(
        x[:2], lambda t: tf.tensordot(features(t)[:, 3, 5], head.kernel[0, 0, :, 1], 1)
    )
    np.testing.assert_allclose(by_index, expected, atol=1e-5)
    # several units of the box regression in one call: one map per unit
    boxes = model.get_layer("boxes")
    all_units = _saliency(model, T.Output("boxes", "all", region=(3, 5)), x[:2])
    assert all_units.shape == (2, 4, 32, 32, 3)
    for unit in range(4):
        expected = _gradient(
            x[:2], lambda t, u=unit: tf.tensordot(features(t)[:, 3, 5], boxes.kernel[0, 0, :, u], 1)
        )
        np.testing.assert_allclose(all_units[:, unit], expected, atol=1e-5)
    np.testing.assert_allclose(
        _saliency(model, T.Output(1, 2, region=(3, 5)), x[:2]), all_units[:, 2], atol=1e-6
    )


def test_outputs_are_named_and_wrong_names_list_them():
    model = detection_head().model
    x = np.zeros((1, 16, 16, 3), "float32")
    listed = r"0 'scores' \(None, None, None, 2\), 1 'boxes' \(None, None, None, 4\)"
    with pytest.raises(ValueError, match=r"one of \['scores', 'boxes'\].*" + listed):
        ki.Saliency(model, T.Class(1, output="score")).explain(x)
    with pytest.raises(ValueError, match=r"range \[0, 1\]. Received: output=2.*" + listed):
        ki.Saliency(model, T.Class(1, output=2)).explain(x)
    with pytest.raises(ValueError, match=r"`index` \(the unit\).*4 units"):
        ki.Saliency(model, T.Output("boxes")).explain(x)
    with pytest.raises(ValueError, match="a box with 2 coordinate"):
        ki.Saliency(model, T.Class(1, output="scores", region=np.s_[1:3])).explain(x)


@pytest.fixture(scope="module")
def linear():
    """A linear regression head with 3 units on (6, 5, 2) inputs, and one with 1 unit."""
    keras.utils.set_random_seed(2)
    inputs = keras.Input((6, 5, 2))
    flat = L.Flatten()(inputs)
    model = keras.Model(inputs, [L.Dense(3, name="three")(flat), L.Dense(1, name="one")(flat)])
    return model


def test_regression_heads_have_their_weights_as_gradients(linear):
    x = np.random.default_rng(0).normal(size=(4, 6, 5, 2)).astype("float32")
    three = linear.get_layer("three").kernel.numpy().reshape(6, 5, 2, 3)
    one = linear.get_layer("one").kernel.numpy().reshape(6, 5, 2)
    for unit in range(3):
        np.testing.assert_allclose(
            _saliency(linear, T.Output("three", unit), x),
            np.broadcast_to(three[..., unit], x.shape),
            rtol=1e-6,
        )
    np.testing.assert_allclose(
        _saliency(linear, T.Output("one"), x), np.broadcast_to(one, x.shape), rtol=1e-6
    )
    both = _saliency(linear, T.Output(0, [2, 0]), x)
    np.testing.assert_allclose(both[:, 0], np.broadcast_to(three[..., 2], x.shape), rtol=1e-6)
    np.testing.assert_allclose(both[:, 1], np.broadcast_to(three[..., 0], x.shape), rtol=1e-6)
    # gradient x input sums to the output minus the bias (a linear model)
    gi = ki.GradientInput(linear, T.Output("three", 1), reduce_channels=None).explain(x)
    bias = linear.get_layer("three").bias.numpy()[1]
    np.testing.assert_allclose(
        gi.sum(axis=(1, 2, 3)), linear(x)[0].numpy()[:, 1] - bias, rtol=1e-4, atol=1e-4
    )
    # a difference of two heads is a target too
    np.testing.assert_allclose(
        _saliency(linear, T.Output("three", 1) - 2 * T.Output("one"), x),
        np.broadcast_to(three[..., 1] - 2 * one, x.shape),
        rtol=1e-5,
        atol=1e-6,
    )


def test_a_dense_regression_output_over_a_box_is_its_weight_over_the_box():
    keras.utils.set_random_seed(3)
    inputs = keras.Input((8, 8, 1))
    model = keras.Model(inputs, L.Conv2D(2, 1, name="pixels")(inputs))
    weight = float(model.get_layer("pixels").kernel.numpy()[0, 0, 0, 1])
    x = np.random.default_rng(1).normal(size=(2, 8, 8, 1)).astype("float32")
    maps = _saliency(model, T.Output(index=1, region=np.s_[2:4, 1:6]), x)
    expected = np.zeros((2, 8, 8, 1), np.float32)
    expected[:, 2:4, 1:6] = weight / 10
    np.testing.assert_allclose(maps, expected, rtol=1e-5, atol=1e-8)
    summed = _saliency(model, T.Output(index=1, region=np.s_[2:4, 1:6], aggregate="sum"), x)
    np.testing.assert_allclose(summed, 10 * expected, rtol=1e-5, atol=1e-8)
