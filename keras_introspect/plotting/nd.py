"""Pictures of maps beyond 2-D images: signals (1-D), volumes (3-D), dense outputs.

- A signal is drawn as a line with its map beneath it, as a coloured band
  (`signal_strip` gives the same as one RGB array, for reports and files).
- A volume is drawn as a grid of slices along one axis (`plot_volume_slices`)
  and as three orthogonal slices through the map's maximum
  (`plot_orthogonal_slices`; `orthogonal_slices` gives the RGB panels).
- An explanation of a dense output (segmentation, detection head) shows the
  explained region outlined on the input (`outline_region`,
  `plot_dense_explanation`).

The RGB builders return float arrays in [0, 1]; the `plot_*` functions
return matplotlib Figures. Nothing here computes an analysis.
"""

from __future__ import annotations

import numpy as np

from keras_introspect.plotting.overlay import BLUE, is_signed, signed_overlay, to_unit

RED = (1.0, 0.1, 0.1)
#: the colour of the line of a signal in `signal_strip`
INK = (0.0, 0.0, 0.0)
AXES = ("depth", "row", "column")


def _colours(values, signed: bool, cmap=None):
    """RGB of `values` on one scale: ``RdBu_r`` symmetric around 0 when signed, else
    ``inferno`` from the minimum to the maximum."""
    from matplotlib import colormaps

    values = np.asarray(values, np.float64)
    if signed:
        top = float(np.abs(values).max()) or 1.0
        return colormaps[cmap or "RdBu_r"](0.5 + 0.5 * values / top)[..., :3]
    return colormaps[cmap or "inferno"](to_unit(values))[..., :3]


def _signal(signal):
    """`(L,)` from a signal `(L,)` or `(L, C)` (channels averaged)."""
    signal = np.asarray(signal, np.float64)
    if signal.ndim == 2:
        signal = signal.mean(axis=-1)
    if signal.ndim != 1:
        raise ValueError(f"Expected a signal of shape (L,) or (L, C). Received: {signal.shape}")
    return signal


def _check_map(saliency, shape, what="signal"):
    saliency = np.asarray(saliency, np.float64)
    if saliency.shape != tuple(shape):
        raise ValueError(
            f"Expected a map of the {what}'s shape {tuple(shape)}. Received: {saliency.shape}"
        )
    if not np.all(np.isfinite(saliency)):
        raise ValueError("Expected a finite map. Received: NaN or inf values")
    return saliency


def signal_strip(signal, saliency, height=48, band=12, value_range=None, signed="auto", cmap=None):
    """A signal and its map as one RGB picture: the line above, the map as a band below.

    Args:
        signal: `(L,)` or `(L, C)` (channels averaged for the line).
        saliency: `(L,)` map.
        height: rows of the line panel.
        band: rows of the coloured band.
        value_range: `(low, high)` of the signal for the line; `None`: its range.
        signed: ``"auto"`` (a map with negative values is drawn on ``RdBu_r``
            around 0, else on ``inferno``), True or False.
        cmap: another matplotlib colour map for the band.

    Returns:
        float `(height + band, L, 3)` in [0, 1]: white with the line in black
        (each column joined to the next), the band one colour per sample.

    Example:
        >>> import numpy as np
        >>> rgb = signal_strip(np.sin(np.arange(64) / 4), np.arange(64.0))
        >>> rgb.shape, bool(rgb[-1, -1].sum() > rgb[-1, 0].sum())   # bright where high
        ((60, 64, 3), True)
    """
    signal = _signal(signal)
    saliency = _check_map(saliency, signal.shape)
    if signed not in ("auto", True, False):
        raise ValueError(f'Expected signed "auto", True or False. Received: signed={signed!r}')
    signed = is_signed(saliency) if signed == "auto" else signed
    length = len(signal)
    top = np.ones((height, length, 3))
    rows = np.round((1.0 - to_unit(signal, value_range)) * (height - 1)).astype(int)
    for i in range(length):
        j = rows[min(i + 1, length - 1)]
        low, high = min(rows[i], j), max(rows[i], j)
        top[low : high + 1, i] = INK
    colours = _colours(saliency, signed, cmap)
    return np.concatenate([top, np.repeat(colours[None], band, axis=0)], axis=0)


