"""How many pixel clusters each block of a CNN makes of a histology photo (`000` §3, Figs 2-3).

Malmgren-Hansen et al. cluster the pixels of VGG16's feature maps of one
H&E slide with a Dirichlet-process mixture and find few clusters, fewer in
deeper layers, and at layer 10 non-background clusters on the cells. Here:

- a small VGG-like CNN (four blocks of two 3x3 convolutions, 16 / 32 / 64 /
  64 channels) is trained on the spot to tell 32 x 32 patches of eight of
  scikit-image's photos apart (the histology photo is not among them: as
  in the paper, the network never saw such images);
- scikit-image's immunohistochemistry photo (brown DAB-stained glands on
  blue haematoxylin-stained stroma) goes through it *with a reflected
  margin* of `PAD` pixels, and each block's last convolution is cropped
  back to the photo (`Cropping2D`): no unit kept sees the zero padding of
  `padding="same"`, which otherwise adds bands of clusters along the edges
  (the "zero padding" column counts them: the same network on the bare
  photo);
- `PixelClusterer` clusters the pixels of each block with its defaults and
  with scikit-learn's settings (k-means start, data-covariance prior, every
  component owning a point counted); the count per block is the clusters
  owning at least 1 % of the pixels (`n_clusters_`), the count the report
  and the plots show;
- Fig. 3: at the deepest block, the centre of every connected region of a
  non-background cluster, and of each whole cluster, is placed in the photo
  and compared with the DAB stain (`skimage.color.rgb2hed`, Otsu
  threshold); chance is the stained share of the photo. The background is
  chosen without the stain: `"lightest"`, the cluster whose photo pixels
  are brightest on average (histology's background: the least stained
  tissue), and, for comparison, `"largest"` (the library's default);
- Fig. 3 at the scale of cells: the same network on the photo at its own
  512 pixels and upsampled to 1024, where a nucleus (about 11 and 23
  pixels across) spans one and three of block4's strides (8); the region
  centres of block4's non-background clusters (the same `"lightest"` rule)
  are compared with the nuclei (haematoxylin channel of `rgb2hed`, Otsu
  threshold, opened); chance is the nuclei's share of the photo, with the
  binomial tail probability of as many hits by chance.

Run: python examples/08_dpgmm_depth.py [figure.png] [--fast] [--seed N]
(`--fast`, or the environment variable KI_MAX_STEPS as in the test suite:
fewer patches and epochs, a 128-pixel photo and Fig. 3 at 1024 pixels
only, for CI. `--seed` trains the network with another seed.)
"""

import argparse
import os
import time
import warnings

import matplotlib

matplotlib.use("Agg")
import keras
import matplotlib.pyplot as plt
import numpy as np
from scipy.stats import binom
from skimage.color import rgb2hed
from skimage.filters import threshold_otsu
from skimage.measure import label as label_objects
from skimage.morphology import binary_opening, disk

import keras_introspect as ki
from keras_introspect.cluster.pixel import upsample_labels
from keras_introspect.datasets.images import sample_images
from keras_introspect.exceptions import KerasIntrospectWarning

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("figure", nargs="?", help="where to save the figure (PNG)")
parser.add_argument("--fast", action="store_true", help="small run for CI")
parser.add_argument("--seed", type=int, default=0, help="seed of the network's training")
ARGS = parser.parse_args()
FAST = ARGS.fast or bool(os.environ.get("KI_MAX_STEPS"))
PATCHES, EPOCHS, SIZE = (300, 2, 128) if FAST else (1000, 5, 256)
# Fig. 3 at the scale of cells: the photo's own size and twice it (`--fast`: twice it only)
CELLS = (1024,) if FAST else (512, 1024)
PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "retina", "camera", "coins", "moon")
WIDTHS = (16, 32, 64, 64)
# with Adam's 3e-3 the counts per block went up or down with the training
# seed; with 1e-3 the first block had the most for every seed tried (docs)
LEARNING_RATE = 1e-3
# reflected margin: a multiple of the deepest stride (8), wider than the
# deepest units reach beyond their centre (checked below)
PAD = 40
BLOCKS = [f"block{b}_conv2" for b in range(1, len(WIDTHS) + 1)]
CROPS = [f"block{b}_photo" for b in range(1, len(WIDTHS) + 1)]
# the fits report whether they converged; this example prints it
warnings.simplefilter("ignore", KerasIntrospectWarning)


