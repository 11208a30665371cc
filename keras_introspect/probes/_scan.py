"""Stream a dataset through a truncated forward pass, reducing on the device.

Every probe reads one layer over a whole dataset. The forward pass stops at
that layer (`Tap(truncate=True)`), the layer's output is reduced on the
device by a probe-specific function, and only the reduced values come back
to the host, batch by batch.
"""

from __future__ import annotations

import contextlib
import contextvars
import zlib

import numpy as np

from keras_introspect._data import Batches
from keras_introspect._memory import (
    Halver,
    concat_pieces,
    resolve_batch_size,
)
from keras_introspect._progress import progress_bar
from keras_introspect._tensor import channels_last
from keras_introspect._validation import (
    check_backend,
    check_index,
    check_model,
    check_one_of,
    check_verbose,
)


def introspector(model):
    from keras_introspect.model.introspector import Introspector

    check_backend()
    check_model(model)
    return Introspector(model)


def image_input(intro) -> int:
    """Index of the only model input; probes need single-input models."""
    specs = intro.input_specs
    if specs is None or len(specs) != 1:
        raise ValueError(
            "Expected a model with one input. Received: a model with "
            f"{'unknown' if specs is None else len(specs)} inputs"
        )
    return 0


def scan(
    intro,
    path,
    x,
    reduce,
    key,
    batch_size: int,
    verbose: int,
    keep_batches: bool = False,
    extra=(),
):
    """Yield `(outputs, batch)` per batch: `reduce(activation, *extra)` as numpy.

    Args:
        intro: the model's `Introspector`.
        path: the layer path (`None` for the model output), or a tuple of
            paths: one forward pass reads them all, and `reduce` receives
            the list of their activations.
        x: images in any form `Batches` accepts.
        reduce: `reduce(activation_channels_last, *extra) -> list of
            tensors`, traced once per `key`; for `path=None` it receives the
            model output instead.
        key: hashable: what `reduce` computes besides `extra` (the compiled
            scan is shared by every call with the same key, layer and input).
        batch_size, verbose: streaming options (``batch_size="auto"``: sized
            for the memory available).
        keep_batches: also yield the batch (numpy) for crops and images.
            Batches of a stream may differ in size for a model of free input
            size: each sample shape is compiled once (and kept in the session).
        extra: numpy arrays passed to `reduce` as inputs (channel indices):
            other values reuse the compiled scan.
    """
    import tensorflow as tf

    batch_size = resolve_batch_size(batch_size, intro, factor=1)  # forward only
    verbose = check_verbose(verbose)
    image_input(intro)
    batches = Batches(x, batch_size, intro.input_specs)
    if isinstance(path, (tuple, list)):
        path = tuple(intro.layer(p).path for p in path)
    elif path is not None:
        path = intro.layer(path).path
    extra = [np.asarray(e) for e in extra]
    specs = [tf.TensorSpec([None] * e.ndim, tf.as_dtype(e.dtype)) for e in extra]
    kept = None if path is None else stored(intro, x, path if isinstance(path, tuple) else (path,))
    if kept is None:
        outputs_of = _forward_outputs(intro, path, reduce, key, specs, extra, batch_size)
    else:  # read beforehand (`ActivationStore`): reduce them, no forward pass
        outputs_of = _stored_outputs(intro, path, reduce, key, specs, extra, kept)
    progbar = progress_bar(batches.n_batches, verbose=verbose, unit_name="batch")
    start = 0
    for step, batch in enumerate(batches):
        outputs = outputs_of(batch, start)
        yield outputs, (batch if keep_batches else None)
        start += len(batch)
        progbar.update(step + 1)


def _forward_outputs(intro, path, reduce, key, specs, extra, batch_size):
    """`outputs_of(batch, start)`: the reduced activations of a batch of images."""
    import tensorflow as tf

    fns = {}  # one compiled scan per sample shape: a free-size model's batches may differ
    halver = Halver(batch_size, "dataset scan")

    def outputs_of(batch, start):
        spec = tf.TensorSpec((None, *batch.shape[1:]), tf.as_dtype(batch.dtype))
        fn = fns.get(repr(spec))
        if fn is None:
            fn = fns[repr(spec)] = intro.cached(
                ("scan", key, path, repr(spec), repr(specs)),
                lambda: _compile_scan(intro, path, reduce, [spec], specs),
            )
        return concat_pieces(
            halver.map(lambda piece: [np.asarray(o) for o in fn(piece, *extra)], batch)
        )

    return outputs_of