def plot_signal_saliency(
    signals, maps, titles=None, style="band", value_range=None, signed="auto", size=(6.0, 1.4)
):
    """Signals with their maps beneath them: one row per signal and map.

    Args:
        signals: `(n, L)` or `(n, L, C)`.
        maps: `(n, L)` maps, or `{title: (n, L)}` for several methods (one
            band or line each, in order).
        titles: per signal a title, or `None`.
        style: ``"band"`` (the map as a coloured band under the signal) or
            ``"line"`` (the map as a line under the signal).
        value_range: of the signals (for the line); `None`: each its own.
        signed: as in `signal_strip`.
        size: inches `(width, height)` of one signal's panels.

    Returns:
        The Figure.

    Example:
        >>> import numpy as np
        >>> fig = plot_signal_saliency(np.zeros((2, 32)), np.ones((2, 32)))
        >>> len(fig.axes)   # per signal: the line, one band
        4
    """
    import matplotlib.pyplot as plt

    signals = np.asarray(signals, np.float64)
    if signals.ndim not in (2, 3):
        raise ValueError(f"Expected signals (n, L) or (n, L, C). Received: {signals.shape}")
    maps = maps if isinstance(maps, dict) else {"": maps}
    maps = {str(k): np.asarray(v, np.float64) for k, v in maps.items()}
    for name, value in maps.items():
        if value.shape != signals.shape[:2]:
            raise ValueError(
                f"Expected maps {name!r} of shape {signals.shape[:2]}, one per signal. "
                f"Received: {value.shape}"
            )
    if style not in ("band", "line"):
        raise ValueError(f'Expected style "band" or "line". Received: style={style!r}')
    n, k = len(signals), len(maps)
    ratios = ([3] + [1] * k) * n
    fig, axes = plt.subplots(
        n * (k + 1),
        1,
        figsize=(size[0], size[1] * n * (1 + 0.35 * k)),
        gridspec_kw={"height_ratios": ratios, "hspace": 0.08},
        squeeze=False,
    )
    axes = axes[:, 0]
    positions = np.arange(signals.shape[1])
    for i in range(n):
        ax = axes[i * (k + 1)]
        line = _signal(signals[i])
        ax.plot(positions, line, color="black", linewidth=0.8)
        ax.set_xlim(-0.5, len(line) - 0.5)
        if value_range is not None:
            ax.set_ylim(*value_range)
        ax.set_xticks([])
        ax.set_yticks([])
        if titles is not None:
            ax.text(
                0.005,
                0.96,
                str(titles[i]),
                transform=ax.transAxes,
                ha="left",
                va="top",
                fontsize=7,
                bbox={"fc": "white", "ec": "none", "alpha": 0.8, "pad": 1},
            )
        for j, (name, value) in enumerate(maps.items(), start=1):
            band = axes[i * (k + 1) + j]
            drawn_signed = is_signed(value[i]) if signed == "auto" else bool(signed)
            if style == "band":
                band.imshow(
                    _colours(value[i], drawn_signed)[None],
                    aspect="auto",
                    interpolation="nearest",
                    extent=(-0.5, len(line) - 0.5, 0, 1),
                )
            else:
                band.fill_between(positions, value[i], color="C3", linewidth=0.6)
                band.set_xlim(-0.5, len(line) - 0.5)
            band.set_xticks([])
            band.set_yticks([])
            if name:
                band.set_ylabel(name, rotation=0, ha="right", va="center", fontsize=7)
    return fig


def _volume(volume):
    """`(D, H, W)` grey from `(D, H, W)` or `(D, H, W, C)`."""
    volume = np.asarray(volume, np.float64)
    if volume.ndim == 4:
        volume = volume.mean(axis=-1)
    if volume.ndim != 3:
        raise ValueError(
            f"Expected a volume of shape (D, H, W) or (D, H, W, C). Received: {volume.shape}"
        )
    return volume


