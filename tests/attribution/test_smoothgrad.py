"""SmoothGrad, SquareGrad and VarGrad."""

import keras
import numpy as np
import pytest

import keras_introspect as ki
from keras_introspect.exceptions import KerasIntrospectWarning

L = keras.layers


@pytest.fixture(scope="module")
def model():
    keras.utils.set_random_seed(7)
    return keras.Sequential(
        [
            keras.Input((10, 10, 2)),
            L.Conv2D(4, 3, activation="tanh"),
            L.Conv2D(3, 3, activation="relu"),
            L.Flatten(),
            L.Dense(3),
        ]
    )


def _x(n=3, seed=0):
    return np.random.default_rng(seed).normal(size=(n, 10, 10, 2)).astype("float32")


def test_zero_noise_equals_saliency(model):
    x = _x()
    saliency = ki.Saliency(model, 1, reduce_channels=None).explain(x)
    smooth = ki.SmoothGrad(model, 1, samples=6, noise=0.0, reduce_channels=None).explain(x)
    np.testing.assert_allclose(smooth, saliency, rtol=1e-5, atol=1e-6)
    square = ki.SquareGrad(model, 1, samples=4, noise=0.0, reduce_channels=None).explain(x)
    np.testing.assert_allclose(square, saliency**2, rtol=1e-4, atol=1e-7)
    with pytest.warns(KerasIntrospectWarning, match="VarGrad: no noise"):
        var = ki.VarGrad(model, 1, samples=4, noise=0.0, reduce_channels=None).explain(x)
    np.testing.assert_allclose(var, 0.0, atol=1e-7)


def test_mean_of_noisy_gradients_matches_a_manual_average(model):
    """The noise of draw j for image i is reproducible: check the mean directly."""
    x = _x(n=2)
    sg = ki.SmoothGrad(model, 0, samples=5, noise=0.2, seed=3, reduce_channels=None)
    ids, draws = np.array([0, 1], np.int32), np.arange(5, dtype=np.int32)
    noisy = [np.asarray(sg._perturb(x, ids, draws, None, sg._extra_inputs(0, x.shape[1:])))]
    rows = noisy[0].reshape(10, 10, 10, 2)
    grads = ki.Saliency(model, 0, reduce_channels=None).explain(rows).reshape(2, 5, 10, 10, 2)
    np.testing.assert_allclose(sg.explain(x), grads.mean(axis=1), rtol=1e-4, atol=1e-6)
    spread = rows.reshape(2, 5, -1) - x.reshape(2, 1, -1)
    scale = 0.2 * (x.reshape(2, -1).max(1) - x.reshape(2, -1).min(1))
    np.testing.assert_allclose(spread.std(axis=(1, 2)), scale, rtol=0.05)


def test_same_seed_same_maps_any_batch_size(model):
    x = _x(n=5)
    maps = [
        ki.SmoothGrad(model, 2, samples=7, seed=11, batch_size=b).explain(x) for b in (1, 3, 64)
    ]
    for other in maps[1:]:
        np.testing.assert_allclose(other, maps[0], rtol=1e-5, atol=1e-7)
    different = ki.SmoothGrad(model, 2, samples=7, seed=12).explain(x)
    assert not np.allclose(different, maps[0])
    var = [ki.VarGrad(model, 2, samples=7, seed=1, batch_size=b).explain(x) for b in (2, 50)]
    np.testing.assert_allclose(var[0], var[1], rtol=1e-4, atol=1e-8)
    assert np.all(var[0] >= 0)


def test_bad_options():
    model = keras.Sequential([keras.Input((4, 4, 1)), L.Flatten(), L.Dense(2)])
    with pytest.raises(ValueError, match="noise"):
        ki.SmoothGrad(model, 0, noise=-1)
    with pytest.raises(ValueError, match="samples"):
        ki.SmoothGrad(model, 0, samples=0)
    with pytest.raises(ValueError, match="seed"):
        ki.SmoothGrad(model, 0, seed=None)
