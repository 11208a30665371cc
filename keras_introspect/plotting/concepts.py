"""Figures of concept results: TCAV bars, concept exemplars, concept maps, importances.

Each function draws what `keras_introspect.concepts` returned and gives back
a matplotlib `Figure` (or the `Axes` it drew on, when it takes `ax`).
Concept `k` has the same colour in every figure (matplotlib's `tab10`).
"""

from __future__ import annotations

import numpy as np

from keras_introspect.plotting.overlay import to_unit


def _colour(k):
    import matplotlib

    return matplotlib.colormaps["tab10"](k % 10)


def _names(names, n):
    return list(names) if names is not None else [f"concept {k}" for k in range(n)]


def plot_tcav(result, ax=None):
    """TCAV scores per concept and class (mean, std over runs); random CAVs' scores in grey.

    Significant scores (p < `result.alpha`) are marked with a star.

    Args:
        result: a `TCAVResult`.
        ax: matplotlib Axes to draw on (a new figure if `None`).

    Returns:
        The Axes.
    """
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(1.2 + 1.1 * len(result.classes) * len(result.concepts), 3))
    width = 0.8 / (len(result.concepts) + 1)
    positions = np.arange(len(result.classes))
    for j, concept in enumerate(result.concepts):
        scores = result.scores[concept]
        bars = ax.bar(
            positions + j * width,
            scores.mean(axis=1),
            width,
            yerr=scores.std(axis=1),
            color=_colour(j),
            label=concept,
        )
        for k, bar in enumerate(bars):
            if result.significant(concept, k):
                ax.text(bar.get_x() + width / 2, 1.02, "*", ha="center", fontsize=12)
    ax.bar(
        positions + len(result.concepts) * width,
        result.random_scores.mean(axis=1),
        width,
        yerr=result.random_scores.std(axis=1),
        color="0.75",
        label="random",
    )
    ax.set_xticks(positions + width * len(result.concepts) / 2)
    ax.set_xticklabels([f"class {c}" for c in result.classes])
    ax.set_ylim(0, 1.12)
    ax.set_ylabel("TCAV score")
    ax.set_title(f"TCAV at {result.layer} (* p < {result.alpha:g})", fontsize=9)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1))
    return ax