def _stored_outputs(intro, path, reduce, key, specs, extra, kept):
    """`outputs_of(batch, start)`: the same, reduced from the activations `kept` of
    the scanned images (rows `start` on)."""
    import tensorflow as tf

    kept_specs = [tf.TensorSpec((None, *a.shape[1:]), tf.as_dtype(a.dtype)) for a in kept]
    fn = intro.cached(
        ("stored scan", key, path, repr(kept_specs), repr(specs)),
        lambda: _compile_scan(intro, path, reduce, kept_specs, specs, stored=True),
    )

    def outputs_of(batch, start):
        return [np.asarray(o) for o in fn(*(a[start : start + len(batch)] for a in kept), *extra)]

    return outputs_of


class ActivationStore:
    """Some layers' activations of one array of images, read in one forward pass
    the first time they are asked for (see `activation_store`).

    A scan asks through `stored` while the store is served. It is served the
    activations of the images, of their first rows (a view), and of the rows
    `take` copied out. A store never serves stale values: not for images
    changed in place since it was made, nor while the model's weights differ
    from those that computed the activations (e.g. randomised in place for a
    sanity check). Checksums of both are compared on every read; the scan then
    reads the model as usual.
    """

    def __init__(self, intro, x: np.ndarray, paths: tuple, batch_size):
        self.intro, self.paths, self.batch_size = intro, paths, batch_size
        self.x = x
        self.sources = [(x, None, _checksum(x))]  # (images, their rows of x, checksum)
        self.values = None
        self.weights = None  # checksum of the weights that computed `values`
        self.unusable = False  # the forward pass failed, or the images changed since
        self.reads = 0  # how many scans were served (tests count them)

    def take(self, rows) -> np.ndarray:
        """`x[rows]`: a new array of images whose activations the store serves too."""
        rows = np.arange(len(self.x))[rows]
        images = self.x[rows]
        self.sources.append((images, rows, _checksum(images)))
        return images

    def lookup(self, x, paths) -> list | None:
        """The activations of `paths` for `x`, if `x` is the stored images, those of
        `take`, or their first rows, unchanged since; else `None` (the caller reads
        the model)."""
        if self.unusable or not set(paths) <= set(self.paths):
            return None
        source = next((s for s in self.sources if _leading(x, s[0])), None)
        if source is None:
            return None
        checked = {id(s): s for s in (self.sources[0], source)}.values()  # each once
        if any(_checksum(images) != sum_ for images, _, sum_ in checked):
            self.unusable, self.values = True, None  # changed in place: never serve stale values
            return None
        weights = _weights_checksum(self.intro.model)
        if self.values is None:
            try:
                self.values = self.intro.activations(self.x, list(self.paths), self.batch_size)
            except Exception:  # e.g. a shared layer: each scan reads its own layer instead
                self.unusable = True
                return None
            self.weights = weights
        elif weights != self.weights:  # other weights now (they may come back): not served
            return None
        self.reads += 1
        rows = slice(len(x)) if source[1] is None else source[1][: len(x)]
        return [self.values[p][rows] for p in paths]

    def read(self, images, paths) -> list:
        """The activations of `paths` for other `images` (numpy, of the stored images'
        shape), through the graph that read the store: it is traced once."""
        values = self.intro.activations(images, list(self.paths), self.batch_size)
        return [values[p] for p in paths]

    @contextlib.contextmanager
    def serve(self):
        """Within the block, the scans of the model read this store: in this thread
        (or asyncio task) only, so two reports built at once never serve each other."""
        token = _SERVED.set((*_SERVED.get(), self))
        try:
            yield self
        finally:
            _SERVED.reset(token)


def _leading(x, images) -> bool:
    """Whether `x` is `images` or a view of its first rows (same memory, same layout)."""
    if not isinstance(x, np.ndarray) or not 0 < len(x) <= len(images):
        return False
    return (
        x.__array_interface__["data"][0] == images.__array_interface__["data"][0]
        and x.dtype == images.dtype
        and x.shape[1:] == images.shape[1:]
        and x.strides == images.strides
    )


