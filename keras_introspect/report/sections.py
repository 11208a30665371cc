"""The sections `build_report` can write: one registry, one function per section.

A section is a function `add(report, plan)` (or `add(report, plan, layer)`
for a section drawn once per chosen layer) that adds its part to a `Report`
from a `ReportPlan` (`report.auto.plan_report`): the images, labels,
layers, channels and targets the report is about. It renders what the plan
already holds in `plan.results` under its name (maps, fitted clusterers,
metrics computed beforehand), and computes the rest through the public API.
A section may also say, before anything is computed, why it does not apply
to a model (`skip(plan)` returns the reason, shown in its place).

`REGISTRY` holds the built-in sections in report order; add your own with
`register_section`, and `build_report` runs it like the others (see
docs/report.md).

Example:
    >>> from keras_introspect.report import register_section
    >>> @register_section("mean-image", title="Mean image", after="summary")
    ... def mean_image(report, plan):
    ...     report.add_image(plan.x.mean(0), title="Mean image")
    >>> "mean-image" in REGISTRY
    True
    >>> REGISTRY.unregister("mean-image").title
    'Mean image'
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from keras_introspect.report.rotation import add_rotation, skip_rotation

# Pixel clustering in the report fits full covariances up to this many channels,
# diagonal ones beyond (EfficientNetB0's top_activation has 1280).
MAX_FULL_COVARIANCE = 64


@dataclass(frozen=True)
class SectionSpec:
    """A section of `build_report`.

    Attributes:
        name: its name in `sections=` and `results=` (and on the command line).
        title: the title of the note shown in its place when it is skipped or fails.
        add: `add(report, plan)` adds it to the report; with `per_layer`,
            `add(report, plan, layer)` for each of `plan.layers`.
        skip: `skip(plan)`: why the section does not apply (a sentence shown
            in its place), or `None` when it does; `None`: it always applies.
        per_layer: drawn once per chosen layer (one progress line each).
        progress: the progress line (`verbose=1`).
        default: part of the report when no sections are named (`sections=None`);
            `False`: only when named (or with `sections="all"`).
    """

    name: str
    title: str
    add: Callable
    skip: Callable | None = None
    per_layer: bool = False
    progress: str = ""
    default: bool = True

    def reason_to_skip(self, plan) -> str | None:
        """Why the section does not apply to `plan`, or `None`."""
        return None if self.skip is None else self.skip(plan)


class SectionRegistry:
    """The sections `build_report` can write, in report order (a mapping name -> spec)."""

    def __init__(self):
        self._specs: dict[str, SectionSpec] = {}

    def register(
        self,
        name,
        add=None,
        *,
        title=None,
        skip=None,
        per_layer=False,
        progress=None,
        before=None,
        after=None,
        replace=False,
        default=True,
    ):
        """Add a section; usable as a decorator of its `add` function.

        Args:
            name: the section's name (new unless `replace`).
            add: `add(report, plan)` (or `add(report, plan, layer)` with
                `per_layer`): adds the section to the `Report` from the
                `ReportPlan`.
            title: shown when it is skipped or fails (default: `name`).
            skip: `skip(plan) -> str | None`: why it does not apply.
            per_layer: call `add` once per layer of `plan.layers`.
            progress: its progress line (default: `name`).
            before, after: the name of the section it goes before or after
                (default: at the end).
            replace: replace a section of that name in its place.
            default: run it when no sections are named (`False`: on request only).

        Returns:
            `add` (so the decorated function stays usable).

        Raises:
            ValueError: the name is taken (without `replace`), or `before` /
                `after` names no section.
        """
        if add is None:
            return lambda fn: self.register(
                name,
                fn,
                title=title,
                skip=skip,
                per_layer=per_layer,
                progress=progress,
                before=before,
                after=after,
                replace=replace,
                default=default,
            )
        if not isinstance(name, str) or not name:
            raise ValueError(f"Expected a section name (a non-empty str). Received: {name!r}")
        if not callable(add):
            raise TypeError(f"Expected `add` to be callable. Received: {add!r}")
        if name in self._specs and not replace:
            raise ValueError(
                f"A section named {name!r} is registered already; pass replace=True to replace it"
            )
        if before is not None and after is not None:
            raise ValueError("Pass `before` or `after`, not both")
        spec = SectionSpec(name, title or name, add, skip, per_layer, progress or name, default)
        anchor = before if before is not None else after
        if anchor is not None and anchor not in self._specs:
            raise ValueError(f"No section {anchor!r} to place {name!r} by. Known: {self.names}")
        if name in self._specs and anchor is None:  # replaced in place
            self._specs[name] = spec
            return add
        self._specs.pop(name, None)
        items = list(self._specs.items())
        at = len(items)
        if anchor is not None:
            at = [k for k, _ in items].index(anchor) + (0 if before is not None else 1)
        items.insert(at, (name, spec))
        self._specs = dict(items)
        return add

    def unregister(self, name) -> SectionSpec:
        """Remove a section and return its spec (`KeyError` if there is none)."""
        if name not in self._specs:
            raise KeyError(f"No section {name!r}. Known: {self.names}")
        return self._specs.pop(name)

    @property
    def defaults(self) -> tuple:
        """Names of the sections run when none are named, in report order."""
        return tuple(name for name, spec in self._specs.items() if spec.default)

    @property
    def names(self) -> tuple:
        """Section names in report order."""
        return tuple(self._specs)

    def __getitem__(self, name) -> SectionSpec:
        if name not in self._specs:
            raise KeyError(f"No section {name!r}. Known: {self.names}")
        return self._specs[name]

    def __contains__(self, name) -> bool:
        return name in self._specs

    def __iter__(self):
        return iter(self._specs)

    def __len__(self) -> int:
        return len(self._specs)

    def __repr__(self) -> str:
        return f"SectionRegistry({', '.join(self._specs)})"


REGISTRY = SectionRegistry()
register_section = REGISTRY.register


# ------------------------------------------------------------- built-in sections

_SALIENCY = "class saliency, Grad-CAM and occlusion"
_PIXELS = "pixel DPGMM label maps"
_FILTERS = "filter saliency (max / sum aggregation) vs occlusion"
_FEATURES = "activation maximization of receptive fields"
_QUALITY = "explanation quality: deletion, insertion, sanity checks"


# Sections drawn for 2-D images only; on signals (1-D), vectors and volumes (3-D) they
# are skipped with this reason. The others draw 1-D and 3-D maps (`plotting.nd`).
IMAGES_ONLY = {
    "filters": "filter saliency draws receptive-field boxes on images",
    "features": "activation maximization is drawn as images",
    "exemplars": "exemplar crops are drawn as images",
    "clustering": "pixel label maps are drawn over images",
    "quality": "the deletion / insertion curves and sanity checks score images",
}
# Sections that do not apply to a dense output (segmentation map, detection head)
DENSE_SKIP = {
    "quality": "deletion / insertion score one class of a classifier; a dense output's "
    "class score averaged over all positions is not what they measure",
}


def input_kind(x) -> str:
    """``"vector"``, ``"signal"``, ``"image"`` or ``"volume"`` for model inputs `x`."""
    return {2: "vector", 3: "signal", 4: "image", 5: "volume"}.get(np.ndim(x), "input")


def skip_for_input(name, plan) -> str | None:
    """Why section `name` does not apply to the plan's inputs or output, or `None`."""
    kind = input_kind(plan.x)
    if kind != "image" and name in IMAGES_ONLY:
        return (
            f"Skipped for {kind} inputs of shape {plan.x.shape[1:]}: {IMAGES_ONLY[name]} "
            "(2-D) only."
        )
    if getattr(plan, "dense", False) and name in DENSE_SKIP:
        return f"Skipped for a dense model output: {DENSE_SKIP[name]}."
    return None


