"""Zarr stores of per-image results, written chunk by chunk and resumable.

A store is a Zarr group holding one array `(n_images, ...)` chunked along
the images only, and one marker per chunk (`done`). Each chunk is written by
one task, here or on a Dask worker, and its marker after it; Zarr writes
every chunk file atomically. A run that stops (an error, a lost worker,
Ctrl-C) keeps the chunks it finished, and the next run with the same
description skips them. Readers refuse a store with chunks missing: an
unwritten chunk would read as zeros.
"""

from __future__ import annotations

import os
import shutil

import numpy as np

from keras_introspect.distributed._deps import require

KEY = "keras_introspect"
VERSION = 2  # 2: a digest of each chunk's inputs, and the model's weights in `meta`
# Files Zarr writes for group and array metadata; a folder holding nothing else
# has no chunk written (a run killed while creating the store).
_METADATA_FILES = frozenset({"zarr.json", ".zgroup", ".zattrs", ".zarray", ".zmetadata"})


class ChunkedStore:
    """One array of a Zarr group, chunked along its first axis, with done markers.

    Use `create_or_resume` to write and `open` to read; `write_chunk` is the
    function tasks call.

    Attributes:
        path: the group's path.
        name: the array's name in the group (`"activations"`, `"labels"`).
        meta: the description stored with it (`complete`, `n_images`,
            `chunk_images` and what the writer recorded: layer, model, ...).
    """

    def __init__(self, path, name, group):
        self.path = os.fspath(path)
        self.name = name
        self.group = group

    # ------------------------------------------------------------ opening

    @classmethod
    def create_or_resume(
        cls, path, name, item_shape, dtype, n_images, chunk_images, meta, overwrite=False
    ):
        """Open the store at `path` to go on writing it, or create it.

        Args:
            path: directory of the Zarr group.
            name: the array's name.
            item_shape: shape of one image's result.
            dtype: its dtype.
            n_images: number of images, or `None` when unknown (streams):
                the array then grows with `grow`.
            chunk_images: images per chunk.
            meta: JSON-able description; resuming needs the same one.
            overwrite: delete what is at `path` first.

        Raises:
            ValueError: `path` holds something else, or a store with another
                description (the message names the differences).
        """
        zarr = require("zarr")
        path = os.fspath(path)
        if os.path.islink(path):
            raise ValueError(
                f"{path!r} is a symbolic link; stores are written and replaced only at their "
                f"real path. Pass {os.path.realpath(path)!r} instead"
            )
        if os.path.isdir(path) and _holds_no_chunks(path) and not _is_store(path):
            shutil.rmtree(path)  # a store whose creation was killed: nothing to keep
        if overwrite and os.path.exists(path):
            _remove(path)
        wanted = {
            **meta,
            "name": name,
            "item_shape": list(item_shape),
            "dtype": np.dtype(dtype).str,
            "chunk_images": int(chunk_images),
        }
        if os.path.exists(path):
            store = cls._open_existing(path, name, mode="r+")
            found = {k: v for k, v in store.meta.items() if k not in ("complete", "n_images")}
            diff = [
                f"{k}: stored {found.get(k)!r}, now {v!r}"
                for k, v in wanted.items()
                if _jsonable(found.get(k)) != _jsonable(v)
            ]
            if n_images is not None and store.meta.get("n_images") not in (None, n_images):
                diff.append(f"n_images: stored {store.meta['n_images']}, now {n_images}")
            if diff:
                raise ValueError(
                    f"{path!r} holds a store written for other inputs ({'; '.join(diff)}). "
                    "Pass overwrite=True to replace it, or another path"
                )
            return store
        group = zarr.open_group(path, mode="w")
        n = 0 if n_images is None else int(n_images)
        group.create_array(
            name,
            shape=(n, *item_shape),
            chunks=(int(chunk_images), *item_shape),
            dtype=dtype,
            fill_value=0,
        )
        group.create_array(
            "done", shape=(_n_chunks(n, chunk_images),), chunks=(1,), dtype=bool, fill_value=False
        )
        group.create_array(
            "digests",
            shape=(_n_chunks(n, chunk_images),),
            chunks=(1,),
            dtype=np.uint64,
            fill_value=0,
        )
        group.attrs[KEY] = {
            **wanted,
            "version": VERSION,
            "n_images": n_images,
            "complete": False,
        }
        return cls(path, name, group)

    @classmethod
    def open(cls, path, name=None):
        """Open a complete store to read.

        Raises:
            FileNotFoundError: nothing at `path`.
            ValueError: not a keras_introspect store, or chunks are missing.
        """
        store = cls._open_existing(os.fspath(path), name, mode="r")
        missing = store.pending()
        if not store.meta.get("complete") or missing:
            what = f"{len(missing)} of its {store.n_chunks} chunks" if missing else "its end"
            raise ValueError(
                f"The store at {store.path!r} is incomplete: {what} were never written (the "
                "run that wrote it stopped). Run the same call again to finish it; it "
                "skips the chunks already written"
            )
        return store

    @classmethod
    def _open_existing(cls, path, name, mode):
        zarr = require("zarr")
        if not os.path.exists(path):
            raise FileNotFoundError(f"No Zarr store at {path!r}")
        try:
            group = zarr.open_group(path, mode=mode)
        except Exception as err:  # zarr raises several types for a non-group
            raise ValueError(
                f"{path!r} is not a Zarr group written by keras_introspect ({err}). Pass a "
                "store written by activations_to_zarr, or open the array yourself and pass "
                "it as a dask array"
            ) from err
        meta = dict(group.attrs).get(KEY)
        if isinstance(meta, dict) and meta.get("version") != VERSION:
            raise ValueError(
                f"{path!r} is a keras_introspect store of version {meta.get('version')}, "
                f"written without the checks of version {VERSION} (a digest of the model and "
                "of every chunk's images): write it again with overwrite=True"
            )
        if not isinstance(meta, dict):
            raise ValueError(
                f"{path!r} is a Zarr group but not a keras_introspect store (no "
                f"{KEY!r} attributes of version {VERSION}); choose another path, or "
                "overwrite=True to replace it"
            )
        if name is not None and meta.get("name") != name:
            raise ValueError(
                f"Expected a store of {name}. Received: {path!r}, a store of {meta.get('name')}"
            )
        return cls(path, meta["name"], group)

    # ---------------------------------------------------------- properties

    @property
    def meta(self) -> dict:
        """The stored description (a copy)."""
        return dict(self.group.attrs[KEY])

    @property
    def array(self):
        """The `zarr.Array` of results."""
        return self.group[self.name]

    @property
    def chunk_images(self) -> int:
        """Images per chunk."""
        return int(self.meta["chunk_images"])

    @property
    def n_images(self) -> int:
        """Images the array holds room for."""
        return int(self.array.shape[0])

    @property
    def n_chunks(self) -> int:
        """Chunks along the images."""
        return int(self.group["done"].shape[0])

    def pending(self) -> list:
        """Indices of the chunks not written yet."""
        done = np.asarray(self.group["done"][:], dtype=bool)
        return [int(i) for i in np.flatnonzero(~done)]

    def digest_of(self, index) -> int:
        """The digest of chunk `index`'s inputs recorded when it was written (0: none)."""
        return int(self.group["digests"][index])

    def to_dask(self):
        """The array as a dask array, one block per chunk."""
        da = require("dask.array")
        return da.from_zarr(self.array)

    # ------------------------------------------------------------- writing

    def grow(self, n_images) -> None:
        """Make room for `n_images` (streams of unknown length)."""
        if n_images > self.n_images:
            array = self.array
            array.resize((n_images, *array.shape[1:]))
            n_chunks = _n_chunks(n_images, self.chunk_images)
            self.group["done"].resize((n_chunks,))
            self.group["digests"].resize((n_chunks,))

    def finish(self) -> None:
        """Record that every chunk is written and the length final."""
        missing = self.pending()
        if missing:
            raise RuntimeError(f"Chunks {missing[:10]} of {self.path!r} were not written")
        meta = self.meta
        meta.update(complete=True, n_images=self.n_images)
        self.group.attrs[KEY] = meta