def _weights_checksum(model) -> int:
    total = 0
    for variable in model.weights:
        total = zlib.crc32(np.ascontiguousarray(variable.numpy()).view(np.uint8).reshape(-1), total)
    return total


def _checksum(x: np.ndarray) -> int:
    return zlib.crc32(np.ascontiguousarray(x).view(np.uint8).reshape(-1))


# the stores served in this thread, innermost last (`ActivationStore.serve`)
_SERVED = contextvars.ContextVar("served_activation_stores", default=())


def served_store(intro):
    """The innermost `ActivationStore` of `intro`'s model served here, or `None`."""
    session = intro.session
    return next((s for s in reversed(_SERVED.get()) if s.intro.session is session), None)


def stored(intro, x, paths) -> list | None:
    """The activations of `paths` (layer paths) for `x` kept by the `ActivationStore`
    of the model served here (`ActivationStore.serve`), or `None`."""
    store = served_store(intro)
    return None if store is None else store.lookup(x, tuple(paths))


def activation_store(intro, x, layers, max_bytes: int = 1 << 28, batch_size=32):
    """An `ActivationStore` of `layers` for the images `x`, or `None` where their
    activations would take more than `max_bytes`, a layer's size is unknown, or
    `x` is not an array.

    Each graph traced on a deep backbone keeps tens of MB for the rest of the
    process; the per-layer scans of a report (top activating images,
    histograms, pixel clustering, the dataset scan of activation
    maximization) otherwise trace one forward graph each. While the store is
    served (`with store.serve():`), they reduce activations read once, in one
    forward pass of all the layers.
    """
    if not isinstance(x, np.ndarray):
        return None
    paths = tuple(dict.fromkeys(intro.layer(p).path for p in layers))
    size = _stored_bytes(intro, paths, len(x))
    if size is None or size > max_bytes:
        return None
    return ActivationStore(intro, x, paths, batch_size)


def _stored_bytes(intro, paths, n) -> int | None:
    total = 0
    for p in paths:
        shape = intro.layer(p).output_shape
        if not isinstance(shape, tuple) or any(d is None for d in shape[1:]):
            return None
        total += int(np.prod(shape[1:], dtype=np.int64)) * 4 * n
    return total


def _compile_scan(intro, path, reduce, inputs, specs, stored=False):
    """The compiled `(*inputs, *extra) -> reduce(activations, *extra)`: `inputs` is
    the spec of the images, or with `stored` the specs of `path`'s activations read
    beforehand (no forward pass in the graph)."""
    import tensorflow as tf

    several = isinstance(path, tuple)
    paths = [] if path is None else list(path) if several else [path]
    tap = None if stored else intro.tap(paths, truncate=path is not None)
    axes = [intro.layer(p).channel_axis for p in paths]

    def run(*args):
        intro.note_trace()
        if stored:
            activations, extra = args[: len(paths)], args[len(paths) :]
        else:
            (activations, output), extra = tap(args[0]), args[1:]
            if path is None:
                return reduce(output, *extra)
        tensors = [channels_last(a, axis) for a, axis in zip(activations, axes, strict=True)]
        return reduce(tensors if several else tensors[0], *extra)

    signature = [*inputs, *specs]
    return tf.function(run, input_signature=signature, autograph=False).get_concrete_function()


def channel_layer(intro, layer, channels) -> tuple:
    """`(info, channels)`: a one-output layer and its checked channel indices.

    `channels` is ``"all"`` or a list; negative indices count from the end.
    """
    from keras_introspect.targets import one_output_layer

    info = one_output_layer(intro, layer)
    n_channels = info.output_shape[info.channel_axis]
    if channels == "all":
        return info, list(range(n_channels))
    return info, [check_index(c, n_channels, f"channel of {info.path!r}") for c in channels]


def check_aggregate(aggregate, allow_none: bool = False) -> None:
    options = ("max", "sum", "mean", None) if allow_none else ("max", "sum", "mean")
    check_one_of(aggregate, "aggregate", options)
