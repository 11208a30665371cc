"""Regularizer penalties against direct numpy formulas."""

import numpy as np
import pytest
import tensorflow as tf

from keras_introspect.optimize import regularizers as reg


@pytest.fixture
def x():
    return np.random.default_rng(0).normal(size=(3, 5, 6, 2)).astype("float32")


def penalty(r, x):
    return np.asarray(r.penalty(tf.constant(x)))


def test_lp_norm_of_the_mean_subtracted_image(x):
    centred = x - x.mean(axis=(1, 2), keepdims=True)
    expected = (np.abs(centred) ** 6).mean(axis=(1, 2, 3))
    np.testing.assert_allclose(penalty(reg.LpNorm(), x), expected, rtol=1e-4)
    expected = (np.abs(centred) ** 1.5).mean(axis=(1, 2, 3))
    np.testing.assert_allclose(penalty(reg.LpNorm(alpha=1.5), x), expected, rtol=1e-4)


@pytest.mark.parametrize("beta", [2.0, 1.0])
def test_total_variation_by_loops(x, beta):
    rows, H, W, C = x.shape
    expected = np.zeros(rows)
    for r in range(rows):
        terms = [
            ((x[r, i, j + 1, c] - x[r, i, j, c]) ** 2 + (x[r, i + 1, j, c] - x[r, i, j, c]) ** 2)
            ** (beta / 2)
            for i in range(H - 1)
            for j in range(W - 1)
            for c in range(C)
        ]
        expected[r] = np.mean(terms)
    np.testing.assert_allclose(penalty(reg.TotalVariation(beta=beta), x), expected, rtol=1e-4)


def test_total_variation_is_zero_for_a_constant_image():
    flat = np.full((1, 4, 4, 3), 0.3, "float32")
    assert penalty(reg.TotalVariation(beta=1.0), flat)[0] < 1e-3


def test_l2(x):
    np.testing.assert_allclose(penalty(reg.L2(), x), (x**2).mean(axis=(1, 2, 3)), rtol=1e-5)


def test_gaussian_blur_blends_with_a_blurred_copy(x):
    r = reg.GaussianBlur(weight=0.25, sigma=1.0, every=2)
    from keras_introspect.optimize.transforms import gaussian_blur

    blurred = np.asarray(gaussian_blur(tf.constant(x), tf.fill([3], 1.0), 1.0))
    np.testing.assert_allclose(np.asarray(r.project(tf.constant(x))), 0.75 * x + 0.25 * blurred)


def test_history_names_are_unique_and_skip_projections():
    regs = [reg.TotalVariation(), reg.GaussianBlur(), reg.TotalVariation(beta=1.0), reg.L2()]
    assert reg.history_names(regs) == ["total_variation", "total_variation_1", "l2"]


def test_bad_regularizers_are_refused():
    with pytest.raises(TypeError, match="regularizers"):
        reg.check_regularizers(["tv"])
    with pytest.raises(ValueError, match="alpha"):
        reg.LpNorm(alpha=0)
    with pytest.raises(ValueError, match="weight"):
        reg.GaussianBlur(weight=2.0)
