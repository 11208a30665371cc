"""Occlusion sensitivity (Zeiler & Fergus 2014)."""

from __future__ import annotations

import numbers
import threading

import numpy as np

from keras_introspect._validation import check_baseline, check_one_of
from keras_introspect.attribution._base import (
    Attribution,
    baseline_input,
    channel_mask,
    check_images_and_baseline,
    compile_step,
    expand_rows,
    row_specs,
    spatial_shape,
)
from keras_introspect.targets import as_index

_LOCK = threading.RLock()


def _sizes(value, name: str):
    """`value` checked: an integer >= 1 (returned as a pair, the image case; other
    ranks repeat it per axis) or a sequence of them (one per spatial axis)."""
    error = ValueError(
        f"Expected `{name}` to be an integer >= 1 or a pair of them. Received: {name}={value!r} "
        "(one value per spatial axis: 1 for signals, 3 for volumes)"
    )
    values = (value, value) if isinstance(value, numbers.Real) else value
    try:
        values = tuple(as_index(v, f"`{name}`") for v in values)
    except TypeError as err:
        raise error from err
    if not 1 <= len(values) <= 3 or any(v < 1 for v in values):
        raise error
    return values


def _per_axis(values: tuple, scalar: bool, n: int, name: str) -> tuple:
    """`values` for `n` spatial axes: a scalar given by the user repeats per axis."""
    if scalar:
        return (values[0],) * n
    if len(values) != n:
        raise ValueError(
            f"Expected `{name}` with one value per spatial axis of the input ({n}). "
            f"Received: {name}={values}"
        )
    return values


def window_starts(size: int, window: int, stride: int) -> list:
    """Start of every window along one axis; the last window touches the border."""
    if window > size:
        raise ValueError(f"Expected a window no larger than the image ({size}). Received: {window}")
    starts = list(range(0, size - window + 1, stride))
    if starts[-1] + window < size:
        starts.append(size - window)
    return starts


