"""How many pixel clusters each block of a CNN makes of a histology photo (`000` §3, Figs 2-3).

Malmgren-Hansen et al. cluster the pixels of VGG16's feature maps of one
H&E slide with a Dirichlet-process mixture and find few clusters, fewer in
deeper layers, and at layer 10 non-background clusters on the cells. Here:

- a small VGG-like CNN (four blocks of two 3x3 convolutions) is trained on
  the spot to tell 32 x 32 patches of eight of scikit-image's photos apart
  (the histology photo is not among them: as in the paper, the network
  never saw such images);
- scikit-image's immunohistochemistry photo (brown DAB-stained cells on
  blue haematoxylin) goes through it, and `PixelClusterer` clusters the
  pixels of each block's last convolution, with its defaults and with
  scikit-learn's settings (k-means start, data-covariance prior, every
  component owning a point counted);
- the count per block is the clusters owning at least 1 % of the pixels
  (`n_clusters_`), the count the report and the plots show;
- at the deepest block, the centre of every connected region of a
  non-background cluster is placed in the photo (`000` Fig. 3), and the DAB
  stain there (`skimage.color.rgb2hed`) is compared with the whole photo.

Run: python examples/08_dpgmm_depth.py [figure.png] [--fast]
(`--fast`, or the environment variable KI_MAX_STEPS as in the test suite:
fewer patches and epochs and a 128-pixel photo, for CI.)
"""

import os
import sys
import time
import warnings

import matplotlib

matplotlib.use("Agg")
import keras
import matplotlib.pyplot as plt
import numpy as np
from skimage.color import rgb2hed
from skimage.filters import threshold_otsu

import keras_introspect as ki
from keras_introspect.cluster.pixel import upsample_labels
from keras_introspect.datasets.images import sample_images
from keras_introspect.exceptions import KerasIntrospectWarning

FAST = "--fast" in sys.argv or bool(os.environ.get("KI_MAX_STEPS"))
PATCHES, EPOCHS, SIZE = (300, 2, 128) if FAST else (1000, 5, 256)
PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "retina", "camera", "coins", "moon")
WIDTHS = (8, 16, 32, 32)
BLOCKS = [f"block{b}_conv2" for b in range(1, len(WIDTHS) + 1)]
# the fits report whether they converged; this example prints it
warnings.simplefilter("ignore", KerasIntrospectWarning)


def vgg_like(size, n_classes):
    """VGG16's layout, narrower: blocks of two 3x3 ReLU convolutions, max pooling between."""
    layers = keras.layers
    inputs = keras.Input((size, size, 3))
    h = inputs
    for block, width in enumerate(WIDTHS, start=1):
        for conv in (1, 2):
            h = layers.Conv2D(
                width, 3, padding="same", activation="relu", name=f"block{block}_conv{conv}"
            )(h)
        if block < len(WIDTHS):
            h = layers.MaxPooling2D(name=f"block{block}_pool")(h)
    h = layers.GlobalAveragePooling2D(name="gap")(h)
    outputs = layers.Dense(n_classes, activation="softmax", name="classes")(h)
    return keras.Model(inputs, outputs, name="vgg_like")


def patches(per_photo, size=32, seed=0):
    """Random `size` x `size` patches of each photo in [0, 1], labelled by photo."""
    rng = np.random.default_rng(seed)
    photos = sample_images(PHOTOS)
    x, y = [], []
    for label, name in enumerate(PHOTOS):
        photo = photos[name] / 255.0
        rows = rng.integers(0, photo.shape[0] - size, per_photo)
        cols = rng.integers(0, photo.shape[1] - size, per_photo)
        x += [photo[r : r + size, c : c + size] for r, c in zip(rows, cols, strict=True)]
        y += [label] * per_photo
    order = rng.permutation(len(x))
    return np.asarray(x, "float32")[order], np.asarray(y)[order]


start = time.time()
x, y = patches(PATCHES)
split = int(0.8 * len(x))
keras.utils.set_random_seed(0)
small = vgg_like(32, len(PHOTOS))
small.compile(keras.optimizers.Adam(3e-3), "sparse_categorical_crossentropy", metrics=["accuracy"])
small.fit(x[:split], y[:split], epochs=EPOCHS, batch_size=64, verbose=0)
_, accuracy = small.evaluate(x[split:], y[split:], verbose=0)
print(f"test accuracy {accuracy:.3f} (which of {len(PHOTOS)} photos a patch is from)")
# the same weights on the whole photo: every layer is convolutional up to the pooling
model = vgg_like(SIZE, len(PHOTOS))
model.set_weights(small.get_weights())

