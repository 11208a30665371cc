"""Die360 rotation studies (`004` §5.2-5.4): SGD search, sequences, correlations, disagreement."""

import io

import keras
import numpy as np
import pytest
from PIL import Image
from scipy.stats import spearmanr

from keras_introspect.datasets import DieRotations, die360, one_degree_neighbours
from keras_introspect.datasets.die360_training import fit_die360, search_sgd
from keras_introspect.plotting.rotation import plot_disagreement, rotation_animation
from keras_introspect.probes.rotation import (
    _rank_correlation,
    largest_disagreement,
    neighbour_correlation,
    pip_selectivity,
)

# a 4 x 4 x 4 block of rotations: each one-degree step inside it is a neighbour pair
BLOCK = np.stack(np.meshgrid(*[np.arange(4)] * 3, indexing="ij"), -1).reshape(-1, 3)


def _rotations():
    return DieRotations(BLOCK, one_degree_neighbours(BLOCK), 48)


def test_rank_correlation_is_spearmans():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(5, 30)), rng.normal(size=(5, 30))
    b[1] = a[1] ** 3  # monotone: 1
    b[2] = np.round(b[2])  # ties
    expected = [spearmanr(u, v).statistic for u, v in zip(a, b, strict=True)]
    np.testing.assert_allclose(_rank_correlation(a, b), expected, atol=1e-12)


def test_maps_of_a_linear_filter_correlate_perfectly_and_pairs_are_neighbours():
    # the gradient of the summed output of a linear convolution does not depend on the image
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [keras.Input((6, 6, 1)), keras.layers.Conv2D(2, 3, padding="same", name="conv")]
    )
    x = np.random.default_rng(1).random((64, 6, 6, 1)).astype(np.float32)
    rot = _rotations()
    found = neighbour_correlation(model, x, rot, "conv", 1, aggregate="sum", pairs=20, seed=3)
    assert found.pairs.shape == (20, 2)
    for i, j in found.pairs:
        assert j in rot.neighbours[i]
    np.testing.assert_allclose(found.maps, 1.0, atol=1e-6)
    expected = [spearmanr(x[i].ravel(), x[j].ravel()).statistic for i, j in found.pairs]
    np.testing.assert_allclose(found.images, expected, atol=1e-6)
    assert found.table[0]["maps rank corr."] == pytest.approx(1.0, abs=1e-6)
    again = neighbour_correlation(model, x, rot, "conv", 1, aggregate="sum", pairs=20, seed=3)
    np.testing.assert_array_equal(again.pairs, found.pairs)


def _pixel_model(cls):
    """Softmax whose logit for `cls` is 10 x pixel (0, 0): sure of `cls` where it is 1."""
    layers = [keras.layers.Flatten(), keras.layers.Dense(6, activation="softmax")]
    model = keras.Sequential([keras.Input((6, 6, 1)), *layers])
    kernel = np.zeros((36, 6), np.float32)
    kernel[0, cls] = 10.0
    model.layers[-1].set_weights([kernel, np.zeros(6, np.float32)])
    return model


def test_the_largest_disagreement_is_the_planted_image():
    x = np.zeros((64, 6, 6, 1), np.float32)
    x[21, 0, 0, 0] = 1.0  # only here do the two networks see anything
    rot = _rotations()
    found = largest_disagreement({"a": _pixel_model(0), "b": _pixel_model(1)}, x, rot)
    assert found.index == 21 and found.names == ["a", "b"]
    np.testing.assert_array_equal(found.neighbours, rot.neighbours[21][rot.neighbours[21] >= 0])
    sure = np.exp([10.0, 0, 0, 0, 0, 0]) / np.exp([10.0, 0, 0, 0, 0, 0]).sum()
    p = np.stack([sure, sure[[1, 0, 2, 3, 4, 5]]])
    expected = (0.5 * np.abs(p - p.mean(0)).sum(1)).mean()
    assert found.scores[21] == pytest.approx(expected, rel=1e-5)
    np.testing.assert_allclose(np.delete(found.scores, 21), 0.0, atol=1e-6)
    assert found.posteriors.shape == (2, 1 + len(found.neighbours), 6)
    np.testing.assert_allclose(found.posteriors[:, 0], p, rtol=1e-5)
    # one network: the largest jump of its posterior to a one-degree neighbour
    alone = largest_disagreement(_pixel_model(0), x, rot)
    jump = 0.5 * np.abs(sure - np.full(6, 1 / 6)).sum()
    assert alone.scores[21] == pytest.approx(jump, rel=1e-5)
    assert alone.index in [21, *rot.neighbours[21]]
    with pytest.raises(ValueError, match="neighbour"):
        no_neighbours = DieRotations(BLOCK * 2, one_degree_neighbours(BLOCK * 2), 48)
        largest_disagreement(_pixel_model(0), x, no_neighbours)


