"""Build a report from results (plus an optional baseline and history) and write its files.

``out/report.html`` (self-contained), ``out/summary.md`` (for a CI job summary)
and ``out/diff.json`` (machine-readable).  ``Report.regressed`` is what the
``llmperf report`` exit status is made of.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import TYPE_CHECKING

from ..runtime import atomic
from ..runtime.results import Metric, now_iso
from .diff import BaselineSource, Comparison, compare, diff_json, load_baseline, regression_reasons
from .history import TrendPoint, load_history, trends
from .runs import Run, load_run
from .sweeps import find_sweeps, sweep_plots

if TYPE_CHECKING:
    from .plots import Plot

DEFAULT_TOLERANCE = 0.05
HTML_NAME, MARKDOWN_NAME, JSON_NAME = "report.html", "summary.md", "diff.json"


@dataclasses.dataclass(frozen=True)
class Report:
    """Everything the three output formats show."""

    current: Run
    baseline: BaselineSource | None
    """What ``--baseline`` pointed at, if anything."""
    history: list[Run]
    """Earlier runs, oldest first (``--history``)."""
    history_folder: Path | None
    comparisons: list[Comparison]
    """The current run metric by metric against the baseline (empty without one)."""
    reasons: list[str]
    """Why the run counts as regressed, one line each; empty when it does not."""
    generated: str
    """When the report was made (ISO 8601, UTC)."""
    sweeps: list = dataclasses.field(default_factory=list)
    """(label, sweep.json data) of every ``llmperf sweep`` beside the results (report/sweeps.py)."""

    @property
    def regressed(self) -> bool:
        return bool(self.reasons)


@dataclasses.dataclass(frozen=True)
class ReportFiles:
    html: Path
    markdown: Path
    json: Path


def build_report(results: str | os.PathLike, baseline: str | os.PathLike | None = None,
                 history: str | os.PathLike | None = None,
                 tolerance: float | None = DEFAULT_TOLERANCE) -> Report:
    """Load and compare; raises ``InputError`` on a missing or malformed input."""
    current = load_run(results)
    source = load_baseline(baseline) if baseline is not None else None
    earlier = load_history(history, exclude=current.path) if history is not None else []
    comparisons = compare(current, source, tolerance)
    return Report(current, source, earlier, Path(history) if history is not None else None, comparisons,
                  regression_reasons(current, comparisons), now_iso(), find_sweeps(results))


def write_report(report: Report, out: str | os.PathLike) -> ReportFiles:
    from .html import render_html
    from .markdown import render_markdown

    out = Path(out)
    plots = build_plots(report.current.metrics, report.comparisons, trends(report.history, report.current))
    plots += sweep_plots(report.sweeps)
    files = ReportFiles(out / HTML_NAME, out / MARKDOWN_NAME, out / JSON_NAME)
    atomic.write_text(files.html, render_html(report, plots))
    atomic.write_text(files.markdown, render_markdown(report))
    atomic.write_json(files.json, diff_json(report.current, report.baseline, report.comparisons,
                                            report.history, report.reasons))
    _readable_by_others(files.html, files.markdown, files.json)
    return files


def _readable_by_others(*paths: Path) -> None:
    """Atomic writes create 0600 files; a report is meant to be shared (CI artifacts, web servers)."""
    umask = os.umask(0)
    os.umask(umask)
    for path in paths:
        os.chmod(path, 0o666 & ~umask)


def build_plots(metrics: dict[str, Metric], comparisons: list[Comparison],
                series: dict[str, list[TrendPoint]]) -> list[Plot]:
    """The report's plots of one run, in page order (those with nothing to draw left out)."""
    from .plots import ACCURACY_NAME, gated_metrics, percentile_plot, speed_plot, trend_plot
    from .svgplots import accuracy_plot, interval_plot, intervals

    gated = gated_metrics(metrics, comparisons)
    # Accuracy is drawn against the run's own targets (profile or baseline file), not the previous run.
    own_targets = gated_metrics(metrics, [])
    candidates = (interval_plot(intervals(metrics, comparisons)), speed_plot(gated), percentile_plot(metrics),
                  accuracy_plot(own_targets, ACCURACY_NAME), trend_plot(series, gated))
    return [plot for plot in candidates if plot is not None]
