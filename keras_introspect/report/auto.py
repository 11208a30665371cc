"""`build_report`: every section of a `Report` for a model and a set of images, chosen for you.

This is what `keras-introspect report` and `keras-introspect demo` run. Layer
choices, windows and sample sizes follow from the model and the images, so
the same call works for a 32x32 toy network and a `keras.applications`
backbone nested in a head; each can be overridden.
"""

from __future__ import annotations

import sys
import time
import warnings

import numpy as np

from keras_introspect.exceptions import KerasIntrospectWarning
from keras_introspect.model import _kinds as kinds
from keras_introspect.model.selectors import spread as _spread

# Section names in report order; `needs_labels` ones use the model's predicted
# classes when no labels are given.
SECTIONS = (
    "summary",
    "saliency",
    "occlusion",
    "filters",
    "features",
    "exemplars",
    "histograms",
    "clustering",
    "purity",
    "image-clusters",
    "category-tree",
    "prediction-tree",
    "twin",
    "quality",
)


# Pixel clustering in the report fits full covariances up to this many channels,
# diagonal ones beyond (EfficientNetB0's top_activation has 1280).
MAX_FULL_COVARIANCE = 64


class Progress:
    """Numbered progress lines on stderr, with the seconds each step took."""

    def __init__(self, total, verbose=1, stream=None):
        self.total, self.verbose, self.done = total, verbose, 0
        self.stream = stream or sys.stderr
        self.last = time.perf_counter()

    def __call__(self, text):
        now = time.perf_counter()
        self.done += 1
        if self.verbose:
            print(
                f"[{self.done:>2}/{self.total}] {text} ({now - self.last:.1f} s)",
                file=self.stream,
                flush=True,
            )
        self.last = now


def _feature_maps(info) -> bool:
    """Whether a layer outputs 2-D feature maps with more than one position."""
    spatial = info.spatial_shape
    return (
        isinstance(info.output_shape, tuple)
        and len(info.output_shape) == 4
        and not (all(d is not None for d in spatial) and int(np.prod(spatial)) <= 1)
    )


def _channels(info) -> int:
    """Channels of a layer's output (on its channel axis, first or last)."""
    return int(info.output_shape[info.channel_axis])


def _group(intro, group) -> list:
    """Analysed `LayerInfo`s of a kind of layers, by class: a layer *named* "pool" or
    "dense" never stands in for the group."""
    return intro.layers_of_kind(group)


def choose_layers(intro, k=3):
    """Up to `k` layers to inspect, ending at the last spatial layer of the model.

    Candidates are the layers Grad-CAM can read
    (`attribution.gradcam.candidate_layers`): layers that compute something
    (not dropout, noise, padding or reshaping) with feature maps of more than
    one position and a local receptive field in the input's axis order (a
    squeeze-and-excitation gate keeps it). A plain
    CNN (no merge layers) with at least two pooling layers is shown at its
    pooling layers. Any other model (ResNet, MobileNet, EfficientNet,
    DenseNet, ConvNeXt) is cut into *stages*, runs of layers with the same
    stride; a stage's output is its last merge layer (else its last layer),
    and `k` of them are spread over the stages after the stem, ending at the
    last spatial layer of the model.
    For EfficientNetB0 at 64 x 64: `block2b_add`, `block3b_add` and
    `top_activation`.

    Raises:
        ValueError: no layer qualifies.
    """
    from keras_introspect.attribution.gradcam import candidate_layers

    candidates = candidate_layers(intro)[0]
    if not candidates:
        raise ValueError(
            "The model has no layer with feature maps of more than one position and a "
            "receptive field to inspect; pass `layers=`"
        )
    merges = kinds.MERGE
    plain = not any(info.type in merges for info in intro.layers_of_kind("all"))
    pools = [i for i in candidates if i.type in kinds.POOL]
    if plain and len(pools) >= 2:
        return [info.path for info in _spread(pools, k)]
    stages = []
    for info in candidates:
        if stages and stages[-1][-1].receptive_field.stride == info.receptive_field.stride:
            stages[-1].append(info)
        else:
            stages.append([info])
    if len(stages) < 2:
        return [info.path for info in _spread(candidates, k)]
    # a stage's output: its last merge (a residual add, a dense block's concatenation)
    ends = [next((i for i in reversed(st) if i.type in merges), st[-1]) for st in stages]
    ends[-1] = candidates[-1]  # always the last spatial layer
    if len(ends) > k:
        ends = ends[1:]  # after the stem
    return [info.path for info in _spread(ends, k)]


