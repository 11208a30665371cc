"""Error and warning types raised by keras_introspect.

Every error is a subclass of `ValueError` or `TypeError`, so code that already
catches those keeps working; the subclasses let callers tell our checks apart.
"""


class KerasIntrospectWarning(UserWarning):
    """Base class of the warnings keras_introspect emits."""


class LayerNotFoundError(ValueError):
    """A layer selector matched no layer (the message lists the closest names)."""


class AmbiguousLayerError(ValueError):
    """A selector that must name one layer matched several (the message lists them)."""


class UnsupportedBackendError(ValueError):
    """Keras runs on a backend other than TensorFlow."""


class ModelNotBuiltError(ValueError):
    """The model has no weights yet and no input shape was given to build it."""


class SharedLayerError(ValueError):
    """A tapped layer is called more than once in one forward pass."""
