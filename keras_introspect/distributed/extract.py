"""`activations_to_zarr`: one layer's activations for any number of images, on disk."""

from __future__ import annotations

import math
import os
import sys
import threading

import numpy as np

from keras_introspect._progress import progress_bar
from keras_introspect._sources import is_dask
from keras_introspect._tensor import item_shape
from keras_introspect._validation import check_positive_int, check_verbose
from keras_introspect.distributed import store as stores
from keras_introspect.distributed import tasks
from keras_introspect.distributed._deps import require

#: target size of one chunk when `chunk_images="auto"` (Dask's advice: ~100 MB)
AUTO_CHUNK_BYTES = 64 * 2**20


def activations_to_zarr(
    model,
    layer,
    images,
    path,
    chunk_images="auto",
    batch_size=32,
    client=None,
    loader=None,
    custom_objects=None,
    dtype="float32",
    overwrite=False,
    verbose=1,
):
    """Write one layer's activations for all `images` into a chunked Zarr array.

    The images are read, pushed through the model up to `layer` and written
    chunk by chunk, so memory holds one chunk at a time whatever the number
    of images (a VGG's first block at 224x224 is 12.8 MB per image). The
    store is resumable: a run that stops keeps the chunks it wrote, and the
    same call again computes only the others. With a Dask `client` the chunks
    are computed on the cluster's workers; each worker loads the model once
    from the `.keras` file and writes its chunks itself, so `path` (and the
    image files) must be reachable from the workers, e.g. a shared disk or an
    object store.

    The array is `(n_images, *layer_output)` float32 with channels last (as
    every clusterer takes it), chunked along the images only, in a Zarr group
    at `path` whose attributes record the layer, the model and the inputs.

    Args:
        model: a `keras.Model`, or the path of a `.keras` file (needed with
            a `client`: workers load the model from it).
        layer: selector of one layer.
        images: a numpy array (or tensor) of images, a dask array of images,
            a list of image file paths (read with `loader`), or a stream of
            batches (`tf.data.Dataset`, `PyDataset`, generator; read here in
            order and sent to the workers chunk by chunk).
        path: directory of the Zarr store.
        chunk_images: images per chunk (and per task), or `"auto"` for about
            64 MB of activations per chunk.
        batch_size: images per forward pass within a chunk.
        client: a `distributed.Client`, or `None` to compute in this process.
        loader: for a list of files, `loader(file) -> (h, w, c) array`; by
            default the file is decoded and resized to the model's input
            size with `keras.utils.load_img` (values 0-255, float32).
        custom_objects: for loading the model file.
        dtype: of the stored values: `"float32"` or `"float16"` (half the
            disk; about three significant digits).
        overwrite: replace an existing store at `path` (only a store this
            function wrote is ever deleted).
        verbose: 0 silent, 1 progress bar (images), 2 one line at the end.

    Returns:
        A dask array over the stored activations, one block per chunk.

    Raises:
        ValueError: `path` holds a store written for another layer, model,
            dtype, chunking or images (the message names the difference).

    Example:
        >>> from dask.distributed import Client, LocalCluster    # doctest: +SKIP
        >>> client = Client(LocalCluster(n_workers=4, threads_per_worker=1))  # doctest: +SKIP
        >>> acts = ki.distributed.activations_to_zarr(
        ...     "vgg16.keras", "block1_conv2", files, "acts.zarr",
        ...     client=client)                                     # doctest: +SKIP
        >>> pc = ki.PixelClusterer(model, "block1_conv2").fit("acts.zarr")  # doctest: +SKIP
    """
    require("zarr")
    require("dask.array")

    from keras_introspect.model.io import load_model
    from keras_introspect.probes import _scan
    from keras_introspect.targets import one_output_layer

    verbose = check_verbose(verbose)
    batch_size = check_positive_int(batch_size, "batch_size")
    dtype = np.dtype(dtype)
    if dtype not in (np.float32, np.float16):
        raise ValueError(f"Expected dtype 'float32' or 'float16'. Received: dtype={dtype}")
    model_path = None
    if isinstance(model, (str, os.PathLike)):
        model_path = os.path.abspath(os.fspath(model))
        model = load_model(model_path, custom_objects)
    elif client is not None:
        raise ValueError(
            "With a Dask client, pass the model as the path of a .keras file that every "
            "worker can read (each worker loads it once): model.save('model.keras'). "
            f"Received: a {type(model).__name__} object"
        )
    intro = _scan.introspector(model)
    _scan.image_input(intro)
    info = one_output_layer(intro, layer)
    spec = intro.input_specs[0]
    source = _source(images, spec, loader)
    shape = item_shape(info)
    if shape is None:  # the layer's size depends on the image size: run one image
        first = _materialize(next(source.parts(1))[2], source.loader, spec)
        shape = _extract(intro, info.path, first[:1], 1, dtype).shape[1:]
    chunk_images = _chunk_images(chunk_images, shape, dtype, source.n)
    meta = {
        "layer": info.path,
        "model": model.name,
        "model weights and config": model_digest(model),
        "input_shape": [d for d in spec.shape[1:]],
        "images": source.fingerprint,
        "channels_last": True,
    }
    store = stores.ChunkedStore.create_or_resume(
        path, "activations", shape, dtype, source.n, chunk_images, meta, overwrite
    )
    done = set(range(store.n_chunks)) - set(store.pending())
    progbar = progress_bar(source.n, verbose=verbose, unit_name="image")
    if done:  # said whatever `verbose` is: a reuse is never silent
        print(
            f"activations_to_zarr: resuming {store.path!r}: {len(done)} chunk(s) already "
            "written for the same model weights and layer; their images are checked",
            file=sys.stderr,
        )

    def todo():
        n_seen = 0
        for index, start, part, size in source.parts(chunk_images):
            n_seen = start + size
            if source.n is None:
                store.grow(n_seen)
            if index in done:
                _check_chunk(store, index, size, source, part, spec)
                progbar.add(size)
                continue
            yield index, part, size
        if source.n is None and n_seen != store.n_images:
            raise ValueError(
                f"The stream gave {n_seen} images; the store at {store.path!r} was written "
                f"for {store.n_images}. Pass overwrite=True to start again"
            )

    job = (info.path, source.loader, batch_size, dtype.str, store.path)
    if client is None:
        for index, part, size in todo():
            _chunk(intro, job, index, part, source.digest(part))
            progbar.add(size)
    else:
        dask = require("dask")
        remote = dask.delayed(_remote_chunk, pure=False)
        tasks.run(
            (
                (
                    remote((model_path, custom_objects), job, index, part, source.digest(part)),
                    size,
                )
                for index, part, size in todo()
            ),
            client=client,
            progbar=progbar,
        )
    store.finish()
    return store.to_dask()


