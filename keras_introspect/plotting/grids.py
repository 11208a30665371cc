"""Grids of results: attribution maps, exemplars, optimised images, histograms, compositions.

Each function draws what a computation module returned and gives back a
matplotlib `Figure` (or the `Axes` it drew on, when it takes `ax`); nothing
here computes an analysis.
"""

from __future__ import annotations

import numpy as np

from keras_introspect.plotting.overlay import draw_box, is_signed, overlay, signed_overlay, to_unit


def _grid(nrows, ncols, size, height=None):
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(
        nrows, ncols, figsize=(size * ncols, (height or size) * nrows), squeeze=False
    )
    return fig, axes


def _show(ax, image, value_range=None):
    """Draw an image `(H, W)` / `(H, W, 1)` / `(H, W, 3)` in grey or colour, no axes."""
    image = to_unit(np.asarray(image, np.float64), value_range)
    if image.ndim == 3 and image.shape[-1] == 1:
        image = image[..., 0]
    ax.imshow(image, cmap="gray" if image.ndim == 2 else None, vmin=0, vmax=1)
    ax.axis("off")


def _note(ax, text):
    """A boxed note in the middle of a panel (e.g. a map with nothing to show)."""
    ax.text(
        0.5,
        0.5,
        text,
        transform=ax.transAxes,
        ha="center",
        va="center",
        fontsize=7,
        bbox={"fc": "white", "ec": "0.5", "alpha": 0.85},
    )


def plot_saliency_grid(
    images,
    maps,
    value_range=None,
    receptive_fields=None,
    size=2.0,
    row_labels=None,
    flagged=None,
    signed="auto",
    **options,
):
    """Attribution maps of several methods side by side, drawn with `overlay` (`004` §4.3).

    One row per image: the input, then one overlay per method (important
    areas brightened and outlined in green; the receptive field, if given,
    as a blue box). A map without any variation (e.g. Grad-CAM that is 0
    everywhere) is labelled "constant map" rather than drawn as if empty.

    Signals `(n, L, C)` with maps `(n, L)` are drawn by
    `plotting.nd.plot_signal_saliency` (one band per method under each
    signal), volumes `(n, D, H, W, C)` with maps `(n, D, H, W)` by
    `plotting.nd.plot_volume_grid` (the slice through the first map's
    maximum); `receptive_fields`, `flagged` and the overlay options apply
    to images only.

    Args:
        images: `(n, H, W, C)`.
        maps: `{column title: (n, H, W) maps}`, in column order.
        value_range: of the images, for display; `None` uses each image's range.
        receptive_fields: per image `((r0, r1), (c0, c1))`, or `None`.
        size: inches per panel.
        row_labels: per image a short text under its input panel (e.g. "true 3,
            predicted 5 (0.91)"), or `None`.
        flagged: per image whether to mark its row (in red, e.g. misclassified).
        signed: ``"auto"`` draws a column whose maps have negative values
            (`is_signed`: Gradient x Input, Integrated Gradients, occlusion,
            sum-aggregated filter saliency) with `signed_overlay`, red for
            and blue against the target on one scale per column; `False`
            draws every column with `overlay`, `True` every one signed.
        **options: passed to `overlay` (`sigma`, `low`, `high`, `brighten`, `dim`).

    Returns:
        The Figure.

    Example:
        >>> import numpy as np
        >>> fig = plot_saliency_grid(np.zeros((2, 8, 8, 1)), {"ones": np.ones((2, 8, 8))})
        >>> len(fig.axes)
        4
    """
    images = np.asarray(images)
    maps = {str(k): np.asarray(v) for k, v in maps.items()}
    ranks = {v.ndim for v in maps.values()}
    if images.ndim in (2, 3) and ranks == {2}:  # signals (n, L[, C]), maps (n, L)
        from keras_introspect.plotting.nd import plot_signal_saliency

        return plot_signal_saliency(images, maps, titles=row_labels, value_range=value_range)
    if images.ndim == 5 and ranks == {4}:  # volumes (n, D, H, W, C), maps (n, D, H, W)
        from keras_introspect.plotting.nd import plot_volume_grid

        return plot_volume_grid(images, maps, value_range=value_range, row_labels=row_labels)
    for title, value in maps.items():
        if value.shape[:1] != images.shape[:1] or value.ndim != 3:
            raise ValueError(
                f"Expected one (H, W) map per image for {title!r}: shape ({len(images)}, H, W). "
                f"Received: {value.shape}"
            )
    if signed not in ("auto", True, False):
        raise ValueError(f'Expected signed "auto", True or False. Received: signed={signed!r}')
    drawn_signed = [signed is True or (signed == "auto" and is_signed(v)) for v in maps.values()]
    limits = [float(np.abs(v).max()) or None for v in maps.values()]
    fig, axes = _grid(len(images), len(maps) + 1, size)
    for i, image in enumerate(images):
        box = None if receptive_fields is None else receptive_fields[i]
        _show(axes[i, 0], image, value_range)
        if row_labels is not None:
            bad = flagged is not None and bool(flagged[i])
            axes[i, 0].text(
                0.5,
                -0.04,
                row_labels[i],
                transform=axes[i, 0].transAxes,
                ha="center",
                va="top",
                fontsize=7,
                color="red" if bad else "black",
                fontweight="bold" if bad else "normal",
            )
        for j, value in enumerate(maps.values(), start=1):
            if drawn_signed[j - 1]:
                shown = signed_overlay(image, value[i], value_range, limit=limits[j - 1])
                if box is not None:
                    draw_box(shown, box)
            else:
                shown = overlay(image, value[i], box, value_range=value_range, **options)
            axes[i, j].imshow(shown)
            axes[i, j].axis("off")
            if np.ptp(value[i]) == 0:
                _note(axes[i, j], f"constant map ({value[i].flat[0]:.3g})")
    for ax, title in zip(axes[0], ("input", *maps), strict=True):
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return fig


