"""Deletion and insertion: analytic curves, brute-force references, a trained CNN."""

import keras
import numpy as np
import pytest

import keras_introspect as ki
from keras_introspect import targets
from keras_introspect.exceptions import KerasIntrospectWarning
from keras_introspect.metrics import deletion, insertion

L = keras.layers


def sum_model(shape=(8, 8, 1)):
    """f(x) = sum(x): one output, all weights 1, no bias."""
    return keras.Sequential(
        [
            keras.Input(shape),
            L.Flatten(),
            L.Dense(1, kernel_initializer="ones", use_bias=False),
        ]
    )


def min_model(shape=(8, 8, 1)):
    """f(x) = min(x): 0 as soon as one pixel of a positive image is at the baseline 0."""
    return keras.Sequential(
        [keras.Input(shape), L.Lambda(lambda t: keras.ops.min(t, axis=(1, 2, 3))[:, None])]
    )


def test_sum_model_deletion_falls_linearly_and_both_aucs_are_one_half():
    model, x = sum_model(), np.ones((2, 8, 8, 1), "float32")
    down = deletion(model, x, x[..., 0], 0, steps=16)
    up = insertion(model, x, x[..., 0], 0, steps=16)
    np.testing.assert_allclose(down.fractions, np.arange(17) / 16)
    np.testing.assert_allclose(down.curves, np.tile(1 - np.arange(17) / 16, (2, 1)), atol=1e-6)
    np.testing.assert_allclose(down.scores[:, 0], 64.0)  # raw: the sum of the image
    assert abs(down.mean_auc - 0.5) <= 0.01 and abs(up.mean_auc - 0.5) <= 0.01
    np.testing.assert_allclose(up.curves, np.tile(np.arange(17) / 16, (2, 1)), atol=1e-6)


def test_model_at_zero_once_a_pixel_is_deleted_has_deletion_auc_of_one_half_step():
    model = min_model()
    x = np.random.default_rng(0).uniform(0.5, 1.0, (3, 8, 8, 1)).astype("float32")
    maps = np.random.default_rng(1).random((3, 8, 8))
    fine = deletion(model, x, maps, targets.Score(lambda y: y[:, 0]), steps=64)
    assert fine.mean_auc <= 0.01
    np.testing.assert_allclose(fine.auc, 1 / (2 * 64), atol=1e-9)
    # the documented resolution: half the fraction deleted by the first step
    coarse = deletion(model, x, maps, targets.Score(lambda y: y[:, 0]), steps=20)
    np.testing.assert_allclose(coarse.auc, 0.5 * round(64 / 20) / 64, atol=1e-9)


def brute_force_scores(kind, x, maps, baseline, counts):
    """Sum-model scores by hand: sort pixels, replace the top `c` of each image."""
    out = np.empty((len(x), len(counts)))
    for i in range(len(x)):
        order = np.argsort(-maps[i].ravel(), kind="stable")
        for k, c in enumerate(counts):
            top = np.zeros(maps[i].size, bool)
            top[order[:c]] = True
            top = top.reshape(maps[i].shape)[..., None]
            image = np.where(top, baseline[i], x[i]) if kind == "deletion" else None
            if image is None:
                image = np.where(top, x[i], baseline[i])
            out[i, k] = image.sum()
    return out


@pytest.mark.parametrize("kind", ["deletion", "insertion"])
@pytest.mark.parametrize("baseline", [0.0, 0.25, "mean"])
def test_raw_scores_equal_a_brute_force_reference(kind, baseline):
    rng = np.random.default_rng(2)
    model = sum_model((6, 5, 3))
    x = rng.uniform(size=(3, 6, 5, 3)).astype("float32")
    maps = rng.normal(size=(3, 6, 5))
    fn = deletion if kind == "deletion" else insertion
    result = fn(model, x, maps, 0, steps=7, baseline=baseline, normalize=False, batch_size=5)
    counts = np.round(np.linspace(0, 30, 8)).astype(int)
    base = (
        x.mean(axis=(1, 2), keepdims=True) * np.ones_like(x)
        if baseline == "mean"
        else np.full_like(x, baseline)
    )
    expected = brute_force_scores(kind, x, maps, base, counts)
    np.testing.assert_allclose(result.scores, expected, rtol=1e-5)
    np.testing.assert_allclose(result.curves, result.scores)
    np.testing.assert_allclose(result.fractions, counts / 30)
    widths = np.diff(counts / 30)
    manual = ((expected[:, 1:] + expected[:, :-1]) / 2 * widths).sum(axis=1)
    np.testing.assert_allclose(result.auc, manual, rtol=1e-5)


