"""Feature visualization: activation maximization and pixel fooling."""

from keras_introspect.optimize import parameterization, regularizers, transforms
from keras_introspect.optimize.activation_maximization import ActivationMaximization, AMResult
from keras_introspect.optimize.fool import FoolResult, fool

__all__ = [
    "AMResult",
    "ActivationMaximization",
    "FoolResult",
    "fool",
    "parameterization",
    "regularizers",
    "transforms",
]