def write_chunk(path, name, index, values, inputs_digest=0) -> int:
    """Write chunk `index` of array `name` of the store at `path`, then its marker.

    Runs where the task runs (a Dask worker needs to reach `path`).
    `inputs_digest` (`chunk_digest` of what the chunk was computed from) is
    recorded before the marker, so a resumed run can check every chunk.
    """
    zarr = require("zarr")
    group = zarr.open_group(os.fspath(path), mode="r+")
    array = group[name]
    chunk = array.chunks[0]
    start = index * chunk
    stop = min(start + chunk, array.shape[0])
    values = np.asarray(values)
    if values.shape != (stop - start, *array.shape[1:]):
        raise ValueError(
            f"Chunk {index} of {path!r} takes shape {(stop - start, *array.shape[1:])}. "
            f"Received: {values.shape}"
        )
    array[start:stop] = values
    group["digests"][index] = np.uint64(inputs_digest)
    group["done"][index] = True
    return index


def chunk_digest(*parts) -> int:
    """A nonzero 64-bit digest of bytes or arrays (what a chunk was computed from)."""
    import hashlib

    h = hashlib.sha1()
    for part in parts:
        if isinstance(part, np.ndarray):
            h.update(str((part.shape, part.dtype.str)).encode())
            part = np.ascontiguousarray(part).tobytes()
        h.update(part)
    return int.from_bytes(h.digest()[:8], "little") or 1


