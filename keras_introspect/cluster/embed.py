"""`embed`: 2-D view of what one layer computes for a set of images (`003` Fig. 9)."""

from __future__ import annotations

import numpy as np

from keras_introspect._validation import UNSET, check_one_of, check_positive_int, renamed


def embed(
    model,
    layer,
    x,
    method="pca",
    n_components=2,
    pooling=None,
    batch_size=32,
    seed=None,
    verbose=0,
    random_state=UNSET,
    **params,
) -> np.ndarray:
    """Coordinates of each image in a low-dimensional map of a layer's activations.

    Args:
        model: a built `keras.Model`.
        layer: selector of one layer; `None` embeds the input images
            themselves (flattened), for comparison (`003` Fig. 9, left).
        x: images or a stream of batches.
        method: `"pca"` (default), `"tsne"`, or `"umap"` (needs the extra
            `umap`: `pip install "keras-introspect[umap]"`).
        n_components: output dimensions.
        pooling: `None` (flatten), `"avg"` or `"max"`.
        batch_size, verbose: streaming options.
        seed: seed of the embedding (an integer, or None).
        random_state: the former name of `seed` (a `FutureWarning`).
        **params: passed to `umap.UMAP`, `sklearn.decomposition.PCA` or
            `sklearn.manifold.TSNE`.

    Returns:
        float `(n, n_components)`.

    Example:
        >>> xy = ki.embed(model, "conv4", x, method="pca")   # doctest: +SKIP
        >>> plt.scatter(*xy.T, c=y)                          # doctest: +SKIP
    """
    random_state = renamed(seed, random_state, "seed", "random_state", "embed")
    check_one_of(method, "method", ("umap", "pca", "tsne"))
    n_components = check_positive_int(n_components, "n_components")
    if method == "umap":
        try:
            import umap
        except ImportError as error:
            raise ImportError(
                "method='umap' needs umap-learn: pip install 'keras-introspect[umap]' "
                "(or use method='pca' or 'tsne')"
            ) from error
        reducer = umap.UMAP(n_components=n_components, random_state=random_state, **params)
    elif method == "pca":
        from sklearn.decomposition import PCA

        reducer = PCA(n_components=n_components, random_state=random_state, **params)
    else:
        from sklearn.manifold import TSNE

        params.setdefault("perplexity", 30.0)
        reducer = TSNE(n_components=n_components, random_state=random_state, **params)
    points = _points(model, layer, x, pooling, batch_size, verbose)
    if method == "tsne" and reducer.perplexity >= len(points):
        reducer.set_params(perplexity=max(1.0, (len(points) - 1) / 3))
    return np.asarray(reducer.fit_transform(points), dtype=np.float64)


def _points(model, layer, x, pooling, batch_size, verbose):
    from keras_introspect._data import Batches
    from keras_introspect.probes._scan import introspector

    if layer is None:
        return np.concatenate([np.reshape(b, (len(b), -1)) for b in Batches(x, batch_size)])
    intro = introspector(model)
    path = intro.layer(layer).path
    values = intro.activations(x, path, batch_size=batch_size, verbose=verbose, pooling=pooling)
    return values[path].reshape(len(values[path]), -1)
