"""The layer table read from Keras' graph equals the one recorded by a traced pass.

Functional and Sequential models (nested too) are analysed from Keras'
symbolic graph without tracing TensorFlow; every shape, receptive field,
reason and call count must equal what the traced forward pass records (the
brute-force reference), on the fixture models and on `keras.applications`
families nobody here wrote, as built and after a `.keras` round trip.
"""

import keras
import pytest
from conftest import MAKERS

import keras_introspect as ki
from keras_introspect.model.introspector import Introspector

L = keras.layers


def _both(model):
    intro = Introspector(model)
    return intro._graph_results(), intro._traced_results()


def _assert_same(model):
    graph, traced = _both(model)
    assert graph is not None, "the Keras graph should be readable for this model"
    assert graph[0] == traced[0]  # model output shapes
    for path, expected in traced[1].items():
        got = graph[1][path]
        assert got.get("calls") == expected.get("calls"), path
        assert got.get("shape") == expected.get("shape"), path
        field, want = got.get("field"), expected.get("field")
        if isinstance(want, ki.model.receptive_field.Undefined):
            assert isinstance(field, type(want)) and field.reason == want.reason, path
        else:
            assert field == want, path


@pytest.mark.parametrize("name", [n for n in MAKERS if n != "subclassed"])
def test_fixture_models_read_from_the_graph_equal_the_trace(get_model, name):
    _assert_same(get_model(name))


def test_subclassed_models_are_traced(get_model):
    model = get_model("subclassed")
    graph, _ = _both(model)
    assert graph is None
    intro = ki.Introspector(model, input_shape=(10, 10, 2))
    assert intro.layer("sub_conv").output_shape is not None
    assert intro.session.analysis == "trace"


# keras.applications family -> input side (Xception needs at least 71)
FAMILIES = {
    "EfficientNetB0": 32,
    "ResNet50V2": 32,
    "DenseNet121": 32,
    "MobileNetV3Small": 32,
    "Xception": 71,
    "ConvNeXtTiny": 32,
}


@pytest.mark.parametrize("family", list(FAMILIES))
def test_applications_nested_in_a_head_read_from_the_graph_equal_the_trace(family, tmp_path):
    size = FAMILIES[family]
    backbone = getattr(keras.applications, family)(
        weights=None, include_top=False, input_shape=(size, size, 3)
    )
    inputs = keras.Input(backbone.input_shape[1:])
    x = L.Rescaling(1 / 255.0)(inputs)
    x = L.GlobalAveragePooling2D()(backbone(x))
    model = keras.Model(inputs, L.Dense(3)(x))
    _assert_same(model)
    path = tmp_path / "model.keras"
    model.save(path)
    reloaded = keras.saving.load_model(path, compile=False)
    _assert_same(reloaded)
    intro = ki.Introspector(reloaded)
    assert all(info.n_calls == 1 for info in intro.layers)
    assert intro.session.analysis == "keras graph"
    assert intro.trace_count == 0


def test_a_backbone_called_on_another_size_falls_back_to_the_trace():
    backbone = keras.applications.MobileNetV2(
        weights=None, alpha=0.35, include_top=False, input_shape=(None, None, 3)
    )
    inputs = keras.Input((32, 32, 3))
    model = keras.Model(inputs, L.GlobalAveragePooling2D()(backbone(inputs)))
    assert _both(model)[0] is None
    intro = ki.Introspector(model)
    assert intro.layer("block_3_expand_relu").output_shape == (None, 8, 8, 48)
    assert intro.session.analysis == "trace"