# ------------------------------------------------------------------ sources


class _Source:
    """Where the images come from, cut into chunks.

    `parts(chunk)` yields `(index, start, part, size)`; a part is a numpy
    array, a dask `Delayed` block or a list of file names (read by `loader`),
    turned into images by `_materialize` where the task runs.
    """

    def __init__(self, n, fingerprint, parts, loader=None, digest=None):
        self.n = n
        self.fingerprint = fingerprint
        self.parts = parts
        self.loader = loader
        self._digest = digest

    def digest(self, part):
        """The digest of a part's images here, or `None`: computed where they are read."""
        return None if self._digest is None else self._digest(part)


def _source(images, spec, loader):
    from keras_introspect._data import Batches, as_array, is_stream

    if images is None:
        raise ValueError("Expected images. Received: images=None")
    if is_dask(images):
        _check_shape(images.shape, spec, "images")

        def dask_parts(chunk):
            blocks = images.rechunk((chunk, *images.shape[1:])).to_delayed().ravel()
            for index, block in enumerate(blocks):
                start = index * chunk
                yield index, start, block, min(chunk, images.shape[0] - start)

        return _Source(
            int(images.shape[0]), f"dask array {tuple(images.shape)} {images.dtype}", dask_parts
        )
    if (
        isinstance(images, (list, tuple))
        and images
        and all(isinstance(f, (str, os.PathLike)) for f in images)
    ):
        files = [os.fspath(f) for f in images]

        def file_parts(chunk):
            for index, start in enumerate(range(0, len(files), chunk)):
                part = files[start : start + chunk]
                yield index, start, part, len(part)

        # each chunk is checked by its files' names, sizes and modification
        # times: a changed file is a changed chunk, and nothing is read again
        return _Source(len(files), f"{len(files)} files", file_parts, loader, _files_digest)
    if is_stream(images):
        batches = Batches(images, 32, [spec], "images")

        def stream_parts(chunk):
            held, start, index = [], 0, 0
            for batch in batches:
                held.append(batch)
                while sum(len(b) for b in held) >= chunk:
                    joined = np.concatenate(held)
                    yield index, start, joined[:chunk], chunk
                    held, start, index = [joined[chunk:]], start + chunk, index + 1
            rest = np.concatenate(held) if held else np.empty((0,))
            if len(rest):
                yield index, start, rest, len(rest)

        return _Source(None, f"stream {type(images).__name__}", stream_parts, None, _digest)
    array = as_array(images, "images")
    batches = Batches(array, 32, [spec], "images")  # checks the shape
    array = batches._arrays[0]

    def array_parts(chunk):
        for index, start in enumerate(range(0, len(array), chunk)):
            part = array[start : start + chunk]
            yield index, start, part, len(part)

    return _Source(
        len(array), f"array {tuple(array.shape)} {array.dtype}", array_parts, None, _digest
    )


def _digest(images) -> int:
    return stores.chunk_digest(np.asarray(images))


def _files_digest(files) -> int:
    described = []
    for name in files:
        try:
            stat = os.stat(name)
            described.append(f"{os.path.abspath(name)}\t{stat.st_size}\t{stat.st_mtime_ns}")
        except OSError:
            described.append(f"{os.path.abspath(name)}\tmissing")
    return stores.chunk_digest("\n".join(described).encode())


