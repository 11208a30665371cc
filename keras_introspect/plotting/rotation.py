"""Figures of what changes along a one-degree rotation (`004` Figs 5.2-5.5, Table 5.2).

They draw the results of `probes.rotation` (and exemplar images computed by
`optimize`); they compute nothing but presentation.
"""

from __future__ import annotations

import numpy as np


def _grey(image):
    image = np.asarray(image, np.float32)
    return image[..., 0] if image.ndim == 3 and image.shape[-1] == 1 else image


def _shared_scale(maps):
    """Maps scaled by their common maximum |value| to [0, 1] (so changes between frames show)."""
    maps = np.abs(np.asarray(maps, np.float32))
    top = float(maps.max())
    return maps / top if top > 0 else maps


def plot_rotation_sequence(images, maps, angles=None, title=None, size=1.3, cmap="inferno"):
    """Strip figure: a one-degree sequence of images above the same feature's saliency (Fig. 5.2).

    Args:
        images: `(L, H, W)` or `(L, H, W, 1)` in [0, 1].
        maps: `(L, H, W)` saliency maps (`probes.rotation.sequence_saliency`),
            shown on one shared scale (the largest |value| of the sequence).
        angles: `(L, 3)` rotations, written under each column.
        title: of the figure.
        size: of each panel, in inches.
        cmap: of the maps.

    Returns:
        the matplotlib Figure (2 rows, L columns).
    """
    import matplotlib.pyplot as plt

    images = [_grey(i) for i in images]
    scaled = _shared_scale(maps)
    fig, axes = plt.subplots(
        2, len(images), figsize=(size * len(images), 2.3 * size), squeeze=False
    )
    for k, (image, heat) in enumerate(zip(images, scaled, strict=True)):
        axes[0, k].imshow(image, cmap="gray", vmin=0, vmax=1)
        axes[1, k].imshow(heat, cmap=cmap, vmin=0, vmax=1)
        if angles is not None:
            axes[1, k].set_xlabel(
                "({}, {}, {})".format(*np.asarray(angles[k]).tolist()), fontsize=7
            )
        for ax in axes[:, k]:
            ax.set_xticks([])
            ax.set_yticks([])
    axes[0, 0].set_ylabel("image", fontsize=8)
    axes[1, 0].set_ylabel("saliency", fontsize=8)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return fig


def rotation_animation(images, maps, format="gif", fps=4.0, scale=4, cmap="inferno"):
    """The sequence as an animation: each frame the image beside its saliency map.

    Args:
        images, maps, cmap: as for `plot_rotation_sequence` (maps on one shared scale).
        format: ``"gif"`` or ``"png"`` (APNG).
        fps: frames per second.
        scale: each pixel becomes a `scale x scale` block.

    Returns:
        The file's bytes (one frame per image, looping).
    """
    import matplotlib

    from keras_introspect._files import animation_bytes
    from keras_introspect._validation import check_positive_int

    scale = check_positive_int(scale, "scale")
    colours = matplotlib.colormaps[cmap]
    frames = []
    for image, heat in zip(images, _shared_scale(maps), strict=True):
        grey = np.repeat(np.clip(_grey(image), 0, 1)[..., None], 3, -1)
        gap = np.ones((grey.shape[0], 1, 3), np.float32)
        tile = np.concatenate([grey, gap, colours(heat)[..., :3]], 1)
        tile = np.kron(tile, np.ones((scale, scale, 1)))
        frames.append((255 * tile).round().astype(np.uint8))
    return animation_bytes(frames, format, fps)


def save_rotation_animation(path, images, maps, fps=4.0, scale=4, cmap="inferno"):
    """Write `rotation_animation` to `path` (``.gif``, ``.png`` or ``.apng``) atomically.

    Returns:
        The path.
    """
    from keras_introspect._files import animation_format, check_output_path, write_atomic

    path = check_output_path(path, "animation")
    fmt = animation_format(path)
    return write_atomic(path, rotation_animation(images, maps, fmt, fps, scale, cmap))


def plot_disagreement(result, x, class_names=None, size=1.2):
    """Fig. 5.5: the image with the largest disagreement, its neighbours, every network's posterior.

    One row per image (the image with the largest disagreement first, then
    its one-degree neighbours): the image, and a stacked bar per network of
    its posterior over the classes.

    Args:
        result: `probes.rotation.Disagreement`.
        x: the images it indexes, `(n, H, W, 1)`.
        class_names: names of the classes (default: the indices).
        size: row height in inches.

    Returns:
        the matplotlib Figure.
    """
    import matplotlib.pyplot as plt

    posteriors = np.asarray(result.posteriors)
    networks, rows, classes = posteriors.shape
    names = class_names or [str(c) for c in range(classes)]
    colours = plt.get_cmap("tab10")(np.arange(classes) % 10)
    fig, axes = plt.subplots(
        rows,
        2,
        figsize=(2.2 + 0.45 * networks, size * rows + 0.6),
        gridspec_kw={"width_ratios": [1, max(2.0, 0.35 * networks)]},
        squeeze=False,
    )
    for k, image in enumerate(result.images):
        axes[k, 0].imshow(_grey(np.asarray(x)[image]), cmap="gray", vmin=0, vmax=1)
        axes[k, 0].set_xticks([])
        axes[k, 0].set_yticks([])
        role = "largest disagreement" if k == 0 else "neighbour"
        axes[k, 0].set_ylabel(f"{role}\n#{int(image)}", fontsize=7)
        bottom = np.zeros(networks)
        for c in range(classes):
            axes[k, 1].bar(
                np.arange(networks),
                posteriors[:, k, c],
                bottom=bottom,
                color=colours[c],
                label=names[c] if k == 0 else None,
            )
            bottom += posteriors[:, k, c]
        axes[k, 1].set_ylim(0, 1)
        axes[k, 1].set_xticks(np.arange(networks))
        axes[k, 1].set_xticklabels(result.names if k == rows - 1 else [], fontsize=7)
        axes[k, 1].tick_params(axis="y", labelsize=6)
    axes[0, 1].legend(ncol=min(classes, 6), fontsize=6, loc="lower left", bbox_to_anchor=(0, 1.02))
    fig.tight_layout()
    return fig


def plot_layer_exemplars(exemplars, size=0.9):
    """Table 5.2: exemplars of each pooling layer's filters, one block per network and layer.

    Args:
        exemplars: `{network: {layer: images (filters, h, w[, 1])}}` (e.g.
            activation maximization of each filter's receptive field).
        size: of each image, in inches.

    Returns:
        the matplotlib Figure: one row per network, for each layer its
        filters side by side (each image scaled to its own range).
    """
    import matplotlib.pyplot as plt

    networks = list(exemplars)
    depth = max(len(layers) for layers in exemplars.values())
    filters = max(len(images) for layers in exemplars.values() for images in layers.values())
    fig, axes = plt.subplots(
        len(networks),
        depth * filters,
        figsize=(size * depth * filters + 0.8, size * len(networks) + 0.4),
        squeeze=False,
    )
    for r, network in enumerate(networks):
        for d, (layer, images) in enumerate(exemplars[network].items()):
            for f, image in enumerate(images):
                ax = axes[r, d * filters + f]
                ax.imshow(_grey(image), cmap="gray")
                ax.set_title(f"{layer}/{f}", fontsize=6)
        for ax in axes[r]:
            ax.set_xticks([])
            ax.set_yticks([])
            if not ax.images:
                ax.axis("off")
        axes[r, 0].set_ylabel(network, fontsize=8)
    fig.tight_layout()
    return fig
