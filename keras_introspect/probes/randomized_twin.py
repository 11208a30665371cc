"""A randomly initialised twin of a model: the baseline for every visualization.

Kalmeijer (2016, §4.3) shows each visualization of the trained network next
to the same visualization of a network with the same architecture and
random weights: structure that also appears in the twin (edges of the
input, for instance) comes from the architecture and the data, not from
training.
"""

from __future__ import annotations

import contextlib
import warnings

import numpy as np

from keras_introspect._validation import check_backend, check_model, check_seed
from keras_introspect.exceptions import KerasIntrospectWarning
from keras_introspect.model._keras_compat import all_sublayers
from keras_introspect.model._kinds import is_preprocessing


def _all_layers(model) -> list:
    return all_sublayers(model)


def _clone(model):
    import keras

    try:
        return keras.models.clone_model(model)
    except (ValueError, TypeError, NotImplementedError) as err:
        try:
            return model.__class__.from_config(model.get_config())
        except Exception as inner:  # any failure means "cannot rebuild"
            raise TypeError(
                f"Cannot build a twin of {model.name!r}: Keras can neither clone it "
                f"({err}) nor rebuild it from its config ({inner}). Subclassed models "
                "need `get_config` / `from_config`"
            ) from inner


def reinitialize(layer, rng, covered=None) -> list:
    """Draw the weights of `layer` again from its initializers, in place.

    Every variable of the layer that has an initializer attribute
    (`kernel_initializer` -> `kernel`, ...) gets a fresh draw with a seed
    taken from `rng`; nested layers are not visited.

    Args:
        layer: a built Keras layer (of a copy: the weights are overwritten).
        rng: a `numpy.random.Generator` the seeds come from.
        covered: ids of variables already drawn, updated (each variable is
            drawn once even when two initializers could name it).

    Returns:
        the variables drawn again.
    """

    covered = set() if covered is None else covered
    drawn = []
    for name, initializer in _initializers(layer):
        prefix = name[: -len("_initializer")]
        # kernel_initializer -> kernel; depthwise_initializer -> depthwise_kernel
        # (SeparableConv) or kernel (DepthwiseConv, which has no kernel_initializer)
        # (never the kernel for another prefix: a bias-free layer still has a
        # bias_initializer, and it must not re-draw the kernel with zeros)
        names = (prefix, f"{prefix}_kernel") + (("kernel",) if prefix == "depthwise" else ())
        candidates = [getattr(layer, a, None) for a in names]
        own = {id(w) for w in layer.weights}  # (keras.Variable is not their class in 3.3)
        variable = next(
            (v for v in candidates if id(v) in own and id(v) not in covered),
            None,
        )
        if variable is None:
            continue
        config = initializer.get_config()
        if "seed" in config:
            config["seed"] = int(rng.integers(2**31 - 1))
        fresh = type(initializer).from_config(config)
        variable.assign(fresh(variable.shape, dtype=variable.dtype))
        covered.add(id(variable))
        drawn.append(variable)
    return drawn


def _initializers(layer) -> list:
    """`(name, Initializer)` of every `*_initializer` of `layer`, from its public
    config (`get_config()`); for a layer without one (a custom layer that does not
    implement it), from its attributes."""
    import keras

    try:
        config = layer.get_config()
    except NotImplementedError:
        config = None
    found = []
    if config is not None:
        for name in sorted(config):
            if name.endswith("_initializer") and config[name] is not None:
                try:
                    found.append((name, keras.initializers.get(config[name])))
                except (ValueError, TypeError):
                    continue
        return found
    for name in sorted(vars(layer)):
        value = getattr(layer, name, None)
        if name.endswith("_initializer") and isinstance(value, keras.Initializer):
            found.append((name, value))
    return found


def trained_copy(model):
    """A copy of `model` with the same architecture and the same weights.

    Sanity checks randomise the layers of this copy, never the user's model.
    """
    check_model(model)
    copy = _build(_clone(model), model)
    weights = model.weights
    if len(copy.weights) != len(weights) or any(
        a.shape != b.shape for a, b in zip(copy.weights, weights, strict=True)
    ):
        raise TypeError(
            f"Cannot copy {model.name!r}: its clone has other weights "
            f"({len(copy.weights)} vs {len(weights)} variables)"
        )
    for target, source in zip(copy.weights, weights, strict=True):
        target.assign(source)
    return copy


def _build(twin, model):
    if not twin.built:
        from keras_introspect.model.introspector import Introspector

        specs = Introspector(model).input_specs
        zeros = [np.zeros((1, *s.shape[1:]), "float32") for s in specs]
        twin(zeros[0] if len(zeros) == 1 else zeros)
    return twin


