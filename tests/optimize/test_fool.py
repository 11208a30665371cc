"""Pixel fooling against closed forms on a linear softmax model."""

import keras
import numpy as np
import pytest

import keras_introspect as ki


def linear_model(activation="softmax"):
    """logits = sum(x) * [1, -1, 0.5]: the gradient of logit c is constant."""
    kernel = np.tile([[1.0, -1.0, 0.5]], (4, 1))
    model = keras.Sequential(
        [
            keras.Input((2, 2, 1)),
            keras.layers.Flatten(),
            keras.layers.Dense(3, activation=activation, name="dense"),
        ]
    )
    model.get_layer("dense").set_weights([kernel, np.zeros(3)])
    return model


@pytest.fixture(autouse=True)
def no_step_cap(monkeypatch):
    monkeypatch.delenv("KI_MAX_STEPS", raising=False)


def test_steps_to_flip_follow_the_closed_form():
    """SGD on logit 1 moves every pixel by -lr per step: s = sum(x) falls 4 * lr per step.

    Class 1 (-s) wins over class 0 (s) and class 2 (s / 2) once s < 0.
    """
    x = np.stack([np.full((2, 2, 1), v, "float32") for v in (0.3, 1.1, -0.2)])
    res = ki.fool(linear_model(), x, target=1, learning_rate=0.1, steps=10)
    # s = 4v - 0.4 t < 0  <=>  t > 10 v
    np.testing.assert_array_equal(res.steps_to_flip, [4, -1, 0])
    np.testing.assert_array_equal(res.flipped, [True, False, True])
    np.testing.assert_allclose(res.images, x - 1.0, atol=1e-5)  # 10 steps of -0.1
    np.testing.assert_allclose(res.heatmap, np.ones((3, 2, 2)), atol=1e-5)  # sqrt(1 channel * 1^2)
    np.testing.assert_allclose(
        res.history["objective"][:, 0], -(1.2 - 0.4 * np.arange(10)), atol=1e-5
    )
    s = 4 * (x[:, 0, 0, 0] - 1.0)
    logits = np.stack([s, -s, s / 2], axis=1)
    expected = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(res.probabilities, expected, rtol=1e-5)
    assert res.initial_probabilities.argmax(axis=1).tolist() == [0, 0, 1]


def test_per_image_targets_value_range_and_batches():
    x = np.full((3, 2, 2, 1), 0.5, "float32")
    res = ki.fool(
        linear_model(),
        x,
        target=[1, 0, 2],
        learning_rate=0.2,
        steps=5,
        value_range=(0.0, 1.0),
        batch_size=2,
    )
    np.testing.assert_allclose(res.images[0], 0.0)  # pushed down, clipped at 0
    np.testing.assert_allclose(res.images[1], 1.0)  # pushed up, clipped at 1
    assert res.steps_to_flip.tolist() == [-1, 0, -1]  # at s = 0 class 0 wins ties


def test_logit_output_models_get_probabilities():
    x = np.full((1, 2, 2, 1), 0.25, "float32")
    res = ki.fool(linear_model(activation=None), x, target=0, learning_rate=0.01, steps=2)
    assert res.probabilities.sum() == pytest.approx(1.0)


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="class index"):
        ki.fool(linear_model(), np.zeros((1, 2, 2, 1)), target=5)
    with pytest.raises(ValueError, match="learning_rate"):
        ki.fool(linear_model(), np.zeros((1, 2, 2, 1)), target=1, learning_rate=0)


def test_the_readme_call_flips_every_three_of_the_digits_model(monkeypatch):
    """Issue 19, item 8: the README's `fool` line, as written, flips its images."""
    monkeypatch.delenv("KI_MAX_STEPS", raising=False)
    digits, x, y, _ = ki.datasets.digits_model()
    flips = ki.fool(
        digits,
        x[y == 3][:8],
        target=8,
        learning_rate=0.1,
        optimizer="adam",
        steps=100,
        value_range=(0, 16),
    )
    assert flips.flipped.all() and (flips.steps_to_flip > 0).all()
    assert (flips.probabilities.argmax(1) == 8).all()


def test_target_is_the_name_and_target_class_warns():
    """Issue 20: what is explained is `target` everywhere."""
    x = np.full((1, 2, 2, 1), 0.95, np.float32)
    new = ki.fool(linear_model(), x, target=1, learning_rate=0.1, steps=10)
    with pytest.warns(FutureWarning, match="fool\\(target_class=...\\) is deprecated"):
        old = ki.fool(linear_model(), x, target_class=1, learning_rate=0.1, steps=10)
    np.testing.assert_array_equal(new.images, old.images)
    with pytest.raises(TypeError, match="needs the class to push towards"):
        ki.fool(linear_model(), x)
