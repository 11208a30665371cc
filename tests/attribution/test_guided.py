"""Guided backprop and deconvnet: rectified backward passes, the model untouched."""

import keras
import numpy as np
import pytest

import keras_introspect as ki
from keras_introspect.model import backward

L = keras.layers
W = np.random.default_rng(0).normal(size=(9, 4)).astype("float32")
V = np.random.default_rng(1).normal(size=(4, 2)).astype("float32")


def _model(kind):
    """Flatten -> Dense(4) -> rectifier -> Dense(2), the rectifier in several spellings."""
    layers = [keras.Input((3, 3, 1)), L.Flatten()]
    if kind == "activation_argument":
        layers += [L.Dense(4, activation="relu", name="hidden")]
    elif kind == "relu_layer":
        layers += [L.Dense(4, name="hidden"), L.ReLU()]
    elif kind == "activation_layer":
        layers += [L.Dense(4, name="hidden"), L.Activation("relu")]
    elif kind == "leaky":
        layers += [L.Dense(4, name="hidden"), L.LeakyReLU(negative_slope=0.1)]
    model = keras.Sequential([*layers, L.Dense(2, name="out")])
    model.get_layer("hidden").set_weights([W, np.zeros(4, "float32")])
    model.get_layer("out").set_weights([V, np.zeros(2, "float32")])
    return model


X = np.random.default_rng(2).normal(size=(5, 3, 3, 1)).astype("float32")
Z = X.reshape(5, 9) @ W  # pre-activation of the hidden layer


@pytest.mark.parametrize("kind", ["activation_argument", "relu_layer", "activation_layer"])
def test_relu_rules_match_hand_computation(kind):
    model = _model(kind)
    dy = V[:, 1]
    guided = (np.maximum(dy, 0) * (Z > 0)) @ W.T
    deconv = np.broadcast_to(np.maximum(dy, 0) @ W.T, (5, 9))
    plain = (dy * (Z > 0)) @ W.T
    for method, expected in [
        (ki.GuidedBackprop, guided),
        (ki.Deconvnet, deconv),
        (ki.Saliency, plain),
    ]:
        maps = method(model, 1, reduce_channels=None).explain(X)
        np.testing.assert_allclose(maps.reshape(5, 9), expected, rtol=1e-5, atol=1e-6)


def test_leaky_relu_rule_is_documented_formula():
    model = _model("leaky")
    dy = V[:, 0]
    slope = np.where(Z > 0, 1.0, 0.1)
    guided = (np.maximum(dy, 0) * slope) @ W.T
    maps = ki.GuidedBackprop(model, 0, reduce_channels=None).explain(X)
    np.testing.assert_allclose(maps.reshape(5, 9), guided, rtol=1e-5, atol=1e-6)
    deconv = ki.Deconvnet(model, 0, reduce_channels=None).explain(X)
    np.testing.assert_allclose(
        deconv.reshape(5, 9), np.broadcast_to(np.maximum(dy, 0) @ W.T, (5, 9)), rtol=1e-5
    )


def test_deconvnet_unpools_to_the_switches():
    """The 4x4 example of Kalmeijer (2016, §3.1.2): maxima at the recorded switches."""
    model = keras.Sequential([keras.Input((4, 4, 1)), L.MaxPooling2D(2, name="pool")])
    x = np.array([[1, 2, 3, 4], [5, 6, 7, 8], [9, 0, 1, 2], [3, 4, 5, 6]], "float32")
    target = ki.targets.Channel("pool", 0, aggregate="sum")
    maps = ki.Deconvnet(model, target, reduce_channels="sum").explain(x[None, ..., None])
    switches = np.zeros((4, 4))
    switches[[1, 1, 2, 3], [1, 3, 0, 3]] = 1
    np.testing.assert_array_equal(maps[0], switches)


def test_model_is_left_as_it_was():
    model = _model("activation_argument")
    hidden = model.get_layer("hidden")
    activation = hidden.activation
    before = model(X).numpy()
    ki.GuidedBackprop(model, 1).explain(X)
    ki.Deconvnet(model, 1).explain(X)
    assert hidden.activation is activation
    assert all("call" not in layer.__dict__ for layer in model.layers)
    np.testing.assert_array_equal(model(X).numpy(), before)
    np.testing.assert_allclose(
        ki.Saliency(model, 1, reduce_channels=None).explain(X).reshape(5, 9),
        (V[:, 1] * (Z > 0)) @ W.T,
        rtol=1e-5,
        atol=1e-6,
    )


def test_guided_backprop_on_a_nested_backbone(built_models):
    """ReLU6 layers inside MobileNetV2: guided maps differ from plain gradients."""
    from conftest import sample_input

    model = built_models["nested"]
    x = sample_input("nested", n=2)
    guided = ki.GuidedBackprop(model, 0).explain(x)
    plain = ki.Saliency(model, 0).explain(x)
    assert guided.shape == plain.shape == (2, 32, 32)
    assert np.isfinite(guided).all()
    assert not np.allclose(guided, plain, rtol=1e-2, atol=0)
    layers = [info.layer for info in ki.Introspector(model).layers]
    rectifiers = backward.wrappers(layers, "guided")
    assert len(rectifiers) == sum(type(layer).__name__ == "ReLU" for layer in layers) > 10