photo = sample_images(["immunohistochemistry"], size=SIZE)["immunohistochemistry"] / 255.0
image = photo[None].astype("float32")

# Fig. 2: clusters per block, one image, the defaults and scikit-learn's settings
SKLEARN = dict(init_params="kmeans", covariance_prior="data", min_weight=0.0)
intro = ki.Introspector(model)


def interior(layer, shape):
    """Units whose receptive field lies inside the photo (the others see zero padding)."""
    field = intro.receptive_field(layer, strict=True)
    inside = []
    for axis, n_units in enumerate(shape):
        start = field.offset[axis] + field.stride[axis] * np.arange(n_units)
        inside.append((start >= 0) & (start + field.size[axis] <= SIZE))
    return inside[0][:, None] & inside[1][None, :]


rows, fits = [], {}
for layer in BLOCKS:
    pc = ki.PixelClusterer(model, layer, random_state=0).fit(image)
    old = ki.PixelClusterer(model, layer, random_state=0, **SKLEARN).fit(image)
    fits[layer] = pc
    # the same fit's labels, counted on the units that never see the padding
    inner = pc.transform(image)[0][interior(layer, pc.map_shape_)]
    shares = np.bincount(inner, minlength=pc.n_clusters_) / max(inner.size, 1)
    row = (layer, pc.n_points_, pc.n_clusters_, pc.n_components_used_, old.n_clusters_)
    rows.append((*row, int((shares >= 0.01).sum()), inner.size))
header = ("layer", "pixels", "clusters >= 1 %", "owning a pixel", "sklearn", "interior", "of")
print("{:<14} {:>7} {:>15} {:>14} {:>8} {:>9} {:>6}".format(*header))
for layer, n, kept, used, old, inside, n_inside in rows:
    print(f"{layer:<14} {n:>7} {kept:>15} {used:>14} {old:>8} {inside:>9} {n_inside:>6}")
counts = [row[2] for row in rows]
inner_counts = [row[5] for row in rows]
per_block = " ".join(f"{layer}={n}" for layer, n in zip(BLOCKS, counts, strict=True))
print("clusters per block:", per_block)
print(f"first block {counts[0]} -> last block {counts[-1]}")
print(
    f"away from the padding (>= 1 % of the interior units): first block {inner_counts[0]} "
    f"-> last block {inner_counts[-1]}"
)

# Fig. 3: centres of the non-background regions at the deepest block, on the DAB stain
dab = rgb2hed(photo)[..., 2]
stained = dab > threshold_otsu(dab)
deep = fits[BLOCKS[-1]]
(centres,) = deep.centers_in_input_space(image, regions=True)
points = [(r, c) for regions in centres.values() for r, c, _ in regions]
on_stain = np.mean([stained[round(r), round(c)] for r, c in points]) if points else 0.0
print(
    f"{BLOCKS[-1]}: {len(points)} region centres of {len(centres)} non-background clusters; "
    f"{on_stain:.0%} on DAB-stained pixels, which cover {stained.mean():.0%} of the photo"
)
field = intro.receptive_field(BLOCKS[-1])
labels = upsample_labels(deep.transform(image), (SIZE, SIZE), field)[0]
for label in range(deep.n_clusters_):
    where = labels == label
    print(
        f"  cluster {label}: {where.mean():.0%} of the pixels, mean DAB "
        f"{dab[where].mean() / dab.mean():.2f} x the photo's, {stained[where].mean():.0%} stained"
    )

out = next((a for a in sys.argv[1:] if not a.startswith("--")), None)
if out:
    maps = [fits[layer].transform(image)[0] for layer in BLOCKS]
    fig = ki.plotting.plot_label_maps(
        maps, BLOCKS, photo, n_clusters=counts, ncols=len(BLOCKS) + 2, legend=4
    )
    ax = fig.axes[len(BLOCKS) + 1]
    ax.imshow(photo)
    ax.contour(stained, levels=[0.5], colors="yellow", linewidths=0.4)
    if points:
        ax.scatter([c for _, c in points], [r for r, _ in points], s=14, c="cyan", marker="x")
    ax.set_title(f"{BLOCKS[-1]} region centres\n(yellow: DAB stain)", fontsize=8)
    ax.axis("off")
    fig.savefig(out, dpi=110, bbox_inches="tight")
    plt.close(fig)
print(f"done in {time.time() - start:.0f} s")
