"""Sanity checks: randomisation, random logit and random twin, against hand computations."""

import keras
import numpy as np
import pytest
from scipy.stats import spearmanr

import keras_introspect as ki
from keras_introspect import targets
from keras_introspect.metrics import (
    compare_with_random_twin,
    map_similarity,
    random_logit_check,
    randomization_check,
)

L = keras.layers


def input_only(model, x, target):
    """An explainer that ignores the model: the image itself."""
    return np.asarray(x)[..., 0]


def linear_classifier(weights):
    """f(x) = W^T flatten(x), no bias: the saliency of class c is |W[:, c]|."""
    k = weights.shape[1]
    model = keras.Sequential([keras.Input((4, 4, 1)), L.Flatten(), L.Dense(k, name="out")])
    model.get_layer("out").set_weights([weights, np.zeros(k, "float32")])
    return model


def _weights(model):
    return [w.copy() for w in model.get_weights()]


def test_input_only_explainer_scores_one_for_every_layer(digits_cnn):
    model, x, y = digits_cnn
    for measure in ("spearman", "ssim"):
        result = randomization_check(
            input_only, model, x[:6], targets.Class(y[:6]), similarity=measure
        )
        assert result.layers == ["out", "conv2", "conv1"]
        np.testing.assert_allclose(result.similarity, 1.0, atol=1e-6)
        np.testing.assert_allclose(result.mean_abs, 1.0, atol=1e-6)


def test_saliency_changes_once_the_top_two_layers_are_random(digits_cnn):
    model, x, y = digits_cnn
    before = _weights(model)
    result = randomization_check("saliency", model, x[:32], targets.Class(y[:32]), seed=0)
    assert result.layers[:2] == ["out", "conv2"]
    assert result.mean[1] < 0.5, result.table
    assert result.mean[2] <= result.mean[1] + 0.1  # randomising more does not bring it back
    for a, b in zip(before, model.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)  # the user's model is untouched


def test_rescaling_the_top_layer_only_keeps_the_ranks():
    """x -> Dense(1) -> Dense(1): a random top layer only rescales the saliency map."""
    keras.utils.set_random_seed(1)
    model = keras.Sequential(
        [keras.Input((4, 4, 1)), L.Flatten(), L.Dense(1, name="first"), L.Dense(1, name="top")]
    )
    x = np.random.default_rng(0).uniform(size=(3, 4, 4, 1)).astype("float32")
    for mode in ("cascading", "independent"):
        result = randomization_check("saliency", model, x, 0, mode=mode, keep_maps=True)
        assert result.layers == ["top", "first"]
        np.testing.assert_allclose(result.similarity[0], 1.0, atol=1e-6)
        # a random first layer: the map is |w_first'| (times a constant), by hand
        w_new = np.abs(result.randomized_maps[1][0].ravel())
        w_old = np.abs(model.get_layer("first").get_weights()[0].ravel())
        expected = spearmanr(w_old, w_new)[0]
        np.testing.assert_allclose(result.similarity[1], expected, atol=1e-6)


def test_independent_mode_restores_each_layer_before_the_next():
    keras.utils.set_random_seed(2)
    model = keras.Sequential(
        [
            keras.Input((6, 6, 1)),
            L.Conv2D(3, 3, activation="relu", name="c1"),
            L.Flatten(),
            L.Dense(4, activation="relu", name="d1"),
            L.Dense(2, name="d2"),
        ]
    )
    x = np.random.default_rng(1).uniform(size=(4, 6, 6, 1)).astype("float32")
    cascading = randomization_check("saliency", model, x, 1, keep_maps=True, seed=3)
    independent = randomization_check(
        "saliency", model, x, 1, mode="independent", keep_maps=True, seed=3
    )
    # the first row randomises the top layer alone in both modes, with the same draw
    np.testing.assert_allclose(independent.randomized_maps[0], cascading.randomized_maps[0])
    # the last row: only c1 random (independent) is not c1, d1 and d2 random (cascading)
    assert not np.allclose(independent.randomized_maps[-1], cascading.randomized_maps[-1])
    # c1 random alone is what a copy with that one layer re-drawn gives: d1, d2 as trained
    from keras_introspect.probes.randomized_twin import reinitialize, trained_copy

    copy = trained_copy(model)
    rng = np.random.default_rng(3)
    for name in ("d2", "d1", "c1"):  # the same sequence of draws
        layer = copy.get_layer(name)
        saved = layer.get_weights()
        reinitialize(layer, rng)
        if name != "c1":
            layer.set_weights(saved)
    expected = ki.Saliency(copy, 1).explain(x)
    np.testing.assert_allclose(independent.randomized_maps[-1], expected, rtol=1e-5)


