"""Methods on inner targets (Neuron, Channel) stop the forward pass at the target's layer.

The compiled graph then holds the model up to that layer only (smaller graphs: less
memory per traced function on deep backbones) and the maps are unchanged.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_introspect as ki
from keras_introspect import targets as T
from keras_introspect.exceptions import SharedLayerError


@pytest.fixture(scope="module")
def model():
    keras.utils.set_random_seed(3)
    L = keras.layers
    inputs = keras.Input((10, 10, 2))
    h = L.Conv2D(4, 3, activation="relu", name="conv1")(inputs)
    h = L.Conv2D(5, 3, activation="tanh", name="conv2")(h)
    h = L.Flatten(name="flat")(h)
    return keras.Model(inputs, L.Dense(3, name="head")(h))


def _x(n=3):
    return np.random.default_rng(0).normal(size=(n, 10, 10, 2)).astype("float32")


def _graph_ops(method_type, intro) -> set:
    """Names of the ops in the compiled steps of `method_type` on this model."""
    names = set()
    for key, fn in intro.session.compiled.items():
        if key[0] == "attribution" and key[1] is method_type:
            names |= {op.name for op in fn.graph.get_operations()}
    return names


def _channel_gradient(model, x, channel):
    """Brute force: d(sum of conv2's channel)/dx through a plain sub-model."""
    sub = keras.Model(model.inputs, model.get_layer("conv2").output)
    xt = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(xt)
        score = tf.reduce_sum(sub(xt)[..., channel])
    return tape.gradient(score, xt).numpy()


@pytest.mark.parametrize(
    ("method", "options"),
    [(ki.Saliency, {}), (ki.GradientInput, {}), (ki.GradCAM, {"layer": "conv1"})],
)
def test_inner_target_graph_stops_at_its_layer(model, method, options):
    x = _x()
    explainer = method(model, T.Channel("conv2", 2, "sum"), **options)
    maps = explainer.explain(x)
    ops = _graph_ops(method, explainer._intro)
    assert any("conv2" in name for name in ops)
    assert not any("head" in name for name in ops), "the graph runs past conv2"
    if method is ki.Saliency:
        expected = np.abs(_channel_gradient(model, x, 2)).max(axis=-1)
        np.testing.assert_allclose(maps, expected, rtol=1e-5, atol=1e-6)
    if method is ki.GradientInput:
        expected = (_channel_gradient(model, x, 2) * x).sum(axis=-1)
        np.testing.assert_allclose(maps, expected, rtol=1e-5, atol=1e-6)
    # a class target still runs the whole model
    method(model, 1, **options).explain(x)
    assert any("head" in name for name in _graph_ops(method, explainer._intro))


def test_truncated_metric_scores_equal_the_submodel(model):
    x = _x(4)
    sub = keras.Model(model.inputs, model.get_layer("conv2").output)
    target = T.Neuron("conv2", 1, (2, 3))
    maps = np.random.default_rng(1).uniform(size=(4, 10, 10)).astype("float32")
    curves = ki.metrics.deletion(model, x, maps, target, steps=4, normalize=False).curves
    # the curve runs from the untouched images' scores to the all-deleted images'
    np.testing.assert_allclose(curves[:, 0], sub(x).numpy()[:, 2, 3, 1], rtol=1e-5, atol=1e-6)
    zeros = sub(np.zeros_like(x)).numpy()[:, 2, 3, 1]
    np.testing.assert_allclose(curves[:, -1], zeros, rtol=1e-5, atol=1e-6)


def test_a_shared_layer_is_still_refused_when_truncating():
    shared = keras.layers.Dense(3, name="shared")
    a, b = keras.Input((4,), name="a"), keras.Input((4,), name="b")
    model = keras.Model([a, b], keras.layers.Add(name="sum")([shared(a), shared(b)]))
    intro = ki.Introspector(model)
    x = [np.ones((2, 4), "float32"), np.zeros((2, 4), "float32")]
    with pytest.raises(SharedLayerError, match="called 2 times"):
        intro.tap(["shared"], truncate=True)(x)


@pytest.mark.parametrize(
    "make, layer, pick, axes",
    [
        (lambda a: T.Channel("conv2", 1, a), "conv2", lambda h: h[..., 1], (1, 2)),
        (lambda a: T.Layer("conv1", a), "conv1", lambda h: h, (1, 2, 3)),
    ],
    ids=["channel", "layer"],
)
def test_aggregates_share_one_graph(model, make, layer, pick, axes):
    """ "max", "sum" and "mean" of a channel or a whole layer are a column of the
    target, not part of the graph: a new object per aggregate traces nothing, and
    each map is the gradient of its own reduction."""
    x = _x()
    sub = keras.Model(model.inputs, model.get_layer(layer).output)
    intro = ki.Introspector(model)
    ki.Saliency(model, make("max")).explain(x[:1])
    before = intro.trace_count
    xt = tf.constant(x)
    for aggregate, reduce in (
        ("sum", tf.reduce_sum),
        ("mean", tf.reduce_mean),
        ("max", tf.reduce_max),
    ):
        maps = ki.Saliency(model, make(aggregate)).explain(x)
        with tf.GradientTape() as tape:
            tape.watch(xt)
            score = tf.reduce_sum(reduce(pick(sub(xt)), axis=axes))
        expected = np.abs(tape.gradient(score, xt).numpy()).max(axis=-1)
        np.testing.assert_allclose(maps, expected, rtol=1e-5, atol=1e-7)
    assert intro.trace_count == before


def test_the_input_of_a_nested_model_called_twice_is_refused_not_truncated():
    """The input layer of a shared backbone is read at each of its calls: ambiguous."""
    inputs = keras.Input((4, 4, 2))
    backbone = keras.Model(inputs, keras.layers.Conv2D(3, 1, name="c")(inputs), name="bb")
    a, b = keras.Input((4, 4, 2)), keras.Input((4, 4, 2))
    model = keras.Model([a, b], keras.layers.Add()([backbone(a), backbone(b)]))
    intro = ki.Introspector(model)
    x = [np.zeros((2, 4, 4, 2), "float32"), np.ones((2, 4, 4, 2), "float32")]
    path = next(p for p in intro.layer_paths if p.startswith("bb/input"))
    with pytest.raises(SharedLayerError):
        intro.activations(x, path)
    with pytest.raises(SharedLayerError):
        intro.tap([path], truncate=True)(x)


def test_a_custom_target_that_reads_the_output_runs_the_whole_model(model):
    """A binding with a layer path that also reads the model output (`reads_output`,
    the default for custom bindings) is not truncated: its score is exact."""
    from keras_introspect.targets import Binding, Target

    class ChannelTimesLogit(Target):
        def bind(self, intro):
            def score(activation, outputs, columns):
                return tf.reduce_sum(activation[..., 0], axis=(1, 2)) * outputs[0][:, 1]

            return Binding(self, intro.layer("conv2").path, score)

    x = _x()
    sub = keras.Model(model.inputs, [model.get_layer("conv2").output, model.output])
    xt = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(xt)
        conv2, logits = sub(xt)
        score = tf.reduce_sum(tf.reduce_sum(conv2[..., 0], axis=(1, 2)) * logits[:, 1])
    expected = np.abs(tape.gradient(score, xt).numpy()).max(axis=-1)
    maps = ki.Saliency(model, ChannelTimesLogit()).explain(x)
    np.testing.assert_allclose(maps, expected, rtol=1e-4, atol=1e-6)
