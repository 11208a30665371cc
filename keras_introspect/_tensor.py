"""Tensor and shape helpers shared across the package, one home each."""

from __future__ import annotations

# One vocabulary for reductions: "max", "sum", "mean"; "avg" (Keras' pooling name,
# the `pooling=` options) is "mean".
_REDUCERS = {"max": "reduce_max", "sum": "reduce_sum", "mean": "reduce_mean", "avg": "reduce_mean"}


def reduce_axes(tensor, how: str, axes):
    """`tensor` reduced over `axes` by `how` ("max", "sum", "mean" or "avg")."""
    import tensorflow as tf

    return getattr(tf, _REDUCERS[how])(tensor, axis=axes)


def reduce_spatial(tensor, how: str):
    """Channels-last `(b, ..., C)` to `(b, C)` over the spatial axes (`(b, C)` as it is)."""
    if tensor.shape.rank == 2:
        return tensor
    return reduce_axes(tensor, how, list(range(1, tensor.shape.rank - 1)))


def channels_last(tensor, channel_axis: int):
    """float32 `tensor` with its channels on the last axis (`channel_axis` 1: moved there)."""
    import tensorflow as tf

    rank = tensor.shape.rank
    if channel_axis == 1 and rank > 2:
        tensor = tf.transpose(tensor, [0, *range(2, rank), 1])
    return tf.cast(tensor, tf.float32)


def item_shape(info):
    """Channels-last shape of one sample's output of a layer (`LayerInfo`), or `None`
    if it is not static."""
    shape = list(info.output_shape[1:])
    if any(d is None for d in shape):
        return None
    channel = info.channel_axis % len(info.output_shape) - 1
    shape.append(shape.pop(channel))
    return tuple(shape)


def is_probability(values) -> bool:
    """Whether every value lies in [0, 1] (probabilities, not logits); False if empty."""
    import numpy as np

    values = np.asarray(values)
    return bool(values.size) and bool(((values >= 0) & (values <= 1)).all())
