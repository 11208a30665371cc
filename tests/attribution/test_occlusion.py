"""Occlusion against a brute-force loop; receptive-field-only occlusion."""

import keras
import numpy as np
import pytest

import keras_introspect as ki
from keras_introspect.attribution.occlusion import window_starts

T = ki.targets
L = keras.layers


@pytest.fixture(scope="module")
def model():
    keras.utils.set_random_seed(10)
    return keras.Sequential(
        [
            keras.Input((12, 12, 2)),
            L.Conv2D(4, 3, activation="relu", name="conv1"),
            L.MaxPooling2D(name="pool1"),
            L.Conv2D(3, 3, activation="relu", name="conv2"),
            L.Flatten(),
            L.Dense(3, name="out"),
        ]
    )


def _x(n=3, seed=0):
    return np.random.default_rng(seed).normal(size=(n, 12, 12, 2)).astype("float32")


def _brute_force(score, x, window, stride, baseline=0.0):
    """Occlude every window in a Python loop; average the drop over covering windows."""
    n, H, W = x.shape[:3]
    total, count = np.zeros((n, H, W)), np.zeros((H, W))
    base = score(x)
    for r in window_starts(H, window, stride):
        for c in window_starts(W, window, stride):
            occluded = x.copy()
            patch = baseline[r : r + window, c : c + window] if np.ndim(baseline) else baseline
            occluded[:, r : r + window, c : c + window] = patch
            total[:, r : r + window, c : c + window] += (base - score(occluded))[:, None, None]
            count[r : r + window, c : c + window] += 1
    return total / count


def test_non_overlapping_windows_equal_brute_force(model):
    x = _x()
    maps = ki.Occlusion(model, T.Class(2), window=4, batch_size=5).explain(x)
    expected = _brute_force(lambda a: model(a).numpy()[:, 2], x, 4, 4)
    np.testing.assert_allclose(maps, expected, rtol=1e-4, atol=1e-5)


def test_overlapping_windows_and_array_baseline(model):
    x = _x(n=2, seed=1)
    baseline = np.random.default_rng(3).normal(size=(12, 12, 2)).astype("float32")
    maps = ki.Occlusion(model, 1, window=5, stride=3, baseline=baseline).explain(x)
    expected = _brute_force(lambda a: model(a).numpy()[:, 1], x, 5, 3, baseline)
    np.testing.assert_allclose(maps, expected, rtol=1e-4, atol=1e-5)


def test_channel_target_uses_the_truncated_model(model):
    x = _x(n=2)
    conv2 = keras.Model(model.inputs[0], model.get_layer("conv2").output)
    maps = ki.Occlusion(model, T.Channel("conv2", 1, "sum"), window=3).explain(x)
    expected = _brute_force(lambda a: conv2(a).numpy()[..., 1].sum(axis=(1, 2)), x, 3, 3)
    np.testing.assert_allclose(maps, expected, rtol=1e-4, atol=1e-5)


def test_receptive_field_only_gives_the_same_map_with_fewer_windows(model):
    x = _x(n=2, seed=4)
    target = T.Neuron("conv1", 2, (4, 5))
    fast = ki.Occlusion(model, target, window=2, stride=1)
    full = ki.Occlusion(model, target, window=2, stride=1, receptive_field=False)
    np.testing.assert_allclose(fast.explain(x), full.explain(x), rtol=1e-5, atol=1e-6)
    assert fast.n_windows_ < full.n_windows_ / 4
    field = ki.Introspector(model).receptive_field("conv1")
    rows, cols = field.slices((4, 5), (12, 12))
    outside = np.ones((12, 12), bool)  # the field grown by the 2x2 windows that touch it
    outside[rows.start - 1 : rows.stop + 1, cols.start - 1 : cols.stop + 1] = False
    assert np.all(fast.explain(x)[:, outside] == 0)


def test_bad_arguments(model):
    with pytest.raises(ValueError, match="window"):
        ki.Occlusion(model, 0, window=0)
    with pytest.raises(ValueError, match="no larger than the image"):
        ki.Occlusion(model, 0, window=20).explain(_x(n=1))
    with pytest.raises(ValueError, match="receptive_field=True needs a single"):
        ki.Occlusion(model, 0, window=2, receptive_field=True).explain(_x(n=1))
    with pytest.raises(ValueError, match="`baseline` of shape"):
        ki.Occlusion(model, 0, window=2, baseline=np.zeros((3, 3, 2))).explain(_x(n=1))