@contextlib.contextmanager
def preserved_weights(model):
    """Context manager: whatever happens to `model`'s weights inside, they are
    restored on exit (also after an error or an interrupt) and checked bit for bit.

    The sanity checks re-draw the weights of the model itself for the duration
    of a computation instead of cloning it: a clone is a new model, which every
    compiled step traces again (seconds and hundreds of megabytes of
    TensorFlow's graph caches per clone on an EfficientNet), while the model's
    own compiled steps read its variables and serve the re-drawn weights as
    they are. Do not use the model from another thread meanwhile.

    Example:
        >>> import numpy as np, keras
        >>> model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
        >>> before = model.get_weights()[0].copy()
        >>> with preserved_weights(model):
        ...     _ = model.layers[0].kernel.assign(np.zeros((2, 1)))
        >>> bool(np.array_equal(model.get_weights()[0], before))
        True
    """
    variables = list(model.weights)
    saved = [np.array(v.numpy(), copy=True) for v in variables]
    try:
        yield model
    finally:
        for variable, value in zip(variables, saved, strict=True):
            variable.assign(value)
        changed = [
            v.path
            for v, value in zip(variables, saved, strict=True)
            if not np.array_equal(np.asarray(v.numpy()), value, equal_nan=True)
        ]
        if changed:  # never leave a silently altered model behind
            raise RuntimeError(
                f"Could not restore the weights of {model.name!r} after a sanity check: "
                f"{', '.join(changed[:5])} differ from the saved values"
            )


def randomize_weights(model, seed: int = 0, *, original=None) -> list:
    """Re-draw every weight of `model` in place as `randomized_twin` draws its twin's.

    Preprocessing layers keep their state (taken from `original`, the model the
    twin copies, when `model` is a copy). Returns the paths of the trainable
    weights that have no initializer on their layer (left as they are).
    """
    layers = _all_layers(model)
    sources = _all_layers(original) if original is not None else layers
    by_position = len(sources) == len(layers) and all(
        type(a) is type(b) for a, b in zip(sources, layers, strict=True)
    )
    rng = np.random.default_rng(seed)
    covered = set()
    for index, layer in enumerate(layers):
        if is_preprocessing(layer) and by_position:
            if sources[index] is not layer:
                layer.set_weights(sources[index].get_weights())
            covered.update(id(v) for v in layer.weights)
            continue
        reinitialize(layer, rng, covered)
    return [v.path for v in model.weights if id(v) not in covered and v.trainable]


@contextlib.contextmanager
def randomized_weights(model, seed: int = 0):
    """Context manager: `model` itself with its random twin's weights (the same as
    `randomized_twin(model, seed)`'s), its trained weights restored on exit.

    The twin without a copy: no clone to build and no compiled step to trace
    again (see `preserved_weights`, whose restore guarantees apply). Weights
    without an initializer on their layer keep their trained values, with a
    warning.

    Example:
        >>> import numpy as np, keras, keras_introspect as ki
        >>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, name="d")])
        >>> trained = model.get_layer("d").kernel.numpy().copy()
        >>> with randomized_weights(model, seed=0) as twin:
        ...     drawn = twin.get_layer("d").kernel.numpy().copy()
        >>> bool(np.allclose(drawn, ki.randomized_twin(model, seed=0).get_layer("d").kernel))
        True
        >>> bool(np.array_equal(model.get_layer("d").kernel.numpy(), trained))
        True
    """
    check_backend()
    check_model(model)
    seed = check_seed(seed)
    with preserved_weights(model):
        kept = randomize_weights(model, seed)
        if kept:
            warnings.warn(
                f"{len(kept)} weight(s) have no initializer attribute on their layer "
                f"({', '.join(kept[:5])}{', ...' if len(kept) > 5 else ''}); the random "
                "twin keeps their trained values",
                KerasIntrospectWarning,
                stacklevel=3,
            )
        yield model


def randomized_twin(model, seed: int = 0):
    """A copy of `model` with the same architecture and freshly initialised weights.

    Every weight that has an initializer on its layer (kernels, biases,
    batch-norm scales and statistics, ...) is drawn again from that
    initializer with a seed derived from `seed`, so the twin is the same for
    the same seed. Preprocessing layers (`Normalization`, ...) keep their
    state: they are part of the input pipeline, not of what was learned. The
    model itself is not changed.

    Args:
        model: a built Keras 3 model (Sequential, Functional, nested, or
            subclassed with `get_config`).
        seed: integer seed.

    Returns:
        a new `keras.Model`.

    Example:
        >>> import numpy as np, keras, keras_introspect as ki
        >>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, name="d")])
        >>> twin = ki.randomized_twin(model, seed=0)
        >>> twin.get_layer("d").kernel.shape == model.get_layer("d").kernel.shape
        True
        >>> bool(np.allclose(ki.randomized_twin(model, seed=0).get_layer("d").kernel,
        ...                  twin.get_layer("d").kernel))
        True
    """
    check_backend()
    check_model(model)
    seed = check_seed(seed)
    twin = _build(_clone(model), model)
    unseeded = randomize_weights(twin, seed, original=model)
    if unseeded:
        warnings.warn(
            f"{len(unseeded)} weight(s) of the twin have no initializer attribute on their "
            f"layer ({', '.join(unseeded[:5])}{', ...' if len(unseeded) > 5 else ''}); they "
            "keep Keras' fresh but unseeded initialisation, so the twin is not reproducible",
            KerasIntrospectWarning,
            stacklevel=2,
        )
    return twin
