"""The figures of the explanation-quality metrics show the numbers of the results."""

import keras
import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from keras_introspect import metrics
from keras_introspect.plotting import plot_causal_curves, plot_randomization

L = keras.layers


def _model():
    keras.utils.set_random_seed(0)
    return keras.Sequential(
        [
            keras.Input((6, 6, 1)),
            L.Conv2D(2, 3, activation="relu", name="conv"),
            L.Flatten(),
            L.Dense(2, name="out"),
        ]
    )


def test_causal_curves_figure_has_a_panel_per_kind_and_the_aucs_in_its_legend():
    model = _model()
    x = np.random.default_rng(0).uniform(size=(3, 6, 6, 1)).astype("float32")
    maps = np.random.default_rng(1).random((3, 6, 6))
    down = metrics.deletion(model, x, maps, 1, random_baseline=True, normalize=False)
    up = metrics.insertion(model, x, maps, 1, normalize=False)
    fig = plot_causal_curves({"random": [down, up]})
    deletion_ax, insertion_ax = fig.axes
    assert "deletion" in deletion_ax.get_title() and "insertion" in insertion_ax.get_title()
    legend = [t.get_text() for t in deletion_ax.get_legend().get_texts()]
    assert legend == [f"random {down.mean_auc:.3f} ({down.random_mean_auc:.3f})"]
    line = deletion_ax.get_lines()[-1]  # the method's mean curve, after the random one
    np.testing.assert_allclose(line.get_ydata(), down.curves.mean(axis=0))
    assert len(insertion_ax.get_lines()) == 1  # no random baseline asked for insertion
    plt.close(fig)


def test_randomization_plot_has_one_point_per_layer():
    model = _model()
    x = np.random.default_rng(2).uniform(size=(2, 6, 6, 1)).astype("float32")
    result = metrics.randomization_check("saliency", model, x, 0)
    ax = plot_randomization({"saliency": result})
    (line,) = ax.get_lines()[:1]
    np.testing.assert_allclose(line.get_ydata(), result.mean)
    assert [t.get_text() for t in ax.get_xticklabels()] == ["out", "conv"]
    plt.close(ax.figure)
