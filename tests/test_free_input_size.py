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


# --------------------------------------------- issue 22: sizes per batch, 1-D, 3-D
def _detector():
    """A detection-style head of free input size: its stride-2 'same' layer pads by an
    amount that depends on the size, so its field is known per size only."""
    keras.utils.set_random_seed(4)
    positive = keras.initializers.RandomUniform(0.1, 1.0)
    inputs = keras.Input((None, None, 3))
    h = L.Conv2D(4, 3, strides=2, padding="same", kernel_initializer=positive, name="stem")(inputs)
    h = L.Conv2D(3, 3, padding="same", kernel_initializer=positive, name="body")(h)
    scores = L.Conv2D(2, 1, name="scores")(h)
    boxes = L.Conv2D(4, 1, name="boxes")(h)
    return keras.Model(inputs, [scores, boxes])


def _support(model, layer, image, position, channel):
    """Bounding box of the input pixels with a non-zero gradient for one unit."""
    probe = keras.Model(model.inputs, model.get_layer(layer).output)
    x = tf.constant(image[None])
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = probe(x)[(0, *position, channel)]
    g = np.abs(tape.gradient(y, x).numpy()[0]).sum(-1) > 0
    return [[int(i.min()), int(i.max()) + 1] for i in np.nonzero(g)]


def test_exemplars_of_a_stream_of_several_sizes_use_each_size_s_field():
    model = _detector()
    rng = np.random.default_rng(0)
    x15 = rng.uniform(0.5, 1, (3, 15, 15, 3)).astype("float32")
    x16 = rng.uniform(0.5, 1, (3, 16, 16, 3)).astype("float32")
    x16[1, 4:9, 6:11] += 3.0  # the strongest image
    intro = ki.Introspector(model)
    assert intro.receptive_field("body") is None  # depends on the size
    result = ki.top_activating(model, "body", 1, (b for b in (x15, x16)), k=6, crops=True)
    assert result.indices[0] == 4
    acts = [intro.activations(x15, "body")["body"], intro.activations(x16, "body")["body"]]
    best = np.concatenate([a[..., 1].reshape(3, -1).max(1) for a in acts])
    np.testing.assert_allclose(result.values, np.sort(best)[::-1], rtol=1e-5)
    for index, position, box, crop in zip(
        result.indices, result.positions, result.boxes, result.crops, strict=True
    ):
        image = x15[index] if index < 3 else x16[index - 3]
        assert box.tolist() == _support(model, "body", image, tuple(position), 1)
        sub = image[box[0, 0] : box[0, 1], box[1, 0] : box[1, 1]]
        np.testing.assert_array_equal(crop[: sub.shape[0], : sub.shape[1]], sub)
    # one compiled scan per size, shared by every channel and call
    before = intro.trace_count
    ki.top_activating(model, "body", 2, (b for b in (x16, x15)), k=2, crops=False)
    ki.activation_histogram(model, "body", 0, x16, bins=2)
    histogram_traces = intro.trace_count - before
    ki.activation_histogram(model, "body", 2, x15, bins=2)
    ki.activation_histogram(model, "body", 1, x16, bins=2)
    assert (histogram_traces, intro.trace_count - before) == (1, 2)


def test_activations_compile_once_per_input_size(fcn):
    intro = ki.Introspector(fcn)
    before = intro.trace_count
    for size in (12, 20, 12, 20):
        acts = intro.activations(_x(size, n=2), "c1")["c1"]
        assert acts.shape == (2, size, size, 4)
    assert intro.trace_count - before == 2
    with pytest.raises(ValueError, match=r"one shape.*\(20, 20, 3\) after \(12, 12, 3\)"):
        intro.activations((b for b in (_x(12, n=1), _x(20, n=1))), "c1")


def test_a_batch_of_mixed_sizes_is_refused_clearly(fcn):
    mixed = [_x(12, n=1)[0], _x(16, n=1)[0]]
    message = r"share one shape.*a list of 2 arrays of shapes \[\(12, 12, 3\), \(16, 16, 3\)\]"
    with pytest.raises(ValueError, match=message):
        ki.top_activating(fcn, "c2", 0, mixed, k=1, crops=False)
    with pytest.raises(ValueError, match=message):
        ki.Introspector(fcn).activations(mixed, "c1")


@pytest.mark.parametrize("rank", [1, 3])
def test_signals_and_volumes_of_any_size(rank):
    """`(None, C)` and `(None, None, None, C)` inputs: exemplars and histograms take the
    size from the data; the boxes are the per-size fields' slices."""
    keras.utils.set_random_seed(5)
    conv = {1: L.Conv1D, 3: L.Conv3D}[rank]
    pool = {1: L.GlobalMaxPooling1D, 3: L.GlobalMaxPooling3D}[rank]
    inputs = keras.Input((*(None,) * rank, 2))
    h = conv(3, 3, strides=2, padding="same", activation="relu", name="c1")(inputs)
    h = conv(3, 3, padding="same", name="c2")(h)
    model = keras.Model(inputs, L.Dense(2)(pool()(h)))
    intro = ki.Introspector(model)
    for n in (9, 10):
        x = np.random.default_rng(n).uniform(size=(4, *(n,) * rank, 2)).astype("float32")
        acts = intro.activations(x, "c2")["c2"][..., 0].reshape(4, -1)
        result = ki.top_activating(model, "c2", 0, x, k=2, crops=True)
        np.testing.assert_allclose(result.values, np.sort(acts.max(1))[::-1][:2], rtol=1e-5)
        field = intro.receptive_field("c2", input_size=(n,) * rank)
        assert field.offset == (-2 - (n % 2),) * rank
        for index, position, box, crop in zip(
            result.indices, result.positions, result.boxes, result.crops, strict=True
        ):
            slices = field.slices(tuple(position), (n,) * rank)
            assert box.tolist() == [[s.start, s.stop] for s in slices]
            assert crop.shape == (*field.size, 2)
            start = [field.offset[a] + position[a] * field.stride[a] for a in range(rank)]
            inside = tuple(
                slice(s.start - b, s.stop - b) for s, b in zip(slices, start, strict=True)
            )
            np.testing.assert_array_equal(crop[inside], x[index][slices])
        histogram = ki.activation_histogram(model, "c2", 0, x, bins=2)
        np.testing.assert_allclose(histogram.values, acts.max(1), rtol=1e-5)


def test_exemplars_of_a_free_size_head_reshaped_to_anchors():
    """Detection heads reshape their map to `(anchors, classes)`: the anchor of the
    strongest score is found; a reshaped grid has no field, so no boxes."""
    model = _detector()
    anchors = L.Reshape((-1, 2), name="anchors")(model.get_layer("scores").output)
    head = keras.Model(model.inputs[0], anchors)
    x = np.random.default_rng(1).uniform(0.5, 1, (4, 12, 12, 3)).astype("float32")
    result = ki.top_activating(head, "anchors", 1, x, k=2, crops=True)
    scores = np.asarray(head(x))[..., 1]  # (4, 36)
    np.testing.assert_allclose(result.values, np.sort(scores.max(1))[::-1][:2], rtol=1e-5)
    assert result.positions[:, 0].tolist() == scores[result.indices].argmax(1).tolist()
    assert result.boxes is None and result.crops is None
