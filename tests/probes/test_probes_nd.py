"""Probes on signals (1-D), flat vectors reshaped inside and volumes (3-D) (issue 22).

The models have planted weights: a Conv1D filter that is a pattern (a matched
filter), a Conv3D box filter; the data have the pattern or a bright cube
planted at known places with known strengths. Exemplars, crops, histograms
and out-of-sample shares are checked against those plants and against numpy.
"""

import keras
import numpy as np
import pytest
from numpy.lib.stride_tricks import sliding_window_view

import keras_introspect as ki

L = keras.layers
PATTERN = np.array([1.0, -1.0, 2.0, 0.5, -1.5], np.float32)
LENGTH = 48


def _const(value):
    return keras.initializers.Constant(value)


def signal_model(flat: bool = False) -> keras.Model:
    """`match` correlates the signal with PATTERN; `deep` pools and sums 3 units."""
    layers = (
        [keras.Input((LENGTH,)), L.Reshape((LENGTH, 1))] if flat else [keras.Input((LENGTH, 1))]
    )
    return keras.Sequential(
        [
            *layers,
            L.Conv1D(1, 5, kernel_initializer=_const(PATTERN[:, None, None]), name="match"),
            L.MaxPooling1D(2, name="pool"),
            L.Conv1D(1, 3, kernel_initializer="ones", name="deep"),
            L.GlobalMaxPooling1D(name="gmp"),
            # class 1 when the strongest `deep` unit exceeds 2
            L.Dense(
                2, kernel_initializer=_const([[-1.0, 1.0]]), bias_initializer=_const([2.0, -2.0])
            ),
        ]
    )


def signals(n=12, seed=0):
    """Noise of std 0.05 with PATTERN planted at `starts` with strength `amplitudes`."""
    rng = np.random.default_rng(seed)
    x = rng.normal(0.0, 0.05, (n, LENGTH)).astype("float32")
    starts = rng.integers(0, LENGTH - 5, n)
    amplitudes = np.linspace(0.2, 2.0, n)[rng.permutation(n)].astype("float32")
    for i in range(n):
        x[i, starts[i] : starts[i] + 5] += amplitudes[i] * PATTERN
    return x, starts, amplitudes


def match(x):
    """Numpy cross-correlation of each signal with PATTERN (valid)."""
    return sliding_window_view(x, 5, axis=1) @ PATTERN


@pytest.mark.parametrize("flat", [False, True])
def test_signal_exemplars_are_the_planted_segments(flat):
    x, starts, amplitudes = signals()
    model = signal_model(flat)
    data = x if flat else x[..., None]
    top = ki.top_activating(model, "match", 0, data, k=4, crops=True)
    strongest = np.argsort(-amplitudes)[:4]
    assert top.indices.tolist() == strongest.tolist()
    np.testing.assert_allclose(top.values, match(x).max(axis=1)[strongest], rtol=1e-5)
    # the strongest unit sits where the pattern was planted; its field is that segment
    assert top.positions[:, 0].tolist() == starts[strongest].tolist()
    assert top.boxes[:, 0].tolist() == [[s, s + 5] for s in starts[strongest]]
    segments = np.stack(
        [x[i, s : s + 5] for i, s in zip(strongest, starts[strongest], strict=True)]
    )
    expected = segments if flat else segments[..., None]
    np.testing.assert_array_equal(top.crops, expected)
    planted = amplitudes[strongest][:, None] * PATTERN
    np.testing.assert_allclose(np.squeeze(top.crops), planted, atol=0.25)


@pytest.mark.parametrize("flat", [False, True])
def test_deeper_signal_crops_contain_the_pattern_at_its_offset(flat):
    """`deep` sees 10 samples (5, pooled by 2, 3 wide): its strongest unit's segment
    holds the whole planted pattern, at the offset the box says."""
    x, starts, amplitudes = signals(seed=1)
    model = signal_model(flat)
    field = ki.Introspector(model).receptive_field("deep")
    assert (field.size, field.stride, field.offset) == ((10,), (2,), (0,))
    top = ki.top_activating_all(model, "deep", x if flat else x[..., None], k=3, crops=True)
    for index, box, segment in zip(top.indices[0], top.boxes[0], top.crops[0], strict=True):
        start, stop = box[0]
        assert stop - start == 10 and start <= starts[index] and starts[index] + 5 <= stop
        np.testing.assert_array_equal(np.squeeze(segment), x[index, start:stop])
        inside = starts[index] - start
        np.testing.assert_allclose(
            np.squeeze(segment)[inside : inside + 5], amplitudes[index] * PATTERN, atol=0.25
        )


