"""Fixture models beyond 2-D image classifiers, with planted structure (issue 22).

Four families, each a small model trained on the spot (a few seconds on a
CPU, seeded) on synthetic data whose answer is known:

- `signal_cnn`: a 1-D CNN that tells which of two frequencies a tone in a
  noisy signal has; the tone fills one segment (`truth`), the rest is noise.
- `volume_cnn`: a 3-D CNN that tells whether a volume holds a bright
  Gaussian blob (`truth` is the blob) or noise only.
- `segmentation_fcn`: a fully convolutional segmentation model of free input
  size, `(None, None, 1) -> (None, None, None, 3)`: background, bright
  squares, dark squares (`truth` is the label map).
- `detection_head`: a free-size detection-style head with two dense
  outputs, `scores` `(None, None, None, 2)` (softmax: background, object)
  and `boxes` `(None, None, None, 4)` (linear), one anchor per 4x4 cell; the
  object is a bright square (`truth` its pixels, `y` the anchor labels).

Every builder returns a `Fixture` and is cached per process, so tests in one
run share one trained model per family. The `*_data` functions make the
data alone (for other sizes or seeds).

Usage (from any test under `tests/`, since conftest's folder is on the path):
    from nd_models import signal_cnn
    fx = signal_cnn()
    fx.model, fx.x, fx.y, fx.truth, fx.accuracy
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import keras
import numpy as np

L = keras.layers


@dataclass(frozen=True)
class Fixture:
    """A trained fixture model and its held-out data.

    Attributes:
        model: the trained Keras model.
        x: held-out inputs, float32.
        y: their labels (classes, label maps, or anchor labels).
        truth: boolean planted structure in input coordinates without the
            channel axis: `(n, L)` signals, `(n, D, H, W)` volumes, `(n, H, W)`
            images (where the evidence is).
        accuracy: accuracy on `x` (per image, or per pixel / anchor).
    """

    model: keras.Model
    x: np.ndarray
    y: np.ndarray
    truth: np.ndarray
    accuracy: float


# --- 1-D: which of two frequencies -------------------------------------------------
SIGNAL_PERIODS = (8.0, 3.0)  # class 0, class 1 (samples per cycle)


def signal_data(n: int, length: int = 128, segment: int = 32, seed: int = 0):
    """`(x (n, length, 1), y (n,), truth (n, length))`: a tone in one segment of noise.

    Class `c` has a tone of period `SIGNAL_PERIODS[c]` and amplitude 1 in
    `[start, start + segment)` (random start, random phase); elsewhere only
    Gaussian noise of standard deviation 0.3.
    """
    rng = np.random.default_rng(seed)
    x = rng.normal(0.0, 0.3, (n, length)).astype("float32")
    y = rng.integers(0, 2, n)
    truth = np.zeros((n, length), bool)
    t = np.arange(segment)
    for i in range(n):
        start = rng.integers(0, length - segment + 1)
        phase = rng.uniform(0, 2 * np.pi)
        x[i, start : start + segment] += np.sin(2 * np.pi * t / SIGNAL_PERIODS[y[i]] + phase)
        truth[i, start : start + segment] = True
    return x[..., None], y, truth


@functools.cache
def signal_cnn(flat: bool = False) -> Fixture:
    """1-D CNN `(None, 128, 1) -> 2` logits; `flat=True`: input `(None, 128)`, reshaped inside.

    Layers: `conv1` (Conv1D 8x9), `pool1`, `conv2` (Conv1D 8x5), `gmp`,
    `logits` (Dense 2, no activation).
    """
    length = 128
    x, y, truth = signal_data(640, length, seed=1)
    keras.utils.set_random_seed(0)
    layers = [
        L.Conv1D(8, 9, padding="same", activation="relu", name="conv1"),
        L.MaxPooling1D(2, name="pool1"),
        L.Conv1D(8, 5, padding="same", activation="relu", name="conv2"),
        L.GlobalMaxPooling1D(name="gmp"),
        L.Dense(2, name="logits"),
    ]
    if flat:
        layers = [keras.Input((length,)), L.Reshape((length, 1), name="to_signal"), *layers]
        x = x[..., 0]
    else:
        layers = [keras.Input((length, 1)), *layers]
    model = keras.Sequential(layers, name="signal_cnn_flat" if flat else "signal_cnn")
    return _fit_classifier(model, x, y, truth, n_train=512, epochs=12)


def _fit_classifier(model, x, y, truth, n_train: int, epochs: int) -> Fixture:
    """Train a logits classifier on the first `n_train` samples; the fixture holds the
    others and the accuracy on them."""
    model.compile(
        keras.optimizers.Adam(0.01),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    model.fit(x[:n_train], y[:n_train], epochs=epochs, batch_size=32, verbose=0)
    accuracy = float(model.evaluate(x[n_train:], y[n_train:], verbose=0)[1])
    return Fixture(model, x[n_train:], y[n_train:], truth[n_train:], accuracy)


# --- 3-D: is there a blob ------------------------------------------------------------
def volume_data(n: int, size: int = 16, sigma: float = 1.5, seed: int = 0):
    """`(x (n, size, size, size, 1), y (n,), truth (n, size, size, size))`.

    Noise of standard deviation 0.3 everywhere; class 1 volumes also hold a
    Gaussian blob of peak 1.5 and width `sigma` at a random centre at least
    3 voxels from the faces; `truth` is the ball of radius `2 sigma`
    around it (all False for class 0).
    """
    rng = np.random.default_rng(seed)
    x = rng.normal(0.0, 0.3, (n, size, size, size)).astype("float32")
    y = rng.integers(0, 2, n)
    truth = np.zeros(x.shape, bool)
    grid = np.stack(np.meshgrid(*[np.arange(size)] * 3, indexing="ij"), axis=-1)
    for i in np.flatnonzero(y):
        centre = rng.integers(3, size - 3, 3)
        d2 = np.sum((grid - centre) ** 2, axis=-1)
        x[i] += 1.5 * np.exp(-d2 / (2 * sigma**2))
        truth[i] = d2 <= (2 * sigma) ** 2
    return x[..., None], y, truth


@functools.cache
def volume_cnn() -> Fixture:
    """3-D CNN `(None, 16, 16, 16, 1) -> 2` logits.

    Layers: `conv1` (Conv3D 4x3^3), `pool1`, `conv2` (Conv3D 8x3^3), `gmp`,
    `logits` (Dense 2, no activation).
    """
    x, y, truth = volume_data(320, seed=2)
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((16, 16, 16, 1)),
            L.Conv3D(4, 3, padding="same", activation="relu", name="conv1"),
            L.MaxPooling3D(2, name="pool1"),
            L.Conv3D(8, 3, padding="same", activation="relu", name="conv2"),
            L.GlobalMaxPooling3D(name="gmp"),
            L.Dense(2, name="logits"),
        ],
        name="volume_cnn",
    )
    return _fit_classifier(model, x, y, truth, n_train=256, epochs=10)


# --- dense outputs: segmentation ----------------------------------------------------
def segmentation_data(n: int, size: int = 16, seed: int = 0):
    """`(x (n, size, size, 1), labels (n, size, size))`: squares on noise.

    Each image holds one bright square (+1, label 1) and one dark square
    (-1, label 2), each 4 to 6 pixels wide, not overlapping, on noise of
    standard deviation 0.3 (label 0).
    """
    rng = np.random.default_rng(seed)
    x = rng.normal(0.0, 0.3, (n, size, size)).astype("float32")
    labels = np.zeros((n, size, size), np.int64)
    for i in range(n):
        while True:
            sides = rng.integers(4, 7, 2)
            corners = [rng.integers(0, size - s + 1, 2) for s in sides]
            boxes = [(*c, *(c + s)) for c, s in zip(corners, sides, strict=True)]
            (a0, b0, a1, b1), (c0, d0, c1, d1) = boxes
            if a1 <= c0 or c1 <= a0 or b1 <= d0 or d1 <= b0:
                break
        for label, (r0, c0_, r1, c1_) in zip((1, 2), boxes, strict=True):
            x[i, r0:r1, c0_:c1_] += 1.0 if label == 1 else -1.0
            labels[i, r0:r1, c0_:c1_] = label
    return x[..., None], labels


@functools.cache
def segmentation_fcn() -> Fixture:
    """FCN `(None, None, None, 1) -> (None, None, None, 3)` softmax, free input size.

    Layers: `conv1`, `conv2` (Conv2D 8x3x3, same padding, relu), `seg`
    (Conv2D 3x1x1, softmax). Receptive field of an output pixel: 5x5.
    `truth` is the label map (`y`), as booleans of `y > 0`.
    """
    x, labels = segmentation_data(256, seed=3)
    keras.utils.set_random_seed(0)
    inputs = keras.Input((None, None, 1))
    h = L.Conv2D(8, 3, padding="same", activation="relu", name="conv1")(inputs)
    h = L.Conv2D(8, 3, padding="same", activation="relu", name="conv2")(h)
    outputs = L.Conv2D(3, 1, activation="softmax", name="seg")(h)
    model = keras.Model(inputs, outputs, name="segmentation_fcn")
    model.compile(keras.optimizers.Adam(0.02), "sparse_categorical_crossentropy")
    model.fit(x[:224], labels[:224], epochs=8, batch_size=16, verbose=0)
    x, labels = x[224:], labels[224:]
    accuracy = float(np.mean(model.predict(x, verbose=0).argmax(-1) == labels))
    return Fixture(model, x, labels, labels > 0, accuracy)


# --- dense outputs: detection -------------------------------------------------------
DETECTION_STRIDE = 4


def detection_data(n: int, size: int = 32, seed: int = 0):
    """`(x (n, size, size, 3), anchors (n, size/4, size/4), boxes (n, size/4, size/4, 4), truth)`.

    One bright grey square, 6 to 10 pixels wide, on RGB noise. An anchor
    (one per 4x4 cell) is positive (1) where its cell centre lies inside
    the square; `boxes` are the square's `(centre row, centre col, height,
    width)` relative to the anchor centre, over `size`, at every anchor.
    `truth` `(n, size, size)` marks the square's pixels.
    """
    rng = np.random.default_rng(seed)
    x = rng.normal(0.0, 0.3, (n, size, size, 3)).astype("float32")
    cells = size // DETECTION_STRIDE
    centres = DETECTION_STRIDE * np.arange(cells) + DETECTION_STRIDE / 2 - 0.5
    anchors = np.zeros((n, cells, cells), np.int64)
    boxes = np.zeros((n, cells, cells, 4), np.float32)
    truth = np.zeros((n, size, size), bool)
    for i in range(n):
        side = rng.integers(6, 11)
        r0, c0 = rng.integers(0, size - side + 1, 2)
        x[i, r0 : r0 + side, c0 : c0 + side] += 1.0
        truth[i, r0 : r0 + side, c0 : c0 + side] = True
        rows = (centres >= r0) & (centres < r0 + side)
        cols = (centres >= c0) & (centres < c0 + side)
        anchors[i] = rows[:, None] & cols[None, :]
        cy, cx = r0 + (side - 1) / 2, c0 + (side - 1) / 2
        boxes[i, ..., 0] = (cy - centres[:, None]) / size
        boxes[i, ..., 1] = (cx - centres[None, :]) / size
        boxes[i, ..., 2:] = side / size
    return x, anchors, boxes, truth


@functools.cache
def detection_head() -> Fixture:
    """Free-size detector `(None, None, None, 3)` -> `[scores, boxes]`, stride 4.

    Outputs (in this order, named by their layers): `scores` `(None, None,
    None, 2)` softmax (background, object) and `boxes` `(None, None, None,
    4)` linear. Layers: `conv1`, `pool1`, `conv2`, `pool2`, `conv3`, then the
    1x1 heads `scores` and `boxes`. `y` holds the anchor labels, `truth` the
    object's pixels.
    """
    x, anchors, boxes, truth = detection_data(288, seed=4)
    keras.utils.set_random_seed(0)
    inputs = keras.Input((None, None, 3))
    h = L.Conv2D(8, 3, padding="same", activation="relu", name="conv1")(inputs)
    h = L.MaxPooling2D(name="pool1")(h)
    h = L.Conv2D(16, 3, padding="same", activation="relu", name="conv2")(h)
    h = L.MaxPooling2D(name="pool2")(h)
    h = L.Conv2D(16, 3, padding="same", activation="relu", name="conv3")(h)
    scores = L.Conv2D(2, 1, activation="softmax", name="scores")(h)
    regression = L.Conv2D(4, 1, name="boxes")(h)
    model = keras.Model(inputs, [scores, regression], name="detection_head")
    model.compile(
        keras.optimizers.Adam(0.01),
        loss=["sparse_categorical_crossentropy", "mse"],
        loss_weights=[1.0, 10.0],
    )
    model.fit(x[:256], (anchors[:256], boxes[:256]), epochs=25, batch_size=32, verbose=0)
    x, anchors, truth = x[256:], anchors[256:], truth[256:]
    accuracy = float(np.mean(model.predict(x, verbose=0)[0].argmax(-1) == anchors))
    return Fixture(model, x, anchors, truth, accuracy)
