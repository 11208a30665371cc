"""ROAD (Rong et al. 2022): the noisy linear imputation against hand-written
weighted means and linear systems, a linear model's curves recomputed from the
imputed images, MoRF against LeRF on a planted map, seeds and batch sizes."""

import importlib

import keras
import numpy as np
import pytest

from keras_introspect.metrics import ROADResult, road
from keras_introspect.metrics.road import impute

road_module = importlib.import_module("keras_introspect.metrics.road")

L = keras.layers
D, G = 1 / 6, 1 / 12  # direct and diagonal neighbour weights


def linear_model(weights):
    """f(x) = sum(w * x), no bias."""
    model = keras.Sequential([keras.Input(weights.shape), L.Flatten(), L.Dense(1, use_bias=False)])
    model.layers[-1].set_weights([weights.reshape(-1, 1).astype("float32")])
    return model


@pytest.fixture(scope="module")
def small_cnn():
    keras.utils.set_random_seed(0)
    return keras.Sequential(
        [keras.Input((8, 8, 3)), L.Conv2D(4, 3, activation="tanh"), L.Flatten(), L.Dense(3)]
    )


# ----------------------------------------------------------------- imputation
def test_one_removed_pixel_is_the_weighted_mean_of_its_neighbours():
    v = np.random.default_rng(0).uniform(size=(3, 3, 2))
    mask = np.zeros((3, 3), bool)
    mask[1, 1] = True
    direct = v[0, 1] + v[1, 0] + v[1, 2] + v[2, 1]
    diagonal = v[0, 0] + v[0, 2] + v[2, 0] + v[2, 2]
    out = impute(v, mask, noise=0)
    np.testing.assert_allclose(out[1, 1], D * direct + G * diagonal, rtol=1e-12)
    np.testing.assert_array_equal(out[~mask], v[~mask])  # kept pixels untouched
    # a corner: 3 neighbours inside, their weights renormalised (sum 5/12)
    corner = np.zeros((3, 3), bool)
    corner[0, 0] = True
    expected = (D * v[0, 1] + D * v[1, 0] + G * v[1, 1]) / (2 * D + G)
    np.testing.assert_allclose(impute(v, corner, noise=0)[0, 0], expected, rtol=1e-12)
    # a 2-d image is one channel
    np.testing.assert_allclose(impute(v[..., 0], mask, noise=0)[1, 1], out[1, 1, 0], rtol=1e-12)


def test_a_removed_block_solves_the_linear_system_written_out():
    v = np.random.default_rng(1).normal(size=(4, 4, 2))
    mask = np.zeros((4, 4), bool)
    mask[1:3, 1:3] = True  # unknowns a=(1,1), b=(1,2), c=(2,1), d=(2,2), all 8 neighbours inside
    A = np.array(
        [
            [1, -D, -D, -G],  # a: b, c direct, d diagonal
            [-D, 1, -G, -D],  # b: a, d direct, c diagonal
            [-D, -G, 1, -D],  # c: a, d direct, b diagonal
            [-G, -D, -D, 1],  # d: b, c direct, a diagonal
        ]
    )
    rhs = np.stack(
        [
            G * v[0, 0] + D * v[0, 1] + G * v[0, 2] + D * v[1, 0] + G * v[2, 0],
            G * v[0, 1] + D * v[0, 2] + G * v[0, 3] + D * v[1, 3] + G * v[2, 3],
            G * v[1, 0] + D * v[2, 0] + G * v[3, 0] + D * v[3, 1] + G * v[3, 2],
            G * v[1, 3] + D * v[2, 3] + G * v[3, 1] + D * v[3, 2] + G * v[3, 3],
        ]
    )
    expected = np.linalg.solve(A, rhs)  # (4, 2): both channels at once
    out = impute(v, mask, noise=0)
    np.testing.assert_allclose(out[mask], expected, rtol=1e-10, atol=1e-12)


