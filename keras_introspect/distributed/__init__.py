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

import importlib

_LAZY = {
    "activations_to_zarr": "keras_introspect.distributed.extract",
    "open_store": "keras_introspect.distributed.store",
    "ChunkedStore": "keras_introspect.distributed.store",
    "available": "keras_introspect.distributed._deps",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str):
    module_name = _LAZY.get(name)
    if module_name is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module_name), name)


def __dir__():
    return __all__
