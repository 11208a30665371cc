"""Self-contained HTML reports (PNG figures embedded, no network needed to view)."""

from keras_introspect.report.builder import Report

__all__ = ["Report"]