def test_normalised_curve_runs_from_the_image_to_the_baseline():
    rng = np.random.default_rng(3)
    model = sum_model()
    x = rng.uniform(size=(2, 8, 8, 1)).astype("float32")
    result = deletion(model, x, rng.normal(size=(2, 8, 8)), 0, steps=5, baseline=0.1)
    raw = result.scores
    expected = (raw - raw[:, -1:]) / (raw[:, :1] - raw[:, -1:])
    np.testing.assert_allclose(result.curves, expected, rtol=1e-6)
    np.testing.assert_allclose(result.curves[:, [0, -1]], [[1, 0], [1, 0]], atol=1e-6)


def test_the_map_itself_beats_random_maps_on_the_sum_model():
    rng = np.random.default_rng(4)
    model = sum_model()
    x = rng.uniform(size=(4, 8, 8, 1)).astype("float32")
    down = deletion(model, x, x[..., 0], 0, random_baseline=True, seed=7)
    up = insertion(model, x, x[..., 0], 0, random_baseline=True, seed=7)
    assert down.beats_random and up.beats_random
    assert down.mean_auc < down.random_mean_auc and up.mean_auc > up.random_mean_auc
    # the random level is the score of one seeded uniform map per image
    random_maps = np.random.default_rng(7).random((4, 8, 8))
    np.testing.assert_allclose(down.random_auc, deletion(model, x, random_maps, 0).auc)


def test_per_image_classes_are_scored_per_image():
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4, 4, 2)), L.Flatten(), L.Dense(3)])
    rng = np.random.default_rng(5)
    x = rng.uniform(size=(3, 4, 4, 2)).astype("float32")
    maps = rng.random((3, 4, 4))
    labels = [2, 0, 1]
    result = insertion(model, x, maps, targets.Class(labels), steps=4, normalize=False)
    counts = np.round(np.linspace(0, 16, 5)).astype(int)
    for i, c in enumerate(labels):
        order = np.argsort(-maps[i].ravel(), kind="stable")
        for k, n in enumerate(counts):
            keep = np.zeros(16, bool)
            keep[order[:n]] = True
            image = x[i] * keep.reshape(4, 4, 1)
            expected = model(image[None]).numpy()[0, c]
            np.testing.assert_allclose(result.scores[i, k], expected, rtol=1e-5, atol=1e-6)


def test_same_result_whatever_the_batch_size():
    rng = np.random.default_rng(6)
    model = sum_model()
    x = rng.uniform(size=(3, 8, 8, 1)).astype("float32")
    maps = rng.normal(size=(3, 8, 8))
    a = deletion(model, x, maps, 0, batch_size=1)
    b = deletion(model, x, maps, 0, batch_size=64)
    np.testing.assert_allclose(a.curves, b.curves, rtol=1e-6)


def test_maps_with_a_channel_axis_of_one_or_lower_resolution_are_accepted():
    rng = np.random.default_rng(8)
    model = sum_model()
    x = rng.uniform(size=(2, 8, 8, 1)).astype("float32")
    maps = rng.normal(size=(2, 8, 8))
    np.testing.assert_allclose(
        deletion(model, x, maps[..., None], 0).auc, deletion(model, x, maps, 0).auc
    )
    # a 2 x 2 map is resized bilinearly: its left half (4 and 3) still ranks first
    coarse = np.array([[[4.0, 1.0], [3.0, 2.0]]] * 2)
    full = np.kron(coarse, np.ones((4, 4)))
    np.testing.assert_allclose(
        deletion(model, x, coarse, 0, steps=4).curves[:, ::2],
        deletion(model, x, full, 0, steps=4).curves[:, ::2],
        rtol=1e-6,
    )


def test_constant_model_gives_nan_curves_and_a_warning():
    model = keras.Sequential(
        [keras.Input((4, 4, 1)), L.Flatten(), L.Dense(1, kernel_initializer="zeros")]
    )
    x = np.ones((2, 4, 4, 1), "float32")
    with pytest.warns(KerasIntrospectWarning, match="same on 2 image"):
        result = deletion(model, x, x[..., 0], 0)
    assert np.isnan(result.auc).all() and np.isnan(result.mean_auc)
    assert np.isfinite(deletion(model, x, x[..., 0], 0, normalize=False).auc).all()