def _summary(report, plan):
    report.add_model_summary()


def _saliency(report, plan):
    gradcam, note = plan.gradcam_layer()
    report.add_saliency(
        plan.shown,
        plan.targets,
        options={"occlusion": plan.occlusion, "gradcam": {"layer": gradcam}},
        note=note,
        value_range=plan.value_range,
        title="Class saliency of the predicted class",
        labels=plan.y[plan.pick] if plan.labels_given else None,
        maps=plan.results.get("saliency"),
    )


def _occlusion(report, plan):
    report.add_occlusion(
        plan.shown,
        plan.targets,
        value_range=plan.value_range,
        maps=plan.results.get("occlusion"),
        **plan.occlusion,
    )


def _filters(report, plan, layer):
    report.add_filter_saliency(
        plan.shown[:3],
        layer,
        plan.channels[layer],
        occlusion=plan.occlusion,
        value_range=plan.value_range,
        maps=plan.results.get("filters", {}).get(layer),
        activations=plan.shown_activations(layer),
    )


def _features(report, plan, layer):
    x = plan.x
    field = plan.intro.layer(layer).receptive_field
    report.add_feature_visualization(
        layer,
        plan.channels[layer],
        x=x,
        n=2,
        value_range=plan.value_range,
        # the whole image where the layer has no receptive field
        receptive_field=field is not None
        and field.axes is None
        and all(f <= n for f, n in zip(field.size, x.shape[1:3], strict=True)),
        init="max",
        steps=plan.am_steps,
        # a model of free input size optimises images of the size of the given ones
        image_shape=tuple(x.shape[1:]) if None in plan.intro.input_specs[0].shape[1:] else None,
        result=plan.results.get("features", {}).get(layer),
    )


