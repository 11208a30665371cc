"""Randomized twins: same architecture, fresh seeded weights, model untouched."""

import keras
import numpy as np
import pytest

import keras_introspect as ki

NAMES = ["sequential", "functional", "nested", "nested_two_levels", "subclassed"]


@pytest.mark.parametrize("name", NAMES)
def test_twin_has_the_architecture_and_fresh_weights(get_model, name):
    from conftest import sample_input

    model = get_model(name)
    before = [w.copy() for w in model.get_weights()]
    twin = ki.randomized_twin(model, seed=1)
    assert twin is not model
    assert [w.shape for w in twin.get_weights()] == [w.shape for w in before]
    x = sample_input(name)
    assert np.asarray(twin(x)).shape == np.asarray(model(x)).shape
    kernels = [w for w in model.weights if w.path.endswith("kernel")]
    twin_kernels = [w for w in twin.weights if w.path.endswith("kernel")]
    assert all(not np.allclose(a, b) for a, b in zip(kernels, twin_kernels, strict=True))
    for w, b in zip(model.get_weights(), before, strict=True):
        np.testing.assert_array_equal(w, b)  # the model is not changed
    again = ki.randomized_twin(model, seed=1)
    for a, b in zip(twin.get_weights(), again.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    other = ki.randomized_twin(model, seed=2)
    assert any(
        not np.array_equal(a, b)
        for a, b in zip(twin.get_weights(), other.get_weights(), strict=True)
    )


def test_twin_keeps_preprocessing_state_and_initializer_distributions():
    norm = keras.layers.Normalization(mean=3.0, variance=4.0, name="norm")
    model = keras.Sequential(
        [keras.Input((64,)), norm, keras.layers.Dense(256, name="d", bias_initializer="ones")]
    )
    model.get_layer("d").set_weights([np.full((64, 256), 9.0), np.zeros(256)])
    twin = ki.randomized_twin(model)
    np.testing.assert_allclose(twin.get_layer("norm").mean, 3.0)
    kernel, bias = twin.get_layer("d").get_weights()
    np.testing.assert_array_equal(bias, 1.0)  # drawn again from its initializer
    limit = np.sqrt(6 / (64 + 256))  # glorot uniform
    assert np.abs(kernel).max() <= limit and kernel.std() == pytest.approx(
        limit / np.sqrt(3), rel=0.05
    )


def test_bias_free_layers_keep_a_random_kernel():
    # a bias-free layer still has a bias_initializer (zeros): it must not land on the kernel
    conv = keras.layers.Conv2D(3, 1, use_bias=False, name="c")
    dense = keras.layers.Dense(2, use_bias=False, name="d")
    model = keras.Sequential([keras.Input((4, 4, 3)), conv, keras.layers.Flatten(), dense])
    twin = ki.randomized_twin(model, seed=1)
    for name in ("c", "d"):
        kernel = np.asarray(twin.get_layer(name).kernel)
        assert np.all(kernel != 0)
        assert not np.allclose(kernel, np.asarray(model.get_layer(name).kernel))
