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
from dataclasses import dataclass, field

import numpy as np

from keras_introspect._tensor import is_probability
from keras_introspect.exceptions import KerasIntrospectWarning
from keras_introspect.model import _kinds as kinds
from keras_introspect.model.selectors import spread as _spread
from keras_introspect.report.sections import REGISTRY, skip_for_input

# The built-in sections' names in report order (`REGISTRY` holds them, and any
# section a user adds).
SECTIONS = REGISTRY.names
# Sections computed before the others (their place in the report does not change):
# the quality section allocates the most short-lived memory (hundreds of perturbed
# copies and their activations); run first, while the process is small, the memory
# it frees is reused by the graphs the later sections trace, instead of adding to
# them (EfficientNetB0 report: peak 2.30 -> 2.20 GB, see benchmarks/RESULTS.md).
RUN_FIRST = ("quality",)


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


def _top_channels(intro, x, paths, k, store=None):
    """Per layer, the `k` channels with the largest mean activation over `x`
    (read from `store`, an `ActivationStore` of `x`, where it has them).

    Channels that are 0 on every image (dead filters: nothing to explain)
    are passed over unless the layer has no other.
    """
    kept = None if store is None else store.lookup(x, paths)
    if kept is not None:
        means = {}
        for path, a in zip(paths, kept, strict=True):
            axis = intro.layer(path).channel_axis % a.ndim
            means[path] = np.moveaxis(a, axis, -1).reshape(len(a), -1, a.shape[axis]).mean(1)
    else:
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
    names = REGISTRY.names
    sections = list(
        REGISTRY.defaults if sections is None else names if sections == "all" else sections
    )
    unknown = [s for s in sections if s not in names]
    if unknown:
        raise ValueError(f"Unknown section(s) {unknown}. Expected names from {list(names)}")
    return list(dict.fromkeys(sections))  # a name given twice runs once


