"""Record (and, for backward rules, wrap) layer calls during one forward pass.

Keras 3 runs every layer through `Layer.__call__`, which ends in `self.call`.
While a `patching` block is open, `call` of the chosen layers is shadowed by
an instance attribute that forwards to the original. The block restores the
layers exactly on exit, so the user's model is left as it was; it is meant to
be open only while a forward pass is traced, so compiled functions carry no
trace of it. This works the same for Sequential, Functional, nested and
subclassed models, and needs no graph surgery (which, in Keras 3, would add
inbound nodes to the user's layers).
"""

from __future__ import annotations

import contextlib
import threading

from keras_introspect.model._keras_compat import (
    DTYPE_POLICY,
    MANUAL_INPUT_SPEC,
    dtype_policy,
    is_functional_graph,
)

_LOCK = threading.RLock()


@contextlib.contextmanager
def patching(wrappers):
    """Within the block, each layer's `call` is `wrap(layer, original_call)`.

    Args:
        wrappers: `(layer, wrap)` pairs; several wrappers of one layer are
            composed in the order given (the first one is innermost).
    """
    with _LOCK:
        saved = {}
        try:
            for layer, wrap in wrappers:
                if id(layer) not in saved:
                    saved[id(layer)] = (layer, "call" in layer.__dict__, layer.__dict__.get("call"))
                object.__setattr__(layer, "call", wrap(layer, layer.call))
            yield
        finally:
            for layer, had_own, previous in reversed(saved.values()):
                if had_own:
                    object.__setattr__(layer, "call", previous)
                else:
                    object.__delattr__(layer, "call")


def recording(layers, on_call):
    """Within the block, `on_call(layer, args, kwargs, outputs)` follows each call.

    Args:
        layers: the layers to watch (duplicates are watched once).
        on_call: callback invoked after each call of a watched layer.
    """

    def wrap(layer, inner):
        def call(*args, **kwargs):
            outputs = inner(*args, **kwargs)
            on_call(layer, args, kwargs, outputs)
            return outputs

        return call

    unique = {id(layer): layer for layer in layers}
    return patching([(layer, wrap) for layer in unique.values()])


@contextlib.contextmanager
def swapped_attribute(layer, name: str, value):
    """Shadow `layer.<name>` with `value` for the block (Keras tracking bypassed)."""
    had_own = name in layer.__dict__
    previous = layer.__dict__.get(name)
    object.__setattr__(layer, name, value)
    try:
        yield
    finally:
        if had_own:
            object.__setattr__(layer, name, previous)
        else:
            object.__delattr__(layer, name)


@contextlib.contextmanager
def free_input_shapes(layers):
    """Within the block, Functional models accept inputs of any spatial size.

    A Functional model checks its inputs against the shapes of its `Input`s;
    a truncated forward pass on a receptive-field patch only runs layers that
    accept any size, so the check is lifted (Keras reads its manual input spec
    first when it is set: `_keras_compat.MANUAL_INPUT_SPEC`).
    """
    with _LOCK, contextlib.ExitStack() as stack:
        for layer in {id(layer): layer for layer in layers}.values():
            if is_functional_graph(layer):  # Functional (and Sequential's graph)
                stack.enter_context(swapped_attribute(layer, MANUAL_INPUT_SPEC, None))
        yield


COMPUTE_DTYPES = {"bfloat16": "mixed_bfloat16", "float16": "mixed_float16"}


@contextlib.contextmanager
def policy(layers, compute_dtype):
    """Within the block, `layers` compute in `compute_dtype` (None: unchanged).

    Keras layers cast their inputs and auto-cast their float32 variables to
    the compute dtype of their policy, so shadowing the policy of every layer
    turns a float32 model into a mixed-precision one for one traced pass.
    """
    if compute_dtype is None:
        yield
        return
    import keras

    mixed = keras.dtype_policies.get(COMPUTE_DTYPES[compute_dtype])
    with _LOCK, contextlib.ExitStack() as stack:
        for layer in {id(layer): layer for layer in layers}.values():
            current = dtype_policy(layer)
            if current is not None:
                if current.compute_dtype == "float32" and current.variable_dtype == "float32":
                    stack.enter_context(swapped_attribute(layer, DTYPE_POLICY, mixed))
        yield


def first_input(args, kwargs):
    """The main input of a layer call (first positional argument or `inputs=`)."""
    if args:
        return args[0]
    for key in ("inputs", "x"):
        if key in kwargs:
            return kwargs[key]
    return None
