"""`PixelClusterer`: cluster every spatial position of a layer across its channels.

The method of Malmgren-Hansen et al. (`000` §2): the output `(n, h, w, c)`
of a convolutional layer becomes `n*h*w` points with `c` features, the values
are rescaled to [0, 10], a Dirichlet-process Gaussian mixture (at most 50
components, concentration 0.2) clusters them, and the labels are put back in
place as one label image per input image.
"""

from __future__ import annotations

import functools
import math
import sys
import warnings

import numpy as np
from scipy import ndimage
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted

from keras_introspect._sources import is_array_source
from keras_introspect._validation import check_one_of, check_positive_int
from keras_introspect.cluster._base import (
    LayerEstimator,
    MixtureMixin,
    Scaling,
    SmallestKeys,
    check_range,
    sample_indices,
)
from keras_introspect.targets import one_output_layer


class PixelClusterer(MixtureMixin, LayerEstimator, TransformerMixin, BaseEstimator):
    """Cluster the pixels of a layer's feature maps into label images.

    Every spatial position of the layer's output, with its values across all
    channels, is one point: `(n*h*w, c)` points for `n` images. The values are
    mapped to `scale` with the range seen in `fit`, and the points are
    clustered with a Dirichlet-process Gaussian mixture (`"dpgmm"`, which
    chooses how many of `max_components` to use), a Gaussian mixture
    (`"gmm"`) or k-means (`"kmeans"`, both with `n_clusters`).

    `fit` uses a seeded uniform sample of at most `sample_size` points (drawn
    while streaming, so the activations of all images are never held at
    once); `transform` labels every pixel of any number of images, batch by
    batch. Activations stored on disk (`ki.distributed.activations_to_zarr`)
    are read in parallel by Dask: pass the store's path instead of images
    (see the "Scale-out" guide).

    Args:
        model: a built `keras.Model`.
        layer: selector of a layer with spatial output (conv, pooling, ...).
        method: `"dpgmm"`, `"kmeans"` or `"gmm"`.
        max_components: most components the Dirichlet process may use.
        alpha: concentration of the Dirichlet process (smaller: fewer
            clusters); the paper's 0.2. On thousands of points it barely
            matters: the data outweigh it (see the "Clustering" guide).
        min_weight: `"dpgmm"` only: the clusters are the components owning
            at least this share of the fitted points (by most probable
            component); the points of smaller ones go to the most probable
            of those kept. `0` keeps every component that owns a point.
            `n_clusters_` counts the clusters kept, `n_components_used_`
            all components owning a point.
        init_params: `"dpgmm"` only: start of the mixture, scikit-learn's
            `"kmeans"` (its default), `"k-means++"` (each component starts
            from one point chosen by k-means++ seeding), `"random"`
            (responsibilities drawn at random: every component starts near
            the data mean) or `"random_from_data"`. A k-means start splits
            every cluster of the data into many components, which the
            variational updates merge back only over hundreds of
            iterations; `"random"` drains them fastest but can merge
            well-separated clusters (three flat colour regions gave two).
        covariance_prior: `"dpgmm"` only: the prior of the components'
            covariances. `"unit"`: the identity in the units of `scale`
            (variance 1 on the paper's [0, 10]); `"data"`: the data's
            covariance, scikit-learn's default, which lets components be as
            narrow as the data's spread along every direction and keeps
            many more of them on ReLU feature maps.
        reg_covar: `"dpgmm"` only: added to the diagonal of every
            component's covariance, in the units of `scale` (scikit-learn's
            1e-6). ReLU maps hold many exact zeros, and points sharing the
            same zero channels lie on a flat face of the data that a
            component can collapse onto; when clusters are split by their
            pattern of zeros, a floor such as 0.1 (a standard deviation of
            3 % of [0, 10]) stops it (see the "Clustering" guide).
        n_clusters: number of clusters for `"kmeans"` and `"gmm"`.
        scale: `(low, high)` the values are mapped to, or `None` to keep them.
        covariance_type: of the Gaussian components: `"full"`, `"diag"`
            (and `"tied"`, `"spherical"` with `backend="sklearn"`).
        sample_size: most points `fit` clusters; more are sampled. `None`
            clusters all of them (on stored activations: k-means only, with
            dask-ml on the cluster).
        backend: `"tensorflow"` (`DPGMM`: the same variational updates as
            scikit-learn, in float32 on the TensorFlow device, much faster)
            or `"sklearn"` (`BayesianGaussianMixture`, the reference). Only
            `"dpgmm"` has a TensorFlow backend.
        max_iter: iterations of the mixture fit.
        batch_size: images per forward pass.
        random_state: seed of the sample and of the mixture's start.
        verbose: 0 silent, 1 progress bars and a note when `fit` samples.

    Attributes:
        layer_path_: path of the layer.
        map_shape_: spatial shape `(h, w)` of the label images.
        n_channels_: features per point.
        n_points_: points seen by `fit`; `n_points_fit_`: points clustered
            (`sampled_` tells whether they were a sample).
        data_range_: `(min, max)` of the values seen by `fit`.
        n_clusters_: the clusters: with `"dpgmm"`, the components owning at
            least `min_weight` of the fitted points; otherwise those owning
            any. This one count is what the plots, the report and the CLI
            show.
        n_components_used_: components owning at least one fitted point,
            before the `min_weight` cut.
        weights_: the clusters' mixture weights (k-means: share of points),
            largest first; label `i` is the `i`-th.
        shares_: the clusters' shares of the fitted points, after the points
            of the components cut by `min_weight` are reassigned.
        cluster_centers_: `(n_clusters_, c)` centres, in activation units.
        components_: the mixture component behind each label.
        mixture_: the fitted scikit-learn (or `DPGMM`) estimator.
        converged_: whether the mixture fit converged; `n_iter_` its iterations.

    Example:
        >>> pc = ki.PixelClusterer(model, layer="block1_conv2",
        ...                        random_state=0).fit(images)     # doctest: +SKIP
        >>> labels = pc.transform(images)        # (n, 224, 224)   # doctest: +SKIP
        >>> pc.centers_in_input_space(images)    # per image       # doctest: +SKIP
    """

    def __init__(
        self,
        model,
        layer,
        method="dpgmm",
        max_components=50,
        alpha=0.2,
        min_weight=0.01,
        init_params="k-means++",
        covariance_prior="unit",
        reg_covar=1e-6,
        n_clusters=None,
        scale=(0, 10),
        covariance_type="full",
        sample_size=200_000,
        backend="tensorflow",
        max_iter=100,
        batch_size=32,
        random_state=None,
        verbose=0,
    ):
        self.model = model
        self.layer = layer
        self.method = method
        self.max_components = max_components
        self.alpha = alpha
        self.min_weight = min_weight
        self.init_params = init_params
        self.covariance_prior = covariance_prior
        self.reg_covar = reg_covar
        self.n_clusters = n_clusters
        self.scale = scale
        self.covariance_type = covariance_type
        self.sample_size = sample_size
        self.backend = backend
        self.max_iter = max_iter
        self.batch_size = batch_size
        self.random_state = random_state
        self.verbose = verbose

    def fit(self, X, y=None):
        """Learn the value range and the clusters of the pixels of `X`.

        Args:
            X: images `(n, ...)` as the model takes them, or a stream
                (`tf.data.Dataset`, generator of batches); or the layer's
                activations when they do not fit in memory: a dask or Zarr
                array `(n, *map_shape, channels)`, or the path of a store
                written by `ki.distributed.activations_to_zarr`. The range
                and the sample are read chunk by chunk where the chunks are
                (on the Dask cluster when a client is active), and the fit
                is the in-memory one: the same seed gives the same clusters.
            y: ignored.

        Returns:
            self
        """
        scale = self._check_mixture_params()
        sample_size = self.sample_size
        if sample_size is not None:
            sample_size = check_positive_int(sample_size, "sample_size")
        info = one_output_layer(self._get_introspector(), self.layer)
        if len(info.output_shape) < 3:
            raise ValueError(
                f"PixelClusterer needs a layer with spatial output; {info.path!r} outputs "
                f"{info.output_shape}. Cluster whole images with ImageClusterer"
            )
        self.layer_path_ = info.path
        random = check_random_state(self.random_state)
        scaling = Scaling(scale)
        source = self._source(X, info, reset=True)
        if None in source.shape:  # a stream, or a model of any input size
            sample = self._sample_while_reading(source, scaling, sample_size, random)
        else:
            self.map_shape_ = tuple(source.shape[1:-1])
            self.n_channels_ = source.shape[-1]
            self.n_points_ = source.shape[0] * math.prod(self.map_shape_)
            if sample_size is None and source.out_of_core:
                self._fit_all_points(source, scaling)
                return self
            sample = self._sample_by_index(source, scaling, sample_size, random)
        check_range(scaling.low, scaling.high, "PixelClusterer")
        self._fit_sample(sample, scaling, stacklevel=3)
        return self

    def _sample_while_reading(self, source, scaling, sample_size, random):
        """The range and the seeded sample, drawn batch by batch as the points arrive."""
        sample = SmallestKeys(sample_size, random)
        n_points = 0
        for _, chunk in source.iter_chunks():
            self.map_shape_ = tuple(chunk.shape[1:-1])
            points = chunk.reshape(-1, chunk.shape[-1])
            scaling.update(points)
            n_points += len(points)
            sample.add(points)
        if sample.items is None:
            raise ValueError("Expected at least one image in X. Received: an empty stream")
        self.n_channels_ = sample.items.shape[1]
        self.n_points_ = n_points
        return sample.items

    def _sample_by_index(self, source, scaling, sample_size, random):
        """The same range and sample when the number of points is known beforehand.

        The indices of the sampled points are drawn first (`sample_indices`),
        then every chunk returns its range and its own sampled points only,
        read where the chunk is (on the Dask cluster for stored activations).
        """
        per_image = math.prod(self.map_shape_)
        selected = sample_indices(random, self.n_points_, sample_size)

        def local(start, size):
            # only this chunk's share of the indices travels with its task
            lo, hi = np.searchsorted(selected, [start * per_image, (start + size) * per_image])
            return selected[lo:hi] - start * per_image

        results = source.collect_chunks(_summary, args=local, what="Sampling")
        for low, high, _ in results:
            scaling.update(np.array([low, high]))
        return np.concatenate([points for _, _, points in results])

    def _fit_all_points(self, source, scaling):
        """k-means over every pixel of stored activations (`sample_size=None`), with dask-ml."""
        if self.method != "kmeans":
            raise ValueError(
                f"method={self.method!r} has no distributed fit: it is fitted on a "
                "sample of the pixels. Pass sample_size (an int), or method='kmeans' to "
                "fit k-means on all pixels with dask-ml"
            )
        scaling.low, scaling.high = source.value_range()
        check_range(scaling.low, scaling.high, "PixelClusterer")
        self.n_points_fit_ = self.n_points_
        self.sampled_ = False
        self.data_range_ = (scaling.low, scaling.high)
        if self.n_points_ < self.n_clusters:
            raise ValueError(
                f"Expected at least n_clusters={self.n_clusters} points. Received: {self.n_points_}"
            )
        if self.verbose:
            print(
                f"PixelClusterer: dask-ml k-means on all {self.n_points_:,} pixels",
                file=sys.stderr,
            )
        self.mixture_, counts = source.kmeans(self.n_clusters, self.random_state, scaling)
        self._keep_used(counts, scaling, stacklevel=4)

    def _fit_sample(self, sample, scaling, stacklevel):
        """Fit on the sampled points, recording what was sampled."""
        self.n_points_fit_ = len(sample)
        self.sampled_ = self.n_points_ > len(sample)
        self.data_range_ = (scaling.low, scaling.high)
        if self.sampled_ and self.verbose:
            print(
                f"PixelClusterer: fitting on a seeded sample of {len(sample):,} of the "
                f"{self.n_points_:,} pixels (sample_size={self.sample_size:,})",
                file=sys.stderr,
            )
        self._fit_points(sample, scaling, stacklevel=stacklevel + 1)

    def transform(self, X, to=None):
        """Label images: the cluster of every pixel of the layer's output.

        Args:
            X: images, or a stream of batches; or activations of the layer
                (a dask or Zarr array, or the path of a store written by
                `ki.distributed.activations_to_zarr`).
            to: `"numpy"` (computed here) or `"dask"` (a lazy dask array, for
                stored activations: see `transform_to_zarr` to store it).
                `None` is `"numpy"`, except for stored activations, where it
                keeps this release's lazy answer with a `FutureWarning` (it
                becomes `"numpy"` in the next release).

        Returns:
            int32 labels, shape `(n, *map_shape_)`.
        """
        check_is_fitted(self)
        check_one_of(to, "to", (None, "numpy", "dask"))
        if is_array_source(X):
            if to is None:
                warnings.warn(
                    "PixelClusterer.transform of stored activations returns a lazy dask "
                    "array today and numpy from the next release: pass to='dask' to keep "
                    "it lazy, to='numpy' for the array",
                    FutureWarning,
                    stacklevel=2,
                )
                to = "dask"
        elif to == "dask":
            raise ValueError(
                "to='dask' is for stored activations (a dask or Zarr array, or a store "
                "path); images are labelled here, as numpy"
            )
        info = self._get_introspector().layer(self.layer_path_)
        source = self._source(X, info, reset=False)
        labels = source.map_chunks(
            functools.partial(_label_maps, self._labeler()),
            np.int32,
            item_shape=source.shape[1:-1],
        )
        if source.out_of_core and to == "numpy":
            return np.asarray(labels.compute())
        return labels

    def predict(self, X):
        """Same as `transform`: label images `(n, *map_shape_)`."""
        return self.transform(X)

    def transform_to_zarr(self, X, path, overwrite=False):
        """Label maps of stored activations, written into a Zarr store at `path`.

        Every chunk of activations is labelled where it is (on the Dask
        cluster when a client is active) and written as one chunk of an int32
        array `(n, *map_shape_)`. Resumable like `activations_to_zarr`: the
        same call after an interruption writes only the missing chunks; a
        store written by another fit is refused.

        Args:
            X: activations of the layer: a dask or Zarr array, or the path of
                a store written by `ki.distributed.activations_to_zarr`.
            path: directory of the Zarr store of labels.
            overwrite: replace a store of labels already at `path`.

        Returns:
            A dask array over the stored label maps.

        Example:
            >>> pc = ki.PixelClusterer(model, "block1_conv2", random_state=0)  # doctest: +SKIP
            >>> pc.fit("acts.zarr").transform_to_zarr("acts.zarr", "labels.zarr")  # doctest: +SKIP
        """
        check_is_fitted(self)
        if not is_array_source(X):
            raise TypeError(
                "transform_to_zarr labels stored activations (a dask or Zarr array, or the "
                "path of a store); write them first with ki.distributed.activations_to_zarr, "
                f"or call transform(images). Received: {type(X).__name__}"
            )
        info = self._get_introspector().layer(self.layer_path_)
        source = self._source(X, info, reset=False)
        return source.write_labels(
            functools.partial(_label_maps, self._labeler()),
            path,
            item_shape=source.shape[1:-1],
            meta={"layer": self.layer_path_, "estimator": type(self).__name__},
            fit=(self.cluster_centers_, self.weights_, self.components_),
            overwrite=overwrite,
        )

    def fit_predict(self, X, y=None):
        """`fit(X)`, then the label images of `X`."""
        return self.fit(X).transform(X)

    def centers_in_input_space(self, X, background="largest", regions=False):
        """Centroids of each image's clusters, in input pixel coordinates.

        For every image, the pixels of each cluster (except the background)
        are averaged in the layer's grid, and the average position is mapped
        to the input through the receptive field: the centre of unit `(i, j)`
        is `offset + stride * (i, j) + (size - 1) / 2` (`000` Fig. 3). Any
        number of spatial axes: `(position, n_pixels)` for a 1-D layer,
        `(depth, row, col, n_pixels)` for a 3-D one.

        Args:
            X: images.
            background: `"largest"` leaves out each image's most frequent
                cluster; an int leaves out that label; `None` keeps all.
            regions: `True` gives one centre per connected region of a
                cluster (neighbours along an axis are connected), the
                largest region first: a cluster of cells scattered over an
                image has its centroid between them, its regions on them.

        Returns:
            A list with one dict per image: `{label: (row, col, n_pixels)}`,
            the centroid in input pixels and the cluster's size in the layer;
            with `regions`, `{label: [(row, col, n_pixels), ...]}`.
        """
        check_is_fitted(self)
        if not (background in ("largest", None) or isinstance(background, (int, np.integer))):
            raise ValueError(
                "Expected `background` to be 'largest', a label or None. "
                f"Received: background={background!r}"
            )
        field = self._get_introspector().receptive_field(self.layer_path_, strict=True)
        maps = np.asarray(self.transform(X))
        grids = np.indices(maps.shape[1:]).reshape(len(maps.shape) - 1, -1)
        centres = []
        for labels in maps.reshape(len(maps), -1):
            counts = np.bincount(labels, minlength=self.n_clusters_)
            skip = int(counts.argmax()) if background == "largest" else background
            found = {}
            for label in np.flatnonzero(counts):
                if label == skip:
                    continue
                if not regions:
                    mean = grids[:, labels == label].mean(axis=1)
                    found[int(label)] = (*field.center(tuple(mean)), int(counts[label]))
                    continue
                parts, n_parts = ndimage.label((labels == label).reshape(maps.shape[1:]))
                parts = parts.ravel()
                sizes = np.bincount(parts, minlength=n_parts + 1)[1:]
                found[int(label)] = [
                    (*field.center(tuple(grids[:, parts == k + 1].mean(axis=1))), int(sizes[k]))
                    for k in np.argsort(-sizes, kind="stable")
                ]
            centres.append(found)
        return centres

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.requires_fit = True
        tags.input_tags.allow_nan = False
        tags.transformer_tags.preserves_dtype = []
        return tags


