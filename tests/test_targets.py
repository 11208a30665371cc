"""Targets: validation, arithmetic and the scores they compute."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_introspect as ki
from keras_introspect.targets import BoundTarget

T = ki.targets
L = keras.layers


@pytest.fixture(scope="module")
def model():
    keras.utils.set_random_seed(1)
    return keras.Sequential(
        [
            keras.Input((10, 10, 2)),
            L.Conv2D(4, 3, activation="relu", name="conv1"),
            L.Conv2D(3, 3, name="conv2"),
            L.Flatten(name="flat"),
            L.Dense(5, activation="softmax", name="out"),
        ]
    )


def _scores(model, target, x):
    """Scores computed by a bound target inside a traced function."""
    intro = ki.Introspector(model)
    bound = BoundTarget(target, intro)
    tap = intro.tap(bound.paths or [])
    params = bound.expand(bound.params(0, len(x)))

    def run(rows):
        activations, output = tap(rows)
        return bound.score(activations, output, params)

    return np.asarray(tf.function(run, autograph=False)(np.repeat(x, bound.n_outputs, axis=0)))


def test_scores_match_hand_computation(model):
    x = np.random.default_rng(0).normal(size=(3, 10, 10, 2)).astype("float32")
    conv2 = keras.Model(model.inputs[0], model.get_layer("conv2").output)(x).numpy()
    flat = keras.Model(model.inputs[0], model.get_layer("flat").output)(x).numpy()
    dense = model.get_layer("out")
    logits = flat @ dense.kernel.numpy() + dense.bias.numpy()
    probs = model(x).numpy()

    np.testing.assert_allclose(_scores(model, T.Class(2), x), logits[:, 2], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(
        _scores(model, T.Class(2, logits=False), x), probs[:, 2], rtol=1e-5, atol=1e-6
    )
    np.testing.assert_allclose(
        _scores(model, T.Class([0, 4, 1]), x), logits[[0, 1, 2], [0, 4, 1]], rtol=1e-5, atol=1e-5
    )
    for aggregate, fn in [("max", np.max), ("sum", np.sum), ("mean", np.mean)]:
        np.testing.assert_allclose(
            _scores(model, T.Channel("conv2", 1, aggregate=aggregate), x),
            fn(conv2[..., 1], axis=(1, 2)),
            rtol=1e-5,
            atol=1e-5,
        )
        np.testing.assert_allclose(
            _scores(model, T.Layer("conv2", aggregate=aggregate), x),
            fn(conv2, axis=(1, 2, 3)),
            rtol=1e-5,
            atol=1e-4,
        )
    np.testing.assert_allclose(
        _scores(model, T.Neuron("conv2", 2, (3, 4)), x), conv2[:, 3, 4, 2], rtol=1e-5
    )
    combined = T.Class(1) + 0.5 * T.Channel("conv2", 0, "sum") - T.Neuron("conv2", 2, (0, 1))
    expected = logits[:, 1] + 0.5 * conv2[..., 0].sum(axis=(1, 2)) - conv2[:, 0, 1, 2]
    np.testing.assert_allclose(_scores(model, combined, x), expected, rtol=1e-4, atol=1e-4)
    custom = T.Score(lambda y: y[:, 0] * 2.0)
    np.testing.assert_allclose(_scores(model, custom, x), 2 * probs[:, 0], rtol=1e-5)
    many = _scores(model, T.Channel("conv2", "all", "max"), x).reshape(3, 3)
    np.testing.assert_allclose(many, conv2.max(axis=(1, 2)), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    "target, message",
    [
        (T.Class(5), r"class index in the range \[0, 4\].*Received: 5"),
        (T.Class([0, 9]), r"class index in the range \[0, 4\].*Received: 9"),
        (T.Channel("conv2", 3), r"channel of 'conv2' in the range \[0, 2\].*Received: 3"),
        (T.Channel("conv2", [0, 7]), r"Received: 7"),
        (T.Neuron("conv2", 0, (6, 0)), r"position\[0\] of 'conv2' in the range \[0, 5\]"),
        (T.Neuron("conv2", 0, (1,)), r"position with 2 coordinate"),
        (T.Class(0, output=1), r"`output` \(model output\) in the range \[0, 0\]"),
        (T.Class(0) + T.Channel("conv2", "all") + T.Channel("conv1", "all"), "at most one"),
    ],
)
def test_out_of_range_values_are_named(model, target, message):
    with pytest.raises(ValueError, match=message):
        BoundTarget(target, ki.Introspector(model))


def test_constructor_errors():
    with pytest.raises(ValueError, match="aggregate"):
        T.Channel("conv", 0, aggregate="median")
    with pytest.raises(TypeError, match="class index"):
        T.Class("cat")
    with pytest.raises(TypeError, match="callable"):
        T.Score(3)
    with pytest.raises(TypeError, match="Expected a target"):
        T.as_target("conv2")
    with pytest.raises(TypeError, match="keras_introspect target"):
        T.Class(0) + "x"


def test_arithmetic_and_repr():
    t = T.Class(3) + 0.5 * T.Channel("conv2", 4)
    assert repr(t) == "Class(3) + 0.5 * Channel('conv2', 4, aggregate='max')"
    assert isinstance(sum([T.Class(1), T.Class(2)]), T.Sum)
    assert [w for w, _ in (T.Class(1) - T.Class(2) / 4).terms] == [1.0, -0.25]
    assert isinstance(T.as_target(2), T.Class)
    assert isinstance(T.as_target(lambda y: y[:, 0]), T.Score)


def test_per_image_indices_must_match_the_images(model):
    bound = BoundTarget(T.Class([0, 1]), ki.Introspector(model))
    with pytest.raises(ValueError, match="one class index per image"):
        bound.check_n_samples(3)
    x = np.zeros((3, 10, 10, 2), "float32")
    with pytest.raises(ValueError, match="one class index per image"):
        ki.Saliency(model, T.Class([0, 1])).explain(x)


@pytest.mark.parametrize("spelling", ["argument", "activation_layer", "softmax_layer", "nested"])
def test_logits_are_found_behind_any_softmax(spelling):
    keras.utils.set_random_seed(2)
    dense = L.Dense(4, name="dense")
    inputs = keras.Input((3, 3, 1))
    h = L.Flatten()(inputs)
    if spelling == "argument":
        dense = L.Dense(4, activation="softmax", name="dense")
        outputs = dense(h)
    elif spelling == "activation_layer":
        outputs = L.Activation("softmax")(dense(h))
    else:
        outputs = L.Softmax()(dense(h))
    model = keras.Model(inputs, outputs)
    if spelling == "nested":
        model = keras.Sequential([keras.Input((3, 3, 1)), model])
    x = np.random.default_rng(0).normal(size=(2, 3, 3, 1)).astype("float32")
    logits = x.reshape(2, 9) @ dense.kernel.numpy() + dense.bias.numpy()
    np.testing.assert_allclose(_scores(model, T.Class(3), x), logits[:, 3], rtol=1e-5, atol=1e-6)
    probs = model(x).numpy()[:, 3]
    np.testing.assert_allclose(_scores(model, T.Class(3, logits=False), x), probs, rtol=1e-5)


def test_a_user_target_on_inner_activations_is_compiled_once_per_key():
    """The documented protocol: bind() -> Binding(path, score, columns, key)."""

    class ChannelRatio(T.Target):
        def __init__(self, layer, a, b):
            self.layer, self.a, self.b = layer, a, b

        def bind(self, intro):
            info = intro.layer(self.layer)

            def score(activation, outputs, columns):
                mean = tf.reduce_mean(activation, axis=[1, 2])
                a = tf.gather(mean, columns[:, 0], axis=1, batch_dims=1)
                b = tf.gather(mean, columns[:, 1], axis=1, batch_dims=1)
                return a / (b + 1.0)

            return T.Binding(self, info.path, score, columns=(self.a, self.b))

    keras.utils.set_random_seed(3)
    model = keras.Sequential(
        [
            keras.Input((6, 6, 1)),
            keras.layers.Conv2D(4, 3, activation="softplus", name="conv"),
            keras.layers.Flatten(),
            keras.layers.Dense(2),
        ]
    )
    x = np.random.default_rng(0).normal(size=(3, 6, 6, 1)).astype("float32")
    ki.Saliency(model, ChannelRatio("conv", 0, 1), reduce_channels=None).explain(x)
    count = ki.Introspector(model).trace_count
    maps = ki.Saliency(model, ChannelRatio("conv", 3, 2), reduce_channels=None).explain(x)
    assert ki.Introspector(model).trace_count == count
    conv = keras.Model(model.inputs, model.get_layer("conv").output)
    xt = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(xt)
        mean = tf.reduce_mean(conv(xt), axis=[1, 2])
        ratio = mean[:, 3] / (mean[:, 2] + 1.0)
    np.testing.assert_allclose(maps, tape.gradient(ratio, xt).numpy(), rtol=1e-4, atol=1e-6)


def test_bind_must_return_a_binding():
    class Broken(T.Target):
        def bind(self, intro):
            return lambda *a: 0

    model = keras.Sequential(
        [keras.Input((4, 4, 1)), keras.layers.Flatten(), keras.layers.Dense(2)]
    )
    with pytest.raises(TypeError, match="Binding"):
        ki.Saliency(model, Broken()).explain(np.zeros((1, 4, 4, 1), "float32"))


def test_dict_outputs_must_be_named_and_names_are_accepted():
    """Issue 18, D14: Class(k) on a dict-output model names the outputs instead of
    silently taking the first in sorted-key order."""
    keras.utils.set_random_seed(0)
    inputs = keras.Input((4, 4, 1))
    flat = L.Flatten()(inputs)
    model = keras.Model(
        inputs, {"size": L.Dense(1, name="size_head")(flat), "kind": L.Dense(3, name="kind")(flat)}
    )
    x = np.random.default_rng(0).normal(size=(2, 4, 4, 1)).astype("float32")
    with pytest.raises(ValueError, match=r"2 outputs, a dict \{'kind': \(None, 3\), 'size'"):
        ki.Saliency(model, T.Class(1)).explain(x)
    by_key = ki.Saliency(model, T.Class(1, output="kind"), reduce_channels=None).explain(x)
    kernel = model.get_layer("kind").kernel.numpy()[:, 1].reshape(4, 4, 1)
    np.testing.assert_allclose(by_key, np.broadcast_to(kernel, x.shape), rtol=1e-5)
    # the output layer's name works too
    by_name = ki.Saliency(model, T.Class(0, output="size_head"), reduce_channels=None).explain(x)
    size = model.get_layer("size_head").kernel.numpy()[:, 0].reshape(4, 4, 1)
    np.testing.assert_allclose(by_name, np.broadcast_to(size, x.shape), rtol=1e-5)
    with pytest.raises(ValueError, match=r"one of \['kind', 'size'\]\. Received: output='sizes'"):
        ki.Saliency(model, T.Class(0, output="sizes")).explain(x)


# --- dense outputs and regression heads (issue 22); the models: tests/test_dense_outputs.py
def test_regions_are_parsed_and_shown():
    assert repr(T.Class(1, output="seg", region=np.s_[2:5, 3:])) == (
        "Class(1, output='seg', region=np.s_[2:5, 3:])"
    )
    assert repr(T.Class(1, region=(4, 7))) == "Class(1, region=(4, 7))"
    assert repr(T.Class(0, region=np.ones((2, 3), bool), aggregate="sum")) == (
        "Class(0, region=<mask (2, 3)>, aggregate='sum')"
    )
    assert repr(T.Output()) == "Output()"
    assert repr(T.Output("boxes", "all", region=np.s_[1, 2:4])) == (
        "Output('boxes', 'all', region=np.s_[1:2, 2:4])"
    )
    with pytest.raises(TypeError, match="Expected `region` as None"):
        T.Class(0, region=np.ones((3, 3), "float32"))
    with pytest.raises(TypeError, match="Expected `region` as None"):
        T.Class(0, region="top")
    with pytest.raises(ValueError, match="without steps"):
        T.Class(0, region=np.s_[0:8:2, 1])
    with pytest.raises(ValueError, match="aggregate"):
        T.Output(region=(1, 1), aggregate="median")
    with pytest.raises(TypeError, match="unit"):
        T.Output(0, index="first")


@pytest.fixture(scope="module")
def dense():
    keras.utils.set_random_seed(0)
    inputs = keras.Input((6, 6, 1))
    return keras.Model(inputs, L.Conv2D(3, 3, padding="same", name="seg")(inputs))


@pytest.mark.parametrize(
    "target, message",
    [
        (T.Class(0, region=np.s_[2:2, 0:3]), r"box that is not empty on axis 0 \(size 6\)"),
        (T.Class(0, region=(6, 0)), r"region\[0\] \(position\) in the range \[0, 5\]"),
        (T.Class(0, region=(1, 2, 3)), r"position with 2 coordinate\(s\)"),
        (T.Class(0, region=np.ones((5, 6), bool)), r"mask of the output's spatial shape \(6, 6\)"),
        (T.Class(0, region=np.zeros((6, 6), bool)), "at least one True"),
        (T.Class(0, region=np.array([[0, 1, 2]])), r"positions per image of shape \(n, 2\)"),
        (T.Class(0, region=np.array([[0, 6]])), r"on axis 1 in the range \[0, 5\]"),
        (T.Class(3), r"class index in the range \[0, 2\]"),
        (T.Output(), r"`index` \(the unit\) for output 0 of shape \(None, 6, 6, 3\)"),
        (T.Output(index=[0, 3]), r"unit of output 0 in the range \[0, 2\]"),
        (T.Class([0, 1, 2], region=np.ones((2, 6, 6), bool)), "as many class indexes"),
    ],
)
def test_dense_region_errors_name_the_values(dense, target, message):
    with pytest.raises(ValueError, match=message):
        BoundTarget(target, ki.Introspector(dense))


def test_a_region_on_a_classifier_output_is_refused(model):
    with pytest.raises(ValueError, match=r"dense model output .* the outputs: 0 'out' \(None, 5\)"):
        BoundTarget(T.Class(1, region=(0, 0)), ki.Introspector(model))


def test_dense_scores_match_numpy(dense):
    x = np.random.default_rng(4).normal(size=(2, 6, 6, 1)).astype("float32")
    y = dense(x).numpy()
    mask = np.zeros((6, 6), bool)
    mask[1:3, 2] = mask[5, 5] = True
    cases = [
        (T.Class(2), y[..., 2].mean(axis=(1, 2))),
        (T.Class(2, aggregate="max"), y[..., 2].max(axis=(1, 2))),
        (T.Class(1, region=np.s_[1:4, -2:]), y[:, 1:4, -2:, 1].mean(axis=(1, 2))),
        (T.Class(1, region=(-1, 2)), y[:, 5, 2, 1]),
        (T.Class([0, 2], region=mask, aggregate="sum"), y[:, mask][[0, 1], :, [0, 2]].sum(1)),
        (T.Output(index=0, region=mask, aggregate="max"), y[:, mask, 0].max(axis=1)),
        (T.Output(index=1, region=np.array([[0, 0], [4, 5]])), y[[0, 1], [0, 4], [0, 5], 1]),
    ]
    for target, expected in cases:
        np.testing.assert_allclose(_scores(dense, target, x), expected, rtol=1e-5, atol=1e-6)
    many = _scores(dense, T.Output(index="all", region=(2, 3)), x)
    np.testing.assert_allclose(many, y[:, 2, 3].ravel(), rtol=1e-5)
