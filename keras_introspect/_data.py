"""Turn what users pass as images into a stream of numpy batches.

One place decides how numpy arrays, tf tensors, lists/dicts for multi-input
models, `tf.data.Dataset`, `keras.utils.PyDataset` and Python generators are
read, so every method accepts the same inputs and batches them the same way.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from keras_introspect._validation import check_finite, check_positive_int


@dataclass(frozen=True)
class InputSpec:
    """Expected shape (batch axis first, `None` where free) and dtype of one input."""

    shape: tuple
    dtype: str


def _is_dataset(x) -> bool:
    return type(x).__module__.startswith("tensorflow") and hasattr(x, "element_spec")


def _is_py_dataset(x) -> bool:
    return hasattr(x, "__getitem__") and hasattr(x, "num_batches") and hasattr(x, "__len__")


def is_stream(x) -> bool:
    return (
        _is_dataset(x)
        or _is_py_dataset(x)
        or inspect.isgenerator(x)
        or (isinstance(x, Iterator) and not isinstance(x, (np.ndarray, Sequence, Mapping)))
    )


def _unpack_x(element):
    """Keras convention: a tuple `(x,)`, `(x, y)` or `(x, y, w)` carries x first."""
    if isinstance(element, list):
        element = tuple(element)
    if isinstance(element, tuple) and len(element) in (1, 2, 3):
        return element[0]
    return element


def _flatten(x, n_inputs: int | None):
    """Split one batch into (leaves, rebuild): one leaf per model input.

    A dict is always one leaf per input. A list or tuple is one leaf per input
    when the model has several inputs (or, when that is unknown, when it holds
    arrays/tensors); otherwise it is a stack of samples for one input.
    """
    if isinstance(x, Mapping):
        keys = list(x)
        return [x[k] for k in keys], lambda leaves: dict(zip(keys, leaves, strict=True))
    if isinstance(x, (list, tuple)):
        several = (
            n_inputs > 1
            if n_inputs is not None
            else all(hasattr(a, "shape") and len(a.shape) >= 2 for a in x)
        )
        if several and x:
            return list(x), list
    return [x], lambda leaves: leaves[0]


def as_array(a, name: str = "x") -> np.ndarray:
    """Convert array-likes and tf tensors to numpy; refuse sparse matrices."""
    if hasattr(a, "tocsr") or type(a).__module__.startswith("scipy.sparse"):
        raise TypeError(
            f"Sparse input is not supported: images must be dense. Received: "
            f"{name} of type {type(a).__name__}"
        )
    if hasattr(a, "numpy") and not isinstance(a, np.ndarray):
        a = a.numpy()
    listed = isinstance(a, (list, tuple)) and all(hasattr(e, "shape") for e in a)
    shapes = [tuple(e.shape) for e in a] if listed else []
    if len(set(shapes)) > 1:
        raise ValueError(
            f"Expected the samples of `{name}` to share one shape: one batch holds one "
            "input size (a model of free input size compiles once per size). Received: "
            f"{name}, a {type(a).__name__} of {len(shapes)} arrays of shapes "
            f"{sorted(set(shapes))}. Pass one array per size, or a generator or "
            "tf.data.Dataset yielding one batch per size"
        )
    try:
        a = np.asarray(a)
    except (TypeError, ValueError) as err:
        raise TypeError(
            f"Expected `{name}` to be array-like. Received: {type(a).__name__}: {err}"
        ) from err
    if a.dtype == object or a.dtype.kind in "USV":
        a = a.astype(np.float64)  # numpy names the offending element if this fails
    return a


class Batches:
    """Iterate over `x` in batches of numpy arrays, validated against `specs`.

    Args:
        x: numpy array, tf tensor, list/tuple/dict of them (multi-input),
            `tf.data.Dataset` (yielding batches, or single samples that are
            then batched), `keras.utils.PyDataset`, or a generator of batches.
            Datasets and generators may yield `(x, y)` or `(x, y, w)` tuples;
            only `x` is used. A single image without batch axis is accepted.
        batch_size: batch size for arrays and unbatched datasets (datasets,
            PyDatasets and generators that yield batches keep theirs).
        specs: expected input specs (one per model input) or `None` when the
            model does not declare them.
        name: the argument name used in error messages.

    Attributes:
        n_samples: number of samples, or `None` when unknown (streams).
        n_batches: number of batches, or `None` when unknown.
    """

    def __init__(self, x, batch_size: int = 32, specs=None, name: str = "x"):
        self.batch_size = check_positive_int(batch_size, "batch_size")
        self.specs = specs
        self.name = name
        self.n_samples = None
        self.n_batches = None
        self._n_inputs = None if specs is None else len(specs)
        if x is None:
            raise ValueError(f"Expected images in `{name}`. Received: {name}=None")
        if is_stream(x):
            self._stream = self._prepare_stream(x)
            self._arrays = None
        else:
            self._stream = None
            leaves, self._rebuild = _flatten(x, self._n_inputs)
            leaves = [self._as_numpy(a) for a in leaves]
            leaves = self._check_structure(leaves)
            lengths = {a.shape[0] for a in leaves}
            if len(lengths) != 1:
                raise ValueError(
                    "Expected every input to hold the same number of samples. "
                    f"Received: {name} with first dimensions {sorted(lengths)}"
                )
            self.n_samples = lengths.pop()
            if self.n_samples == 0:
                raise ValueError(
                    f"Expected at least one sample. Received: an empty `{name}` "
                    f"with shapes {[a.shape for a in leaves]}"
                )
            self._arrays = leaves
            self.n_batches = math.ceil(self.n_samples / self.batch_size)

    def _as_numpy(self, a) -> np.ndarray:
        return as_array(a, self.name)

    def _check_structure(self, leaves: list) -> list:
        specs = self.specs
        if specs is None:
            return leaves
        if len(leaves) != len(specs):
            raise ValueError(
                f"Expected {len(specs)} input array(s) for this model. Received: "
                f"{len(leaves)} array(s) in `{self.name}`"
            )
        out = []
        for i, (a, spec) in enumerate(zip(leaves, specs, strict=True)):
            received = a.shape
            if a.ndim == len(spec.shape) - 1:
                a = a[np.newaxis]  # one sample without batch axis
            if a.ndim != len(spec.shape) or any(
                e is not None and e != r for e, r in zip(spec.shape[1:], a.shape[1:], strict=True)
            ):
                where = "" if len(specs) == 1 else f" {i}"
                hint = ""
                if (
                    len(received) == len(spec.shape) - 1
                    and spec.shape[-1] == 1
                    and all(
                        e is None or e == r
                        for e, r in zip(spec.shape[1:-1], received[1:], strict=True)
                    )
                ):
                    hint = f"; add the channel axis: {self.name}[..., None]"
                n_axes = len(spec.shape) - 2
                axes = "axis" if n_axes == 1 else "axes"
                kind = f"; {n_axes}-D: {n_axes} spatial {axes}, then channels" if n_axes else ""
                raise ValueError(
                    f"Expected input{where} of shape {spec.shape} (batch first{kind}). "
                    f"Received: {self.name}{where} with shape {received}{hint}"
                )
            out.append(a)
        return out

    def _cast(self, leaves: list) -> list:
        out = []
        for i, a in enumerate(leaves):
            check_finite(a, self.name)
            spec = self.specs[i] if self.specs is not None else None
            if spec is not None and np.issubdtype(np.dtype(spec.dtype), np.floating):
                a = a.astype(spec.dtype, copy=False)
            elif spec is None and (np.issubdtype(a.dtype, np.floating) or a.dtype == np.uint8):
                a = a.astype(np.float32, copy=False)
            out.append(a)
        return out

    def _prepare_stream(self, x):
        if _is_dataset(x):
            import tensorflow as tf

            spec = _unpack_x(x.element_spec)
            flat = tf.nest.flatten(spec)
            if (
                self.specs is not None
                and len(flat) == len(self.specs)
                and all(
                    s.shape.rank == len(e.shape) - 1 for s, e in zip(flat, self.specs, strict=True)
                )
            ):
                x = x.batch(self.batch_size)
            cardinality = int(x.cardinality())
            if cardinality >= 0:
                self.n_batches = cardinality
            return lambda: (_unpack_x(e) for e in x.as_numpy_iterator())
        if _is_py_dataset(x):
            self.n_batches = len(x)
            return lambda: (_unpack_x(x[i]) for i in range(len(x)))
        consumed = []

        def once():
            if consumed:
                raise ValueError(
                    f"`{self.name}` is a generator that was already consumed; pass "
                    "a fresh generator, a tf.data.Dataset or an array"
                )
            consumed.append(True)
            return (_unpack_x(e) for e in x)

        return once

    def __iter__(self):
        if self._arrays is not None:
            for start in range(0, self.n_samples, self.batch_size):
                leaves = [a[start : start + self.batch_size] for a in self._arrays]
                yield self._rebuild(self._cast(leaves))
            return
        n_seen = 0
        for element in self._stream():
            leaves, rebuild = _flatten(element, self._n_inputs)
            leaves = self._check_structure([self._as_numpy(a) for a in leaves])
            if leaves[0].shape[0] == 0:
                continue
            n_seen += leaves[0].shape[0]
            yield rebuild(self._cast(leaves))
        if n_seen == 0:
            raise ValueError(f"Expected at least one sample. Received: an empty `{self.name}`")
        self.n_samples = n_seen
