"""Max / avg sensitivity and the local Lipschitz estimate: models whose gradient is known
(linear: it never changes; quadratic: it moves with the input), the perturbations the
method was given, and the same result for every batch size."""

import keras
import numpy as np
import pytest

import keras_introspect as ki
from keras_introspect import targets
from keras_introspect._repr import text_table
from keras_introspect.exceptions import KerasIntrospectWarning
from keras_introspect.metrics import (
    StabilityResult,
    avg_sensitivity,
    local_lipschitz,
    max_sensitivity,
)

L = keras.layers
SHAPE = (5, 4, 2)


def linear_model(outputs=2):
    keras.utils.set_random_seed(0)
    return keras.Sequential([keras.Input(SHAPE), L.Flatten(), L.Dense(outputs)])


def quadratic_model(*scales):
    """Output j is `scales[j] / 2 * ||x||^2`: its gradient is `scales[j] * x`."""
    weights = np.asarray(scales, "float32")

    def f(t):
        half_square = 0.5 * keras.ops.sum(t * t, axis=(1, 2, 3))
        return half_square[:, None] * weights[None]

    return keras.Sequential([keras.Input(SHAPE), L.Lambda(f)])


def images(n=3, low=0.5, high=1.0, seed=0):
    return np.random.default_rng(seed).uniform(low, high, (n, *SHAPE)).astype("float32")


class Recorder:
    """A callable method that explains with gradient saliency (channels kept) and
    keeps every batch of images it was given."""

    def __init__(self):
        self.seen = []

    def __call__(self, model, x, target):
        self.seen.append(np.array(x))
        return ki.Saliency(model, target, reduce_channels=None).explain(x)


METRICS = [max_sensitivity, avg_sensitivity, local_lipschitz]
KEEP = {"reduce_channels": None}  # the gradient itself: c * x on the quadratic model


@pytest.mark.parametrize("metric", METRICS)
def test_linear_model_saliency_never_changes_so_every_metric_is_zero(metric):
    result = metric(linear_model(), images(), targets.Class([0, 1, 1]), "saliency", n_samples=4)
    assert result.values.tolist() == [0.0, 0.0, 0.0]
    assert result.ratios.shape == (3, 4) and not result.ratios.any()
    assert result.mean == 0.0


def test_quadratic_model_lipschitz_is_the_curvature():
    """grad (c/2 ||x||^2) = c x: the map moves by c * delta, so every ratio is c."""
    x, model = images(), quadratic_model(3.0)
    exact = local_lipschitz(
        model, x, 0, "saliency", options={"reduce_channels": None}, radius=0.05, n_samples=5
    )
    np.testing.assert_allclose(exact.ratios, 3.0, rtol=1e-5)
    np.testing.assert_allclose(exact.values, 3.0, rtol=1e-5)
    # the max over the channels of |c x'| moves by at most the largest channel's change
    reduced = local_lipschitz(model, x, 0, "saliency", radius=0.05, n_samples=5)
    assert np.all(reduced.ratios <= 3.0 * (1 + 1e-5)) and np.all(reduced.ratios > 0)


def test_sensitivity_equals_the_formula_on_the_perturbations_the_method_was_given():
    x, radius = images(), 0.05
    recorder = Recorder()
    result = max_sensitivity(quadratic_model(2.0), x, 0, recorder, radius=radius, n_samples=6)
    original, *perturbed = recorder.seen
    np.testing.assert_array_equal(original, x)
    assert len(perturbed) == 6  # a callable gets one copy of the images per call
    deltas = np.stack(perturbed).astype(np.float64) - x  # (samples, n, ...)
    assert np.abs(deltas).max() <= radius * (1 + 1e-6)  # the L-inf ball
    assert (np.abs(deltas) > 0).mean() > 0.99
    assert not np.allclose(deltas[0], deltas[1])  # every sample draws anew
    # the map is 2 x: ||2 x' - 2 x|| / ||2 x|| = ||delta|| / ||x||
    flat = deltas.reshape(6, 3, -1)
    expected = np.linalg.norm(flat, axis=2).T / np.linalg.norm(x.reshape(3, -1), axis=1)[:, None]
    np.testing.assert_allclose(result.ratios, expected, rtol=1e-5)
    np.testing.assert_allclose(result.values, expected.max(axis=1), rtol=1e-5)
    average = avg_sensitivity(quadratic_model(2.0), x, 0, Recorder(), radius=radius, n_samples=6)
    np.testing.assert_allclose(average.values, expected.mean(axis=1), rtol=1e-5)
    # the ratio is at most the radius over the norm of the image (every delta in the ball)
    bound = radius * np.sqrt(x[0].size) / np.linalg.norm(x.reshape(3, -1), axis=1)
    assert np.all(result.values <= bound)


