"""`explanation_quality`: every quality check of several attribution methods at once.

For each method: deletion and insertion curves against random maps (Petsiuk
et al. 2018), cascading randomisation of the layers from the top, a random
other class and a randomly initialised twin (Adebayo et al. 2018; Kalmeijer
2016, §4.3). It is what the report's quality section shows, as a result
object of its own: computed here, drawn by `plotting.quality`, rendered by
`Report.add_quality(result=...)`.
"""

from __future__ import annotations

import sys
import warnings
from dataclasses import dataclass, field

import numpy as np

from keras_introspect._repr import Tabular, summary_repr
from keras_introspect._tensor import is_probability

# Methods cheap enough to explain again for the max-sensitivity column (gradients):
# a perturbation method (occlusion, RISE, LIME, ...) would be run n_samples times more.
STABILITY_METHODS = (
    "saliency",
    "gradient_input",
    "integrated_gradients",
    "gradcam",
    "gradcam++",
    "layercam",
    "guided_backprop",
    "deconvnet",
)

# The median share by which the class probability of the images must differ from
# that of their baselines for deletion / insertion curves on probabilities to say
# anything.
SATURATION = 0.05


@dataclass
class QualityResult(Tabular):
    """The quality checks of several methods' maps, one row per method.

    Attributes:
        target: what the maps explain.
        scored: what the deletion / insertion curves score (the class
            probability, the logit when the probabilities are saturated), or
            `None` when the curves would be uninformative and were left out.
        normalized: whether the curves are normalised (1 = the image's
            score, 0 = the baseline image's).
        note: why `scored` is not what was asked for ("" when it is).
        curves: per method, `(deletion, insertion)` `CausalCurves`, or `()`
            when the curves were left out.
        randomization: per method, the cascading `RandomizationResult`.
        other_class: per method, the mean similarity to the maps of a random
            other class (NaN when `target` is not a `targets.Class`).
        twin: per method, the `MapComparison` with the randomly initialised twin.
        params: the settings used (images, steps, baseline, seed, ...).
    """

    target: object
    scored: object
    normalized: bool
    note: str
    curves: dict = field(default_factory=dict)
    randomization: dict = field(default_factory=dict)
    other_class: dict = field(default_factory=dict)
    twin: dict = field(default_factory=dict)
    road: dict = field(default_factory=dict)
    stability: dict = field(default_factory=dict)
    params: dict = field(default_factory=dict)

    __repr__ = summary_repr

    @property
    def informative(self) -> bool:
        """Whether the deletion / insertion curves were computed."""
        return self.scored is not None

    @property
    def table(self) -> list:
        """One dict per method: the curves' AUCs (when computed), then the four
        similarities to the trained model's map (low: the method explains the model)."""
        rows = []
        for name, randomised in self.randomization.items():
            row = {"method": name}
            if self.informative:
                down, up = self.curves[name]
                row.update(
                    {
                        "deletion AUC": down.mean_auc,
                        "deletion, random maps": down.random_mean_auc,
                        "insertion AUC": up.mean_auc,
                        "insertion, random maps": up.random_mean_auc,
                    }
                )
            rows.append(
                {
                    **row,
                    "top layer random": randomised.mean[0],
                    "all measured layers random": randomised.mean[-1],
                    "other class": self.other_class[name],
                    "random twin": self.twin[name].mean,
                    **(
                        {"ROAD, MoRF": self.road[name].mean if name in self.road else np.nan}
                        if self.road
                        else {}
                    ),
                    **(
                        {
                            "max sensitivity": self.stability[name].mean
                            if name in self.stability
                            else np.nan
                        }
                        if self.stability
                        else {}
                    ),
                }
            )
        return rows

    def plot(self):
        """The mean deletion and insertion curves against the random maps' band (a
        `Figure`); `ValueError` when the curves were left out."""
        from keras_introspect.plotting.quality import plot_causal_curves

        if not self.informative:
            raise ValueError(f"No curves to plot: {self.note}")
        return plot_causal_curves(self.curves, ylim=None if self.normalized else (0.0, 1.0))