def heat_overlay(image, saliency, value_range=None, limit=None, strength=0.8, cmap="inferno"):
    """An unsigned map blended on its grey image: each pixel moves towards the colour
    of `saliency / limit` on `cmap` by `strength * saliency / limit`.

    Small images (slices of volumes, dense outputs) show a map better this way
    than with the thesis' outline (`overlay`), which needs room around a region.

    Args:
        image: `(H, W)`, `(H, W, 1)` or `(H, W, 3)`.
        saliency: `(H, W)`; negative values count as 0.
        value_range: of the image; `None`: its range.
        limit: the value that takes the full colour (default: the map's maximum).
        strength: 0..1, the blend at `limit`.

    Returns:
        float `(H, W, 3)` in [0, 1].

    Example:
        >>> import numpy as np
        >>> rgb = heat_overlay(np.zeros((2, 2)), np.array([[0.0, 1.0], [0.0, 0.0]]), strength=1)
        >>> rgb[0, 0].tolist(), bool(rgb[0, 1].sum() > 2)    # grey, a bright colour
        ([0.0, 0.0, 0.0], True)
    """
    from matplotlib import colormaps

    image = np.asarray(image, np.float64)
    if image.ndim == 3:
        image = image.mean(axis=-1)
    saliency = np.clip(_check_map(saliency, image.shape, "image"), 0.0, None)
    grey = np.repeat(to_unit(image, value_range)[..., None], 3, axis=-1)
    top = float(saliency.max()) if limit is None else float(limit)
    if top <= 0:
        return grey
    scaled = np.clip(saliency / top, 0.0, 1.0)
    alpha = strength * scaled[..., None]
    return (1.0 - alpha) * grey + alpha * colormaps[cmap](scaled)[..., :3]


def _slice_overlay(image, saliency, value_range, signed, limit):
    if signed:
        return signed_overlay(image, saliency, value_range, limit=limit)
    return heat_overlay(image, saliency, value_range, limit)


def _check_axis(axis):
    if isinstance(axis, str) and axis in AXES:
        return AXES.index(axis)
    if isinstance(axis, bool) or axis not in (0, 1, 2, -1, -2, -3):
        raise ValueError(f"Expected `axis` 0, 1, 2 or one of {list(AXES)}. Received: {axis!r}")
    return axis % 3


def peak(saliency) -> tuple:
    """The position of the largest |value| of a map (the first one on ties)."""
    saliency = np.asarray(saliency)
    return tuple(int(i) for i in np.unravel_index(np.argmax(np.abs(saliency)), saliency.shape))


def volume_slices(shape, axis=0, n_slices=8, saliency=None) -> list:
    """Indices of `n_slices` evenly spaced slices along `axis` of a volume `shape`.

    With `saliency` the slice through its maximum is always among them (it
    replaces the nearest evenly spaced one).
    """
    axis = _check_axis(axis)
    size = int(shape[axis])
    n_slices = max(1, min(int(n_slices), size))
    picked = list(np.unique(np.round(np.linspace(0, size - 1, n_slices)).astype(int)))
    if saliency is not None:
        best = peak(saliency)[axis]
        if best not in picked:
            picked[int(np.argmin([abs(p - best) for p in picked]))] = best
    return sorted(int(p) for p in picked)