def _top_channels(intro, x, paths, k):
    """Per layer, the `k` channels with the largest mean activation over `x`.

    Channels that are 0 on every image (dead filters: nothing to explain)
    are passed over unless the layer has no other.
    """
    shapes = {path: intro.layer(path).output_shape for path in paths}
    pooled = [p for p in paths if isinstance(shapes[p], tuple) and len(shapes[p]) >= 3]
    vectors = [p for p in paths if p not in pooled]
    means = intro.activations(x, pooled, pooling="avg") if pooled else {}
    if vectors:  # dense layers: their units are the channels
        means.update(intro.activations(x, vectors))
    chosen = {}
    for path in paths:
        mean = means[path].mean(0)
        order = [int(c) for c in np.argsort(-mean, kind="stable")]
        alive = [c for c in order if mean[c] != 0]
        chosen[path] = (alive or order)[:k]
    return chosen


def _check_sections(sections):
    sections = list(SECTIONS if sections in (None, "all") else sections)
    unknown = [s for s in sections if s not in SECTIONS]
    if unknown:
        raise ValueError(f"Unknown section(s) {unknown}. Expected names from {list(SECTIONS)}")
    return sections


def build_report(  # noqa: C901 - issue 20: a plan and a section registry
    model,
    x,
    y=None,
    *,
    layers=None,
    sections=None,
    title=None,
    value_range=None,
    n_show=4,
    n_channels=3,
    max_images=500,
    am_steps=128,
    n_quality=32,
    report=None,
    output=None,
    verbose=0,
):
    """A `Report` with every section (or the chosen ones) for `model` on the images `x`.

    Which sections apply is decided before any computation: the class
    sections explain the predicted class of a classifier output, or the
    value of a one-unit output (a regression head); the quality section
    needs a classifier and is skipped with a note otherwise. A section that
    still fails is replaced by a note saying why (and a warning), so the
    sections that succeeded are always written.

    Args:
        model: a Keras classifier with one image input.
        x: images `(n, H, W, C)` as the model takes them.
        y: labels of `x` (any values); `None` uses the model's predicted
            classes for the sections that group images by label (say so in
            the report).
        layers: layers for the per-layer sections (any layer: a section that
            needs feature maps or a receptive field says so in a note where
            a layer has none); `None` picks up to three (`choose_layers`).
        sections: names from `SECTIONS`, or `None`/"all".
        title: of the report.
        value_range: of the images, for display and to bound activation
            maximization; `None` uses the range of `x`.
        n_show: images shown in the saliency, occlusion and twin sections.
        n_channels: channels per layer (those with the largest mean activation).
        max_images: at most this many images of `x` are used (the first ones).
        am_steps: activation maximization steps (capped by ``KI_MAX_STEPS``).
        n_quality: images scored in the explanation-quality section (the
            first ones), explained for their predicted class.
        report: a `Report` to add to (default: a new one).
        output: for a model with several outputs, the one to explain: its
            position, dict key or layer name (see `targets.Class`).
        verbose: 1 prints a numbered line per section on stderr (the CLI's
            default); 0, the default here as everywhere in the library, is silent.

    Returns:
        The `Report` (call `.save(path)`).

    Example:
        >>> build_report(model, x, y).save("report.html")  # doctest: +SKIP
    """
    import tensorflow as tf

    from keras_introspect.probes._scan import introspector
    from keras_introspect.report.builder import Report, is_probability
    from keras_introspect.targets import output_index

    sections = _check_sections(sections)
    if isinstance(max_images, bool) or not isinstance(max_images, int) or max_images < 1:
        raise ValueError(f"Expected `max_images` >= 1. Received: max_images={max_images!r}")
    x = np.asarray(np.asarray(x)[:max_images], np.float32)  # cut first, then convert
    if x.ndim != 4 or len(x) < 2:
        raise ValueError(f"Expected at least 2 images (n, H, W, C). Received: shape {x.shape}")
    intro = introspector(model)
    value_range = value_range or (float(x.min()), float(x.max()))
    position = output_index(intro, output)
    scores = np.asarray(
        tf.nest.flatten(model.predict(x, batch_size=32, verbose=0))[position], np.float32
    )
    if scores.ndim != 2:
        raise ValueError(
            f"Expected a model output of shape (batch, units) to explain. Received: output "
            f"{position} with shape {scores.shape}; pick another with `output=`"
        )
    # one unit in [0, 1]: a sigmoid, a binary classifier; else a regression head
    binary = scores.shape[1] == 1 and is_probability(scores)
    classifier = scores.shape[1] >= 2 or binary
    # the explained class: the predicted one; a one-unit output's only unit
    explained = scores.argmax(-1) if scores.shape[1] >= 2 else np.zeros(len(x), int)
    predicted = (scores[:, 0] > 0.5).astype(int) if binary else explained
    labels_from, y_given = "the given labels", y is not None
    if y is None:
        y, labels_from = predicted, "the model's predicted classes (no labels given)"
    y = _check_labels(np.asarray(y)[: len(x)])
    if len(y) != len(x):
        raise ValueError(f"Expected one label per image ({len(x)}). Received: {len(y)} labels")
    paths = [intro.layer(layer).path for layer in layers] if layers else choose_layers(intro)
    if verbose:
        print(f"layers: {', '.join(paths)}; labels: {labels_from}", file=sys.stderr)
    channels = _top_channels(intro, x, paths, n_channels)
    report = report or Report(model, title=title or f"keras_introspect report: {model.name}")
    pick = _one_per_label(y, n_show)
    shown, targets = x[pick], _class_target(explained[pick], output)
    height = x.shape[1]
    window = max(2, height // 6)
    occlusion = {"window": window, "stride": max(1, window // 2)}
    per_layer = sum(s in sections for s in ("filters", "features"))
    step = Progress(len(sections) + per_layer * (len(paths) - 1), verbose)

    for name in sections:
        try:
            if name == "summary":
                report.add_model_summary()
                step("model summary")
            elif name == "saliency":
                gradcam, note = _gradcam_layer(model, intro, shown, targets)
                report.add_saliency(
                    shown,
                    targets,
                    options={"occlusion": occlusion, "gradcam": {"layer": gradcam}},
                    note=note,
                    value_range=value_range,
                    title="Class saliency of the predicted class",
                    labels=y[pick] if y_given else None,
                )
                step("class saliency, Grad-CAM and occlusion")
            elif name == "occlusion":
                report.add_occlusion(shown, targets, value_range=value_range, **occlusion)
                step("occlusion")
            elif name == "filters":
                for path in paths:
                    report.add_filter_saliency(
                        shown[:3],
                        path,
                        channels[path],
                        occlusion=occlusion,
                        value_range=value_range,
                    )
                    step(f"filter saliency (max / sum aggregation) vs occlusion at {path}")
            elif name == "features":
                for path in paths:
                    field = intro.layer(path).receptive_field
                    report.add_feature_visualization(
                        path,
                        channels[path],
                        x=x,
                        n=2,
                        value_range=value_range,
                        # the whole image where the layer has no receptive field
                        receptive_field=field is not None
                        and field.axes is None
                        and all(f <= n for f, n in zip(field.size, x.shape[1:3], strict=True)),
                        init="max",
                        steps=am_steps,
                    )
                    step(f"activation maximization of receptive fields at {path}")
            elif name == "exemplars":
                for path in paths:
                    report.add_exemplars(
                        x, path, channels[path], k=min(6, len(x)), value_range=value_range
                    )
                step("top activating images")
            elif name == "histograms":
                report.add_histograms(x, paths[-1], channels[paths[-1]])
                step("activation histograms")
            elif name == "clustering":
                maps = [p for p in paths if _feature_maps(intro.layer(p))]
                left_out = [p for p in paths if p not in maps]
                if not maps:
                    report.add_text(
                        _TITLES[name],
                        "Skipped: pixel clustering groups the positions of a layer's feature "
                        f"maps, and none of the chosen layers ({', '.join(paths)}) has more "
                        "than one position.",
                    )
                else:
                    with warnings.catch_warnings():
                        # the table shows which fits converged
                        warnings.filterwarnings(
                            "ignore", message=".*before its convergence test passed"
                        )
                        # a full covariance in hundreds of dimensions costs gigabytes
                        # and is not estimable from a few hundred pixels
                        widest = max(_channels(intro.layer(p)) for p in maps)
                        report.add_clustering(
                            x[:100],
                            maps,
                            image_index=0,
                            sample_size=50_000,
                            covariance_type="full" if widest <= MAX_FULL_COVARIANCE else "diag",
                            random_state=0,
                        )
                    if left_out:
                        report.sections[-1].params["left out (no feature maps)"] = ", ".join(
                            left_out
                        )
                step("pixel DPGMM label maps" if maps else "pixel clustering: skipped")
            elif name == "purity":
                report.add_layerwise_purity(
                    x, y, layers=_purity_layers(intro), method="kmeans", seed=0
                )
                report.sections[-1].params["labels"] = labels_from
                step("layer-wise purity")
            elif name == "image-clusters":
                report.add_image_clustering(
                    x,
                    y,
                    _penultimate(intro),
                    method="kmeans",
                    n_clusters=len(np.unique(y)),
                    pooling="avg",
                    random_state=0,
                )
                report.sections[-1].params["labels"] = labels_from
                step("image clusters")
            elif name == "category-tree":
                if len(np.unique(y)) < 3:
                    report.add_text(
                        "Category tree", "Needs at least 3 categories among the labels."
                    )
                else:
                    report.add_category_tree(x, y, _penultimate(intro), pooling="avg")
                    report.sections[-1].params["labels"] = labels_from
                step("category tree")
            elif name == "prediction-tree":
                values, counts = np.unique(y, return_counts=True)
                label = values[counts.argmax()]
                report.add_prediction_tree(
                    x[y == label][:16],
                    paths[-1],
                    title=f"Prediction tree of label {label} at {paths[-1]}",
                )
                step("prediction tree")
            elif name == "twin":
                report.add_random_twin(shown, targets)
                step("comparison with a randomly initialised twin")
            elif name == "quality" and not classifier:
                report.add_text(
                    _TITLES["quality"],
                    "Skipped: the deletion / insertion curves and sanity checks score class "
                    "probabilities, and the explained output has one unit (a regression head).",
                )
                step("explanation quality: skipped (not a classifier)")
            elif name == "quality":
                report.add_quality(
                    x[:n_quality],
                    _class_target(explained[:n_quality], output),
                    options={"occlusion": occlusion},
                    verbose=verbose,
                )
                report.sections[-1].params["images"] = (
                    f"{min(n_quality, len(x))} of {len(x)} (n_quality)"
                )
                step("explanation quality: deletion, insertion, sanity checks")
        except Exception as error:  # the report keeps the sections that succeeded
            first = str(error).splitlines()[0] if str(error) else ""
            reason = f"{type(error).__name__}: {first}"
            report.add_text(
                _TITLES.get(name, name), f"This section could not be computed: {reason}"
            )
            warnings.warn(
                f"build_report: section {name!r} failed ({reason}); the others are kept",
                KerasIntrospectWarning,
                stacklevel=2,
            )
            step(f"{name}: failed")

    return report


_TITLES = {
    "summary": "Model summary",
    "saliency": "Class saliency",
    "occlusion": "Occlusion",
    "filters": "Filter saliency",
    "features": "Feature visualization",
    "exemplars": "Exemplars",
    "histograms": "Activation histograms",
    "clustering": "Pixel clustering",
    "purity": "Layer-wise purity",
    "image-clusters": "Image clusters",
    "category-tree": "Category tree",
    "prediction-tree": "Prediction tree",
    "twin": "Comparison with a random twin",
    "quality": "Explanation quality",
}


def _gradcam_layer(model, intro, x, target, tries=4):
    """`(path, note)`: the layer Grad-CAM reads in the saliency section.

    Grad-CAM is `relu(sum_c w_c A_c)`: where every weighted sum is negative
    (few filters, or features that speak against the class) the map is 0
    everywhere and shows nothing. Starting from the default layer
    (`attribution.gradcam.default_layer`), up to `tries` candidate layers
    are tried from the deepest; the deepest whose maps are not constant on
    `x` is used, and the note says what was passed over.
    """
    from keras_introspect.attribution.gradcam import candidate_layers, default_layer
    from keras_introspect.report.builder import explain_maps

    candidates = [info.path for info in candidate_layers(intro)[0]][-tries:]
    last = candidates[-1] if candidates else default_layer(intro).path  # raises, says why
    skipped = []
    for path in reversed(candidates):
        maps = explain_maps(model, x, "gradcam", target, {"layer": path, "upsample": False})
        flat = int((np.ptp(maps.reshape(len(maps), -1), axis=1) == 0).sum())
        if not flat:
            if not skipped:
                return path, f"Grad-CAM at {path}, the last layer with feature maps."
            passed = "; ".join(
                f"at {p} it is constant for {k} of {len(x)} images" for p, k in skipped
            )
            return path, (
                f"Grad-CAM at {path}, the deepest layer where its map is not constant on these "
                f"images ({passed}: every weighted sum of feature maps is <= 0 there, so "
                "nothing is left after its ReLU)."
            )
        skipped.append((path, flat))
    return last, (
        f"Grad-CAM at {last}, the last layer with feature maps; its map is constant for some "
        "images at every layer tried (every weighted sum of feature maps is <= 0)."
    )


def _one_per_label(y, k):
    """Indices of up to `k` images with different labels (first of each), then the next ones."""
    firsts = [int(np.flatnonzero(y == label)[0]) for label in np.unique(y)][:k]
    rest = [i for i in range(len(y)) if i not in firsts]
    return np.array((firsts + rest)[:k])


def _class_target(classes, output=None):
    from keras_introspect.targets import Class

    return Class(np.asarray(classes).astype(int), output=output)


def _check_labels(y):
    """Labels as one comparable kind: NaN refused (naming where), mixed objects as text."""
    if y.ndim != 1:
        raise ValueError(f"Expected one label per image, a 1-D array. Received: shape {y.shape}")
    if y.dtype.kind == "f" and np.isnan(y).any():
        where = np.flatnonzero(np.isnan(y))
        raise ValueError(
            f"Expected labels without NaN. Received: NaN at position(s) {where[:10].tolist()}"
            " (label those images, or leave them out)"
        )
    if y.dtype.kind == "O":  # mixed types (1, "a") cannot be sorted or compared as they are
        if any(v is None or (isinstance(v, float) and np.isnan(v)) for v in y):
            raise ValueError("Expected a label for every image. Received: None or NaN labels")
        y = np.asarray([str(v) for v in y])
    return y


def _penultimate(intro):
    """The last leaf layer before the output layer (the features the classifier reads)."""
    leaves = intro.layers_of_kind("all")
    return leaves[-2].path if len(leaves) > 1 else leaves[-1].path


def _purity_layers(intro, k=10):
    """Up to `k` convolution, pooling and dense layers, evenly spread, the output included."""
    kept = {info.path for group in ("conv", "pool", "dense") for info in _group(intro, group)}
    leaves = intro.layers_of_kind("all")
    return [i.path for i in _spread([i for i in leaves if i.path in kept], k)]
