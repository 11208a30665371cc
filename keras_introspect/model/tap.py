"""A differentiable forward pass that also returns inner activations."""

from __future__ import annotations

from keras_introspect.exceptions import SharedLayerError
from keras_introspect.model import backward as backward_rules
from keras_introspect.model._instrument import (
    COMPUTE_DTYPES as _POLICIES,
)
from keras_introspect.model._instrument import (
    first_input,
    free_input_shapes,
    patching,
    policy,
    recording,
)
from keras_introspect.model._keras_compat import keras_logits

COMPUTE_DTYPES = (None, *_POLICIES)
"""Values of `compute_dtype` a tap accepts (`None`: the model's own precision)."""


class Tap:
    """Run a model once and return the outputs of chosen layers with its output.

    The activations are tensors of the same forward pass as the model output,
    so `tape.gradient(output, activation)` works. A `Tap` can be called
    eagerly or inside a `tf.function` / `tf.GradientTape`; it never changes
    the model. Obtain one from `Introspector.tap(...)`.

    Args:
        model: the Keras model.
        infos: the `LayerInfo` of each layer to tap.
        backward: `None`, or a rule of `keras_introspect.model.backward`
            ("guided", "deconvnet") applied to the rectifiers in `layers`.
        layers: every layer of the model (needed with `backward` and
            `compute_dtype`).
        compute_dtype: `None`, or `"bfloat16"` / `"float16"`: run `layers`
            under the matching mixed-precision policy (variables stay
            float32) while the pass is traced; the model keeps its policy.
        truncate: stop the forward pass as soon as every tapped layer has
            run (the output is then `None`). Layers after them are never
            called, so they cost nothing and the input may have any spatial
            size the tapped layers accept (a receptive-field patch).

    Example:
        >>> tap = ki.Introspector(model).tap(["conv1", "dense"])  # doctest: +SKIP
        >>> with tf.GradientTape() as tape:                        # doctest: +SKIP
        ...     (conv1, dense), output = tap(x)
        >>> grads = tape.gradient(output[:, 3], conv1)            # doctest: +SKIP
    """

    def __init__(
        self,
        model,
        infos,
        backward: str | None = None,
        layers=(),
        compute_dtype=None,
        truncate: bool = False,
    ):
        self.model = model
        self.infos = list(infos)
        self.paths = [info.path for info in self.infos]
        self.backward = backward
        self._rules = [] if backward is None else backward_rules.wrappers(layers, backward)
        self.compute_dtype = compute_dtype
        self._layers = [model, *layers]
        # a layer called more than once is refused below (its activation is
        # ambiguous); stopping at its first call would hide that. The input of a
        # nested model is read where that model is called, which may be more than
        # once: never truncated either.
        self.truncate = truncate and all(
            info.n_calls <= 1 and (info.input_of is None or info.input_of[0] is model)
            for info in self.infos
        )

    def __call__(self, inputs, training: bool = False):
        """Return `(activations, output)`; `activations` follows `self.paths`."""
        import tensorflow as tf

        captured = {path: [] for path in self.paths}
        watched = {}  # id(layer) -> [(info, input position or None)]
        for info in self.infos:
            if info.input_of is None:
                watched.setdefault(id(info.layer), []).append((info, None))
            elif info.input_of[0] is not self.model:
                watched.setdefault(id(info.input_of[0]), []).append((info, info.input_of[1]))

        def on_call(layer, args, kwargs, outputs):
            for info, position in watched.get(id(layer), ()):
                if position is None:
                    captured[info.path].append(outputs)
                else:
                    captured[info.path].append(tf.nest.flatten(first_input(args, kwargs))[position])
            if self.truncate and all(captured.values()):
                raise _Truncated

        layers = [info.layer for info in self.infos if info.input_of is None]
        layers += [info.input_of[0] for info in self.infos if info.input_of is not None]
        output = None
        try:
            with (
                policy(self._layers, self.compute_dtype),
                patching(self._rules),
                recording([layer for layer in layers if layer is not self.model], on_call),
                free_input_shapes(self._layers if self.truncate else ()),
            ):
                output = self.model(inputs, training=training)
        except _Truncated:
            pass
        activations = []
        for info in self.infos:
            if info.input_of is not None and info.input_of[0] is self.model:
                activations.append(tf.nest.flatten(inputs)[info.input_of[1]])
                continue
            calls = captured[info.path]
            if not calls:
                raise ValueError(
                    f"Layer {info.path!r} was not called in the forward pass of "
                    f"{self.model.name!r}, so it has no activation to return"
                )
            if len(calls) > 1:
                raise SharedLayerError(
                    f"Layer {info.path!r} is called {len(calls)} times in one forward "
                    "pass (a shared layer); its activation is ambiguous. Tap a layer "
                    "that is called once, e.g. the layer just after it in the branch "
                    "you mean"
                )
            activations.append(calls[0])
        return activations, output


class _Truncated(Exception):
    """Raised inside the forward pass of a truncated tap once it has what it needs."""


def producers(tensor):
    """`tensor`, then the tensors it was cast or copied from, in a traced graph.

    Follows Cast and Identity ops back; stops at any other op, and at once
    for eager tensors (which have no op).
    """
    while True:
        yield tensor
        try:
            op = tensor.op
            op_type = op.type
        except AttributeError:  # eager tensors have no op
            return
        if op_type not in ("Cast", "Identity") or not list(op.inputs):
            return
        tensor = op.inputs[0]


def pre_activation(tensor):
    """The logits behind a softmax or sigmoid output, else `tensor` itself.

    Keras attaches the logits to the outputs of its softmax and sigmoid
    (`_keras_compat.keras_logits`); otherwise the graph is followed back through casts
    and identities to a Softmax/Sigmoid op. Works on tensors of a traced
    (`tf.function`) forward pass.
    """
    for current in producers(tensor):
        logits = keras_logits(current)
        if logits is not None:
            return logits
        op = getattr(current, "op", None)
        if op is not None and op.type in ("Softmax", "Sigmoid"):
            return op.inputs[0]
    return tensor


def class_prediction(output):
    """`(predicted class int32, probabilities float32)` of a classifier output.

    Read through the logits (`pre_activation`), so softmax, sigmoid and
    logit outputs agree. A single-unit output is binary: class 1 where the
    logit is above 0 (probability above 0.5).
    """
    import tensorflow as tf

    logits = tf.cast(pre_activation(tf.nest.flatten(output)[0]), tf.float32)
    if logits.shape[-1] == 1:
        p = tf.sigmoid(logits)
        return tf.cast(logits[:, 0] > 0, tf.int32), tf.concat([1 - p, p], axis=-1)
    return tf.argmax(logits, axis=-1, output_type=tf.int32), tf.nn.softmax(logits, axis=-1)
