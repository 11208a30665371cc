"""One test per private Keras / TensorFlow access (`model/_keras_compat.py`): when an
upgrade breaks one, the failure says which."""

import keras
import numpy as np
import pytest

from keras_introspect.model import _keras_compat as compat

L = keras.layers
VERSION = keras.__version__


def _changed(what):
    return f"Keras {VERSION} changed {what}"


@pytest.fixture(scope="module")
def nested():
    inner_in = keras.Input((6, 6, 1))
    inner = keras.Model(inner_in, L.Conv2D(2, 3, name="conv")(inner_in), name="inner")
    x = keras.Input((6, 6, 1))
    out = L.Dense(3, activation="softmax", name="out")(L.Flatten(name="flat")(inner(x)))
    return keras.Model(x, out, name="outer"), inner


def test_the_graph_of_a_functional_and_of_a_sequential(nested):
    model, _ = nested
    graph = compat.graph_of(model)
    assert graph is model, _changed("where a Functional keeps its graph")
    calls = [op.name for op, *_ in compat.node_calls(graph)]
    assert calls == ["inner", "flat", "out"], _changed("Function._nodes_by_depth / Node")
    sequential = keras.Sequential([keras.Input((4,)), L.Dense(2, name="d")])
    assert compat.graph_of(sequential) is not None, _changed("Sequential._functional")
    assert compat.is_symbolic(model.output) and not compat.is_symbolic(np.zeros(1))


def test_sublayers_and_the_layer_behind_a_tensor(nested):
    model, _ = nested
    direct = [layer.name for layer in compat.direct_sublayers(model)]
    assert "inner" in direct and "conv" not in direct, _changed("Layer._flatten_layers")
    assert "conv" in [layer.name for layer in compat.all_sublayers(model)], _changed(
        "Layer._flatten_layers(recursive=True)"
    )
    assert compat.producing_layer(model.inputs[0]).name == model.layers[0].name, _changed(
        "KerasTensor._keras_history"
    )


def test_build_shapes_of_a_subclassed_model():
    class Net(keras.Model):
        def __init__(self):
            super().__init__()
            self.dense = L.Dense(2)

        def call(self, x):
            return self.dense(x)

    net = Net()
    net.build((None, 5))
    shapes = compat.build_shapes(net)
    assert shapes and next(iter(shapes.values())) == (None, 5), _changed("_build_shapes_dict")


def test_logits_behind_a_softmax_dtype_policy_and_input_spec(nested):
    import tensorflow as tf

    model, _ = nested

    @tf.function
    def logits_of(x):
        out = model(x)
        found = compat.keras_logits(out)
        assert found is not None, _changed("_keras_logits on softmax outputs")
        return found

    assert tuple(logits_of(tf.zeros((1, 6, 6, 1))).shape) == (1, 3)
    policy = compat.dtype_policy(model.get_layer("out"))
    assert policy is not None and policy.compute_dtype == "float32", _changed("_dtype_policy")
    assert compat.is_functional_graph(model), _changed("Functional._inputs_struct")
    from keras_introspect.model._instrument import free_input_shapes

    assert model.input_spec is not None
    with free_input_shapes([model]):  # shadows MANUAL_INPUT_SPEC with None
        assert model.input_spec is None, _changed("Functional._manual_input_spec")
    assert model.input_spec is not None
    assert compat.DTYPE_POLICY in vars(model.get_layer("out")), _changed("_dtype_policy")


def test_tensorboard_summary_metadata():
    metadata = compat.summary_metadata("scalars")
    assert metadata.plugin_data.plugin_name == "scalars", "TensorFlow changed summary_pb2"