@dataclass(eq=False)
class ReportPlan:
    """What `build_report` will do, decided before any section is computed.

    A section function (`report.sections`) reads what it needs from here.

    Attributes:
        model, intro: the model and its `Introspector`.
        x: the images used (at most `max_images`, float32).
        y: their labels (given, or the predicted classes).
        labels_given: whether `y` was given; labels_from: says where `y` comes from.
        layers: paths of the layers the per-layer sections show.
        channels: per layer, the channels shown (largest mean activation).
        pick: indices of the images shown in the saliency, occlusion and twin
            sections (one per label first); shown: those images.
        explained: per image, the class explained (the predicted one).
        targets: the `targets.Class` of `explained[pick]`.
        output: the model output explained (`targets.Class`'s `output`).
        classifier: whether that output is a classifier's (several units, or
            one sigmoid unit).
        dense: whether that output is dense (`(batch, ..., classes)`: segmentation,
            detection heads); its class scores are averaged over the positions.
        value_range: of the images.
        occlusion: `Occlusion`'s window and stride for these images.
        am_steps, n_quality, verbose: as passed to `build_report`.
        sections: the sections that run, in report order.
        skipped: per section that does not apply, the reason (shown in its place).
        results: per section name, what was computed beforehand (`build_report`'s
            `results=`).
        store: the layers' and the penultimate layer's activations of `x`
            (`probes._scan.ActivationStore`, read on first use), which the
            sections' scans of `x` reduce instead of tracing a forward graph
            each; `None` where they would take more than 256 MiB.
    """

    model: object
    intro: object
    x: np.ndarray
    y: np.ndarray
    labels_given: bool
    labels_from: str
    layers: list
    channels: dict
    pick: np.ndarray
    explained: np.ndarray
    output: object
    classifier: bool
    value_range: tuple
    occlusion: dict
    am_steps: int
    n_quality: int
    verbose: int = 0
    sections: list = field(default_factory=list)
    skipped: dict = field(default_factory=dict)
    results: dict = field(default_factory=dict)
    dense: bool = False
    store: object = None
    _shown_activations: dict = field(default=None, init=False, repr=False)

    @property
    def shown(self) -> np.ndarray:
        return self.x[self.pick]

    def take(self, rows) -> np.ndarray:
        """`x[rows]`, images whose activations the plan's store serves too (a section's
        subset of the images: its scans then trace no forward graph of their own)."""
        return self.x[rows] if self.store is None else self.store.take(rows)

    def shown_activations(self, layer) -> np.ndarray:
        """`layer`'s activations of the first 3 shown images (the filter sections').

        Every report layer is read in one forward pass, the first time: one compiled
        graph serves all the per-layer sections (each graph of a deep backbone holds
        tens of MB for the rest of the process). A layer that cannot be read with the
        others (e.g. a shared layer) is read alone, so only its section fails.
        """
        if self._shown_activations is None:
            # the store's layers: the graph that reads the store serves these images too
            paths = self.layers if self.store is None else list(self.store.paths)
            try:
                self._shown_activations = self.intro.activations(self.shown[:3], paths)
            except Exception:  # each layer alone below, so only its section fails
                self._shown_activations = {}
        path = self.intro.layer(layer).path
        if path not in self._shown_activations:
            self._shown_activations.update(self.intro.activations(self.shown[:3], path))
        return self._shown_activations[path]

    @property
    def targets(self):
        return self.class_target(self.explained[self.pick])

    def class_target(self, classes):
        """`targets.Class` of `classes` on the explained output."""
        from keras_introspect.targets import Class

        return Class(np.asarray(classes).astype(int), output=self.output)

    @property
    def penultimate(self) -> str:
        """The last leaf layer before the output layer (the features the classifier reads)."""
        return _penultimate(self.intro)

    @property
    def purity_layers(self) -> list:
        """Up to 10 convolution, pooling and dense layers, spread, the output included."""
        return _purity_layers(self.intro)

    def gradcam_layer(self):
        """`(path, note)`: the layer Grad-CAM reads in the saliency section (computed once)."""
        if not hasattr(self, "_gradcam"):
            self._gradcam = _gradcam_layer(self.model, self.intro, self.shown, self.targets)
        return self._gradcam

    @property
    def steps(self) -> int:
        """Progress lines: one per section, one per layer for a per-layer section."""
        return sum(
            len(self.layers) if REGISTRY[name].per_layer and name not in self.skipped else 1
            for name in self.sections
        )

    @property
    def table(self) -> list:
        """One dict per chosen section: whether it runs, and why not."""
        return [
            {"section": n, "runs": n not in self.skipped, "why not": self.skipped.get(n, "")}
            for n in self.sections
        ]

    def __str__(self) -> str:
        lines = [f"layers: {', '.join(self.layers)}; labels: {self.labels_from}"]
        for name in self.sections:
            why = self.skipped.get(name)
            lines.append(f"  {name}: {'skipped: ' + why if why else 'runs'}")
        return "\n".join(lines)


