"""Random transforms: exact on known cases, linear with an exact adjoint."""

import numpy as np
import pytest
import scipy.ndimage
import tensorflow as tf

from keras_introspect.optimize import transforms as tr


def images(rows=2, size=7, channels=3, seed=0):
    return np.random.default_rng(seed).normal(size=(rows, size, size, channels)).astype("float32")


def run(transforms, x, u):
    return np.asarray(tr.apply(transforms, tf.constant(x), tf.constant(u, tf.float32)))


def test_identity_parameters_leave_the_image_unchanged():
    x = images()
    out = run([tr.Jitter(0), tr.Rotate(0.0), tr.Scale(1.0)], x, np.full((2, 4), 0.5))
    np.testing.assert_allclose(out, x, atol=1e-6)


def test_jitter_shifts_by_whole_pixels():
    x = images(rows=1, size=9)
    # u -> floor(u * 5) - 2: 0.7 -> +1 row, 0.1 -> -2 columns
    out = run([tr.Jitter(2)], x, [[0.7, 0.1]])
    np.testing.assert_allclose(out[0, 1:, :-2], x[0, :-1, 2:], atol=1e-6)


def test_rotation_by_90_degrees_is_a_grid_permutation():
    x = images(rows=1, size=6)
    out = run([tr.Rotate((90.0, 90.0))], x, [[0.0]])
    candidates = [np.rot90(x[0], k, axes=(0, 1)) for k in (1, 3)]
    assert min(np.abs(out[0] - c).max() for c in candidates) < 1e-5


def test_scale_two_magnifies_about_the_centre():
    x = images(rows=1, size=9, channels=1)
    out = run([tr.Scale((2.0, 2.0))], x, [[0.0]])
    # output pixel (4 + 2d) samples source pixel 4 + d
    np.testing.assert_allclose(out[0, ::2, ::2][1:4, 1:4], x[0, 3:6, 3:6], atol=1e-6)


def test_geometric_transforms_compose_into_one_resampling():
    x = images(rows=1, size=9)
    two = run([tr.Jitter(2), tr.Jitter(2)], x, [[0.7, 0.5, 0.7, 0.5]])  # +1 then +1 row
    one = run([tr.Jitter(2)], x, [[0.9, 0.5]])  # +2 rows
    np.testing.assert_allclose(two, one, atol=1e-6)


@pytest.mark.parametrize(
    "transforms",
    [[tr.Rotate(30.0), tr.Scale((0.8, 1.3)), tr.Jitter(2)], [tr.Blur(1.5)]],
)
def test_transforms_are_linear_with_an_exact_adjoint(transforms):
    """<T x, y> = <x, T^T y>: the gradient is the adjoint of the map itself."""
    x, y = images(seed=1), images(seed=2)
    u = tf.constant(np.random.default_rng(3).random((2, tr.n_random(transforms))), tf.float32)
    xt = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(xt)
        inner = tf.reduce_sum(tr.apply(transforms, xt, u) * y)
    adjoint = tape.gradient(inner, xt)
    np.testing.assert_allclose(float(inner), float(tf.reduce_sum(xt * adjoint)), rtol=1e-4)


def test_blur_matches_scipy_with_mirrored_borders():
    x = images(rows=2, size=12, channels=2)
    out = np.asarray(tr.gaussian_blur(tf.constant(x), tf.constant([1.0, 0.0]), 1.0))
    expected = scipy.ndimage.gaussian_filter(x[0], sigma=(1, 1, 0), mode="mirror", truncate=3.0)
    np.testing.assert_allclose(out[0], expected, atol=1e-5)
    np.testing.assert_allclose(out[1], x[1], atol=1e-6)  # sigma 0 leaves the row as is


def test_invalid_arguments_are_named():
    with pytest.raises(ValueError, match="pixels"):
        tr.Jitter(-1)
    with pytest.raises(ValueError, match="factors"):
        tr.Scale((0.0, 1.0))
    with pytest.raises(TypeError, match="transforms"):
        tr.check_transforms(["jitter"])
