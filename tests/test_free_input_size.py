"""Models that take images of any size (`Input((None, None, 3))`, fully convolutional).

Issue 18, D18: the spatial size comes from the data wherever the model does
not fix it; every result equals an independent computation.
"""

import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_introspect as ki

T = ki.targets
L = keras.layers


@pytest.fixture(scope="module")
def fcn():
    keras.utils.set_random_seed(0)
    inputs = keras.Input((None, None, 3))
    h = L.Conv2D(4, 3, padding="same", activation="relu", name="c1")(inputs)
    h = L.MaxPooling2D(name="p1")(h)
    h = L.Conv2D(4, 3, padding="same", activation="relu", name="c2")(h)
    outputs = L.Dense(3, name="out")(L.GlobalAveragePooling2D(name="gap")(h))
    return keras.Model(inputs, outputs)


def _x(size, n=3, seed=0):
    return np.random.default_rng(seed).uniform(size=(n, size, size, 3)).astype("float32")


def _gradient(model, x, score):
    xt = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(xt)
        value = tf.reduce_sum(score(xt))
    return tape.gradient(value, xt).numpy()


@pytest.mark.parametrize("size", [16, 24])
def test_saliency_of_a_class_and_a_neuron_at_any_size(fcn, size):
    x = _x(size)
    maps = ki.Saliency(fcn, 1, reduce_channels=None).explain(x)
    np.testing.assert_allclose(maps, _gradient(fcn, x, lambda t: fcn(t)[:, 1]), atol=1e-6)
    c2 = keras.Model(fcn.inputs, fcn.get_layer("c2").output)
    neuron = ki.Saliency(fcn, T.Neuron("c2", 1, (2, 3)), reduce_channels=None).explain(x)
    expected = _gradient(fcn, x, lambda t: c2(t)[:, 2, 3, 1])
    np.testing.assert_allclose(neuron, expected, atol=1e-6)


def test_occlusion_equals_a_brute_force_loop(fcn):
    x = _x(16, n=2)
    maps = ki.Occlusion(fcn, 2, window=4).explain(x)
    base = np.asarray(fcn(x))[:, 2]
    expected = np.zeros((2, 16, 16), np.float32)
    for r in range(0, 16, 4):
        for c in range(0, 16, 4):
            occluded = x.copy()
            occluded[:, r : r + 4, c : c + 4] = 0.0
            expected[:, r : r + 4, c : c + 4] = (base - np.asarray(fcn(occluded))[:, 2])[
                :, None, None
            ]
    np.testing.assert_allclose(maps, expected, rtol=1e-4, atol=1e-5)
    # an inner neuron: only its receptive field is occluded, the map is the same
    alive = ki.Introspector(fcn).activations(x, "c2")["c2"].min(axis=0)  # (8, 8, 4)
    row, col, channel = np.unravel_index(np.argmax(alive), alive.shape)
    assert alive[row, col, channel] > 0
    target = T.Neuron("c2", int(channel), (int(row), int(col)))  # alive on both images
    restricted = ki.Occlusion(fcn, target, window=2).explain(x)
    whole = ki.Occlusion(fcn, target, window=2, receptive_field=False).explain(x)
    np.testing.assert_allclose(restricted, whole, rtol=1e-5, atol=1e-6)


def test_a_neuron_outside_the_layer_for_these_images_is_an_error(fcn):
    with pytest.raises(tf.errors.InvalidArgumentError, match="Neuron position outside layer"):
        ki.Saliency(fcn, T.Neuron("c2", 0, (9, 0))).explain(_x(16))  # c2 is 8 x 8 here
    with pytest.raises(ValueError, match="cannot count from the end"):
        ki.Saliency(fcn, T.Neuron("c2", 0, (-1, 0))).explain(_x(16))


def test_exemplars_find_the_strongest_units_with_boxes_in_the_images(fcn):
    x = _x(16, n=6)
    result = ki.top_activating(fcn, "c2", 2, x, k=3, crops=True)
    acts = ki.Introspector(fcn).activations(x, "c2")["c2"][..., 2]
    best = acts.reshape(6, -1).max(axis=1)
    np.testing.assert_allclose(result.values, np.sort(best)[::-1][:3], rtol=1e-6)
    for index, position, box in zip(result.indices, result.positions, result.boxes, strict=True):
        assert acts[index][tuple(position)] == pytest.approx(best[index])
        field = ki.Introspector(fcn).receptive_field("c2")
        rows, cols = field.slices(tuple(position), (16, 16))
        assert box.tolist() == [[rows.start, rows.stop], [cols.start, cols.stop]]


def test_activation_maximization_needs_a_size_for_a_free_size_model(fcn):
    with pytest.raises(ValueError, match=r"any size .* image_shape=\(H, W, C\)"):
        ki.ActivationMaximization(fcn, T.Channel("c2", 1), steps=2).generate(n=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = ki.ActivationMaximization(
            fcn, T.Channel("c2", 1), steps=3, image_shape=(12, 12, 3)
        ).generate(n=2)
    assert result.images.shape == (2, 12, 12, 3)
    (acts,) = ki.Introspector(fcn).activations(result.images, "c2").values()
    np.testing.assert_allclose(result.activation, acts[..., 1].max(axis=(1, 2)), rtol=1e-5)


def test_probes_clusterers_and_metrics_take_the_size_from_the_data(fcn):
    x = _x(16, n=4)
    acts = ki.Introspector(fcn).activations(x, "c2")["c2"]
    histogram = ki.activation_histogram(fcn, "c2", 1, x, aggregate="max", bins=3)
    np.testing.assert_allclose(histogram.values, acts[..., 1].max(axis=(1, 2)), rtol=1e-6)
    labels = ki.PixelClusterer(
        fcn, "c2", method="kmeans", n_clusters=2, random_state=0
    ).fit_transform(x)
    assert labels.shape == (4, 8, 8)
    pooled = ki.ImageClusterer(
        fcn, "c2", method="kmeans", n_clusters=2, pooling="avg", random_state=0
    ).fit(x)
    assert pooled.labels_.shape == (4,)
    curves = ki.metrics.deletion(fcn, x, x[..., 0], 1, steps=2, normalize=False).curves
    np.testing.assert_allclose(curves[:, 0], np.asarray(fcn(x))[:, 1], rtol=1e-5)


def test_layerwise_purity_on_a_model_of_any_input_size(fcn):
    """Its layers' sizes are unknown before the images are read: purity reads them
    one pass per layer, and every layer's clusters equal its own ImageClusterer's."""
    from sklearn.metrics import adjusted_rand_score

    x = _x(12, n=30)
    y = np.arange(30) % 3
    result = ki.layerwise_purity(
        fcn, x, y, layers=["c1", "gap"], max_features=None, seed=0, method="kmeans"
    )
    assert result.n_features.tolist() == [12 * 12 * 4, 4]
    for path, ari in zip(result.layers, result.ari, strict=True):
        alone = ki.ImageClusterer(
            fcn, path, method="kmeans", n_clusters=3, max_features=None, random_state=0
        ).fit(x)
        assert ari == pytest.approx(adjusted_rand_score(y, alone.labels_), abs=1e-12)
