"""Stability: how much a method's maps change when the images change a little.

Each image `x` is perturbed `n_samples` times, `x' = x + delta` with
`delta` drawn uniformly in the L-infinity ball of radius `radius` (every
value of every pixel and channel independently in `[-radius, radius)`, in
the units of `x`; nothing is clipped), and the perturbed copies are
explained again with the same method and target. With `Phi` the map and
`||.||` the Frobenius norm (the Euclidean norm of the flattened map or
image):

- `max_sensitivity` / `avg_sensitivity` (Yeh et al. 2019): the max / mean
  over the samples of `||Phi(x') - Phi(x)|| / ||Phi(x)||`
  (`normalize="map"`, Captum's `sensitivity_max` and Quantus 0.6's
  `MaxSensitivity` and `AvgSensitivity`); `normalize="input"` divides by
  `||x||` instead, `normalize=None` by nothing (the definition of Yeh et
  al.).
- `local_lipschitz` (Alvarez-Melis & Jaakkola 2018): the max over the
  samples of `||Phi(x) - Phi(x')|| / ||x - x'||`.

Lower is more stable for all three. For a linear model and gradient
saliency the map does not depend on the image: all three are 0. For
`f(x) = c/2 ||x||^2` the gradient is `c x`, so the map moves by `c delta`
and the local Lipschitz estimate is `c`.

The draws depend on `seed` and the sample only (sample `k` of every image
comes from `numpy.random.default_rng([seed, k])`), and every image keeps
its position in each call of the method, so results are the same for any
`batch_size`. The images and their perturbed copies are explained in calls
of about `batch_size` rows (as many copies of the images as fit, at least
one; the images themselves in the first call), `batch_size` being passed to
the method. A method that draws noise by image position (an attribution
class with a `seed` option: SmoothGrad, SquareGrad, VarGrad) and a callable
are given one copy of the images per call instead, so that each image
draws the same noise for its perturbed copies as for its own map.
"""

from __future__ import annotations

import inspect
import numbers
from dataclasses import dataclass, field

import numpy as np

from keras_introspect._data import as_array
from keras_introspect._memory import resolve_batch_size
from keras_introspect._progress import progress_bar
from keras_introspect._validation import (
    check_backend,
    check_finite,
    check_model,
    check_number,
    check_one_of,
    check_positive_int,
    check_seed,
    check_verbose,
)
from keras_introspect.metrics._scoring import explainer, image_array
from keras_introspect.metrics.complexity import PerImage, warn_undefined

NORMALIZATIONS = ("map", "input", None)


@dataclass(repr=False)
class StabilityResult(PerImage):
    """How much one method's maps change under small perturbations of the images.

    Attributes:
        measure: ``"max sensitivity"``, ``"avg sensitivity"`` or
            ``"local lipschitz"``; lower is more stable.
        method: the attribution method's name.
        values: `(n,)` per image: the max (or mean) of `ratios` over the samples.
        ratios: `(n, n_samples)` the ratio of each perturbed sample (see the
            module docstring; NaN when its denominator is 0, and then left
            out of `values`).
        maps: `(n, ...)` the maps of the unperturbed images.
        params: the settings (`radius`, `n_samples`, `normalize`, `seed`).
    """

    measure: str
    method: str
    values: np.ndarray
    ratios: np.ndarray
    maps: np.ndarray = field(repr=False)
    params: dict = field(default_factory=dict)

    def __repr__(self):
        return (
            f"StabilityResult({self.measure} of {self.method}, {len(self.values)} images, "
            f"{self.ratios.shape[1]} samples, radius {self.params.get('radius')}, "
            f"mean {self.mean:.3g})"
        )


def tiled(target, n: int, reps: int):
    """`target` for `reps` copies of `n` images one after the other, or `None` when
    that cannot be told (a target class of one's own may hold values per image)."""
    from keras_introspect import targets

    if isinstance(target, targets.Class) and isinstance(target.index, list):
        if len(target.index) != n:
            raise ValueError(
                f"Expected one class index per image ({n} images). Received: "
                f"{len(target.index)} indices in {target!r}"
            )
        if reps == 1:
            return target
        if target.region_kind == "positions":
            raise ValueError(
                f"Expected one region for every image when the images are perturbed. "
                f"Received: a region per image in {target!r}"
            )
        return target.replace(index=target.index * reps)
    if reps == 1 or isinstance(target, targets.Class):
        return target
    if isinstance(target, targets.Sum):
        terms = [(weight, tiled(term, n, reps)) for weight, term in target.terms]
        return None if any(t is None for _, t in terms) else targets.Sum(terms)
    shared = (targets.Channel, targets.Neuron, targets.Layer, targets.Direction, targets.Score)
    if isinstance(target, shared):
        return target
    if isinstance(target, numbers.Integral) or (
        isinstance(target, np.ndarray) and target.ndim == 0
    ):
        return target
    if callable(target) and not isinstance(target, targets.Target):
        return target
    return None


