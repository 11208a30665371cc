"""Base classes of the attribution methods: one loop, one compiled step each.

`Attribution` owns what every method shares: the model's `Introspector`, the
bound target, streaming the images in fixed-size chunks (the last one padded,
so nothing is traced twice), the progress bar and the channel reduction.
`GradientMethod` is the family whose maps come from gradients of the target
with respect to the image, possibly averaged over "draws" (noisy copies for
SmoothGrad, points on a path for Integrated Gradients); every (image, draw,
target) triple is one row of a single batched forward/backward pass.
"""

from __future__ import annotations

import itertools
import warnings

import numpy as np

from keras_introspect._data import Batches
from keras_introspect._memory import (
    Halver,
    check_batch_size,
    out_of_memory_errors,
    resolve_batch_size,
)
from keras_introspect._progress import progress_bar
from keras_introspect._validation import (
    check_backend,
    check_model,
    check_one_of,
    check_verbose,
)
from keras_introspect.exceptions import KerasIntrospectWarning
from keras_introspect.model.tap import COMPUTE_DTYPES
from keras_introspect.targets import BoundTarget, as_target

REDUCTIONS = ("max", "sum", "abs_sum", None)


def spatial_shape(shape) -> tuple:
    """The spatial axes of one sample `shape` (no batch axis): every axis but the
    last (the channels) of a signal `(L, C)`, image `(H, W, C)` or volume
    `(D, H, W, C)`; a flat vector `(L,)` is one spatial axis without channels.

    Example:
        >>> spatial_shape((16, 16, 3)), spatial_shape((100, 2)), spatial_shape((1024,))
        ((16, 16), (100,), (1024,))
    """
    shape = tuple(shape)
    return shape if len(shape) <= 1 else shape[:-1]


def has_channels(shape) -> bool:
    """Whether one sample of `shape` (no batch axis) has a channel axis (all but a
    flat vector `(L,)`)."""
    return len(tuple(shape)) >= 2


def reduce_channels(maps: np.ndarray, how, channels: bool = True) -> np.ndarray:
    """Reduce the last (channel) axis: max of |.|, sum, sum of |.|, or keep it.

    `channels=False` (maps of a flat vector input, which has no channel
    axis) returns `maps` as they are.
    """
    if how is None or not channels:
        return maps
    if how == "max":
        return np.abs(maps).max(axis=-1)
    if how == "sum":
        return maps.sum(axis=-1)
    return np.abs(maps).sum(axis=-1)


def channel_mask(masks, shape):
    """Masks `(m, *spatial)` as `(1, m, *spatial[, 1])`: broadcast against the draws
    `(b, m, *shape)` of samples of `shape` (a trailing 1 where they have channels)."""
    masks = masks[None]
    return masks[..., None] if has_channels(shape) else masks


def compile_step(step, signature):
    """Trace `step` once for `signature`; return the concrete function.

    Calling the concrete function skips the argument binding of
    `tf.function.__call__`, which matters for small models.
    """
    import tensorflow as tf

    return tf.function(step, input_signature=signature, autograph=False).get_concrete_function()


def check_images_and_baseline(name: str, shape, baseline) -> None:
    """Refuse a baseline array of neither the sample's shape nor its spatial shape
    (the perturbation methods' inputs). Samples of any rank are accepted: flat
    vectors `(L,)`, signals `(L, C)`, images `(H, W, C)` and volumes `(D, H, W, C)`."""
    shape = tuple(shape)
    if not shape:
        raise ValueError(
            f"{name} needs samples with at least one axis besides the batch axis. "
            f"Received: samples of shape {shape}"
        )
    if isinstance(baseline, np.ndarray) and baseline.shape not in (shape, spatial_shape(shape)):
        raise ValueError(
            f"Expected `baseline` of shape {shape}. Received: baseline with shape {baseline.shape}"
        )


def baseline_input(baseline, shape) -> np.ndarray:
    """A checked baseline (number, spatial-shape or sample-shape array) as a float32
    sample of `shape`: an input of a compiled step, so another baseline reuses the step."""
    shape = tuple(shape)
    if isinstance(baseline, np.ndarray) and has_channels(shape) and baseline.ndim == len(shape) - 1:
        baseline = baseline[..., None]
    return np.broadcast_to(np.asarray(baseline, np.float32), shape).copy()


