"""`ImageClusterer`: one point per image, clustered with DPGMM, GMM or k-means."""

from __future__ import annotations

import functools
import itertools
from dataclasses import dataclass

import numpy as np
from sklearn.base import BaseEstimator, ClusterMixin
from sklearn.utils.validation import check_is_fitted

from keras_introspect._repr import html_repr, summary_repr
from keras_introspect._validation import check_one_of, check_positive_int
from keras_introspect.cluster._base import LayerEstimator, MixtureMixin, Scaling, pool
from keras_introspect.targets import one_output_layer


class ImageClusterer(MixtureMixin, LayerEstimator, ClusterMixin, BaseEstimator):
    """Cluster whole images by what one layer computes for them.

    Each image is one point: the layer's output flattened (`pooling=None`,
    as in `000` §3 and `001`), or pooled over the spatial axes to one value
    per channel. Values are mapped to `scale` as in `PixelClusterer`. With
    `method="dpgmm"` the number of clusters is found by the Dirichlet
    process; `"kmeans"` and `"gmm"` take `n_clusters`.

    Args:
        model: a built `keras.Model`.
        layer: selector of one layer (dense or convolutional).
        method: `"dpgmm"`, `"kmeans"` or `"gmm"`.
        pooling: `None`, `"avg"` or `"max"`.
        max_features: when the flattened output has more values, it is
            average-pooled over spatial blocks (the coarsest grid that fits)
            so that a point has at most this many features; `None` never
            pools. Recorded in `n_features_`. The grid is chosen from the
            activation's size, so a model of free input size pools the size
            its images give (`predict` then needs images of the fit's size).
        max_components, alpha, init_params, covariance_prior, n_clusters,
        scale, backend, max_iter, batch_size, random_state, verbose: as
            in `PixelClusterer`.
        min_weight: as in `PixelClusterer`, but `0` by default: a cluster of
            one image is a finding here (`000` Fig. 4 has three).
        covariance_type: `"diag"` by default: images are few and features
            many, and a full covariance needs `n_features**2` values per
            component.

    Attributes:
        labels_: cluster of each image seen by `fit` (largest cluster 0).
        layer_path_, n_clusters_, n_components_used_, weights_, shares_,
        cluster_centers_, components_, mixture_, converged_, data_range_:
            as in `PixelClusterer`.
        n_features_: features per point (after pooling).

    Example:
        >>> ic = ki.ImageClusterer(model, layer="fc2", method="dpgmm",
        ...                        alpha=0.1, random_state=0).fit(x)   # doctest: +SKIP
        >>> print(ic.composition(y))  # share of each label per cluster  # doctest: +SKIP
    """

    def __init__(
        self,
        model,
        layer,
        method="dpgmm",
        pooling=None,
        max_features=None,
        max_components=50,
        alpha=0.2,
        min_weight=0.0,
        init_params="kmeans",
        covariance_prior="data",
        reg_covar=1e-6,
        n_clusters=None,
        scale=(0, 10),
        covariance_type="diag",
        backend="tensorflow",
        max_iter=100,
        batch_size=32,
        random_state=None,
        verbose=0,
    ):
        self.model = model
        self.layer = layer
        self.method = method
        self.pooling = pooling
        self.max_features = max_features
        self.max_components = max_components
        self.alpha = alpha
        self.min_weight = min_weight
        self.init_params = init_params
        self.covariance_prior = covariance_prior
        self.reg_covar = reg_covar
        self.n_clusters = n_clusters
        self.scale = scale
        self.covariance_type = covariance_type
        self.backend = backend
        self.max_iter = max_iter
        self.batch_size = batch_size
        self.random_state = random_state
        self.verbose = verbose

    def fit(self, X, y=None):
        """Cluster the images of `X`.

        Args:
            X: images, or a stream of batches; or the layer's activations
                stored on disk (a dask or Zarr array with channels last, or
                the path of a store written by
                `ki.distributed.activations_to_zarr`): each chunk is pooled
                where it is and only one point per image comes back, then
                fitted as in memory.
            y: ignored (see `composition`).

        Returns:
            self
        """
        scale = self._check_mixture_params()
        check_one_of(self.pooling, "pooling", (None, "avg", "max"))
        if self.max_features is not None:
            check_positive_int(self.max_features, "max_features")
        info = one_output_layer(self._get_introspector(), self.layer)
        self.layer_path_ = info.path
        source = self._source(X, info, reset=True)
        return self._fit_on(self._points(source), scale)

    def _fit_on(self, points, scale):
        """Scale `points` (one row per image) and cluster them: the fitted state."""
        scaling = Scaling(scale)
        scaling.update(points)
        self.data_range_ = (scaling.low, scaling.high)
        self.n_features_ = points.shape[1]
        self.labels_ = self._fit_points(points, scaling)
        return self

    def fit_features(self, features):
        """Cluster points already read and reduced for this layer, one row per image.

        `features_reducer()` gives the reduction `fit` applies on the device;
        `layerwise_purity` applies those of all its layers in one forward
        pass and fits each layer's clusterer on its rows with this method.
        The clusterer is then fitted as by `fit` on the same images.

        Args:
            features: `(n_images, n_features)` float array.

        Returns:
            self
        """
        scale = self._check_mixture_params()
        info = one_output_layer(self._get_introspector(), self.layer)
        self.layer_path_ = info.path
        specs = self._get_introspector().input_specs
        self.input_shape_ = tuple(specs[0].shape[1:]) if specs else None
        self.n_features_in_ = (
            int(np.prod(self.input_shape_))
            if self.input_shape_ and None not in self.input_shape_
            else None
        )
        points = np.asarray(features)
        if points.ndim != 2 or not len(points):
            raise ValueError(
                f"Expected features (n_images, n_features). Received: shape {points.shape}"
            )
        return self._fit_on(points, scale)

    def features_reducer(self):
        """`(reduce, n_features)`: what `fit` computes from the layer's activation
        (channels last) on the device, and the features per image it leaves
        (`None` when they depend on the image size)."""
        check_one_of(self.pooling, "pooling", (None, "avg", "max"))
        info = one_output_layer(self._get_introspector(), self.layer)
        self.layer_path_ = info.path
        shape = info.output_shape
        if len(shape) <= 2:
            kept = shape[1:]
        else:
            channels = shape[info.channel_axis % len(shape)]
            grid = self._max_features() and _pooled_grid(info, self._max_features())
            kept = (*grid, channels) if grid else (channels,) if self.pooling else shape[1:]
        # None when the size depends on the images (a model taking any input size)
        n = None if None in kept else int(np.prod(kept))
        return self._reduce(), n

    def _max_features(self):
        """The feature budget of the block means (`None`: none, e.g. when pooling)."""
        return self.max_features if self.pooling is None else None

    def _points(self, source):
        """One point per image `(n, n_features)`: each chunk reduced where it is."""
        parts = source.collect_chunks(
            _flatten, reduce=self._reduce(), key=self._reduce_key(), what="Reducing"
        )
        return np.concatenate(parts)

    def _reduce(self):
        # the grid of the block means is chosen from the activation's own shape, so
        # that a model of free input size pools the size its images give
        return functools.partial(
            _reduce_images, max_features=self._max_features(), pooling=self.pooling
        )

    def _reduce_key(self):
        return ("grid", self._max_features(), self.pooling)

    def predict(self, X):
        """Cluster of each image, `(n,)`.

        `X` may be stored activations as in `fit`; the result is then a lazy
        dask array, computed chunk by chunk where the chunks are.
        """
        check_is_fitted(self)
        info = self._get_introspector().layer(self.layer_path_)
        source = self._source(X, info, reset=False)
        return source.map_chunks(
            functools.partial(_label_points, self._labeler(), self.n_features_),
            np.int32,
            item_shape=(),
            reduce=self._reduce(),
            key=self._reduce_key(),
        )

    def composition(self, y):
        """Counts and shares of each label of the fitted images per cluster.

        The table of `000` §3: "cluster 1 is 74.4 % benign".

        Args:
            y: one label per image given to `fit`.

        Returns:
            `Composition`.
        """
        check_is_fitted(self)
        return composition(self.labels_, y, self.n_clusters_)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.requires_fit = True
        tags.input_tags.allow_nan = False
        return tags


