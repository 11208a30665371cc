"""Figures of result objects that had none, and `show` for plain attribution arrays.

They back the `.plot()` of `probes.OutOfSample` and `metrics.MapComparison`
(and so their notebook display); `show` draws maps a user computed as numpy
arrays, with the grid the report uses.
"""

from __future__ import annotations

import numpy as np

from keras_introspect.plotting.overlay import is_signed


def plot_out_of_sample(result, ax=None, cmap="tab10"):
    """Stacked bars: the share of each predicted class per set of images (an
    `OutOfSample`, Dai's Table 1 as a picture); returns the Axes."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(6, 0.45 * len(result.sets) + 1.2))
    colours = plt.get_cmap(cmap)
    rows = np.arange(len(result.sets))
    left = np.zeros(len(result.sets))
    for k, name in enumerate(result.class_names):
        share = np.asarray(result.shares, np.float64)[:, k] / 100.0
        ax.barh(rows, share, left=left, color=colours(k % colours.N), label=str(name))
        left += share
    ax.set_yticks(rows)
    ax.set_yticklabels([str(name) for name in result.sets])
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_xlabel("share of the set predicted as each class")
    ax.legend(title="predicted", fontsize=7, bbox_to_anchor=(1.01, 1), loc="upper left")
    return ax


def plot_map_comparison(comparison, max_images: int = 6, size: float = 1.6):
    """The two maps of each image of a `MapComparison` side by side (the trained
    model's or the true class' first), titled with their similarity; a Figure.

    Signed maps are drawn with a diverging colormap centred on 0, others with
    `inferno`; both maps of an image share one colour scale.
    """
    first, second = np.asarray(comparison.maps), np.asarray(comparison.other_maps)
    n = min(len(first), max_images)
    other = "random twin" if comparison.check == "random twin" else "random class"
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(n, 2, figsize=(2 * size, n * size), squeeze=False)
    signed = is_signed(first) or is_signed(second)
    for i in range(n):
        a, b = np.squeeze(first[i]), np.squeeze(second[i])
        if a.ndim != 2:
            raise ValueError(
                f"Expected 2-D maps to draw side by side. Received: maps of shape {first.shape}"
            )
        limit = float(max(np.max(np.abs(a)), np.max(np.abs(b)))) or 1.0
        style = (
            {"cmap": "RdBu_r", "vmin": -limit, "vmax": limit}
            if signed
            else {"cmap": "inferno", "vmin": 0.0, "vmax": limit}
        )
        for ax, image, title in (
            (axes[i, 0], a, comparison.method),
            (axes[i, 1], b, f"{other}: {comparison.measure} {comparison.similarity[i]:.2f}"),
        ):
            ax.imshow(image, **style)
            ax.set_title(title, fontsize=7)
            ax.axis("off")
    fig.tight_layout()
    return fig


def show(images, maps, **options):
    """Draw attribution maps given as arrays over their images; returns the Figure.

    The overlay grid of the report (`plot_saliency_grid`): one row per image,
    the input, then one overlay per method (signed maps in a diverging
    colormap). Signals and volumes are drawn as strips and slices.

    Args:
        images: `(n, H, W, C)` images (or `(n, L, C)` signals, `(n, D, H, W, C)`
            volumes).
        maps: `(n, H, W)` maps of one method, or `{title: maps}` for several.
        options: of `plot_saliency_grid` (`value_range`, `row_labels`, ...).

    Example:
        >>> import numpy as np, keras_introspect as ki
        >>> x = np.random.default_rng(0).uniform(size=(2, 8, 8, 3))
        >>> fig = ki.show(x, np.abs(x).sum(-1))
        >>> len(fig.axes)
        4
    """
    from keras_introspect.plotting.grids import plot_saliency_grid

    if not isinstance(maps, dict):
        maps = {"map": np.asarray(maps)}
    return plot_saliency_grid(np.asarray(images), maps, **options)
