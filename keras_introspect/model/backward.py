"""Modified backward passes through rectifiers: guided backprop and deconvnet.

Both rules change only how a gradient passes back through a rectifying
non-linearity; the forward pass is unchanged and so are all other layers
(max-pooling already routes the gradient to the forward "switches", which is
Zeiler & Fergus' unpooling). With `dy` the gradient arriving from above, `x`
the rectifier's input and `f` the rectifier:

- ``"guided"`` (Springenberg et al. 2015): ``f'(x) * max(dy, 0)``;
- ``"deconvnet"`` (Zeiler & Fergus 2014): ``max(dy, 0)``, the forward mask
  is dropped.

Rectifiers are the layers `ReLU` (also with `max_value`, e.g. ReLU6),
`LeakyReLU`, `ELU`, `PReLU`, `Activation` of one of relu/relu6/leaky_relu/elu,
and any layer built with ``activation=`` one of those (Conv2D, Dense, ...).
For LeakyReLU/ELU/PReLU the same two formulas are used with their own
derivative `f'`. Other non-linearities (sigmoid, tanh, swish, gelu, softmax)
keep their ordinary gradient.

The rules are applied by wrapping the rectifier while a forward pass is
traced (see `_instrument`); the user's model is never modified.
"""

from __future__ import annotations

from keras_introspect.model import _kinds as kinds
from keras_introspect.model._instrument import first_input, swapped_attribute

RULES = ("guided", "deconvnet")


def _activation_name(fn) -> str | None:
    return getattr(fn, "__name__", None) if callable(fn) else None


def _rectify(fn, rule: str):
    """`fn` (element-wise) with its backward pass replaced by `rule`."""
    import tensorflow as tf

    @tf.custom_gradient
    def rectified(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = fn(x)

        # A rectifier with weights (PReLU's slopes) reads variables, so
        # TensorFlow also asks for their gradients (`variables`).
        def grad(dy, variables=None):
            dy = tf.nn.relu(dy)
            variables = list(variables or [])
            if rule == "deconvnet":
                dx, dvars = tf.cast(dy, x.dtype), [tf.zeros_like(v) for v in variables]
            else:
                grads = tape.gradient(y, [x, *variables], output_gradients=dy)
                dx = grads[0]
                dvars = [
                    tf.zeros_like(v) if g is None else g
                    for g, v in zip(grads[1:], variables, strict=True)
                ]
            return (dx, dvars) if variables else dx

        return y, grad

    return rectified


def _identity(x):
    return x


def _wrap_layer(rule):
    def wrap(layer, inner):
        def call(*args, **kwargs):
            x = first_input(args, kwargs)
            rest = args[1:]
            kw = {k: v for k, v in kwargs.items() if k not in ("inputs", "x")}
            return _rectify(lambda t: inner(t, *rest, **kw), rule)(x)

        return call

    return wrap


def _wrap_activation(rule):
    def wrap(layer, inner):
        def call(*args, **kwargs):
            activation = layer.activation
            with swapped_attribute(layer, "activation", _identity):
                pre = inner(*args, **kwargs)
            return _rectify(activation, rule)(pre)

        return call

    return wrap


def wrappers(layers, rule: str) -> list:
    """`(layer, wrap)` pairs for `_instrument.patching` applying `rule`."""
    if rule not in RULES:
        raise ValueError(f"Expected a backward rule in {list(RULES)}. Received: rule={rule!r}")
    out = []
    for layer in layers:
        name = _activation_name(getattr(layer, "activation", None))
        if type(layer).__name__ in kinds.RECTIFIER_LAYERS or (
            type(layer).__name__ == "Activation" and name in kinds.RECTIFIER_ACTIVATIONS
        ):
            out.append((layer, _wrap_layer(rule)))
        elif name in kinds.RECTIFIER_ACTIVATIONS:
            out.append((layer, _wrap_activation(rule)))
    return out