def test_layers_can_be_restricted_and_are_validated(digits_cnn):
    model, x, _ = digits_cnn
    result = randomization_check("saliency", model, x[:4], 0, layers="conv", keep_maps=True)
    assert result.layers == ["conv2", "conv1"]
    # cascading: measured at conv2, the layer above it (out) is random as well
    full = randomization_check("saliency", model, x[:4], 0, keep_maps=True)
    np.testing.assert_allclose(result.randomized_maps, full.randomized_maps[1:], rtol=1e-6)
    alone = randomization_check("saliency", model, x[:4], 0, layers="conv2", mode="independent")
    assert alone.layers == ["conv2"]
    assert not np.allclose(alone.similarity[0], full.similarity[1])
    with pytest.raises(ValueError, match="trainable weights"):
        randomization_check("saliency", model, x[:4], 0, layers="gap")
    with pytest.raises(ValueError, match="Expected `mode` to be one of"):
        randomization_check("saliency", model, x[:4], 0, mode="top-down")
    with pytest.raises(ValueError, match="Expected `similarity` to be one of"):
        randomization_check("saliency", model, x[:4], 0, similarity="pearson")
    with pytest.raises(ValueError, match="Expected `method` to be one of"):
        randomization_check("salience", model, x[:4], 0)


def test_random_logit_check_of_a_linear_model_is_the_rank_correlation_of_its_columns():
    weights = np.random.default_rng(4).normal(size=(16, 4)).astype("float32")
    model = linear_classifier(weights)
    x = np.random.default_rng(5).uniform(size=(5, 4, 4, 1)).astype("float32")
    labels = [0, 1, 2, 3, 0]
    check = random_logit_check("saliency", model, x, labels, seed=1)
    others = check.details["other_classes"]
    assert np.all(others != labels) and np.all((0 <= others) & (others < 4))
    expected = [
        spearmanr(np.abs(weights[:, c]), np.abs(weights[:, o]))[0]
        for c, o in zip(labels, others, strict=True)
    ]
    np.testing.assert_allclose(check.similarity, expected, atol=1e-6)
    same = random_logit_check(input_only, model, x, labels)
    np.testing.assert_allclose(same.similarity, 1.0)
    with pytest.raises(ValueError, match="one label per image"):
        random_logit_check("saliency", model, x, [0, 1])
    with pytest.raises(ValueError, match="class index in the range"):
        random_logit_check("saliency", model, x, 4)


def test_random_logit_check_needs_a_classifier():
    model = keras.Sequential([keras.Input((4, 4, 1)), L.Conv2D(2, 3, padding="same")])
    with pytest.raises(ValueError, match="classifier output"):
        random_logit_check("saliency", model, np.ones((1, 4, 4, 1)), 0)


def test_random_twin_comparison_equals_the_hand_computed_twin_correlation():
    weights = np.random.default_rng(6).normal(size=(16, 3)).astype("float32")
    model = linear_classifier(weights)
    x = np.random.default_rng(7).uniform(size=(2, 4, 4, 1)).astype("float32")
    twin = compare_with_random_twin("saliency", model, x, 2, seed=5)
    twin_weights = ki.randomized_twin(model, seed=5).get_layer("out").get_weights()[0]
    expected = spearmanr(np.abs(weights[:, 2]), np.abs(twin_weights[:, 2]))[0]
    np.testing.assert_allclose(twin.similarity, expected, atol=1e-6)
    np.testing.assert_allclose(twin.maps[0].ravel(), np.abs(weights[:, 2]), rtol=1e-6)
    assert twin.check == "random twin" and twin.details == {"seed": 5}
    shared = ki.randomized_twin(model, seed=5)
    again = compare_with_random_twin("saliency", model, x, 2, twin=shared)
    np.testing.assert_allclose(again.similarity, twin.similarity)
    assert again.details == {"twin": shared.name}
    given = compare_with_random_twin("saliency", model, x, 2, seed=5, maps=twin.maps)
    np.testing.assert_allclose(given.similarity, twin.similarity)
    reused = randomization_check("saliency", model, x, 2, maps=twin.maps)
    np.testing.assert_allclose(
        reused.similarity, randomization_check("saliency", model, x, 2).similarity
    )


