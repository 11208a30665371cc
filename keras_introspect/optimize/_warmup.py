"""The open-ReLU backward rule of the warm-up steps (Xplique's MaCo, Fel et al. 2023).

During the first `relu_warmup` steps of activation maximization every ReLU
passes the gradient from above through unchanged: with `dy` the gradient
arriving at the ReLU's output and `x` its input, the backward rule is
``dx = dy`` (a straight-through gradient) instead of ``dx = dy * [x > 0]``.
The forward pass is unchanged (the ReLU still outputs `max(x, 0)`), so the
objective and its history are those of the real model; only the direction
of the step differs, and a unit that is dead for the starting image
(negative pre-activation everywhere, gradient exactly 0) can be woken up.

ReLUs are the `ReLU` layers (also with `max_value`, `negative_slope` or
`threshold`: the rule passes `dy` everywhere), `Activation("relu")` /
``"relu6"``, and any layer built with ``activation="relu"`` or ``"relu6"``.
LeakyReLU, ELU and PReLU keep their gradient (it is not zero for negative
inputs). The rule is applied the way `keras_introspect.model.backward`
applies guided backprop: the layer's `call` is wrapped while the compiled
warm-up loop is traced (`_instrument.patching`), so the user's model is
never modified and the plain loop is a separate graph.
"""

from __future__ import annotations

from keras_introspect.model._instrument import first_input, swapped_attribute

RELU_ACTIVATIONS = frozenset({"relu", "relu6"})


def _open(fn):
    """Element-wise `fn` whose gradient is passed through unchanged (`dx = dy`)."""
    import tensorflow as tf

    @tf.custom_gradient
    def opened(x):
        # a layer that reads variables makes TensorFlow ask for their
        # gradients too (none flows to them through the rectifier)
        def grad(dy, variables=None):
            dx = tf.cast(dy, x.dtype)
            return (dx, [tf.zeros_like(v) for v in variables]) if variables else dx

        return fn(x), grad

    return opened


def _identity(x):
    return x


def _wrap_layer(layer, inner):
    def call(*args, **kwargs):
        x = first_input(args, kwargs)
        rest = args[1:]
        kw = {k: v for k, v in kwargs.items() if k not in ("inputs", "x")}
        return _open(lambda t: inner(t, *rest, **kw))(x)

    return call


def _wrap_activation(layer, inner):
    def call(*args, **kwargs):
        activation = layer.activation
        with swapped_attribute(layer, "activation", _identity):
            pre = inner(*args, **kwargs)
        return _open(activation)(pre)

    return call


def open_relu_wrappers(layers) -> list:
    """`(layer, wrap)` pairs for `_instrument.patching` opening every ReLU of `layers`."""
    out = []
    for layer in layers:
        activation = getattr(layer, "activation", None)
        name = getattr(activation, "__name__", None) if callable(activation) else None
        kind = type(layer).__name__
        if kind == "ReLU" or (kind == "Activation" and name in RELU_ACTIVATIONS):
            out.append((layer, _wrap_layer))
        elif name in RELU_ACTIVATIONS:
            out.append((layer, _wrap_activation))
    return out
