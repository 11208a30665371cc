"""The report's "concepts" section: the concepts of each class, found without labels.

For every class (at most `MAX_CLASSES`, the images of that label, at most
`IMAGES_PER_CLASS`) a `ConceptDiscovery` with the Dirichlet-process mixture
(which counts the concepts) is fitted on crops of the images at the deepest
chosen layer with non-negative feature maps; the section shows

- the concepts as exemplar grids (the crops that express each most),
- concept maps over a few images of the class,
- the concepts' importance for the class (CRAFT's Sobol total indices),
- the number of concepts the Dirichlet process finds at every chosen layer
  with non-negative feature maps, per class (000: fewer, larger clusters
  deeper).

Precomputed discoveries can be passed as `build_report(...,
results={"concepts": {class: fitted ConceptDiscovery}})`; the counts per
layer are then computed for the other layers only.
"""

from __future__ import annotations

import numpy as np

MAX_CLASSES = 6
IMAGES_PER_CLASS = 24
SHOWN = 3
EXEMPLARS = 8


def concept_layers(plan) -> list:
    """The chosen layers with 2-D feature maps and non-negative values (on a few images)."""
    out = []
    for path in plan.layers:
        info = plan.intro.layer(path)
        shape = info.output_shape
        if not isinstance(shape, tuple) or len(shape) != 4 or info.channel_axis not in (-1, 3):
            continue
        sample = plan.intro.activations(plan.x[:8], path)[path]
        if sample.min() >= 0 and sample.max() > 0:
            out.append(info.path)
    return out


def skip_concepts(plan):
    """Why the section does not apply: no classifier, or no layer with non-negative maps."""
    if not plan.classifier:
        return "Concepts are found per class; the explained output is not a classifier's."
    if plan.x.ndim != 4:
        return "Concepts are found in crops of images (n, height, width, channels)."
    if not concept_layers(plan):
        return (
            "None of the chosen layers has 2-D feature maps with non-negative values "
            "(after a ReLU); choose such layers with `layers=`."
        )
    return None


def add_concepts(report, plan):
    """Add the "concepts" section to `report` (see the module docstring)."""
    from keras_introspect.concepts import ConceptDiscovery
    from keras_introspect.plotting.concepts import (
        plot_concept_counts,
        plot_concept_exemplars,
        plot_concept_importance,
        plot_concept_maps,
    )

    layers = concept_layers(plan)
    deepest = layers[-1]
    given = plan.results.get("concepts") or {}
    classes = [int(c) for c in np.unique(plan.y)][:MAX_CLASSES]
    counts = []
    for cls in classes:
        x = plan.x[plan.y == cls][:IMAGES_PER_CLASS]
        if len(x) < 2:
            continue
        found = {}
        for layer in layers:
            if layer == deepest and cls in given:
                found[layer] = given[cls]
            else:
                found[layer] = ConceptDiscovery(
                    plan.model,
                    layer,
                    method="dpgmm",
                    target=plan.class_target(cls),
                    random_state=0,
                ).fit(x)
            counts.append({"class": cls, "layer": layer, "n_concepts": found[layer].n_concepts_})
        cd = found[deepest]
        names = [f"concept {k}" for k in range(cd.n_concepts_)]
        importance = cd.importance(x, nb_design=16)
        params = {
            "layer": deepest,
            "images": len(x),
            "crops": f"{cd.n_crops_} ({cd.crops})",
            "concepts (DPGMM)": cd.n_concepts_,
        }
        report.add_figure(
            plot_concept_exemplars(
                cd.exemplars(EXEMPLARS), value_range=plan.value_range, names=names
            ),
            f"class {cls}: the crops that express each concept most (one row per concept)",
            title=f"Concepts of class {cls}",
            params=params,
        )
        shown = x[:SHOWN]
        report.add_figure(
            plot_concept_maps(
                shown, cd.concept_maps(shown), value_range=plan.value_range, names=names
            ),
            f"class {cls}: where each concept is in {len(shown)} images (coefficients at "
            "every position of the layer, upsampled), and the strongest concept per pixel",
        )
        report.add_figure(
            plot_concept_importance(importance, names=names).figure,
            f"class {cls}: importance of each concept for the class score (Sobol total "
            "indices over concept masks, as CRAFT)",
        )
    if counts:
        report.add_figure(
            plot_concept_counts(counts).figure,
            "concepts the Dirichlet-process mixture finds at each layer, per class",
            title="Concepts per layer",
        )
        report.add_table(counts, title="Concepts per layer and class (DPGMM)")
