"""matplotlib figures of the results of the computation modules.

Functions here only draw: they take result objects and arrays and return
matplotlib Axes or Figures. matplotlib is imported when a function runs.
"""

from keras_introspect.plotting.cluster import (
    plot_category_tree,
    plot_label_maps,
    plot_purity,
)

__all__ = ["plot_category_tree", "plot_label_maps", "plot_purity"]
