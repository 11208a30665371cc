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
    `batch_size` rows; only their scores come back, and the map is built
    from the drops once (a separable box sum).

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
        self._starts = starts
        grid = np.meshgrid(*starts, indexing="ij")
        self._boxes = np.stack([g.ravel() for g in grid], axis=1).astype(np.int32)
        self.n_windows_ = len(self._boxes)
        self._own_row = 0

    @property
    def _n_draws(self):
        # the windows, and the image itself where it fits in their steps (`_plan`)
        return max(1, len(self._boxes) + self._own_row)

    def _plan(self, n_samples, batch_size: int) -> tuple:
        """As `Attribution._plan`; the image's own score is one more row (an empty
        window) of its steps when that costs no more steps per image, else a pass
        of its own (`own` in the step, once per chunk of images), then with as
        many images per step as fit where they split evenly (fewer windows per
        step, the same steps), so that pass is not one image at a time."""
        n = len(self._boxes)

        def steps(plan, draws):  # per image
            return -(-draws // plan[1]) / plan[0]

        self._own_row = 1
        with_own = super()._plan(n_samples, batch_size)
        self._own_row = 0
        alone = super()._plan(n_samples, batch_size)
        if steps(with_own, n + 1) <= steps(alone, n):
            self._own_row = 1
            return with_own
        K = self._bound.n_outputs
        b = min(batch_size // K, n_samples or 0)
        if alone[0] == 1 and b > 1 and n_samples % b == 0:
            images = (b, max(1, min(n, batch_size // (b * K))))
            if steps(images, n) <= steps(alone, n):
                return images
        return alone

    def _graph_key(self):
        return (*super()._graph_key(), self.window_, self._truncate())

    def _truncate(self) -> bool:
        """Whether the score needs inner activations only (a Neuron or Channel
        target), so the forward pass can stop at the target's layer."""
        return self._bound.inner_only

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
            tf.TensorSpec((), tf.bool),
            tf.TensorSpec(extra[0].shape, tf.float32),
        ]
        n_leaves = len(leaves)
        window = self.window_

        def score(inputs, params):
            activations, output = tap(pack(inputs))
            return tf.cast(bound.score(activations, output, params), tf.float32)

        def step(*args):
            intro.note_trace()
            inputs = list(args[:n_leaves])
            params, boxes, own, baseline = args[n_leaves : n_leaves + 4]
            x = inputs[image]
            b, m = tf.shape(x)[0], tf.shape(boxes)[0]
            # Positions inside each window of this step: an outer "and" of per-axis
            # indicators, built on the device (a box starting at the border is empty)
            inside = None
            for axis, (length, w) in enumerate(zip(size, window, strict=True)):
                first = boxes[:, axis : axis + 1]
                along = (tf.range(length)[None] >= first) & (tf.range(length)[None] < first + w)
                axes = [-1] + [1] * n
                axes[axis + 1] = length
                along = tf.reshape(along, axes)
                inside = along if inside is None else inside & along

            # The images' own scores, when no empty box of this call gives them
            # (`own`: once per chunk of images, on its first step)
            def own_scores():
                base_inputs, _, base_params = expand_rows(inputs, image, x[:, None], params, K)
                return score(base_inputs, base_params)

            base_score = tf.cond(own, own_scores, lambda: tf.zeros([b * K]))
            # one select over the copies: x (1 - mask) + baseline mask for 0/1 masks
            occluded = tf.where(channel_mask(inside, shape), tf.cast(baseline, x.dtype), x[:, None])
            row_inputs, _, row_params = expand_rows(inputs, image, occluded, params, K)
            return tf.reshape(score(row_inputs, row_params), [b, m, K]), base_score

        return compile_step(step, signature)

    def _explain_chunk(self, call, leaves, pack, image, params, start, m):
        """Scores of every window on the device, `(b, m, K)` per step; the map is
        built once from the drops (a separable box sum, `_box_sum`)."""
        import tensorflow as tf

        b, K = len(leaves[0]), self._bound.n_outputs
        boxes = self._boxes
        size = np.asarray(self.counts_.shape, np.int32)
        if not len(boxes):  # no window can change the target
            return np.zeros((b, K, *self.counts_.shape), np.float32)
        extra = call.extra
        fn = self._compiled(
            call, leaves, pack, image, lambda: self._step_fn(leaves, pack, image, extra)
        )
        # Boxes starting at the border occlude nothing: the image's own row (when
        # planned) and the padding of the last step, which scores the image itself
        # in the batch of its occluded copies too.
        pad = self._own_row + -(len(boxes) + self._own_row) % m
        boxes = np.concatenate([boxes, np.broadcast_to(size, (pad, len(size)))])
        inputs = [tf.convert_to_tensor(a) for a in leaves]  # converted once, not per step
        expanded = tf.convert_to_tensor(self._bound.expand(params))
        extra = [tf.convert_to_tensor(e) for e in extra]
        scores, own = [], None
        for first in range(0, len(boxes), m):
            needs_own = not pad and not first  # no empty box: score the images alone
            part, base = fn(*inputs, expanded, boxes[first : first + m], needs_own, *extra)
            scores.append(part)
            if needs_own:
                own = base
            call.progbar.add(1)
        scores = np.concatenate([np.asarray(s) for s in scores], axis=1)
        own = scores[:, len(self._boxes)] if pad else np.asarray(own).reshape(b, K)
        drops = own[:, None] - scores[:, : len(self._boxes)]  # (b, windows, K)
        grid = [len(s) for s in self._starts]
        drops = np.moveaxis(drops, 2, 1).reshape(b, K, *grid)
        total = _box_sum(drops, self._starts, self.window_, self.counts_.shape)
        maps = np.divide(total, self.counts_, out=np.zeros_like(total), where=self.counts_ > 0)
        return maps.astype(np.float32)


def _box_sum(values, starts, window, size) -> np.ndarray:
    """`values` `(b, K, *grid)` (one per window of a product grid) spread over the
    windows: each position gets the sum of the values of the windows covering it.

    Separable: one axis at a time, each adds `min(windows, window size)` shifted
    slices, so positions covered only by zeros stay exactly 0. float64.
    """
    out = values.astype(np.float64)
    for axis, (s, w, length) in enumerate(zip(starts, window, size, strict=True)):
        axis += 2
        moved = np.moveaxis(out, axis, -1)
        if len(s) * w == length and np.array_equal(s, np.arange(0, length, w)):
            out = np.moveaxis(np.repeat(moved, w, axis=-1), -1, axis)  # windows tile the axis
            continue
        spread = np.zeros((*moved.shape[:-1], length))
        if w <= len(s):  # one offset within the window at a time
            for offset in range(w):
                spread[..., s + offset] += moved
        else:  # one window at a time
            for j, first in enumerate(s):
                spread[..., first : first + w] += moved[..., j : j + 1]
        out = np.moveaxis(spread, -1, axis)
    return out