def test_a_constant_image_stays_constant_and_the_noise_is_seeded():
    image = np.broadcast_to(np.array([0.2, -1.0, 3.0]), (6, 5, 3))
    mask = np.random.default_rng(2).random((6, 5)) < 0.6
    np.testing.assert_allclose(impute(image, mask, noise=0), image, atol=1e-12)
    noisy = impute(image, mask, noise=0.5, seed=3)
    np.testing.assert_array_equal(noisy, impute(image, mask, noise=0.5, seed=3))
    assert not np.array_equal(noisy, impute(image, mask, noise=0.5, seed=4))
    np.testing.assert_array_equal(noisy[~mask], image[~mask])
    residual = (noisy - image)[mask]
    assert residual.shape == (mask.sum(), 3) and 0.3 < residual.std() < 0.7


def test_impute_rejects_bad_arguments():
    image = np.zeros((4, 4, 1))
    with pytest.raises(ValueError, match="mask"):
        impute(image, np.zeros((4, 3), bool))
    with pytest.raises(ValueError, match="mask"):
        impute(image, np.zeros((4, 4), int))
    with pytest.raises(ValueError, match="every pixel"):
        impute(image, np.ones((4, 4), bool))
    with pytest.raises(ValueError, match="image"):
        impute(np.zeros((4,)), np.zeros(4, bool))
    with pytest.raises(ValueError, match="noise"):
        impute(image, np.zeros((4, 4), bool), noise=-1)