def test_signal_histogram_and_out_of_sample_equal_numpy():
    x, _, _ = signals(n=20, seed=2)
    model = signal_model()
    histogram = ki.activation_histogram(model, "match", 0, x[..., None], bins=4)
    np.testing.assert_allclose(histogram.values, match(x).max(axis=1), rtol=1e-5)
    units = ki.activation_histogram(model, "match", 0, x[..., None], aggregate=None, bins=4)
    np.testing.assert_allclose(units.values, match(x).ravel(), rtol=1e-5, atol=1e-6)
    noise = ki.noise_like(x[..., None], n=30, seed=0)
    assert noise.shape == (30, LENGTH, 1)
    result = ki.out_of_sample(model, {"planted": x[..., None], "noise": noise})
    for row, (name, data) in enumerate((("planted", x), ("noise", noise[..., 0]))):
        pooled = sliding_window_view(match(data), 2, axis=1)[:, ::2].max(axis=2)
        deep = sliding_window_view(pooled, 3, axis=1).sum(axis=2).max(axis=1)
        expected = (deep > 2.0).astype(int)  # logits 2 - deep, deep - 2
        assert result.predictions[name].tolist() == expected.tolist(), name
        assert result.counts[row].tolist() == np.bincount(expected, minlength=2).tolist()


def test_randomized_twin_of_a_signal_model_is_probed_alike():
    model = signal_model(flat=True)
    fresh = L.Conv1D(1, 5, name="match")  # a random initializer for the twin to draw from
    model = keras.Sequential([keras.Input((LENGTH,)), L.Reshape((LENGTH, 1)), fresh])
    fresh.set_weights([PATTERN[:, None, None], np.zeros(1, np.float32)])
    twin = ki.randomized_twin(model, seed=0)
    x, _, _ = signals()
    top = ki.top_activating(twin, "match", 0, x, k=2, crops=True)
    kernel = twin.get_layer("match").kernel.numpy()[:, 0, 0]
    assert not np.allclose(kernel, PATTERN)
    scores = sliding_window_view(x, 5, axis=1) @ kernel
    np.testing.assert_allclose(top.values, np.sort(scores.max(axis=1))[::-1][:2], rtol=1e-5)


# ------------------------------------------------------------------------- 3-D
SIZE = (8, 10, 9)


def volume_model() -> keras.Model:
    return keras.Sequential(
        [
            keras.Input((*SIZE, 1)),
            L.Conv3D(1, 3, kernel_initializer=_const(1 / 27), name="box"),
            L.MaxPooling3D(2, name="pool"),
            L.GlobalMaxPooling3D(name="gmp"),
        ]
    )


def volumes(n=6, seed=0):
    """Small noise with a 3x3x3 cube of strength `amplitudes` at `corners`."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(0.0, 0.1, (n, *SIZE)).astype("float32")
    corners = np.stack([rng.integers(0, s - 3, n) for s in SIZE], axis=1)
    amplitudes = np.linspace(1.0, 3.0, n)[rng.permutation(n)].astype("float32")
    for i, (z, r, c) in enumerate(corners):
        x[i, z : z + 3, r : r + 3, c : c + 3] += amplitudes[i]
    return x[..., None], corners, amplitudes


def test_volume_exemplars_are_the_planted_blobs():
    x, corners, amplitudes = volumes()
    model = volume_model()
    top = ki.top_activating(model, "box", 0, x, k=3, crops=True)
    strongest = np.argsort(-amplitudes)[:3]
    assert top.indices.tolist() == strongest.tolist()
    assert top.positions.tolist() == corners[strongest].tolist()
    for i, corner, box, sub in zip(
        strongest, corners[strongest], top.boxes, top.crops, strict=True
    ):
        assert box.tolist() == [[a, a + 3] for a in corner]
        z, r, c = corner
        np.testing.assert_array_equal(sub, x[i, z : z + 3, r : r + 3, c : c + 3])
        assert sub.shape == (3, 3, 3, 1) and sub.min() >= amplitudes[i]
    means = sliding_window_view(x[..., 0], (3, 3, 3), axis=(1, 2, 3)).mean(axis=(-3, -2, -1))
    np.testing.assert_allclose(top.values, means.reshape(6, -1).max(1)[strongest], rtol=1e-5)
    # a pooled unit sees a 4x4x4 sub-volume holding the blob
    pooled = ki.top_activating(model, "pool", 0, x, k=1, crops=True)
    box = pooled.boxes[0]
    assert (box[:, 1] - box[:, 0]).tolist() == [4, 4, 4] and pooled.crops.shape == (1, 4, 4, 4, 1)
    assert np.all(box[:, 0] <= corners[strongest[0]]) and np.all(corners[strongest[0]] < box[:, 1])
    sub = tuple(slice(a, b) for a, b in box)
    np.testing.assert_array_equal(pooled.crops[0], x[strongest[0]][sub])


def test_volume_histogram_equals_numpy():
    x, _, _ = volumes(n=5, seed=3)
    histogram = ki.activation_histogram(volume_model(), "box", 0, x, aggregate="mean", bins=3)
    means = sliding_window_view(x[..., 0], (3, 3, 3), axis=(1, 2, 3)).mean(axis=(-3, -2, -1))
    np.testing.assert_allclose(histogram.values, means.mean(axis=(1, 2, 3)), rtol=1e-5)
