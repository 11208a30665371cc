"""ROAD's batched conjugate-gradient imputation against the sparse direct solve (the
authors' `spsolve`, kept as ``solver="exact"``), on edge cases and every rank."""

import importlib

import keras
import numpy as np
import pytest
from scipy.ndimage import gaussian_filter

from keras_introspect.metrics import road

road_module = importlib.import_module("keras_introspect.metrics.road")
impute = road_module.impute
L = keras.layers
TOLERANCE = 1e-6  # the promise; measured differences are about 1e-13


def _both(image, mask, n_axes=2, noise=0.0, seed=0):
    cg = impute(image, mask, noise=noise, seed=seed, n_axes=n_axes, solver="cg")
    exact = impute(image, mask, noise=noise, seed=seed, n_axes=n_axes, solver="exact")
    return cg, exact


@pytest.mark.parametrize("fraction", [0.05, 0.3, 0.6, 0.9, 0.99])
def test_random_masks_of_a_colour_image_match_the_sparse_solve(fraction):
    rng = np.random.default_rng(0)
    image = rng.random((17, 23, 3))
    mask = rng.random((17, 23)) < fraction
    cg, exact = _both(image, mask)
    np.testing.assert_allclose(cg, exact, rtol=0, atol=TOLERANCE)
    np.testing.assert_array_equal(cg[~mask], image[~mask])


def test_the_same_seeded_noise_is_added_by_both_solvers():
    rng = np.random.default_rng(1)
    image, mask = rng.normal(size=(12, 12, 2)), rng.random((12, 12)) < 0.5
    cg, exact = _both(image, mask, noise=0.3, seed=5)
    np.testing.assert_allclose(cg, exact, rtol=0, atol=TOLERANCE)
    noiseless = impute(image, mask, noise=0, solver="exact")
    assert 0.2 < np.std((cg - noiseless)[mask]) < 0.4  # the noise is there, seeded alike


def test_isolated_groups_of_removed_pixels_are_solved_separately():
    """Single pixels, a blob, a blob in a corner and one along the border: each group is
    its own small system; the batch solves them together."""
    image = np.random.default_rng(2).random((15, 15, 2))
    mask = np.zeros((15, 15), bool)
    mask[7, 7] = mask[2, 11] = True  # single pixels
    mask[4:8, 1:4] = True  # a blob
    mask[:3, :3] = True  # a corner
    mask[14, 5:12] = True  # along the border
    mask[10:13, 9:14] = True
    cg, exact = _both(image, mask)
    np.testing.assert_allclose(cg, exact, rtol=0, atol=TOLERANCE)
    # one pixel: its neighbours' weighted mean, by hand
    v = image
    direct = v[3, 11] + v[2, 10] + v[2, 12] + v[1, 11]
    diagonal = v[1, 10] + v[1, 12] + v[3, 10] + v[3, 12]
    np.testing.assert_allclose(cg[2, 11], direct / 6 + diagonal / 12, atol=1e-12)


def test_one_kept_pixel_fills_the_image_with_its_value():
    """Every removed pixel is the mean of its neighbours and only one value is known: the
    solution is that value everywhere (the hardest system here, 399 unknowns)."""
    image = np.random.default_rng(3).random((20, 20, 2))
    mask = np.ones((20, 20), bool)
    mask[13, 4] = False
    cg, exact = _both(image, mask)
    np.testing.assert_allclose(cg, np.broadcast_to(image[13, 4], cg.shape), atol=TOLERANCE)
    np.testing.assert_allclose(cg, exact, rtol=0, atol=TOLERANCE)


def test_nothing_and_everything_removed():
    image = np.random.default_rng(4).random((5, 6, 1))
    for solver in ("cg", "exact"):
        out = impute(image, np.zeros((5, 6), bool), solver=solver)
        np.testing.assert_array_equal(out, image)
        with pytest.raises(ValueError, match="every pixel"):
            impute(image, np.ones((5, 6), bool), solver=solver)
    with pytest.raises(ValueError, match="solver"):
        impute(image, np.zeros((5, 6), bool), solver="lu")


@pytest.mark.parametrize(
    ("size", "channels"), [((40,), None), ((40,), 2), ((7, 6, 8), None), ((7, 6, 8), 2)]
)
def test_signals_vectors_and_volumes_match_the_sparse_solve(size, channels):
    rng = np.random.default_rng(5)
    image = rng.normal(size=size if channels is None else (*size, channels))
    for fraction in (0.2, 0.7, 0.95):
        mask = rng.random(size) < fraction
        if mask.all():
            mask.flat[0] = False
        cg, exact = _both(image, mask, n_axes=len(size), noise=0.05, seed=1)
        np.testing.assert_allclose(cg, exact, rtol=0, atol=TOLERANCE)


