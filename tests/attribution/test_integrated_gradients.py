"""Integrated Gradients: exact on linear models, complete on non-linear ones."""

import keras
import numpy as np
import pytest

import keras_introspect as ki

L = keras.layers


def test_linear_model_is_weight_times_difference():
    keras.utils.set_random_seed(8)
    model = keras.Sequential([keras.Input((4, 5, 2)), L.Flatten(), L.Dense(3)])
    w = model.layers[-1].kernel.numpy()[:, 1].reshape(4, 5, 2)
    x = np.random.default_rng(0).normal(size=(3, 4, 5, 2)).astype("float32")
    base = np.full((4, 5, 2), 0.5, "float32")
    ig = ki.IntegratedGradients(model, 1, steps=3, baseline=base, reduce_channels=None)
    np.testing.assert_allclose(ig.explain(x), (x - base) * w, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("batch_size", [7, 300])
def test_completeness_within_one_percent(batch_size):
    keras.utils.set_random_seed(9)
    model = keras.Sequential(
        [
            keras.Input((8, 8, 1)),
            L.Conv2D(4, 3, activation="softplus"),
            L.Conv2D(4, 3, activation="tanh"),
            L.Flatten(),
            L.Dense(2),
        ]
    )
    x = np.random.default_rng(1).uniform(0, 2, size=(3, 8, 8, 1)).astype("float32")
    ig = ki.IntegratedGradients(
        model, 0, steps=200, baseline=0.0, reduce_channels="sum", batch_size=batch_size
    )
    total = ig.explain(x).sum(axis=(1, 2))
    gap = model(x).numpy()[:, 0] - model(np.zeros_like(x)).numpy()[:, 0]
    assert np.all(np.abs(total - gap) <= 0.01 * np.abs(gap))


def test_bad_baseline_and_steps():
    model = keras.Sequential([keras.Input((4, 4, 1)), L.Flatten(), L.Dense(2)])
    with pytest.raises(ValueError, match="steps"):
        ki.IntegratedGradients(model, 0, steps=1)
    with pytest.raises(ValueError, match="`baseline` of the image shape"):
        ki.IntegratedGradients(model, 0, baseline=np.zeros((3, 3))).explain(np.ones((1, 4, 4, 1)))
