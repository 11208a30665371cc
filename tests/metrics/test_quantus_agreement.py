"""The metrics against Quantus 0.6.0 where it has the same measure, under matched conventions.

Every comparison states the convention it matches (see docs/metrics.md, "Against
Quantus"): single-channel images (Quantus ranks and perturbs channel entries), maps used
as they are (``abs=False, normalise=False``), raw scores (``softmax=False``), a numeric
baseline, and maps without ties. Sparseness, complexity, the localisation measures and
the sensitivities are compared in their own test files; this file holds the faithfulness
measures, the local Lipschitz estimate and the measurement of Quantus' MPRT.
"""

import keras
import numpy as np
import pytest

from keras_introspect import metrics, targets
from keras_introspect.metrics.road import impute

quantus = pytest.importorskip("quantus")

L = keras.layers
PLAIN = {"abs": False, "normalise": False, "disable_warnings": True}


@pytest.fixture(autouse=True)
def numpy_trapz(monkeypatch):
    """Quantus 0.6.0 integrates with `np.trapz`, which NumPy 2.4 removed (same function)."""
    if not hasattr(np, "trapz"):
        monkeypatch.setattr(np, "trapz", np.trapezoid, raising=False)


@pytest.fixture(scope="module")
def cnn():
    """A small non-linear CNN with positive scores (IROF divides by them)."""
    keras.utils.set_random_seed(1)
    positive = keras.initializers.RandomUniform(0.0, 0.1)
    return keras.Sequential(
        [
            keras.Input((10, 10, 1)),
            L.Conv2D(3, 3, padding="same", activation="relu"),
            L.Flatten(),
            L.Dense(2, kernel_initializer=positive, bias_initializer="ones"),
        ]
    )


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    x = rng.random((3, 10, 10, 1)).astype("float32")
    maps = rng.normal(size=(3, 10, 10))  # no ties
    return x, maps


def call(model, x, maps, y=None):
    """Quantus' arguments: channel-last images, channel-first maps, raw scores."""
    y = np.zeros(len(x), int) if y is None else y
    return {
        "model": model,
        "x_batch": x,
        "y_batch": y,
        "a_batch": maps[:, None],
        "channel_first": False,
        "softmax": False,
    }


def test_deletion_matches_pixel_flipping(cnn, data):
    """PixelFlipping flips `features_in_step` pixels per step and has no point 0: with
    `steps = H*W / features_in_step`, baseline 0 and raw scores its curve is ours without
    the first point, exactly (float32 model, the same images scored)."""
    x, maps = data
    theirs = quantus.PixelFlipping(features_in_step=10, perturb_baseline=0.0, **PLAIN)
    expected = np.asarray(theirs(**call(cnn, x, maps)))
    for ties in ("index", "random"):  # no ties: both orders are the map's
        ours = metrics.deletion(cnn, x, maps, 0, steps=10, normalize=False, ties=ties)
        np.testing.assert_allclose(ours.curves[:, 1:], expected, rtol=1e-6, atol=1e-6)


def test_faithfulness_correlation_matches_given_the_same_subsets(cnn, data, monkeypatch):
    """Quantus draws a subset per image and run with `np.random.choice`; replaced by our
    draw (one subset per run, shared by the images), with its `perturb_baseline=0.0`
    instead of "black" (the image minimum), the correlations agree to 1e-12."""
    x, maps = data
    ours = metrics.faithfulness_correlation(cnn, x, maps, 0, subset_size=10, n_samples=12, seed=3)
    draws = iter([np.flatnonzero(s) for s in ours.subsets for _ in range(len(x))])
    monkeypatch.setattr(np.random, "choice", lambda *args, **kwargs: next(draws))
    metric = quantus.FaithfulnessCorrelation(
        nr_runs=12, subset_size=10, perturb_baseline=0.0, return_aggregate=False, **PLAIN
    )
    expected = np.asarray(metric(**call(cnn, x, maps)))
    np.testing.assert_allclose(ours.values, expected, rtol=0, atol=1e-12)
    assert np.ptp(ours.values) > 0.01  # a real comparison: the values differ between images


