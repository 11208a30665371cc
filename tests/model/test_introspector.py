"""The flat layer view, sub-models, non-mutation, unbuilt and subclassed models."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import REFERENCES, make_sequential, sample_input

import keras_introspect as ki
from keras_introspect.exceptions import ModelNotBuiltError, SharedLayerError


def test_nested_layers_are_listed_with_paths(get_model):
    intro = ki.Introspector(get_model("nested"))
    paths = intro.layer_paths
    assert paths[:2] == ["preprocess", "mobilenetv2_0.35_32"]
    assert intro.layers[2].type == "InputLayer" and paths[2].startswith("mobilenetv2_0.35_32/")
    assert "mobilenetv2_0.35_32/block_3_expand_relu" in paths
    assert paths[-2:] == ["gap", "head"]
    backbone = get_model("nested").layers[1]
    assert len(paths) == 4 + len(backbone.layers)


def test_two_level_paths_and_depths(get_model):
    infos = {i.path: i for i in ki.Introspector(get_model("nested_two_levels")).layers}
    assert infos["encoder/stem/stem_conv"].depth == 2
    assert infos["encoder"].is_container and infos["encoder/stem"].is_container
    assert infos["encoder/stem/stem_conv"].output_shape == (None, 7, 7, 4)


def test_shapes_and_params_match_keras(get_model):
    model = get_model("nested")
    infos = ki.Introspector(model).layers
    x = sample_input("nested", n=1)
    for info in infos:
        if info.path in REFERENCES["nested"]:
            ref = np.asarray(REFERENCES["nested"][info.path](model, x))
            assert info.output_shape[1:] == ref.shape[1:], info.path
    top = sum(i.n_params for i in infos if i.depth == 0)
    assert top == model.count_params()


def _snapshot(model):
    layers = model._flatten_layers(include_self=True, recursive=True)
    return {
        "weights": [w.numpy().copy() for w in model.weights],
        "nodes": [len(layer._inbound_nodes) for layer in layers],
        "own_call": ["call" in layer.__dict__ for layer in layers],
        "config": model.get_config(),
    }


@pytest.mark.parametrize("name", ["sequential", "nested", "nested_two_levels", "subclassed"])
def test_model_is_not_mutated(built_models, name):
    model = built_models[name]
    before = _snapshot(model)
    intro = ki.Introspector(model, input_shape=(10, 10, 2) if name == "subclassed" else None)
    intro.summary(print_fn=lambda *_: None)
    x = sample_input(name, n=2)
    paths = list(REFERENCES[name])
    intro.activations(x, paths)
    intro.submodel(paths[0])(x)
    after = _snapshot(model)
    assert after["nodes"] == before["nodes"]
    assert after["own_call"] == before["own_call"]
    assert after["config"] == before["config"]
    for a, b in zip(after["weights"], before["weights"], strict=True):
        np.testing.assert_array_equal(a, b)


def test_unbuilt_sequential_needs_input_shape():
    model = keras.Sequential([keras.layers.Conv2D(2, 3, name="c"), keras.layers.Flatten(name="f")])
    with pytest.raises(ModelNotBuiltError, match="input_shape"):
        ki.Introspector(model)
    intro = ki.Introspector(model, input_shape=(6, 6, 1))
    assert intro.layer("c").output_shape == (None, 4, 4, 2)
    x = np.random.default_rng(0).normal(size=(3, 6, 6, 1)).astype("float32")
    np.testing.assert_allclose(intro.activations(x, "f")["f"], np.asarray(model(x)), atol=1e-6)


def test_input_shape_conflicting_with_model_is_refused(built_models):
    with pytest.raises(ValueError, match="input_shape"):
        ki.Introspector(built_models["sequential"], input_shape=(8, 8, 3))


def test_subclassed_model_table_needs_input_shape(built_models):
    model = built_models["subclassed"]
    intro = ki.Introspector(model, input_shape=(10, 10, 2))
    assert intro.layer_paths == ["sub_conv", "sub_pool", "sub_flat", "sub_dense"]
    assert intro.layer("sub_pool").output_shape == (None, 4, 4, 5)
    assert intro.receptive_field("sub_pool").size == (4, 4)


def test_submodel_is_a_keras_model_sharing_weights(get_model):
    model = get_model("nested")
    sub = ki.Introspector(model).submodel("block_3_expand_relu")
    assert isinstance(sub, keras.Model)
    x = sample_input("nested", n=3)
    expected = np.asarray(REFERENCES["nested"]["mobilenetv2_0.35_32/block_3_expand_relu"](model, x))
    np.testing.assert_allclose(sub.predict(x, verbose=0, batch_size=2), expected, atol=1e-5)
    assert len(sub.weights) == len(model.weights)
    both = ki.Introspector(model).submodel(["Conv1", "gap"])(x)
    assert [tuple(t.shape) for t in both] == [(3, 16, 16, 16), (3, 1280)]


def test_summary_prints_table(built_models, capsys):
    ki.Introspector(built_models["nested"]).summary()
    text = capsys.readouterr().out
    assert "block_3_expand_relu" in text and "Conv2D" in text
    assert "3x3 /2x2" in text  # Conv1: 3x3 kernel, stride 2


def test_shared_layer_is_refused_clearly():
    shared = keras.layers.Dense(3, name="shared")
    a, b = keras.Input((4,), name="a"), keras.Input((4,), name="b")
    model = keras.Model([a, b], keras.layers.Add(name="sum")([shared(a), shared(b)]))
    intro = ki.Introspector(model)
    assert intro.layer("shared").n_calls == 2
    x = [np.ones((2, 4), "float32"), np.zeros((2, 4), "float32")]
    with pytest.raises(SharedLayerError, match="called 2 times"):
        intro.activations(x, "shared")
    np.testing.assert_allclose(intro.activations(x, "sum")["sum"], np.asarray(model(x)), atol=1e-6)


def test_tap_works_inside_user_tf_function(built_models):
    model = built_models["functional"]
    tap = ki.Introspector(model).tap(["conv_a", "add"])
    x = sample_input("functional", n=2)
    (a, add), out = tf.function(tap)(tf.constant(x))
    np.testing.assert_allclose(out.numpy(), np.asarray(model(x)), atol=1e-6)
    assert a.shape == (2, 16, 16, 4) and add.shape == (2, 16, 16, 4)


def test_non_model_and_wrong_backend_input():
    with pytest.raises(TypeError, match=r"keras\.Model"):
        ki.Introspector(make_sequential().layers[0])


def test_spatial_shape_drops_the_channel_axis_wherever_it_is():
    from keras_introspect.model.introspector import LayerInfo

    last = LayerInfo("a", "a", "Conv2D", None, output_shape=(None, 5, 7, 3), channel_axis=-1)
    first = LayerInfo("b", "b", "Conv2D", None, output_shape=(None, 3, 5, 7), channel_axis=1)
    dense = LayerInfo("c", "c", "Dense", None, output_shape=(None, 4), channel_axis=-1)
    assert last.spatial_shape == (5, 7) and first.spatial_shape == (5, 7)
    assert dense.spatial_shape == ()
