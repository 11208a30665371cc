"""Model access: layers of any Keras 3 model, taps, receptive fields."""

from keras_introspect.model.introspector import Introspector, LayerInfo
from keras_introspect.model.io import load_model
from keras_introspect.model.receptive_field import ReceptiveField
from keras_introspect.model.submodel import TapModel
from keras_introspect.model.tap import Tap

__all__ = [
    "Introspector",
    "LayerInfo",
    "ReceptiveField",
    "Tap",
    "TapModel",
    "load_model",
]