def plot_volume_slices(
    volume,
    saliency=None,
    axis=0,
    n_slices=8,
    ncols=4,
    value_range=None,
    signed="auto",
    size=1.6,
):
    """A grid of slices of a volume along `axis`, with the map drawn on each.

    Args:
        volume: `(D, H, W)` or `(D, H, W, C)`.
        saliency: `(D, H, W)` map or `None` (the volume alone).
        axis: 0, 1, 2 or ``"depth"``, ``"row"``, ``"column"``.
        n_slices: how many evenly spaced slices (the slice through the map's
            maximum is always one of them, see `volume_slices`).
        ncols: panels per row.
        value_range: of the volume, for display; `None`: its range.
        signed: ``"auto"``: a map with negative values is drawn with
            `signed_overlay`, else with `heat_overlay` (one scale for the volume).
        size: inches per panel.

    Returns:
        The Figure; each panel is titled with its axis and index.

    Example:
        >>> import numpy as np
        >>> fig = plot_volume_slices(np.zeros((6, 8, 8)), np.ones((6, 8, 8)), n_slices=3)
        >>> [ax.get_title() for ax in fig.axes if ax.get_title()]
        ['depth 0', 'depth 2', 'depth 5']
    """
    import matplotlib.pyplot as plt

    volume = _volume(volume)
    axis = _check_axis(axis)
    if saliency is not None:
        saliency = _check_map(saliency, volume.shape, "volume")
    value_range = value_range or (float(volume.min()), float(volume.max()))
    drawn_signed = saliency is not None and (
        is_signed(saliency) if signed == "auto" else bool(signed)
    )
    limit = None if saliency is None else (float(np.abs(saliency).max()) or None)
    picked = volume_slices(volume.shape, axis, n_slices, saliency)
    ncols = max(1, min(int(ncols), len(picked)))
    nrows = -(-len(picked) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, size * nrows), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, index in zip(axes.ravel(), picked, strict=False):
        image = np.take(volume, index, axis=axis)
        if saliency is None:
            shown = np.repeat(to_unit(image, value_range)[..., None], 3, axis=-1)
        else:
            part = np.take(saliency, index, axis=axis)
            shown = _slice_overlay(image, part, value_range, drawn_signed, limit)
        ax.imshow(shown, interpolation="nearest")
        ax.set_title(f"{AXES[axis]} {index}", fontsize=8)
    fig.tight_layout()
    return fig


def orthogonal_slices(
    volume, saliency, position=None, value_range=None, signed="auto", crosshair="ticks"
):
    """Three RGB slices of a volume through one point, with the map and a crosshair.

    Args:
        volume: `(D, H, W)` or `(D, H, W, C)`.
        saliency: `(D, H, W)` map.
        position: `(d, h, w)`; `None`: the map's maximum |value| (`peak`).
        value_range, signed: as in `plot_volume_slices`.
        crosshair: how `position` is marked, in blue: ``"ticks"`` (its row
            and column on the panel's four edges, the map left free),
            ``"lines"`` (whole lines) or `None`.

    Returns:
        `(position, [depth slice (H, W, 3), row slice (D, W, 3), column slice
        (D, H, 3)])`.

    Example:
        >>> import numpy as np
        >>> saliency = np.zeros((4, 5, 6)); saliency[1, 2, 3] = 1.0
        >>> position, panels = orthogonal_slices(np.zeros((4, 5, 6)), saliency)
        >>> position, [p.shape for p in panels]
        ((1, 2, 3), [(5, 6, 3), (4, 6, 3), (4, 5, 3)])
    """
    volume = _volume(volume)
    saliency = _check_map(saliency, volume.shape, "volume")
    position = peak(saliency) if position is None else tuple(int(p) for p in position)
    inside = len(position) == 3 and all(
        0 <= p < n for p, n in zip(position, volume.shape, strict=True)
    )
    if not inside:
        raise ValueError(
            f"Expected a position (d, h, w) inside the volume {volume.shape}. Received: {position}"
        )
    if crosshair not in ("ticks", "lines", None):
        raise ValueError(
            f'Expected crosshair "ticks", "lines" or None. Received: crosshair={crosshair!r}'
        )
    value_range = value_range or (float(volume.min()), float(volume.max()))
    drawn_signed = is_signed(saliency) if signed == "auto" else bool(signed)
    limit = float(np.abs(saliency).max()) or None
    panels = []
    for axis in range(3):
        image = np.take(volume, position[axis], axis=axis)
        part = np.take(saliency, position[axis], axis=axis)
        shown = _slice_overlay(image, part, value_range, drawn_signed, limit)
        row, col = [p for a, p in enumerate(position) if a != axis]
        if crosshair == "lines":
            shown[row, :] = BLUE
            shown[:, col] = BLUE
        elif crosshair == "ticks":
            shown[row, [0, -1]] = BLUE
            shown[[0, -1], col] = BLUE
        panels.append(shown)
    return position, panels


