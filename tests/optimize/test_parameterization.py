"""Parameterizations: exact inverses, valid ranges, colour statistics."""

import numpy as np
import pytest
import tensorflow as tf

from keras_introspect.optimize.parameterization import KINDS, Parameterization, colour_matrix


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("value_range", [None, (0.0, 1.0)])
def test_from_image_inverts_to_image(kind, value_range):
    rng = np.random.default_rng(0)
    images = rng.uniform(0.05, 0.95, size=(2, 6, 7, 3)).astype("float32")
    p = Parameterization(kind, (6, 7, 3), value_range)
    z = p.from_image(images)
    assert tuple(z.shape[1:]) == p.param_shape
    np.testing.assert_allclose(np.asarray(p.to_image(z)), images, atol=2e-4)


@pytest.mark.parametrize("kind", ["fft", "decorrelated", "fft_decorrelated"])
def test_squashed_kinds_always_give_valid_images(kind):
    p = Parameterization(kind, (5, 5, 3), value_range=(-2.0, 3.0))
    z = 50 * np.random.default_rng(1).normal(size=(2, *p.param_shape)).astype("float32")
    image = np.asarray(p.to_image(z))
    assert image.min() >= -2.0 and image.max() <= 3.0


def test_pixel_parameters_are_clipped_to_the_range():
    p = Parameterization("pixel", (2, 2, 1), value_range=(0.0, 1.0))
    z = tf.constant([[[[-1.0], [0.5]], [[2.0], [1.0]]]])
    np.testing.assert_array_equal(np.asarray(p.project(z)).ravel(), [0.0, 0.5, 1.0, 1.0])


def test_fft_scales_low_frequencies_up():
    p = Parameterization("fft", (8, 8, 1))
    assert p.spectrum_scale[0, 0] == p.spectrum_scale.max()
    assert p.spectrum_scale[4, 4] == p.spectrum_scale.min()


def test_colour_matrix_is_a_square_root_of_the_data_covariance():
    rng = np.random.default_rng(0)
    mixing = np.array([[1.0, 0.0, 0.0], [0.8, 0.5, 0.0], [0.3, 0.2, 0.4]])
    pixels = rng.normal(size=(20000, 3)) @ mixing.T
    matrix = colour_matrix(pixels.reshape(-1, 10, 10, 3))
    product = matrix @ matrix.T
    covariance = np.cov(pixels, rowvar=False)
    np.testing.assert_allclose(product / product[0, 0], covariance / covariance[0, 0], atol=0.02)
    assert np.linalg.norm(matrix, axis=0).max() == pytest.approx(1.0)


def test_decorrelating_other_than_rgb_needs_data():
    with pytest.raises(ValueError, match="needs a dataset"):
        Parameterization("decorrelated", (4, 4, 1))
    assert Parameterization("decorrelated", (4, 4, 1), colour=[[1.0]]).colour.shape == (1, 1)