def plan_report(
    model,
    x,
    y=None,
    *,
    layers=None,
    sections=None,
    value_range=None,
    n_show=4,
    n_channels=3,
    max_images=500,
    am_steps=128,
    n_quality=32,
    output=None,
    results=None,
    verbose=0,
):
    """The `ReportPlan` `build_report` follows: which sections apply to this model
    and why the others do not, the layers, channels and images each shows.

    It runs the model once on `x` (for the explained classes) and reads the
    channels' mean activations; no section is computed. The arguments are
    `build_report`'s.

    Returns:
        A `ReportPlan`; `print(plan)` lists the sections and why any is skipped.

    Example:
        >>> print(plan_report(model, x, y))  # doctest: +SKIP
        layers: conv2d, conv2d_1; labels: the given labels
          summary: runs
          ...
          quality: skipped: Skipped: the deletion / insertion curves ...
    """

    from keras_introspect.probes._scan import activation_store, introspector
    from keras_introspect.targets import output_index

    sections = _check_sections(sections)
    results = dict(results or {})
    unknown = [name for name in results if name not in REGISTRY]
    if unknown:
        raise ValueError(
            f"Expected `results` keyed by section names {list(REGISTRY.names)}. Received: {unknown}"
        )
    if isinstance(max_images, bool) or not isinstance(max_images, int) or max_images < 1:
        raise ValueError(f"Expected `max_images` >= 1. Received: max_images={max_images!r}")
    # cut first, then convert (contiguous: the store's checksums read it in place)
    x = np.ascontiguousarray(np.asarray(x)[:max_images], np.float32)
    intro = introspector(model)
    specs = intro.input_specs
    rank = len(specs[0].shape) if specs is not None and len(specs) == 1 else 4
    if x.ndim != rank or len(x) < 2:
        kind = {2: "vectors (n, L)", 3: "signals (n, L, C)", 5: "volumes (n, D, H, W, C)"}
        raise ValueError(
            f"Expected at least 2 {kind.get(rank, 'images (n, H, W, C)')} as the model takes "
            f"them. Received: shape {x.shape}"
        )
    value_range = value_range or (float(x.min()), float(x.max()))
    position = output_index(intro, output)
    scores = _output_scores(intro, x, position)
    if scores.ndim < 2:
        raise ValueError(
            f"Expected a model output of shape (batch, units) or a dense output (batch, ..., "
            f"classes) to explain. Received: output {position} with shape {scores.shape}; "
            "pick another with `output=`"
        )
    dense = scores.ndim > 2
    if dense:  # a dense output: each image's class with the largest mean score over positions
        scores = scores.reshape(len(scores), -1, scores.shape[-1]).mean(axis=1)
    # one unit in [0, 1]: a sigmoid, a binary classifier; else a regression head
    binary = scores.shape[1] == 1 and is_probability(scores)
    # the explained class: the predicted one; a one-unit output's only unit
    explained = scores.argmax(-1) if scores.shape[1] >= 2 else np.zeros(len(x), int)
    predicted = (scores[:, 0] > 0.5).astype(int) if binary else explained
    labels_from, labels_given = "the given labels", y is not None
    if y is None:
        y, labels_from = predicted, "the model's predicted classes (no labels given)"
    y = _check_labels(np.asarray(y)[: len(x)])
    if len(y) != len(x):
        raise ValueError(f"Expected one label per image ({len(x)}). Received: {len(y)} labels")
    paths = [intro.layer(layer).path for layer in layers] if layers else choose_layers(intro)
    if dense and not layers:  # the dense output's own layer is the output, not a feature map
        from keras_introspect.targets import output_names

        paths = [p for p in paths if p not in output_names(intro)] or paths
    window = max(2, x.shape[1] // 6)
    # the layers' and the penultimate layer's activations of `x`, read in one pass
    store = activation_store(intro, x, [*paths, _penultimate(intro)])
    plan = ReportPlan(
        model=model,
        intro=intro,
        x=x,
        y=y,
        labels_given=labels_given,
        labels_from=labels_from,
        layers=paths,
        channels=_top_channels(intro, x, paths, n_channels, store),
        pick=_one_per_label(y, n_show),
        explained=explained,
        output=output,
        classifier=scores.shape[1] >= 2 or binary,
        dense=dense,
        value_range=value_range,
        occlusion={"window": window, "stride": max(1, window // 2)},
        am_steps=am_steps,
        n_quality=n_quality,
        verbose=verbose,
        sections=sections,
        results=results,
        store=store,
    )
    for name in sections:
        reason = skip_for_input(name, plan) or REGISTRY[name].reason_to_skip(plan)
        if reason:
            plan.skipped[name] = reason
    return plan


def build_report(
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
    results=None,
    verbose=0,
):
    """A `Report` with every section (or the chosen ones) for `model` on the images `x`.

    Which sections apply is decided before any computation (`plan_report`):
    the class sections explain the predicted class of a classifier output,
    or the value of a one-unit output (a regression head); the quality
    section needs a classifier and is skipped with a note otherwise. Then
    each section of `report.sections.REGISTRY` (the built-in ones, and any
    you register) is added in order. A section that still fails is replaced
    by a note saying why (and a warning), so the sections that succeeded are
    always written.

    Args:
        model: a Keras classifier with one image input.
        x: images `(n, H, W, C)` as the model takes them.
        y: labels of `x` (any values); `None` uses the model's predicted
            classes for the sections that group images by label (say so in
            the report).
        layers: layers for the per-layer sections (any layer: a section that
            needs feature maps or a receptive field says so in a note where
            a layer has none); `None` picks up to three (`choose_layers`).
        sections: names from `REGISTRY` (`SECTIONS` are the built-in ones);
            `None`: the default ones (all but opt-in sections such as
            "concepts"); "all": every registered section. A name given twice
            runs once.
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
        results: per section name, what was computed beforehand for the
            plan's images (see docs/report.md), e.g. `{"quality":
            explanation_quality(...), "purity": layerwise_purity(...)}`; the
            section renders it instead of computing it.
        verbose: 1 prints a numbered line per section on stderr (the CLI's
            default); 0, the default here as everywhere in the library, is silent.

    Returns:
        The `Report` (call `.save(path)`).

    Example:
        >>> build_report(model, x, y).save("report.html")  # doctest: +SKIP
    """
    from contextlib import nullcontext

    from keras_introspect.report.builder import Report

    plan = plan_report(
        model,
        x,
        y,
        layers=layers,
        sections=sections,
        value_range=value_range,
        n_show=n_show,
        n_channels=n_channels,
        max_images=max_images,
        am_steps=am_steps,
        n_quality=n_quality,
        output=output,
        results=results,
        verbose=verbose,
    )
    if verbose:
        print(f"layers: {', '.join(plan.layers)}; labels: {plan.labels_from}", file=sys.stderr)
    report = report or Report(model, title=title or f"keras_introspect report: {model.name}")
    step = Progress(plan.steps, verbose)
    given = len(report.sections)  # a report passed in keeps its sections first
    made = {}  # name -> the sections it added, put in the plan's order at the end
    order = sorted(plan.sections, key=lambda name: name not in RUN_FIRST)
    # the per-layer scans of the images (top activating, histograms, pixel clustering,
    # activation maximization's dataset scan) share one forward pass of all the layers
    with nullcontext() if plan.store is None else plan.store.serve():
        try:
            for name in order:
                before = len(report.sections)
                _add_section(report, plan, name, step)
                made[name] = report.sections[before:]
        finally:  # also after an interrupt: what was made, in the plan's order
            done = [section for name in plan.sections for section in made.get(name, [])]
            rest = [s for s in report.sections[given:] if not any(s is d for d in done)]
            report.sections[given:] = done + rest
    return report


def _add_section(report, plan, name, step) -> None:
    """Add section `name` (once per layer for a per-layer one), or its note."""
    spec = REGISTRY[name]
    if name in plan.skipped:
        report.add_text(spec.title, plan.skipped[name])
        step(f"{spec.progress}: skipped")
        return
    for layer in plan.layers if spec.per_layer else [None]:
        try:
            spec.add(report, plan) if layer is None else spec.add(report, plan, layer)
            step(spec.progress if layer is None else f"{spec.progress} at {layer}")
        except Exception as error:  # the report keeps the sections that succeeded
            _failed(report, spec, error)
            step(f"{name}: failed")


def _failed(report, spec, error):
    """The note and the warning that replace a section that raised `error`."""
    first = str(error).splitlines()[0] if str(error) else ""
    reason = f"{type(error).__name__}: {first}"
    report.add_text(spec.title, f"This section could not be computed: {reason}")
    warnings.warn(
        f"build_report: section {spec.name!r} failed ({reason}); the others are kept",
        KerasIntrospectWarning,
        stacklevel=3,
    )


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
    from keras_introspect.targets import output_names

    outputs = set(output_names(intro))  # a dense output's own layer: nothing comes after it
    candidates = [i.path for i in candidate_layers(intro)[0] if i.path not in outputs][-tries:]
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


def _output_scores(intro, x, position) -> np.ndarray:
    """The model's output `position` for the images `x`, in float32.

    A scan of the session, not `model.predict`: Keras' predict function is one
    more compiled graph of the whole model, of about 40 MB on EfficientNetB0.
    """
    import tensorflow as tf

    from keras_introspect.probes._scan import scan

    def reduce(output):
        return [tf.cast(tf.nest.flatten(output)[position], tf.float32)]

    parts = [out[0] for out, _ in scan(intro, None, x, reduce, ("output", position), 32, 0)]
    return np.concatenate(parts)


def _one_per_label(y, k):
    """Indices of up to `k` images with different labels (first of each), then the next ones."""
    firsts = [int(np.flatnonzero(y == label)[0]) for label in np.unique(y)][:k]
    rest = [i for i in range(len(y)) if i not in firsts]
    return np.array((firsts + rest)[:k])


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
