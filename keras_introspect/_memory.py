"""Out-of-memory recovery: retry a batch that does not fit with half as many rows.

A forward or backward pass whose batch does not fit in device memory raises
`tf.errors.ResourceExhaustedError`. Every streaming loop of the package runs
its batches through a `Halver`: the batch that failed is split in halves
(down to one row) and run again, with a `KerasIntrospectWarning`, and the
smaller size is kept for the rest of the call. Nothing already computed is
lost, and results do not depend on the batch size, so they are unchanged.
"""

from __future__ import annotations

import warnings

import numpy as np

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