def _exemplars(report, plan):
    given = plan.results.get("exemplars", {})
    for path in plan.layers:
        report.add_exemplars(
            plan.x,
            path,
            plan.channels[path],
            k=min(6, len(plan.x)),
            value_range=plan.value_range,
            result=given.get(path),
        )


def _histograms(report, plan):
    last = plan.layers[-1]
    report.add_histograms(plan.x, last, plan.channels[last], result=plan.results.get("histograms"))


def feature_maps(info) -> bool:
    """Whether a layer outputs 2-D feature maps with more than one position."""
    spatial = info.spatial_shape
    return (
        isinstance(info.output_shape, tuple)
        and len(info.output_shape) == 4
        and not (all(d is not None for d in spatial) and int(np.prod(spatial)) <= 1)
    )


def _maps_layers(plan):
    return [p for p in plan.layers if feature_maps(plan.intro.layer(p))]


def _skip_clustering(plan):
    if _maps_layers(plan):
        return None
    return (
        "Skipped: pixel clustering groups the positions of a layer's feature maps, and none "
        f"of the chosen layers ({', '.join(plan.layers)}) has more than one position."
    )


def _clustering(report, plan):
    intro = plan.intro
    maps = _maps_layers(plan)
    left_out = [p for p in plan.layers if p not in maps]
    with warnings.catch_warnings():
        # the table shows which fits converged
        warnings.filterwarnings("ignore", message=".*before its convergence test passed")
        # a full covariance in hundreds of dimensions costs gigabytes and is not
        # estimable from a few hundred pixels
        info = [intro.layer(p) for p in maps]
        widest = max(int(i.output_shape[i.channel_axis]) for i in info)
        report.add_clustering(
            plan.x[:100],
            maps,
            image_index=0,
            clusterers=plan.results.get("clustering"),
            sample_size=50_000,
            covariance_type="full" if widest <= MAX_FULL_COVARIANCE else "diag",
            random_state=0,
        )
    if left_out:
        report.sections[-1].params["left out (no feature maps)"] = ", ".join(left_out)


def _purity(report, plan):
    result = plan.results.get("purity")
    if result is None:
        report.add_layerwise_purity(
            plan.x, plan.y, layers=plan.purity_layers, method="kmeans", seed=0
        )
    else:
        report.add_layerwise_purity(result=result)
    report.sections[-1].params["labels"] = plan.labels_from


