"""Occlusion sensitivity (Zeiler & Fergus 2014)."""

from __future__ import annotations

import numbers
import threading

import numpy as np

from keras_introspect._validation import check_baseline, check_one_of
from keras_introspect.attribution._base import (
    Attribution,
    baseline_input,
    check_images_and_baseline,
    compile_step,
    expand_rows,
    row_specs,
)
from keras_introspect.targets import as_index

_LOCK = threading.RLock()


def _pair(value, name: str) -> tuple:
    error = ValueError(
        f"Expected `{name}` to be an integer >= 1 or a pair of them. Received: {name}={value!r}"
    )
    values = (value, value) if isinstance(value, numbers.Real) else value
    try:
        values = tuple(as_index(v, f"`{name}`") for v in values)
    except TypeError as err:
        raise error from err
    if len(values) != 2 or any(v < 1 for v in values):
        raise error
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
    the whole image.

    Args:
        model: a Keras 3 model.
        target: a `keras_introspect.targets` object, class index or callable.
        window: window size, an int or `(height, width)`.
        stride: step between windows (default: `window`, no overlap).
        baseline: the value occluded pixels take: a number, or an array of
            the image shape (e.g. the dataset mean image).
        receptive_field: ``"auto"`` (restrict windows for a Neuron target
            with a known receptive field), `True` (require it) or `False`.
        batch_size: occluded copies per forward pass.
        verbose, input_index: as `Saliency`.

    Returns (from `explain(x)`):
        float32 `(n, H, W)`.

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
        self.window = _pair(window, "window")
        self.stride = self.window if stride is None else _pair(stride, "stride")
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
        size = shape[:2]  # the data's size: also for free-size models
        if any(w > n for w, n in zip(self.window, size, strict=True)):
            raise ValueError(
                f"Expected `window` no larger than the image ({size[0]} x {size[1]}). "
                f"Received: window={self.window}"
            )
        starts = [
            np.asarray(window_starts(n, w, s))
            for n, w, s in zip(size, self.window, self.stride, strict=True)
        ]
        # The window grid is a product of row and column starts, so the number
        # of windows covering a pixel is a product of per-axis counts.
        covering = [
            ((s[:, None] <= i) & (i < s[:, None] + w)).sum(axis=0)
            for s, w, i in zip(starts, self.window, [np.arange(n) for n in size], strict=True)
        ]
        self.counts_ = np.outer(*covering).astype(np.float32)
        self.field_ = self._field(size)
        if self.field_ is not None:  # keep the windows that overlap the field
            starts = [
                s[(s < stop) & (s + w > first)]
                for s, w, (first, stop) in zip(starts, self.window, self.field_, strict=True)
            ]
        rows, cols = np.meshgrid(*starts, indexing="ij")
        self._boxes = np.stack([rows.ravel(), cols.ravel()], axis=1).astype(np.int32)
        self.n_windows_ = len(self._boxes)

    @property
    def _n_draws(self):
        return max(1, len(self._boxes))

    def _graph_key(self):
        return (*super()._graph_key(), self.window)

    def _extra_inputs(self, image, shape):
        return [baseline_input(self.baseline, shape)]

    def _field(self, size):
        """Clipped `((r0, r1), (c0, c1))` of a Neuron target's field, or None."""
        if self.receptive_field is False:
            return None
        leaf = self._bound.neuron
        field = None
        if leaf is not None:
            field = self._intro.receptive_field(leaf.path)
        if field is None or len(field.size) != 2:
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
        tap = intro.tap(bound.paths or [], compute_dtype=self.compute_dtype)
        signature = row_specs(leaves, bound)
        signature += [
            tf.TensorSpec((None, 2), tf.int32),
            tf.TensorSpec((None,), tf.float32),
            tf.TensorSpec(extra[0].shape, tf.float32),
        ]
        n_leaves = len(leaves)
        H, W = leaves[image].shape[1:3]
        wh, ww = self.window

        def score(inputs, params):
            activations, output = tap(pack(inputs))
            return bound.score(activations, output, params)

        def step(*args):
            intro.note_trace()
            inputs = list(args[:n_leaves])
            params, boxes, valid, baseline = args[n_leaves : n_leaves + 4]
            x = inputs[image]
            b, m = tf.shape(x)[0], tf.shape(boxes)[0]
            # Window masks of this chunk, built on the device; padded boxes
            # (valid 0) give all-zero masks, which change nothing and add nothing.
            in_rows = (tf.range(H)[None] >= boxes[:, :1]) & (tf.range(H)[None] < boxes[:, :1] + wh)
            in_cols = (tf.range(W)[None] >= boxes[:, 1:]) & (tf.range(W)[None] < boxes[:, 1:] + ww)
            masks = tf.cast(in_rows[:, :, None] & in_cols[:, None, :], tf.float32)
            masks = masks * valid[:, None, None]  # (m, H, W)
            base_inputs, _, base_params = expand_rows(inputs, image, x[:, None], params, K)
            base_score = score(base_inputs, base_params)
            mask = masks[None, :, :, :, None]  # (1, m, H, W, 1)
            xf = tf.cast(x, tf.float32)[:, None]
            occluded = xf * (1.0 - mask) + baseline * mask
            row_inputs, _, row_params = expand_rows(
                inputs, image, tf.cast(occluded, x.dtype), params, K
            )
            occluded_score = tf.reshape(score(row_inputs, row_params), [b, m, K])
            drop = tf.reshape(base_score, [b, 1, K]) - occluded_score
            return tf.einsum("bmk,mhw->bkhw", drop, masks)

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
        for first in range(0, len(boxes), m):
            chunk = boxes[first : first + m]
            valid = np.ones(m, np.float32)
            if len(chunk) < m:
                valid[len(chunk) :] = 0
                chunk = np.concatenate([chunk, np.zeros((m - len(chunk), 2), np.int32)])
            total += np.asarray(fn(*leaves, expanded, chunk, valid, *extra))
            call.progbar.add(1)
        return np.divide(total, self.counts_, out=np.zeros_like(total), where=self.counts_ > 0)
