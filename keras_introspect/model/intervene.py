"""A forward pass in which one layer's output is replaced: interventions on activations.

Concept importance (CRAFT's Sobol indices, concept deletion) asks what the
model outputs when the activations of a layer are changed: some concepts
removed from them, or a reconstruction put in their place. `replacing`
opens a block in which the chosen layer returns `fn(its output)` instead of
its output; any forward pass run inside it (a `Tap`, `model(x)`) sees the
changed activations downstream. The model is left exactly as it was on
exit, as with the taps (`_instrument.patching`).

Example:
    >>> import keras, numpy as np, tensorflow as tf
    >>> import keras_introspect as ki
    >>> model = keras.Sequential([keras.Input((3,)),
    ...     keras.layers.Dense(2, name="a"), keras.layers.Dense(1, name="b")])
    >>> info = ki.Introspector(model).layer("a")
    >>> with replacing(info, lambda a: tf.zeros_like(a)):
    ...     out = model(np.ones((1, 3), "float32"))
    >>> bool(np.allclose(out, model.layers[1].bias.numpy()))
    True
"""

from __future__ import annotations

import contextlib

from keras_introspect.exceptions import SharedLayerError
from keras_introspect.model._instrument import patching


@contextlib.contextmanager
def replacing(info, fn):
    """Within the block, the layer of `info` returns `fn(output)` in every forward pass.

    Args:
        info: the `LayerInfo` of the layer (`Introspector.layer(...)`); it
            must be a layer that is called (not a model input) and called
            once per forward pass.
        fn: `fn(tensor) -> tensor` of the same shape and dtype, applied to
            the layer's output; it may close over tensors of a traced
            function (a replacement computed from inputs).

    Raises:
        ValueError: the layer is an input of the model.
        SharedLayerError: the layer is called more than once in a pass.
    """
    if info.input_of is not None:
        raise ValueError(
            f"Expected a layer that computes an output. Received: {info.path!r}, an input "
            "of the model; choose a layer after it"
        )
    calls = []

    def wrap(layer, inner):
        def call(*args, **kwargs):
            calls.append(None)
            if len(calls) > 1:
                raise SharedLayerError(
                    f"Layer {info.path!r} is called more than once in one forward pass (a "
                    "shared layer); its activation cannot be replaced unambiguously"
                )
            return fn(inner(*args, **kwargs))

        return call

    with patching([(info.layer, wrap)]):
        yield
