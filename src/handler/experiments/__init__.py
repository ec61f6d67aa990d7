"""Experiments that decide (issue #16): statistics of A/B campaigns from the store's sufficient
statistics, a stopping rule, and a self-contained HTML report.

Pure computation, no I/O: the store supplies `MetricCounts` per variant and metric, the routes
turn them into `CampaignResults` (`build_results`) and JSON or HTML (`render_report`).
"""

from handler.experiments.report import render_report
from handler.experiments.results import CampaignResults, build_results
from handler.experiments.statistics import (
    Comparison,
    Interval,
    MetricCounts,
    MetricKind,
    Preference,
    StopDecision,
    StopRule,
    Summary,
    compare,
    evaluate_stop,
    metric_kind,
    preference,
    summarize,
)

__all__ = [
    "CampaignResults",
    "Comparison",
    "Interval",
    "MetricCounts",
    "MetricKind",
    "Preference",
    "StopDecision",
    "StopRule",
    "Summary",
    "build_results",
    "compare",
    "evaluate_stop",
    "metric_kind",
    "preference",
    "render_report",
    "summarize",
]
