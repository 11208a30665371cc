"""Clustering of activations and trees of categories and filters (scikit-learn estimators).

- `PixelClusterer`: every pixel of a layer across its channels, DPGMM /
  k-means / GMM, label images (`000` §2);
- `ImageClusterer`: one point per image, with `composition` against labels;
- `layerwise_purity`: purity, NMI and ARI of the clusters of every layer (`001`);
- `CategoryTree` (`003` Algorithm 1) and `PredictionTree` (Algorithm 2);
- `DPGMM`: the variational Dirichlet-process mixture on TensorFlow;
- `embed`: UMAP / PCA / t-SNE coordinates of a layer's activations;
- `LayerActivations`: images -> activations, for Pipelines.
"""

from keras_introspect.cluster.dpgmm import DPGMM
from keras_introspect.cluster.embed import embed
from keras_introspect.cluster.image import Composition, ImageClusterer, composition
from keras_introspect.cluster.layer_activations import LayerActivations
from keras_introspect.cluster.pixel import PixelClusterer
from keras_introspect.cluster.purity import PurityResult, layerwise_purity, purity_score
from keras_introspect.cluster.trees import (
    CategoryTree,
    PredictionTree,
    TreeNode,
    TreePath,
    category_hierarchy,
    critical_filter,
    minimum_spanning_tree,
    prediction_tree,
)

__all__ = [
    "DPGMM",
    "CategoryTree",
    "Composition",
    "ImageClusterer",
    "LayerActivations",
    "PixelClusterer",
    "PredictionTree",
    "PurityResult",
    "TreeNode",
    "TreePath",
    "category_hierarchy",
    "composition",
    "critical_filter",
    "embed",
    "layerwise_purity",
    "minimum_spanning_tree",
    "prediction_tree",
    "purity_score",
]
