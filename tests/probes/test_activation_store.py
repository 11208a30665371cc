"""ActivationStore: the report's scans reduce activations read once, never stale ones."""

import keras
import numpy as np
import pytest

import keras_introspect as ki
from keras_introspect.probes._scan import activation_store, introspector, served_store
from keras_introspect.targets import Channel


def reference(model, layer, x):
    """`layer`'s activations by Keras itself."""
    return np.asarray(keras.Model(model.inputs[0], model.get_layer(layer).output)(x))


def forward_scans(intro) -> list:
    """Compiled keys of scans that run the model up to a layer on images (not on
    stored activations; the report's scan of the model output has no layer)."""
    return [k for k in intro.session.compiled if k[0] == "scan" and k[2] is not None]


@pytest.fixture
def data(digits_cnn):
    model, x, _ = digits_cnn
    model = keras.models.clone_model(model)  # a session of its own: keys are counted
    model.set_weights(digits_cnn[0].get_weights())
    return model, np.ascontiguousarray(x[:120], np.float32)


def test_served_scans_equal_brute_force_with_one_forward_graph(data):
    model, x = data
    intro = introspector(model)
    store = activation_store(intro, x, ["conv1", "conv2"])
    conv1, conv2 = reference(model, "conv1", x), reference(model, "conv2", x)
    with store.serve():
        top = ki.top_activating(model, "conv2", 6, x, k=5, batch_size=7, crops=False)
        # a view of the first rows
        first = ki.top_activating(model, "conv1", 2, x[:50], k=3, crops=False)
        hist = ki.activation_histogram(model, "conv1", 4, x, bins=12, aggregate="max")
        am = ki.ActivationMaximization(model, Channel("conv2", 5), steps=1, init="max")
        best = am.generate(n=2, seed=0, x=x).best_dataset_activation
    values = conv2[..., 6].max(axis=(1, 2))
    np.testing.assert_array_equal(top.indices, np.argsort(-values, kind="stable")[:5])
    np.testing.assert_allclose(top.values, values[top.indices], rtol=1e-5)
    values1 = conv1[:50, ..., 2].max(axis=(1, 2))
    np.testing.assert_array_equal(first.indices, np.argsort(-values1, kind="stable")[:3])
    np.testing.assert_allclose(np.sort(hist.values), np.sort(conv1[..., 4].max((1, 2))), 1e-5)
    assert best == pytest.approx(conv2[..., 5].max(), rel=1e-5)
    # one forward pass of both layers served the four scans: no forward graph of a scan
    assert store.reads == 4
    assert forward_scans(intro) == []
    activation_graphs = [k for k in intro.session.compiled if k[0] == "activations"]
    assert len(activation_graphs) == 1


def test_activation_maximization_scores_its_images_through_the_store(data):
    model, x = data
    intro = introspector(model)
    am = ki.ActivationMaximization(model, Channel("conv2", 5), steps=3, init="max")
    store = activation_store(intro, x, ["conv1", "conv2"])
    with store.serve():
        served = am.generate(n=2, seed=0, x=x)
    kinds = [k[1] for k in intro.session.compiled if k[0] == "activation maximization"]
    assert "score" not in kinds and "loop" in kinds
    # the final images' objective: the max of channel 5 over conv2's positions
    expected = reference(model, "conv2", served.images)[..., 5].max(axis=(1, 2))
    np.testing.assert_allclose(served.activation, expected, rtol=1e-5)
    plain = am.generate(n=2, seed=0, x=x)  # not served: its own compiled score
    np.testing.assert_allclose(served.activation, plain.activation, rtol=1e-5)


def test_other_images_and_images_changed_in_place_read_the_model(data):
    model, x = data
    intro = introspector(model)
    store = activation_store(intro, x, ["conv2"])
    with store.serve():
        ki.top_activating(model, "conv2", 6, x, k=3, crops=False)
        assert store.reads == 1
        copy = x.copy()  # equal images in other memory: not recognised, read as usual
        ki.top_activating(model, "conv2", 6, copy, k=3, crops=False)
        assert store.reads == 1
        assert len(forward_scans(intro)) == 1
        x[:] = x[::-1]  # changed in place after the store read them: never served stale
        top = ki.top_activating(model, "conv2", 6, x, k=3, crops=False)
        assert store.reads == 1 and store.unusable
    values = reference(model, "conv2", x)[..., 6].max(axis=(1, 2))
    np.testing.assert_array_equal(top.indices, np.argsort(-values, kind="stable")[:3])
    # outside `serve` nothing is served
    assert served_store(intro) is None