def resize_linear(maps, size, method: str = "bilinear"):
    """Resize `(b, *spatial, c)` maps to `size` (1, 2 or 3 spatial axes), on the device.

    Linear (or nearest) interpolation with half-pixel centres, as
    `tf.image.resize`, which does it: one axis is resized as an image of width
    1 (bilinear on a width-1 axis is linear along the other), three axes as
    two separable passes (trilinear interpolation is separable).
    """
    import tensorflow as tf

    size = [int(n) for n in size]
    n_axes = maps.shape.rank - 2
    if n_axes == 2:
        return tf.image.resize(maps, size, method=method)
    if n_axes == 1:
        return tf.image.resize(maps[:, :, None], [size[0], 1], method=method)[:, :, 0]
    if n_axes != 3:
        raise ValueError(f"Expected maps with 1 to 3 spatial axes. Received: shape {maps.shape}")
    b, d, h, w, c = (tf.shape(maps)[i] for i in range(5))
    c_static = maps.shape[-1]
    # (d, h) first, with (w, c) as channels; then (h, w) with d folded into the batch
    first = tf.image.resize(tf.reshape(maps, [b, d, h, w * c]), size[:2], method=method)
    first = tf.reshape(first, [b * size[0], size[1], w, c])
    second = tf.image.resize(first, size[1:], method=method)
    return tf.reshape(second, [b, *size, c if c_static is None else c_static])


class _Pack:
    """Rebuilds a batch's structure from its leaves; `key` names the structure
    (part of a compiled step's cache key: dict keys, a list, a single array)."""

    def __init__(self, kind, keys=()):
        self.kind, self.keys = kind, tuple(keys)
        self.key = (kind, self.keys)

    def __call__(self, leaves):
        if self.kind == "dict":
            return dict(zip(self.keys, leaves, strict=True))
        return list(leaves) if self.kind == "list" else leaves[0]


def _leaves(batch):
    """`(list of arrays, pack)` for one batch of a single- or multi-input model.

    The pack's key holds a dict's keys in their order, so the same inputs
    given in another order never reuse a step compiled for the first order.
    """
    if isinstance(batch, dict):
        keys = list(batch)
        return [batch[k] for k in keys], _Pack("dict", keys)
    if isinstance(batch, (list, tuple)):
        return list(batch), _Pack("list")
    return [batch], _Pack("single")


def _pad(leaves: list, size: int) -> list:
    n = leaves[0].shape[0]
    if n == size:
        return leaves
    return [np.concatenate([a, np.repeat(a[-1:], size - n, axis=0)]) for a in leaves]


def _chunks(batches, size: int):
    """Fixed-size image chunks `(leaves, pack, n_valid)`; the last one is padded."""
    pending, pack = [], None
    for batch in batches:
        leaves, pack = _leaves(batch)
        pending.append(leaves)
        while sum(len(p[0]) for p in pending) >= size:
            merged = [np.concatenate(parts) for parts in zip(*pending, strict=True)]
            yield [a[:size] for a in merged], pack, size
            rest = [a[size:] for a in merged]
            pending = [rest] if len(rest[0]) else []
    if pending:
        merged = [np.concatenate(parts) for parts in zip(*pending, strict=True)]
        yield _pad(merged, size), pack, len(merged[0])


def row_specs(leaves: list, bound) -> list:
    """Input specs of a compiled step: the chunk's inputs and the target columns.

    The batch axes are dynamic (`None`).
    """
    import tensorflow as tf

    specs = [tf.TensorSpec((None, *a.shape[1:]), tf.as_dtype(a.dtype)) for a in leaves]
    return [*specs, tf.TensorSpec((None, bound.n_columns), tf.int32)]


def expand_rows(inputs: list, image: int, draws, params, n_outputs: int) -> tuple:
    """One row per (image, draw, target), in that order, on the device.

    Args:
        inputs: the chunk's model inputs, `(b, ...)` each.
        image: position of the explained input in `inputs`.
        draws: `(b, m, ...)` images of every draw (noisy copies, path
            points, occluded copies; `x[:, None]` for the image itself).
        params: `(b * n_outputs, n_leaves)` target columns (`BoundTarget.expand`).
        n_outputs: K, the scores per image.

    Returns:
        `(row_inputs, rows, row_params)`: every input with `b * m * K` rows
        (the other inputs held fixed), the explained input's rows, and the
        target columns of every row.
    """
    import tensorflow as tf

    # b and m are dynamic: one compiled step serves every plan and OOM retry
    b, m, K = tf.shape(draws)[0], tf.shape(draws)[1], n_outputs
    shape = draws.shape[2:]
    if K == 1:  # no copy: one score per image (the common case)
        rows = tf.reshape(draws, [b * m, *shape])
    else:
        rows = tf.reshape(tf.repeat(tf.expand_dims(draws, 2), K, axis=2), [b * m * K, *shape])
    row_inputs = [rows if i == image else tf.repeat(t, m * K, axis=0) for i, t in enumerate(inputs)]
    n_leaves = params.shape[-1]
    row_params = tf.reshape(
        tf.broadcast_to(tf.reshape(params, [b, 1, K, n_leaves]), [b, m, K, n_leaves]),
        [b * m * K, n_leaves],
    )
    return row_inputs, rows, row_params


