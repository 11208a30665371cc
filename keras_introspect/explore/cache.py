"""The explorer's cache folder: computed pieces as `.npz` and `.json` files.

Every piece is stored under a name that says what it is (``scan/conv1.npz``)
together with the key of what determined its values (the model's
fingerprint, the settings, the hashes of the images it used). A piece is
reused only when its key matches; a piece over images (the top-k scan, the
exemplars' saliency) is keyed image by image, so a second run with more
images computes the new images only. Files are written atomically, so an
interrupted run leaves whole pieces that the next run resumes from.
"""

from __future__ import annotations

import hashlib
import io
import json
import os

import numpy as np

from keras_introspect._files import write_atomic


def digest(*parts) -> str:
    """A short hex digest of `parts` (bytes, arrays or JSON-able values)."""
    h = hashlib.sha1()
    for part in parts:
        if isinstance(part, np.ndarray):
            part = np.ascontiguousarray(part)
            h.update(repr((part.dtype.str, part.shape)).encode())
            h.update(part.data)
        elif isinstance(part, bytes):
            h.update(part)
        else:
            h.update(json.dumps(part, sort_keys=True, default=str).encode())
        h.update(b"\x00")
    return h.hexdigest()[:20]


def image_hashes(x: np.ndarray) -> np.ndarray:
    """One digest per image of `x` (its dtype, shape and bytes): `(n,)` strings."""
    return np.array([digest(image) for image in x])


def model_fingerprint(model) -> str:
    """A digest of what determines a model's values: its config and all its weights."""
    try:
        config = model.get_config()
    except Exception:  # subclassed models without get_config: the weights still count
        config = type(model).__qualname__
    weights = [np.asarray(w) for w in model.weights]
    return digest(config, [w.name for w in model.weights], *weights)


class Cache:
    """Load and save keyed pieces in `folder` (created on first save).

    Example:
        >>> import tempfile
        >>> cache = Cache(tempfile.mkdtemp())
        >>> cache.save("am/conv1", {"key": "k1"}, images=np.zeros(3))
        >>> cache.load("am/conv1", {"key": "k1"})["images"].shape
        (3,)
        >>> cache.load("am/conv1", {"key": "k2"}) is None
        True
    """

    def __init__(self, folder):
        self.folder = os.fspath(folder)

    def _path(self, name: str, extension: str) -> str:
        return os.path.join(self.folder, *name.split("/")) + extension

    def load(self, name: str, key=None):
        """The arrays saved under `name` as a dict, if its key is `key`; else `None`.

        With `key=None` any stored key is accepted (the caller compares what
        it needs, e.g. image by image); the key is returned as ``"__key__"``.
        """
        path = self._path(name, ".npz")
        if not os.path.exists(path):
            return None
        try:
            with np.load(path, allow_pickle=False) as stored:
                arrays = {k: stored[k] for k in stored.files}
        except (OSError, ValueError):  # unreadable: computed again
            return None
        stored_key = json.loads(str(arrays.pop("__key__")))
        if key is not None and stored_key != json.loads(json.dumps(key, default=str)):
            return None
        arrays["__key__"] = stored_key
        return arrays

    def save(self, name: str, key, **arrays) -> None:
        """Store `arrays` (numpy) under `name` with `key` (JSON-able), atomically."""
        path = self._path(name, ".npz")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        buffer = io.BytesIO()
        np.savez(buffer, __key__=np.array(json.dumps(key, default=str)), **arrays)
        write_atomic(path, buffer.getvalue())

    def load_json(self, name: str, key=None):
        """The JSON value saved under `name` if its key is `key` (any with `None`)."""
        path = self._path(name, ".json")
        if not os.path.exists(path):
            return None
        try:
            with open(path, encoding="utf-8") as handle:
                stored = json.load(handle)
        except (OSError, ValueError):
            return None
        if key is not None and stored.get("key") != json.loads(json.dumps(key, default=str)):
            return None
        return stored.get("value")

    def save_json(self, name: str, key, value) -> None:
        """Store a JSON-able `value` under `name` with `key`, atomically."""
        path = self._path(name, ".json")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        write_atomic(path, json.dumps({"key": key, "value": value}, default=str, indent=1))
