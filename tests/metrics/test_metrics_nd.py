"""Explanation metrics on signals, flat vectors and volumes: brute-force curves on
linear models, exact imputation of linear fields, by-hand localisation."""

import keras
import numpy as np
import pytest

import keras_introspect as ki
from keras_introspect.metrics.road import NEIGHBOURS, impute, neighbours

M = ki.metrics
SHAPES = {"vector": (12,), "signal": (10, 2), "volume": (3, 4, 2, 2)}


def linear(shape, seed=0):
    """`(model, w)`: one logit `w . x` (Flatten + Dense without bias)."""
    kernel = np.random.default_rng(seed).standard_normal((int(np.prod(shape)), 1))
    model = keras.Sequential(
        [keras.Input(shape), keras.layers.Flatten(), keras.layers.Dense(1, use_bias=False)]
    )
    model.layers[-1].set_weights([kernel.astype("float32")])
    return model, kernel[:, 0].reshape(shape)


def per_position(a, shape):
    """Values per position: summed over the channel axis (none for a flat vector)."""
    return a if len(shape) == 1 else a.sum(-1)


@pytest.mark.parametrize("kind", SHAPES)
def test_deletion_and_insertion_curves_equal_brute_force(kind):
    shape = SHAPES[kind]
    model, w = linear(shape, seed=1)
    rng = np.random.default_rng(2)
    x = rng.normal(size=(2, *shape)).astype("float32")
    maps = rng.random((2, *(shape if len(shape) == 1 else shape[:-1])))  # distinct values
    steps = 4
    deleted = M.deletion(model, x, maps, 0, steps=steps, normalize=False, ties="index")
    inserted = M.insertion(model, x, maps, 0, steps=steps, normalize=False, ties="index")
    n_positions = maps[0].size
    for i in range(2):
        order = np.argsort(-maps[i].ravel())
        contributions = per_position(w * x[i], shape).ravel()
        for k in range(steps + 1):
            top = order[: round(k * n_positions / steps)]
            kept = np.delete(np.arange(n_positions), top)
            assert deleted.scores[i, k] == pytest.approx(contributions[kept].sum(), abs=1e-4)
            assert inserted.scores[i, k] == pytest.approx(contributions[top].sum(), abs=1e-4)


def test_deletion_of_a_constant_volume_is_a_straight_line():
    model = keras.Sequential(
        [
            keras.Input((4, 4, 4, 1)),
            keras.layers.Flatten(),
            keras.layers.Dense(1, kernel_initializer="ones", use_bias=False),
        ]
    )
    x = np.ones((1, 4, 4, 4, 1), "float32")
    result = M.deletion(model, x, np.ones((1, 4, 4, 4)), 0, steps=4)
    np.testing.assert_allclose(result.curves[0], [1.0, 0.75, 0.5, 0.25, 0.0], atol=1e-6)
    assert result.auc[0] == pytest.approx(0.5)


def test_neighbour_weights_generalise_the_authors_2d_ones():
    assert neighbours(2) == NEIGHBOURS
    assert [w for _, w in neighbours(1)] == [0.5, 0.5]
    three = dict(neighbours(3))
    assert len(three) == 26 and sum(three.values()) == pytest.approx(1.0)
    assert three[(0, 0, 1)] == pytest.approx(3 / 44)
    assert three[(0, 1, 1)] == pytest.approx(3 / 88)
    assert three[(1, 1, 1)] == pytest.approx(1 / 44)


@pytest.mark.parametrize("size", [(9,), (6, 6, 6)])
def test_imputation_restores_a_linear_field_exactly(size):
    """Every equation of the system holds for a linear field (a symmetric weighted
    mean of neighbours), so removed positions away from the border get it back."""
    grids = np.meshgrid(*[np.arange(n, dtype=float) for n in size], indexing="ij")
    field = sum((a + 1.0) * g for a, g in enumerate(grids)) + 0.5
    image = np.stack([field, -2 * field], axis=-1)  # two channels
    mask = np.zeros(size, bool)
    mask[tuple(slice(2, 4) for _ in size)] = True
    filled = impute(image, mask, noise=0, n_axes=len(size))
    np.testing.assert_allclose(filled, image, atol=1e-9)
    # a flat vector: the same without a channel axis
    if len(size) == 1:
        np.testing.assert_allclose(impute(field, mask, noise=0, n_axes=1), field, atol=1e-9)


def test_road_scores_the_imputed_copies():
    shape = SHAPES["signal"]
    model, w = linear(shape, seed=3)
    x = np.random.default_rng(4).normal(size=(2, *shape)).astype("float32")
    maps = np.random.default_rng(5).random((2, shape[0]))
    result = M.road(model, x, maps, 0, percentages=(0.2, 0.5), noise=0.0, ties="index")
    for i in range(2):
        order = np.argsort(-maps[i])
        for j, p in enumerate((0.2, 0.5)):
            mask = np.zeros(shape[0], bool)
            mask[order[: round(p * shape[0])]] = True
            expected = np.sum(w * impute(x[i], mask, noise=0, n_axes=1))
            assert result.curves[i, j] == pytest.approx(expected, abs=1e-4)


