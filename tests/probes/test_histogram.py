"""Activation histograms against numpy on brute-force activations."""

import keras
import numpy as np
import pytest

import keras_introspect as ki


@pytest.mark.parametrize("aggregate", ["max", "mean", None])
def test_histogram_equals_numpy(digits_cnn, aggregate):
    model, x, _ = digits_cnn
    acts = np.asarray(keras.Model(model.inputs[0], model.get_layer("conv1").output)(x))[..., 4]
    expected = acts.reshape(-1) if aggregate is None else getattr(np, aggregate)(acts, axis=(1, 2))
    h = ki.activation_histogram(model, "conv1", 4, x, bins=12, aggregate=aggregate, batch_size=100)
    np.testing.assert_allclose(np.sort(h.values), np.sort(expected), rtol=1e-5, atol=1e-6)
    counts, edges = np.histogram(expected, bins=12)
    np.testing.assert_allclose(h.edges, edges, rtol=1e-5)
    assert np.abs(h.counts - counts).sum() <= 2  # float32 values on bin edges
    assert h.counts.sum() == len(expected)
    assert h.share_active == pytest.approx(np.mean(expected > 0), abs=1e-3)
