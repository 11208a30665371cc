"""`PixelClusterer` and `ImageClusterer` on activations that do not fit in memory.

The estimators call these functions when `X` is a dask array, a Zarr array
or the path of a store written by `activations_to_zarr`. The design keeps
the results of the in-memory path:

- the value range is the minimum and maximum over all chunks;
- the pixel sample is the one the in-memory path draws: the same seeded
  keys, one per pixel in image order, and the points of the smallest ones,
  gathered chunk by chunk where the chunks are;
- the mixture is fitted on that sample, in this process, by the same code;
- labelling runs on every chunk in parallel with a small picklable labeller
  (`PointLabeler`), lazily as a dask array or into a Zarr store.

Only k-means over *all* pixels (`sample_size=None`) differs: it runs on the
cluster with `dask_ml.cluster.KMeans`, which no single machine could do in
memory; its k-means|| start is not scikit-learn's k-means++, so the centres
agree with the in-memory fit only as far as the data's clusters are clear.
"""

from __future__ import annotations

import functools
import itertools
import math
import os
import sys

import numpy as np

from keras_introspect.distributed import store as stores
from keras_introspect.distributed import tasks
from keras_introspect.distributed._deps import require

#: keys drawn per piece when the sample is chosen (8 MB of float64)
KEY_PIECE = 2**20


def activations_of(estimator, X, info):
    """`X` as a dask array of the layer's activations, channels last, chunked by images.

    Raises:
        ValueError: the store was written for another layer, the shape is
            not the layer's, or the store is incomplete.
    """
    da = require("dask.array")
    from keras_introspect._tensor import item_shape

    name = type(estimator).__name__
    if isinstance(X, (str, os.PathLike)):
        store = stores.ChunkedStore.open(X, "activations")
        stored = store.meta.get("layer")
        if stored != info.path:
            raise ValueError(
                f"{name} reads layer {info.path!r}; the store at {store.path!r} holds the "
                f"activations of {stored!r}"
            )
        X = store.to_dask()
    elif stores.is_zarr(X):
        X = da.from_zarr(X)
    expected = item_shape(info)
    if X.ndim != len(info.output_shape) or (
        expected is not None and tuple(X.shape[1:]) != expected
    ):
        raise ValueError(
            f"Expected activations of layer {info.path!r}, shape (n_images, "
            f"{', '.join(map(str, expected or info.output_shape[1:]))}) with channels last "
            f"(as activations_to_zarr writes them). Received: shape {tuple(X.shape)}"
        )
    if X.shape[0] == 0:
        raise ValueError("Expected at least one image. Received: activations of 0 images")
    if not np.issubdtype(X.dtype, np.floating):
        raise ValueError(f"Expected float activations. Received: dtype {X.dtype}")
    return X.rechunk({axis: -1 for axis in range(1, X.ndim)})


def set_input_shape(estimator) -> None:
    """The image shape the model takes, for later calls with images."""
    specs = estimator._get_introspector().input_specs
    shape = tuple(specs[0].shape[1:]) if specs else None
    if shape is not None and None not in shape:
        estimator.input_shape_ = shape
        estimator.n_features_in_ = math.prod(shape)
    else:
        estimator.input_shape_ = None


# ------------------------------------------------------------------ pixels


def fit_pixels(estimator, acts, scaling, sample_size, random, verbose):
    """Fit `estimator` (a `PixelClusterer`) on all pixels of `acts`."""
    n, *spatial, channels = acts.shape
    per_image = math.prod(spatial)
    n_points = n * per_image
    estimator.map_shape_ = tuple(spatial)
    estimator.n_channels_ = channels
    estimator.n_points_ = n_points
    if sample_size is None:
        if estimator.method != "kmeans":
            raise ValueError(
                f"method={estimator.method!r} has no distributed fit: it is fitted on a "
                "sample of the pixels. Pass sample_size (an int), or method='kmeans' to "
                "fit k-means on all pixels with dask-ml"
            )
        return _fit_kmeans_all(estimator, acts, scaling, verbose)
    dask = require("dask")
    selected = _sample_indices(random, n_points, sample_size)
    summary = dask.delayed(_summary, pure=False)

    def call(block, first, size):
        # only this chunk's share of the indices travels with its task
        lo, hi = np.searchsorted(selected, [first * per_image, (first + size) * per_image])
        return summary(block, selected[lo:hi] - first * per_image)

    results = _per_chunk(acts, call, verbose, "Sampling")
    low = min(r[0] for r in results)
    high = max(r[1] for r in results)
    _check_finite(low, high, estimator)
    scaling.low, scaling.high = low, high
    estimator._fit_sample(np.concatenate([r[2] for r in results]), scaling, stacklevel=4)


