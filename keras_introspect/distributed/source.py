"""`DaskSource`: stored activations as an activation source, read where the chunks are.

The clusterers (`PixelClusterer`, `ImageClusterer`) open one when `X` is a
dask array, a Zarr array or the path of a store written by
`activations_to_zarr`, and fit and label through it exactly as through the
activations they compute from images (the `ActivationSource` protocol of
`keras_introspect._sources`). Every chunk is read by one task, here or on
the Dask cluster when a client is active; only what the task returns comes
back. The estimators keep their state: this module computes and returns.

Beyond the protocol, a `DaskSource` writes label maps into a Zarr store
(`write_labels`), and fits k-means over all its pixels with dask-ml
(`kmeans`), the fit no single machine could hold in memory.
"""

from __future__ import annotations

import functools
import os
import sys

import numpy as np

from keras_introspect._progress import progress_bar
from keras_introspect._sources import is_zarr
from keras_introspect.distributed import store as stores
from keras_introspect.distributed import tasks
from keras_introspect.distributed._deps import require


class DaskSource:
    """One layer's stored activations, a dask array chunked along the images only.

    Use `open`. Chunks are numpy arrays in the stored dtype (float32, or
    float16 for stores written with `dtype="float16"`).

    Attributes:
        array: the dask array `(n_images, *spatial, channels)`, one block per
            chunk of images.
        store_path: the folder of the store it reads (a path, or a Zarr array
            of one), or `None`.
        verbose: 0 silent, 1 a progress bar per read.
    """

    out_of_core = True

    def __init__(self, array, store_path, verbose):
        self.array = array
        self.store_path = store_path
        self.verbose = verbose

    @classmethod
    def open(cls, X, info, reader, verbose=0) -> DaskSource:
        """The activations `X` of the layer `info`, checked.

        Args:
            X: a dask array, a Zarr array, or the path of a store written by
                `activations_to_zarr`, `(n_images, *layer_output)` with
                channels last.
            info: `LayerInfo` of the layer they must be the output of.
            reader: the name of who reads them, for the error messages.
            verbose: 0 silent, 1 progress bars.

        Raises:
            ValueError: the store was written for another layer, the shape is
                not the layer's, the values are not floats, or the store is
                incomplete.
        """
        da = require("dask.array")
        from keras_introspect._tensor import item_shape

        store_path = _store_path(X)
        if isinstance(X, (str, os.PathLike)):
            store = stores.ChunkedStore.open(X, "activations")
            stored = store.meta.get("layer")
            if stored != info.path:
                raise ValueError(
                    f"{reader} reads layer {info.path!r}; the store at {store.path!r} holds "
                    f"the activations of {stored!r}"
                )
            X = store.to_dask()
        elif is_zarr(X):
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
        return cls(X.rechunk({axis: -1 for axis in range(1, X.ndim)}), store_path, verbose)

    @property
    def shape(self) -> tuple:
        """`(n_images, *spatial, channels)`."""
        return tuple(int(d) for d in self.array.shape)

    def _starts(self):
        return np.concatenate([[0], np.cumsum(self.array.chunks[0])[:-1]]).astype(int)

    # ------------------------------------------------------------ protocol

    def iter_chunks(self, reduce=None, key=()):
        """Yield `(start, chunk)`, each chunk computed and brought here (`key` is unused:
        `reduce` runs on the numpy chunk)."""
        blocks = self.array.to_delayed().ravel()
        for block, start in zip(blocks, self._starts(), strict=True):
            yield int(start), _apply(_identity, reduce, block.compute())

    def collect_chunks(self, fn, args=None, reduce=None, key=(), what="Reading") -> list:
        """`fn` of every chunk, one task per chunk where the chunk is; results in order.

        At most a few tasks are in flight at a time (`tasks.run`); with
        `verbose`, a line names the work (`what`) and a bar counts the images.
        """

        dask = require("dask")
        task = dask.delayed(functools.partial(_apply, fn, reduce), pure=False)
        blocks = self.array.to_delayed().ravel()
        sizes = self.array.chunks[0]
        if self.verbose:
            print(f"{what} {len(self.array):,} images in {len(blocks)} chunks", file=sys.stderr)
        progbar = progress_bar(len(self.array), verbose=self.verbose, unit_name="image")

        def call(block, start, size):
            return task(block) if args is None else task(block, args(start, size))

        return tasks.run(
            (
                (call(block, int(start), int(size)), int(size))
                for block, start, size in zip(blocks, self._starts(), sizes, strict=True)
            ),
            client=tasks.current_client(),
            progbar=progbar,
        )

    def map_chunks(self, fn, dtype, item_shape, reduce=None, key=()):
        """`fn` of every chunk, lazily: a dask array `(n_images, *item_shape)` of
        `dtype`, one block per chunk."""
        return _map_blocks(self.array, fn, dtype, item_shape, reduce)

    # -------------------------------------------------------------- extras

    def write_labels(self, fn, path, item_shape, meta, fit, overwrite=False):
        """Labels of every image (`fn` as in `map_chunks`, int32), into a resumable Zarr store.

        Each chunk is labelled and written by one task; a store at `path`
        written with the same description is resumed (only its missing
        chunks are written), one written for other activations or another
        fit is refused.

        Args:
            fn, item_shape: as in `map_chunks`.
            path: directory of the Zarr store of labels.
            meta: JSON-able description stored with it (layer, estimator).
            fit: arrays that identify `fn` (a fit's centres, weights, ...):
                their digest is stored as `meta["fit"]`.
            overwrite: replace a store of labels already at `path`.

        Returns:
            A dask array over the stored labels.

        Raises:
            ValueError: `path` is (or is inside, or holds) the store of the
                activations read, or holds a store written for other inputs.
        """

        dask = require("dask")
        self._check_not_inside(path)
        chunk = max(self.array.chunks[0])
        array = self.array.rechunk({0: chunk})
        labels = _map_blocks(array, fn, np.int32, item_shape, None)
        meta = {**meta, "fit": stores.digest(*fit), "activations": self._fingerprint(array)}
        store = stores.ChunkedStore.create_or_resume(
            path, "labels", labels.shape[1:], np.int32, len(array), chunk, meta, overwrite
        )
        pending = store.pending()
        sizes = [array.chunks[0][index] for index in pending]
        progbar = progress_bar(len(array), verbose=self.verbose, unit_name="image")
        progbar.add(len(array) - sum(sizes))
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

    def value_range(self) -> tuple:
        """`(min, max)` over all values, as floats."""
        dask = require("dask")
        points = self.array.reshape(-1, self.array.shape[-1])
        low, high = dask.compute(points.min(), points.max())
        return float(low), float(high)

    def kmeans(self, n_clusters, random_state, transform):
        """k-means over every pixel with `dask_ml.cluster.KMeans`, on the cluster.

        Args:
            n_clusters: number of clusters.
            random_state: seed of its k-means|| start.
            transform: applied to the pixels `(n_points, channels)` float64
                (lazily) before the fit: the estimator's value scaling.

        Returns:
            `(kmeans, counts)`: the fitted dask-ml estimator and the number of
            pixels in each of its clusters.
        """
        da = require("dask.array")
        dask_cluster = require("dask_ml.cluster")
        points = self.array.reshape(-1, self.array.shape[-1])
        kmeans = dask_cluster.KMeans(n_clusters=n_clusters, random_state=random_state)
        kmeans.fit(transform(points.astype(np.float64)))
        return kmeans, da.bincount(kmeans.labels_, minlength=n_clusters).compute()

    # ------------------------------------------------------------- helpers

    def _check_not_inside(self, path) -> None:
        """Refuse a result store at (or inside, or around) the activation store read."""
        if self.store_path is None:
            return
        source = self.store_path
        target = os.path.realpath(os.fspath(path))
        if (
            target == source
            or target.startswith(source + os.sep)
            or source.startswith(target + os.sep)
        ):
            raise ValueError(
                f"The label store {os.fspath(path)!r} would overwrite the activations it reads "
                f"({source!r}): choose a path outside the activation store"
            )

    def _fingerprint(self, array) -> str:
        """What identifies the activations: a store's description and chunk digests, or
        the dask graph's name (deterministic for the same inputs)."""
        if self.store_path is not None and os.path.isdir(self.store_path):
            try:
                store = stores.ChunkedStore.open(self.store_path)
            except ValueError:
                store = None
            if store is not None:
                import json

                meta = json.dumps(store.meta, sort_keys=True, default=str).encode()
                digests = np.asarray(store.group["digests"][:])
                return f"store {stores.digest(meta, digests)}"
        return f"{tuple(array.shape)} {array.dtype} {array.name}"


def _store_path(X):
    """The folder of the store `X` reads, if it is one (a path or a Zarr array of it)."""
    if isinstance(X, (str, os.PathLike)):
        return os.path.realpath(os.fspath(X))
    if is_zarr(X):
        root = getattr(getattr(X, "store", None), "root", None)
        if root is not None:
            return os.path.realpath(os.fspath(root))
    return None


def _map_blocks(array, fn, dtype, item_shape, reduce):
    return array.map_blocks(
        functools.partial(_apply, fn, reduce),
        dtype=dtype,
        drop_axis=list(range(1 + len(item_shape), array.ndim)),
        chunks=(array.chunks[0], *((int(d),) for d in item_shape)),
    )


def _identity(chunk):
    return chunk


def _apply(fn, reduce, block, *args):
    """`fn(reduce(block), *args)` on a numpy block (runs where the task runs)."""
    block = np.asarray(block)
    if reduce is not None:
        block = np.asarray(reduce(block))
    return fn(block, *args)