def test_road_imputation_matches_noisy_linear_imputation():
    """The same linear system as Quantus' `noisy_linear_imputation` (the authors' code):
    the sparse direct solve equal to 1e-12; the conjugate gradients within 1e-6 of the
    image's range at their default `tol` (1e-8), 1e-10 at `tol=1e-12`."""
    from quantus.functions.perturb_func import noisy_linear_imputation

    rng = np.random.default_rng(2)
    image = rng.random((10, 10, 2))
    mask = np.zeros((10, 10), bool)
    mask.flat[rng.choice(100, 37, replace=False)] = True  # clusters and border pixels
    ours = impute(image, mask, noise=0, solver="exact")
    theirs = noisy_linear_imputation(image.transpose(2, 0, 1), np.flatnonzero(mask), noise=0.0)
    np.testing.assert_allclose(ours, theirs.transpose(1, 2, 0), rtol=0, atol=1e-12)
    fast = impute(image, mask, noise=0)
    np.testing.assert_allclose(fast, theirs.transpose(1, 2, 0), rtol=0, atol=1e-6 * np.ptp(image))
    tight = impute(image, mask, noise=0, tol=1e-12)
    np.testing.assert_allclose(tight, theirs.transpose(1, 2, 0), rtol=0, atol=1e-10)


def test_road_matches_quantus_accuracy_curve():
    """Quantus' ROAD scores accuracy (argmax == label) and averages over the images; with
    our target the indicator of class 0, `noise=0` and percentages that remove a whole
    number of pixels (`int(p * HW)` there, `round` here), the curves are equal. The model
    is linear, class 0 wins by a margin that the imputed top pixels erode."""
    rng = np.random.default_rng(0)
    w = rng.uniform(0.5, 1.5, 100)
    model = keras.Sequential([keras.Input((10, 10, 1)), L.Flatten(), L.Dense(2)])
    kernel = np.stack([w, np.zeros(100)], axis=1).astype("float32")
    model.layers[-1].set_weights([kernel, np.array([0.0, 0.25 * w.sum()], "float32")])
    x = rng.random((8, 10, 10, 1))
    maps = w.reshape(10, 10) * x[..., 0]  # Gradient x Input of class 0: no ties
    percent = [10, 20, 30, 40, 50, 60, 70, 80, 90]
    theirs = quantus.ROAD(percentages=percent, noise=0.0, **PLAIN)(**call(model, x, maps))
    correct = targets.Score(
        lambda out: keras.ops.cast(keras.ops.argmax(out, axis=1) == 0, "float32"), name="acc"
    )
    kwargs = {"percentages": [p / 100 for p in percent], "noise": 0.0}
    ours = metrics.road(model, x, maps, correct, solver="exact", **kwargs)
    expected = [1.0, 1.0, 1.0, 1.0, 0.875, 0.25, 0.125, 0.0, 0.0]  # measured, both agree
    np.testing.assert_array_equal([theirs[p] for p in percent], expected)
    np.testing.assert_array_equal(ours.mean_curve, expected)
    fast = metrics.road(model, x, maps, correct, **kwargs)  # conjugate gradients, tol=1e-8
    np.testing.assert_array_equal(fast.mean_curve, expected)


def test_road_of_quantus_fails_on_colour_images():
    """A documented limitation: Quantus ranks channel entries but imputes pixels, so on
    3-channel images its indices run past the pixel count."""
    rng = np.random.default_rng(0)
    model = keras.Sequential([keras.Input((10, 10, 3)), L.Flatten(), L.Dense(2)])
    x, maps = rng.random((2, 10, 10, 3)), rng.normal(size=(2, 10, 10))
    with pytest.raises(IndexError):
        quantus.ROAD(percentages=[50], noise=0.0, **PLAIN)(**call(model, x, maps))
    assert np.isfinite(metrics.road(model, x, maps, 0, percentages=[0.5]).values).all()


