"""Stream a dataset through a truncated forward pass, reducing on the device.

Every probe reads one layer over a whole dataset. The forward pass stops at
that layer (`Tap(truncate=True)`), the layer's output is reduced on the
device by a probe-specific function, and only the reduced values come back
to the host, batch by batch.
"""

from __future__ import annotations

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
    fns = {}  # one compiled scan per sample shape: a free-size model's batches may differ
    halver = Halver(batch_size, "dataset scan")
    progbar = progress_bar(batches.n_batches, verbose=verbose, unit_name="batch")
    for step, batch in enumerate(batches):
        spec = tf.TensorSpec((None, *batch.shape[1:]), tf.as_dtype(batch.dtype))
        fn = fns.get(repr(spec))
        if fn is None:
            fn = fns[repr(spec)] = intro.cached(
                ("scan", key, path, repr(spec), repr(specs)),
                lambda spec=spec: _compile_scan(intro, path, reduce, spec, specs),
            )
        outputs = concat_pieces(
            halver.map(lambda piece, fn=fn: [np.asarray(o) for o in fn(piece, *extra)], batch)
        )
        yield outputs, (batch if keep_batches else None)
        progbar.update(step + 1)


def _compile_scan(intro, path, reduce, spec, specs):
    import tensorflow as tf

    several = isinstance(path, tuple)
    if path is None:
        tap, axes = intro.tap([]), [-1]
    else:
        paths = list(path) if several else [path]
        tap = intro.tap(paths, truncate=True)
        axes = [intro.layer(p).channel_axis for p in paths]

    def run(images, *extra):
        intro.note_trace()
        activations, output = tap(images)
        if path is None:
            return reduce(output, *extra)
        tensors = [channels_last(a, axis) for a, axis in zip(activations, axes, strict=True)]
        return reduce(tensors if several else tensors[0], *extra)

    signature = [spec, *specs]
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
