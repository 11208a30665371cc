"""Grids of results: each drawing shows the values it was given, in the right places."""

import matplotlib
import numpy as np
import pytest

matplotlib.use("Agg")

import matplotlib.pyplot as plt

from keras_introspect.cluster.image import Composition
from keras_introspect.cluster.trees import prediction_tree
from keras_introspect.optimize.activation_maximization import AMResult
from keras_introspect.plotting import (
    plot_composition,
    plot_exemplars,
    plot_feature_visualization,
    plot_histograms,
    plot_history,
    plot_prediction_tree,
    plot_saliency_grid,
)
from keras_introspect.plotting.grids import _tree_layout
from keras_introspect.probes.histogram import ActivationHistogram
from keras_introspect.probes.top_activating import Exemplars


@pytest.fixture(autouse=True)
def _close():
    yield
    plt.close("all")


def _texts(fig):
    return [t.get_text() for ax in fig.axes for t in [*ax.texts, ax.title]]


def test_saliency_grid_draws_each_overlay_and_flags_constant_maps():
    images = np.random.default_rng(0).random((2, 8, 8, 1))
    ramp = np.tile(np.arange(8.0), (2, 8, 1))
    fig = plot_saliency_grid(images, {"ramp": ramp, "zero": np.zeros((2, 8, 8))})
    assert len(fig.axes) == 6
    assert [ax.get_title() for ax in fig.axes[:3]] == ["input", "ramp", "zero"]
    # the ramp's right half is important: those pixels are brightened
    shown = fig.axes[1].images[0].get_array()
    assert shown[:, 6:].mean() > shown[:, :2].mean()
    assert _texts(fig).count("constant map (0)") == 2
    with pytest.raises(ValueError, match=r"one \(H, W\) map per image for 'bad'"):
        plot_saliency_grid(images, {"bad": np.zeros((3, 8, 8))})


def test_saliency_grid_draws_the_receptive_field_box():
    images = np.zeros((1, 10, 10, 1))
    fig = plot_saliency_grid(
        images, {"m": np.zeros((1, 10, 10))}, receptive_fields=[((2, 5), (3, 7))]
    )
    shown = np.asarray(fig.axes[1].images[0].get_array())
    blue = (shown[..., 2] > 0.5) & (shown[..., 0] < 0.5)
    rows, cols = np.nonzero(blue)
    assert (rows.min(), rows.max(), cols.min(), cols.max()) == (2, 4, 3, 6)


def _exemplars(crops):
    values = np.array([[3.0, 2.0], [5.0, 1.0]], "float32")
    return Exemplars(
        "conv", np.array([4, 7]), "max", np.array([[0, 1], [2, 0]]), values, crops=crops
    )


def test_exemplars_show_crops_or_the_indexed_images():
    crops = np.random.default_rng(0).random((2, 2, 3, 3, 1))
    fig = plot_exemplars(_exemplars(crops))
    assert [ax.get_title() for ax in fig.axes] == ["3", "2", "5", "1"]
    np.testing.assert_allclose(fig.axes[2].images[0].get_array(), _unit(crops[1, 0, ..., 0]))
    assert {"filter 4", "filter 7"} <= set(_texts(fig))
    x = np.arange(3 * 4 * 4, dtype=float).reshape(3, 4, 4, 1)
    fig = plot_exemplars(_exemplars(None), x=x)
    np.testing.assert_allclose(fig.axes[2].images[0].get_array(), _unit(x[2, ..., 0]))
    with pytest.raises(ValueError, match="pass the images"):
        plot_exemplars(_exemplars(None))


def _unit(a):
    return (a - a.min()) / (a.max() - a.min())


def test_feature_visualization_pairs_images_with_their_curves():
    history = {"objective": np.arange(10.0)[:, None, None] * np.array([[1.0, 2.0]])[None]}
    images = np.random.default_rng(0).random((1, 2, 6, 6, 1))
    result = AMResult(images, history, np.array([[9.0, 18.0]]), channels=[5])
    fig = plot_feature_visualization(result)
    assert len(fig.axes) == 4
    assert [fig.axes[j].get_title() for j in range(2)] == ["filter 5\n9", "filter 5\n18"]
    np.testing.assert_allclose(fig.axes[3].lines[0].get_ydata(), 2 * np.arange(10.0))


def test_histograms_draw_the_counts():
    h = ActivationHistogram(
        "model/conv",
        2,
        "max",
        np.array([0.0, 1, 1, 2]),
        np.array([1, 2, 1]),
        np.array([0, 1, 2, 3.0]),
    )
    fig = plot_histograms([h, h])
    heights = [p.get_height() for p in fig.axes[0].patches]
    assert heights == [1, 2, 1]
    assert fig.axes[0].get_title() == "conv filter 2\n75 % active"
    with pytest.raises(ValueError, match="at least one"):
        plot_histograms([])


def test_composition_bars_are_the_shares():
    counts = np.array([[3, 1], [0, 2]])
    shares = counts / counts.sum(1, keepdims=True)
    comp = Composition(np.array(["a", "b"]), counts, shares, counts.sum(1))
    ax = plot_composition(comp)
    widths = [p.get_width() for p in ax.patches]
    np.testing.assert_allclose(widths, [0.75, 0.0, 0.25, 1.0])  # label a per cluster, then b
    assert [t.get_text() for t in ax.get_yticklabels()] == ["0 (4)", "1 (2)"]


def test_prediction_tree_places_parents_over_their_children():
    rng = np.random.default_rng(0)
    maps = rng.random((6, 2, 2, 4)) * (rng.random((6, 1, 1, 4)) > 0.3)
    root = prediction_tree(maps)
    xs, ys = _tree_layout(root)
    for node in root.walk():
        if node.children:
            assert xs[node.id] == pytest.approx(np.mean([xs[c.id] for c in node.children]))
            assert ys[node.id] > max(ys[c.id] for c in node.children)
        else:
            assert ys[node.id] == 0
    assert sorted(xs[n.id] for n in root.walk() if n.is_leaf) == list(range(6))

    class Tree:
        root_, layer_path_ = root, "conv"

    ax = plot_prediction_tree(Tree())
    labels = [t.get_text() for t in ax.texts]
    for node in root.walk():
        if node.critical_filter is not None:
            assert f"f{node.critical_filter}\n{len(node.filters)}" in labels
    assert {str(i) for i in range(6)} <= set(labels)


def test_history_has_one_line_per_metric():
    ax = plot_history({"loss": [3.0, 2.0, 1.0], "accuracy": [0.1, 0.5, 0.9]})
    assert [line.get_label() for line in ax.lines] == ["loss", "accuracy"]
    np.testing.assert_allclose(ax.lines[1].get_ydata(), [0.1, 0.5, 0.9])


def test_saliency_grid_rows_carry_labels_and_mark_flagged_rows():
    import matplotlib.pyplot as plt

    from keras_introspect.plotting.grids import plot_saliency_grid

    fig = plot_saliency_grid(
        np.zeros((2, 6, 6, 1)),
        {"m": np.random.default_rng(0).random((2, 6, 6))},
        row_labels=["true 1, predicted 1 (0.90)", "true 2, predicted 0 (0.51)"],
        flagged=[False, True],
    )
    texts = [[t for t in ax.texts] for ax in fig.axes[::2]]
    assert [t[0].get_text() for t in texts] == [
        "true 1, predicted 1 (0.90)",
        "true 2, predicted 0 (0.51)",
    ]
    assert texts[0][0].get_color() == "black" and texts[1][0].get_color() == "red"
    plt.close(fig)