def plot_concept_exemplars(exemplars, value_range=None, names=None, size=1.1):
    """One row per concept: the pieces that express it most, strongest first.

    Drawn as one mosaic (one image, framed in the concept's colour), so a
    large grid costs one Axes.

    Args:
        exemplars: `ConceptExemplars` (`ConceptDiscovery.exemplars(k)`).
        value_range: of the images (default: each piece's own range).
        names: a label per concept.
        size: inches per piece.

    Returns:
        The Figure.
    """
    import matplotlib.pyplot as plt

    images = exemplars.images
    n, k, h, w = images.shape[:4]
    names = _names(names, n)
    border = max(1, h // 16)
    cell_h, cell_w = h + 2 * border, w + 2 * border
    mosaic = np.ones((n * cell_h, k * cell_w, 3))
    for i in range(n):
        for j in range(k):
            image = to_unit(images[i, j], value_range)
            image = np.repeat(image, 3, axis=-1) if image.shape[-1] == 1 else image[..., :3]
            top, left = i * cell_h, j * cell_w
            mosaic[top : top + cell_h, left : left + cell_w] = _colour(i)[:3]
            mosaic[top + border : top + border + h, left + border : left + border + w] = image
    fig, ax = plt.subplots(figsize=(size * k + 1.0, size * n + 0.2))
    ax.imshow(mosaic, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([(i + 0.5) * cell_h for i in range(n)])
    ax.set_yticklabels(names, fontsize=8)
    for tick, i in zip(ax.get_yticklabels(), range(n), strict=True):
        tick.set_color(_colour(i))
    for spine in ax.spines.values():
        spine.set_visible(False)
    fig.tight_layout()
    return fig


def plot_concept_maps(images, maps, value_range=None, names=None, size=1.5, share=0.2):
    """Per image: the image, each concept's map over it, and the strongest concept per pixel.

    Args:
        images: `(n, H, W, C)`.
        maps: `(n, H, W, n_concepts)` (`ConceptDiscovery.concept_maps`).
        value_range: of the images.
        names: a label per concept.
        share: the last panel colours a pixel by its strongest concept
            where that concept's value is above `share` of its largest value.

    Returns:
        The Figure.
    """
    import matplotlib.pyplot as plt

    n, r = len(images), maps.shape[-1]
    names = _names(names, r)
    fig, axes = plt.subplots(n, r + 2, figsize=(size * (r + 2), size * n), squeeze=False)
    top = np.maximum(maps.max(axis=(0, 1, 2)), 1e-12)
    for i in range(n):
        image = to_unit(images[i], value_range)
        grey = image.mean(axis=-1)
        axes[i, 0].imshow(image[..., 0] if image.shape[-1] == 1 else image, cmap="gray")
        for k in range(r):
            ax = axes[i, k + 1]
            ax.imshow(grey, cmap="gray", vmin=0, vmax=1, alpha=0.6)
            tint = np.zeros((*grey.shape, 4))
            tint[..., :3] = _colour(k)[:3]
            tint[..., 3] = np.clip(maps[i, ..., k] / top[k], 0, 1) * 0.85
            ax.imshow(tint)
            if i == 0:
                ax.set_title(names[k], fontsize=7, color=_colour(k))
        strongest = (maps[i] / top).argmax(axis=-1)
        shown = (maps[i] / top).max(axis=-1) > share
        label_rgb = np.ones((*grey.shape, 3)) * grey[..., None] * 0.5
        for k in range(r):
            label_rgb[shown & (strongest == k)] = _colour(k)[:3]
        axes[i, -1].imshow(label_rgb)
        if i == 0:
            axes[i, 0].set_title("image", fontsize=7)
            axes[i, -1].set_title("strongest", fontsize=7)
        for ax in axes[i]:
            ax.axis("off")
    fig.tight_layout()
    return fig


def plot_concept_importance(importance, ax=None, names=None, title="Concept importance"):
    """Horizontal bars of each concept's importance (the largest on top).

    Args:
        importance: `(n_concepts,)` (`ConceptDiscovery.importance`).
        ax: matplotlib Axes (a new figure if `None`).
        names: a label per concept.

    Returns:
        The Axes.
    """
    import matplotlib.pyplot as plt

    importance = np.asarray(importance, np.float64)
    names = _names(names, len(importance))
    if ax is None:
        _, ax = plt.subplots(figsize=(3.6, 0.35 * len(importance) + 0.8))
    order = np.argsort(importance)
    ax.barh(
        np.arange(len(order)),
        importance[order],
        color=[_colour(k) for k in order],
    )
    ax.set_yticks(np.arange(len(order)))
    ax.set_yticklabels([names[k] for k in order], fontsize=8)
    ax.set_title(title, fontsize=9)
    return ax


def plot_concept_counts(rows, ax=None):
    """Concepts the Dirichlet process finds per layer (000: fewer, larger clusters deeper).

    Args:
        rows: dicts with `"layer"`, `"n_concepts"` (and optionally `"class"`:
            one line per class).
        ax: matplotlib Axes (a new figure if `None`).

    Returns:
        The Axes.
    """
    import matplotlib.pyplot as plt

    layers = list(dict.fromkeys(row["layer"] for row in rows))
    if ax is None:
        _, ax = plt.subplots(figsize=(1.0 + 0.9 * len(layers), 2.8))
    groups = {}
    for row in rows:
        groups.setdefault(row.get("class"), {})[row["layer"]] = row["n_concepts"]
    for j, (cls, counts) in enumerate(groups.items()):
        xs = [layers.index(layer) for layer in counts]
        label = None if cls is None else f"class {cls}"
        ax.plot(xs, list(counts.values()), "o-", color=_colour(j), label=label)
    ax.set_xticks(range(len(layers)))
    ax.set_xticklabels(layers, rotation=30, ha="right", fontsize=7)
    ax.set_ylabel("concepts (DPGMM)")
    ax.set_ylim(bottom=0)
    if any(cls is not None for cls in groups):
        ax.legend(fontsize=7)
    return ax
