"""`replacing`: a forward pass with one layer's output replaced, also inside a nested model."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_introspect as ki
from keras_introspect.concepts._engine import intervened_scores
from keras_introspect.exceptions import SharedLayerError
from keras_introspect.model.intervene import replacing

L = keras.layers


def nested():
    backbone = keras.Sequential(
        [
            keras.Input((8, 8, 3)),
            L.Conv2D(4, 3, padding="same", activation="relu", name="inner_conv"),
            L.MaxPooling2D(name="inner_pool"),
        ],
        name="backbone",
    )
    inputs = keras.Input((8, 8, 3))
    h = L.Rescaling(2.0, name="pre")(inputs)
    h = backbone(h)
    h = L.Conv2D(3, 1, activation="relu", name="after")(h)
    outputs = L.Dense(2, name="logits")(L.GlobalAveragePooling2D()(h))
    return keras.Model(inputs, outputs)


def test_replacing_a_layer_inside_a_nested_backbone():
    keras.utils.set_random_seed(0)
    model = nested()
    x = np.random.default_rng(0).uniform(size=(3, 8, 8, 3)).astype("float32")
    info = ki.Introspector(model).layer("backbone/inner_pool")
    before = np.asarray(model(x))
    with replacing(info, tf.zeros_like):
        zeroed = np.asarray(model(x))
    # zero activations after the backbone: the rest is relu(bias) -> mean -> dense, by hand
    after_bias = model.get_layer("after").bias.numpy()
    kernel, bias = model.get_layer("logits").get_weights()
    np.testing.assert_allclose(zeroed, np.tile(np.maximum(after_bias, 0) @ kernel + bias, (3, 1)))
    np.testing.assert_allclose(np.asarray(model(x)), before)  # the model is unchanged


def test_identity_reconstruction_gives_the_model_logits():
    """Concept vectors = the unit basis, coefficients = the activations: the replaced
    activations are the layer's own, so every row scores the model's logit."""
    keras.utils.set_random_seed(1)
    model = nested()
    intro = ki.Introspector(model)
    info = intro.layer("backbone/inner_pool")
    x = np.random.default_rng(1).uniform(size=(5, 8, 8, 3)).astype("float32")
    acts = intro.activations(x, info.path)[info.path]
    rows = np.repeat(np.arange(5), 2)
    masks = np.tile(np.ones((2, 4), "float32"), (5, 1))
    scores = intervened_scores(intro, info, 1, x, acts, np.eye(4), rows, masks, batch_size=4)
    np.testing.assert_allclose(scores, np.repeat(np.asarray(model(x))[:, 1], 2), rtol=1e-5)


def test_a_shared_layer_is_refused():
    shared = L.Dense(3, name="shared")
    inputs = keras.Input((3,))
    model = keras.Model(inputs, shared(shared(inputs)))
    intro = ki.Introspector(model)
    info = intro.layer_paths and intro.layer("shared")
    with pytest.raises(SharedLayerError), replacing(info, lambda a: a):
        model(np.ones((1, 3), "float32"))
