"""Scale-out: one layer's activations on disk (Zarr), clustering on Dask.

Optional: install the extra ``distributed`` (Dask, dask-ml, Zarr 3). The
clusterers (`ki.PixelClusterer`, `ki.ImageClusterer`) take the stores this
module writes as `X`, and read them chunk by chunk where the chunks are.

Example:
    >>> acts = ki.distributed.activations_to_zarr(
    ...     model, "block1_conv2", images, "acts.zarr")           # doctest: +SKIP
    >>> pc = ki.PixelClusterer(model, "block1_conv2", random_state=0)  # doctest: +SKIP
    >>> pc.fit("acts.zarr").transform_to_zarr("acts.zarr", "labels.zarr")  # doctest: +SKIP
"""

from __future__ import annotations

# none of these imports Dask or Zarr until a function runs
from keras_introspect.distributed._deps import available
from keras_introspect.distributed.extract import activations_to_zarr
from keras_introspect.distributed.store import ChunkedStore, open_store

__all__ = ["ChunkedStore", "activations_to_zarr", "available", "open_store"]
