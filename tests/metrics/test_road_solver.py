"""ROAD's batched conjugate-gradient imputation against the sparse direct solve (the
authors' `spsolve`, kept as ``solver="exact"``), on edge cases and every rank."""

import importlib

import keras
import numpy as np
import pytest

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
    rngs = [np.random.default_rng(i) for i in range(6)]
    batch = road_module._impute_many(images, masks, 0.0, rngs, 2, "cg")
    each = np.stack(
        [impute(a, m, noise=0, solver="exact") for a, m in zip(images, masks, strict=True)]
    )
    np.testing.assert_allclose(batch, each, rtol=0, atol=TOLERANCE)
    # a tolerance that cannot be met: the systems run out of steps (some reach a zero
    # residual, converged), then are solved exactly
    monkeypatch.setattr(road_module, "CG_TOLERANCE", 0.0)
    exact_solve, calls = road_module._solve_exact, []
    monkeypatch.setattr(
        road_module, "_solve_exact", lambda *args: calls.append(1) or exact_solve(*args)
    )
    fallen = road_module._impute_many(images, masks, 0.0, rngs, 2, "cg")
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
