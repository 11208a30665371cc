"""Figures of clusterings: label images, layer-wise purity, category trees and their MST."""

from __future__ import annotations

import numpy as np

from keras_introspect.plotting.overlay import to_unit


def _axes(ax):
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots()
    return ax


def plot_label_maps(
    maps, titles=None, images=None, cmap="tab20", ncols=None, size=2.5, legend=6, n_clusters=None
):
    """Label images side by side, one colour per cluster (`000` Fig. 2).

    Args:
        maps: a list of label arrays (any sizes, e.g. one per layer): 2-D
            maps are drawn as they are, 1-D maps (a 1-D layer) as a band,
            3-D maps (a 3-D layer) by their middle slice along the first
            axis; counts and legends cover the whole map.
        titles: one title per map.
        images: optional image shown first (the input), as `(H, W)` or `(H, W, C)`.
        cmap: colour map for labels (a qualitative one).
        ncols: columns of the grid (default: all in one row, at most 6).
        size: inches per panel.
        legend: under each map, the colours of its largest clusters (at most
            this many) with their share of the pixels; 0 for none.
        n_clusters: optional, per map, the clusters of the whole fit; titles
            then read "k of N clusters in this image", so they agree with
            the fitted `n_clusters_` (a single image shows only some).

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
    first_map = 1 if images is not None else 0
    for position, (ax, (title, panel)) in enumerate(zip(axes.ravel(), panels, strict=False)):
        if title == "input" and images is not None:
            image = to_unit(panel)
            ax.imshow(image.squeeze(), cmap="gray" if image.squeeze().ndim == 2 else None)
        else:
            top = max(19, int(panel.max()))
            shown_panel, where = _drawable(panel)
            aspect = "auto" if panel.ndim == 1 else None
            ax.imshow(
                shown_panel, cmap=cmap, interpolation="nearest", vmin=0, vmax=top, aspect=aspect
            )
            title = f"{title}{where}"
            shown = len(np.unique(panel))
            if n_clusters is not None:
                total = n_clusters[position - first_map]
                title = f"{title}\n{shown} of {total} clusters in this image"
            else:
                title = f"{title}\n{shown} clusters in this image"
            if legend:
                _label_legend(ax, panel, plt.get_cmap(cmap), top, legend)
        ax.set_title(title, fontsize=8)
    fig.tight_layout()
    return fig


def _drawable(panel):
    """A label map as a 2-D image, and a note on what of it is drawn."""
    if panel.ndim == 1:
        return panel[None, :], ""
    if panel.ndim == 3:
        middle = panel.shape[0] // 2
        return panel[middle], f" (slice {middle} of {panel.shape[0]})"
    return panel, ""


def plot_label_overlay(
    image, labels, n_clusters=None, value_range=None, alpha=0.45, cmap="tab20", legend=8, title=""
):
    """One image and its cluster labels laid over it, with a legend (`keras-introspect cluster`).

    Args:
        image: `(H, W)` or `(H, W, C)`.
        labels: `(H, W)` labels at the image's resolution (see
            `cluster.pixel.upsample_labels`).
        n_clusters: clusters of the whole fit, for the title "k of N clusters
            in this image".
        value_range: of the image, for display.
        alpha: opacity of the colours.
        legend: the colours of the largest clusters (at most this many),
            with their share of the pixels.
        title: above the panels.

    Returns:
        The matplotlib Figure: the image, and the image under its labels.
    """
    import matplotlib.pyplot as plt

    labels = np.asarray(labels)
    unit = to_unit(np.asarray(image, np.float64), value_range).squeeze()
    grey = unit if unit.ndim == 2 else unit.mean(-1)
    top = max(19, int(labels.max()))
    fig, axes = plt.subplots(1, 2, figsize=(5.0, 3.2))
    for ax in axes:
        ax.axis("off")
    axes[0].imshow(unit, cmap="gray" if unit.ndim == 2 else None, vmin=0, vmax=1)
    axes[0].set_title("input", fontsize=8)
    axes[1].imshow(grey, cmap="gray", vmin=0, vmax=1)
    axes[1].imshow(labels, cmap=cmap, vmin=0, vmax=top, alpha=alpha, interpolation="nearest")
    shown = len(np.unique(labels))
    of = f" of {n_clusters}" if n_clusters is not None else ""
    axes[1].set_title(f"{shown}{of} clusters in this image", fontsize=8)
    if legend:
        _label_legend(axes[1], labels, plt.get_cmap(cmap), top, legend)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return fig


def _label_legend(ax, labels, colours, top, k):
    """Patches of the `k` largest clusters of a label map, with their pixel shares."""
    from matplotlib.patches import Patch

    values, counts = np.unique(labels, return_counts=True)
    order = np.argsort(-counts, kind="stable")[:k]
    handles = [
        Patch(color=colours(values[i] / top), label=f"{values[i]}: {counts[i] / labels.size:.0%}")
        for i in order
    ]
    ax.legend(
        handles=handles,
        loc="upper center",
        bbox_to_anchor=(0.5, 0.0),
        ncol=2,
        fontsize=6,
        frameon=False,
        handlelength=1,
    )


def _classical_mds(distances):
    """2-D points whose distances approximate `distances` (Torgerson scaling)."""
    n = len(distances)
    centre = np.eye(n) - 1.0 / n
    gram = -0.5 * centre @ (distances**2) @ centre
    values, vectors = np.linalg.eigh(gram)
    top = np.argsort(values)[::-1][:2]
    xy = vectors[:, top] * np.sqrt(np.clip(values[top], 0.0, None))
    return np.pad(xy, ((0, 0), (0, 2 - xy.shape[1])))


def plot_spanning_tree(tree, ax=None):
    """The minimum spanning tree of a fitted `CategoryTree` (`003` Fig. 9); returns the Axes.

    Categories are placed by classical multidimensional scaling of their
    distances (close categories close together); each edge is labelled with
    its distance.
    """
    ax = _axes(ax)
    names = [str(c) for c in tree.classes_]
    xy = _classical_mds(np.asarray(tree.distances_, np.float64))
    for i, j, weight in tree.mst_:
        (x0, y0), (x1, y1) = xy[int(i)], xy[int(j)]
        ax.plot([x0, x1], [y0, y1], color="0.5", lw=1)
        ax.text((x0 + x1) / 2, (y0 + y1) / 2, f"{weight:.3g}", fontsize=6, color="0.3")
    ax.scatter(xy[:, 0], xy[:, 1], s=60, color="#4060a0", zorder=3)
    for name, (x, y) in zip(names, xy, strict=True):
        ax.annotate(name, (x, y), xytext=(4, 4), textcoords="offset points", fontsize=8)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(f"minimum spanning tree at {tree.layer_path_}")
    return ax


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
