"""`TapModel`: a `keras.Model` view of inner layers of another model."""

from __future__ import annotations

import keras


class TapModel(keras.Model):
    """Model inputs -> outputs of inner layers, sharing the source's weights.

    Built by `Introspector.submodel`; works for layers inside nested models
    and for subclassed models. `predict`, `__call__` and `tf.GradientTape`
    work as on any Keras model. It holds a reference to the source model, it
    does not copy it; saving it to a file is not supported.

    Args:
        source: the model whose layers are tapped.
        tap: the `Tap` selecting the layers.
    """

    def __init__(self, source, tap, **kwargs):
        name = kwargs.pop("name", None) or f"{source.name}_to_{tap.infos[-1].name}"
        super().__init__(name=name, **kwargs)
        self.source = source
        self._tap = tap
        self.built = True

    @property
    def paths(self) -> list:
        """Paths of the tapped layers, in output order."""
        return list(self._tap.paths)

    def call(self, inputs, training=False):
        activations, _ = self._tap(inputs, training=training)
        return activations[0] if len(activations) == 1 else activations
