"""Self-contained HTML reports (PNG figures embedded, no network needed to view).

`Report` collects sections one call at a time; `build_report` fills one with
every section of `REGISTRY` for a model and a set of images, following the
`ReportPlan` of `plan_report`; `register_section` adds your own section.
"""

from keras_introspect.report.auto import SECTIONS, ReportPlan, build_report, plan_report
from keras_introspect.report.builder import Report
from keras_introspect.report.sections import REGISTRY, SectionSpec, register_section

__all__ = [
    "REGISTRY",
    "SECTIONS",
    "Report",
    "ReportPlan",
    "SectionSpec",
    "build_report",
    "plan_report",
    "register_section",
]