def _plan(method, options, batch_size, n, target) -> tuple:
    """`(name, explain, samples per call)`; the method gets `batch_size` and no progress bar."""
    from keras_introspect.attribution.maps import get_method

    options = dict(options or {})
    for key in ("batch_size", "verbose"):
        if key in options:
            raise ValueError(
                f"Expected `{key}` as an argument of the metric, not in `options`. Received: "
                f"options={options!r}"
            )
    if callable(method) and not isinstance(method, type):
        name, explain = explainer(method, options)
        return name, explain, 1
    cls = get_method(method)
    name, explain = explainer(method, {**options, "batch_size": batch_size, "verbose": 0})
    # noise keyed by the image's position: one copy of the images per call keeps it
    per_call = 1 if "seed" in inspect.signature(cls.__init__).parameters else batch_size // n
    if per_call > 1 and tiled(target, n, per_call) is None:
        per_call = 1
    return name, explain, max(1, per_call)


def _images(model, x) -> np.ndarray:
    from keras_introspect.model.introspector import Introspector

    specs = Introspector(model).input_specs
    if specs is None or len(specs) != 1 or not 2 <= len(specs[0].shape) <= 5:
        raise ValueError(
            "Stability metrics need a model with one image input (batch, H, W, C) (or one "
            "signal (batch, L, C), vector (batch, L) or volume (batch, D, H, W, C) input). "
            f"Received: inputs {None if specs is None else [s.shape for s in specs]}"
        )
    x = image_array(x, specs)
    return x if np.issubdtype(x.dtype, np.floating) else x.astype(np.float32)


def perturbation(x: np.ndarray, radius: float, seed: int, sample: int) -> np.ndarray:
    """Sample `sample` of the perturbed images: `x + delta`, `delta` uniform in
    `[-radius, radius)` per value, from `numpy.random.default_rng([seed, sample])`."""
    delta = np.random.default_rng([seed, sample]).uniform(-radius, radius, size=x.shape)
    return (x.astype(np.float64) + delta).astype(x.dtype)


def _check_given(maps, n: int) -> np.ndarray:
    maps = as_array(maps, "maps")
    if maps.ndim < 2 or len(maps) != n:
        raise ValueError(
            f"Expected the maps of the {n} images, shape ({n}, ...). Received: maps with "
            f"shape {maps.shape}"
        )
    check_finite(maps.astype(np.float64, copy=False), "maps")
    return maps


def _run(model, x, target, method, radius, n_samples, options, maps, seed, batch_size, verbose):
    """`(name, x, maps, map distances (n, n_samples), image distances (n, n_samples), params)`:
    `||Phi(x') - Phi(x)||` and `||x' - x||` of every image and sample."""
    from keras_introspect.model.introspector import Introspector

    check_backend()
    check_model(model)
    radius = check_number(radius, "radius", 0.0, strict=True)
    n_samples = check_positive_int(n_samples, "n_samples")
    seed = check_seed(seed)
    verbose = check_verbose(verbose)
    batch_size = resolve_batch_size(batch_size, Introspector(model))
    x = _images(model, x)
    n = len(x)
    tiled(target, n, 1)  # a per-image target of the wrong length is refused here
    name, explain, per_call = _plan(method, options, batch_size, n, target)
    # the copies to explain: the images themselves (None) unless their maps are given,
    # then every sample; `per_call` copies of the images per call of the method
    copies = ([None] if maps is None else []) + list(range(n_samples))
    calls = [copies[i : i + per_call] for i in range(0, len(copies), per_call)]
    if maps is not None:
        maps = _check_given(maps, n)
    progbar = progress_bar(len(calls), verbose=verbose, unit_name="call")
    targets = {}  # copies per call -> target, alive while used (the explainer caches by id)
    map_gaps, image_gaps = np.empty((n, n_samples)), np.empty((n, n_samples))
    for call in calls:
        rows = np.concatenate([x if k is None else perturbation(x, radius, seed, k) for k in call])
        if len(call) not in targets:
            targets[len(call)] = tiled(target, n, len(call))
        out = np.asarray(explain(model, rows, targets[len(call)]))
        if call[0] is None:
            maps = out[:n].copy()
        if out.shape != (len(rows), *maps.shape[1:]):
            raise ValueError(
                f"Expected the maps of the perturbed images to have the shape of `maps`, "
                f"{maps.shape[1:]} per image. Received: {out.shape[1:]} from {name}"
            )
        progbar.add(1)
        samples = [k for k in call if k is not None]
        if not samples:
            continue
        first = (len(call) - len(samples)) * n  # the images themselves come first
        flat = maps.reshape(1, n, -1).astype(np.float64)
        out = out[first:].reshape(len(samples), n, -1).astype(np.float64)
        map_gaps[:, samples] = np.linalg.norm(out - flat, axis=2).T
        moved = rows[first:].reshape(len(samples), n, -1).astype(np.float64)
        image_gaps[:, samples] = np.linalg.norm(moved - x.reshape(1, n, -1), axis=2).T
    params = {"radius": radius, "n_samples": n_samples, "seed": seed}
    return name, x, maps, map_gaps, image_gaps, params


