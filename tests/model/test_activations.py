"""Activations equal an independent forward pass, for every kind of model."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import MAKERS, REFERENCES, sample_input

import keras_introspect as ki

CASES = [(name, path) for name in MAKERS for path in REFERENCES[name]]


def _np(v):
    return np.asarray(v)


@pytest.mark.parametrize(("name", "path"), CASES)
def test_activations_match_manual_forward(get_model, name, path):
    model = get_model(name)
    x = sample_input(name, n=7)
    intro = ki.Introspector(model)
    expected = _np(REFERENCES[name][path](model, x))
    by_batch = [intro.activations(x, path, batch_size=b)[path] for b in (1, 3, 7)]
    np.testing.assert_allclose(by_batch[0], expected, atol=1e-5, rtol=0)
    for other in by_batch[1:]:
        np.testing.assert_allclose(other, by_batch[0], atol=1e-6, rtol=0)


def test_tap_gradient_wrt_inner_activation(built_models):
    model = built_models["sequential"]
    x = tf.constant(sample_input("sequential", n=3))
    (h,), out = ki.Introspector(model).tap("pool1")(x)
    # Independent: run the tail by hand from the same activation.
    conv2, gap, dense = (model.get_layer(n) for n in ("conv2", "gap", "out"))
    with tf.GradientTape() as tape:
        tape.watch(h)
        y = dense(gap(conv2(h)))[:, 1]
    expected = tape.gradient(y, h)
    with tf.GradientTape() as tape:
        (h2,), out = ki.Introspector(model).tap("pool1")(x)
        y2 = out[:, 1]
    actual = tape.gradient(y2, h2)
    np.testing.assert_allclose(actual.numpy(), expected.numpy(), atol=1e-6)
    assert float(tf.reduce_sum(tf.abs(actual))) > 0


def test_gradient_through_nested_backbone_layer(built_models):
    """Chain rule: pulling d(score)/d(h) back through input->h gives d(score)/d(input)."""
    model = built_models["nested"]
    x = tf.constant(sample_input("nested", n=2))
    tap = ki.Introspector(model).tap("block_13_expand_relu")

    @tf.function
    def grad(x):
        with tf.GradientTape() as tape:
            (h,), out = tap(x)
            score = tf.reduce_sum(out[:, 0])
        return tape.gradient(score, h), h

    g_h, h = grad(x)
    backbone = model.layers[1]
    to_h = keras.Model(backbone.inputs, backbone.get_layer("block_13_expand_relu").output)
    with tf.GradientTape() as tape:
        tape.watch(x)
        h_manual = to_h(model.layers[0](x))
        pulled_back = tf.reduce_sum(h_manual * g_h)
    with tf.GradientTape() as direct:
        direct.watch(x)
        score = tf.reduce_sum(model(x)[:, 0])
    np.testing.assert_allclose(h.numpy(), h_manual.numpy(), atol=1e-5)
    expected = direct.gradient(score, x).numpy()
    np.testing.assert_allclose(tape.gradient(pulled_back, x).numpy(), expected, atol=1e-6)
    assert np.abs(expected).max() > 0


def test_second_call_does_not_retrace(built_models):
    model = keras.models.clone_model(built_models["functional"])  # a session of its own
    intro = ki.Introspector(model)
    x = sample_input("functional", n=10)
    intro.activations(x, ["add", "flat"], batch_size=4)  # last batch has 2 samples
    assert intro.trace_count == 1
    intro.activations(x[:3], ["add", "flat"], batch_size=4)
    intro.activations(tf.constant(x), ["add", "flat"], batch_size=8)
    ki.Introspector(model).activations(x, ["add", "flat"])  # another object: same session
    assert intro.trace_count == 1
    intro.activations(x, ["add"], batch_size=4)  # other layers: one new function
    assert intro.trace_count == 2


def test_input_kinds_give_the_same_activations(built_models):
    model = built_models["sequential"]
    intro = ki.Introspector(model)
    x = sample_input("sequential", n=6)
    y = np.arange(6)
    expected = intro.activations(x, "conv2")["conv2"]

    def gen():
        for i in range(0, 6, 4):
            yield x[i : i + 4], y[i : i + 4]

    class Batches(keras.utils.PyDataset):
        def __len__(self):
            return 2

        def __getitem__(self, i):
            return x[i * 3 : i * 3 + 3], y[i * 3 : i * 3 + 3]

    inputs = {
        "tensor": tf.constant(x),
        "float64": x.astype("float64"),
        "dataset (x, y) batched": tf.data.Dataset.from_tensor_slices((x, y)).batch(4),
        "dataset unbatched": tf.data.Dataset.from_tensor_slices(x),
        "generator": gen(),
        "py_dataset": Batches(),
    }
    for label, value in inputs.items():
        got = intro.activations(value, "conv2", batch_size=5)["conv2"]
        np.testing.assert_allclose(got, expected, atol=1e-6, err_msg=label)
    single = intro.activations(x[0], "conv2")["conv2"]
    np.testing.assert_allclose(single, expected[:1], atol=1e-6)


def test_multi_input_as_list_and_dict(built_models):
    model = built_models["multi_io"]
    intro = ki.Introspector(model)
    image, meta = sample_input("multi_io", n=4)
    from_list = intro.activations([image, meta], "concat", batch_size=3)["concat"]
    from_data = intro.activations(
        tf.data.Dataset.from_tensor_slices(((image, meta), np.zeros(4))).batch(2),
        "concat",
    )["concat"]
    expected = keras.Model(model.inputs, model.get_layer("concat").output)([image, meta])
    np.testing.assert_allclose(from_list, np.asarray(expected), atol=1e-6)
    np.testing.assert_allclose(from_data, from_list, atol=1e-6)


def test_multi_output_tap_returns_every_output(built_models):
    model = built_models["multi_io"]
    x = sample_input("multi_io", n=2)
    _, outputs = ki.Introspector(model).tap("conv")(x)
    assert isinstance(outputs, list) and len(outputs) == 2
    np.testing.assert_allclose(outputs[1].numpy(), model(x)[1].numpy(), atol=1e-6)


@pytest.mark.parametrize("pooling", ["avg", "max"])
def test_pooling_equals_numpy_reduction(built_models, pooling):
    intro = ki.Introspector(built_models["nested"])
    x = sample_input("nested", n=3)
    path = "mobilenetv2_0.35_32/block_3_expand_relu"
    full = intro.activations(x, path)[path]
    pooled = intro.activations(x, path, pooling=pooling, batch_size=2)[path]
    reduce = np.mean if pooling == "avg" else np.max
    np.testing.assert_allclose(pooled, reduce(full, axis=(1, 2)), atol=1e-5)


def test_progress_bar_when_verbose(built_models, capsys):
    intro = ki.Introspector(built_models["sequential"])
    intro.activations(sample_input("sequential", n=6), "conv1", batch_size=2, verbose=1)
    assert "3/3" in capsys.readouterr().err  # status on stderr (issue 20)


def test_bad_inputs_are_refused_clearly(built_models):
    intro = ki.Introspector(built_models["sequential"])
    x = sample_input("sequential", n=2)
    with pytest.raises(
        ValueError, match=r"Expected input of shape \(None, 16, 16, 3\).*\(2, 8, 8, 3\)"
    ):
        intro.activations(x[:, :8, :8], "conv1")
    bad = x.copy()
    bad[0, 0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN or infinity"):
        intro.activations(bad, "conv1")
    with pytest.raises(ValueError, match="at least one sample"):
        intro.activations(x[:0], "conv1")
    with pytest.raises(ValueError, match="batch_size"):
        intro.activations(x, "conv1", batch_size=0)
    with pytest.raises(ValueError, match="pooling"):
        intro.activations(x, "conv1", pooling="mean")
    with pytest.raises(ValueError, match="spatial axes"):
        intro.activations(x, "out", pooling="avg")