class Attribution:
    """Base of all attribution methods: `Method(model, target, ...).explain(x)`.

    Args:
        model: a Keras 3 model (any kind `Introspector` handles).
        target: what to explain: a `keras_introspect.targets` object, a
            class index, or a callable on the model output.
        batch_size: rows per forward pass; one row is one (image, draw,
            target) triple, so it bounds memory. Results do not depend on it.
            ``"auto"``: as many as fit in a quarter of the memory available
            (`_memory.auto_batch_size`; on CPU, where running out of memory
            kills the process rather than raising, this is the safe choice).
        verbose: 0 silent, 1 progress bar, 2 one line at the end.
        input_index: which model input holds the explained samples (default:
            the first image input `(batch, H, W, C)`, else the first of rank 3
            or more, else the first flat vector input); other inputs are held
            fixed.
        compute_dtype: `None` (the model's own precision), or opt-in
            ``"bfloat16"`` / ``"float16"``: float32 layers run in that
            precision for the explanation (faster where the hardware supports
            it; scores and maps stay float32). The model keeps its policy.
    """

    _n_draws = 1  # evaluations per image and target (noise draws, path points, windows)

    def __init__(
        self, model, target, *, batch_size=32, verbose=0, input_index=None, compute_dtype=None
    ):
        check_model(model)
        check_one_of(compute_dtype, "compute_dtype", COMPUTE_DTYPES)
        self.compute_dtype = compute_dtype
        self.model = model
        self.target = as_target(target)
        self.batch_size = check_batch_size(batch_size)
        self.verbose = check_verbose(verbose)
        self.input_index = input_index
        self._intro = None
        self._bound = None
        self.trace_count = 0
        """Compiled steps this object had to trace (a diagnostic; a second
        object of the same method and target kind reuses the first one's)."""

    # ------------------------------------------------------------ set-up
    def _introspector(self):
        if self._intro is None:
            check_backend()
            from keras_introspect.model.introspector import Introspector

            intro = Introspector(self.model)
            self._bound = BoundTarget(self.target, intro)
            self._intro = intro
        return self._intro

    def _graph_key(self) -> tuple:
        """The options of this method that change its compiled graph.

        Everything else that differs between objects (indices, seeds,
        baselines, step counts) is an input of the compiled step.
        """
        return (self.compute_dtype,)

    def _extra_inputs(self, image: int, shape: tuple) -> list:
        """Per-object values fed to the compiled step as inputs (numpy arrays);
        `shape` is the sample shape of the explained input, from the data."""
        return []

    def _image_input(self, specs) -> int:
        if self.input_index is not None:
            if not (isinstance(self.input_index, int) and 0 <= self.input_index < len(specs)):
                raise ValueError(
                    f"Expected `input_index` in [0, {len(specs) - 1}]. "
                    f"Received: input_index={self.input_index!r}"
                )
            index = self.input_index
        else:
            ranks = [len(s.shape) for s in specs]
            # images first (rank 4), then volumes and signals, then flat vectors
            index = next((i for i, r in enumerate(ranks) if r == 4), None)
            if index is None:
                index = next((i for i, r in enumerate(ranks) if r >= 3), None)
            if index is None:
                index = next((i for i, r in enumerate(ranks) if r == 2), None)
            if index is None:
                raise ValueError(
                    "Expected a model input with at least one axis besides the batch axis "
                    "(vectors (batch, L), signals (batch, L, C), images (batch, H, W, C) or "
                    f"volumes (batch, D, H, W, C)). Received: inputs of shapes "
                    f"{[s.shape for s in specs]}"
                )
        if len(specs[index].shape) < 2:
            raise ValueError(
                f"Expected input {index} to have at least one axis besides the batch axis. "
                f"Received: shape {specs[index].shape}"
            )
        return index

    def _plan(self, n_samples, batch_size: int) -> tuple:
        """Images per step `b` and draws per step `m` so b*m*K rows fit batch_size."""
        n_draws, n_outputs = self._n_draws, self._bound.n_outputs
        per_image = n_draws * n_outputs
        if per_image <= batch_size:
            b, m = max(1, batch_size // per_image), n_draws
        else:
            b, m = 1, min(n_draws, max(1, batch_size // n_outputs))
        if n_samples is not None:
            b = min(b, n_samples)
        return b, m

    # ------------------------------------------------------------ public
    def explain(self, x, batch_size: int | None = None, verbose: int | None = None):
        """Attribution maps for the samples in `x`.

        Maps have the sample's shape without its channel axis: `(n, L)` for
        flat vectors `(n, L)` and signals `(n, L, C)`, `(n, H, W)` for images,
        `(n, D, H, W)` for volumes.

        Args:
            x: images `(n, H, W, C)` (or signals, volumes, vectors) as a numpy
                array or tf tensor (one sample without batch axis is
                accepted), a list/dict of arrays for a
                multi-input model, a `tf.data.Dataset`, `PyDataset` or a
                generator of batches (`x` or `(x, y)`).
            batch_size: overrides the constructor's `batch_size`.
            verbose: overrides the constructor's `verbose`.

        Returns:
            float32 array `(n, H, W)` (`(n, H, W, C)` when channels are kept;
            `(n, K, ...)` for a target with K channels); `(n, L)` or
            `(n, D, H, W)` for signals and volumes.
        """
        batch_size = self.batch_size if batch_size is None else batch_size
        batch_size = resolve_batch_size(batch_size, self._introspector())
        verbose = self.verbose if verbose is None else verbose
        return self._explain(x, batch_size, check_verbose(verbose))

    __call__ = explain

    def _explain(self, x, batch_size: int, verbose: int):

        intro = self._introspector()
        specs = intro.input_specs
        image = self._image_input(specs)
        batches = Batches(x, batch_size, specs)
        stream = iter(batches)
        first = next(stream, None)
        if first is None:
            raise ValueError("Expected at least one image. Received: no images")
        # the sample shape from the data: models with a free input size (None, None, 3)
        shape = tuple(_leaves(first)[0][image].shape[1:])
        self._check_options(image, shape)
        n = batches.n_samples
        self._bound.check_n_samples(n)
        b, m = self._plan(n, batch_size)
        n_steps = None if n is None else -(-n // b) * -(-self._n_draws // m)
        call = _Call(
            progress_bar(n_steps, verbose=verbose),
            Halver(b, type(self).__name__),
            Halver(m, type(self).__name__),
            self._extra_inputs(image, shape),
        )
        parts, start = [], 0
        for leaves, pack, n_valid in _chunks(itertools.chain([first], stream), b):
            parts.append(self._explain_valid(call, leaves, pack, image, start, n_valid))
            start += n_valid
        self._bound.check_n_samples(start)
        out = np.concatenate(parts)
        if self._bound.n_outputs == 1:
            out = out[:, 0]
        if not np.any(out):  # the maps are checked, not only the gradients
            if call.signal:
                why = (
                    "Its gradients are not zero: the method's own rule removed "
                    "everything (Grad-CAM: every weighted sum of feature maps is <= 0 "
                    "before the ReLU, the layer's features speak against the target; "
                    "VarGrad: no noise). Try another layer, target or method."
                )
            else:
                why = (
                    "The target may not depend on the input (a dead filter, a saturated "
                    "probability: try logits=True), or gradients underflowed (float16 "
                    "models: compare with a float32 copy)."
                )
            warnings.warn(
                f"Every attribution of {type(self).__name__} for {self.target!r} is zero "
                f"({len(out)} of {len(out)} images). {why}",
                KerasIntrospectWarning,
                stacklevel=3,
            )
        return out

    def _explain_valid(self, call, leaves, pack, image, start, n_valid):
        """Maps of the `n_valid` first images of a chunk, shrinking the step on OOM.

        A step that runs out of device memory is retried with half the
        images per step, then (at one image) half the draws per step, down
        to one row; pieces are padded to the step size so each size is
        traced once.
        """
        errors = out_of_memory_errors()
        out, first = [], 0
        while first < n_valid:
            b, m = call.images.size, call.draws.size
            last = min(n_valid, first + b)
            piece = _pad([a[first:last] for a in leaves], b)
            params = self._bound.params(start + first, last - first)
            params = np.concatenate([params, np.repeat(params[-1:], b - (last - first), 0)])
            try:
                maps = self._explain_chunk(call, piece, pack, image, params, start + first, m)
            except errors as error:
                if b > 1:
                    call.images.shrink(error, "images")
                else:
                    call.draws.shrink(error, "draws (one image)")
                call.progbar.target = None  # more, smaller steps than planned
                continue
            out.append(maps[: last - first])
            first = last
        return out[0] if len(out) == 1 else np.concatenate(out)

    def _check_options(self, image: int, shape: tuple) -> None:
        """Validate method options once the model, its image input and the sample
        `shape` of the data (without batch axis) are known."""

    def _explain_chunk(self, call, leaves, pack, image, params, start, m):
        """Maps `(b, K, ...)` of one chunk of `b` images, `m` draws per step."""
        raise NotImplementedError

    def _compiled(self, call, leaves, pack, image, build):
        """The compiled step, shared by every object of the model.

        The key holds what the graph depends on: the method, its graph
        options, the target's structure, the image input and the shapes of
        one sample. Images per step and draws per step are dynamic, so step
        counts, sample counts and out-of-memory retries reuse the step.
        """
        key = (
            "attribution",
            type(self),
            self._graph_key(),
            self._bound.structure,
            image,
            pack.key,
            tuple((a.shape[1:], a.dtype.str) for a in leaves),
            tuple((np.shape(e), np.asarray(e).dtype.str) for e in call.extra),
        )

        def counted():
            self.trace_count += 1
            return build()

        return self._intro.cached(key, counted)

    def __repr__(self):
        return f"{type(self).__name__}(model={self.model.name!r}, target={self.target!r})"

    def __getstate__(self):
        state = dict(self.__dict__)
        state.update(_intro=None, _bound=None)
        return state


class _Call:
    """The state of one `explain` call (objects may be used from several threads)."""

    def __init__(self, progbar, images, draws, extra):
        self.progbar = progbar
        self.images = images  # Halver: images per step
        self.draws = draws  # Halver: draws per step
        self.extra = extra  # per-object inputs of the compiled step
        self.signal = False  # some gradient was non-zero


class GradientMethod(Attribution):
    """Family of methods built on gradients of the target w.r.t. the image.

    A subclass sets `_n_draws`, and may override `_perturb` (the image of
    each draw, on the device), `_draws` (per-draw ids, values and weights,
    on the host), `_statistics` (what is summed over draws) and `_finish`
    (the map from the summed statistics).

    Args:
        reduce_channels: ``"auto"`` (the default: ``"sum"`` for a signed
            method, ``"max"`` for the others), ``"max"`` (max of absolute
            values over the colour channels, Simonyan et al.), ``"sum"``,
            ``"abs_sum"``, or `None` to keep the channel axis.
    """

    _backward = None  # a rule of keras_introspect.model.backward
    # A signed method's attributions say for or against the target (Gradient x
    # Input, Integrated Gradients, guided backprop): its default reduction keeps
    # the sign; max |.| would drop it on every pixel where it is negative.
    _signed = False

    def __init__(self, model, target, *, reduce_channels="auto", **kwargs):
        super().__init__(model, target, **kwargs)
        check_one_of(reduce_channels, "reduce_channels", ("auto", *REDUCTIONS))
        if reduce_channels == "auto":
            reduce_channels = "sum" if self._signed else "max"
        self.reduce_channels = reduce_channels

    def _draws(self) -> tuple:
        """`(ids int32, values float32, weights float32)` of all draws."""
        n = self._n_draws
        return np.arange(n, dtype=np.int32), np.zeros(n, np.float32), np.ones(n, np.float32)

    def _perturb(self, images, image_ids, draw_ids, draw_values, extra):
        """Images of every draw: `(b, ...)` -> `(b, m, ...)` on the device.

        `extra` are the tensors of `_extra_inputs`; the graph may read
        nothing else of `self` but class-level behaviour and `_graph_key`.
        """
        import tensorflow as tf

        return tf.expand_dims(images, 1)

    def _statistics(self, grads, weights, images, draws=None):
        """Per-chunk sums over draws: grads `(b, m, K, ...)`, weights `(m,)` (traced);
        `draws` are the step's `(draw_ids, draw_values, extra)`."""
        import tensorflow as tf

        w = tf.reshape(weights, [1, -1] + [1] * (grads.shape.rank - 2))
        return [tf.reduce_sum(grads * w, axis=1)]

    def _finish(self, stats, images):
        """Map `(b, K, H, W, C)` from the summed statistics (numpy)."""
        return stats[0]

    def _score_statistics(self, scores, draw_values, weights):
        """Per-chunk sums over draws of the scores `(b, m, K)` (traced); none by default.

        A method that checks its maps against the scores (Integrated Gradients'
        completeness) returns them here and reads their totals in `_check_chunk`.
        """
        return []

    def _check_chunk(self, maps, score_totals, images):
        """Called with each chunk's unreduced maps `(b, K, ...)` and score totals."""

    def _step_fn(self, leaves: list, pack, image: int, extra: list):
        import tensorflow as tf

        bound, intro = self._bound, self._intro
        K = bound.n_outputs
        tap = intro.tap(
            bound.paths or [],
            backward=self._backward,
            compute_dtype=self.compute_dtype,
            truncate=bound.inner_only,
        )
        signature = row_specs(leaves, bound)
        signature += [
            tf.TensorSpec((None,), tf.int32),
            tf.TensorSpec((None,), tf.int32),
            tf.TensorSpec((None,), tf.float32),
            tf.TensorSpec((None,), tf.float32),
        ]
        signature += [tf.TensorSpec(e.shape, tf.as_dtype(e.dtype)) for e in extra]
        n_leaves = len(leaves)
        perturb, statistics, score_statistics = (
            self._perturb,
            self._statistics,
            self._score_statistics,
        )

        def step(*args):
            intro.note_trace()
            inputs = list(args[:n_leaves])
            params, image_ids, draw_ids, draw_values, weights = args[n_leaves : n_leaves + 5]
            extra = list(args[n_leaves + 5 :])
            x = inputs[image]
            b, m = tf.shape(image_ids)[0], tf.shape(draw_ids)[0]
            perturbed = perturb(x, image_ids, draw_ids, draw_values, extra)  # (b, m, ...)
            row_inputs, rows, row_params = expand_rows(inputs, image, perturbed, params, K)
            with tf.GradientTape() as tape:
                tape.watch(rows)
                activations, output = tap(pack(row_inputs))
                score = bound.score(activations, output, row_params)
            grads = tf.cast(tape.gradient(score, rows), tf.float32)
            grads = tf.reshape(grads, [b, m, K, *x.shape[1:]])
            scores = tf.reshape(tf.cast(score, tf.float32), [b, m, K])
            return (
                statistics(grads, weights, tf.cast(x, tf.float32), (draw_ids, draw_values, extra)),
                score_statistics(scores, draw_values, weights),
            )

        return compile_step(step, signature)

    def _explain_chunk(self, call, leaves, pack, image, params, start, m):
        b = len(leaves[0])
        ids, values, weights = self._draws()
        n_draws = len(ids)
        extra = call.extra
        fn = self._compiled(
            call, leaves, pack, image, lambda: self._step_fn(leaves, pack, image, extra)
        )
        image_ids = np.arange(start, start + b, dtype=np.int32)
        expanded = self._bound.expand(params)
        totals = score_totals = None
        for first in range(0, n_draws, m):
            sl = slice(first, first + m)
            d_ids, d_values, d_w = ids[sl], values[sl], weights[sl]
            if len(d_ids) < m:  # pad the draws with zero weight
                pad = m - len(d_ids)
                d_ids = np.concatenate([d_ids, np.repeat(d_ids[-1:], pad)])
                d_values = np.concatenate([d_values, np.repeat(d_values[-1:], pad)])
                d_w = np.concatenate([d_w, np.zeros(pad, np.float32)])
            stats, score_stats = fn(*leaves, expanded, image_ids, d_ids, d_values, d_w, *extra)
            totals = _add(totals, stats)
            score_totals = _add(score_totals, score_stats)
            call.progbar.add(1)
        call.signal = call.signal or bool(np.any(totals[-1]))
        x = leaves[image].astype(np.float32)
        maps = self._finish(totals, x[:, None])
        self._check_chunk(maps, score_totals, x[:, None])
        maps = reduce_channels(maps, self.reduce_channels, has_channels(x.shape[1:]))
        return maps.astype(np.float32, copy=False)


def _add(totals, stats) -> list:
    """Running sums of per-chunk statistics (numpy), `stats` added to `totals`."""
    stats = [np.asarray(s) for s in stats]
    return stats if totals is None else [t + s for t, s in zip(totals, stats, strict=True)]