# ------------------------------------------------------------- the linear model
@pytest.mark.parametrize("order", ["morf", "lerf"])
@pytest.mark.parametrize("noise", [0.0, 0.05])
def test_linear_model_curves_equal_the_hand_computed_ones(order, noise):
    rng = np.random.default_rng(4)
    w = rng.normal(size=(6, 7, 2))
    model = linear_model(w)
    x = rng.uniform(size=(3, 6, 7, 2)).astype("float32")
    maps = (w * x).sum(axis=-1)  # gradient x input summed over the channels; no ties
    percentages = (0.1, 0.25, 0.5, 0.9)
    result = road(model, x, maps, 0, percentages=percentages, order=order, noise=noise, seed=7)
    n_pixels = 6 * 7
    expected = np.empty((3, 4))
    for i in range(3):
        flat = maps[i].ravel()
        ranking = np.argsort(-flat if order == "morf" else flat)
        for k, p in enumerate(percentages):
            mask = np.zeros(n_pixels, bool)
            mask[ranking[: round(p * n_pixels)]] = True
            mask = mask.reshape(6, 7)
            imputed = impute(x[i], mask, noise=0)
            # the documented stream: row k of image i's draws, at the removed pixels
            draws = np.random.default_rng([7, 2, i]).standard_normal((4, 6, 7, 2), np.float32)
            draw = draws[k]
            imputed[mask] += noise * draw[mask]
            expected[i, k] = (w * imputed).sum()
    assert isinstance(result, ROADResult) and result.measure == f"road {order}"
    np.testing.assert_allclose(result.curves, expected, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(result.values, expected.mean(axis=1), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(result.image_scores, (w * x).sum(axis=(1, 2, 3)), rtol=1e-5)
    np.testing.assert_array_equal(result.percentages, percentages)
    assert result.mean == pytest.approx(expected.mean(), rel=1e-4, abs=1e-4)
    assert [row["image"] for row in result.table] == [0, 1, 2]
    assert "road" in repr(result)


# ------------------------------------------------------------- MoRF and LeRF
def test_morf_and_lerf_on_a_planted_map():
    block = np.zeros((8, 8, 1))
    block[2:5, 2:5] = 1.0  # the model sums these 9 pixels
    model = linear_model(block)
    x = block[None].astype("float32")  # a bright block on a black background
    planted = block[None, ..., 0]  # the map points at the block: ties elsewhere
    morf = road(model, x, planted, 0, order="morf", noise=0)
    lerf = road(model, x, planted, 0, order="lerf", noise=0)
    assert morf.image_scores[0] == pytest.approx(9.0)
    # MoRF: from 20 % (13 pixels) the block is gone and imputed from the black background
    np.testing.assert_allclose(morf.curves[0, 1:], 0.0, atol=1e-6)
    assert 0 < morf.curves[0, 0] < 9  # 10 %: 6 of the 9 block pixels
    # LeRF: the 55 background pixels go first; the block is intact up to 80 % (51 pixels);
    # at 90 % (58 pixels) only 6 block pixels are kept, all 1, so everything imputes to 1
    np.testing.assert_allclose(lerf.curves[0], 9.0, rtol=1e-6)
    assert morf.values[0] < lerf.values[0]
    # the reversed map swaps the roles
    reversed_morf = road(model, x, -planted, 0, order="morf", noise=0)
    np.testing.assert_allclose(reversed_morf.curves, lerf.curves, rtol=1e-6, atol=1e-6)


# ---------------------------------------------------------- seeds, batch sizes
@pytest.mark.parametrize("group_values", [None, 1])
def test_batch_size_does_not_change_the_result_and_the_seed_does(
    small_cnn, group_values, monkeypatch
):
    if group_values is not None:  # the images imputed a batch's worth at a time, not all
        monkeypatch.setattr(road_module, "GROUP_VALUES", group_values)
    rng = np.random.default_rng(5)
    x = rng.uniform(size=(3, 8, 8, 3)).astype("float32")
    maps = rng.integers(0, 3, size=(3, 8, 8)).astype("float32")  # many ties
    kwargs = {"percentages": (0.2, 0.5, 0.8), "noise": 0.1, "seed": 11}
    results = [road(small_cnn, x, maps, 1, batch_size=b, **kwargs) for b in (1, 4, 64)]
    if group_values is not None:  # every grouping gives the same values
        default = road(small_cnn, x, maps, 1, batch_size=4, **kwargs)
        monkeypatch.undo()
        np.testing.assert_allclose(
            road(small_cnn, x, maps, 1, batch_size=4, **kwargs).curves, default.curves, atol=1e-6
        )
    for other in results[1:]:
        np.testing.assert_allclose(other.curves, results[0].curves, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(other.image_scores, results[0].image_scores, rtol=1e-5)
    again = road(small_cnn, x, maps, 1, batch_size=4, **kwargs)
    np.testing.assert_array_equal(again.curves, results[1].curves)
    other_seed = road(small_cnn, x, maps, 1, **{**kwargs, "seed": 12})
    assert not np.allclose(other_seed.curves, results[0].curves)
    assert results[0].params == {
        "noise": 0.1,
        "seed": 11,
        "ties": "random",
        "solver": "cg",
        "tol": 1e-8,
    }


def test_index_ties_remove_a_flat_map_row_major():
    w = np.zeros((4, 4, 1))
    w[0, :] = 1.0  # the model reads the top row
    x = np.ones((1, 4, 4, 1), "float32")
    x[0, 1:] = 0.0
    flat = np.zeros((1, 4, 4))
    result = road(linear_model(w), x, flat, 0, percentages=(0.25,), noise=0, ties="index")
    # the top row (4 pixels) is removed and imputed from the black row below
    mask = np.zeros((4, 4), bool)
    mask[0] = True
    expected = (w * impute(x[0], mask, noise=0)).sum()
    assert result.curves[0, 0] == pytest.approx(expected, abs=1e-6)
    assert expected == pytest.approx(0.0, abs=1e-12)


# ------------------------------------------------------------- bad arguments
@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"order": "most"}, "order"),
        ({"ties": "first"}, "ties"),
        ({"percentages": ()}, "percentages"),
        ({"percentages": (0.5, 1.0)}, "percentages"),
        ({"percentages": (-0.1,)}, "percentages"),
        ({"percentages": "0.5"}, "percentages"),
        ({"percentages": [[0.1, 0.2]]}, "percentages"),
        ({"percentages": (True,)}, "percentages"),
        ({"percentages": (0.99,)}, "keep at least one"),  # round(0.99 * 16) = 16
        ({"noise": -0.1}, "noise"),
        ({"noise": float("nan")}, "noise"),
        ({"seed": -1}, "seed"),
        ({"verbose": 3}, "verbose"),
    ],
)
def test_bad_arguments(kwargs, match):
    model = linear_model(np.ones((4, 4, 1)))
    x = np.ones((2, 4, 4, 1), "float32")
    with pytest.raises(ValueError, match=match):
        road(model, x, np.ones((2, 4, 4)), 0, **kwargs)


def test_maps_that_are_not_one_per_image_are_refused():
    model = linear_model(np.ones((4, 4, 1)))
    x = np.ones((2, 4, 4, 1), "float32")
    with pytest.raises(ValueError, match="one map per image"):
        road(model, x, np.ones((3, 4, 4)), 0)