def _ratios(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    return np.divide(
        numerator,
        denominator,
        out=np.full(numerator.shape, np.nan),
        where=denominator > 0,
    )


def _per_image(ratios: np.ndarray, how: str) -> np.ndarray:
    """Max or mean of each row's finite ratios (a sample whose denominator is 0 says
    nothing); NaN for a row without any."""
    finite = np.isfinite(ratios)
    counts = finite.sum(axis=1)
    if how == "max":
        values = np.where(finite, ratios, -np.inf).max(axis=1)
    else:
        values = np.where(finite, ratios, 0.0).sum(axis=1) / np.maximum(counts, 1)
    return np.where(counts > 0, values, np.nan)


def _sensitivity(measure, reduce, model, x, target, method, normalize, **kwargs):
    check_one_of(normalize, "normalize", NORMALIZATIONS)
    name, x, maps, map_gaps, _, params = _run(model, x, target, method, **kwargs)
    n = len(x)
    if normalize is None:
        ratios = map_gaps
    else:
        base = maps if normalize == "map" else x
        norms = np.linalg.norm(base.reshape(n, -1).astype(np.float64), axis=1)
        warn_undefined(norms == 0, measure.capitalize(), f"its {normalize} is zero", stacklevel=4)
        ratios = _ratios(map_gaps, np.repeat(norms[:, None], map_gaps.shape[1], axis=1))
    values = _per_image(ratios, reduce)
    return StabilityResult(measure, name, values, ratios, maps, {**params, "normalize": normalize})


_ARGS = """
    Args:
        model: a single-input Keras 3 model.
        x: images `(n, H, W, C)` (one image without batch axis is accepted).
        target: what the maps explain (as for the method).
        method: a method name (``"saliency"``, ``"gradcam"``, ...), an
            attribution class, or a callable `fn(model, x, target) -> maps`.
        radius: half the side of the L-infinity ball the perturbations are
            drawn from, in the units of `x` (0.02 is about 5 grey levels of
            images in [0, 1]); > 0.
        n_samples: perturbed copies per image.{normalize}
        options: keyword arguments of the attribution class.
        maps: the maps of `x` for `target`, when already computed with the
            same method and options (they are not computed again).
        seed: of the perturbations.
        batch_size: rows per call of the method, passed to it (``"auto"``:
            as many as fit in memory).
        verbose: 0 silent, 1 progress bar over the calls of the method.
"""

_NORMALIZE = """
        normalize: ``"map"`` divides by `||Phi(x)||` (Captum, Quantus 0.6),
            ``"input"`` by `||x||`, `None` by nothing (Yeh et al.)."""

_RAISES = """
    Raises:
        ValueError: a model without one image input, a `radius` <= 0, a
            per-image target of another length than `x`, `batch_size` or
            `verbose` in `options`, given `maps` of another shape than the
            method's.
"""


def max_sensitivity(
    model,
    x,
    target,
    method,
    *,
    radius: float = 0.02,
    n_samples: int = 10,
    normalize: str | None = "map",
    options=None,
    maps=None,
    seed: int = 0,
    batch_size=64,
    verbose: int = 0,
) -> StabilityResult:
    """Max-sensitivity (Yeh et al. 2019): the largest relative change of the map, per image.

    `max_k ||Phi(x + delta_k) - Phi(x)|| / ||Phi(x)||` over `n_samples`
    uniform perturbations `delta_k` in the L-infinity ball of radius
    `radius`; Frobenius norms (see the module docstring). Lower is more stable.
    {args}
    Returns:
        `StabilityResult`: `values` `(n,)`, `ratios` `(n, n_samples)`, `mean`.
    {raises}
    Example:
        >>> import numpy as np, keras, keras_introspect as ki
        >>> model = keras.Sequential([keras.Input((4, 4, 1)), keras.layers.Flatten(),
        ...     keras.layers.Dense(1, use_bias=False)])   # linear: saliency is constant
        >>> x = np.random.default_rng(0).random((2, 4, 4, 1)).astype("float32")
        >>> ki.metrics.max_sensitivity(model, x, 0, "saliency", n_samples=3).values.tolist()
        [0.0, 0.0]
    """
    return _sensitivity(
        "max sensitivity",
        "max",
        model,
        x,
        target,
        method,
        normalize,
        radius=radius,
        n_samples=n_samples,
        options=options,
        maps=maps,
        seed=seed,
        batch_size=batch_size,
        verbose=verbose,
    )


def avg_sensitivity(
    model,
    x,
    target,
    method,
    *,
    radius: float = 0.02,
    n_samples: int = 10,
    normalize: str | None = "map",
    options=None,
    maps=None,
    seed: int = 0,
    batch_size=64,
    verbose: int = 0,
) -> StabilityResult:
    """Avg-sensitivity (Yeh et al. 2019): the mean relative change of the map, per image.

    `mean_k ||Phi(x + delta_k) - Phi(x)|| / ||Phi(x)||` over `n_samples`
    uniform perturbations `delta_k` in the L-infinity ball of radius
    `radius`; Frobenius norms (see the module docstring). Lower is more stable.
    {args}
    Returns:
        `StabilityResult`: `values` `(n,)`, `ratios` `(n, n_samples)`, `mean`.
    {raises}
    Example:
        >>> import numpy as np, keras, keras_introspect as ki
        >>> model = keras.Sequential([keras.Input((4, 4, 1)), keras.layers.Flatten(),
        ...     keras.layers.Dense(1, use_bias=False)])   # linear: saliency is constant
        >>> x = np.random.default_rng(0).random((2, 4, 4, 1)).astype("float32")
        >>> ki.metrics.avg_sensitivity(model, x, 0, "saliency", n_samples=3).mean
        0.0
    """
    return _sensitivity(
        "avg sensitivity",
        "mean",
        model,
        x,
        target,
        method,
        normalize,
        radius=radius,
        n_samples=n_samples,
        options=options,
        maps=maps,
        seed=seed,
        batch_size=batch_size,
        verbose=verbose,
    )


def local_lipschitz(
    model,
    x,
    target,
    method,
    *,
    radius: float = 0.02,
    n_samples: int = 10,
    options=None,
    maps=None,
    seed: int = 0,
    batch_size=64,
    verbose: int = 0,
) -> StabilityResult:
    """Local Lipschitz estimate (Alvarez-Melis & Jaakkola 2018), per image.

    `max_k ||Phi(x) - Phi(x + delta_k)|| / ||delta_k||` over `n_samples`
    uniform perturbations `delta_k` in the L-infinity ball of radius
    `radius` (`delta_k` as the model sees it, after rounding to the dtype
    of `x`); Euclidean norms of the flattened maps and images. Lower is
    more stable; for gradient saliency of `f(x) = c/2 ||x||^2` it is `c`.
    {args}
    Returns:
        `StabilityResult`: `values` `(n,)`, `ratios` `(n, n_samples)`, `mean`.
    {raises}
    Example:
        >>> import numpy as np, keras, keras_introspect as ki
        >>> square = keras.layers.Lambda(lambda t: keras.ops.sum(t * t, axis=(1, 2, 3))[:, None])
        >>> model = keras.Sequential([keras.Input((4, 4, 1)), square])  # gradient 2 x
        >>> x = np.full((1, 4, 4, 1), 0.5, "float32")
        >>> result = ki.metrics.local_lipschitz(model, x, 0, "saliency", n_samples=3)
        >>> result.values.round(4).tolist()
        [2.0]
    """
    name, x, maps, map_gaps, image_gaps, params = _run(
        model,
        x,
        target,
        method,
        radius,
        n_samples,
        options,
        maps,
        seed,
        batch_size,
        verbose,
    )
    ratios = _ratios(map_gaps, image_gaps)
    values = _per_image(ratios, "max")
    why = f"every perturbation rounds to 0 in {x.dtype}: use a larger radius"
    warn_undefined(np.isnan(values), "The local Lipschitz estimate", why)
    return StabilityResult("local lipschitz", name, values, ratios, maps, params)


for _function, _normalize in (
    (max_sensitivity, _NORMALIZE),
    (avg_sensitivity, _NORMALIZE),
    (local_lipschitz, ""),
):
    _function.__doc__ = _function.__doc__.replace(
        "{args}", _ARGS.format(normalize=_normalize).strip("\n").lstrip()
    ).replace("{raises}", _RAISES.strip("\n").lstrip())
