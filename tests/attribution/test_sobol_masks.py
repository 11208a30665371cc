"""Sobol attribution upsamples its masks once per call, for all the images."""

import keras
import numpy as np

import keras_introspect.attribution._mask_cache as mask_cache
import keras_introspect.attribution.sobol as sobol_module
from keras_introspect.attribution.sobol import SobolAttribution

L = keras.layers
X = np.random.default_rng(1).random((3, 8, 8, 2)).astype("float32")


def _conv_model():
    keras.utils.set_random_seed(3)
    return keras.Sequential(
        [
            keras.Input((8, 8, 2)),
            L.Conv2D(3, 3, activation="relu"),
            L.GlobalAveragePooling2D(),
            L.Dense(2),
        ]
    )


def _by_hand(model, sobol, x):
    """Each image times each mask of `masks()`, scored by the model; Jansen's indices."""
    masks = sobol.masks(x.shape[1:])[..., None]  # (rows, 8, 8, 1)
    scores = np.stack([model.predict(img * masks, verbose=0)[:, 0] for img in x])
    indices = sobol_module.jansen_total_indices(scores, sobol.nb_design, sobol.grid_size)
    return np.repeat(np.repeat(indices, 8 // sobol.grid_size, 1), 8 // sobol.grid_size, 2)


def test_masks_are_upsampled_once_per_call_and_maps_are_unchanged(monkeypatch):
    model = _conv_model()
    # 8 * (2**2 + 1) = 40 rows per image, 12 per step: one image per step, 4 steps
    sobol = SobolAttribution(model, 0, grid_size=2, nb_design=8, seed=5, batch_size=12)
    maps = sobol.explain(X)
    assert sobol._upsampled_rows == 48  # 4 steps of 12 rows (the last padded), not 3 x 48
    np.testing.assert_allclose(maps, _by_hand(model, sobol, X), rtol=1e-4, atol=1e-6)
    intro = sobol._intro
    traces = intro.trace_count
    # another object of the model: no new trace of the step or of the upsampling
    other = SobolAttribution(model, 1, grid_size=2, nb_design=8, seed=5, batch_size=12)
    other.explain(X)
    assert intro.trace_count == traces and other._upsampled_rows == 48
    # without room to keep them, each image's steps upsample again: the same maps
    monkeypatch.setattr(mask_cache, "MASK_CACHE_BYTES", 0)
    again = sobol.explain(X)
    assert sobol._upsampled_rows == 3 * 48
    np.testing.assert_array_equal(again, maps)
