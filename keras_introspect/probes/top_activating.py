"""Dataset exemplars: the images that activate a filter most (top-k per channel).

Zeiler & Fergus (2014), Dai (2019, Fig. 4/5) and Kalmeijer (2016, §4.3)
characterise a filter by the dataset images (and, for convolutional layers,
the receptive-field patches) on which it responds most.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from keras_introspect._repr import Tabular, summary_repr
from keras_introspect._tensor import reduce_spatial
from keras_introspect._validation import check_positive_int
from keras_introspect.probes import _scan


@dataclass
class Exemplars(Tabular):
    """Top-k dataset images of one or several channels of a layer.

    For `top_activating` (one channel) the arrays have no channel axis; for
    `top_activating_all` they start with one entry per channel.

    Attributes:
        layer: the layer path.
        channels: the channel index (int) or indices `(C,)`.
        aggregate: how a feature map was reduced to one value per image.
        indices: dataset positions of the top images, `(k,)` / `(C, k)`,
            best first (ties: lower index first).
        values: their aggregated activations, same shape, float32.
        positions: for layers with spatial axes, the position of the
            strongest unit of the map, `(..., k, n_spatial)`; else `None`.
        boxes: input pixels of that unit's receptive field, clipped to the
            image, `(..., k, n_spatial, 2)` as `[start, stop)`; `None` where
            the field is undefined.
        crops: the receptive-field patches, `(..., k, h, w, channels)` for
            images, `(..., k, l, channels)` (a segment) for signals,
            `(..., k, l)` for a flat vector input, `(..., k, d, h, w,
            channels)` (a sub-volume) for volumes (pixels outside the input
            are 0; the patch is the whole input along an axis where the field
            is larger, zero-padded to a common shape when inputs of a
            free-size model differ); `None` unless requested and defined.

    Inputs of any rank: the spatial axes are those of the layer (one for
    Conv1D, three for Conv3D) and `boxes`/`crops` are in the model input's
    coordinates, also for a flat `(n, L)` input reshaped inside the model.
    For a model of free input size, the boxes of each image use the field
    computed for its size.
    """

    __repr__ = summary_repr

    layer: str
    channels: object
    aggregate: str
    indices: np.ndarray
    values: np.ndarray
    positions: np.ndarray | None = None
    boxes: np.ndarray | None = None
    crops: np.ndarray | None = None

    def plot(self, x=None, **options):
        """The exemplar crops, one row per channel (`plotting.plot_exemplars`; with the
        images `x`, the whole images with the receptive field outlined); a Figure."""
        from keras_introspect.plotting.grids import plot_exemplars

        return plot_exemplars(self, x, **options)

    @property
    def table(self) -> list:
        """One dict per exemplar: channel, rank (1 = best), dataset index, value."""
        channels = np.atleast_1d(self.channels)
        indices = np.atleast_2d(self.indices)
        values = np.atleast_2d(self.values)
        return [
            {"channel": int(c), "rank": r + 1, "image": int(i), "value": float(v)}
            for c, row_i, row_v in zip(channels, indices, values, strict=True)
            for r, (i, v) in enumerate(zip(row_i, row_v, strict=True))
        ]


def field_window(field, position, input_size) -> tuple:
    """`(starts, sizes)` of the patch shown for a unit: its field, at most the image."""
    starts, sizes = [], []
    for (start, stop), n in zip(field.bounds(position), input_size, strict=True):
        size = stop - start
        if size >= n:
            start, size = 0, n
        starts.append(start)
        sizes.append(size)
    return tuple(starts), tuple(sizes)


def crop(image: np.ndarray, starts, sizes) -> np.ndarray:
    """`image[starts : starts + sizes]` on the spatial axes, 0 outside the image."""
    out = np.zeros((*sizes, *image.shape[len(sizes) :]), image.dtype)
    source, target = [], []
    for start, size, n in zip(starts, sizes, image.shape, strict=False):
        lo, hi = max(start, 0), min(start + size, n)
        source.append(slice(lo, max(lo, hi)))
        target.append(slice(lo - start, lo - start + max(0, hi - lo)))
    out[tuple(target)] = image[tuple(source)]
    return out


def merge_top(best, batch, k: int):
    """Keep the top `k` per row of `(values, indices, positions)` candidates."""
    if best is not None:
        batch = tuple(
            None if b is None else np.concatenate([a, b], axis=1)
            for a, b in zip(best, batch, strict=True)
        )
    values, indices, positions = batch
    order = np.lexsort((indices, -values.astype(np.float64)), axis=-1)[:, :k]
    take = np.take_along_axis
    return (
        take(values, order, 1),
        take(indices, order, 1),
        None if positions is None else take(positions, order[..., None], 1),
    )


def keep_images(images: dict, best_indices, batch, start: int) -> dict:
    """Images of a stream still among `best_indices`, with those of `batch` added."""
    needed = set(np.ravel(best_indices).tolist())
    images.update({i: batch[i - start] for i in needed if start <= i < start + len(batch)})
    return {i: image for i, image in images.items() if i in needed}


def _stack_padded(arrays: list) -> np.ndarray:
    """Stack arrays, zero-padded at the end of each axis to the largest shape (crops
    of images of several sizes differ where a field is larger than an image)."""
    shape = tuple(max(sizes) for sizes in zip(*(a.shape for a in arrays), strict=True))
    out = np.zeros((len(arrays), *shape), arrays[0].dtype)
    for target, a in zip(out, arrays, strict=True):
        target[tuple(slice(0, n) for n in a.shape)] = a
    return out


class _Fields:
    """The layer's field per input size: the table's, or for a model of free input
    size where the table has none, computed for that size (once)."""

    def __init__(self, intro, info):
        self.intro, self.info = intro, info
        spec = intro.input_specs[0].shape
        self.free = None in spec[1:]
        self.by_size = {}

    def __call__(self, size):
        if self.info.receptive_field is not None or not self.free:
            return self.info.receptive_field
        if size not in self.by_size:
            self.by_size[size] = self.intro.receptive_field(self.info.path, input_size=size)
        return self.by_size[size]


def _top(model, layer, channels, x, k, aggregate, crops, batch_size, verbose):
    import tensorflow as tf

    k = check_positive_int(k, "k")
    _scan.check_aggregate(aggregate)
    intro = _scan.introspector(model)
    info, channels = _scan.channel_layer(intro, layer, channels)
    n_axes = len(info.spatial_shape)
    rank = len(intro.input_specs[0].shape)
    n_input_axes = rank - 2 if rank >= 3 else 1  # a flat vector: one axis of positions

    def reduce(a, selected):
        a = tf.gather(a, selected, axis=-1)
        values = reduce_spatial(a, aggregate)
        if a.shape.rank == 2:
            return [values]
        flat = tf.reshape(a, [tf.shape(a)[0], -1, tf.shape(selected)[0]])
        # the map's size: the layer's, or the data's for a free-size model
        return [values, tf.argmax(flat, axis=1, output_type=tf.int32), tf.shape(a)[1:-1]]

    # the input's spatial size per kept image: a free-size model's batches may differ
    best, images, sizes, start = None, {}, {}, 0
    for outputs, batch in _scan.scan(
        intro,
        info.path,
        x,
        reduce,
        ("top activating", aggregate),
        batch_size,
        verbose,
        keep_batches=True,
        extra=[np.asarray(channels, np.int32)],
    ):
        values = outputs[0].T  # (C, b)
        b = values.shape[1]
        indices = np.broadcast_to(np.arange(start, start + b), values.shape)
        positions = None
        if len(outputs) > 1:
            # pieces of a batch split after an out-of-memory retry each gave the shape
            spatial = tuple(int(d) for d in outputs[2][:n_axes])
            positions = np.stack(np.unravel_index(outputs[1].T, spatial), axis=-1)
        best = merge_top(best, (values, indices, positions), k)
        needed = set(np.ravel(best[1]).tolist())
        size = tuple(int(d) for d in batch.shape[1 : 1 + n_input_axes])
        sizes = {i: sizes.get(i, size) for i in needed}
        if crops:
            images = keep_images(images, best[1], batch, start)
        start += b
    if start < k:
        raise ValueError(f"Expected at least k={k} images to rank. Received: {start} images in `x`")
    values, indices, positions = best
    boxes = crop_array = None
    field_of = _Fields(intro, info)
    if positions is not None and n_axes == n_input_axes:  # else no field (a reshape)
        units = positions.reshape(-1, n_axes)
        image_sizes = [sizes[int(i)] for i in indices.ravel()]
        fields = [field_of(size) for size in image_sizes]
        if all(field is not None for field in fields):
            boxes = np.array(
                [
                    [[sl.start, sl.stop] for sl in field.slices(p, size)]
                    for p, field, size in zip(units, fields, image_sizes, strict=True)
                ]
            ).reshape(*positions.shape, 2)
            if crops:
                windows = [
                    field_window(field, p, size)
                    for p, field, size in zip(units, fields, image_sizes, strict=True)
                ]
                crop_array = _stack_padded(
                    [crop(images[i], *w) for i, w in zip(indices.ravel(), windows, strict=True)]
                )
                crop_array = crop_array.reshape(*indices.shape, *crop_array.shape[1:])
    return Exemplars(
        layer=info.path,
        channels=np.asarray(channels),
        aggregate=aggregate,
        indices=indices.astype(np.int64),
        values=values.astype(np.float32),
        positions=positions,
        boxes=boxes,
        crops=crop_array,
    )


def top_activating(
    model,
    layer,
    channel,
    x,
    k: int = 9,
    aggregate: str = "max",
    crops=None,
    batch_size: int = 32,
    verbose: int = 0,
) -> Exemplars:
    """The `k` images of `x` on which one channel of `layer` responds most.

    The dataset is streamed once; a running top-k is kept, so memory does
    not grow with the dataset, and the result does not depend on
    `batch_size`.

    Args:
        model: a Keras 3 model with one image input.
        layer: layer selector (name, path, index), also inside nested models.
        channel: channel (filter) index.
        x: images: array, tf tensor, `tf.data.Dataset` (of `x` or `(x, y)`),
            `PyDataset` or generator of batches.
        k: how many images.
        aggregate: ``"max"`` (strongest unit), ``"sum"`` or ``"mean"`` over
            the feature map of each image.
        crops: also return the receptive-field patches of the strongest
            units (convolutional layers). `None` (the default) is `True` in
            this release, with a `FutureWarning`, and `False` from the next
            one, as in `top_activating_all`: pass it explicitly.
        batch_size, verbose: streaming options.

    Returns:
        `Exemplars` with `indices`, `values` of shape `(k,)`, and
        `positions`, `boxes`, `crops` for layers with spatial axes.

    Example:
        >>> import numpy as np, keras, keras_introspect as ki
        >>> model = keras.Sequential([keras.Input((6, 6, 1)),
        ...     keras.layers.Conv2D(2, 3, name="conv", kernel_initializer="ones")])
        >>> x = np.arange(5 * 36, dtype="float32").reshape(5, 6, 6, 1) % 7
        >>> top = ki.top_activating(model, "conv", 0, x, k=2, crops=True)
        >>> top.indices.shape, top.crops.shape
        ((2,), (2, 3, 3, 1))
    """
    crops = _crops_default(crops, True, "top_activating")
    result = _top(model, layer, [channel], x, k, aggregate, crops, batch_size, verbose)
    result.channels = int(result.channels[0])
    for name in ("indices", "values", "positions", "boxes", "crops"):
        value = getattr(result, name)
        if value is not None:
            setattr(result, name, value[0])
    return result


def top_activating_all(
    model,
    layer,
    x,
    k: int = 9,
    aggregate: str = "max",
    channels="all",
    crops=None,
    batch_size: int = 32,
    verbose: int = 0,
) -> Exemplars:
    """`top_activating` for every channel of `layer` in one pass over `x`.

    Args:
        model, layer, x, k, aggregate, batch_size, verbose: as `top_activating`.
        channels: ``"all"`` or a list of channel indices.
        crops: also return the patches, `(C, k, h, w, channels)` (for wide
            layers and large fields this is big). `None` (the default) is
            `False` in this release, with a `FutureWarning` until both
            functions share the default `False` in the next one.

    Returns:
        `Exemplars` whose arrays start with one entry per channel: `indices`
        and `values` `(C, k)`.

    Example:
        >>> import numpy as np, keras, keras_introspect as ki
        >>> model = keras.Sequential([keras.Input((6, 6, 1)),
        ...     keras.layers.Conv2D(4, 3, name="conv")])
        >>> x = np.random.default_rng(0).normal(size=(10, 6, 6, 1))
        >>> ki.top_activating_all(model, "conv", x, k=3).indices.shape
        (4, 3)
    """
    crops = _crops_default(crops, False, "top_activating_all")
    return _top(model, layer, channels, x, k, aggregate, crops, batch_size, verbose)


def _crops_default(crops, today: bool, name: str) -> bool:
    """`crops` as given; `None` is this release's default of `name`, said once."""
    if crops is not None:
        return bool(crops)
    if today:  # only the default that changes needs saying
        warnings.warn(
            f"{name}(crops=None) returns crops today; from the next release crops defaults "
            "to False in both top_activating functions. Pass crops=True to keep them",
            FutureWarning,
            stacklevel=3,
        )
    return today
