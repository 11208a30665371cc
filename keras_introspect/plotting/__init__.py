"""matplotlib figures of the results of the computation modules.

Functions here only draw: they take result objects and arrays and return
matplotlib Axes or Figures (or, for `overlay`, an RGB array to show or embed).
matplotlib is imported when a function runs.
"""

from keras_introspect.plotting.cluster import (
    plot_category_tree,
    plot_label_maps,
    plot_label_overlay,
    plot_purity,
    plot_spanning_tree,
)
from keras_introspect.plotting.grids import (
    plot_composition,
    plot_exemplars,
    plot_feature_visualization,
    plot_histograms,
    plot_history,
    plot_occlusion,
    plot_prediction_tree,
    plot_saliency_grid,
)
from keras_introspect.plotting.overlay import important_mask, overlay, signed_overlay
from keras_introspect.plotting.quality import plot_causal_curves, plot_randomization

__all__ = [
    "important_mask",
    "overlay",
    "plot_category_tree",
    "plot_causal_curves",
    "plot_composition",
    "plot_exemplars",
    "plot_feature_visualization",
    "plot_histograms",
    "plot_history",
    "plot_label_maps",
    "plot_label_overlay",
    "plot_occlusion",
    "plot_prediction_tree",
    "plot_purity",
    "plot_randomization",
    "plot_saliency_grid",
    "plot_spanning_tree",
    "signed_overlay",
]
