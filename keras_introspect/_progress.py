"""Progress bars on standard error, like every other status message of the package.

Keras' `Progbar` writes to standard output; the bars here are Keras' own,
with their output sent to standard error, so a script's standard output
holds its results only (`keras-introspect ... > results.txt`).
"""

from __future__ import annotations

import contextlib
import functools
import sys


@functools.cache
def _bar_class():
    import keras

    class StderrProgbar(keras.utils.Progbar):
        """`keras.utils.Progbar` writing to `sys.stderr` (as it is when called)."""

        def __init__(self, *args, **kwargs):
            with contextlib.redirect_stdout(sys.stderr):  # its display mode: stderr's tty
                super().__init__(*args, **kwargs)

        def update(self, *args, **kwargs):
            with contextlib.redirect_stdout(sys.stderr):
                return super().update(*args, **kwargs)

    return StderrProgbar


def progress_bar(target, verbose=1, unit_name="step"):
    """A `keras.utils.Progbar` of `target` steps whose output goes to standard error.

    Example:
        >>> bar = progress_bar(2, verbose=0)
        >>> bar.update(2)
    """
    return _bar_class()(target, verbose=verbose, unit_name=unit_name)