def test_pip_selectivity_of_an_identity_filter_is_the_grey_level_ratio():
    x = np.zeros((1, 10, 10, 1), np.float32)
    x[0, 1:9, 1:9] = 0.8  # a face ...
    x[0, 4:6, 4:6] = 0.1  # ... with one pip
    model = keras.Sequential(
        [keras.Input((10, 10, 1)), keras.layers.Conv2D(1, 1, use_bias=False, name="conv")]
    )
    model.layers[0].set_weights([np.ones((1, 1, 1, 1), np.float32)])
    assert pip_selectivity(model, x, "conv") == pytest.approx([0.1 / 0.8])


def test_the_animation_shows_each_image_beside_its_map():
    rng = np.random.default_rng(0)
    images = rng.random((5, 4, 4, 1)).astype(np.float32)
    maps = rng.random((5, 4, 4)).astype(np.float32)
    data = rotation_animation(images, maps, format="png", scale=2)
    movie = Image.open(io.BytesIO(data))
    assert movie.n_frames == 5
    movie.seek(3)
    frame = np.asarray(movie.convert("RGB"))
    assert frame.shape == (8, 18, 3)  # image, 1-pixel gap, map; doubled
    grey = np.kron(np.round(255 * images[3, ..., 0]), np.ones((2, 2)))
    np.testing.assert_array_equal(frame[:, :8, 0], grey)


def test_search_sees_only_the_training_split_and_fit_reports_validation_accuracy():
    x, y = die360(n=240, layout="thesis", seed=0)
    options = {"images": 150, "epochs": 1, "rates": (0.01, 0.1), "momenta": (0.5, 0.9)}
    found = search_sgd("d5", x, y, 180, **options)
    assert [(t["learning rate"], t["momentum"]) for t in found.trials][:2] == [
        (0.01, 0.9),
        (0.1, 0.9),
    ]
    assert len(found.trials) == 3 and found.images == 150
    best = max(found.trials, key=lambda t: t["held-out accuracy"])
    assert (found.learning_rate, found.momentum) in [
        (t["learning rate"], t["momentum"])
        for t in found.trials
        if t["held-out accuracy"] == best["held-out accuracy"]
    ]
    noisy = x.copy()
    noisy[180:] = np.random.default_rng(0).random(noisy[180:].shape)  # the validation split
    assert search_sgd("d5", noisy, y, 180, **options).trials == found.trials
    model, accuracy = fit_die360("d5", x, y, 180, learning_rate=0.1, momentum=0.9, epochs=1)
    predicted = model.predict(x[180:], verbose=0).argmax(1) + 1
    assert accuracy == pytest.approx((predicted == y[180:]).mean())


def test_rotation_report_section_and_its_skip_reason():
    from keras_introspect.datasets import die360_network
    from keras_introspect.report import build_report
    from keras_introspect.report.rotation import RotationData

    keras.utils.set_random_seed(0)
    model = die360_network("c1")
    x, y, rot = die360(n=300, layout="thesis", seed=0, return_rotations=True)
    skipped = build_report(model, x[:8], y[:8] - 1, sections=["rotation"])
    assert "one degree of rotation apart" in skipped.to_html()
    _, _, uniform = die360(n=300, seed=0, return_rotations=True)
    none = build_report(
        model, x[:8], sections=["rotation"], results={"rotation": RotationData(x, uniform)}
    )
    assert "has a one-degree rotation neighbour" in none.to_html()
    report = build_report(
        model,
        x[:8],
        y[:8] - 1,
        sections=["rotation"],
        results={"rotation": RotationData(x, rot, {"mlp": die360_network("d5")})},
    )
    titles = [s.title for s in report.sections]
    assert titles == [
        "Rotation: one feature along a one-degree sequence",
        "Rotation: the largest disagreement between networks",
    ]
    page = report.to_html()
    assert page.count("data:image/png") == 3  # strip, animation, disagreement
    assert "maps rank corr." in page and "die360_c1" in page
    assert report.sections[1].params["networks"] == "die360_c1, mlp"


def test_disagreement_figure_has_a_row_per_image():
    x = np.zeros((64, 6, 6, 1), np.float32)
    x[21, 0, 0, 0] = 1.0
    found = largest_disagreement({"a": _pixel_model(0), "b": _pixel_model(1)}, x, _rotations())
    fig = plot_disagreement(found, x)
    bars = fig.axes[1::2]
    assert len(bars) == 1 + len(found.neighbours)
    # each network's stacked bar sums to its posterior's total, 1
    heights = np.array([p.get_height() for p in bars[0].patches]).reshape(6, 2)
    np.testing.assert_allclose(heights.sum(0), 1.0, rtol=1e-5)
