"""Activation sources: where the clusterers read one layer's activations from.

An `ActivationSource` holds one layer's activations for a set of images and
hands them out in chunks of whole images, channels last. The estimators of
`cluster/` fit and label through this protocol only, so the same code runs
on activations computed here from images (`ModelSource`) and on activations
stored out of core (`keras_introspect.distributed.source.DaskSource`: a dask
array, a Zarr array or a store written by `activations_to_zarr`). `cluster/`
imports `distributed/` only to open a source of the second kind, when it is
given one; `distributed/` never imports `cluster/`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Protocol

import numpy as np


def is_zarr(x) -> bool:
    """Whether `x` is a Zarr array (or group)."""
    return type(x).__module__.startswith("zarr")


def is_dask(x) -> bool:
    """Whether `x` is a dask array."""
    return type(x).__module__.startswith("dask") and hasattr(x, "chunks") and hasattr(x, "dask")


def is_array_source(x) -> bool:
    """Whether `x` names stored activations: a dask or Zarr array, or a path."""
    return is_dask(x) or is_zarr(x) or isinstance(x, (str, os.PathLike))


class ActivationSource(Protocol):
    """One layer's activations for a set of images, read in chunks of whole images.

    A chunk is a numpy array `(b, *spatial, channels)` (channels last) of
    consecutive images. Every method that reads takes an optional `reduce`:
    a function written with TensorFlow ops that maps a chunk `(b, ...)` to
    `(b, ...)` before anything else, and accepts tensors and numpy arrays.
    A source that computes the activations runs it on the device before the
    copy back (traced once per `key`, which names what it computes); a source
    of stored activations runs it on each numpy chunk where the chunk is.

    Attributes:
        shape: `(n_images, *spatial, channels)`; `None` where it is unknown
            before reading (a stream's length, a model of any input size).
        out_of_core: `False` when the activations are computed here and
            `map_chunks` returns numpy; `True` when they are stored (a
            dask or Zarr array) and `map_chunks` returns a lazy dask array.
    """

    shape: tuple
    out_of_core: bool

    def iter_chunks(self, reduce=None, key=()) -> Iterator[tuple[int, np.ndarray]]:
        """Yield `(start, chunk)` in image order: `start` is the chunk's first image."""

    def collect_chunks(self, fn, args=None, reduce=None, key=(), what="Reading") -> list:
        """`fn(chunk)` (or `fn(chunk, args(start, n_images))`) of every chunk, in order.

        Computed now: in a loop here, or in parallel where the chunks are.
        `args` runs here, so only each chunk's share of what it needs travels
        with its task; `what` names the work in a progress message.
        """

    def map_chunks(self, fn, dtype, item_shape, reduce=None, key=()):
        """Per-image results: `fn(chunk)` is `(b, *item_shape)` of `dtype`.

        Returns a numpy array `(n_images, *item_shape)` (`out_of_core=False`),
        or a lazy dask array of it, one block per chunk. `item_shape` has at
        most as many axes as an image's (reduced) activation.
        """


class ModelSource:
    """Activations of one layer computed from images, batch by batch, on the device.

    The in-memory `ActivationSource`: every read streams the images through
    the model up to the layer (one compiled forward pass per `reduce` key,
    shared by every estimator of the model), so memory holds one batch at a
    time. Results come back as numpy.

    Args:
        intro: the model's `Introspector`.
        info: `LayerInfo` of the layer.
        images: a numpy array of images, or a stream of batches (anything
            `Batches` reads), already checked.
        batch_size: images per forward pass.
        verbose: 0 silent, 1 a progress bar per read.
    """

    out_of_core = False

    def __init__(self, intro, info, images, batch_size, verbose):
        self.intro = intro
        self.info = info
        self.images = images
        self.batch_size = batch_size
        self.verbose = verbose

    @property
    def shape(self) -> tuple:
        """`(n_images, *spatial, channels)`, `None` where unknown before reading."""
        from keras_introspect._data import is_stream
        from keras_introspect._tensor import item_shape

        n = None if is_stream(self.images) else len(self.images)
        item = item_shape(self.info)
        return (n, *(item or (None,) * (len(self.info.output_shape) - 1)))

    def iter_chunks(self, reduce=None, key=()) -> Iterator[tuple[int, np.ndarray]]:
        """Yield `(start, chunk)`, one per batch of images (see `ActivationSource`)."""
        from keras_introspect.probes import _scan

        def run(activation):
            return [activation if reduce is None else reduce(activation)]

        start = 0
        for outputs, _ in _scan.scan(
            self.intro,
            self.info.path,
            self.images,
            run,
            ("estimator", key if reduce is not None else None),
            self.batch_size,
            self.verbose,
        ):
            yield start, outputs[0]
            start += len(outputs[0])

    def collect_chunks(self, fn: Callable, args=None, reduce=None, key=(), what="Reading") -> list:
        """`fn` of every chunk, in a loop (see `ActivationSource`; `what` is unused:
        the forward pass has its own progress bar)."""
        return [
            fn(chunk) if args is None else fn(chunk, args(start, len(chunk)))
            for start, chunk in self.iter_chunks(reduce, key)
        ]

    def map_chunks(self, fn: Callable, dtype, item_shape, reduce=None, key=()) -> np.ndarray:
        """`fn` of every chunk, concatenated: `(n_images, *item_shape)` numpy of `dtype`
        (`item_shape` is what `fn` returns, `None` where unknown before reading)."""
        parts = [fn(chunk) for _, chunk in self.iter_chunks(reduce, key)]
        return np.concatenate(parts).astype(dtype, copy=False)
