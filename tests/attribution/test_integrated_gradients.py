"""Integrated Gradients: exact on linear models, complete on non-linear ones."""

import warnings

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


def test_delta_is_the_completeness_error_and_warns_past_the_tolerance():
    """Issue 21, item 4. f(x) = sum(x^3) from a baseline of 0: the attribution of x_i
    is x_i^3 times the trapezoidal rule of int_0^1 3 a^2 da = 1 on n points, which
    overestimates it by exactly h^2 / 12 * (g'(1) - g'(0)) = 1 / (2 (n - 1)^2)."""
    import keras

    import keras_introspect as ki
    from keras_introspect.exceptions import KerasIntrospectWarning

    inputs = keras.Input((2, 2, 1))
    cube = keras.layers.Lambda(lambda t: keras.ops.sum(t**3, axis=(1, 2, 3))[:, None])
    model = keras.Model(inputs, cube(inputs))
    x = np.array([1.0, 2.0, 0.5, 1.5], np.float32).reshape(1, 2, 2, 1)
    score = float((x**3).sum())
    for steps in (3, 5, 21):
        ig = ki.IntegratedGradients(model, 0, steps=steps, reduce_channels="sum", tolerance=None)
        maps = ig.explain(x)
        error = score / (2 * (steps - 1) ** 2)
        np.testing.assert_allclose(ig.score_change_, [score], rtol=1e-6)
        np.testing.assert_allclose(ig.delta_, [error], rtol=1e-4)
        np.testing.assert_allclose(maps.sum(), score + error, rtol=1e-5)
    # 3 steps: 12.5 % of the score change, past the default 5 %; 21 steps: 0.125 %
    with pytest.warns(KerasIntrospectWarning, match=r"1 of 1 images .* up to 12\.5%"):
        ki.IntegratedGradients(model, 0, steps=3).explain(x)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ki.IntegratedGradients(model, 0, steps=21).explain(x)
    # several targets and padded draws (steps not a multiple of the draws per step)
    two = keras.Model(inputs, keras.layers.Concatenate()([cube(inputs), 2 * cube(inputs)]))
    ig = ki.IntegratedGradients(two, ki.targets.Class([0, 1]), steps=5, tolerance=None)
    ig.explain(np.concatenate([x, 2 * x]), batch_size=3)
    changes = np.array([score, 2 * 8 * score])
    np.testing.assert_allclose(ig.score_change_, changes, rtol=1e-5)
    np.testing.assert_allclose(ig.delta_, changes / 32, rtol=1e-4)