def test_normalize_input_and_none_divide_by_the_image_and_by_nothing():
    x = images()
    model = quadratic_model(2.0)
    options = KEEP
    by_map = max_sensitivity(model, x, 0, "saliency", options=options, radius=0.05)
    by_input = max_sensitivity(
        model, x, 0, "saliency", options=options, radius=0.05, normalize="input"
    )
    raw = max_sensitivity(model, x, 0, "saliency", options=options, radius=0.05, normalize=None)
    map_norms = np.linalg.norm(2 * x.reshape(3, -1).astype(np.float64), axis=1)
    image_norms = np.linalg.norm(x.reshape(3, -1).astype(np.float64), axis=1)
    np.testing.assert_allclose(by_map.ratios * map_norms[:, None], raw.ratios, rtol=1e-5)
    np.testing.assert_allclose(by_input.ratios * image_norms[:, None], raw.ratios, rtol=1e-5)
    assert by_input.params["normalize"] == "input" and raw.params["normalize"] is None


def test_per_image_classes_follow_their_images_in_every_batch():
    """Output 0 has curvature 1, output 1 curvature 4: Class([0, 1, 0]) gives 1, 4, 1,
    however many perturbed copies share a call."""
    model, x = quadratic_model(1.0, 4.0), images()
    target = targets.Class([0, 1, 0])
    for batch_size in (1, 3, 5, 64):
        result = local_lipschitz(
            model,
            x,
            target,
            "saliency",
            options=KEEP,
            radius=0.05,
            n_samples=5,
            batch_size=batch_size,
        )
        np.testing.assert_allclose(result.values, [1.0, 4.0, 1.0], rtol=1e-5)
    summed = local_lipschitz(
        model, x, target + 2 * targets.Class(0), "saliency", options=KEEP, radius=0.05
    )
    np.testing.assert_allclose(summed.values, [3.0, 6.0, 3.0], rtol=1e-5)


def small_cnn():
    keras.utils.set_random_seed(1)
    return keras.Sequential(
        [
            keras.Input((8, 8, 3)),
            L.Conv2D(4, 3, activation="relu"),
            L.Flatten(),
            L.Dense(3),
        ]
    )


@pytest.mark.parametrize("metric", METRICS)
def test_same_seed_same_result_for_any_batch_size(metric):
    model = small_cnn()
    x = np.random.default_rng(2).random((3, 8, 8, 3)).astype("float32")
    target = targets.Class([0, 2, 1])
    results = [
        metric(model, x, target, "saliency", radius=0.1, n_samples=4, batch_size=b)
        for b in (1, 4, 7, 64)
    ]
    for other in results[1:]:
        np.testing.assert_allclose(other.ratios, results[0].ratios, rtol=1e-5, atol=1e-9)
    assert results[0].values.min() > 0  # a ReLU network's gradient does move
    again = metric(model, x, target, "saliency", radius=0.1, n_samples=4, seed=0)
    np.testing.assert_array_equal(again.ratios, results[-1].ratios)
    other_seed = metric(model, x, target, "saliency", radius=0.1, n_samples=4, seed=1)
    assert not np.allclose(other_seed.ratios, results[0].ratios)


def test_a_class_method_sees_the_same_perturbations_as_a_callable():
    model, x = small_cnn(), np.random.default_rng(3).random((2, 8, 8, 3)).astype("float32")
    options = {"reduce_channels": None}
    by_name = max_sensitivity(model, x, 1, "saliency", options=options, radius=0.1, n_samples=5)
    by_callable = max_sensitivity(model, x, 1, Recorder(), radius=0.1, n_samples=5)
    np.testing.assert_allclose(by_name.ratios, by_callable.ratios, rtol=1e-5)
    by_class = max_sensitivity(model, x, 1, ki.Saliency, options=options, radius=0.1, n_samples=5)
    np.testing.assert_allclose(by_class.ratios, by_name.ratios, rtol=1e-6)
    assert (by_name.method, by_class.method, by_callable.method) == (
        "saliency",
        "Saliency",
        "Recorder",
    )