def explanation_quality(
    model,
    x,
    target,
    methods=("saliency", "gradcam", "occlusion"),
    *,
    options=None,
    steps=20,
    baseline="blur",
    probabilities=True,
    layers=None,
    max_layers=6,
    seed=0,
    saturation=SATURATION,
    maps=None,
    road=True,
    stability=STABILITY_METHODS,
    verbose=0,
):
    """How much each method's maps can be trusted, in numbers.

    For every method: deletion and insertion AUC against random maps, the
    similarity of its maps after cascading randomisation of the layers from
    the top, for a random other class, and on a randomly initialised twin.
    A method whose maps stay alike when what the model learned is gone
    shows the image, not the model.

    Args:
        model: a Keras model.
        x: images (a few dozen give stable means).
        target: what the maps explain, one score per image; the random
            logit check runs when it is a `targets.Class`.
        methods: attribution method names (`attribution.maps.METHODS`).
        options: per method, keyword arguments of its class.
        steps, baseline: of the deletion and insertion curves (default: a
            blurred copy of the image, the baseline of Petsiuk et al.'s
            insertion, which leaves no sharp edges for the model to react to).
        probabilities: score the curves on the class probability (Petsiuk
            et al.) when `target` is a `targets.Class`; the maps still
            explain `target`. When the model's outputs are probabilities
            (all in [0, 1]) the curves are kept raw, else normalised.
        layers: layers to measure the randomisation at (default: up to
            `max_layers` of the layers with weights, spread, top included).
        seed: of the random maps, the re-drawn weights and the twin.
        saturation: when the class probability of the images and of their
            baseline images differ by less than this (median over the
            images), the probabilities are saturated and every map scores
            alike (a well-trained softmax); the curves then score the logit
            (normalised), or, for a model without logits, are left out and
            `note` says they are uninformative for the model.
        maps: per method, its maps of `x` computed beforehand (the others
            are computed).
        road: also score ROAD (`metrics.road`, MoRF, the scored target):
            deletion with the removed pixels imputed from their neighbours,
            so no out-of-distribution patch drives the curve; lower is better.
        stability: the methods (of `methods`) whose max-sensitivity
            (`metrics.max_sensitivity`, 5 perturbations of 2 % of the images'
            value range) is measured; by default the gradient methods, which
            are cheap to explain again. Others show NaN. `()` leaves it out.
        verbose: 1 prints a line per method on stderr.

    Returns:
        A `QualityResult`: `.table` (a row per method), `str()`, `.plot()`.

    Example:
        >>> result = ki.metrics.explanation_quality(
        ...     model, x, ki.targets.Class(y), methods=("saliency", "gradcam")
        ... )                                                        # doctest: +SKIP
        >>> print(result)                                            # doctest: +SKIP
    """
    from keras_introspect.metrics.causal import deletion, insertion
    from keras_introspect.metrics.randomization import (
        compare_with_random_twin,
        random_logit_check,
        randomizable_layers,
        randomization_check,
    )
    from keras_introspect.metrics.road import road as road_metric
    from keras_introspect.metrics.stability import max_sensitivity
    from keras_introspect.model.selectors import spread
    from keras_introspect.probes._scan import introspector
    from keras_introspect.targets import Class, output_index

    options, given = dict(options or {}), dict(maps or {})
    x = np.asarray(x)
    if layers is None:
        layers = spread(randomizable_layers(model), max_layers)
    scored, normalize, note = target, True, ""
    if probabilities and isinstance(target, Class):
        scored = target.replace(logits=False)  # (its region kept)
        # probabilities are comparable as they are (Petsiuk et al.); logits are not
        position = output_index(introspector(model), target.output)
        normalize = not bounded_outputs(model, x[:8], position)
        scored, normalize, note = _unsaturated(
            model, x, target, scored, normalize, baseline, saturation
        )
    result = QualityResult(target, scored, normalize, note)
    spread = float(np.ptp(x)) or 1.0  # the images' value range: the noise scales with it
    for i, name in enumerate(methods):
        if verbose:
            print(f"      quality {i + 1}/{len(methods)}: {name}", file=sys.stderr, flush=True)
        kwargs = options.get(name)
        method_maps = given[name] if name in given else _maps(model, x, name, target, kwargs)
        result.curves[name] = tuple(
            fn(
                model,
                x,
                method_maps,
                scored,
                steps,
                baseline,
                random_baseline=True,
                seed=seed,
                normalize=normalize,
            )
            for fn in ((deletion, insertion) if result.informative else ())
        )
        # the trained model's maps are computed once, above, for every check
        result.randomization[name] = randomization_check(
            name, model, x, target, layers=layers, options=kwargs, seed=seed, maps=method_maps
        )
        result.twin[name] = compare_with_random_twin(
            name, model, x, target, options=kwargs, seed=seed, maps=method_maps
        )
        if road and result.informative:
            result.road[name] = road_metric(
                model, x, method_maps, scored, seed=seed, noise=0.01 * spread
            )
        if name in tuple(stability or ()):
            with warnings.catch_warnings():  # a zero map's NaN shows in the table
                warnings.filterwarnings("ignore", message="Max sensitivity is undefined")
                result.stability[name] = max_sensitivity(
                    model,
                    x,
                    target,
                    name,
                    radius=0.02 * spread,
                    n_samples=5,
                    options=kwargs,
                    maps=method_maps,
                    seed=seed,
                )
        result.other_class[name] = (
            random_logit_check(
                name, model, x, target, options=kwargs, seed=seed, maps=method_maps
            ).mean
            if isinstance(target, Class)
            else float("nan")
        )
    result.params = {
        "images": len(x),
        "steps": steps,
        "baseline": baseline,
        "seed": seed,
        "layers": list(layers),
    }
    return result


