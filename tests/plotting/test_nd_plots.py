"""Pictures of signals, volumes and dense outputs (issue 22): the pixels, not just figures."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib import colormaps
from skimage.segmentation import find_boundaries

from keras_introspect.plotting import (
    orthogonal_slices,
    outline_region,
    overlay,
    plot_dense_explanation,
    plot_orthogonal_slices,
    plot_saliency_grid,
    plot_signal_saliency,
    plot_volume_slices,
    signal_strip,
)
from keras_introspect.plotting.nd import INK, RED, volume_slices
from keras_introspect.plotting.overlay import BLUE


@pytest.fixture(autouse=True)
def _close():
    yield
    plt.close("all")


def _is(pixels, colour):
    return np.all(np.isclose(pixels, colour), axis=-1)


def test_signal_strip_draws_the_line_and_the_map_as_a_band():
    signal = np.linspace(-1.0, 1.0, 40)  # a ramp: row falls from the bottom to the top
    saliency = np.zeros(40)
    saliency[10] = 2.0
    rgb = signal_strip(signal, saliency, height=20, band=5)
    assert rgb.shape == (25, 40, 3)
    rows = np.round((1 - (signal + 1) / 2) * 19).astype(int)
    assert np.all(_is(rgb[rows, np.arange(40)], INK))  # the line passes through each sample
    line = _is(rgb[:20], INK)
    assert line.sum() < 3 * 40  # a line, not a filled area
    inferno = colormaps["inferno"]
    band = rgb[20:]
    np.testing.assert_allclose(band[:, 10], np.tile(inferno(1.0)[:3], (5, 1)))
    np.testing.assert_allclose(band[:, 0], np.tile(inferno(0.0)[:3], (5, 1)))
    # a signed map: red for, blue against the target, white-ish at 0
    signed = np.zeros(40)
    signed[5], signed[30] = 1.0, -1.0
    band = signal_strip(signal, signed, band=3)[-1]
    assert band[5, 0] > 0.3 > band[5, 2] and band[30, 2] > 0.3 > band[30, 0]
    np.testing.assert_allclose(band[0], colormaps["RdBu_r"](0.5)[:3])
    # overlay dispatches a (L,) map to the strip; (L, C) signals are averaged
    strip = signal_strip(signal, saliency)
    np.testing.assert_array_equal(overlay(signal[:, None], saliency), strip)


def test_plot_signal_saliency_bands_hold_the_map_colours():
    signals = np.random.default_rng(0).normal(size=(2, 32, 1))
    maps = {"a": np.tile(np.arange(32.0), (2, 1)), "b": np.ones((2, 32))}
    fig = plot_signal_saliency(signals, maps, titles=["one", "two"])
    assert len(fig.axes) == 6
    band = fig.axes[1].images[0].get_array()
    np.testing.assert_allclose(band[0], colormaps["inferno"](np.arange(32) / 31)[:, :3])
    np.testing.assert_allclose(fig.axes[0].lines[0].get_ydata(), signals[0, :, 0])
    assert fig.axes[0].texts[0].get_text() == "one"
    lines = plot_signal_saliency(signals, maps["a"], style="line")
    assert len(lines.axes) == 4 and not lines.axes[1].images
    with pytest.raises(ValueError, match="style"):
        plot_signal_saliency(signals, maps, style="dots")
    with pytest.raises(ValueError, match=r"maps 'a' of shape \(2, 32\)"):
        plot_signal_saliency(signals, {"a": np.ones((2, 31))})
    # plot_saliency_grid dispatches signals
    grid = plot_saliency_grid(signals, maps)
    np.testing.assert_allclose(grid.axes[1].images[0].get_array()[0], band[0])


def _blob_volume():
    volume = np.zeros((8, 10, 12))
    saliency = np.zeros((8, 10, 12))
    saliency[5, 3:6, 7:10] = 1.0
    saliency[5, 4, 8] = 3.0
    volume[5, 4, 8] = 1.0
    return volume, saliency


def test_orthogonal_slices_cross_at_the_maximum():
    volume, saliency = _blob_volume()
    position, panels = orthogonal_slices(volume[..., None], saliency, crosshair="lines")
    assert position == (5, 4, 8)
    depth, row, column = panels
    assert depth.shape == (10, 12, 3) and row.shape == (8, 12, 3) and column.shape == (8, 10, 3)
    assert np.all(_is(depth[4, :], BLUE)) and np.all(_is(depth[:, 8], BLUE))
    assert np.all(_is(row[5, :], BLUE)) and np.all(_is(row[:, 8], BLUE))
    assert np.all(_is(column[5, :], BLUE)) and np.all(_is(column[:, 4], BLUE))
    # ticks (the default) mark the row and column on the edges and leave the map free
    _, (depth, _, _) = orthogonal_slices(volume, saliency)
    blue = _is(depth, BLUE)
    assert blue[4, [0, -1]].all() and blue[[0, -1], 8].all() and blue.sum() == 4
    # the map in colour over grey: a pixel moves to inferno(v / max) by 0.8 v / max
    inferno = lambda v: np.asarray(colormaps["inferno"](v)[:3])  # noqa: E731
    np.testing.assert_allclose(depth[4, 7], 0.8 / 3 * inferno(1 / 3))  # volume 0 (black)
    np.testing.assert_allclose(depth[4, 8], 0.2 * 1.0 + 0.8 * inferno(1.0))  # volume 1 (white)
    assert np.all(depth[0, 1] == 0.0)  # the volume's minimum, no map
    position, panels = orthogonal_slices(volume, saliency, position=(0, 0, 0), crosshair=None)
    assert np.all(panels[0] == 0.0)  # the map is 0 on that slice: the (constant) volume only
    # overlay dispatches volumes (D, H, W, C) to the three slices side by side
    montage = overlay(volume[..., None], saliency)
    assert montage.shape == (10, 12 + 1 + 12 + 1 + 10, 3)
    np.testing.assert_array_equal(montage[:10, :12], panels_at_peak(volume, saliency)[0])
    fig = plot_orthogonal_slices(volume, saliency)
    assert [ax.get_title() for ax in fig.axes] == ["depth 5", "row 4", "column 8"]
    with pytest.raises(ValueError, match="inside the volume"):
        orthogonal_slices(volume, saliency, position=(8, 0, 0))


def panels_at_peak(volume, saliency):
    return orthogonal_slices(volume, saliency)[1]


def test_volume_slice_grid_always_shows_the_peak_slice():
    volume, saliency = _blob_volume()
    assert volume_slices(volume.shape, 0, 4) == [0, 2, 5, 7]  # 5, not 4: the peak
    assert volume_slices(volume.shape, "column", 3, saliency) == [0, 8, 11]
    fig = plot_volume_slices(volume, saliency, n_slices=4, ncols=2)
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert titles == ["depth 0", "depth 2", "depth 5", "depth 7"]
    shown = [ax.images[0].get_array() for ax in fig.axes if ax.images]
    coloured = [np.ptp(p, axis=-1).max() > 0 for p in shown]  # grey has equal R, G, B
    assert coloured == [False, False, True, False]  # the map is only on the peak's slice
    with pytest.raises(ValueError, match="axis"):
        plot_volume_slices(volume, saliency, axis=3)
    # plot_saliency_grid dispatches volumes: the slice through each volume's peak
    grid = plot_saliency_grid(volume[None, ..., None], {"map": saliency[None]})
    assert grid.axes[0].get_ylabel() == "depth 5"
    np.testing.assert_array_equal(grid.axes[1].images[0].get_array(), shown[2])


def test_the_explained_region_is_outlined_at_the_input_scale():
    image = np.zeros((32, 32, 3))
    rgb = outline_region(image, np.s_[2:4, 5:7], output_shape=(8, 8))  # stride 4
    box = np.zeros((32, 32), bool)
    box[8:16, 20:28] = True
    red = _is(rgb, RED)
    np.testing.assert_array_equal(red, find_boundaries(box, mode="inner"))
    # a position, a mask reaching the image border, with a map under the outline
    mask = np.zeros((8, 8), bool)
    mask[0:3, 6:] = True
    saliency = np.zeros((32, 32))
    saliency[4:8, 28:30] = 1.0
    rgb = outline_region(image, mask, saliency=saliency)
    big = np.kron(mask, np.ones((4, 4), bool))
    red = _is(rgb, RED)
    assert red[0, 24:].all() and red[:12, 31].all() and not red[~big].any()
    np.testing.assert_allclose(rgb[5, 28], 0.8 * np.asarray(colormaps["inferno"](1.0)[:3]))
    single = _is(outline_region(image, (1, 1), output_shape=(8, 8)), RED)
    assert single[4:8, 4:8].sum() == 12 and single.sum() == 12
    with pytest.raises(ValueError, match="divides it"):
        outline_region(image, np.ones((5, 5), bool))


def test_plot_dense_explanation_outlines_each_image_s_region():
    images = np.zeros((2, 16, 16, 1))
    maps = np.zeros((2, 16, 16))
    positions = np.array([[0, 0], [3, 2]])
    fig = plot_dense_explanation(images, {"saliency": maps}, positions, output_shape=(4, 4))
    shown = [ax.images[0].get_array() for ax in fig.axes]
    assert len(shown) == 4
    for i, (r, c) in enumerate(positions):
        expected = np.zeros((16, 16), bool)
        expected[4 * r : 4 * r + 4, 4 * c : 4 * c + 4] = True
        border = find_boundaries(expected, mode="inner")
        for side in (np.s_[0], np.s_[-1], np.s_[:, 0], np.s_[:, -1]):
            border[side] |= expected[side]  # a side on the image's own border
        for panel in shown[2 * i : 2 * i + 2]:
            np.testing.assert_array_equal(_is(panel, RED), border)
    with pytest.raises(ValueError, match="one region per image"):
        plot_dense_explanation(images, maps, np.zeros((3, 4, 4), bool))
