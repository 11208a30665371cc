"""Clustering what a CNN computes, layer by layer, and trees of categories and filters.

A small CNN is trained on the spot on scikit-learn's digits, upsampled to
24 x 24 (a few seconds, nothing is downloaded). Then:

- layer-wise k-means (Girish et al., `001`): every layer's activations are
  clustered into 10 clusters, and purity, NMI and ARI against the digit
  labels rise from the first convolution to the last hidden layer;
- DPGMM label images (Malmgren-Hansen et al., `000` Fig. 2): the pixels of
  one image's feature maps at every convolution, clustered across channels
  with a Dirichlet-process mixture that picks the number of clusters;
- per-image DPGMM of the hidden layer, and how the clusters split the digits;
- the category tree and its minimum spanning tree (Dai, `003` Algorithm 1),
  and the filter-wise prediction tree of the digit 3 (Algorithm 2) with the
  path of a held-out 3 through it.

Run: python examples/04_clustering.py [output.png]
"""

import sys
import warnings

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

import keras_introspect as ki
from keras_introspect.datasets import digits_model
from keras_introspect.exceptions import KerasIntrospectWarning
from keras_introspect.plotting import plot_category_tree

# DPGMM fits on real activations rarely pass scikit-learn's convergence test
# (a change of the total lower bound below 1e-3) within max_iter; that is
# reported as a warning, and the clusters are usable as they are.
warnings.simplefilter("ignore", KerasIntrospectWarning)

model, x, y, accuracy = digits_model(size=24)
print(f"test accuracy {accuracy:.3f}")

# 1. layer-wise purity (001): one point per image, 10 k-means clusters per layer
purity = ki.layerwise_purity(
    model, x, y, layers=["conv1", "pool1", "conv2", "pool2", "conv3", "hidden"], random_state=0
)
print(purity)
first, last = purity.purity[0], purity.purity[-1]
print(f"purity conv1 {first:.3f} -> hidden {last:.3f}")

# 2. DPGMM label images at every convolution (000 Fig. 2): the pixels of 20
#    held-out images are clustered, and the label image of the first is shown
held_out = x[1500:1520]
image = held_out[:1]
maps = []
for layer in ("conv1", "conv2", "conv3"):
    clusterer = ki.PixelClusterer(model, layer, random_state=0).fit(held_out)
    maps.append(clusterer.transform(image)[0])
    print(f"{layer}: {clusterer.n_clusters_} DPGMM clusters of {clusterer.n_points_} pixels")

# 3. per-image DPGMM on the hidden layer, and what the largest clusters hold (000 §3)
images = ki.ImageClusterer(model, "hidden", alpha=0.1, covariance_type="full", random_state=0).fit(
    x[:600]
)
print(f"hidden layer: {images.n_clusters_} DPGMM clusters of 600 images; the largest:")
print("\n".join(str(images.composition(y[:600])).splitlines()[:8]))

# 4. category tree and spanning tree (003 Algorithm 1)
categories = ki.CategoryTree(model, "hidden").fit(x, y)
print("category tree:", categories.to_newick())
edges = ", ".join(f"{int(i)}-{int(j)}" for i, j, _ in categories.mst_)
print("minimum spanning tree:", edges)

# 5. prediction tree of the digit 3 at conv3 (003 Algorithm 2), and a new 3's path
threes = x[:1500][y[:1500] == 3]
tree = ki.PredictionTree(model, "conv3").fit(threes)
new_three = x[1500:][y[1500:] == 3][:1]
(path,) = tree.path(new_three)
print("critical filters on the path of a new 3:", path.critical_filters)
print("activated:", path.activated)

# the figure
figure = plt.figure(figsize=(13, 8))
grid = figure.add_gridspec(2, 4)
ax = figure.add_subplot(grid[0, :2])
purity.plot(ax=ax)
panels = [("input", image[0, ..., 0]), *zip(("conv1", "conv2", "conv3"), maps, strict=True)]
cells = grid[0, 2:].subgridspec(1, 4)
for k, (title, panel) in enumerate(panels):
    ax = figure.add_subplot(cells[0, k])
    ax.imshow(panel, cmap="gray" if k == 0 else "tab20", interpolation="nearest")
    ax.set_title(title if k == 0 else f"{title}\n{len(np.unique(panel))} clusters", fontsize=9)
    ax.axis("off")
ax = figure.add_subplot(grid[1, :2])
plot_category_tree(categories, ax=ax)
ax = figure.add_subplot(grid[1, 2:])
xy = ki.embed(model, "hidden", x[:600], method="pca", seed=0)
scatter = ax.scatter(*xy.T, c=y[:600], cmap="tab10", s=8)
ax.legend(*scatter.legend_elements(), fontsize=7, ncols=2, title="digit")
ax.set_title("hidden layer, PCA (003 Fig. 9)")
figure.suptitle("Layer-wise purity, DPGMM label images, category tree, embedding")
figure.tight_layout()
out = sys.argv[1] if len(sys.argv) > 1 else "clustering.png"
figure.savefig(out, dpi=80)
print(f"wrote {out}")