def test_smoothgrad_draws_the_same_noise_for_an_image_and_its_copies():
    """SmoothGrad's noise is keyed by the image's position in a call: each image keeps
    its position, so its map and those of its copies share the noise, for any batch size;
    on the quadratic model its map then moves by c * delta (plus the change of the noise
    scale with the image's range, small at noise 0.01)."""
    model, x = quadratic_model(2.0), images(low=2.0, high=3.0)
    options = {"samples": 4, "noise": 0.01, "reduce_channels": None}
    runs = [
        local_lipschitz(model, x, 0, "smoothgrad", options=options, radius=0.05, batch_size=b)
        for b in (1, 64)
    ]
    np.testing.assert_allclose(runs[0].ratios, runs[1].ratios, rtol=1e-6)
    np.testing.assert_allclose(runs[0].values, 2.0, rtol=0.05)


def test_given_maps_are_not_computed_again():
    recorder, x = Recorder(), images()
    model = quadratic_model(1.0)
    maps = ki.Saliency(model, 0, reduce_channels=None).explain(x)
    result = avg_sensitivity(model, x, 0, recorder, maps=maps, radius=0.05, n_samples=3)
    assert len(recorder.seen) == 3  # the perturbed copies only
    np.testing.assert_array_equal(result.maps, maps)
    with pytest.raises(ValueError, match=r"shape of `maps`, \(5, 4\) per image.*\(5, 4, 2\)"):
        avg_sensitivity(model, x, 0, recorder, maps=maps[..., 0], n_samples=1)
    with pytest.raises(ValueError, match=r"maps of the 3 images.*shape \(2, 5, 4, 2\)"):
        avg_sensitivity(model, x, 0, recorder, maps=maps[:2], n_samples=1)


def test_a_zero_map_makes_the_sensitivity_nan_with_a_warning():
    def zeros_for_the_first(model, x, target):
        maps = np.array(x[..., 0]) + 1.0
        maps[0] = 0.0  # image 0 (and each of its copies) gets a zero map
        return maps

    x = images()
    with pytest.warns(KerasIntrospectWarning, match=r"undefined for 1 image\(s\).*map is zero"):
        result = max_sensitivity(quadratic_model(1.0), x, 0, zeros_for_the_first, n_samples=2)
    assert np.isnan(result.values[0]) and np.isfinite(result.values[1:]).all()
    assert result.mean == pytest.approx(np.mean(result.values[1:]))
    unnormalised = max_sensitivity(
        quadratic_model(1.0), x, 0, zeros_for_the_first, n_samples=2, normalize=None
    )
    assert unnormalised.values[0] == 0.0


def test_perturbations_that_round_away_are_left_out_of_the_lipschitz_estimate():
    x = images()
    x[0] = 1000.0  # float32 spacing 6e-5: a radius of 1e-5 rounds to nothing
    with pytest.warns(KerasIntrospectWarning, match=r"rounds to 0 in float32.*\[0\]"):
        result = local_lipschitz(
            quadratic_model(2.0), x, 0, "saliency", options=KEEP, radius=1e-5, n_samples=3
        )
    assert np.isnan(result.ratios[0]).all() and np.isnan(result.values[0])
    np.testing.assert_allclose(result.values[1:], 2.0, rtol=1e-2)


def test_result_table_str_and_repr():
    result = local_lipschitz(
        quadratic_model(3.0), images(2), 0, "saliency", options=KEEP, n_samples=2
    )
    assert isinstance(result, StabilityResult)
    assert [row["image"] for row in result.table] == [0, 1]
    np.testing.assert_allclose([row["local lipschitz"] for row in result.table], 3.0, rtol=1e-5)
    assert str(result) == text_table(result.table)
    assert repr(result) == (
        "StabilityResult(local lipschitz of saliency, 2 images, 2 samples, radius 0.02, mean 3)"
    )
    assert result.params == {"radius": 0.02, "n_samples": 2, "seed": 0}


def two_input_model():
    a, b = keras.Input(SHAPE), keras.Input(SHAPE)
    return keras.Model([a, b], L.Dense(1)(L.Flatten()(L.Add()([a, b]))))


