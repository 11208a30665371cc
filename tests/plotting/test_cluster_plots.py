"""Clustering figures draw what the results hold."""

import keras
import matplotlib
import numpy as np

import keras_introspect as ki
from keras_introspect.plotting import plot_category_tree, plot_label_maps

matplotlib.use("Agg")


def test_label_maps_one_panel_per_map_with_cluster_counts():
    maps = [np.zeros((4, 4), int), np.arange(16).reshape(4, 4) % 3]
    figure = plot_label_maps(maps, titles=["a", "b"], images=np.ones((8, 8)))
    titles = [ax.get_title() for ax in figure.axes if ax.get_title()]
    assert titles == ["input", "a\n1 clusters in this image", "b\n3 clusters in this image"]
    shown = figure.axes[2].get_images()[0].get_array()
    np.testing.assert_array_equal(shown, maps[1])


def _four_category_tree():
    inputs = keras.Input((3,))
    model = keras.Model(inputs, keras.layers.Activation("linear", name="identity")(inputs))
    x = np.array([[1, 0, 0], [0.9, 0.1, 0], [0, 1, 0], [0, 0, 1]], "float32")
    return ki.CategoryTree(model, "identity").fit(x, ["p", "q", "r", "s"])


def test_category_tree_dendrogram_labels_every_category():
    tree = _four_category_tree()
    ax = plot_category_tree(tree)
    labels = sorted(t.get_text() for t in ax.get_yticklabels())
    assert labels == ["p", "q", "r", "s"]


def test_label_map_legend_gives_the_largest_clusters_and_their_shares():
    labels = np.array([[0, 0, 0, 1], [0, 0, 2, 2], [0, 0, 2, 2], [0, 0, 0, 0]])
    figure = plot_label_maps([labels], titles=["m"], legend=2)
    texts = [t.get_text() for t in figure.axes[0].get_legend().get_texts()]
    assert texts == ["0: 69%", "2: 25%"]  # 11 and 4 of 16 pixels, largest first


def test_spanning_tree_draws_each_edge_with_its_weight():
    from matplotlib.text import Annotation

    from keras_introspect.plotting import plot_spanning_tree

    tree = _four_category_tree()
    ax = plot_spanning_tree(tree)
    names = {a.get_text(): np.asarray(a.xy) for a in ax.texts if isinstance(a, Annotation)}
    weights = [t.get_text() for t in ax.texts if not isinstance(t, Annotation)]
    assert sorted(names) == ["p", "q", "r", "s"]
    assert sorted(weights) == sorted(f"{w:.3g}" for _, _, w in tree.mst_)
    assert len(ax.lines) == len(tree.mst_) == 3
    classes = [str(c) for c in tree.classes_]
    for line, (i, j, _) in zip(ax.lines, tree.mst_, strict=True):  # each edge joins its pair
        ends = np.stack(line.get_data(), axis=1)
        expected = np.stack([names[classes[int(i)]], names[classes[int(j)]]])
        np.testing.assert_allclose(ends, expected)


def test_classical_mds_keeps_distances_of_points_in_a_plane():
    from scipy.spatial.distance import cdist

    from keras_introspect.plotting.cluster import _classical_mds

    points = np.random.default_rng(0).random((6, 2))
    distances = cdist(points, points)
    xy = _classical_mds(distances)
    np.testing.assert_allclose(cdist(xy, xy), distances, atol=1e-9)


def test_label_map_titles_agree_with_the_fit():
    """Issue 19, item 5: "k of N clusters in this image", N the fit's n_clusters_."""
    import matplotlib.pyplot as plt

    from keras_introspect.plotting import plot_label_maps

    maps = [np.array([[0, 0], [3, 3]]), np.array([[1, 2], [4, 4]])]
    fig = plot_label_maps(maps, ["conv1", "conv2"], np.zeros((2, 2)), n_clusters=[5, 7], legend=0)
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert titles == [
        "input",
        "conv1\n2 of 5 clusters in this image",
        "conv2\n3 of 7 clusters in this image",
    ]
    plt.close(fig)