def test_irof_matches_after_converting_the_area(cnn, data, monkeypatch):
    """Given the same segments (Quantus' SLIC is replaced by 9 grid cells of unequal size,
    so that it scores 9 steps, not 100) and baseline 0: Quantus' AOC is
    `M - trapz(c_1..c_M)` in segments with no point 0, ours `1 - AUC` over `c_0..c_M` at
    `k / M`, so `AOC = M * IROF + (1 + c_1) / 2` exactly (c_0 = 1)."""
    from quantus.helpers import utils

    x, maps = data
    band = np.repeat([0, 1, 2], [4, 3, 3])
    cells = 3 * band[:, None] + band[None, :]  # (10, 10) labels 0..8
    monkeypatch.setattr(utils, "get_superpixel_segments", lambda img, **kwargs: cells)
    metric = quantus.IROF(perturb_baseline=0.0, return_aggregate=False, **PLAIN)
    theirs = np.asarray(metric(**call(cnn, x, maps)))
    ours = metrics.irof(cnn, x, maps, 0, segmentation=cells, baseline=0.0)
    converted = 9 * ours.values + np.array([(1 + curve[1]) / 2 for curve in ours.curves])
    np.testing.assert_allclose(converted, theirs, rtol=1e-6)
    assert np.ptp(ours.values) > 0.01  # the maps rank the cells differently


def test_quantus_irof_mean_baseline_is_one_value_per_batch():
    """Why the IROF comparison uses baseline 0: Quantus' "mean" (its IROF default) fills
    with the mean of the whole batch it is given (already perturbed images included),
    where ours (`baseline="mean"`) is each image's own mean colour."""
    from quantus.functions.perturb_func import baseline_replacement_by_mask

    batch = np.stack([np.zeros((1, 2, 2)), np.full((1, 2, 2), 4.0)])  # image means 0 and 4
    mask = np.zeros(batch.shape, bool)
    mask[:, 0, 0, 0] = True
    filled = baseline_replacement_by_mask(arr=batch, mask=mask, perturb_baseline="mean")
    np.testing.assert_array_equal(filled[:, 0, 0, 0], [2.0, 2.0])  # not [0, 4]


def test_local_lipschitz_matches_on_a_linear_explainer(cnn, data):
    """Quantus perturbs with Gaussian noise, we uniformly in a ball; for the explainer
    `3 x` every sample's ratio is 3 whatever was drawn, in both."""
    x, _ = data

    def times_three(model, inputs, targets=None, **kwargs):
        return 3.0 * np.asarray(inputs, np.float64).reshape(len(inputs), 1, 10, 10)

    metric = quantus.LocalLipschitzEstimate(nr_samples=5, perturb_std=0.02, **PLAIN)
    theirs = metric(
        model=cnn,
        x_batch=x,
        y_batch=np.zeros(len(x), int),
        a_batch=times_three(None, x),
        explain_func=times_three,
        channel_first=False,
    )
    ours = metrics.local_lipschitz(cnn, x, 0, lambda m, rows, t: times_three(m, rows)[:, 0])
    np.testing.assert_allclose(theirs, 3.0, rtol=1e-5)
    np.testing.assert_allclose(ours.values, 3.0, rtol=1e-5)