def digest(*parts) -> str:
    """`chunk_digest` as 16 hex digits: what identifies inputs and fits in `meta`."""
    return f"{chunk_digest(*parts):016x}"


def _n_chunks(n, chunk) -> int:
    return -(-int(n) // int(chunk))


def _jsonable(value):
    """Compare lists and tuples alike (attributes come back as lists)."""
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


def _is_store(path) -> bool:
    zarr = require("zarr")
    try:
        return isinstance(dict(zarr.open_group(path, mode="r").attrs).get(KEY), dict)
    except Exception:  # not a Zarr group at all
        return False


_OUR_ARRAYS = frozenset({"activations", "labels", "done", "digests"})


def _holds_no_chunks(path) -> bool:
    """Whether the folder is what a killed store creation leaves: Zarr metadata
    only, and no folders but the arrays this module creates (no data at all).
    Anything else (a user's own Zarr tree) is never deleted without asking."""
    for folder, subfolders, files in os.walk(path):
        if any(name not in _METADATA_FILES for name in files):
            return False
        if folder == os.fspath(path) and any(d not in _OUR_ARRAYS for d in subfolders):
            return False
    return True


def _remove(path) -> None:
    """Delete a keras_introspect store; refuse anything else (never lose other files)."""
    zarr = require("zarr")
    try:
        meta = dict(zarr.open_group(path, mode="r").attrs).get(KEY)
    except Exception:  # not a Zarr group at all
        meta = None
    if not isinstance(meta, dict):
        raise ValueError(
            f"overwrite=True deletes only stores written by keras_introspect; {path!r} is "
            "something else. Remove it yourself or choose another path"
        )
    shutil.rmtree(path)


def open_store(path):
    """The array of a complete store (activations or labels) as a dask array.

    Args:
        path: directory written by `activations_to_zarr` or
            `PixelClusterer.transform_to_zarr`.

    Returns:
        A dask array, one block per chunk. `ChunkedStore.open(path).meta`
        gives the description stored with it (layer, model, inputs).

    Raises:
        ValueError: not such a store, or one with chunks never written.

    Example:
        >>> labels = ki.distributed.open_store("labels.zarr")   # doctest: +SKIP
        >>> labels[:8].compute()                                 # doctest: +SKIP
    """
    return ChunkedStore.open(path).to_dask()
