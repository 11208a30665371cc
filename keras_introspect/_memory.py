"""Memory: retry a batch that does not fit, and size batches for the memory there is.

A forward or backward pass whose batch does not fit in *device* (GPU) memory
raises `tf.errors.ResourceExhaustedError`. Every streaming loop of the
package runs its batches through a `Halver`: the batch that failed is split
in halves (down to one row) and run again, with a `KerasIntrospectWarning`,
and the smaller size is kept for the rest of the call. Nothing already
computed is lost, and results do not depend on the batch size.

On CPU an allocation beyond the process' memory limit is not reported: the
process is killed. There `batch_size="auto"` (`auto_batch_size`) sizes the
batch from the model's activation sizes and the memory available, before
anything runs.
"""

from __future__ import annotations

import warnings

import numpy as np

from keras_introspect._validation import check_positive_int
from keras_introspect.exceptions import KerasIntrospectWarning


def out_of_memory_errors() -> tuple:
    """The exception types that mean "this batch does not fit"."""
    import tensorflow as tf

    return (tf.errors.ResourceExhaustedError,)


class Halver:
    """The number of rows per step now in use, halved when a step runs out of memory.

    Args:
        size: rows per step to start with.
        what: what runs, for the warning (e.g. ``"Saliency"``).

    Example:
        >>> halver = Halver(8, "demo")
        >>> halver.map(lambda piece: piece.sum(), np.arange(10))
        [np.int64(28), np.int64(17)]
    """

    def __init__(self, size: int, what: str):
        self.size = int(size)
        self.what = what

    def shrink(self, error, unit: str = "rows") -> None:
        """Halve `size` after `error`, with a warning; re-raise it at size 1."""
        if self.size <= 1:
            raise error
        new = self.size // 2
        warnings.warn(
            f"{self.what} ran out of device memory with {self.size} {unit} per step; "
            f"retrying with {new}. Pass a smaller `batch_size` to avoid the retry.",
            KerasIntrospectWarning,
            stacklevel=3,
        )
        self.size = new

    def map(self, fn, batch) -> list:
        """`fn(piece)` for consecutive pieces of `batch`, each at most `size` rows.

        `batch` is an array or a (nested) list/tuple/dict of arrays with the
        same first dimension (multi-input models). A piece that runs out of
        memory is retried smaller; the results of the pieces come back in
        order (concatenate them).
        """
        import tensorflow as tf

        errors = out_of_memory_errors()
        n = len(tf.nest.flatten(batch)[0])
        results, start = [], 0
        while start < n:
            stop = min(n, start + self.size)
            piece = batch if (start, stop) == (0, n) else _rows(batch, start, stop)
            try:
                results.append(fn(piece))
            except errors as error:
                self.shrink(error)
                continue
            start = stop
        return results


def _rows(batch, start: int, stop: int):
    import tensorflow as tf

    return tf.nest.map_structure(lambda a: a[start:stop], batch)


def concat_pieces(pieces: list):
    """Concatenate per-piece results: arrays, or lists of arrays position by position."""
    if len(pieces) == 1:
        return pieces[0]
    if isinstance(pieces[0], (list, tuple)):
        return [np.concatenate(parts) for parts in zip(*pieces, strict=True)]
    return np.concatenate(pieces)


AUTO = "auto"


def check_batch_size(value, name: str = "batch_size"):
    """`"auto"`, or a positive int (as `check_positive_int`)."""

    if isinstance(value, str) and value == AUTO:
        return AUTO
    return check_positive_int(value, name)


def resolve_batch_size(value, intro, factor=3) -> int:
    """`value` checked; `"auto"` becomes `auto_batch_size(intro, factor=factor)`
    (`factor=1` for forward passes only, 3 with a backward pass)."""
    value = check_batch_size(value)
    return auto_batch_size(intro, factor=factor) if value == AUTO else value


def available_bytes() -> int | None:
    """Memory this process may still use: the smaller of the machine's available
    memory and its cgroup's remaining limit (containers); `None` if unknown."""
    found = []
    try:
        with open("/proc/meminfo", encoding="ascii") as info:
            for line in info:
                if line.startswith("MemAvailable:"):
                    found.append(int(line.split()[1]) * 1024)
    except OSError:
        pass
    try:
        with open("/sys/fs/cgroup/memory.max", encoding="ascii") as limit:
            text = limit.read().strip()
        with open("/sys/fs/cgroup/memory.current", encoding="ascii") as current:
            used = int(current.read().strip())
        if text != "max":
            found.append(max(0, int(text) - used))
    except (OSError, ValueError):
        pass
    return min(found) if found else None


def bytes_per_row(intro) -> int | None:
    """float32 bytes of every layer's output for one sample (`None`: sizes unknown)."""
    total = 0
    for info in intro.layers:
        shape = info.output_shape
        if info.is_container or not isinstance(shape, tuple):
            continue
        if any(d is None for d in shape[1:]):
            return None
        total += int(np.prod(shape[1:], dtype=np.int64)) * 4
    return total


# At most this many bytes of activations per step: beyond about a gigabyte a larger
# batch runs no faster on a CPU and only raises the process's peak memory.
STEP_BUDGET = 1 << 30


def auto_batch_size(
    intro, available=None, share=0.25, factor=3, default=32, cap=512, budget=STEP_BUDGET
) -> int:
    """Rows per step that fit in `share` of the `available` memory, and in `budget`.

    A row costs `factor` times its forward activations (kept for the
    backward pass, plus their gradients). For a model whose sizes depend on
    the input, or where the memory cannot be read, `default`.

    Example:
        >>> import keras, keras_introspect as ki
        >>> model = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Conv2D(2, 3)])
        >>> # one row: 6 * 6 * 2 float32 = 288 bytes, times 3
        >>> auto_batch_size(ki.Introspector(model), available=4 * 864 * 100)
        100
    """
    available = available_bytes() if available is None else available
    per_row = bytes_per_row(intro)
    if available is None or not per_row:
        return default
    room = min(share * available, budget)
    return int(max(1, min(cap, room // (factor * per_row))))