def vgg_like(size, n_classes, margin=None):
    """VGG16's layout, narrower: blocks of two 3x3 ReLU convolutions, max pooling between.

    With `margin`, a feature extractor instead: its outputs are each block's
    last convolution cropped by `margin` input pixels on every side.
    """
    layers = keras.layers
    inputs = keras.Input((size, size, 3))
    h, crops = inputs, []
    for block, width in enumerate(WIDTHS, start=1):
        for conv in (1, 2):
            h = layers.Conv2D(
                width, 3, padding="same", activation="relu", name=f"block{block}_conv{conv}"
            )(h)
        if margin is not None:
            crops.append(layers.Cropping2D(margin >> (block - 1), name=CROPS[block - 1])(h))
        if block < len(WIDTHS):
            h = layers.MaxPooling2D(name=f"block{block}_pool")(h)
    if margin is not None:
        return keras.Model(inputs, crops, name="vgg_like_photo")
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
keras.utils.set_random_seed(ARGS.seed)
small = vgg_like(32, len(PHOTOS))
small.compile(
    keras.optimizers.Adam(LEARNING_RATE), "sparse_categorical_crossentropy", metrics=["accuracy"]
)
small.fit(x[:split], y[:split], epochs=EPOCHS, batch_size=64, verbose=0)
_, accuracy = small.evaluate(x[split:], y[split:], verbose=0)
print(f"test accuracy {accuracy:.3f} (which of {len(PHOTOS)} photos a patch is from)")


def on_photo(size):
    """The photo at `size`, with its reflected margin, and the trained weights cropped to it.

    Every layer is convolutional up to the pooling, so the weights of the
    32-pixel network apply to any size.
    """
    photo = sample_images(["immunohistochemistry"], size=size)["immunohistochemistry"] / 255.0
    model = vgg_like(size + 2 * PAD, len(PHOTOS), margin=PAD)
    for layer in model.layers:
        if layer.weights:
            layer.set_weights(small.get_layer(layer.name).get_weights())
    padded = np.pad(photo, ((PAD, PAD), (PAD, PAD), (0, 0)), mode="reflect")[None]
    intro = ki.Introspector(model)
    for layer in CROPS:  # every kept unit sees the photo or its reflection, never the zeros
        field = intro.receptive_field(layer, strict=True)
        n_units = model.get_layer(layer).output.shape[1]
        first, last = field.offset[0], field.offset[0] + field.stride[0] * (n_units - 1)
        assert first >= 0 and last + field.size[0] <= size + 2 * PAD, (layer, field)
    return photo, padded.astype("float32"), model, intro


def lightest(fit, padded, photo, intro):
    """The photo-sized label map of `fit`, each cluster's share, and the brightest cluster."""
    field = intro.receptive_field(fit.layer_path_)
    labels = upsample_labels(fit.transform(padded), padded.shape[1:3], field)[0]
    labels = labels[PAD : PAD + len(photo), PAD : PAD + len(photo)]
    shares = np.bincount(labels.ravel(), minlength=fit.n_clusters_) / labels.size
    brightness = [photo[labels == k].mean() if shares[k] else -1.0 for k in range(fit.n_clusters_)]
    return labels, shares, int(np.argmax(brightness)), brightness


photo, padded, model, intro = on_photo(SIZE)
bare = vgg_like(SIZE, len(PHOTOS))
bare.set_weights(small.get_weights())
image = photo[None].astype("float32")

# Fig. 2: clusters per block, one image, the defaults and scikit-learn's settings
SKLEARN = dict(init_params="kmeans", covariance_prior="data", min_weight=0.0)
rows, fits = [], {}
for block, layer in zip(BLOCKS, CROPS, strict=True):
    pc = ki.PixelClusterer(model, layer, random_state=0).fit(padded)
    old = ki.PixelClusterer(model, layer, random_state=0, **SKLEARN).fit(padded)
    edges = ki.PixelClusterer(bare, block, random_state=0).fit(image)
    fits[block] = pc
    counted = (pc.n_clusters_, pc.n_components_used_, old.n_clusters_, edges.n_clusters_)
    rows.append((block, pc.n_points_, *counted))
header = ("layer", "pixels", "clusters >= 1 %", "owning a pixel", "sklearn", "zero padding")
print("{:<14} {:>7} {:>15} {:>14} {:>8} {:>12}".format(*header))
for layer, n, kept, used, old, edges in rows:
    print(f"{layer:<14} {n:>7} {kept:>15} {used:>14} {old:>8} {edges:>12}")
counts = [row[2] for row in rows]
per_block = " ".join(f"{layer}={n}" for layer, n in zip(BLOCKS, counts, strict=True))
print("clusters per block:", per_block)
trend = "falls" if counts[-1] < counts[0] else "does not fall"
print(f"first block {counts[0]} -> last block {counts[-1]}: the count {trend}")

# Fig. 3: centres of the non-background clusters at the deepest block, on the DAB stain
dab = rgb2hed(photo)[..., 2]
stained = dab > threshold_otsu(dab)
deep = fits[BLOCKS[-1]]
labels, shares, background, brightness = lightest(deep, padded, photo, intro)
backgrounds = {"lightest": background, "largest": int(np.argmax(shares))}
print(f"{BLOCKS[-1]}: DAB-stained pixels cover {stained.mean():.0%} of the photo (chance)")
for label in range(deep.n_clusters_):
    where = labels == label
    if where.any():
        print(
            f"  cluster {label}: {shares[label]:.0%} of the pixels, brightness "
            f"{brightness[label]:.2f}, mean DAB {dab[where].mean() / dab.mean():.2f} x the "
            f"photo's, {stained[where].mean():.0%} stained"
        )


