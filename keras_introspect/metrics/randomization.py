"""Sanity checks: does the map change when what the model learned is taken away?

Adebayo et al. (2018): a map that stays the same when the weights of the
model are randomised, layer by layer from the top (cascading) or one layer
at a time (independent), shows the image rather than the model; so does a
map that is the same for the true class and a random other class. Kalmeijer
(2016, §4.3) compared every visualization with a randomly initialised twin
by eye; `compare_with_random_twin` puts a number on it.

The checks re-draw the weights of the model itself for the duration of the
call, never a clone: its compiled steps serve the randomised weights without
tracing again (a clone is a new model, traced again by every method, which
costs seconds and hundreds of megabytes on a deep backbone). The trained
weights are restored on return, also after an error or an interrupt, and
checked bit for bit (`probes.randomized_twin.preserved_weights`); do not use
the model from another thread meanwhile.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np

from keras_introspect._progress import progress_bar
from keras_introspect._repr import Tabular, summary_repr
from keras_introspect._validation import (
    UNSET,
    check_backend,
    check_index,
    check_model,
    check_one_of,
    check_seed,
    check_verbose,
    renamed,
)
from keras_introspect.exceptions import KerasIntrospectWarning
from keras_introspect.metrics._scoring import explainer, image_array
from keras_introspect.metrics.similarity import MEASURES, map_similarity

MODES = ("cascading", "independent")


def _nanmean_rows(values: np.ndarray) -> np.ndarray:
    values = np.atleast_2d(values)
    finite = np.isfinite(values)
    totals = np.where(finite, values, 0.0).sum(axis=-1)
    counts = finite.sum(axis=-1)
    return np.divide(totals, counts, out=np.full(len(values), np.nan), where=counts > 0)


@dataclass
class RandomizationResult(Tabular):
    """Similarity of the maps of a randomised model to the trained model's maps.

    Attributes:
        method: the attribution method's name.
        mode: ``"cascading"`` (layer `i` and every layer above it are
            random) or ``"independent"`` (only layer `i`).
        measure: ``"spearman"`` or ``"ssim"``.
        layers: paths of the randomised layers, top first; row `i` of the
            arrays belongs to `layers[i]`.
        similarity: `(n_layers, n)` similarity of each image's map to its
            original map (signed maps).
        similarity_abs: the same on absolute values.
        maps: the trained model's maps `(n, ...)`.
        randomized_maps: `(n_layers, n, ...)` when `keep_maps=True`, else `None`.
    """

    __repr__ = summary_repr

    method: str
    mode: str
    measure: str
    layers: list
    similarity: np.ndarray
    similarity_abs: np.ndarray
    maps: np.ndarray
    randomized_maps: np.ndarray | None = None

    @property
    def mean(self) -> np.ndarray:
        """`(n_layers,)` mean similarity over the images (NaN images left out)."""
        return _nanmean_rows(self.similarity)

    @property
    def mean_abs(self) -> np.ndarray:
        """`(n_layers,)` mean similarity of the absolute maps."""
        return _nanmean_rows(self.similarity_abs)

    def plot(self, absolute: bool = False, ax=None):
        """Mean similarity per randomised layer, top first
        (`plotting.plot_randomization`); the Axes."""
        from keras_introspect.plotting.quality import plot_randomization

        return plot_randomization({self.method: self}, absolute=absolute, ax=ax)

    @property
    def table(self) -> list:
        """One dict per randomised layer: its mean similarity, signed and absolute."""
        return [
            {"randomised": layer, self.measure: s, f"{self.measure} (abs)": a}
            for layer, s, a in zip(self.layers, self.mean, self.mean_abs, strict=True)
        ]

    def rows(self) -> list:
        """Deprecated: `table` (one release with a `FutureWarning`)."""
        warnings.warn(
            "RandomizationResult.rows() is deprecated: use the .table property",
            FutureWarning,
            stacklevel=2,
        )
        return self.table


@dataclass
class MapComparison(Tabular):
    """Maps of the same images under two conditions, with their similarity.

    Attributes:
        check: ``"random logit"`` or ``"random twin"``.
        method: the attribution method's name.
        measure: ``"spearman"`` or ``"ssim"``.
        maps: `(n, ...)` the maps under test (the true class, the trained model).
        other_maps: `(n, ...)` the comparison maps (a random other class, the twin).
        similarity: `(n,)` per image; `similarity_abs` on absolute values.
        details: what the comparison used (`other_classes`, `seed`).
    """

    __repr__ = summary_repr

    check: str
    method: str
    measure: str
    maps: np.ndarray
    other_maps: np.ndarray
    similarity: np.ndarray
    similarity_abs: np.ndarray
    details: dict = field(default_factory=dict)

    def plot(self, **options):
        """Each image's two maps side by side with their similarity
        (`plotting.plot_map_comparison`); a Figure."""
        from keras_introspect.plotting.results import plot_map_comparison

        return plot_map_comparison(self, **options)

    @property
    def table(self) -> list:
        """One dict per image: the similarity of its two maps, signed and absolute."""
        return [
            {"image": i, self.measure: s, f"{self.measure} (abs)": a}
            for i, (s, a) in enumerate(zip(self.similarity, self.similarity_abs, strict=True))
        ]

    @property
    def mean(self) -> float:
        """Mean similarity over the images (NaN images left out)."""
        return float(_nanmean_rows(self.similarity)[0])

    @property
    def mean_abs(self) -> float:
        """Mean similarity of the absolute maps."""
        return float(_nanmean_rows(self.similarity_abs)[0])


def _similarities(a, b, measure) -> tuple:
    return map_similarity(a, b, measure), map_similarity(a, b, measure, absolute=True)


def _check_common(model, measure, seed) -> int:
    check_backend()
    check_model(model)
    check_one_of(measure, "similarity", MEASURES)
    return check_seed(seed)


def randomizable_layers(model, layers=None) -> list:
    """Paths of the layers a randomisation check re-draws, input side first.

    Default: every layer (also inside nested models) with trainable weights,
    except preprocessing layers; `layers` (a selector) restricts them.
    """
    from keras_introspect.model.introspector import Introspector

    return _randomizable(Introspector(model), layers)


def _randomizable(intro, layers) -> list:
    from keras_introspect.model._kinds import is_preprocessing

    infos = intro.layers if layers is None else intro.select(layers)
    chosen = [
        info.path
        for info in infos
        if not info.is_container
        and not is_preprocessing(info.layer)
        and any(v.trainable for v in info.layer.weights)
    ]
    if not chosen:
        raise ValueError(
            f"Expected layers with trainable weights to randomise. Received: "
            f"layers={layers!r} of model {intro.model.name!r}"
        )
    return chosen


def randomization_check(
    method,
    model,
    x,
    target,
    *,
    mode: str = "cascading",
    similarity: str = "spearman",
    layers=None,
    options=None,
    seed: int = 0,
    keep_maps: bool = False,
    maps=None,
    verbose: int = 0,
) -> RandomizationResult:
    """Model-parameter randomisation test (Adebayo et al. 2018), layer by layer from the top.

    The maps of the trained model are compared with the maps of a copy whose
    layers are re-drawn from their initializers: in ``"cascading"`` mode the
    top layer first, then the next one as well, down to the first; in
    ``"independent"`` mode one layer at a time, the others trained. A method
    that explains the model gives maps that differ more and more (low
    similarity); one that shows the input (edges, the image itself) stays
    near 1 whatever is randomised.

    Args:
        method: a method name (``"saliency"``, ``"gradcam"``, ...), an
            attribution class, or a callable `fn(model, x, target) -> maps`.
        model: a Keras 3 model; it is not changed (a copy is randomised).
        x: images `(n, H, W, C)`.
        target: what the maps explain.
        mode: ``"cascading"`` or ``"independent"``.
        similarity: ``"spearman"`` or ``"ssim"`` (with absolute values too).
        layers: selector of the layers to measure at (default: every layer
            with trainable weights), top first. In cascading mode every
            layer with weights above a measured layer is randomised as well,
            so a few measured layers of a deep model cost a few maps each.
        options: keyword arguments of the attribution class.
        seed: of the re-drawn weights.
        keep_maps: keep every randomised map in the result.
        maps: the trained model's maps of `x` for `target`, when already
            computed (they are not computed again).
        verbose: 0 silent, 1 progress bar over the layers.

    Returns:
        `RandomizationResult`: `layers` (top first), `similarity` and
        `similarity_abs` `(n_layers, n)`, their `mean` per layer.

    Example:
        >>> result = ki.metrics.randomization_check("saliency", model, x[:8],
        ...                                         ki.targets.Class(y[:8]))  # doctest: +SKIP
        >>> result.table[:2]                                                  # doctest: +SKIP
        [{'randomised': 'out', 'spearman': 0.41, 'spearman (abs)': 0.38}, ...]
    """

    from keras_introspect.model.introspector import Introspector
    from keras_introspect.probes.randomized_twin import preserved_weights, reinitialize

    seed = _check_common(model, similarity, seed)
    check_one_of(mode, "mode", MODES)
    verbose = check_verbose(verbose)
    name, explain = explainer(method, options)
    intro = Introspector(model)
    paths = _randomizable(intro, layers)[::-1]
    measured = set(paths)
    if mode == "cascading":  # every layer above a measured one is random too
        every = _randomizable(intro, None)[::-1]
        paths = every[: max(every.index(p) for p in measured) + 1]
    original = explain(model, x, target) if maps is None else np.asarray(maps)
    rng = np.random.default_rng(seed)
    rows, rows_abs, kept, done = [], [], [], []
    progbar = progress_bar(len(measured), verbose=verbose, unit_name="layer")
    with preserved_weights(model):  # re-drawn in place, restored and checked on exit
        for path in paths:
            layer = intro.layer(path).layer
            saved = [v.numpy() for v in layer.weights]
            if not reinitialize(layer, rng):
                warnings.warn(
                    f"Layer {path!r} has no initializer attribute for its weights; it is "
                    "left as trained, so its row measures nothing",
                    KerasIntrospectWarning,
                    stacklevel=2,
                )
            if path not in measured:
                continue
            maps = explain(model, x, target)
            if mode == "independent":
                for variable, value in zip(layer.weights, saved, strict=True):
                    variable.assign(value)
            done.append(path)
            same, same_abs = _similarities(original, maps, similarity)
            rows.append(same)
            rows_abs.append(same_abs)
            if keep_maps:
                kept.append(maps)
            progbar.add(1)
    return RandomizationResult(
        name,
        mode,
        similarity,
        done,
        np.stack(rows),
        np.stack(rows_abs),
        original,
        np.stack(kept) if keep_maps else None,
    )


def random_logit_check(
    method,
    model,
    x,
    target=None,
    *,
    similarity: str = "spearman",
    options=None,
    seed: int = 0,
    maps=None,
    labels=UNSET,
) -> MapComparison:
    """Map of the true class vs the map of a random other class (Adebayo et al. 2018).

    A map that explains the class differs between the two (low similarity);
    one that is the same for every class shows the image.

    Args:
        method: a method name, an attribution class, or a callable
            `fn(model, x, target) -> maps`.
        model: a classifier, output `(batch, classes)`.
        x: images `(n, H, W, C)`.
        target: the class of each image: an int, a sequence of `n` ints, or
            a `targets.Class` (its `logits` and `output` are kept).
        labels: the former name of `target` (a `FutureWarning`).
        similarity: ``"spearman"`` or ``"ssim"``.
        options: keyword arguments of the attribution class.
        seed: picks the other classes (uniform among the classes that are
            not the image's).
        maps: the maps of `x` for `labels`, when already computed.

    Returns:
        `MapComparison` with `details["classes"]` and `details["other_classes"]`.

    Example:
        >>> check = ki.metrics.random_logit_check("gradcam", model, x[:8], y[:8])  # doctest: +SKIP
        >>> check.mean                                                              # doctest: +SKIP
        0.12
    """
    labels = renamed(target, labels, "target", "labels", "random_logit_check")
    if labels is None:
        raise TypeError("random_logit_check() needs the class of each image as `target`")
    from keras_introspect.model.introspector import Introspector
    from keras_introspect.targets import Class, output_index

    seed = _check_common(model, similarity, seed)
    name, explain = explainer(method, options)
    given = labels if isinstance(labels, Class) else Class(labels)
    intro = Introspector(model)
    shapes = intro.output_shapes
    output = output_index(intro, given.output)
    if len(shapes[output]) != 2 or shapes[output][1] is None or shapes[output][1] < 2:
        raise ValueError(
            f"Expected a classifier output (batch, classes >= 2) for a random logit check. "
            f"Received: output shape {shapes[output]}"
        )
    n_classes = shapes[output][1]
    x = image_array(x, intro.input_specs)
    classes = np.asarray(given.index if isinstance(given.index, list) else [given.index] * len(x))
    if len(classes) != len(x):
        raise ValueError(
            f"Expected one label per image ({len(x)} images). Received: {len(classes)} labels"
        )
    classes = np.array([check_index(int(c), n_classes, "class index") for c in classes])
    draws = np.random.default_rng(seed).integers(n_classes - 1, size=len(x))
    others = np.where(draws >= classes, draws + 1, draws)
    true_target = given.replace(index=classes.tolist())  # (its region kept)
    other_target = given.replace(index=others.tolist())
    maps = explain(model, x, true_target) if maps is None else np.asarray(maps)
    other = explain(model, x, other_target)
    same, same_abs = _similarities(maps, other, similarity)
    details = {"classes": classes, "other_classes": others, "seed": seed}
    return MapComparison("random logit", name, similarity, maps, other, same, same_abs, details)


def compare_with_random_twin(
    method,
    model,
    x,
    target,
    *,
    similarity: str = "spearman",
    options=None,
    seed: int = 0,
    twin=None,
    maps=None,
) -> MapComparison:
    """The same map on the model and on its randomly initialised twin, with their similarity.

    Kalmeijer (2016, §4.3) put every visualization next to the one of a
    network with the same architecture and random weights; structure found in
    both comes from the architecture and the image, not from training. The
    similarity per image says by how much (see `probes.randomized_twin`).

    Args:
        method: a method name, an attribution class, or a callable
            `fn(model, x, target) -> maps`.
        model: a Keras 3 model.
        x: images; target: what the maps explain.
        similarity: ``"spearman"`` or ``"ssim"``.
        options: keyword arguments of the attribution class.
        seed: of the twin's weights.
        twin: a twin already built by `probes.randomized_twin`; `seed` is
            then not used. By default the model's own weights are re-drawn
            as `randomized_twin(model, seed)` draws them for the call
            (`probes.randomized_twin.randomized_weights`), which traces
            nothing again.
        maps: the trained model's maps of `x` for `target`, when already computed.

    Returns:
        `MapComparison`: `maps` (trained), `other_maps` (twin), `similarity`.

    Example:
        >>> twin = ki.metrics.compare_with_random_twin(
        ...     "saliency", model, x[:4], 0)                      # doctest: +SKIP
        >>> twin.similarity                                      # doctest: +SKIP
        array([0.21, 0.35, 0.18, 0.27])
    """
    from keras_introspect.probes.randomized_twin import randomized_weights

    seed = _check_common(model, similarity, seed)
    name, explain = explainer(method, options)
    maps = explain(model, x, target) if maps is None else np.asarray(maps)
    if twin is None:  # the model itself with the twin's weights: nothing traced again
        details = {"seed": seed}
        with randomized_weights(model, seed=seed):
            twin_maps = explain(model, x, target)
    else:
        check_model(twin, "twin")
        details = {"twin": twin.name}
        twin_maps = explain(twin, x, target)
    same, same_abs = _similarities(maps, twin_maps, similarity)
    return MapComparison("random twin", name, similarity, maps, twin_maps, same, same_abs, details)