def _summary(chunk, local):
    """Range of a chunk and its points at indices `local` (runs where the chunk is)."""
    points = chunk.reshape(-1, chunk.shape[-1])
    return float(points.min()), float(points.max()), points[local]


def _label_maps(labeler, chunk):
    """Label maps `(b, *map_shape)` of a chunk of activations `(b, *map_shape, c)`."""
    return labeler(chunk.reshape(-1, chunk.shape[-1])).reshape(chunk.shape[:-1])


def upsample_labels(labels, input_size, field=None) -> np.ndarray:
    """Label maps `(n, h, w)` at the input's resolution `(n, H, W)`.

    Any number of spatial axes: `(n, L)` maps of a 1-D layer, `(n, D, H, W)`
    of a 3-D one (`input_size` has one entry per axis).

    Each input pixel takes the label of the unit whose receptive field is
    centred nearest to it (the earlier one on a tie; `field`: the layer's
    `ReceptiveField`), so a
    cluster lies over the pixels its units see; without a field the map is
    stretched in equal blocks.

    Example:
        >>> from keras_introspect.model.receptive_field import ReceptiveField
        >>> field = ReceptiveField(size=(2, 2), stride=(2, 2), offset=(0, 0))
        >>> upsample_labels(np.array([[[0, 1], [2, 3]]]), (4, 4), field)[0]
        array([[0, 0, 1, 1],
               [0, 0, 1, 1],
               [2, 2, 3, 3],
               [2, 2, 3, 3]])
    """
    labels = np.asarray(labels)
    index = []
    for axis, (n_units, n_pixels) in enumerate(zip(labels.shape[1:], input_size, strict=True)):
        pixels = np.arange(n_pixels)
        if field is not None and field.axes is None and field.phases is not None:
            # an upsampled layer: unit centres repeat with a period, not on one grid
            centres = np.array(
                [
                    field.center(tuple(i if a == axis else 0 for a in range(labels.ndim - 1)))[axis]
                    for i in range(n_units)
                ]
            )
            # nearest centre; `argmin` takes the earlier unit on a tie
            units = np.abs(pixels[:, None] - centres[None]).argmin(axis=1)
        elif field is not None and field.axes is None:
            first = field.offset[axis] + (field.size[axis] - 1) / 2
            units = np.ceil((pixels - first) / field.stride[axis] - 0.5)  # ties: earlier
        else:
            units = np.floor((pixels + 0.5) * n_units / n_pixels)
        index.append(np.clip(units, 0, n_units - 1).astype(int))
    return labels[(slice(None), *np.ix_(*index))]