def plot_orthogonal_slices(volume, saliency, position=None, value_range=None, signed="auto"):
    """The three orthogonal slices through the map's maximum (or `position`), side by side.

    See `orthogonal_slices`; each panel is titled with the slice it shows, and
    thin blue lines cross at `position`.

    Example:
        >>> import numpy as np
        >>> saliency = np.zeros((4, 5, 6)); saliency[1, 2, 3] = 1.0
        >>> fig = plot_orthogonal_slices(np.zeros((4, 5, 6)), saliency)
        >>> [ax.get_title() for ax in fig.axes]
        ['depth 1', 'row 2', 'column 3']
    """
    import matplotlib.pyplot as plt

    position, panels = orthogonal_slices(
        volume, saliency, position, value_range, signed, crosshair=None
    )
    fig, axes = plt.subplots(1, 3, figsize=(7.5, 2.7))
    for axis, (ax, panel) in enumerate(zip(axes, panels, strict=True)):
        ax.imshow(panel, interpolation="nearest")
        row, col = [p for a, p in enumerate(position) if a != axis]
        ax.axhline(row, color=BLUE, linewidth=0.6, alpha=0.6)
        ax.axvline(col, color=BLUE, linewidth=0.6, alpha=0.6)
        ax.set_title(f"{AXES[axis]} {position[axis]}", fontsize=9)
        ax.axis("off")
    fig.tight_layout()
    return fig


