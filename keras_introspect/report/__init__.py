"""Self-contained HTML reports (PNG figures embedded, no network needed to view).

`Report` collects sections one call at a time; `build_report` fills one with
every section for a model and a set of images.
"""

from keras_introspect.report.auto import SECTIONS, build_report
from keras_introspect.report.builder import Report

__all__ = ["SECTIONS", "Report", "build_report"]
