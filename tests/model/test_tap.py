"""Truncated taps: stop after the tapped layers, accept patch-sized inputs."""

import numpy as np
import pytest
import tensorflow as tf
from conftest import sample_input

import keras_introspect as ki

CASES = [
    ("sequential", "pool1", 8),
    ("functional", "conv_b", 7),
    ("nested", "block_2_add", 9),
    ("nested_two_levels", "enc_conv", 7),
]


@pytest.mark.parametrize(("name", "layer", "patch"), CASES)
def test_truncated_tap_matches_the_full_pass_and_takes_patches(get_model, name, layer, patch):
    model = get_model(name)
    intro = ki.Introspector(model)
    x = sample_input(name)
    (full,), output = intro.tap([layer])(x)
    (cut,), nothing = intro.tap([layer], truncate=True)(x)
    assert output is not None and nothing is None
    np.testing.assert_allclose(np.asarray(cut), np.asarray(full), rtol=1e-6)
    small = np.random.default_rng(0).uniform(size=(2, patch, patch, 3)).astype("float32")
    fn = tf.function(lambda t: intro.tap([layer], truncate=True)(t)[0][0], autograph=False)
    assert fn(small).shape[0] == 2
    # the model is left as it was: full-size calls work and small ones are refused again
    np.testing.assert_allclose(np.asarray(model(x)), np.asarray(output), rtol=1e-6)
    if name != "sequential":  # Sequential never checked input shapes
        with pytest.raises(ValueError):
            model(small)
