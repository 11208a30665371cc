"""Signed maps keep their sign in the pictures (issue 21, item 3)."""

import numpy as np
import pytest

from keras_introspect.plotting import plot_saliency_grid, signed_overlay
from keras_introspect.plotting.overlay import is_signed


def test_signed_overlay_blends_towards_red_and_blue_by_magnitude():
    image = np.full((3, 3), 0.5)
    saliency = np.array([[2.0, 1.0, 0.0], [0.0, 0.0, 0.0], [0.0, -1.0, -2.0]])
    rgb = signed_overlay(image, saliency, value_range=(0, 1), strength=1.0)
    np.testing.assert_allclose(rgb[1, 1], [0.5, 0.5, 0.5])  # 0: the grey image
    # the ends of RdBu_r at full strength; half the magnitude: half way from grey
    from matplotlib import colormaps

    red, blue = (np.array(colormaps["RdBu_r"](v)[:3]) for v in (1.0, 0.0))
    np.testing.assert_allclose(rgb[0, 0], red)
    np.testing.assert_allclose(rgb[2, 2], blue)
    half = np.array(colormaps["RdBu_r"](0.75)[:3])
    np.testing.assert_allclose(rgb[0, 1], 0.5 * 0.5 + 0.5 * half)
    # one limit for several maps: the same value, the same colour
    np.testing.assert_allclose(
        signed_overlay(image, saliency / 2, (0, 1), limit=2.0, strength=1.0)[0, 0],
        0.5 * 0.5 + 0.5 * half,
    )
    with pytest.raises(ValueError, match="size"):
        signed_overlay(image, np.zeros((2, 2)))


def test_the_grid_draws_signed_columns_signed_and_the_others_with_the_thesis_overlay():
    images = np.full((1, 6, 6, 1), 0.5)
    positive = np.zeros((1, 6, 6))
    positive[0, :3] = 1.0
    signed = positive.copy()
    signed[0, 3:] = -1.0
    assert is_signed(signed) and not is_signed(positive)
    assert not is_signed(np.where(signed < 0, -0.001, signed))  # below 1 % of the top
    fig = plot_saliency_grid(images, {"unsigned": positive, "signed": signed})
    unsigned_rgb = fig.axes[1].images[0].get_array()
    signed_rgb = fig.axes[2].images[0].get_array()
    # the thesis overlay brightens: grey stays grey; the signed one tints
    assert np.allclose(unsigned_rgb[5, 5, 0], unsigned_rgb[5, 5, 2])
    assert signed_rgb[0, 0, 0] > signed_rgb[0, 0, 2]  # red for
    assert signed_rgb[5, 5, 2] > signed_rgb[5, 5, 0]  # blue against
    plain = plot_saliency_grid(images, {"signed": signed}, signed=False)
    rgb = plain.axes[1].images[0].get_array()
    assert np.allclose(rgb[5, 5, 0], rgb[5, 5, 2])
    with pytest.raises(ValueError, match="signed"):
        plot_saliency_grid(images, {"s": signed}, signed="yes")