def plot_occlusion(images, maps, value_range=None):
    """Occlusion maps (`004` §3.2.2): per image, the overlay above the raw map.

    The raw maps share one symmetric colour scale (red: the score drops when
    that window is occluded, blue: it rises), with a colour bar. Signals
    `(n, L, C)` with maps `(n, L)` and volumes `(n, D, H, W, C)` with maps
    `(n, D, H, W)` are drawn as in `plot_saliency_grid`.

    Args:
        images: `(n, H, W, C)`.
        maps: `(n, H, W)` score drops (`Occlusion(...).explain(images)`).
        value_range: of the images, for display; `None` uses each image's range.

    Returns:
        The Figure.

    Example:
        >>> import numpy as np
        >>> fig = plot_occlusion(np.zeros((3, 8, 8, 1)), np.ones((3, 8, 8)))
        >>> len(fig.axes)  # 2 x 3 panels and the colour bar
        7
    """
    import matplotlib.pyplot as plt

    images, maps = np.asarray(images), np.asarray(maps)
    if images.ndim in (2, 3) and maps.ndim == 2:  # signals: the map as a band beneath
        from keras_introspect.plotting.nd import plot_signal_saliency

        return plot_signal_saliency(images, {"score drop": maps}, value_range=value_range)
    if images.ndim == 5 and maps.ndim == 4:  # volumes: the slice through the largest drop
        from keras_introspect.plotting.nd import plot_volume_grid

        return plot_volume_grid(images, {"score drop": maps}, value_range=value_range)
    if maps.shape[:1] != images.shape[:1] or maps.ndim != 3:
        raise ValueError(
            f"Expected one (H, W) map per image: shape ({len(images)}, H, W). "
            f"Received: {maps.shape}"
        )
    fig, axes = plt.subplots(2, len(images), figsize=(2 * len(images), 4), squeeze=False)
    limit = float(np.abs(maps).max()) or 1.0
    for j, (image, value) in enumerate(zip(images, maps, strict=True)):
        axes[0, j].imshow(overlay(image, value, value_range=value_range))
        shown = axes[1, j].imshow(value, cmap="RdBu_r", vmin=-limit, vmax=limit)
        for ax in axes[:, j]:
            ax.axis("off")
    fig.colorbar(shown, ax=axes[1].tolist(), shrink=0.8, label="score drop")
    return fig


