"""explanation_quality: every check of several methods, equal to each check run alone."""

import keras
import numpy as np
import pytest

from keras_introspect import Saliency, targets
from keras_introspect.datasets import die360_network
from keras_introspect.exceptions import KerasIntrospectWarning
from keras_introspect.metrics import (
    compare_with_random_twin,
    deletion,
    explanation_quality,
    insertion,
    max_sensitivity,
    random_logit_check,
    randomization_check,
    road,
)
from keras_introspect.probes.randomized_twin import randomized_twin


@pytest.fixture(scope="module")
def model_and_images():
    keras.utils.set_random_seed(0)
    model = die360_network("c2")
    x = np.random.default_rng(4).random((6, 32, 32, 1)).astype("float32")
    return model, x


def test_each_row_equals_the_checks_run_one_by_one(model_and_images):
    model, x = model_and_images
    target = targets.Class([0, 1, 2, 0, 1, 2])
    layers = ["classes", "conv2"]
    result = explanation_quality(
        model, x, target, methods=("saliency",), steps=5, layers=layers, probabilities=False
    )
    assert result.scored is target and result.normalized and result.note == ""
    maps = Saliency(model, target).explain(x)
    down = deletion(model, x, maps, target, 5, "blur", random_baseline=True, seed=0)
    up = insertion(model, x, maps, target, 5, "blur", random_baseline=True, seed=0)
    cascade = randomization_check("saliency", model, x, target, layers=layers, seed=0)
    twin = compare_with_random_twin("saliency", model, x, target, twin=randomized_twin(model))
    other = random_logit_check("saliency", model, x, target, seed=0)
    spread = float(x.max() - x.min())
    roads = road(model, x, maps, target, seed=0, noise=0.01 * spread)
    stable = max_sensitivity(
        model, x, target, "saliency", radius=0.02 * spread, n_samples=5, maps=maps
    )
    (row,) = result.table
    expected = {
        "method": "saliency",
        "deletion AUC": down.mean_auc,
        "deletion, random maps": down.random_mean_auc,
        "insertion AUC": up.mean_auc,
        "insertion, random maps": up.random_mean_auc,
        "top layer random": cascade.mean[0],
        "all measured layers random": cascade.mean[-1],
        "other class": other.mean,
        "random twin": twin.mean,
        "ROAD, MoRF": roads.mean,
        "max sensitivity": stable.mean,
    }
    assert list(row) == list(expected)
    for key, value in list(expected.items())[1:]:
        assert row[key] == pytest.approx(value, rel=1e-6), key
    assert "deletion AUC" in str(result) and "saliency" in str(result)
    assert len(result.plot().axes) == 2


def test_given_maps_are_scored_as_they_are(model_and_images):
    model, x = model_and_images
    target = targets.Class(1)
    planted = np.zeros((len(x), 32, 32), np.float32)
    planted[:, :16] = 1.0  # the top half first
    result = explanation_quality(
        model,
        x,
        target,
        methods=("saliency",),
        steps=4,
        layers=["classes"],
        probabilities=False,
        maps={"saliency": planted},
    )
    down = deletion(model, x, planted, target, 4, "blur", random_baseline=True, seed=0)
    assert result.table[0]["deletion AUC"] == pytest.approx(down.mean_auc, rel=1e-6)


def test_clipped_outputs_without_logits_leave_the_curves_out():
    """Outputs clipped at 1 (a ReLU with max_value): saturated, and no logits behind."""
    inputs = keras.Input((8, 8, 1))
    h = keras.layers.Dense(2, bias_initializer=keras.initializers.Constant([9.0, -9.0]))(
        keras.layers.Flatten()(inputs)
    )
    model = keras.Model(inputs, keras.layers.ReLU(max_value=1.0)(h))
    x = np.random.default_rng(0).random((4, 8, 8, 1)).astype("float32")
    with pytest.warns(KerasIntrospectWarning, match="is zero"):  # saliency's own warning
        result = explanation_quality(model, x, targets.Class(0), methods=("saliency",), steps=3)
    assert result.scored is None and not result.informative
    assert "uninformative" in result.note and result.curves == {"saliency": ()}
    assert "deletion AUC" not in result.table[0]
    with pytest.raises(ValueError, match="No curves to plot"):
        result.plot()
