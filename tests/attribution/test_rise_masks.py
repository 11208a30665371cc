"""RISE upsamples its masks once per call, for all the images, and its maps are unchanged."""

import pickle

import keras
import numpy as np

import keras_introspect.attribution._mask_cache as mask_cache
from keras_introspect.attribution.rise import RISE

L = keras.layers


def _linear_model():
    """f(x) = sum(w * x), weights drawn by numpy (not by Keras' initialisers)."""
    rng = np.random.default_rng(0)
    w = rng.normal(size=(6, 6, 2)).astype("float32")
    model = keras.Sequential([keras.Input((6, 6, 2)), L.Flatten(), L.Dense(1, use_bias=False)])
    model.layers[-1].set_weights([w.reshape(-1, 1)])
    return model, w, rng.random((3, 6, 6, 2)).astype("float32")


# the first row of each map and the map sums, as the implementation before the mask cache
# (masks upsampled inside every step) computed them for this model, images and seed
BEFORE_ROW = np.array(
    [
        [-0.703211, -0.380355, 0.20691, 0.648688, 0.71679, 0.556703],
        [-1.456606, -1.190875, -0.797156, -0.471024, -0.285307, -0.172417],
        [-0.821663, -0.663924, -0.383591, -0.074063, 0.212681, 0.447449],
    ]
)
BEFORE_SUMS = np.array([14.001011, -14.41626, 12.913264])


def test_masks_are_upsampled_once_per_call_and_maps_are_unchanged(monkeypatch):
    model, w, x = _linear_model()
    # 30 masks, 12 rows per step: one image per step, 3 steps (the last padded to 12)
    rise = RISE(model, 0, n_masks=30, grid=3, p=0.5, seed=11, batch_size=12)
    maps = rise.explain(x)
    assert rise._upsampled_rows == 36  # once per call, not once per image (3 x 36)
    np.testing.assert_allclose(maps[:, 0], BEFORE_ROW, atol=2e-6)
    np.testing.assert_allclose(maps.sum(axis=(1, 2)), BEFORE_SUMS, rtol=1e-6)
    # by hand: the linear model's score of every masked copy, weighted by its mask
    masks = rise.masks(x.shape[1:])
    scores = np.einsum("nhwc,hwc,mhw->nm", x.astype(np.float64), w, masks)
    expected = np.einsum("nm,mhw->nhw", scores, masks) / (30 * 0.5)
    np.testing.assert_allclose(maps, expected, rtol=1e-5, atol=1e-5)
    intro = rise._intro
    traces = intro.trace_count
    # another object (other seed and grid, same image size): no new trace, its own masks
    other = RISE(model, 0, n_masks=30, grid=4, p=0.5, seed=12, batch_size=12)
    other.explain(x)
    assert intro.trace_count == traces + 1  # its upsampling only (another grid)
    assert other._upsampled_rows == 36
    # without room to keep them, each image's steps upsample again: the same maps
    monkeypatch.setattr(mask_cache, "MASK_CACHE_BYTES", 0)
    again = rise.explain(x)
    assert rise._upsampled_rows == 3 * 36
    np.testing.assert_array_equal(again, maps)
    # several images per step: all 30 masks in one step, upsampled once
    monkeypatch.setattr(mask_cache, "MASK_CACHE_BYTES", 1 << 30)
    wide = rise.explain(x, batch_size=90)
    assert rise._upsampled_rows == 30
    np.testing.assert_allclose(wide, maps, rtol=1e-5, atol=1e-6)


def test_the_kept_masks_are_dropped_after_the_call_and_the_object_pickles():
    model, _, x = _linear_model()
    rise = RISE(model, 0, n_masks=10, grid=2, batch_size=4)
    maps = rise.explain(x)
    assert rise._masks is None  # the device memory of the masks is freed
    copy = pickle.loads(pickle.dumps(rise))
    copy.model = model  # a pickled model is another model; compare on this one
    np.testing.assert_array_equal(copy.explain(x), maps)
