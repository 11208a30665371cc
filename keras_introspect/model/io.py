"""Loading saved Keras models with errors that say what went wrong."""

from __future__ import annotations

import os


def load_model(path, custom_objects=None):
    """Load a `.keras` (Keras 3) or legacy `.h5` model file without compiling it.

    Args:
        path: file path.
        custom_objects: optional dict of custom layers/functions by name.

    Returns:
        The `keras.Model`.

    Raises:
        FileNotFoundError: no file at `path`.
        ValueError: the file is not a model Keras can load (the message gives
            Keras' reason, e.g. an unknown custom layer).

    Example:
        >>> model = ki.load_model("classifier.keras")  # doctest: +SKIP
    """
    import keras

    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"No model file at {path!r}")
    if os.path.isdir(path):
        raise ValueError(
            f"Expected a .keras or .h5 model file. Received a directory: {path!r} "
            "(TensorFlow SavedModel folders cannot be loaded as Keras 3 models; "
            "re-save with model.save('model.keras'))"
        )
    try:
        return keras.saving.load_model(path, custom_objects=custom_objects, compile=False)
    except Exception as err:  # Keras raises many types for unreadable files
        raise ValueError(f"Could not load a Keras model from {path!r}: {err}") from err
