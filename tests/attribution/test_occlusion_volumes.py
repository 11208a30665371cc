"""Occlusion of volumes against a brute-force numpy loop, on a small non-linear 3-D CNN.

The scores of the windows come from the device in batches, the map is built once
from their drops (`occlusion._box_sum`); the loop here occludes one window at a
time and adds its drop to every voxel it covers.
"""

import itertools

import keras
import numpy as np
import pytest

import keras_introspect as ki
from keras_introspect.attribution.occlusion import _box_sum, window_starts

T = ki.targets
L = keras.layers


@pytest.fixture(scope="module")
def cnn():
    keras.utils.set_random_seed(22)
    return keras.Sequential(
        [
            keras.Input((6, 7, 8, 2)),
            L.Conv3D(3, 3, activation="relu", name="conv1"),
            L.MaxPooling3D(2, name="pool1"),
            L.Flatten(),
            L.Dense(4, name="out"),
        ]
    )


def _brute_force(score, x, window, stride, baseline):
    """Mean drop of `score` (n, K) over the windows covering each voxel: (n, K, D, H, W)."""
    spatial = x.shape[1:-1]
    base = score(x)
    total = np.zeros((len(x), base.shape[1], *spatial))
    count = np.zeros(spatial)
    starts = [window_starts(s, w, t) for s, w, t in zip(spatial, window, stride, strict=True)]
    for corner in itertools.product(*starts):
        box = tuple(slice(c, c + w) for c, w in zip(corner, window, strict=True))
        occluded = x.copy()
        occluded[(slice(None), *box)] = baseline[box]
        drop = base - score(occluded)
        total[(slice(None), slice(None), *box)] += drop[:, :, None, None, None]
        count[box] += 1
    return total / count


@pytest.mark.parametrize(
    "window, stride, batch_size",
    [
        (3, None, 8),  # tiling windows plus a last one at each border; padded last step
        ((2, 3, 4), (1, 2, 3), 5),  # overlapping windows, per-axis sizes: 45, 2 per pass
        ((2, 3, 4), (1, 2, 3), 6),  # 3 images x 1 window per pass, own pass
        ((6, 7, 8), None, 64),  # one window: the whole volume
        (2, 1, 512),  # every window and the images in one pass
    ],
)
def test_volume_maps_equal_brute_force(cnn, window, stride, batch_size):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3, 6, 7, 8, 2)).astype("float32")
    baseline = rng.normal(size=(6, 7, 8, 2)).astype("float32")
    units = [3, 0]
    occ = ki.Occlusion(cnn, T.Output(index=units), window=window, stride=stride, baseline=baseline)
    maps = occ.explain(x, batch_size=batch_size)
    per_axis = occ.window_
    strides = occ.stride_
    expected = _brute_force(
        lambda a: cnn(a).numpy()[:, units].astype(np.float64), x, per_axis, strides, baseline
    )
    assert maps.shape == (3, 2, 6, 7, 8)
    np.testing.assert_allclose(maps, expected, rtol=1e-4, atol=1e-5)
    counts = np.zeros((6, 7, 8))
    for corner in itertools.product(
        *[window_starts(s, w, t) for s, w, t in zip((6, 7, 8), per_axis, strides, strict=True)]
    ):
        counts[tuple(slice(c, c + w) for c, w in zip(corner, per_axis, strict=True))] += 1
    np.testing.assert_array_equal(occ.counts_, counts)


def test_every_plan_of_the_own_score_gives_the_brute_force_map(cnn):
    """8 windows. 9 rows per pass: the image is one more row of its windows' pass.
    4 rows, 2 images: 2 images x 2 windows per pass, the images scored together in a
    pass of their own. 2 rows, 3 images (which do not split evenly): one image, 2
    windows per pass, each image scored alone."""
    x = np.random.default_rng(1).normal(size=(3, 6, 7, 8, 2)).astype("float32")
    expected = _brute_force(
        lambda a: cnn(a).numpy()[:, [1]].astype(np.float64),
        x,
        (3, 4, 4),
        (3, 4, 4),
        np.zeros((6, 7, 8, 2), np.float32),
    )[:, 0]
    occ = ki.Occlusion(cnn, 1, window=(3, 4, 4))
    for n, batch_size, plan, own_row in [(3, 9, (1, 9), 1), (2, 4, (2, 2), 0), (3, 2, (1, 2), 0)]:
        maps = occ.explain(x[:n], batch_size=batch_size)
        assert occ.n_windows_ == 8 and occ._own_row == own_row
        assert occ._plan(n, batch_size) == plan
        np.testing.assert_allclose(maps, expected[:n], rtol=1e-4, atol=1e-5)


def test_box_sum_equals_adding_each_window():
    """The separable box sum against adding every window's value in a loop, with
    windows that tile, overlap, skip positions (stride > window) and miss the border."""
    rng = np.random.default_rng(2)
    size = (9, 10, 7)
    starts = [np.array([0, 3, 6]), np.array([0, 1, 2, 5]), np.array([0, 4])]
    window = (3, 2, 2)
    values = rng.normal(size=(2, 3, 3, 4, 2))
    expected = np.zeros((2, 3, *size))
    for i, j, k in itertools.product(*[range(len(s)) for s in starts]):
        box = tuple(
            slice(s[c], s[c] + w) for s, c, w in zip(starts, (i, j, k), window, strict=True)
        )
        expected[(slice(None), slice(None), *box)] += values[:, :, i, j, k, None, None, None]
    np.testing.assert_allclose(_box_sum(values, starts, window, size), expected, atol=1e-12)
    zero = np.zeros_like(values)
    zero[:, :, 0, 0, 0] = 1.0  # positions covered by zero values only stay exactly 0
    out = _box_sum(zero, starts, window, size)
    assert np.all(out[:, :, 3:] == 0) and np.all(out[:, :, :3, :2, :2] == 1)