def test_bad_arguments_are_refused():
    model, x = sum_model(), np.ones((2, 8, 8, 1), "float32")
    with pytest.raises(ValueError, match=r"one map per image, shape \(2, H, W\)"):
        deletion(model, x, np.ones((3, 8, 8)), 0)
    with pytest.raises(ValueError, match="Expected `steps` to be an integer >= 1"):
        deletion(model, x, x[..., 0], 0, steps=0)
    with pytest.raises(ValueError, match="'blur' or 'mean'"):
        insertion(model, x, x[..., 0], 0, baseline="noise")
    with pytest.raises(ValueError, match="baseline with shape"):
        insertion(model, x, x[..., 0], 0, baseline=np.zeros((3, 3)))
    conv = keras.Sequential([keras.Input((8, 8, 1)), L.Conv2D(2, 3, name="c")])
    with pytest.raises(ValueError, match="one score per image"):
        deletion(conv, x, x[..., 0], targets.Channel("c", "all"))
    nan_maps = x[..., 0].copy()
    nan_maps[0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN or infinity"):
        deletion(model, x, nan_maps, 0)


def test_blur_baseline_is_a_blurred_copy_of_the_image():
    from scipy.ndimage import gaussian_filter

    rng = np.random.default_rng(9)
    model = sum_model((9, 9, 1))
    x = rng.uniform(size=(1, 9, 9, 1)).astype("float32")
    result = insertion(model, x, rng.random((1, 9, 9)), 0, baseline="blur", normalize=False)
    blurred = gaussian_filter(x[0, ..., 0].astype(float), 1.0)  # sigma: at least 1 pixel
    np.testing.assert_allclose(result.scores[0, 0], blurred.sum(), rtol=1e-5)
    wide = sum_model((90, 90, 1))
    big = rng.uniform(size=(1, 90, 90, 1)).astype("float32")
    result = insertion(wide, big, rng.random((1, 90, 90)), 0, baseline="blur", normalize=False)
    blurred = gaussian_filter(big[0, ..., 0].astype(float), 2.0)  # 90 / 45
    np.testing.assert_allclose(result.scores[0, 0], blurred.sum(), rtol=1e-5)


@pytest.mark.parametrize(
    "method, options",
    [("saliency", {}), ("gradcam", {"layer": "conv2"}), ("occlusion", {"window": 2})],
)
def test_trained_cnn_maps_beat_random_maps(digits_cnn, method, options):
    """The issue's criterion: deletion AUC below random maps', insertion AUC above.

    Under both conventions of benchmarks/bench_quality.py: the library's
    defaults (class logit, black baseline, normalised curves) and the
    report's (class probability, blurred baseline, raw curves).
    """
    from keras_introspect.attribution.maps import METHODS

    model, x, y = digits_cnn
    x, y = x[:96], y[:96]
    maps = METHODS[method](model, targets.Class(y), **options).explain(x)
    conventions = [
        (targets.Class(y), {}),
        (targets.Class(y, logits=False), {"baseline": "blur", "normalize": False}),
    ]
    for scored, kwargs in conventions:
        down = deletion(model, x, maps, scored, random_baseline=True, batch_size=256, **kwargs)
        up = insertion(model, x, maps, scored, random_baseline=True, batch_size=256, **kwargs)
        assert down.mean_auc < down.random_mean_auc, (down, kwargs)
        assert up.mean_auc > up.random_mean_auc, (up, kwargs)


def test_metrics_are_exported():
    assert ki.metrics.deletion is deletion and ki.metrics.insertion is insertion


def test_tied_pixels_come_in_a_seeded_random_order():
    """Issue 21: a flat map on f(x) = x[0, 0]. Row-major ties delete pixel (0, 0)
    first (AUC half a step: the map looks perfect for its position alone); random
    ties put it at a uniform rank, so the AUCs spread with a mean near 1/2. A map
    without ties gives the same curves either way."""
    pixel = keras.Sequential(
        [keras.Input((8, 8, 1)), L.Lambda(lambda t: t[:, 0, 0, :])]  # f(x) = x[0, 0]
    )
    x = np.ones((40, 8, 8, 1), "float32")
    flat = np.zeros((40, 8, 8))
    by_index = deletion(pixel, x, flat, 0, steps=64, ties="index")
    np.testing.assert_allclose(by_index.auc, 1 / 128, atol=1e-9)
    shuffled = deletion(pixel, x, flat, 0, steps=64)
    # the rank r of (0, 0) is uniform on 0..63: the score drops after step r + 1,
    # the AUC is (r + 1/2) / 64, with mean 1/2 and standard deviation 0.29
    ranks = shuffled.auc * 64 - 0.5
    np.testing.assert_allclose(ranks, np.round(ranks), atol=1e-6)
    assert len(np.unique(ranks)) > 20 and abs(shuffled.mean_auc - 0.5) < 0.15
    again = deletion(pixel, x, flat, 0, steps=64, seed=0)
    np.testing.assert_array_equal(again.auc, shuffled.auc)
    assert not np.array_equal(deletion(pixel, x, flat, 0, steps=64, seed=1).auc, shuffled.auc)
    untied = np.random.default_rng(3).random((40, 8, 8))
    np.testing.assert_array_equal(
        deletion(pixel, x, untied, 0, steps=16).scores,
        deletion(pixel, x, untied, 0, steps=16, ties="index").scores,
    )
    with pytest.raises(ValueError, match="ties"):
        deletion(pixel, x, flat, 0, ties="first")
