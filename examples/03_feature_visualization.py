"""Exemplars per pooling layer, top images and activation histograms per filter.

A small CNN with three conv/pool stages is trained on the spot on
scikit-learn's digits, upsampled to 24 x 24 (a few seconds, nothing is
downloaded). The figure has two parts:

- top: in the spirit of Kalmeijer (2016), Table 5.2, the exemplar of the
  first three filters of every pooling layer: activation maximization of the
  filter's receptive field, started from the most activating dataset patch,
  for the trained network and for its randomly initialised twin;
- bottom: in the spirit of Dai (2019), Fig. 4/5, for two filters of the first
  and of the last pooling layer: the four most activating receptive-field
  patches of the dataset, the generated optimum, and the histogram of the
  filter's activation over the dataset.

Set KI_MAX_STEPS to shorten the optimisation (the test suite uses 16).

Run: python examples/03_feature_visualization.py [output.png]
"""

import sys

import keras
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

import keras_introspect as ki
from keras_introspect.datasets import digits

L = keras.layers
POOLS = ["pool1", "pool2", "pool3"]

x8, y = digits()
x = np.kron(x8, np.ones((1, 3, 3, 1), "float32"))  # 24 x 24, values in [0, 16]
keras.utils.set_random_seed(0)
model = keras.Sequential(
    [
        keras.Input((24, 24, 1)),
        L.Rescaling(1 / 16.0, name="rescale"),
        L.Conv2D(8, 3, padding="same", activation="relu", name="conv1"),
        L.MaxPooling2D(name="pool1"),
        L.Conv2D(16, 3, padding="same", activation="relu", name="conv2"),
        L.MaxPooling2D(name="pool2"),
        L.Conv2D(16, 3, padding="same", activation="relu", name="conv3"),
        L.MaxPooling2D(name="pool3"),
        L.Flatten(name="flatten"),
        L.Dense(10, activation="softmax", name="classes"),
    ],
    name="digits_c3",
)
model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
model.fit(x[:1500], y[:1500], epochs=8, batch_size=64, verbose=0)
_, accuracy = model.evaluate(x[1500:], y[1500:], verbose=0)
print(f"test accuracy {accuracy:.3f}")
twin = ki.randomized_twin(model, seed=0)


def exemplars(net, layer, channels):
    """Receptive-field AM for several filters of `layer` in one batched run."""
    am = ki.ActivationMaximization(
        net,
        0,
        steps=128,
        learning_rate=0.5,
        init="max",
        receptive_field=True,
        value_range=(0.0, 16.0),
    )
    return am.generate_for_channels(layer, channels, n=1, x=x[:1500])


table = {}
for layer in POOLS:
    for name, net in (("trained", model), ("random twin", twin)):
        res = exemplars(net, layer, [0, 1, 2])
        table[layer, name] = res.images[:, 0, ..., 0]
        reached = ", ".join(f"{v:.2f}" for v in res.activation[:, 0])
        best = ", ".join(f"{v:.2f}" for v in res.best_dataset_activation)
        print(f"{layer} ({name}): exemplar activations {reached}; best dataset patches {best}")

probes = [("pool1", 3), ("pool1", 5), ("pool3", 4), ("pool3", 9)]
rows = []
for layer, channel in probes:
    top = ki.top_activating(model, layer, channel, x[:1500], k=4, crops=True)
    hist = ki.activation_histogram(model, layer, channel, x[:1500], bins=25)
    optimum = exemplars(model, layer, [channel]).images[0, 0, ..., 0]
    rows.append((layer, channel, top, optimum, hist))
    print(
        f"{layer} filter {channel}: top images {top.indices.tolist()}, responds to "
        f"{100 * hist.share_active:.0f}% of the images"
    )

figure = plt.figure(figsize=(12, 13))
grid = figure.add_gridspec(2, 1, height_ratios=[1, 1.3])
upper = grid[0].subgridspec(len(POOLS), 6)
for i, layer in enumerate(POOLS):
    for j, name in enumerate(("trained", "random twin")):
        for k in range(3):
            ax = figure.add_subplot(upper[i, 3 * j + k])
            ax.imshow(table[layer, name][k], cmap="gray", vmin=0, vmax=16)
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title(f"{name}\nfilter {k}", fontsize=9)
            if j == 0 and k == 0:
                ax.set_ylabel(layer)
lower = grid[1].subgridspec(len(rows), 6, width_ratios=[1, 1, 1, 1, 1, 2.5])
for i, (layer, channel, top, optimum, hist) in enumerate(rows):
    for k in range(4):
        ax = figure.add_subplot(lower[i, k])
        ax.imshow(top.crops[k, ..., 0], cmap="gray", vmin=0, vmax=16)
        ax.set_xticks([])
        ax.set_yticks([])
        if k == 0:
            ax.set_ylabel(f"{layer}/{channel}")
        if i == 0:
            ax.set_title(f"top {k + 1}", fontsize=9)
    ax = figure.add_subplot(lower[i, 4])
    ax.imshow(optimum, cmap="gray", vmin=0, vmax=16)
    ax.set_xticks([])
    ax.set_yticks([])
    if i == 0:
        ax.set_title("generated", fontsize=9)
    ax = figure.add_subplot(lower[i, 5])
    ax.bar(hist.edges[:-1], hist.counts, width=np.diff(hist.edges), align="edge")
    if i == 0:
        ax.set_title("activation over the dataset", fontsize=9)
figure.suptitle(
    "Exemplars per pooling layer (trained vs random twin); top images, optimum, histogram"
)
out = sys.argv[1] if len(sys.argv) > 1 else "feature_visualization.png"
figure.savefig(out, dpi=80)
print(f"wrote {out}")
