"""Signals, volumes and dense outputs: the same explainers on 1-D, 3-D and segmentation models.

Three small models are trained on the spot on synthetic data whose answer is
known (nothing is downloaded; about half a minute on a CPU):

- a 1-D CNN tells which of two frequencies a tone has; the tone fills one
  segment of 32 samples of a noisy signal, so the maps should sit on it;
- a 3-D CNN tells whether a 16^3 volume holds a bright blob;
- a fully convolutional segmentation model (any input size) labels bright
  and dark squares; we explain "class 1 (bright) over the bright square" with
  one mask per image (`targets.Class(1, region=masks)`).

The script writes three pictures into OUT_DIR (default: the current folder):
``signals.png`` (each signal with its maps as coloured bands beneath it),
``volumes.png`` (three orthogonal slices through the Grad-CAM maximum, and a
grid of slices) and ``dense.png`` (the explained region outlined on the
input), and prints how much of each map falls on the planted structure.

Run: python examples/07_signals_volumes.py [OUT_DIR] [--fast]
"""

import sys
from pathlib import Path

import keras
import matplotlib

matplotlib.use("Agg")
import numpy as np

import keras_introspect as ki
from keras_introspect import plotting

T, L = ki.targets, keras.layers
FAST = "--fast" in sys.argv
OUT = Path(next((a for a in sys.argv[1:] if not a.startswith("--")), "."))
OUT.mkdir(parents=True, exist_ok=True)
rng = np.random.default_rng(0)


