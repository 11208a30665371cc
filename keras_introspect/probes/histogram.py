"""The distribution of one filter's activation over a dataset (Dai 2019, Fig. 5)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from keras_introspect._repr import html_repr, summary_repr
from keras_introspect._tensor import reduce_spatial
from keras_introspect.probes import _scan


@dataclass
class ActivationHistogram:
    """Histogram of a channel's activation.

    Attributes:
        layer: the layer path.
        channel: the channel index.
        aggregate: per-image reduction (``"max"``, ``"sum"``, ``"mean"``) or
            `None` (every unit of every image is one value).
        values: the activations, `(n,)` (or `(n * units,)` for `None`).
        counts: images (units) per bin, `(bins,)`.
        edges: bin edges, `(bins + 1,)`.
    """

    __repr__ = summary_repr

    layer: str
    channel: int
    aggregate: str | None
    values: np.ndarray
    counts: np.ndarray
    edges: np.ndarray

    def plot(self, **options):
        """The histogram (`plotting.plot_histograms`); a Figure."""
        from keras_introspect.plotting.grids import plot_histograms

        return plot_histograms([self], **options)

    def _repr_html_(self) -> str:
        return html_repr(self)

    @property
    def share_active(self) -> float:
        """Fraction of values above 0 (how many images the filter responds to)."""
        return float(np.mean(self.values > 0))


def activation_histogram(
    model,
    layer,
    channel,
    x,
    bins=30,
    aggregate: str | None = "max",
    range=None,
    batch_size: int = 32,
    verbose: int = 0,
) -> ActivationHistogram:
    """Distribution of one channel's activation over the images of `x`.

    A filter of a low layer responds to most images (a bell-shaped
    histogram); one of a high layer to few (most images near 0, a long tail)
    (Dai 2019, §2.3).

    Args:
        model: a Keras 3 model with one image input.
        layer: layer selector.
        channel: channel index.
        x: images (array, tensor, `tf.data.Dataset`, `PyDataset`, generator).
        bins: number of bins or explicit edges (as `numpy.histogram`).
        aggregate: ``"max"``, ``"sum"`` or ``"mean"`` of the feature map per
            image, or `None` for the values of all units.
        range: `(low, high)` of the bins (default: the data range).
        batch_size, verbose: streaming options.

    Returns:
        `ActivationHistogram` with `values`, `counts` and `edges`.

    Example:
        >>> import numpy as np, keras, keras_introspect as ki
        >>> model = keras.Sequential([keras.Input((6, 6, 1)),
        ...     keras.layers.Conv2D(2, 3, name="conv")])
        >>> x = np.random.default_rng(0).normal(size=(20, 6, 6, 1))
        >>> h = ki.activation_histogram(model, "conv", 1, x, bins=5)
        >>> int(h.counts.sum())
        20
    """
    import tensorflow as tf

    _scan.check_aggregate(aggregate, allow_none=True)
    intro = _scan.introspector(model)
    info, (channel,) = _scan.channel_layer(intro, layer, [channel])

    def reduce(a, channel):
        a = tf.gather(a, channel, axis=-1)
        if aggregate is None or a.shape.rank == 1:
            return [tf.reshape(a, [-1])]
        return [reduce_spatial(a[..., None], aggregate)[:, 0]]

    scans = _scan.scan(
        intro,
        info.path,
        x,
        reduce,
        ("histogram", aggregate),
        batch_size,
        verbose,
        extra=[np.int32(channel)],
    )
    parts = [out[0] for out, _ in scans]
    values = np.concatenate(parts).astype(np.float32)
    counts, edges = np.histogram(values, bins=bins, range=range)
    return ActivationHistogram(info.path, channel, aggregate, values, counts, edges)
