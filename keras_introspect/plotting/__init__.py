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
from keras_introspect.plotting.concepts import (
    plot_concept_counts,
    plot_concept_exemplars,
    plot_concept_importance,
    plot_concept_maps,
    plot_tcav,
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
from keras_introspect.plotting.nd import (
    heat_overlay,
    orthogonal_slices,
    outline_region,
    plot_dense_explanation,
    plot_orthogonal_slices,
    plot_signal_saliency,
    plot_volume_grid,
    plot_volume_slices,
    signal_strip,
)
from keras_introspect.plotting.overlay import important_mask, overlay, signed_overlay
from keras_introspect.plotting.quality import plot_causal_curves, plot_randomization
from keras_introspect.plotting.results import plot_map_comparison, plot_out_of_sample, show

__all__ = [
    "heat_overlay",
    "important_mask",
    "orthogonal_slices",
    "outline_region",
    "overlay",
    "plot_category_tree",
    "plot_causal_curves",
    "plot_composition",
    "plot_concept_counts",
    "plot_concept_exemplars",
    "plot_concept_importance",
    "plot_concept_maps",
    "plot_dense_explanation",
    "plot_exemplars",
    "plot_feature_visualization",
    "plot_histograms",
    "plot_history",
    "plot_label_maps",
    "plot_label_overlay",
    "plot_map_comparison",
    "plot_occlusion",
    "plot_orthogonal_slices",
    "plot_out_of_sample",
    "plot_prediction_tree",
    "plot_purity",
    "plot_randomization",
    "plot_saliency_grid",
    "plot_signal_saliency",
    "plot_spanning_tree",
    "plot_tcav",
    "plot_volume_grid",
    "plot_volume_slices",
    "show",
    "signal_strip",
    "signed_overlay",
]