@dataclass
class Composition:
    """Which labels each cluster holds.

    Attributes:
        classes: the distinct labels, sorted.
        counts: `(n_clusters, n_classes)` images per cluster and label.
        shares: `counts` divided by the cluster sizes (rows sum to 1).
        sizes: images per cluster.
    """

    __repr__ = summary_repr

    classes: np.ndarray
    counts: np.ndarray
    shares: np.ndarray
    sizes: np.ndarray

    def plot(self, ax=None):
        """Stacked bars of the labels of each cluster (`plotting.plot_composition`);
        the Axes."""
        from keras_introspect.plotting.grids import plot_composition

        return plot_composition(self, ax=ax)

    def _repr_html_(self) -> str:
        return html_repr(self)

    @property
    def table(self) -> list:
        """One dict per cluster: size, majority label and its share, all shares."""
        rows = []
        for c, (size, share) in enumerate(zip(self.sizes, self.shares, strict=True)):
            top = int(share.argmax())
            rows.append(
                {
                    "cluster": c,
                    "size": int(size),
                    "majority": self.classes[top].item(),
                    "share": float(share[top]),
                    **{f"share[{k}]": float(s) for k, s in zip(self.classes, share, strict=True)},
                }
            )
        return rows

    def __str__(self) -> str:
        lines = [f"{'cluster':>7} {'size':>6}  composition"]
        for row, share in zip(self.table, self.shares, strict=True):
            parts = ", ".join(
                f"{100 * s:.1f} % {k}"
                for s, k in sorted(zip(share, self.classes, strict=True), key=lambda t: -t[0])
                if s > 0
            )
            lines.append(f"{row['cluster']:>7} {row['size']:>6}  {parts}")
        return "\n".join(lines)