def fit(model, x, y, epochs):
    keras.utils.set_random_seed(0)
    model.compile(
        keras.optimizers.Adam(0.01),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    model.fit(x[:-64], y[:-64], epochs=epochs, batch_size=32, verbose=0)
    return model.evaluate(x[-64:], y[-64:], verbose=0)[1]


def share_inside(maps, truth):
    """Mean share of |map| that falls on the planted structure."""
    maps = np.abs(maps).reshape(len(maps), -1)
    return float(np.mean((maps * truth.reshape(len(maps), -1)).sum(1) / maps.sum(1)))


# --- 1-D: which of two frequencies -------------------------------------------------
n, length = (320 if FAST else 640), 128
y1 = rng.integers(0, 2, n)
x1 = rng.normal(0, 0.3, (n, length)).astype("float32")
segments = np.zeros((n, length), bool)
for i, start in enumerate(rng.integers(0, length - 32, n)):
    x1[i, start : start + 32] += np.sin(2 * np.pi * np.arange(32) / (8.0, 3.0)[y1[i]])
    segments[i, start : start + 32] = True
x1 = x1[..., None]
keras.utils.set_random_seed(0)
signal_cnn = keras.Sequential(
    [
        keras.Input((length, 1)),
        L.Conv1D(8, 9, padding="same", activation="relu", name="conv1"),
        L.MaxPooling1D(2, name="pool1"),
        L.Conv1D(8, 5, padding="same", activation="relu", name="conv2"),
        L.GlobalMaxPooling1D(name="gmp"),
        L.Dense(2, name="logits"),
    ]
)
print(f"signals: test accuracy {fit(signal_cnn, x1, y1, 8 if FAST else 12):.3f}")
signals, truth = x1[-4:], segments[-4:]
target = T.Class(y1[-4:])
maps = {
    "saliency": ki.Saliency(signal_cnn, target).explain(signals),  # (4, 128)
    "Grad-CAM conv2": ki.GradCAM(signal_cnn, target, layer="conv2").explain(signals),
    "occlusion 8": ki.Occlusion(signal_cnn, target, window=8, stride=4).explain(signals),
}
for name, value in maps.items():
    print(f"  {name}: {share_inside(value, truth):.0%} of the map on the tone (25 % of samples)")
fig = plotting.plot_signal_saliency(signals, maps, titles=[f"class {c}" for c in y1[-4:]])
fig.savefig(OUT / "signals.png", dpi=90, bbox_inches="tight")

# --- 3-D: is there a blob ------------------------------------------------------------
n, size = (192 if FAST else 320), 16
y3 = rng.integers(0, 2, n)
y3[-4:] = 1  # explain volumes that hold a blob
x3 = rng.normal(0, 0.3, (n, size, size, size)).astype("float32")
grid = np.stack(np.meshgrid(*[np.arange(size)] * 3, indexing="ij"), axis=-1)
blobs = np.zeros(x3.shape, bool)
for i in np.flatnonzero(y3):
    d2 = np.sum((grid - rng.integers(3, size - 3, 3)) ** 2, axis=-1)
    x3[i] += 1.5 * np.exp(-d2 / (2 * 1.5**2))
    blobs[i] = d2 <= 9
x3 = x3[..., None]
keras.utils.set_random_seed(0)
volume_cnn = keras.Sequential(
    [
        keras.Input((size, size, size, 1)),
        L.Conv3D(4, 3, padding="same", activation="relu", name="conv1"),
        L.MaxPooling3D(2, name="pool1"),
        L.Conv3D(8, 3, padding="same", activation="relu", name="conv2"),
        L.GlobalMaxPooling3D(name="gmp"),
        L.Dense(2, name="logits"),
    ]
)
print(f"volumes: test accuracy {fit(volume_cnn, x3, y3, 6 if FAST else 10):.3f}")
volumes, truth = x3[-4:], blobs[-4:]
cam = ki.GradCAM(volume_cnn, T.Class(1), layer="conv2").explain(volumes)  # (4, 16, 16, 16)
saliency = ki.Saliency(volume_cnn, T.Class(1)).explain(volumes)
peaks = [np.unravel_index(np.argmax(c), c.shape) for c in cam]
on_blob = np.mean([t[p] for t, p in zip(truth, peaks, strict=True)])
print(f"  Grad-CAM maximum on the blob: {on_blob:.0%}")
print(f"  saliency: {share_inside(saliency, truth):.0%} of the map on the blob (1.7 % of voxels)")
fig = plotting.plot_orthogonal_slices(volumes[0], cam[0])
fig.savefig(OUT / "volumes.png", dpi=90, bbox_inches="tight")
fig = plotting.plot_volume_slices(volumes[0], saliency[0], n_slices=8)
fig.savefig(OUT / "volume_slices.png", dpi=90, bbox_inches="tight")

# --- dense outputs: explain class 1 over one square ------------------------------------
n, size = 160, 16
xs = rng.normal(0, 0.3, (n, size, size)).astype("float32")
labels = np.zeros((n, size, size), np.int64)
for i in range(n):
    for label, value in ((2, -1.0), (1, 1.0)):  # they may overlap: the bright one wins
        r, c, s = *rng.integers(0, size - 6, 2), rng.integers(4, 7)
        xs[i, r : r + s, c : c + s] = rng.normal(0, 0.3, (s, s)) + value
        labels[i, r : r + s, c : c + s] = label
xs = xs[..., None]
keras.utils.set_random_seed(0)
inputs = keras.Input((None, None, 1))  # any size
h = L.Conv2D(8, 3, padding="same", activation="relu", name="conv1")(inputs)
h = L.Conv2D(8, 3, padding="same", activation="relu", name="conv2")(h)
fcn = keras.Model(inputs, L.Conv2D(3, 1, activation="softmax", name="seg")(h))
fcn.compile(keras.optimizers.Adam(0.02), "sparse_categorical_crossentropy")
fcn.fit(xs[:-4], labels[:-4], epochs=4 if FAST else 8, batch_size=16, verbose=0)
images, bright = xs[-4:], labels[-4:] == 1
pixel_accuracy = np.mean(fcn.predict(images, verbose=0).argmax(-1) == labels[-4:])
print(f"segmentation: pixel accuracy {pixel_accuracy:.3f}")
target = T.Class(1, region=bright)  # one mask per image; mean of the class-1 logit over it
maps = {
    "saliency": ki.Saliency(fcn, target).explain(images),
    "occlusion 2": ki.Occlusion(fcn, target, window=2).explain(images),
}
for name, value in maps.items():
    share, area = share_inside(value, bright), bright.mean()
    print(f"  {name}: {share:.0%} of the map in the explained square ({area:.0%} of pixels)")
fig = plotting.plot_dense_explanation(images, maps, bright)
fig.savefig(OUT / "dense.png", dpi=90, bbox_inches="tight")
print(f"wrote {OUT / 'signals.png'}, {OUT / 'volumes.png'}, {OUT / 'volume_slices.png'}, ", end="")
print(f"{OUT / 'dense.png'}")