@pytest.mark.parametrize("kind", SHAPES)
def test_faithfulness_correlation_of_gradient_times_input_is_one(kind):
    """For `f = w . x` and baseline 0 the drop of a subset is the sum of `w * x` over
    it: gradient x input correlates exactly."""
    shape = SHAPES[kind]
    model, _ = linear(shape, seed=6)
    x = np.random.default_rng(7).normal(size=(2, *shape)).astype("float32")
    maps = ki.GradientInput(model, 0).explain(x)
    result = M.faithfulness_correlation(model, x, maps, 0, subset_size=3, n_samples=12)
    np.testing.assert_allclose(result.values, 1.0, atol=1e-5)
    fidelity = M.mu_fidelity(model, x, maps, 0, grid_size=2, n_samples=8)
    np.testing.assert_allclose(fidelity.values, 1.0, atol=1e-5)


def test_irof_on_windows_of_a_signal():
    """One window carries the whole score: ranked first, IROF is 1 - 1 / (2 M)."""
    w = np.zeros((12, 1), "float32")
    w[4:8] = 1.0
    model = keras.Sequential(
        [keras.Input((12, 1)), keras.layers.Flatten(), keras.layers.Dense(1, use_bias=False)]
    )
    model.layers[-1].set_weights([w])
    x = np.ones((1, 12, 1), "float32")
    maps = w[None, :, 0]
    result = M.irof(model, x, maps, 0, segmentation_options={"n_segments": 3}, baseline=0.0)
    assert result.segments.shape == (1, 12)
    assert result.values[0] == pytest.approx(1 - 1 / 6)


def test_localisation_of_volume_maps_with_volume_masks():
    maps = np.zeros((2, 4, 4, 4))
    masks = np.zeros((2, 4, 4, 4), bool)
    masks[:, 1:3, 1:3, 1:3] = True
    maps[0, 1, 2, 2] = 5.0  # inside
    maps[1, 0, 0, 3] = 5.0  # outside, at distance sqrt(1 + 1 + 1) of the mask
    maps[:, 2, 2, 1] = 1.0
    np.testing.assert_array_equal(M.pointing_game(maps, masks).values, [1.0, 0.0])
    np.testing.assert_array_equal(M.pointing_game(maps, masks, tolerance=1.8).values, [1, 1])
    np.testing.assert_allclose(M.relevance_mass(maps, masks).values, [1.0, 1 / 6])


def test_ssim_and_spearman_of_signal_and_volume_maps():
    rng = np.random.default_rng(0)
    for shape in [(2, 20), (2, 7, 7, 7)]:
        a = rng.random(shape)
        np.testing.assert_allclose(M.map_similarity(a, 3 * a + 1, "ssim"), 1.0)
        np.testing.assert_allclose(M.map_similarity(a, -a), -1.0)


def test_stability_of_saliency_on_signals_is_zero_for_a_linear_model():
    """A linear model's saliency does not move with the input: max-sensitivity 0."""
    model, _ = linear(SHAPES["signal"], seed=8)
    x = np.random.default_rng(9).normal(size=(2, *SHAPES["signal"])).astype("float32")
    result = M.max_sensitivity(model, x, 0, "saliency", n_samples=3, radius=0.1)
    np.testing.assert_allclose(result.values, 0.0, atol=1e-6)


def test_every_rank_of_the_causal_helpers_agrees_with_the_image_case():
    """A volume whose depth is 1 scores like the image it holds."""
    model2, _ = linear((4, 4, 1), seed=10)
    kernel = model2.layers[-1].get_weights()
    model3 = keras.Sequential(
        [keras.Input((1, 4, 4, 1)), keras.layers.Flatten(), keras.layers.Dense(1, use_bias=False)]
    )
    model3.layers[-1].set_weights(kernel)
    x = np.random.default_rng(11).normal(size=(2, 4, 4, 1)).astype("float32")
    maps = np.random.default_rng(12).random((2, 4, 4))
    for metric in (M.deletion, M.insertion):
        a = metric(model2, x, maps, 0, steps=5)
        b = metric(model3, x[:, None], maps[:, None], 0, steps=5)
        np.testing.assert_allclose(a.curves, b.curves, atol=1e-6)


def test_explanation_quality_of_a_trained_signal_cnn_beats_random_maps():
    """On the planted signal task, saliency and occlusion point at the informative
    segment: deleting it first lowers the score faster than random orders do, and
    inserting it first raises it faster."""
    from nd_models import signal_cnn

    fx = signal_cnn()
    quality = M.explanation_quality(
        fx.model,
        fx.x[:6],
        ki.targets.Class(fx.y[:6]),
        methods=("saliency", "occlusion"),
        options={"occlusion": {"window": 8}},
        road=False,
        stability=(),
        max_layers=1,
    )
    for row in quality.table:
        assert row["deletion AUC"] < row["deletion, random maps"], row["method"]
        assert row["insertion AUC"] > row["insertion, random maps"], row["method"]