def test_a_batch_equals_one_solve_per_image_and_unconverged_systems_fall_back(monkeypatch):
    rng = np.random.default_rng(6)
    images = rng.random((6, 9, 9, 3))
    masks = rng.random((6, 9, 9)) < np.linspace(0.1, 0.95, 6)[:, None, None]
    batch = road_module._impute_many(images, masks, 2, "cg")
    each = np.stack(
        [impute(a, m, noise=0, solver="exact") for a, m in zip(images, masks, strict=True)]
    )
    np.testing.assert_allclose(batch, each, rtol=0, atol=TOLERANCE)
    # a tolerance that cannot be met: the systems run out of steps (some reach a zero
    # residual, converged), then are solved exactly
    exact_solve, calls = road_module._solve_exact, []
    monkeypatch.setattr(
        road_module, "_solve_exact", lambda *args: calls.append(1) or exact_solve(*args)
    )
    fallen = road_module._impute_many(images, masks, 2, "cg", tol=1e-300)
    assert 0 < len(calls) <= 6
    np.testing.assert_allclose(fallen, each, rtol=0, atol=1e-12)


def test_road_curves_are_the_same_with_both_solvers():
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [keras.Input((10, 10, 3)), L.Conv2D(4, 3, activation="tanh"), L.Flatten(), L.Dense(3)]
    )
    rng = np.random.default_rng(7)
    x = rng.random((4, 10, 10, 3)).astype("float32")
    maps = rng.normal(size=(4, 10, 10))
    kwargs = {"noise": 0.05, "seed": 3, "batch_size": 7}
    cg = road(model, x, maps, 2, **kwargs)
    exact = road(model, x, maps, 2, solver="exact", **kwargs)
    # the imputed copies agree to ~1e-13; the float32 model rounds them alike
    np.testing.assert_allclose(cg.curves, exact.curves, rtol=1e-6, atol=1e-6)
    assert cg.params["solver"] == "cg" and exact.params["solver"] == "exact"
    with pytest.raises(ValueError, match="solver"):
        road(model, x, maps, 2, solver="lu")
    for tol in (0, 1, -1e-3, float("nan")):
        with pytest.raises(ValueError, match="tol"):
            road(model, x, maps, 2, tol=tol)


# ------------------------------------------------ the documented tolerance, warm starts
def _within_the_documented_tolerance(image, mask, n_axes=2, tol=None):
    """`impute` at its default `tol` equals the sparse solve within 1e-6 of the image's
    value range (the promise of the docstring); a tighter `tol` is closer."""
    cg = impute(image, mask, noise=0, n_axes=n_axes)
    exact = impute(image, mask, noise=0, n_axes=n_axes, solver="exact")
    value_range = float(np.ptp(image))
    np.testing.assert_allclose(cg, exact, rtol=0, atol=1e-6 * value_range)
    np.testing.assert_array_equal(cg[~mask], image[~mask])
    tight = impute(image, mask, noise=0, n_axes=n_axes, tol=1e-12)
    np.testing.assert_allclose(tight, exact, rtol=0, atol=1e-10 * value_range)


@pytest.mark.parametrize("scale", [1.0, 255.0, 1e-3])
def test_tiny_images_are_within_the_documented_tolerance(scale):
    rng = np.random.default_rng(10)
    for shape in [(1, 2), (2, 1), (2, 2), (3, 3), (2, 5)]:
        image = scale * rng.random((*shape, 2))
        for removed in range(1, int(np.prod(shape))):
            mask = np.zeros(shape, bool)
            mask.flat[rng.permutation(mask.size)[:removed]] = True
            _within_the_documented_tolerance(image, mask)


@pytest.mark.parametrize("kept", [1, 2, 8])
def test_nearly_everything_removed_is_within_the_documented_tolerance(kept):
    """The hardest systems: a few kept pixels in a 28x28 image of a smooth and a
    rough image (one kept pixel: the solution is its value everywhere)."""
    rng = np.random.default_rng(11)
    yy, xx = np.mgrid[:28, :28] / 27
    smooth = np.stack([np.sin(3 * yy) + xx**2, 5 * yy * xx], axis=-1)
    for image in (smooth, rng.normal(size=(28, 28, 3))):
        mask = np.ones((28, 28), bool)
        mask.flat[rng.permutation(mask.size)[:kept]] = False
        _within_the_documented_tolerance(image, mask)
    mask = np.ones((28, 28), bool)
    mask[27, 0] = False  # one kept corner pixel
    out = impute(smooth, mask, noise=0)
    np.testing.assert_allclose(out, np.broadcast_to(smooth[27, 0], out.shape), atol=1e-6 * 6)


@pytest.mark.parametrize("fraction", [0.5, 0.9])
def test_random_and_blob_shaped_holes_are_within_the_documented_tolerance(fraction):
    """A 64x64 image: pixels removed at random and as one smooth map's top pixels
    (large holes, as ROAD removes them for a smooth saliency map)."""
    rng = np.random.default_rng(16)
    image = gaussian_filter(rng.random((64, 64, 3)), sigma=(2, 2, 0))
    blob = gaussian_filter(rng.normal(size=(64, 64)), sigma=4)
    _within_the_documented_tolerance(image, rng.random((64, 64)) < fraction)
    _within_the_documented_tolerance(image, blob > np.quantile(blob, 1 - fraction))