def plot_exemplars(exemplars, x=None, value_range=None, size=1.6):
    """The top activating images of each channel: one row per channel, best first.

    Shows the receptive-field crops when the `Exemplars` hold them, else the
    whole images `x[indices]` (pass `x`). Each panel's title is the
    activation.

    Args:
        exemplars: from `top_activating` (one channel) or `top_activating_all`.
        x: the images the exemplars index (needed when there are no crops).
        value_range: of the images, for display.
        size: inches per panel.

    Returns:
        The Figure.
    """
    indices = np.atleast_2d(exemplars.indices)
    values = np.atleast_2d(exemplars.values)
    channels = np.atleast_1d(exemplars.channels)
    crops = exemplars.crops
    if crops is not None and np.ndim(exemplars.channels) == 0:
        crops = crops[None]
    if crops is None and x is None:
        raise ValueError("These exemplars hold no crops: pass the images as `x`")
    k = indices.shape[1]
    fig, axes = _grid(len(channels), k, size)
    for r, channel in enumerate(channels):
        for j in range(k):
            shown = crops[r, j] if crops is not None else np.asarray(x[int(indices[r, j])])
            _show(axes[r, j], shown, value_range)
            axes[r, j].set_title(f"{values[r, j]:.3g}", fontsize=8)
        axes[r, 0].text(
            -0.08,
            0.5,
            f"filter {int(channel)}",
            transform=axes[r, 0].transAxes,
            ha="right",
            va="center",
            fontsize=8,
        )
    fig.suptitle(f"top activating images at {exemplars.layer}", fontsize=9)
    fig.tight_layout()
    return fig


def plot_feature_visualization(result, titles=None, value_range=None, max_images=12, size=1.8):
    """Optimised images (`AMResult`) above their objective curves (`003` Fig. 2).

    Args:
        result: an `AMResult`; for channel batches (leading `(K, n)` axes)
            every channel's images are shown in order.
        titles: one title per shown image (default: the channel, or the
            image number).
        value_range: of the images, for display (the model's input range).
        max_images: at most this many images are shown.
        size: inches per column.

    Returns:
        The Figure.
    """
    images = np.asarray(result.images)
    curves = np.asarray(result.history["objective"])
    activation = np.asarray(result.activation)
    lead = images.shape[: activation.ndim]
    images = images.reshape(-1, *images.shape[len(lead) :])[:max_images]
    curves = curves.reshape(len(curves), -1)[:, :max_images]
    activation = activation.reshape(-1)[:max_images]
    if titles is None:
        if result.channels is not None and len(lead) == 2:
            titles = [f"filter {c}" for c in result.channels for _ in range(lead[1])]
        else:
            titles = [f"image {i}" for i in range(len(images))]
    fig, axes = _grid(2, len(images), size)
    for j, image in enumerate(images):
        _show(axes[0, j], image, value_range)
        axes[0, j].set_title(f"{titles[j]}\n{activation[j]:.3g}", fontsize=8)
        axes[1, j].plot(np.arange(1, len(curves) + 1), curves[:, j], lw=1)
        axes[1, j].tick_params(labelsize=6)
        axes[1, j].set_xlabel("step", fontsize=7)
    axes[1, 0].set_ylabel("objective", fontsize=7)
    fig.tight_layout()
    return fig