def model_digest(model) -> str:
    """What determines a model's outputs: its config and every weight's values."""
    import json

    try:
        # objects JSON cannot write are named by their class, never by their
        # repr (which may hold a memory address and change every run)
        config = json.dumps(
            model.get_config(), sort_keys=True, default=lambda o: type(o).__qualname__
        )
    except (NotImplementedError, TypeError):
        config = type(model).__qualname__
    parts = [config.encode()]
    for weight in model.weights:
        parts += [str(weight.path).encode(), np.asarray(weight.numpy())]
    return stores.digest(*parts)


def _check_chunk(store, index, size, source, part, spec) -> None:
    """Refuse to reuse chunk `index` if its images are not those it was written from."""
    stored = min(store.chunk_images, store.n_images - index * store.chunk_images)
    if size != stored:
        raise ValueError(
            f"Chunk {index} of the store at {store.path!r} holds {stored} images; the input "
            f"gives {size} there: the images changed since (a shorter or longer input). "
            "Pass overwrite=True to recompute the store, or another path"
        )
    expected = store.digest_of(index)
    found = source.digest(part)
    if found is None:  # a dask block: compute it here to check it
        found = _digest(_materialize(part, source.loader, spec))
    if expected != found:
        raise ValueError(
            f"Chunk {index} of the store at {store.path!r} was written from other images "
            "than the ones given now (their digest differs): the images changed since. "
            "Pass overwrite=True to recompute the store, or another path"
        )


def _check_shape(shape, spec, name):
    expected = spec.shape
    if len(shape) != len(expected) or any(
        e is not None and e != s for e, s in zip(expected[1:], shape[1:], strict=True)
    ):
        raise ValueError(
            f"Expected {name} of shape {expected} (batch first). Received: shape {tuple(shape)}"
        )


def _materialize(part, loader, spec):
    """The images of one part, as numpy (runs where the task runs)."""
    if isinstance(part, list):
        return _load_files(part, loader, spec)
    if hasattr(part, "compute"):  # a dask block, here; a task gets it computed
        return np.asarray(part.compute())
    return np.asarray(part)


def _load_files(files, loader, spec):
    if loader is not None:
        images = [np.asarray(loader(f)) for f in files]
    else:
        import keras

        size = tuple(spec.shape[1:3]) if None not in spec.shape[1:3] else None
        channels = spec.shape[-1]
        mode = {1: "grayscale", 3: "rgb", 4: "rgba"}.get(channels)
        if mode is None:
            raise ValueError(
                f"Cannot read image files for an input of shape {spec.shape}; pass "
                "loader=fn(file) -> array"
            )
        images = []
        for f in files:
            if not os.path.exists(f):
                raise FileNotFoundError(f"No image file at {f!r}")
            image = keras.utils.load_img(f, color_mode=mode, target_size=size)
            images.append(keras.utils.img_to_array(image, dtype="float32"))
    shapes = {a.shape for a in images}
    if len(shapes) != 1:
        raise ValueError(
            f"Expected images of one size. Received: shapes {sorted(shapes)} in {files[:3]}..."
        )
    return np.stack(images)


# -------------------------------------------------------------- extraction


def _chunk_images(chunk_images, item_shape, dtype, n):
    if chunk_images == "auto":
        per_image = max(1, math.prod(item_shape) * dtype.itemsize)
        chunk = max(1, AUTO_CHUNK_BYTES // per_image)
        return int(min(chunk, n)) if n else int(chunk)
    return check_positive_int(chunk_images, "chunk_images")


def _extract(intro, layer_path, images, batch_size, dtype):
    from keras_introspect.probes import _scan

    parts = [
        outputs[0]
        for outputs, _ in _scan.scan(
            intro, layer_path, images, lambda a: [a], "activations", batch_size, 0
        )
    ]
    return np.concatenate(parts).astype(dtype, copy=False)


_MODELS = {}
_MODELS_LOCK = threading.Lock()
#: models this process loaded from files (tests check "once per worker")
LOADS = []


def _worker_introspector(model_path, custom_objects):
    """The model of this process, loaded once per file version."""
    from keras_introspect.model.introspector import Introspector
    from keras_introspect.model.io import load_model

    stat = os.stat(model_path)
    key = (model_path, stat.st_mtime_ns, stat.st_size)
    with _MODELS_LOCK:
        if key not in _MODELS:
            _MODELS.clear()  # one model per worker at a time
            _MODELS[key] = Introspector(load_model(model_path, custom_objects))
            LOADS.append(model_path)
        return _MODELS[key]


def _chunk(intro, job, index, part, digest=None):
    """Compute chunk `index` from its part of the images and write it (here or on a worker).

    `digest` identifies the images (`None`: the digest of the images read here).
    """
    layer_path, loader, batch_size, dtype, path = job
    images = _materialize(part, loader, intro.input_specs[0])
    values = _extract(intro, layer_path, images, batch_size, np.dtype(dtype))
    if digest is None:
        digest = _digest(images)
    return stores.write_chunk(path, "activations", index, values, digest)


def _remote_chunk(model, job, index, part, digest=None):
    """The task a worker runs: the model of the worker (loaded once), then `_chunk`."""
    return _chunk(_worker_introspector(*model), job, index, part, digest)
