"""Occlusion sensitivity (Zeiler & Fergus 2014)."""

from __future__ import annotations

import numbers

import numpy as np

from keras_introspect._validation import check_one_of
from keras_introspect.attribution._base import Attribution, compile_step


def _pair(value, name: str) -> tuple:
    values = (value, value) if isinstance(value, numbers.Integral) else tuple(value)
    if len(values) != 2 or not all(
        isinstance(v, numbers.Integral) and not isinstance(v, bool) and v >= 1 for v in values
    ):
        raise ValueError(
            f"Expected `{name}` to be an integer >= 1 or a pair of them. Received: {name}={value!r}"
        )
    return tuple(int(v) for v in values)


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
        self.baseline = (
            float(baseline)
            if isinstance(baseline, numbers.Real)
            else np.asarray(baseline, np.float32)
        )

    # ---------------------------------------------------------------- masks
    def _check_options(self):
        intro = self._intro
        specs = intro.input_specs
        image = self._image_input(specs)
        shape = specs[image].shape
        if len(shape) != 4 or shape[1] is None or shape[2] is None:
            raise ValueError(
                f"Occlusion needs images of a fixed size (batch, H, W, C). Received: "
                f"input shape {shape}"
            )
        if isinstance(self.baseline, np.ndarray) and self.baseline.shape not in (
            tuple(shape[1:]),
            tuple(shape[1:3]),
        ):
            raise ValueError(
                f"Expected `baseline` of shape {tuple(shape[1:])}. Received: baseline with "
                f"shape {self.baseline.shape}"
            )
        H, W = shape[1], shape[2]
        rows = window_starts(H, self.window[0], self.stride[0])
        cols = window_starts(W, self.window[1], self.stride[1])
        boxes = [(r, c) for r in rows for c in cols]
        counts = np.zeros((H, W), np.float32)
        for r, c in boxes:
            counts[r : r + self.window[0], c : c + self.window[1]] += 1
        self.counts_ = counts
        self.field_ = self._field(H, W)
        if self.field_ is not None:
            (r0, r1), (c0, c1) = self.field_
            boxes = [
                (r, c)
                for r, c in boxes
                if r < r1 and r + self.window[0] > r0 and c < c1 and c + self.window[1] > c0
            ]
        self.n_windows_ = len(boxes)
        masks = np.zeros((len(boxes), H, W), np.float32)
        for i, (r, c) in enumerate(boxes):
            masks[i, r : r + self.window[0], c : c + self.window[1]] = 1
        self._masks = masks

    def _field(self, H, W):
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
        slices = field.slices(leaf.position, (H, W))
        return tuple((s.start, s.stop) for s in slices)

    # ---------------------------------------------------------------- steps
    def _chunk_plan(self, n_samples):
        return self._plan(n_samples, max(1, len(self._masks)), self._bound.n_outputs)

    def _n_steps(self, batches):
        if batches.n_samples is None:
            return None
        b, m = self._chunk_plan(batches.n_samples)
        return -(-batches.n_samples // b) * -(-len(self._masks) // m)

    def _step_fn(self, b, m, leaves, pack, image):
        import tensorflow as tf

        bound = self._bound
        K = bound.n_outputs
        tap = self._intro.tap(bound.paths or [], compute_dtype=self.compute_dtype)
        signature = [tf.TensorSpec(a.shape, tf.as_dtype(a.dtype)) for a in leaves]
        signature += [
            tf.TensorSpec((b * K, len(bound.leaves)), tf.int32),
            tf.TensorSpec((m, *self._masks.shape[1:]), tf.float32),
        ]
        n_leaves = len(leaves)
        baseline = self.baseline
        if isinstance(baseline, np.ndarray) and baseline.ndim == 2:
            baseline = baseline[..., None]

        def score(inputs, params):
            activations, output = tap(pack(inputs))
            return bound.score(
                dict(zip(bound.paths, activations, strict=True)), tf.nest.flatten(output), params
            )

        def step(*args):
            self.trace_count += 1
            inputs = list(args[:n_leaves])
            params, masks = args[n_leaves], args[n_leaves + 1]
            x = inputs[image]
            base_score = score([tf.repeat(t, K, axis=0) for t in inputs], params)
            mask = masks[None, :, :, :, None]  # (1, m, H, W, 1)
            xf = tf.cast(x, tf.float32)[:, None]
            occluded = xf * (1.0 - mask) + tf.constant(baseline, tf.float32) * mask
            occluded = tf.repeat(occluded[:, :, None], K, axis=2)  # (b, m, K, H, W, C)
            rows = tf.cast(tf.reshape(occluded, [b * m * K, *x.shape[1:]]), x.dtype)
            rows_inputs = [
                rows if i == image else tf.repeat(t, m * K, axis=0) for i, t in enumerate(inputs)
            ]
            rows_params = tf.reshape(
                tf.broadcast_to(tf.reshape(params, [b, 1, K, -1]), [b, m, K, len(bound.leaves)]),
                [b * m * K, len(bound.leaves)],
            )
            occluded_score = tf.reshape(score(rows_inputs, rows_params), [b, m, K])
            drop = tf.reshape(base_score, [b, 1, K]) - occluded_score
            return tf.einsum("bmk,mhw->bkhw", drop, masks)

        return compile_step(step, signature)

    def _explain_chunk(self, leaves, pack, image, params, start, progbar):
        b = len(leaves[0])
        _, m = self._chunk_plan(None)
        masks = self._masks
        m = min(m, max(1, len(masks)))
        key = (b, m, tuple((a.shape, a.dtype.str) for a in leaves))
        fn = self._compiled(key, lambda: self._step_fn(b, m, leaves, pack, image))
        expanded = self._bound.expand(params)
        total = np.zeros((b, self._bound.n_outputs, *masks.shape[1:]), np.float32)
        for first in range(0, len(masks), m):
            chunk = masks[first : first + m]
            if len(chunk) < m:  # all-zero masks change nothing and add nothing
                chunk = np.concatenate([chunk, np.zeros((m - len(chunk), *chunk.shape[1:]))])
            total += np.asarray(fn(*leaves, expanded, chunk.astype(np.float32)))
            progbar.add(1)
        return np.divide(total, self.counts_, out=np.zeros_like(total), where=self.counts_ > 0)
