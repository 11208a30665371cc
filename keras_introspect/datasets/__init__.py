"""Embedded data for demos and tests (no downloads)."""

from keras_introspect.datasets.digits import digits, digits_model

__all__ = ["digits", "digits_model"]
