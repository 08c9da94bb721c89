"""Reports of fitted models: PNG figures (:mod:`.figures`), a self-contained HTML page
(:mod:`.html`) and the choice of figures and metrics per kind of model (:mod:`.build`).

    metrics = aekit.report.evaluate(est, dataset)
    aekit.report.build_report(est, dataset, metrics, "run/report.html")
"""

from .build import build_report, evaluate, metrics_rows, report_sections, squared_error_per_example
from .html import Section, render_html

__all__ = ["build_report", "evaluate", "report_sections", "metrics_rows", "squared_error_per_example",
           "Section", "render_html"]