def _sample_indices(random, n_points, sample_size):
    """Sorted indices of the pixels the in-memory path samples.

    The same `SmallestKeys` draw as that path, over the pixels' indices
    instead of their values, a piece at a time, so memory stays bounded
    whatever `n_points`.
    """
    from keras_introspect.cluster._base import SmallestKeys

    sample = SmallestKeys(sample_size, random)
    for start in range(0, n_points, KEY_PIECE):
        sample.add(np.arange(start, min(start + KEY_PIECE, n_points)))
    return sample.items


def _summary(block, local):
    """Range of a chunk and its sampled points (runs where the chunk is)."""
    points = block.reshape(-1, block.shape[-1])
    return float(points.min()), float(points.max()), points[local]


def _fit_kmeans_all(estimator, acts, scaling, verbose):
    """k-means over every pixel with dask-ml: the fit no machine holds in memory."""
    da = require("dask.array")
    dask_cluster = require("dask_ml.cluster")
    dask = require("dask")
    points = acts.reshape(-1, acts.shape[-1])
    low, high = (float(v) for v in dask.compute(points.min(), points.max()))
    _check_finite(low, high, estimator)
    scaling.low, scaling.high = low, high
    estimator.n_points_fit_ = estimator.n_points_
    estimator.sampled_ = False
    estimator.data_range_ = (low, high)
    if len(points) < estimator.n_clusters:
        raise ValueError(
            f"Expected at least n_clusters={estimator.n_clusters} points. Received: {len(points)}"
        )
    scaled = scaling(points.astype(np.float64))
    if verbose:
        print(f"PixelClusterer: dask-ml k-means on all {len(points):,} pixels", file=sys.stderr)
    estimator.mixture_ = dask_cluster.KMeans(
        n_clusters=estimator.n_clusters, random_state=estimator.random_state
    ).fit(scaled)
    counts = da.bincount(estimator.mixture_.labels_, minlength=estimator.n_clusters).compute()
    estimator._keep_used(counts, scaling, stacklevel=5)


def label_pixels(estimator, acts):
    """Label maps `(n, *map_shape_)` int32 of `acts`, as a lazy dask array."""
    labeler = estimator._labeler()
    return acts.map_blocks(
        functools.partial(_label_block, labeler), dtype=np.int32, drop_axis=acts.ndim - 1
    )


def _label_block(labeler, block):
    return labeler(block.reshape(-1, block.shape[-1])).reshape(block.shape[:-1])


def labels_to_zarr(estimator, X, path, overwrite, verbose):
    """Write the label maps of `X` into a resumable Zarr store at `path`."""
    import keras

    dask = require("dask")
    _check_not_inside(X, path)
    info = estimator._get_introspector().layer(estimator.layer_path_)
    acts = activations_of(estimator, X, info)
    chunk = max(acts.chunks[0])
    acts = acts.rechunk({0: chunk})
    labels = label_pixels(estimator, acts)
    meta = {
        "layer": estimator.layer_path_,
        "estimator": type(estimator).__name__,
        "fit": _fingerprint(estimator),
        "activations": _activations_fingerprint(X, acts),
    }
    store = stores.ChunkedStore.create_or_resume(
        path, "labels", labels.shape[1:], np.int32, len(acts), chunk, meta, overwrite
    )
    pending = store.pending()
    sizes = [acts.chunks[0][index] for index in pending]
    progbar = keras.utils.Progbar(len(acts), verbose=verbose, unit_name="image")
    progbar.add(len(acts) - sum(sizes))
    write = dask.delayed(stores.write_chunk, pure=False)
    blocks = labels.to_delayed().ravel()
    tasks.run(
        (
            (write(store.path, "labels", index, blocks[index]), size)
            for index, size in zip(pending, sizes, strict=True)
        ),
        client=tasks.current_client(),
        progbar=progbar,
    )
    store.finish()
    return store.to_dask()


def _store_path(X):
    """The folder of the store `X` reads, if it is one (a path or a Zarr array of it)."""
    if isinstance(X, (str, os.PathLike)):
        return os.path.realpath(os.fspath(X))
    if stores.is_zarr(X):
        root = getattr(getattr(X, "store", None), "root", None)
        if root is not None:
            return os.path.realpath(os.fspath(root))
    return None


