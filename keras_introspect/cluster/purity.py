"""Layer-by-layer clustering against the labels (Girish et al., `001` §2)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from keras_introspect._repr import summary_repr
from keras_introspect._validation import check_one_of


@dataclass
class PurityResult:
    """How well the clusters of each layer match the labels.

    Attributes:
        layers: layer paths, in model order.
        purity: per layer, the share of images whose cluster's majority label
            is their own label.
        nmi: normalized mutual information between clusters and labels.
        ari: adjusted Rand index between clusters and labels.
        n_clusters: clusters per layer (found by the mixture for `"dpgmm"`).
        n_features: features per image used for each layer (after pooling).
        method: the clustering method.
    """

    __repr__ = summary_repr

    layers: list
    purity: np.ndarray
    nmi: np.ndarray
    ari: np.ndarray
    n_clusters: np.ndarray
    n_features: np.ndarray
    method: str

    @property
    def table(self) -> list:
        """One dict per layer: layer, purity, NMI, ARI, n_clusters, n_features."""
        return [
            {
                "layer": layer,
                "purity": float(p),
                "nmi": float(m),
                "ari": float(a),
                "n_clusters": int(k),
                "n_features": int(f),
            }
            for layer, p, m, a, k, f in zip(
                self.layers,
                self.purity,
                self.nmi,
                self.ari,
                self.n_clusters,
                self.n_features,
                strict=True,
            )
        ]

    def __str__(self) -> str:
        width = max(len("layer"), *(len(layer) for layer in self.layers))
        lines = [f"{'layer':<{width}}  purity    NMI    ARI  clusters  features"]
        for row in self.table:
            lines.append(
                f"{row['layer']:<{width}}  {row['purity']:6.3f} {row['nmi']:6.3f} "
                f"{row['ari']:6.3f} {row['n_clusters']:9d} {row['n_features']:9d}"
            )
        return "\n".join(lines)

    def plot(self, ax=None):
        """Purity, NMI and ARI against depth (matplotlib); returns the Axes."""
        from keras_introspect.plotting import plot_purity

        return plot_purity(self, ax=ax)


def purity_score(y, labels) -> float:
    """Share of points whose cluster's most frequent label is their label."""
    from sklearn.metrics.cluster import contingency_matrix

    table = contingency_matrix(y, labels)
    return float(table.max(axis=0).sum() / table.sum())


def layerwise_purity(
    model,
    x,
    y,
    layers="all",
    method="kmeans",
    n_clusters=None,
    pooling=None,
    max_features=16384,
    batch_size=32,
    random_state=None,
    verbose=0,
    **clusterer_params,
) -> PurityResult:
    """Cluster every selected layer's activations and score the clusters against `y`.

    The analysis of `001` §2: each image is one point (the layer's output
    flattened), the points of each layer are clustered into as many clusters
    as there are classes, and purity, NMI and ARI say how well the clusters
    follow the classes. Purity rising with depth shows the network separating
    the classes layer by layer.

    Layers are read one at a time, each with a forward pass stopped at the
    layer, so memory holds one layer's points only; layers larger than
    `max_features` values per image are average-pooled over spatial blocks
    first (see `ImageClusterer`).

    Args:
        model: a built `keras.Model` with one input.
        x: images (array or stream of batches, in the order of `y`).
        y: one label per image.
        layers: selector of the layers (`"all"`, `"conv"`, a list, ...);
            containers, unused and shared layers and layers with several
            outputs are skipped.
        method: `"kmeans"` (the paper), `"gmm"` or `"dpgmm"`.
        n_clusters: clusters per layer; `None` means the number of classes.
        pooling: `None` (flatten), `"avg"` or `"max"`.
        max_features: see above; `None` never pools.
        batch_size, random_state, verbose: as in `ImageClusterer`.
        **clusterer_params: more `ImageClusterer` parameters (`alpha`,
            `backend`, `covariance_type`, ...).

    Returns:
        `PurityResult` (`.table`, `str()`, `.plot()`).

    Example:
        >>> result = ki.layerwise_purity(model, x, y, layers="all",
        ...                              random_state=0)          # doctest: +SKIP
        >>> print(result)                                         # doctest: +SKIP
    """
    from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

    from keras_introspect.cluster.image import ImageClusterer
    from keras_introspect.probes._scan import introspector

    check_one_of(method, "method", ("kmeans", "gmm", "dpgmm"))
    intro = introspector(model)
    y = np.asarray(y)
    if y.ndim != 1:
        raise ValueError(f"Expected `y` with one label per image. Received: shape {y.shape}")
    if n_clusters is None:
        n_clusters = len(np.unique(y))
    infos = [
        info
        for info in intro.select(layers)
        if not info.is_container and isinstance(info.output_shape, tuple) and info.n_calls == 1
    ]
    if not infos:
        raise ValueError(f"No single-output layer matches layers={layers!r}")
    rows = []
    for info in infos:
        clusterer = ImageClusterer(
            model,
            info.path,
            method=method,
            pooling=pooling,
            max_features=max_features,
            n_clusters=None if method == "dpgmm" else n_clusters,
            batch_size=batch_size,
            random_state=random_state,
            verbose=verbose,
            **clusterer_params,
        )
        labels = clusterer.fit(x).labels_
        if len(labels) != len(y):
            raise ValueError(
                f"Expected one label per image: x holds {len(labels)} images, y has {len(y)}"
            )
        rows.append(
            (
                info.path,
                purity_score(y, labels),
                normalized_mutual_info_score(y, labels),
                adjusted_rand_score(y, labels),
                clusterer.n_clusters_,
                clusterer.n_features_,
            )
        )
    paths, purity, nmi, ari, counts, features = zip(*rows, strict=True)
    return PurityResult(
        list(paths),
        np.array(purity),
        np.array(nmi),
        np.array(ari),
        np.array(counts),
        np.array(features),
        method,
    )
