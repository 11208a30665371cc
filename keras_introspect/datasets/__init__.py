"""Embedded data for demos and tests (no downloads)."""

from keras_introspect.datasets.digits import digits

__all__ = ["digits"]