def test_map_similarity_measures():
    rng = np.random.default_rng(8)
    a = rng.normal(size=(3, 9, 9))
    np.testing.assert_allclose(map_similarity(a, a, "ssim"), 1.0)
    np.testing.assert_allclose(map_similarity(a, 3 * a + 2, "ssim"), 1.0, atol=1e-9)
    b = rng.normal(size=(3, 9, 9))
    expected = [spearmanr(p.ravel(), q.ravel())[0] for p, q in zip(a, b, strict=True)]
    np.testing.assert_allclose(map_similarity(a, b), expected)
    assert np.isnan(map_similarity(np.zeros((1, 3, 3)), a[:1, :3, :3])[0])
    with pytest.raises(ValueError, match="same shape"):
        map_similarity(a, b[:2])
    with pytest.raises(ValueError, match="at least 3 x 3"):
        map_similarity(a[:, :2, :2], b[:, :2, :2], "ssim")


# --- the checks re-draw the model's own weights: restored bit for bit, nothing traced again


def test_checks_on_the_model_itself_equal_a_clone_and_trace_nothing_again(digits_cnn):
    from keras_introspect.probes.randomized_twin import reinitialize, trained_copy

    model, x, y = digits_cnn
    x, target = x[:4], targets.Class(y[:4])
    before = _weights(model)
    trained = ki.Saliency(model, target).explain(x)
    count = ki.Introspector(model).trace_count
    cascade = randomization_check("saliency", model, x, target, keep_maps=True, seed=4)
    twin = compare_with_random_twin("saliency", model, x, target, seed=4)
    # the model's compiled saliency step served every randomised map
    assert ki.Introspector(model).trace_count == count
    for now, then in zip(model.get_weights(), before, strict=True):
        assert np.array_equal(now, then)
    np.testing.assert_array_equal(cascade.maps, trained)
    # the reference: clones, randomised as the checks describe, each with sessions of its own
    copy, rng = trained_copy(model), np.random.default_rng(4)
    for i, path in enumerate(cascade.layers):  # top first, cascading
        reinitialize(copy.get_layer(path.split("/")[-1]), rng)
        expected = ki.Saliency(copy, target).explain(x)
        np.testing.assert_allclose(cascade.randomized_maps[i], expected, rtol=1e-5, atol=1e-7)
    expected_twin = ki.Saliency(ki.randomized_twin(model, seed=4), target).explain(x)
    np.testing.assert_allclose(twin.other_maps, expected_twin, rtol=1e-5, atol=1e-7)


def test_weights_are_restored_when_a_check_fails_midway(digits_cnn):
    model, x, _ = digits_cnn
    before = _weights(model)
    calls = []

    def fails_on_the_third_map(model, x, target):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return np.asarray(x)[..., 0]

    with pytest.raises(KeyboardInterrupt):
        randomization_check(fails_on_the_third_map, model, x[:2], 0)
    with pytest.raises(KeyboardInterrupt):
        calls.clear()
        calls.append(1)  # the trained map is call 2, the twin's call 3
        compare_with_random_twin(fails_on_the_third_map, model, x[:2], 0)
    for now, then in zip(model.get_weights(), before, strict=True):
        assert np.array_equal(now, then)


def test_a_restore_that_does_not_hold_raises():
    from keras_introspect.probes.randomized_twin import preserved_weights

    model = linear_classifier(np.ones((16, 2), "float32"))
    kernel = model.get_layer("out").kernel
    original_assign = kernel.assign
    # a variable that ignores assignments of the saved value (the restore cannot hold)
    kernel.assign = lambda value: original_assign(np.zeros((16, 2), "float32"))
    try:
        with pytest.raises(RuntimeError, match="Could not restore the weights"):
            with preserved_weights(model):
                pass
    finally:
        kernel.assign = original_assign