def _upscale(mask, shape):
    """A region mask of an output's size drawn at the input's `shape` (integer strides)."""
    if mask.shape == tuple(shape):
        return mask
    factors = [s // m if m and s % m == 0 else 0 for s, m in zip(shape, mask.shape, strict=False)]
    if len(factors) != len(shape) or 0 in factors:
        raise ValueError(
            f"Expected a region of the input's spatial shape {tuple(shape)} or of a shape that "
            f"divides it (an output with an integer stride). Received: {mask.shape}"
        )
    return np.kron(mask, np.ones(factors, bool)).astype(bool)


def outline_region(image, region, saliency=None, value_range=None, colour=RED, output_shape=None):
    """The input with the explained region of a dense output outlined (and the map on it).

    Args:
        image: `(H, W)`, `(H, W, 1)` or `(H, W, 3)`.
        region: a boolean mask, or any `region` of `targets.Class` /
            `targets.Output` (or such a target): on the output's spatial
            axes, which may be the input's size or divide it (a detection
            head of stride 4: each output position covers a 4 x 4 block).
        saliency: `(H, W)` map drawn under the outline (`heat_overlay`, or
            `signed_overlay` for a map with negative values), or `None`.
        value_range: of the image values; `None`: its range.
        colour: RGB of the outline.
        output_shape: the output's spatial shape, needed for a box or a
            position region; `None`: the mask's shape, or the image's.

    Returns:
        float `(H, W, 3)` in [0, 1]; the pixels on the inner border of the
        region have the outline colour.

    Example:
        >>> import numpy as np
        >>> rgb = outline_region(np.zeros((8, 8)), np.s_[2:6, 2:6])
        >>> rgb[2, 2].tolist(), rgb[3, 3].tolist()
        ([1.0, 0.1, 0.1], [0.0, 0.0, 0.0])
    """
    from skimage.segmentation import find_boundaries

    from keras_introspect.targets import region_mask

    image = np.asarray(image, np.float64)
    spatial = image.shape[:2]
    if saliency is None:
        grey = image.mean(axis=-1) if image.ndim == 3 else image
        shown = np.repeat(to_unit(grey, value_range)[..., None], 3, axis=-1)
    elif is_signed(saliency):
        shown = signed_overlay(image, saliency, value_range)
    else:
        shown = heat_overlay(image, saliency, value_range)
    mask_like = isinstance(region, np.ndarray) and region.dtype == bool
    shape = output_shape or (region.shape if mask_like else spatial)
    mask = region_mask(region, shape)
    if mask.ndim != 2:
        raise ValueError(f"Expected one region for this image. Received: shape {mask.shape}")
    mask = _upscale(mask, spatial)
    shown[find_boundaries(mask, mode="inner") | (mask & _edge(mask))] = colour
    return shown


def _edge(mask):
    """The positions on the image's own border (`find_boundaries` leaves them out)."""
    edge = np.zeros(mask.shape, bool)
    edge[0, :] = edge[-1, :] = edge[:, 0] = edge[:, -1] = True
    return edge


def plot_dense_explanation(
    images, maps, region, titles=None, value_range=None, output_shape=None, size=2.2
):
    """Explanations of a dense output: per image the input with the region outlined,
    and each map with the same outline.

    Args:
        images: `(n, H, W, C)`.
        maps: `(n, H, W)`, or `{title: (n, H, W)}` for several methods.
        region: the explained region (see `outline_region`), one for all
            images or one per image (`(n, h, w)` masks, `(n, 2)` positions);
            a `targets.Class` / `targets.Output` gives its own.
        titles: per image a title, or `None`.
        value_range: of the images; `None`: each its own.
        output_shape: see `outline_region`.
        size: inches per panel.

    Returns:
        The Figure.

    Example:
        >>> import numpy as np
        >>> fig = plot_dense_explanation(np.zeros((2, 8, 8, 1)), np.ones((2, 8, 8)), (3, 4))
        >>> len(fig.axes)
        4
    """
    import matplotlib.pyplot as plt

    from keras_introspect.targets import region_mask

    images = np.asarray(images)
    maps = maps if isinstance(maps, dict) else {"map": maps}
    maps = {str(k): np.asarray(v) for k, v in maps.items()}
    n = len(images)
    for name, value in maps.items():
        if value.shape != (n, *images.shape[1:3]):
            raise ValueError(
                f"Expected maps {name!r} of shape {(n, *images.shape[1:3])}. "
                f"Received: {value.shape}"
            )
    mask_like = isinstance(region, np.ndarray) and region.dtype == bool
    shape = output_shape or (region.shape[-2:] if mask_like else images.shape[1:3])
    masks = region_mask(region, shape)
    if masks.ndim == 2:
        masks = np.broadcast_to(masks, (n, *masks.shape))
    if len(masks) != n:
        raise ValueError(f"Expected one region per image ({n}). Received: {len(masks)}")
    fig, axes = plt.subplots(n, len(maps) + 1, figsize=(size * (len(maps) + 1), size * n))
    axes = np.asarray(axes).reshape(n, len(maps) + 1)
    for i in range(n):
        panels = [outline_region(images[i], masks[i], value_range=value_range)]
        panels += [
            outline_region(images[i], masks[i], v[i], value_range=value_range)
            for v in maps.values()
        ]
        for ax, panel in zip(axes[i], panels, strict=True):
            ax.imshow(panel, interpolation="nearest")
            ax.axis("off")
        if titles is not None:
            axes[i, 0].set_title(str(titles[i]), fontsize=8)
    for ax, name in zip(axes[0, 1:], maps, strict=True):
        ax.set_title(name, fontsize=9)
    fig.tight_layout()
    return fig


def montage(panels, gap=1):
    """RGB panels side by side, top-aligned on white, `gap` white columns between them."""
    height = max(p.shape[0] for p in panels)
    parts = []
    for i, panel in enumerate(panels):
        padded = np.ones((height, panel.shape[1], 3))
        padded[: panel.shape[0]] = panel
        parts.append(padded)
        if i < len(panels) - 1:
            parts.append(np.ones((height, gap, 3)))
    return np.concatenate(parts, axis=1)


def plot_volume_grid(volumes, maps, axis=0, value_range=None, row_labels=None, size=2.0):
    """Maps of several methods on volumes: per volume the slice through the first
    map's maximum along `axis`, then each map on that slice (`plot_saliency_grid` for
    volumes).

    Args:
        volumes: `(n, D, H, W, C)` or `(n, D, H, W)`.
        maps: `{title: (n, D, H, W)}`.
        axis: the slicing axis (0, 1, 2 or ``"depth"``, ``"row"``, ``"column"``).
        value_range: of the volumes; `None`: each its own.
        row_labels: per volume a text, or `None`.
        size: inches per panel.

    Returns:
        The Figure.

    Example:
        >>> import numpy as np
        >>> maps = {"a": np.ones((2, 4, 6, 6)), "b": np.zeros((2, 4, 6, 6))}
        >>> fig = plot_volume_grid(np.zeros((2, 4, 6, 6, 1)), maps)
        >>> len(fig.axes)
        6
    """
    import matplotlib.pyplot as plt

    volumes = np.asarray(volumes, np.float64)
    maps = {str(k): np.asarray(v, np.float64) for k, v in maps.items()}
    if volumes.ndim == 4:
        volumes = volumes[..., None]
    if volumes.ndim != 5 or not maps:
        raise ValueError(
            f"Expected volumes (n, D, H, W, C) and at least one map. Received: {volumes.shape}"
        )
    for name, value in maps.items():
        if value.shape != volumes.shape[:4]:
            raise ValueError(
                f"Expected maps {name!r} of shape {volumes.shape[:4]}. Received: {value.shape}"
            )
    axis = _check_axis(axis)
    n = len(volumes)
    fig, axes = plt.subplots(
        n, len(maps) + 1, figsize=(size * (len(maps) + 1), size * n), squeeze=False
    )
    first = next(iter(maps.values()))
    for i in range(n):
        volume = _volume(volumes[i])
        index = peak(first[i])[axis]
        vrange = value_range or (float(volume.min()), float(volume.max()))
        image = np.take(volume, index, axis=axis)
        axes[i, 0].imshow(to_unit(image, vrange), cmap="gray", vmin=0, vmax=1)
        label = f"{AXES[axis]} {index}"
        if row_labels is not None:
            label = f"{row_labels[i]}\n{label}"
        axes[i, 0].set_ylabel(label, fontsize=7)
        for j, value in enumerate(maps.values(), start=1):
            signed = is_signed(value[i])
            limit = float(np.abs(value[i]).max()) or None
            part = np.take(value[i], index, axis=axis)
            axes[i, j].imshow(_slice_overlay(image, part, vrange, signed, limit))
    for ax in axes.ravel():
        ax.set_xticks([])
        ax.set_yticks([])
    for ax, title in zip(axes[0], ("input", *maps), strict=True):
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return fig


def slice_grid(
    volume, saliency, axis=0, n_slices=8, ncols=4, value_range=None, signed="auto", gap=1
):
    """`plot_volume_slices` as one RGB array: the slices in a grid, white between them.

    Args:
        volume: `(D, H, W)` or `(D, H, W, C)`; saliency: `(D, H, W)`.
        axis, n_slices, ncols, value_range, signed: as in `plot_volume_slices`.
        gap: white pixels between panels.

    Returns:
        `(indices, rgb)`: the slice indices (row by row) and the float RGB grid.

    Example:
        >>> import numpy as np
        >>> saliency = np.zeros((6, 4, 5)); saliency[3, 1, 1] = 1.0
        >>> indices, rgb = slice_grid(np.zeros((6, 4, 5)), saliency, n_slices=3, ncols=2)
        >>> indices, rgb.shape        # 2 rows of 4 + a gap, 2 columns of 5 + a gap
        ([0, 3, 5], (9, 11, 3))
    """
    volume = _volume(volume)
    saliency = _check_map(saliency, volume.shape, "volume")
    axis = _check_axis(axis)
    value_range = value_range or (float(volume.min()), float(volume.max()))
    drawn_signed = is_signed(saliency) if signed == "auto" else bool(signed)
    limit = float(np.abs(saliency).max()) or None
    indices = volume_slices(volume.shape, axis, n_slices, saliency)
    ncols = max(1, min(int(ncols), len(indices)))
    nrows = -(-len(indices) // ncols)
    h, w = np.take(volume, 0, axis=axis).shape
    grid = np.ones((nrows * (h + gap) - gap, ncols * (w + gap) - gap, 3))
    for k, index in enumerate(indices):
        r, c = divmod(k, ncols)
        panel = _slice_overlay(
            np.take(volume, index, axis=axis),
            np.take(saliency, index, axis=axis),
            value_range,
            drawn_signed,
            limit,
        )
        grid[r * (h + gap) : r * (h + gap) + h, c * (w + gap) : c * (w + gap) + w] = panel
    return indices, grid