def test_random_logit_matches_with_spearman():
    """Quantus' RandomLogit draws the other class from numpy's global generator (ours from
    `seed`); with two classes the other class is forced, so with Spearman's coefficient on
    the signed maps (`similarity_func=correlation_spearman`; Quantus' default SSIM takes the
    maps' own range, ours rescales them to [0, 1] first) both give the same values."""
    from quantus.functions.similarity_func import correlation_spearman

    rng = np.random.default_rng(6)
    weights = rng.normal(size=(16, 2)).astype("float32")
    model = keras.Sequential([keras.Input((4, 4, 1)), L.Flatten(), L.Dense(2, use_bias=False)])
    model.layers[-1].set_weights([weights])
    x = rng.random((5, 4, 4, 1)).astype("float32")
    labels = np.array([0, 1, 1, 0, 1])

    def gradient_input(classes, inputs):  # of the linear model: w_c * x
        inputs = np.asarray(inputs).reshape(len(inputs), 16)
        return (weights[:, np.asarray(classes)].T * inputs).reshape(len(inputs), 4, 4)

    ours = metrics.random_logit_check(
        lambda m, rows, t: gradient_input(t.index, rows), model, x, labels.tolist()
    )
    np.testing.assert_array_equal(ours.details["other_classes"], 1 - labels)
    metric = quantus.RandomLogit(num_classes=2, similarity_func=correlation_spearman, **PLAIN)
    theirs = metric(
        model=model,
        x_batch=x,
        y_batch=labels,
        a_batch=gradient_input(labels, x)[:, None],
        explain_func=lambda model, inputs, targets, **kw: gradient_input(targets, inputs)[:, None],
        channel_first=False,
    )
    np.testing.assert_allclose(ours.similarity, np.asarray(theirs, float), rtol=1e-6)
    assert np.ptp(ours.similarity) > 0.1


# ------------------------------------------------------------------------- MPRT
def _changed_layers(model, trained: dict) -> int:
    """How many of the layers with weights differ from the trained weights."""
    with_weights = [layer for layer in model.layers if layer.get_weights()]
    return sum(
        not all(
            np.array_equal(a, b) for a, b in zip(trained[name], layer.get_weights(), strict=True)
        )
        for name, layer in zip(trained, with_weights, strict=True)
    )


def test_quantus_mprt_randomises_every_keras_layer_at_once():
    """The measurement behind docs/metrics.md, "Sanity checks": Quantus 0.6.0's MPRT on a
    Keras model (4 layers with weights) explains, at its first "one layer randomised" row,
    a model whose 4 layers all differ from the trained one (`clone_model` re-draws every
    weight and the trained weights are never copied back), and so at every row of its
    default top-down cascade. Ours randomises 1, 2, 3, 4 layers. In Quantus'
    "independent" order the rows are right (one layer each)."""
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((8, 8, 1)),
            L.Conv2D(4, 3, name="c1"),
            L.Conv2D(4, 3, name="c2"),
            L.Flatten(),
            L.Dense(8, name="d1"),
            L.Dense(3, name="out"),
        ]
    )
    for layer in model.layers:  # trained weights: distinct from any fresh draw, biases too
        layer.set_weights([v + 0.1 for v in layer.get_weights()])
    trained = {layer.name: layer.get_weights() for layer in model.layers if layer.get_weights()}
    x = np.random.default_rng(0).random((2, 8, 8, 1)).astype("float32")
    seen = []

    def recording(model, inputs, targets=None, **kwargs):
        seen.append(_changed_layers(model, trained))
        return np.random.default_rng(len(seen)).random((len(inputs), 1, 8, 8))

    counts = {}
    for order in ("top_down", "independent"):
        seen.clear()
        scores = quantus.MPRT(layer_order=order, **PLAIN)(
            model=model,
            x_batch=x,
            y_batch=np.zeros(2, int),
            a_batch=None,
            explain_func=recording,
            channel_first=False,
        )
        counts[order] = seen[2:]  # after its two calls on the trained model
        assert list(scores)[1:] == (
            ["out", "d1", "c2", "c1"] if order == "top_down" else ["c1", "c2", "d1", "out"]
        )
    assert counts["top_down"] == [4, 4, 4, 4]  # Quantus: every layer random from row 1
    assert counts["independent"] == [1, 1, 1, 1]

    seen.clear()
    result = metrics.randomization_check(
        lambda m, rows, t: recording(m, rows)[:, 0], model, x, 0, mode="cascading"
    )
    assert result.layers == ["out", "d1", "c2", "c1"]
    assert seen == [0, 1, 2, 3, 4]  # the trained model, then one more layer per row
    assert _changed_layers(model, trained) == 0  # the model passed in is untouched