def _check_not_inside(X, path) -> None:
    """Refuse a label store at (or inside, or around) the activation store it reads."""
    source = _store_path(X)
    if source is None:
        return
    target = os.path.realpath(os.fspath(path))
    if target == source or target.startswith(source + os.sep) or source.startswith(target + os.sep):
        raise ValueError(
            f"The label store {os.fspath(path)!r} would overwrite the activations it reads "
            f"({source!r}): choose a path outside the activation store"
        )


def _activations_fingerprint(X, acts) -> str:
    """What identifies the activations: a store's description and chunk digests, or
    the dask graph's name (deterministic for the same inputs)."""
    source = _store_path(X)
    if source is not None and os.path.isdir(source):
        try:
            store = stores.ChunkedStore.open(source)
        except ValueError:
            store = None
        if store is not None:
            import json

            meta = json.dumps(store.meta, sort_keys=True, default=str).encode()
            digests = np.asarray(store.group["digests"][:])
            return f"store {stores.digest(meta, digests)}"
    return f"{tuple(acts.shape)} {acts.dtype} {acts.name}"


def _fingerprint(estimator) -> str:
    """What identifies a fit: its centres and weights."""
    return stores.digest(estimator.cluster_centers_, estimator.weights_, estimator.components_)


# ------------------------------------------------------------------ images


def image_points(estimator, acts, grid, verbose):
    """One point per image, `(n, features)` in memory: pooled as the in-memory path does."""
    dask = require("dask")
    reduce = dask.delayed(
        functools.partial(_reduce_block, grid=grid, pooling=estimator.pooling), pure=False
    )
    return np.concatenate(_per_chunk(acts, lambda block, *_: reduce(block), verbose, "Reducing"))


def predict_images(estimator, acts, grid):
    """Cluster of each image, lazily: `(n,)` int32."""
    labeler = estimator._labeler()
    reduce = functools.partial(_reduce_block, grid=grid, pooling=estimator.pooling)
    return acts.map_blocks(
        functools.partial(_label_images, labeler, reduce),
        dtype=np.int32,
        drop_axis=list(range(1, acts.ndim)),
    )


def _label_images(labeler, reduce, block):
    return labeler(reduce(block))


def _reduce_block(block, grid, pooling):
    """numpy twin of `ImageClusterer._reduce`: `(b, ...)` -> `(b, features)` float32."""
    block = np.asarray(block, dtype=np.float32)
    if grid is not None and block.ndim > 2:
        for axis, size in enumerate(grid, start=1):
            length = block.shape[axis]
            edges = [(i * length) // size for i in range(size + 1)]
            parts = [
                block.take(np.arange(lo, max(hi, lo + 1)), axis=axis).mean(axis=axis)
                for lo, hi in itertools.pairwise(edges)
            ]
            block = np.stack(parts, axis=axis)
    elif pooling is not None and block.ndim > 2:
        axes = tuple(range(1, block.ndim - 1))
        block = block.mean(axis=axes) if pooling == "avg" else block.max(axis=axes)
    return block.reshape(len(block), -1)


# ---------------------------------------------------------------- helpers


def _per_chunk(acts, call, verbose, what):
    """Compute `call(block, first_image, n_images)` (a delayed task) for every chunk.

    The tasks run where the chunks are (on the cluster when a client is
    active); only their results come back, in chunk order.
    """
    import keras

    blocks = acts.to_delayed().ravel()
    firsts = np.concatenate([[0], np.cumsum(acts.chunks[0])[:-1]])
    if verbose:
        print(f"{what} {len(acts):,} images in {len(blocks)} chunks", file=sys.stderr)
    progbar = keras.utils.Progbar(len(acts), verbose=verbose, unit_name="image")
    return tasks.run(
        (
            (call(block, int(first), int(size)), int(size))
            for block, first, size in zip(blocks, firsts, acts.chunks[0], strict=True)
        ),
        client=tasks.current_client(),
        progbar=progbar,
    )


def _check_finite(low, high, estimator):
    if not (np.isfinite(low) and np.isfinite(high)):
        raise ValueError(
            f"Input contains NaN or infinity: the activations given to "
            f"{type(estimator).__name__} range over [{low}, {high}]"
        )
