"""The report's "rotation" section: a feature along a one-degree rotation, and Fig. 5.5.

It needs images whose rotations are known and one degree apart (Die360 in
the thesis layout), passed as `build_report(..., results={"rotation":
RotationData(x, rotations, models)})`; without them it is skipped with the
reason. It shows (`004` §5.4):

- the strip of Fig. 5.2: one feature's aggregated filter saliency along a
  one-degree sequence of images, and the same sequence as an animated PNG;
- per network, the rank correlation of that feature's maps on one-degree
  neighbours against the correlation of the images themselves;
- Fig. 5.5: the image on which the networks disagree most, its one-degree
  neighbours and a stacked bar of every network's posteriors.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

SEQUENCE_LENGTH = 12
PAIRS = 100


@dataclass
class RotationData:
    """What the "rotation" report section reads (`results={"rotation": RotationData(...)}`).

    Attributes:
        x: images `(n, H, W, C)` as the model takes them.
        rotations: their `datasets.DieRotations` (angles and one-degree neighbours).
        models: `{name: model}` compared in the disagreement figure; the
            report's model is added when absent.
        layer, channel: the feature shown along the sequence (default: the
            first layer the report inspects and its most active channel).
        start: the first image of the sequence (default: the first image with
            all six one-degree neighbours).

    Example:
        >>> x, y, rot = die360(n=1200, layout="thesis", return_rotations=True)  # doctest: +SKIP
        >>> build_report(model, x, y - 1, sections=["rotation"],
        ...              results={"rotation": RotationData(x, rot)})  # doctest: +SKIP
    """

    x: np.ndarray
    rotations: object
    models: dict = field(default_factory=dict)
    layer: str | None = None
    channel: int | None = None
    start: int | None = None


def skip_rotation(plan) -> str | None:
    """Why the rotation section does not apply: no rotation data, or no image has a neighbour."""
    data = plan.results.get("rotation")
    if data is None:
        return (
            "Skipped: this section needs images one degree of rotation apart; pass "
            "results={'rotation': RotationData(x, rotations)} with the rotations of "
            "datasets.die360(layout='thesis', return_rotations=True)."
        )
    neighbours = np.asarray(getattr(data.rotations, "neighbours", np.empty((0, 6))))
    if not (neighbours >= 0).any():
        return (
            f"Skipped: none of the {len(data.x)} images has a one-degree rotation neighbour "
            "(the uniform Die360 layout draws rotations independently; use layout='thesis')."
        )
    return None


def add_rotation(report, plan):
    """Add the strip, its animation, the correlations and the disagreement figure."""
    from keras_introspect.exceptions import LayerNotFoundError
    from keras_introspect.plotting.rotation import (
        plot_disagreement,
        plot_rotation_sequence,
        rotation_animation,
    )
    from keras_introspect.probes.rotation import (
        largest_disagreement,
        most_active_channel,
        neighbour_correlation,
        sequence_saliency,
    )
    from keras_introspect.report.document import img_block

    data = plan.results["rotation"]
    rot, x = data.rotations, np.asarray(data.x, np.float32)
    layer = data.layer or plan.layers[0]
    channel = int(plan.channels[layer][0] if data.channel is None else data.channel)
    start = data.start
    if start is None:
        full = np.flatnonzero(rot.counts == 6)
        start = int(full[0] if len(full) else np.flatnonzero(rot.counts > 0)[0])
    path = rot.sequence(start, SEQUENCE_LENGTH)
    maps = sequence_saliency(plan.model, x, path, layer, channel)
    title = "Rotation: one feature along a one-degree sequence"
    report.add_figure(
        plot_rotation_sequence(x[path], maps, rot.angles[path]),
        caption=(
            f"Aggregated (max) filter saliency of {layer} channel {channel} on images whose "
            "rotations differ by one degree from column to column (thesis Fig. 5.2); the maps "
            "share one colour scale."
        ),
        title=title,
        params={"layer": layer, "channel": channel, "images": len(path)},
    )
    report.sections[-1].blocks.append(
        img_block(
            rotation_animation(x[path], maps, format="png", fps=3, scale=4),
            "The same sequence, animated (APNG): image and saliency map.",
        )
    )
    models = dict(data.models)
    if not any(m is plan.model for m in models.values()):
        models = {plan.model.name: plan.model, **models}
    rows = []
    for name, model in models.items():
        # each network's own most active filter of the layer (its filters are its own)
        try:
            own = channel if model is plan.model else most_active_channel(model, x[:500], layer)
        except LayerNotFoundError:  # another architecture (an MLP has no pooling layer)
            continue
        if own is None:
            rows.append({"network": name, "layer": layer, "channel": "all filters are 0"})
            continue
        found = neighbour_correlation(model, x, rot, layer, own, pairs=PAIRS, seed=0)
        rows.append({"network": name, **found.table[0]})
    report.add_table(
        rows,
        caption=(
            f"Spearman rank correlation over pixels between one-degree neighbours: of the "
            f"saliency maps of each network's most active filter of {layer} and of the images "
            "themselves (mean over pairs)."
        ),
    )
    found = largest_disagreement(models, x, rot)
    report.add_figure(
        plot_disagreement(found, x, class_names=None),
        caption=(
            f"The image with the largest disagreement ({found.measure}: "
            f"{np.nanmax(found.scores):.3f}) and its one-degree neighbours, with every network's "
            "posterior as a stacked bar (thesis Fig. 5.5)."
        ),
        title="Rotation: the largest disagreement between networks",
        params={"networks": ", ".join(found.names), "image": found.index},
    )
