"""Out-of-sample prediction: what a classifier says about images of unseen kinds.

Dai (2019, §2.5, Table 1) found that images of categories a network was not
trained on, and random noise, are not spread evenly over its classes but
mostly go to one of them. `out_of_sample` tabulates the predicted classes
for such sets; `noise_like` makes the noise images, Gaussian with a
dataset's channel-wise mean and standard deviation.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from keras_introspect._data import Batches
from keras_introspect._repr import LegacyTable, html_repr, summary_repr, text_table
from keras_introspect._validation import check_positive_int, check_seed
from keras_introspect.probes import _scan


@dataclass
class OutOfSample:
    """Predicted-class shares per set of images.

    Attributes:
        sets: names of the image sets.
        counts: `(n_sets, n_classes)` images predicted as each class.
        shares: the same in percent of each set.
        predictions: `{set name: (n,) predicted class per image}`.
        class_names: names of the classes (or their indices as strings).
    """

    __repr__ = summary_repr

    sets: list
    counts: np.ndarray
    shares: np.ndarray
    predictions: dict
    class_names: list

    @property
    def table(self) -> list:
        """One dict per set of images: the share (percent) predicted as each class, as
        Dai's Table 1; `str(result)` is the text table."""
        return LegacyTable(
            {"set": name, **{str(c): float(v) for c, v in zip(self.class_names, row, strict=True)}}
            for name, row in zip(self.sets, self.shares, strict=True)
        )

    def __str__(self) -> str:
        return text_table(self.table, floats=1)

    def plot(self, ax=None):
        """Stacked bars of the predicted-class shares per set
        (`plotting.plot_out_of_sample`); the Axes."""
        from keras_introspect.plotting.results import plot_out_of_sample

        return plot_out_of_sample(self, ax=ax)

    def _repr_html_(self) -> str:
        return html_repr(self)


def out_of_sample(model, x, class_names=None, batch_size: int = 32, verbose: int = 0):
    """Share of each predicted class for images of unseen categories or noise.

    The predicted class is the arg-max of the output (of the logits, which
    is the same); a single-unit output is read as binary (logit > 0, i.e.
    probability > 0.5).

    Args:
        model: a classifier with one image input.
        x: images (array, tensor, dataset), or a dict `{name: images}` for
            several sets (e.g. one per unseen category, plus noise).
        class_names: names of the model's classes (default: indices).
        batch_size, verbose: streaming options.

    Returns:
        `OutOfSample` with `counts`, `shares` (percent) and `predictions`.

    Example:
        >>> import numpy as np, keras, keras_introspect as ki
        >>> model = keras.Sequential([keras.Input((4, 4, 1)), keras.layers.Flatten(),
        ...     keras.layers.Dense(3, kernel_initializer="zeros",
        ...                        bias_initializer=keras.initializers.Constant([0, 1, 0]))])
        >>> noise = ki.noise_like(np.ones((2, 4, 4, 1)), n=10)
        >>> ki.out_of_sample(model, {"noise": noise}).shares
        array([[  0., 100.,   0.]])
    """

    from keras_introspect.model.tap import class_prediction

    intro = _scan.introspector(model)
    sets = dict(x) if isinstance(x, Mapping) else {"x": x}
    if not sets:
        raise ValueError("Expected at least one set of images. Received: an empty dict")

    def reduce(output):
        return [class_prediction(output)[0]]

    n_units = intro.output_shapes[0][-1]
    n_classes = 2 if n_units == 1 else int(n_units)
    if class_names is None:
        class_names = [str(i) for i in range(n_classes)]
    class_names = list(class_names)
    if len(class_names) != n_classes:
        raise ValueError(
            f"Expected {n_classes} class names for this model. Received: {len(class_names)} names"
        )
    predictions, counts = {}, []
    for name, images in sets.items():
        scans = _scan.scan(intro, None, images, reduce, "predicted class", batch_size, verbose)
        parts = [o[0] for o, _ in scans]
        predictions[name] = np.concatenate(parts)
        counts.append(np.bincount(predictions[name], minlength=n_classes))
    counts = np.array(counts)
    shares = 100.0 * counts / counts.sum(axis=1, keepdims=True)
    return OutOfSample(list(sets), counts, shares, predictions, class_names)


class ChannelMoments:
    """Running channel-wise mean and standard deviation (last axis) of image batches."""

    def __init__(self):
        self.total = self.total_sq = 0.0
        self.count = 0

    def add(self, batch) -> None:
        pixels = np.asarray(batch, np.float64)
        pixels = pixels.reshape(-1, pixels.shape[-1])
        self.total = self.total + pixels.sum(0)
        self.total_sq = self.total_sq + (pixels * pixels).sum(0)
        self.count += len(pixels)

    @property
    def mean(self) -> np.ndarray:
        return self.total / self.count

    @property
    def std(self) -> np.ndarray:
        return np.sqrt(np.maximum(self.total_sq / self.count - self.mean**2, 0.0))


def channel_statistics(x, batch_size: int = 256):
    """Channel-wise mean and standard deviation of images (last axis), streamed."""
    moments = ChannelMoments()
    for batch in Batches(x, batch_size):
        moments.add(batch)
    return moments.mean, moments.std


def noise_like(x, n: int, seed: int = 0, value_range=None, batch_size: int = 256) -> np.ndarray:
    """Gaussian noise images with the channel-wise mean and std of `x`.

    Args:
        x: the reference images `(m, H, W, C)` (array, tensor or dataset).
        n: how many noise images.
        seed: integer seed (no global random state is used).
        value_range: clip to `(low, high)` when given.
        batch_size: batch size for reading `x`.

    Returns:
        float32 `(n, H, W, C)`.

    Example:
        >>> import numpy as np, keras_introspect as ki
        >>> x = np.random.default_rng(1).normal(3.0, 2.0, size=(50, 8, 8, 1))
        >>> noise = ki.noise_like(x, n=200, seed=0)
        >>> bool(abs(noise.mean() - 3.0) < 0.1 and abs(noise.std() - 2.0) < 0.1)
        True
    """
    n = check_positive_int(n, "n")
    seed = check_seed(seed)
    first = next(iter(Batches(x, batch_size)))
    mean, std = channel_statistics(x, batch_size)
    shape = (n, *np.shape(first)[1:])
    noise = np.random.default_rng(seed).normal(size=shape) * std + mean
    if value_range is not None:
        noise = np.clip(noise, *value_range)
    return noise.astype(np.float32)
