"""Figures of clusterings: label images, layer-wise purity, category trees."""

from __future__ import annotations

import numpy as np

from keras_introspect.plotting.overlay import to_unit


def _axes(ax):
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots()
    return ax


def plot_label_maps(maps, titles=None, images=None, cmap="tab20", ncols=None, size=2.5):
    """Label images side by side, one colour per cluster (`000` Fig. 2).

    Args:
        maps: a list of 2-D label arrays (any sizes, e.g. one per layer).
        titles: one title per map.
        images: optional image shown first (the input), as `(H, W)` or `(H, W, C)`.
        cmap: colour map for labels (a qualitative one).
        ncols: columns of the grid (default: all in one row, at most 6).
        size: inches per panel.

    Returns:
        The matplotlib Figure.
    """
    import matplotlib.pyplot as plt

    panels = ([("input", images)] if images is not None else []) + [
        (titles[i] if titles else f"map {i}", np.asarray(m)) for i, m in enumerate(maps)
    ]
    ncols = ncols or min(len(panels), 6)
    nrows = -(-len(panels) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, size * nrows), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, (title, panel) in zip(axes.ravel(), panels, strict=False):
        if title == "input" and images is not None:
            image = to_unit(panel)
            ax.imshow(image.squeeze(), cmap="gray" if image.squeeze().ndim == 2 else None)
        else:
            top = max(19, int(panel.max()))
            ax.imshow(panel, cmap=cmap, interpolation="nearest", vmin=0, vmax=top)
            title = f"{title}\n{len(np.unique(panel))} clusters"
        ax.set_title(title, fontsize=8)
    fig.tight_layout()
    return fig


def plot_purity(result, ax=None):
    """Purity, NMI and ARI of a `PurityResult` against the layers, in model order."""
    ax = _axes(ax)
    depth = np.arange(len(result.layers))
    for values, label in ((result.purity, "purity"), (result.nmi, "NMI"), (result.ari, "ARI")):
        ax.plot(depth, values, marker="o", label=label)
    ax.set_xticks(depth)
    ax.set_xticklabels([p.split("/")[-1] for p in result.layers], rotation=45, ha="right")
    ax.set_ylim(0, 1.02)
    ax.set_ylabel("agreement with the labels")
    ax.set_title(f"layer-wise clustering ({result.method})")
    ax.legend()
    return ax


def plot_category_tree(tree, ax=None, orientation="left"):
    """Dendrogram of a fitted `CategoryTree` (`003` Fig. 8); returns the Axes."""
    from scipy.cluster.hierarchy import dendrogram

    ax = _axes(ax)
    dendrogram(
        tree.linkage_,
        labels=[str(c) for c in tree.classes_],
        orientation=orientation,
        ax=ax,
        color_threshold=0,
        above_threshold_color="k",
    )
    ax.set_title(f"categories at {tree.layer_path_}")
    ax.set_xlabel("distance (1 - cos) / 2" if tree.metric == "cosine" else "distance")
    return ax