def _image_clusters(report, plan):
    report.add_image_clustering(
        plan.x,
        plan.y,
        plan.penultimate,
        clusterer=plan.results.get("image-clusters"),
        method="kmeans",
        n_clusters=len(np.unique(plan.y)),
        pooling="avg",
        random_state=0,
    )
    report.sections[-1].params["labels"] = plan.labels_from


def _skip_category_tree(plan):
    return "Needs at least 3 categories among the labels." if len(np.unique(plan.y)) < 3 else None


def _category_tree(report, plan):
    tree = plan.results.get("category-tree")
    if tree is None:
        report.add_category_tree(plan.x, plan.y, plan.penultimate, pooling="avg")
    else:
        report.add_category_tree(tree=tree)
    report.sections[-1].params["labels"] = plan.labels_from


def _prediction_tree(report, plan):
    values, counts = np.unique(plan.y, return_counts=True)
    label = values[counts.argmax()]
    last = plan.layers[-1]
    report.add_prediction_tree(
        plan.take(np.flatnonzero(plan.y == label)[:16]),
        last,
        tree=plan.results.get("prediction-tree"),
        title=f"Prediction tree of label {label} at {last}",
    )


def _twin(report, plan):
    # a dense output's last layer is the output itself: Grad-CAM reads the plan's layer
    options = {"gradcam": {"layer": plan.gradcam_layer()[0]}} if plan.dense else None
    report.add_random_twin(
        plan.shown, plan.targets, options=options, results=plan.results.get("twin")
    )


def _skip_quality(plan):
    if plan.classifier:
        return None
    return (
        "Skipped: the deletion / insertion curves and sanity checks score class "
        "probabilities, and the explained output has one unit (a regression head)."
    )


def _quality(report, plan):
    n = plan.n_quality
    x = plan.x
    report.add_quality(
        x[:n],
        plan.class_target(plan.explained[:n]),
        options={"occlusion": plan.occlusion},
        verbose=plan.verbose,
        result=plan.results.get("quality"),
    )
    report.sections[-1].params["images"] = f"{min(n, len(x))} of {len(x)} (n_quality)"


# name, title (of a note in its place), add, progress line, skip, one per layer
_BUILT_IN = (
    ("summary", "Model summary", _summary, "model summary", None, False),
    ("saliency", "Class saliency", _saliency, _SALIENCY, None, False),
    ("occlusion", "Occlusion", _occlusion, "occlusion", None, False),
    ("filters", "Filter saliency", _filters, _FILTERS, None, True),
    ("features", "Feature visualization", _features, _FEATURES, None, True),
    ("exemplars", "Exemplars", _exemplars, "top activating images", None, False),
    ("histograms", "Activation histograms", _histograms, "activation histograms", None, False),
    ("clustering", "Pixel clustering", _clustering, _PIXELS, _skip_clustering, False),
    ("purity", "Layer-wise purity", _purity, "layer-wise purity", None, False),
    ("image-clusters", "Image clusters", _image_clusters, "image clusters", None, False),
    ("category-tree", "Category tree", _category_tree, "category tree", _skip_category_tree, False),
    ("prediction-tree", "Prediction tree", _prediction_tree, "prediction tree", None, False),
    ("twin", "Comparison with a random twin", _twin, "comparison with a random twin", None, False),
    ("quality", "Explanation quality", _quality, _QUALITY, _skip_quality, False),
)
for _name, _title, _add, _progress, _skip, _per_layer in _BUILT_IN:
    REGISTRY.register(
        _name, _add, title=_title, skip=_skip, per_layer=_per_layer, progress=_progress
    )
# opt-in: it needs images one degree of rotation apart (results={"rotation": RotationData})
REGISTRY.register(
    "rotation",
    add_rotation,
    title="Rotation sequences",
    skip=skip_rotation,
    progress="rotation sequences",
    default=False,
)

from keras_introspect.report.concepts import add_concepts, skip_concepts  # noqa: E402

# opt-in: fitting a mixture per class and layer is slower than the other sections
REGISTRY.register(
    "concepts",
    add_concepts,
    title="Concepts",
    skip=skip_concepts,
    progress="concepts",
    default=False,
)
