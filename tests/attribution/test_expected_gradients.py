"""Expected Gradients: exact on linear and quadratic models given its draws."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_introspect as ki

L = keras.layers
RNG = np.random.default_rng(0)
X = RNG.random((3, 5, 5, 2)).astype("float32")
BASELINES = RNG.random((4, 5, 5, 2)).astype("float32")


def test_linear_model_gives_the_mean_difference_times_the_weights():
    keras.utils.set_random_seed(1)
    model = keras.Sequential([keras.Input((5, 5, 2)), L.Flatten(), L.Dense(3, use_bias=False)])
    w = model.layers[-1].get_weights()[0][:, 2].reshape(5, 5, 2)
    eg = ki.ExpectedGradients(model, 2, baselines=BASELINES, samples=7, reduce_channels=None)
    maps = eg.explain(X)
    picks, _ = eg.draws_()
    expected = (X - BASELINES[picks].mean(axis=0)) * w
    np.testing.assert_allclose(maps, expected, rtol=1e-5, atol=1e-6)
    # signed: the default reduction sums the channels
    summed = ki.ExpectedGradients(model, 2, baselines=BASELINES, samples=7).explain(X)
    np.testing.assert_allclose(summed, expected.sum(-1), rtol=1e-5, atol=1e-6)


def test_quadratic_model_and_one_baseline_give_the_path_average_exactly():
    """f = sum(x^2), one baseline b: the gradient at b + a (x - b) is 2 (b + a (x - b)),
    so the map is (x - b) * 2 (b + mean(a) (x - b)), -> x^2 - b^2 as mean(a) -> 1/2."""
    inputs = keras.Input((5, 5, 2))
    square = L.Lambda(lambda t: keras.ops.sum(t**2, axis=(1, 2, 3))[:, None])
    model = keras.Model(inputs, square(inputs))
    b = BASELINES[:1]
    eg = ki.ExpectedGradients(model, 0, baselines=b, samples=5, reduce_channels=None, seed=3)
    _, alphas = eg.draws_()
    expected = (X - b) * 2 * (b + alphas.mean() * (X - b))
    np.testing.assert_allclose(eg.explain(X), expected, rtol=1e-5, atol=1e-6)


def test_a_nonlinear_model_equals_the_draws_done_by_hand():
    keras.utils.set_random_seed(2)
    model = keras.Sequential(
        [keras.Input((5, 5, 2)), L.Conv2D(3, 3, activation="relu"), L.Flatten(), L.Dense(2)]
    )
    eg = ki.ExpectedGradients(model, 1, baselines=BASELINES, samples=6, reduce_channels=None)
    picks, alphas = eg.draws_()
    expected = np.zeros_like(X)
    for k, a in zip(picks, alphas, strict=True):
        point = tf.constant(BASELINES[k] + a * (X - BASELINES[k]))
        with tf.GradientTape() as tape:
            tape.watch(point)
            score = model(point)[:, 1]
        expected += (X - BASELINES[k]) * tape.gradient(score, point).numpy() / len(picks)
    np.testing.assert_allclose(eg.explain(X), expected, rtol=1e-4, atol=1e-6)
    # the same maps for any batch size (the draws are per method, not per batch) and streams
    for batch_size in (1, 5, 100):
        np.testing.assert_allclose(
            eg.explain(X, batch_size=batch_size), expected, rtol=1e-4, atol=1e-6
        )
    stream = tf.data.Dataset.from_tensor_slices(X).batch(2)
    np.testing.assert_allclose(eg.explain(stream), expected, rtol=1e-4, atol=1e-6)


def test_bad_arguments_are_refused():
    model = keras.Sequential([keras.Input((5, 5, 2)), L.Flatten(), L.Dense(2)])
    with pytest.raises(ValueError, match="baselines"):
        ki.ExpectedGradients(model, 0, baselines=np.zeros((0, 5, 5, 2)))
    with pytest.raises(ValueError, match="finite"):
        ki.ExpectedGradients(model, 0, baselines=np.full((2, 5, 5, 2), np.nan))
    with pytest.raises(ValueError, match="samples"):
        ki.ExpectedGradients(model, 0, baselines=BASELINES, samples=0)
    with pytest.raises(ValueError, match="image shape"):
        ki.ExpectedGradients(model, 0, baselines=np.zeros((2, 4, 4, 2))).explain(X)
    with pytest.raises(TypeError):
        ki.ExpectedGradients(model, 0)  # baselines are required