def test_activations_of_other_weights_are_not_served(data):
    model, x = data
    intro = introspector(model)
    store = activation_store(intro, x, ["conv2"])
    trained = model.get_weights()
    with store.serve():
        ki.top_activating(model, "conv2", 6, x, k=3, crops=False)
        assert store.reads == 1
        # weights changed in place (as a sanity check randomises them): read the model
        model.set_weights([w[::-1].copy() if w.ndim else w for w in trained])
        top = ki.top_activating(model, "conv2", 6, x, k=3, crops=False)
        assert store.reads == 1
        values = reference(model, "conv2", x)[..., 6].max(axis=(1, 2))
        np.testing.assert_array_equal(top.indices, np.argsort(-values, kind="stable")[:3])
        model.set_weights(trained)  # the same weights again: served again
        ki.top_activating(model, "conv2", 6, x, k=3, crops=False)
        assert store.reads == 2


def test_taken_rows_are_served_with_their_own_activations(data):
    model, x = data
    intro = introspector(model)
    store = activation_store(intro, x, ["conv2"])
    rows = np.array([50, 3, 77, 10])
    subset = store.take(rows)
    np.testing.assert_array_equal(subset, x[rows])
    with store.serve():
        top = ki.top_activating(model, "conv2", 1, subset, k=2, crops=False)
    values = reference(model, "conv2", x[rows])[..., 1].max(axis=(1, 2))
    np.testing.assert_array_equal(top.indices, np.argsort(-values, kind="stable")[:2])
    assert store.reads == 1 and forward_scans(intro) == []


def test_stores_are_served_per_thread_and_nested_blocks_restore(data):
    import threading

    model, x = data
    intro = introspector(model)
    first, second = activation_store(intro, x, ["conv2"]), activation_store(intro, x, ["conv1"])
    entered, release, seen = threading.Event(), threading.Event(), []

    def other_thread():
        with second.serve():
            seen.append(served_store(intro))
            entered.set()
            release.wait(10)

    worker = threading.Thread(target=other_thread)
    with first.serve():
        worker.start()
        entered.wait(10)
        assert served_store(intro) is first  # the other thread's store is not served here
        with second.serve():
            assert served_store(intro) is second
        assert served_store(intro) is first
    release.set()
    worker.join()
    assert seen == [second] and served_store(intro) is None


def test_a_store_over_its_budget_or_of_a_stream_is_not_made(data):
    model, x = data
    intro = introspector(model)
    # conv2: 4 x 4 x 16 float32 per image
    assert activation_store(intro, x, ["conv2"], max_bytes=120 * 256 * 4 - 1) is None
    assert activation_store(intro, x, ["conv2"], max_bytes=120 * 256 * 4) is not None
    assert activation_store(intro, iter([x]), ["conv2"]) is None


def test_a_store_it_cannot_read_leaves_activation_maximization_to_its_own_graph():
    inputs = keras.Input((8, 8, 1))
    shared = keras.layers.Dense(4, name="shared")
    conv = keras.layers.Conv2D(4, 3, activation="relu", name="conv")(inputs)
    pooled = keras.layers.GlobalAveragePooling2D(name="gap")(conv)
    outputs = shared(keras.layers.Dense(4)(shared(pooled)))  # a layer called twice
    model = keras.Model(inputs, outputs)
    x = np.random.default_rng(0).random((10, 8, 8, 1)).astype("float32")
    intro = introspector(model)
    store = activation_store(intro, x, ["conv", "shared"])
    am = ki.ActivationMaximization(model, Channel("conv", 1), steps=2, init="max")
    plain = am.generate(n=1, seed=0, x=x).activation
    with store.serve():
        served = am.generate(n=1, seed=0, x=x).activation
    assert store.unusable  # the shared layer cannot be read: nothing is served
    np.testing.assert_allclose(served, plain, rtol=1e-6)


def test_the_report_reads_its_layers_once(data):
    model, x = data
    y = np.arange(len(x)) % 10
    plan = ki.report.plan_report(model, x, y, layers=["conv1", "conv2"], am_steps=2)
    assert plan.store.paths[:2] == (
        introspector(model).layer("conv1").path,
        introspector(model).layer("conv2").path,
    )
    sections = ["exemplars", "histograms", "clustering", "features", "prediction-tree"]
    ki.report.build_report(model, x, y, layers=["conv1", "conv2"], sections=sections, am_steps=2)
    assert forward_scans(introspector(model)) == []
