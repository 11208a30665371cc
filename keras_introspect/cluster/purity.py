"""Layer-by-layer clustering against the labels (Girish et al., `001` §2)."""

from __future__ import annotations

import sys
from dataclasses import dataclass

import numpy as np

from keras_introspect._repr import html_repr, summary_repr
from keras_introspect._validation import UNSET, check_one_of, check_verbose, renamed
from keras_introspect.model.selectors import spread


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

    def _repr_html_(self) -> str:
        return html_repr(self)


def purity_score(y, labels) -> float:
    """Share of points whose cluster's most frequent label is their label."""
    from sklearn.metrics.cluster import contingency_matrix

    table = contingency_matrix(y, labels)
    return float(table.max(axis=0).sum() / table.sum())


MAX_LAYERS = 12
"""Layers `layerwise_purity` reads by default (evenly spread over the model)."""


def layerwise_purity(
    model,
    x,
    y,
    layers=None,
    method="kmeans",
    n_clusters=None,
    pooling=None,
    max_features=16384,
    batch_size=32,
    seed=None,
    verbose=0,
    random_state=UNSET,
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
            outputs are skipped. `None` (default): at most `MAX_LAYERS` (12)
            convolution, pooling and dense layers, evenly spread over the
            model, the last one included: a deep backbone's 246 layers would
            each cost a pass and a clustering.
        method: `"kmeans"` (the paper), `"gmm"` or `"dpgmm"`.
        n_clusters: clusters per layer; `None` means the number of classes.
        pooling: `None` (flatten), `"avg"` or `"max"`.
        max_features: see above; `None` never pools.
        batch_size: as in `ImageClusterer`.
        seed: seed of every layer's clustering (`ImageClusterer`'s
            `random_state`); `random_state` is its former name (a
            `FutureWarning`).
        verbose: 1 prints a line per layer on stderr, "layer 3/12 <path>",
            with its purity; 0 is silent.
        **clusterer_params: more `ImageClusterer` parameters (`alpha`,
            `backend`, `covariance_type`, ...).

    Returns:
        `PurityResult` (`.table`, `str()`, `.plot()`).

    Example:
        >>> result = ki.layerwise_purity(model, x, y, layers="all",
        ...                              seed=0)                  # doctest: +SKIP
        >>> print(result)                                         # doctest: +SKIP
    """
    from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

    from keras_introspect.cluster.image import ImageClusterer
    from keras_introspect.probes._scan import introspector

    random_state = renamed(seed, random_state, "seed", "random_state", "layerwise_purity")
    check_one_of(method, "method", ("kmeans", "gmm", "dpgmm"))
    intro = introspector(model)
    y = np.asarray(y)
    if y.ndim != 1:
        raise ValueError(f"Expected `y` with one label per image. Received: shape {y.shape}")
    if n_clusters is None:
        n_clusters = len(np.unique(y))
    candidates = (
        [i for kind in ("conv", "pool", "dense") for i in intro.layers_of_kind(kind)]
        if layers is None
        else intro.select(layers)
    )
    infos = [
        info
        for info in candidates
        if not info.is_container and isinstance(info.output_shape, tuple) and info.n_calls == 1
    ]
    if layers is None:  # in model order, then spread
        order = {info.path: i for i, info in enumerate(intro.layers)}
        infos = spread(sorted(infos, key=lambda info: order[info.path]), MAX_LAYERS)
    if not infos:
        raise ValueError(f"No single-output layer matches layers={layers!r}")
    verbose = check_verbose(verbose)
    clusterers = [
        ImageClusterer(
            model,
            info.path,
            method=method,
            pooling=pooling,
            max_features=max_features,
            n_clusters=None if method == "dpgmm" else n_clusters,
            batch_size=batch_size,
            random_state=random_state,
            verbose=0,  # one named line per layer below, not a bar per layer
            **clusterer_params,
        )
        for info in infos
    ]
    features = _one_pass(intro, clusterers, x, batch_size, len(y), verbose)
    rows = []
    for step, (info, clusterer) in enumerate(zip(infos, clusterers, strict=True), start=1):
        if features is not None:
            labels = clusterer.fit_features(features[step - 1]).labels_
        else:
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
        if verbose:
            print(
                f"layerwise_purity: layer {step}/{len(infos)} {info.path}: "
                f"purity {rows[-1][1]:.3f}",
                file=sys.stderr,
                flush=True,
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


def _one_pass(intro, clusterers, x, batch_size, n_images, verbose):
    """Every clusterer's points from one forward pass over `x` (a list, in order), or
    `None` when they would take more than a quarter of the memory available (or
    `x` is stored activations): then each layer is read on its own pass."""
    from keras_introspect._memory import available_bytes
    from keras_introspect._sources import is_array_source
    from keras_introspect.probes import _scan

    if is_array_source(x):
        return None
    reducers = [c.features_reducer() for c in clusterers]
    if any(n is None for _, n in reducers):  # sizes unknown before reading: one by one
        return None
    needed = 4 * n_images * sum(n for _, n in reducers)
    available = available_bytes()
    if available is not None and needed > available // 4:
        return None
    paths = tuple(c.layer_path_ for c in clusterers)
    key = ("purity", tuple((c.pooling, c.max_features) for c in clusterers))

    def reduce(activations):
        return [fn(a) for (fn, _), a in zip(reducers, activations, strict=True)]

    if verbose:
        print(
            f"layerwise_purity: reading {len(paths)} layers in one pass",
            file=sys.stderr,
            flush=True,
        )
    parts = [[] for _ in paths]
    for outputs, _ in _scan.scan(intro, paths, x, reduce, key, batch_size, 0):
        for part, value in zip(parts, outputs, strict=True):
            part.append(value.reshape(len(value), -1))
    return [np.concatenate(part) for part in parts]