def plot_histograms(histograms, ncols=4, size=2.2):
    """Activation histograms of filters (`ActivationHistogram`s), one panel each (`003` Fig. 5).

    Returns:
        The Figure.
    """
    histograms = list(histograms)
    if not histograms:
        raise ValueError("Expected at least one ActivationHistogram. Received: []")
    ncols = min(ncols, len(histograms))
    nrows = -(-len(histograms) // ncols)
    fig, axes = _grid(nrows, ncols, size, height=0.8 * size)
    for ax in axes.ravel()[len(histograms) :]:
        ax.axis("off")
    for ax, h in zip(axes.ravel(), histograms, strict=False):
        ax.bar(h.edges[:-1], h.counts, width=np.diff(h.edges), align="edge", color="0.35")
        ax.set_title(
            f"{h.layer.split('/')[-1]} filter {h.channel}\n{100 * h.share_active:.0f} % active",
            fontsize=8,
        )
        ax.tick_params(labelsize=6)
    fig.tight_layout()
    return fig


def plot_composition(composition, ax=None, cmap="tab10"):
    """Stacked bars of the labels each cluster holds (a `Composition`); returns the Axes."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(6, 0.4 * len(composition.sizes) + 1.2))
    colours = plt.get_cmap(cmap)
    left = np.zeros(len(composition.sizes))
    rows = np.arange(len(composition.sizes))
    for k, label in enumerate(composition.classes):
        share = composition.shares[:, k]
        ax.barh(rows, share, left=left, color=colours(k % colours.N), label=str(label))
        left += share
    ax.set_yticks(rows)
    ax.set_yticklabels([f"{c} ({n})" for c, n in zip(rows, composition.sizes, strict=True)])
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_xlabel("share of the cluster's images")
    ax.set_ylabel("cluster (size)")
    ax.legend(title="label", fontsize=7, bbox_to_anchor=(1.01, 1), loc="upper left")
    return ax


def _tree_layout(root):
    """x: leaves in depth-first order, parents centred; y: height above the leaves."""
    xs, ys, order = {}, {}, []

    def place(node):
        if node.is_leaf:
            xs[node.id], ys[node.id] = float(len(order)), 0.0
            order.append(node.id)
            return
        for child in node.children:
            place(child)
        xs[node.id] = float(np.mean([xs[c.id] for c in node.children]))
        ys[node.id] = 1.0 + max(ys[c.id] for c in node.children)

    place(root)
    return xs, ys


def plot_prediction_tree(tree, ax=None, image_labels=None):
    """The filter-wise prediction tree (`003` Fig. 10): each merge labelled by its critical filter.

    Leaves are the fitted images (or `image_labels`); each super node shows
    ``f<critical filter>`` and the number of filters still reachable.

    Returns:
        The Axes.
    """
    import matplotlib.pyplot as plt

    xs, ys = _tree_layout(tree.root_)
    n_leaves = sum(1 for node in tree.root_.walk() if node.is_leaf)
    if ax is None:
        _, ax = plt.subplots(figsize=(max(5.0, 0.35 * n_leaves), 4.5))
    font = 8 if n_leaves <= 30 else 6
    for node in tree.root_.walk():
        for child in node.children:
            ax.plot(
                [xs[node.id], xs[child.id], xs[child.id]],
                [ys[node.id], ys[node.id], ys[child.id]],
                color="0.4",
                lw=1,
            )
        if node.is_leaf:
            label = image_labels[node.id] if image_labels is not None else node.id
            ax.text(xs[node.id], -0.3, str(label), ha="center", va="top", fontsize=font)
        else:
            text = "root" if node.critical_filter is None else f"f{node.critical_filter}"
            ax.text(
                xs[node.id],
                ys[node.id],
                f"{text}\n{len(node.filters)}",
                ha="center",
                va="center",
                fontsize=font,
                bbox={"boxstyle": "round", "fc": "#e8f0ff", "ec": "#4060a0", "lw": 0.6},
            )
    ax.set_ylim(-1.2, max(ys.values()) + 0.8)
    ax.set_xlim(-1, n_leaves)
    ax.axis("off")
    ax.set_title(
        f"prediction tree at {tree.layer_path_}: critical filter / reachable filters", fontsize=9
    )
    return ax


def plot_history(history, ax=None):
    """Training curves of a Keras `History` (or its `.history` dict); returns the Axes."""
    import matplotlib.pyplot as plt

    curves = getattr(history, "history", history)
    if ax is None:
        _, ax = plt.subplots(figsize=(5, 3))
    for name, values in curves.items():
        ax.plot(np.arange(1, len(values) + 1), values, marker=".", label=name)
    ax.set_xlabel("epoch")
    ax.legend(fontsize=7)
    return ax