def on_stain(points):
    """Share of `(row, col)` points, in the photo's pixels, that fall on DAB stain."""
    inside = [(r, c) for r, c in points if 0 <= round(r) < SIZE and 0 <= round(c) < SIZE]
    return np.mean([stained[round(r), round(c)] for r, c in inside]) if inside else float("nan")


points = {}
for rule, background in backgrounds.items():
    (regions,) = deep.centers_in_input_space(padded, background=background, regions=True)
    (whole,) = deep.centers_in_input_space(padded, background=background)
    points[rule] = [(r - PAD, c - PAD) for found in regions.values() for r, c, _ in found]
    centres = [(r - PAD, c - PAD) for r, c, _ in whole.values()]
    print(
        f"  background {rule} (cluster {background}): {len(points[rule])} region centres of "
        f"{len(whole)} non-background clusters, {on_stain(points[rule]):.0%} on DAB-stained "
        f"pixels; cluster centres {on_stain(centres):.0%} on stain"
    )

# Fig. 3 at the scale of cells: block4's region centres against the nuclei
cell_panels = []
for size in CELLS:
    cells, cells_padded, cells_model, cells_intro = on_photo(size)
    hed = rgb2hed(cells)
    nuclei = binary_opening(hed[..., 0] > threshold_otsu(hed[..., 0]), disk(size // 256))
    cells_stained = hed[..., 2] > threshold_otsu(hed[..., 2])
    objects = label_objects(nuclei)  # connected nuclei (touching ones merge)
    fit = ki.PixelClusterer(cells_model, CROPS[-1], random_state=0).fit(cells_padded)
    cell_labels, cell_shares, background, _ = lightest(fit, cells_padded, cells, cells_intro)
    (regions,) = fit.centers_in_input_space(cells_padded, background=background, regions=True)
    print(
        f"Fig. 3 at {size} px, {BLOCKS[-1]}: {fit.n_clusters_} clusters, background lightest "
        f"(cluster {background}); nuclei (haematoxylin, Otsu, opened) cover "
        f"{nuclei.mean():.0%} of the photo (chance)"
    )
    hits, found, hit_objects = [], [], set()
    for label, centres in regions.items():
        rc = np.round([(r - PAD, c - PAD) for r, c, _ in centres]).astype(int)
        rc = rc[((rc >= 0) & (rc < size)).all(axis=1)]  # a centroid may fall in the margin
        on = nuclei[rc[:, 0], rc[:, 1]]
        hits += list(on)
        hit_objects.update(objects[rc[:, 0], rc[:, 1]][on].tolist())
        found += [(r, c, label) for r, c in rc]
        where = cell_labels == label
        print(
            f"  cluster {label}: {cell_shares[label]:.1%} of the pixels, "
            f"{cells_stained[where].mean():.0%} DAB-stained, {nuclei[where].mean():.0%} nuclei; "
            f"{len(rc)} region centres, {on.sum()} on a nucleus"
        )
    n, k = len(hits), int(np.sum(hits))
    print(
        f"  {size} px: {k} of {n} region centres on a nucleus "
        f"({f'{k / n:.0%}' if n else '-'}; chance {nuclei.mean():.0%}, "
        f"binomial tail p = {binom.sf(k - 1, n, nuclei.mean()):.1g}), on {len(hit_objects)} "
        f"of the {objects.max()} nuclei"
    )
    cell_panels.append((size, cells, nuclei, found))

if ARGS.figure:
    maps = [fits[layer].transform(padded)[0] for layer in BLOCKS]
    fig = ki.plotting.plot_label_maps(maps, BLOCKS, photo, n_clusters=counts, ncols=4, legend=4)
    ax = fig.axes[len(BLOCKS) + 1]
    ax.imshow(photo)
    ax.contour(stained, levels=[0.5], colors="yellow", linewidths=0.4)
    if points["lightest"]:
        rows_, cols_ = zip(*points["lightest"], strict=True)
        ax.scatter(cols_, rows_, s=30, c="cyan", marker="x")
    ax.set_title(f"{BLOCKS[-1]} at {SIZE} px: region centres\n(yellow: DAB stain)", fontsize=8)
    ax.axis("off")
    for ax, (size, cells, nuclei, found) in zip(
        fig.axes[len(BLOCKS) + 2 :], cell_panels, strict=False
    ):
        ax.imshow(cells)
        ax.contour(nuclei, levels=[0.5], colors="yellow", linewidths=0.3)
        if found:
            rows_, cols_, labels_ = zip(*found, strict=True)
            ax.scatter(cols_, rows_, s=8, c=labels_, cmap="tab10", vmin=0, vmax=9, marker="x")
        ax.set_title(f"{BLOCKS[-1]} at {size} px: region centres\n(yellow: nuclei)", fontsize=8)
        ax.axis("off")
    fig.subplots_adjust(hspace=0.45)
    fig.savefig(ARGS.figure, dpi=110, bbox_inches="tight")
    plt.close(fig)
print(f"done in {time.time() - start:.0f} s")