@pytest.mark.parametrize("metric", METRICS)
@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"radius": 0}, ValueError, r"Expected `radius` > 0.0\. Received: radius=0"),
        ({"radius": -0.1}, ValueError, r"`radius` > 0.0\. Received: radius=-0.1"),
        ({"radius": "big"}, ValueError, r"`radius` to be a finite number"),
        (
            {"n_samples": 0},
            ValueError,
            r"`n_samples` to be an integer >= 1\. Received: n_samples=0",
        ),
        ({"seed": -1}, ValueError, r"`seed` to be an integer >= 0"),
        ({"batch_size": 0}, ValueError, r"`batch_size` to be an integer >= 1"),
        ({"verbose": 3}, ValueError, r"`verbose` in \(0, 1, 2\)"),
        (
            {"options": {"batch_size": 8}},
            ValueError,
            r"`batch_size` as an argument of the metric, not in `options`",
        ),
        ({"method": "nope"}, ValueError, r"Expected `method` to be one of \["),
        ({"method": 3}, TypeError, r"Expected `method` to be a method name"),
        ({"target": targets.Class([0, 1])}, ValueError, r"one class index per image \(3 images\)"),
        ({"model": "model"}, TypeError, r"Expected `model` to be a keras\.Model"),
        ({"model": two_input_model()}, ValueError, r"one image input \(batch, H, W, C\)"),
        ({"x": np.ones((3, 4, 4, 2))}, ValueError, r"Expected input of shape"),
    ],
)
def test_bad_arguments_are_refused(metric, kwargs, error, message):
    call = {"model": linear_model(), "x": images(), "target": 0, "method": "saliency"}
    call.update(kwargs)
    with pytest.raises(error, match=message):
        metric(**call)


@pytest.mark.parametrize("metric", [max_sensitivity, avg_sensitivity])
def test_bad_normalize_is_refused(metric):
    with pytest.raises(ValueError, match=r"`normalize` to be one of \['map', 'input', None\]"):
        metric(linear_model(), images(), 0, "saliency", normalize="l2")


def test_progress_bar_counts_the_calls(capsys):
    max_sensitivity(linear_model(), images(), 0, "saliency", n_samples=4, batch_size=3, verbose=1)
    captured = capsys.readouterr()
    assert captured.out == "" and "5/5" in captured.err  # the maps and 4 copies, one per call


def test_matches_quantus_under_matched_conventions():
    """Quantus 0.6.0's MaxSensitivity and AvgSensitivity divide by the map's norm
    ||Phi(x)|| (our normalize="map", not "input") and draw with numpy's
    global generator. The explainer P + sign(x' - x), P a fixed non-constant pattern (Quantus
    refuses constant maps), makes every sample's ratio sqrt(d) / ||P|| whatever was drawn,
    so both must agree exactly."""
    quantus = pytest.importorskip("quantus")
    model = keras.Sequential([keras.Input((6, 6, 1)), L.Flatten(), L.Dense(1)])
    x = np.random.default_rng(5).uniform(0.5, 1.0, (4, 6, 6, 1)).astype("float32")
    pattern = 1.0 + np.arange(36.0).reshape(6, 6) / 36.0

    def sign_map(model, inputs, targets=None, **kwargs):
        inputs = np.asarray(inputs, np.float64).reshape(len(x), 6, 6)
        return pattern + np.sign(inputs - x.reshape(len(x), 6, 6))

    expected = np.full(4, np.sqrt(36) / np.linalg.norm(pattern))
    for ours, theirs in (
        (max_sensitivity, quantus.MaxSensitivity),
        (avg_sensitivity, quantus.AvgSensitivity),
    ):
        mine = ours(
            model,
            x,
            0,
            lambda m, rows, t: sign_map(m, rows),
            radius=0.02,
            n_samples=5,
            normalize="map",
        )
        np.testing.assert_allclose(mine.values, expected, rtol=1e-6)
        metric = theirs(nr_samples=5, lower_bound=0.02, normalise=False, disable_warnings=True)
        scores = metric(
            model=model,
            x_batch=x.transpose(0, 3, 1, 2),
            y_batch=np.zeros(4, int),
            a_batch=np.broadcast_to(pattern, (4, 1, 6, 6)).copy(),  # the maps at x
            explain_func=lambda model, inputs, targets, **kw: sign_map(model, inputs)[:, None],
            channel_first=True,
        )
        np.testing.assert_allclose(np.asarray(scores, float), expected, rtol=1e-6)
