"""Activation features and clustering (scikit-learn estimators)."""

from keras_introspect.cluster.layer_activations import LayerActivations

__all__ = ["LayerActivations"]
