"""Input checks shared by every public entry point.

Messages follow the Keras wording: "Expected ... Received: name=value".
"""

from __future__ import annotations

import numbers

import numpy as np

from keras_introspect.exceptions import UnsupportedBackendError


def check_backend() -> None:
    """Raise `UnsupportedBackendError` unless Keras runs on TensorFlow."""
    import keras

    backend = keras.backend.backend()
    if backend != "tensorflow":
        raise UnsupportedBackendError(
            "keras_introspect needs the TensorFlow backend of Keras 3 (it uses "
            "tf.GradientTape and tf.function). Set KERAS_BACKEND=tensorflow before "
            f"importing keras. Received: keras.backend.backend()={backend!r}"
        )


def check_model(model, name: str = "model") -> None:
    """Raise `TypeError` unless `model` is a Keras 3 model."""
    import keras

    if not isinstance(model, keras.Model):
        raise TypeError(
            f"Expected `{name}` to be a keras.Model (Keras 3). "
            f"Received: {name}={model!r} of type {type(model).__name__}"
        )


def check_positive_int(value, name: str) -> int:
    """Return `value` as int if it is an integer >= 1, else raise `ValueError`."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"Expected `{name}` to be an integer >= 1. Received: {name}={value!r}")
    return int(value)


def check_verbose(verbose) -> int:
    """Return `verbose` if it is 0, 1 or 2 (Keras convention), else raise."""
    if isinstance(verbose, bool):
        verbose = int(verbose)
    if verbose not in (0, 1, 2):
        raise ValueError(f"Expected `verbose` in (0, 1, 2). Received: verbose={verbose!r}")
    return int(verbose)


def check_one_of(value, name: str, options) -> None:
    """Raise `ValueError` unless `value` is one of `options`."""
    if value not in options:
        raise ValueError(
            f"Expected `{name}` to be one of {list(options)}. Received: {name}={value!r}"
        )


def check_finite(array: np.ndarray, name: str = "x") -> None:
    """Raise `ValueError` if a floating array holds NaN or infinity."""
    if np.issubdtype(array.dtype, np.complexfloating):
        raise ValueError(f"Complex data not supported. Received: {name} of dtype {array.dtype}")
    if np.issubdtype(array.dtype, np.floating) and not np.isfinite(array).all():
        n_bad = int(array.size - np.isfinite(array).sum())
        raise ValueError(
            f"Input contains NaN or infinity ({n_bad} values). Expected finite "
            f"values in `{name}`. Received: {name} with shape {array.shape}"
        )


def check_seed(seed, name: str = "seed") -> int:
    """Return `seed` as int if it is an integer >= 0, else raise `ValueError`."""
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise ValueError(f"Expected `{name}` to be an integer >= 0. Received: {name}={seed!r}")
    return int(seed)


def check_random_state(value, name: str = "random_state"):
    """An estimator's `random_state` as scikit-learn takes it: `None`, an integer >= 0
    (as it is), or a `numpy.random.RandomState` / `Generator` (one seed drawn from it)."""
    if value is None:
        return None
    if isinstance(value, np.random.RandomState):
        return int(value.randint(2**31 - 1))
    if isinstance(value, np.random.Generator):
        return int(value.integers(2**31 - 1))
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
        raise ValueError(
            f"Expected `{name}` to be None, an integer >= 0 or a numpy RandomState. "
            f"Received: {name}={value!r}"
        )
    return int(value)


class _Unset:
    """The default of a deprecated parameter: "not passed" (None may be a real value)."""

    def __repr__(self) -> str:
        return "UNSET"


UNSET = _Unset()


def renamed(value, old_value, name: str, old_name: str, where: str, stacklevel: int = 3):
    """`value`, or the value passed under a parameter's former name `old_name` (with a
    `FutureWarning`: kept for one release). Both at once is a `TypeError`."""
    if old_value is UNSET:
        return value
    if value is not None:
        raise TypeError(f"{where}: pass `{name}` only (`{old_name}` is its former name)")
    import warnings

    warnings.warn(
        f"{where}({old_name}=...) is deprecated and will be removed in the next release: "
        f"pass {name}=...",
        FutureWarning,
        stacklevel=stacklevel,
    )
    return old_value


def check_baseline(value, name: str = "baseline"):
    """A baseline: a finite number (as float) or an array of finite values (float32)."""
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        return check_number(value, name)
    try:
        array = np.asarray(value, np.float32)
    except (TypeError, ValueError) as err:
        raise ValueError(
            f"Expected `{name}` to be a number or an array. Received: {name}={value!r}"
        ) from err
    if not np.all(np.isfinite(array)):
        raise ValueError(
            f"Expected `{name}` with finite values. Received: {name} with "
            f"{int(np.sum(~np.isfinite(array)))} NaN or infinite value(s)"
        )
    return array


def check_number(value, name: str, minimum=None, strict: bool = False) -> float:
    """Return `value` as float if it is a real number (above `minimum`), else raise."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not np.isfinite(value):
        raise ValueError(f"Expected `{name}` to be a finite number. Received: {name}={value!r}")
    if minimum is not None and (value <= minimum if strict else value < minimum):
        bound = f"> {minimum}" if strict else f">= {minimum}"
        raise ValueError(f"Expected `{name}` {bound}. Received: {name}={value!r}")
    return float(value)


