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
    assert titles == ["input", "a\n1 clusters", "b\n3 clusters"]
    shown = figure.axes[2].get_images()[0].get_array()
    np.testing.assert_array_equal(shown, maps[1])


def test_category_tree_dendrogram_labels_every_category():
    inputs = keras.Input((3,))
    model = keras.Model(inputs, keras.layers.Activation("linear", name="identity")(inputs))
    x = np.array([[1, 0, 0], [0.9, 0.1, 0], [0, 1, 0], [0, 0, 1]], "float32")
    tree = ki.CategoryTree(model, "identity").fit(x, ["p", "q", "r", "s"])
    ax = plot_category_tree(tree)
    labels = sorted(t.get_text() for t in ax.get_yticklabels())
    assert labels == ["p", "q", "r", "s"]
