"""The thesis' overlay procedure (`004` §4.3)."""

import numpy as np
import pytest
from skimage.segmentation import find_boundaries

from keras_introspect.plotting import important_mask, overlay
from keras_introspect.plotting.overlay import BLUE, GREEN


def _blob(size=32, centre=(10, 20), width=3.0):
    rows, cols = np.indices((size, size))
    return np.exp(-((rows - centre[0]) ** 2 + (cols - centre[1]) ** 2) / (2 * width**2))


def test_important_mask_is_the_blob_around_its_peak():
    saliency = _blob() + 0.01 * np.random.default_rng(0).random((32, 32))
    mask = important_mask(saliency, sigma=1.0)
    assert mask[10, 20]
    assert not mask[0, 0] and not mask[31, 0] and not mask[31, 31]
    # one connected region, about the blob's core: larger than the 5 % marker
    # area, smaller than the half above the median
    assert 0.05 * mask.size < mask.sum() < 0.5 * mask.size
    rows, cols = np.nonzero(mask)
    assert abs(rows.mean() - 10) < 1.5 and abs(cols.mean() - 20) < 1.5


def test_two_blobs_give_two_regions_and_constant_maps_none():
    from scipy import ndimage

    saliency = _blob(centre=(8, 8)) + _blob(centre=(24, 24))
    _, regions = ndimage.label(important_mask(saliency, high=0.9))
    assert regions == 2
    assert not important_mask(np.ones((8, 8))).any()


def test_overlay_brightens_outlines_and_boxes():
    rng = np.random.default_rng(1)
    image = rng.uniform(0, 255, (32, 32, 3))
    saliency = _blob()
    rgb = overlay(image, saliency, receptive_field=((-3, 6), (25, 40)), brighten=0.5)
    assert rgb.shape == (32, 32, 3) and 0 <= rgb.min() and rgb.max() <= 1
    mask = important_mask(saliency)
    edge = find_boundaries(mask, mode="inner")
    base = (image - image.min()) / (image.max() - image.min())
    inside = mask & ~edge
    np.testing.assert_allclose(rgb[inside], base[inside] + 0.5 * (1 - base[inside]))
    np.testing.assert_allclose(rgb[edge], np.tile(GREEN, (edge.sum(), 1)))
    # the box, clipped to the image: rows 0..5, cols 25..31
    np.testing.assert_allclose(rgb[0, 25:32], np.tile(BLUE, (7, 1)))
    np.testing.assert_allclose(rgb[5, 25:32], np.tile(BLUE, (7, 1)))
    np.testing.assert_allclose(rgb[0:6, 25], np.tile(BLUE, (6, 1)))
    # untouched elsewhere: outside the mask and the box the image is unchanged
    outside = ~mask
    outside[0:6, 25:32] = False
    np.testing.assert_allclose(rgb[outside], base[outside])


def test_overlay_takes_grey_images_and_checks_shapes():
    rgb = overlay(np.zeros((16, 16, 1)), _blob(16, (8, 8)), value_range=(0, 1))
    assert rgb.shape == (16, 16, 3)
    with pytest.raises(ValueError, match="size"):
        overlay(np.zeros((16, 16)), np.zeros((8, 8)))
    with pytest.raises(ValueError, match="image"):
        overlay(np.zeros((16, 16, 2)), np.zeros((16, 16)))
    with pytest.raises(ValueError, match="low < high"):
        important_mask(np.zeros((4, 4)), low=0.9, high=0.5)
    with pytest.raises(ValueError, match="finite"):
        important_mask(np.full((4, 4), np.nan))