def _maps(model, x, method, target, options):
    """`method`'s maps of `x`, with batches sized for the memory there is."""
    from keras_introspect.attribution.maps import get_method

    options = {"batch_size": "auto", **(options or {})}
    return get_method(method)(model, target, **options).explain(x)


def bounded_outputs(model, x, output: int = 0) -> bool:
    """Whether the model's `output` on `x` lies in [0, 1] (probabilities, not logits)."""
    import tensorflow as tf

    return is_probability(tf.nest.flatten(model(x, training=False))[output])


def _unsaturated(model, x, target, scored, normalize, baseline, saturation):
    """`(scored, normalize, note)` for the causal curves: the probabilities when they
    move between an image and its baseline, else the logits (normalised), else
    `(None, normalize, note)`: the curves would be noise."""
    from keras_introspect.metrics._scoring import Scorer
    from keras_introspect.metrics.causal import baseline_images

    images = bases = None

    def gap(what):
        nonlocal images, bases
        scorer = Scorer(model, what, 64, "explanation_quality")
        if images is None:  # validated and blurred once, scored per target
            images = scorer.images(x)
            bases = baseline_images(baseline, images).astype(images.dtype)
        else:
            scorer.images(images)
        ids = np.arange(len(images))
        return scorer(images, ids), scorer(bases, ids)

    image, base = gap(scored)
    moved = float(np.median(np.abs(image - base)))
    if moved >= saturation:
        return scored, normalize, ""
    why = (
        f"The class probability of the images and of their baseline images differ by "
        f"{moved:.4f} (median), less than {saturation}: the softmax is saturated, and "
        "deletion and insertion on probabilities would score every map, random ones "
        "included, alike."
    )
    logits = target.replace(logits=True)
    logit_image, logit_base = gap(logits)
    if not np.allclose(logit_image, image) and np.median(np.abs(logit_image - logit_base)) > 0:
        return logits, True, why + " The curves score the logit instead, normalised."
    return (
        None,
        normalize,
        why
        + (
            " The model exposes no logits, so the curves are left out: they are uninformative "
            "for this model."
        ),
    )