class Occlusion(Attribution):
    """Change of the target when a window of the image is replaced by a baseline.

    For each window position the occluded copy is
    `x * (1 - mask) + baseline * mask`; a pixel's value is the mean of
    `score(x) - score(occluded)` over the windows that cover it (positive:
    the region supports the target). Windows slide with `stride`; a last
    window is added along each axis so that every pixel is covered. All
    occluded copies are built on the device and scored in batches of
    `batch_size` rows.

    For a single `targets.Neuron` of an inner layer only the windows that
    overlap the neuron's receptive field are evaluated (the others cannot
    change it and contribute exactly 0), and only the sub-model up to that
    layer runs (Kalmeijer 2016, §3.2.2). The map is identical to occluding
    the whole image. In 3-D the saving grows with the cube of the volume's
    side over the field's.

    Signals, volumes and flat vectors work the same way, with windows of
    their rank: the map of a signal `(n, L, C)` or a vector `(n, L)` is
    `(n, L)`, of a volume `(n, D, H, W, C)` `(n, D, H, W)`.

    Args:
        model: a Keras 3 model.
        target: a `keras_introspect.targets` object, class index or callable.
        window: window size, an int (the same on every spatial axis) or one
            per axis: `(height, width)`, `(length,)`, `(depth, height, width)`.
        stride: step between windows (default: `window`, no overlap); an int
            or one per axis.
        baseline: the value occluded pixels take: a number, or an array of
            the sample's shape or its spatial shape (e.g. the dataset mean).
        receptive_field: ``"auto"`` (restrict windows for a Neuron target
            with a known receptive field), `True` (require it) or `False`.
        batch_size: occluded copies per forward pass.
        verbose, input_index: as `Saliency`.

    Attributes (after `explain`):
        window_, stride_: the window and stride per spatial axis.
        counts_: how many windows cover each position.
        n_windows_: windows evaluated per image (fewer with a receptive field).

    Returns (from `explain(x)`):
        float32 `(n, H, W)` (`(n, L)`, `(n, D, H, W)`).

    Example:
        >>> import numpy as np, keras, keras_introspect as ki
        >>> model = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Flatten(),
        ...                           keras.layers.Dense(2)])
        >>> occ = ki.Occlusion(model, 1, window=4)
        >>> occ.explain(np.ones((2, 8, 8, 1))).shape
        (2, 8, 8)
    """

    def __init__(
        self,
        model,
        target,
        *,
        window=8,
        stride=None,
        baseline=0.0,
        receptive_field="auto",
        batch_size=256,
        **kwargs,
    ):
        super().__init__(model, target, batch_size=batch_size, **kwargs)
        self.window = _sizes(window, "window")
        self.stride = self.window if stride is None else _sizes(stride, "stride")
        self._scalar = (
            isinstance(window, numbers.Real),
            isinstance(window if stride is None else stride, numbers.Real),
        )
        check_one_of(receptive_field, "receptive_field", ("auto", True, False))
        self.receptive_field = receptive_field
        self.baseline = check_baseline(baseline)

    def _explain(self, x, batch_size, verbose):
        # the window grid is computed per call for the images' size and kept on
        # the object (counts_, n_windows_): one call at a time per object
        with _LOCK:
            return super()._explain(x, batch_size, verbose)

    # -------------------------------------------------------------- windows
    def _check_options(self, image, shape):
        check_images_and_baseline("Occlusion", shape, self.baseline)
        size = spatial_shape(shape)  # the data's size: also for free-size models
        n = len(size)
        self.window_ = _per_axis(self.window, self._scalar[0], n, "window")
        self.stride_ = _per_axis(self.stride, self._scalar[1], n, "stride")
        if any(w > s for w, s in zip(self.window_, size, strict=True)):
            what = "image" if n == 2 else "input"
            raise ValueError(
                f"Expected `window` no larger than the {what} ({' x '.join(map(str, size))}). "
                f"Received: window={self.window_}"
            )
        starts = [
            np.asarray(window_starts(s, w, t))
            for s, w, t in zip(size, self.window_, self.stride_, strict=True)
        ]
        # The window grid is a product of per-axis starts, so the number of
        # windows covering a pixel is a product of per-axis counts.
        covering = [
            ((s[:, None] <= i) & (i < s[:, None] + w)).sum(axis=0)
            for s, w, i in zip(starts, self.window_, [np.arange(k) for k in size], strict=True)
        ]
        counts = covering[0]
        for axis in covering[1:]:
            counts = np.multiply.outer(counts, axis)
        self.counts_ = counts.astype(np.float32)
        self.field_ = self._field(size)
        if self.field_ is not None:  # keep the windows that overlap the field
            starts = [
                s[(s < stop) & (s + w > first)]
                for s, w, (first, stop) in zip(starts, self.window_, self.field_, strict=True)
            ]
        grid = np.meshgrid(*starts, indexing="ij")
        self._boxes = np.stack([g.ravel() for g in grid], axis=1).astype(np.int32)
        self.n_windows_ = len(self._boxes)

    @property
    def _n_draws(self):
        return max(1, len(self._boxes))

    def _graph_key(self):
        return (*super()._graph_key(), self.window_, self._truncate())

    def _truncate(self) -> bool:
        """Whether the score needs inner activations only (a Neuron or Channel
        target), so the forward pass can stop at the target's layer."""
        return all(leaf.path for _, leaf in self._bound.leaves)

    def _extra_inputs(self, image, shape):
        return [baseline_input(self.baseline, shape)]

    def _field(self, size):
        """Clipped `(start, stop)` per spatial axis of a Neuron target's field, or None."""
        if self.receptive_field is False:
            return None
        leaf = self._bound.neuron
        field = None
        if leaf is not None:
            field = self._intro.receptive_field(leaf.path)
        if field is None or len(field.size) != len(size):
            if self.receptive_field is True:
                raise ValueError(
                    "receptive_field=True needs a single targets.Neuron on a layer with a "
                    f"known receptive field. Received: target={self.target!r}"
                )
            return None
        slices = field.slices(leaf.position, size)
        return tuple((s.start, s.stop) for s in slices)

    # ---------------------------------------------------------------- steps
    def _step_fn(self, leaves, pack, image, extra):
        import tensorflow as tf

        bound, intro = self._bound, self._intro
        K = bound.n_outputs
        # a target on inner activations only: stop the forward pass at its layer
        tap = intro.tap(
            bound.paths or [], compute_dtype=self.compute_dtype, truncate=self._truncate()
        )
        shape = leaves[image].shape[1:]
        size = spatial_shape(shape)
        n = len(size)
        signature = row_specs(leaves, bound)
        signature += [
            tf.TensorSpec((None, n), tf.int32),
            tf.TensorSpec((None,), tf.float32),
            tf.TensorSpec((None,), tf.float32),
            tf.TensorSpec((), tf.bool),
            tf.TensorSpec(extra[0].shape, tf.float32),
        ]
        n_leaves = len(leaves)
        window = self.window_

        def score(inputs, params):
            activations, output = tap(pack(inputs))
            return bound.score(activations, output, params)

        def step(*args):
            intro.note_trace()
            inputs = list(args[:n_leaves])
            params, boxes, valid, known, first_chunk, baseline = args[n_leaves : n_leaves + 6]
            x = inputs[image]
            b, m = tf.shape(x)[0], tf.shape(boxes)[0]
            # Window masks of this chunk, built on the device as outer products of
            # per-axis indicators; padded boxes (valid 0) give all-zero masks,
            # which change nothing and add nothing.
            masks = tf.reshape(valid, [-1] + [1] * n)
            for axis, (length, w) in enumerate(zip(size, window, strict=True)):
                first = boxes[:, axis : axis + 1]
                inside = (tf.range(length)[None] >= first) & (tf.range(length)[None] < first + w)
                along = [1] * n
                along[axis] = length
                masks = masks * tf.reshape(tf.cast(inside, tf.float32), [-1, *along])

            # the images' own scores: once per chunk of images (the first chunk of
            # windows), then fed back in (`known`), not once per chunk of windows
            def own_scores():
                base_inputs, _, base_params = expand_rows(inputs, image, x[:, None], params, K)
                return tf.cast(score(base_inputs, base_params), tf.float32)

            base_score = tf.cond(first_chunk, own_scores, lambda: known)
            mask = channel_mask(masks, shape)  # (1, m, *size[, 1])
            xf = tf.cast(x, tf.float32)[:, None]
            # one select over the copies (the masks are 0 or 1): the same values as
            # x (1 - mask) + baseline mask, at a quarter of the memory traffic
            occluded = tf.where(mask > 0.5, baseline, xf)
            row_inputs, _, row_params = expand_rows(
                inputs, image, tf.cast(occluded, x.dtype), params, K
            )
            occluded_score = tf.cast(score(row_inputs, row_params), tf.float32)
            drop = tf.reshape(base_score, [b, 1, K]) - tf.reshape(occluded_score, [b, m, K])
            # (b K, m) @ (m, positions): the masks are read in place, never transposed
            flat = tf.reshape(masks, [m, -1])
            summed = tf.matmul(tf.reshape(tf.transpose(drop, [0, 2, 1]), [b * K, m]), flat)
            return tf.reshape(summed, [b, K, *size]), base_score

        return compile_step(step, signature)

    def _explain_chunk(self, call, leaves, pack, image, params, start, m):
        b = len(leaves[0])
        boxes = self._boxes
        extra = call.extra
        fn = self._compiled(
            call, leaves, pack, image, lambda: self._step_fn(leaves, pack, image, extra)
        )
        expanded = self._bound.expand(params)
        total = np.zeros((b, self._bound.n_outputs, *self.counts_.shape), np.float32)
        known = np.zeros(len(expanded), np.float32)
        for first in range(0, len(boxes), m):
            chunk = boxes[first : first + m]
            valid = np.ones(m, np.float32)
            if len(chunk) < m:
                valid[len(chunk) :] = 0
                chunk = np.concatenate(
                    [chunk, np.zeros((m - len(chunk), boxes.shape[1]), np.int32)]
                )
            part, known = fn(*leaves, expanded, chunk, valid, known, first == 0, *extra)
            total += np.asarray(part)
            call.progbar.add(1)
        return np.divide(total, self.counts_, out=np.zeros_like(total), where=self.counts_ > 0)
