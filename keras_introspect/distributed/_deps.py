"""The optional dependencies of `keras_introspect.distributed`, imported on use."""

from __future__ import annotations

import importlib

_HINT = (
    "keras_introspect.distributed needs the optional extra `distributed` "
    "(Dask, dask-ml and Zarr 3, Python >= 3.11): "
    "python3 -m pip install 'keras-introspect[distributed]'"
)


def require(name: str):
    """Import `name` (`"dask.array"`, `"zarr"`, `"dask_ml.cluster"`, ...) or say how to get it."""
    try:
        module = importlib.import_module(name)
    except ImportError as err:
        raise ImportError(f"{_HINT}. Missing: {name} ({err})") from err
    if name == "zarr" and int(module.__version__.split(".")[0]) < 3:
        raise ImportError(f"{_HINT}. Found zarr {module.__version__}")
    return module


def available() -> bool:
    """Whether Dask and Zarr 3 can be imported."""
    try:
        require("dask.array")
        require("zarr")
    except ImportError:
        return False
    return True