def capped_steps(steps, name: str = "steps") -> int:
    """`steps`, capped by the environment variable ``KI_MAX_STEPS`` when it is set.

    Optimisation loops read the cap so that test suites and smoke runs of
    examples stay fast without changing any call; a capped call warns
    (`KerasIntrospectWarning`), so a cap left set is never silent.
    """
    import os

    steps = check_positive_int(steps, name)
    cap = os.environ.get("KI_MAX_STEPS")
    if cap is None or cap == "":
        return steps
    try:
        cap = int(cap)
    except ValueError:
        cap = 0
    if cap < 1:
        raise ValueError(
            "Expected the environment variable KI_MAX_STEPS to be an integer >= 1. "
            f"Received: KI_MAX_STEPS={os.environ['KI_MAX_STEPS']!r}"
        )
    if steps > cap:
        import warnings

        from keras_introspect.exceptions import KerasIntrospectWarning

        warnings.warn(
            f"KI_MAX_STEPS={cap} caps {name}={steps} to {cap} (a hook for tests and smoke "
            "runs; unset it for real results)",
            KerasIntrospectWarning,
            stacklevel=3,
        )
    return min(steps, cap)


def check_instances(values, cls, name: str, expected: str) -> list:
    """`values` (one object, a sequence of them, or `None`) as a list of `cls` instances.

    Args:
        values: what the user passed.
        cls: the required class.
        name: the parameter name, for the error message.
        expected: what to ask for, e.g. "keras_introspect.optimize.transforms objects".
    """
    if values is None:
        return []
    if isinstance(values, cls):
        values = [values]
    values = list(values)
    for value in values:
        if not isinstance(value, cls):
            raise TypeError(f"Expected `{name}` to hold {expected}. Received: {value!r}")
    return values


def check_index(value, size: int, what: str) -> int:
    """`value` as an index into `size` items (negative from the end), or a ValueError."""
    from keras_introspect.targets import as_index

    value = as_index(value.item() if isinstance(value, np.ndarray) else value, what)
    if not -size <= value < size:
        raise ValueError(
            f"Expected {what} in the range [0, {size - 1}] (or negative from the end). "
            f"Received: {value}"
        )
    return int(value) % size


def check_value_range(value_range):
    """`None`, or `(low, high)` as floats with finite low < high."""
    if value_range is None:
        return None
    try:
        low, high = (float(v) for v in value_range)
    except (TypeError, ValueError) as err:
        raise ValueError(
            f"Expected `value_range` as (low, high). Received: value_range={value_range!r}"
        ) from err
    if not (np.isfinite(low) and np.isfinite(high) and low < high):
        raise ValueError(
            f"Expected `value_range` with finite low < high. Received: value_range={value_range!r}"
        )
    return (low, high)