def test_a_single_removed_pixel_is_exact():
    """One removed pixel is one equation: conjugate gradients solve it in one step,
    to rounding, at any `tol`."""
    rng = np.random.default_rng(12)
    image = rng.random((9, 7, 3))
    for where in [(0, 0), (4, 3), (8, 6), (0, 5)]:
        mask = np.zeros((9, 7), bool)
        mask[where] = True
        cg = impute(image, mask, noise=0, tol=0.5)
        exact = impute(image, mask, noise=0, solver="exact")
        np.testing.assert_allclose(cg, exact, rtol=0, atol=1e-14)


@pytest.mark.parametrize(
    ("size", "fraction"), [((300,), 0.5), ((300,), 0.97), ((9, 8, 7), 0.5), ((9, 8, 7), 0.97)]
)
def test_signals_and_volumes_are_within_the_documented_tolerance(size, fraction):
    """1-D gaps are long chains (the slowest convergence per unknown); 3-D has 26
    neighbours."""
    rng = np.random.default_rng(13)
    image = np.cumsum(rng.normal(size=(*size, 2)), axis=0)  # a random walk: large range
    mask = rng.random(size) < fraction
    mask.flat[0] = False
    _within_the_documented_tolerance(image, mask, n_axes=len(size))


def test_warm_starts_save_steps_and_change_nothing():
    """ROAD's removed sets are nested (most removed first); each solve starts from the
    one before. Counted, not timed: fewer conjugate-gradient steps, the same images
    (within the tolerance), the first count alike."""
    rng = np.random.default_rng(14)
    images = rng.random((5, 20, 20, 2))
    ranks = np.stack([rng.permutation(400).reshape(20, 20) for _ in range(5)])
    counts = np.array([360, 280, 200, 120, 40])
    warm, warm_steps = road_module._solve_cg(images, ranks, counts, 2, 1e-8, warm=True)
    cold, cold_steps = road_module._solve_cg(images, ranks, counts, 2, 1e-8, warm=False)
    assert warm_steps[0] == cold_steps[0]
    assert (warm_steps[1:] < cold_steps[1:]).all(), (warm_steps, cold_steps)
    for j, count in enumerate(counts):
        pairs = zip(images, ranks, strict=True)
        exact = np.stack([impute(a, r < count, noise=0, solver="exact") for a, r in pairs])
        np.testing.assert_allclose(warm[j], exact, rtol=0, atol=1e-6)
        np.testing.assert_allclose(cold[j], exact, rtol=0, atol=1e-6)
    # a count repeated needs no step from the solution of the same system
    _, steps = road_module._solve_cg(images, ranks, [200, 200], 2, 1e-8)
    assert steps[0] > 0 and steps[1] == 0


def test_road_at_unsorted_and_repeated_percentages_equals_the_exact_solver():
    keras.utils.set_random_seed(1)
    model = keras.Sequential([keras.Input((9, 11, 2)), L.Flatten(), L.Dense(2)])
    rng = np.random.default_rng(15)
    x = rng.random((5, 9, 11, 2)).astype("float32")
    maps = rng.normal(size=(5, 9, 11))
    kwargs = {"percentages": [0.5, 0.1, 0.9, 0.5], "noise": 0.02, "seed": 4, "batch_size": 3}
    cg = road(model, x, maps, 1, **kwargs)
    exact = road(model, x, maps, 1, solver="exact", **kwargs)
    np.testing.assert_allclose(cg.curves, exact.curves, rtol=1e-5, atol=1e-5)
    # a repeated percentage: the same imputed copy, its own noise (percentage index k)
    quiet = road(model, x, maps, 1, **{**kwargs, "noise": 0.0})
    np.testing.assert_allclose(quiet.curves[:, 0], quiet.curves[:, 3], rtol=0, atol=1e-6)
    assert not np.allclose(cg.curves[:, 0], cg.curves[:, 3], rtol=0, atol=1e-3)
    # a linear model: the curve is w . (imputed image), recomputed by hand
    w, bias = (np.asarray(v, np.float64) for v in model.layers[-1].get_weights())
    for k, p in enumerate(kwargs["percentages"]):
        count = round(p * 99)
        for i in range(5):
            order = np.argsort(-maps[i].ravel(), kind="stable")
            mask = np.zeros(99, bool)
            mask[order[:count]] = True
            # the documented stream: row k of image i's draws, at the removed pixels
            draws = np.random.default_rng([4, 2, i]).standard_normal((4, 9, 11, 2), np.float32)
            draw = draws[k]
            image = impute(x[i], mask.reshape(9, 11), noise=0, solver="exact")
            image[mask.reshape(9, 11)] += 0.02 * draw[mask.reshape(9, 11)]
            expected = image.ravel() @ w[:, 1] + bias[1]
            np.testing.assert_allclose(cg.curves[i, k], expected, rtol=1e-5, atol=1e-5)