def composition(labels, y, n_clusters=None) -> Composition:
    """Cross-tabulate cluster labels against class labels (see `Composition`)."""
    y = np.asarray(y)
    labels = np.asarray(labels)
    if y.ndim != 1 or len(y) != len(labels):
        raise ValueError(
            f"Expected one label per clustered image ({len(labels)}). Received: y with "
            f"shape {y.shape}"
        )
    classes, codes = np.unique(y, return_inverse=True)
    n = max(int(labels.max()) + 1, n_clusters or 0)
    counts = np.zeros((n, len(classes)), dtype=np.int64)
    np.add.at(counts, (labels, codes), 1)
    sizes = counts.sum(axis=1)
    shares = counts / np.maximum(sizes, 1)[:, None]
    return Composition(classes, counts, shares, sizes)


def _pooled_grid(info, max_features):
    """Coarsest spatial grid keeping at most `max_features` values of a layer's
    output, or None (`info`'s static shape; None as well where it is unknown)."""
    shape = info.output_shape
    if len(shape) < 3:
        return None
    channel = info.channel_axis % len(shape)
    spatial = [shape[i] for i in range(1, len(shape)) if i != channel]
    if None in spatial or shape[channel] is None:
        return None
    return _grid_for(spatial, shape[channel], max_features)


def _grid_for(spatial, channels, max_features):
    """Coarsest grid keeping at most `max_features` values of a `(*spatial,
    channels)` activation, or None (it has no more already)."""
    if not len(spatial) or int(np.prod(spatial)) * channels <= max_features:
        return None
    grid = list(spatial)
    while int(np.prod(grid)) * channels > max_features and max(grid) > 1:
        i = int(np.argmax(grid))
        grid[i] = (grid[i] + 1) // 2
    return tuple(grid)


def _reduce_images(a, grid=None, pooling=None, max_features=None):
    """`(b, ...)` to one point per image: block means over `grid` (by default
    the coarsest keeping at most `max_features` values), or `pooling`.

    `a` is the layer's activation on the device (a tensor, in the compiled
    forward pass, traced once per input shape) or a numpy chunk of stored
    activations: both are reduced by the same TensorFlow ops, in float32 as
    the forward pass gives them. The grid for `max_features` comes from `a`'s
    own shape, so a model of free input size pools the size of its images.
    """
    if isinstance(a, np.ndarray):
        import tensorflow as tf

        a = tf.constant(np.asarray(a, dtype=np.float32))
    if grid is None and max_features is not None and a.shape.rank > 2:
        shape = tuple(a.shape[1:])
        if None in shape:
            raise ValueError(
                f"Expected an activation of known size to pool to max_features="
                f"{max_features}. Received: shape {(None, *shape)}"
            )
        grid = _grid_for(shape[:-1], shape[-1], max_features)
    if grid is not None and a.shape.rank > 2:
        return _block_mean(a, grid)
    return pool(a, pooling)


def _flatten(chunk):
    return chunk.reshape(len(chunk), -1)


def _label_points(labeler, n_features, chunk):
    """Cluster of each image of a reduced chunk `(b, ...)`."""
    points = _flatten(chunk)
    if points.shape[1] != n_features:
        raise ValueError(
            f"Expected images giving {n_features} features per image at the layer, as "
            f"in fit (a model of free input size pools the size of its images). "
            f"Received: {points.shape[1]} features"
        )
    return labeler(points)


def _block_mean(a, grid):
    """Average `(b, *spatial, c)` over blocks to `(b, *grid, c)` (adaptive pooling)."""
    import tensorflow as tf

    for axis, size in enumerate(grid, start=1):
        length = a.shape[axis]
        edges = [(i * length) // size for i in range(size + 1)]
        parts = [
            tf.reduce_mean(tf.gather(a, tf.range(lo, max(hi, lo + 1)), axis=axis), axis=axis)
            for lo, hi in itertools.pairwise(edges)
        ]
        a = tf.stack(parts, axis=axis)
    return a
