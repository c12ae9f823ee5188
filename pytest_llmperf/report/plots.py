"""The report's plots, drawn with matplotlib's Agg canvas into base64 PNGs (the interval and accuracy
plots are inline SVG, from report/svgplots.py).

Figures are built with ``matplotlib.figure.Figure`` on a ``FigureCanvasAgg``,
never through pyplot, so reporting leaves no global state behind and needs no
display.  Each ``*_plot`` function returns a ``Plot`` or None when the run has
nothing of that kind.

TTFT/TPOT percentiles are read from a metric's ``extra``: a ``percentiles``
mapping (``{"p50": .., "p90": .., "p99": ..}`` or ``{"50": ..}``) or the same
keys at the top level of ``extra``, in the metric's unit; metrics named
``..._p99`` / ``...p99.9`` are gathered into one series too.
"""

from __future__ import annotations

import base64
import dataclasses
import io
import re
from typing import Iterable

from ..runtime.results import Metric
from .diff import Comparison
from .history import TrendPoint

PASS_COLOR, FAIL_COLOR, NEUTRAL_COLOR, REFERENCE_COLOR = "#2e7d32", "#c62828", "#607d8b", "#b0bec5"
INCONCLUSIVE_COLOR = "#b26a00"
THROUGHPUT_UNIT = re.compile(r"/\s*s$")
LATENCY_SCALE_TO_MS = {"s": 1000.0, "ms": 1.0, "us": 1e-3, "µs": 1e-3}
ACCURACY_NAME = re.compile(r"rouge|mmlu|accuracy", re.IGNORECASE)
PERCENTILE_KEY = re.compile(r"^p?(\d{1,2}(?:\.\d+)?)$")
PERCENTILE_IN_NAME = re.compile(r"^(.*?)[._]?p(\d{1,2}(?:\.\d+)?)$")
NUMBER = r"[-+]?\d+(?:\.\d*)?(?:e[-+]?\d+)?"


@dataclasses.dataclass(frozen=True)
class Plot:
    """One rendered figure."""

    title: str
    caption: str
    """What the figure shows and how to read it (plain text)."""
    png_base64: str
    svg: str = ""
    """An inline ``<svg>`` instead of the PNG (report/svgplots.py); empty for a PNG plot."""


@dataclasses.dataclass(frozen=True)
class Gated:
    """A metric with the reference and bounds a plot draws it against."""

    id: str
    metric: Metric
    reference: float | None
    low: float | None
    high: float | None
    failed: bool
    inconclusive: bool = False
    """Rounds that could not tell (drawn amber, not green)."""


def limit_bounds(text: str | None) -> tuple[float | None, float | None]:
    """Parse ``Limit.describe()`` back: ``>= a``, ``<= b``, ``within a..b``."""
    if not text:
        return None, None
    if match := re.fullmatch(rf"within ({NUMBER})\.\.({NUMBER})", text.strip()):
        return float(match[1]), float(match[2])
    if match := re.fullmatch(rf">= ({NUMBER})", text.strip()):
        return float(match[1]), None
    if match := re.fullmatch(rf"<= ({NUMBER})", text.strip()):
        return None, float(match[1])
    return None, None


def gated_metrics(metrics: dict[str, Metric], comparisons: list[Comparison]) -> list[Gated]:
    """Each metric against the baseline run/folder when compared, else against its own limit."""
    compared = {row.id: row for row in comparisons if row.status != "missing"}
    gated = []
    for key, metric in metrics.items():
        row = compared.get(key)
        if row is not None and row.limit is not None:
            gated.append(Gated(key, metric, row.reference, row.limit.low, row.limit.high,
                               row.status == "regressed" or metric.verdict == "fail", row.status == "inconclusive"))
        else:
            low, high = limit_bounds(metric.limit)
            gated.append(Gated(key, metric, metric.baseline, low, high, metric.verdict == "fail",
                               metric.verdict == "inconclusive"))
    return gated


def _new_figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def _encode(figure) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", metadata={"Software": None})
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _color(item: Gated) -> str:
    if item.failed:
        return FAIL_COLOR
    if item.inconclusive:
        return INCONCLUSIVE_COLOR
    return PASS_COLOR if item.low is not None or item.high is not None else NEUTRAL_COLOR


def speed_plot(gated: list[Gated]) -> Plot | None:
    """Throughput and latency as % of their baseline, with the allowed bound marked."""
    def is_speed(item: Gated) -> bool:
        unit = item.metric.unit.strip()
        return bool(THROUGHPUT_UNIT.search(unit)) or unit in LATENCY_SCALE_TO_MS

    panels = [
        ("throughput (higher is better)", [g for g in gated if THROUGHPUT_UNIT.search(g.metric.unit.strip())]),
        ("latency (lower is better)", [g for g in gated if g.metric.unit.strip() in LATENCY_SCALE_TO_MS]),
    ]
    panels = [(title, [g for g in items if g.reference and g.metric.value is not None and is_speed(g)])
              for title, items in panels]
    panels = [(title, items) for title, items in panels if items]
    if not panels:
        return None
    rows = sum(len(items) for _, items in panels)
    figure = _new_figure(9, 0.6 + 0.4 * rows + 0.9 * len(panels))
    axes_list = figure.subplots(len(panels), 1, squeeze=False,
                                gridspec_kw={"height_ratios": [len(items) for _, items in panels]})[:, 0]
    for axes, (title, items) in zip(axes_list, panels):
        labels = [g.id for g in items]
        ratios = [100 * g.metric.value / g.reference for g in items]
        axes.barh(labels, ratios, height=0.5, color=[_color(g) for g in items])
        axes.axvline(100, color="black", linewidth=1)
        for index, g in enumerate(items):
            bound = g.low if g.low is not None else g.high
            if bound is not None:
                axes.plot([100 * bound / g.reference] * 2, [index - 0.4, index + 0.4], color="black",
                          linestyle="--", linewidth=1)
            axes.annotate(f" {g.metric.value:.4g} vs {g.reference:.4g} {g.metric.unit}", (ratios[index], index),
                          va="center", fontsize=8)
        axes.invert_yaxis()
        axes.set_xlim(0, max(200, max(ratios) * 1.6))  # room for the value labels
        axes.set_xlabel("% of baseline (dashed: allowed bound)")
        axes.set_title(title, fontsize=10)
    return Plot("Throughput and latency against baseline",
                "Each bar is the measured value as a percentage of its baseline (100%, solid line); the dashed "
                "tick is the bound the tolerance allows, or for a metric measured in rounds the minimum effect "
                "(its verdict comes from the interval plot's rounds, not from this bar). Red: regressed; amber: "
                "INCONCLUSIVE.",
                _encode(figure))


def _percentile_series(metrics: dict[str, Metric]) -> dict[str, dict[str, dict[float, float]]]:
    """{"TTFT"|"TPOT": {series label: {percentile: milliseconds}}}."""
    series: dict[str, dict[str, dict[float, float]]] = {"TTFT": {}, "TPOT": {}}
    for key, metric in metrics.items():
        kind = "TTFT" if "ttft" in metric.name.lower() else "TPOT" if "tpot" in metric.name.lower() else None
        scale = LATENCY_SCALE_TO_MS.get(metric.unit.strip())
        if kind is None or scale is None:
            continue
        table = metric.extra.get("percentiles")
        candidates = table if isinstance(table, dict) else metric.extra
        points = {float(m[1]): float(v) * scale for k, v in candidates.items()
                  if (m := PERCENTILE_KEY.match(str(k))) and isinstance(v, (int, float))}
        label = key
        if not points and metric.value is not None and (m := PERCENTILE_IN_NAME.match(key)):
            label, points = m[1], {float(m[2]): metric.value * scale}
        if points:
            series[kind].setdefault(label, {}).update(points)
    return {kind: found for kind, found in series.items() if found}


def percentile_plot(metrics: dict[str, Metric]) -> Plot | None:
    series = _percentile_series(metrics)
    if not series:
        return None
    figure = _new_figure(9, 3.4)
    axes_list = figure.subplots(1, len(series), squeeze=False)[0]
    for axes, (kind, lines) in zip(axes_list, series.items()):
        ticks = sorted({p for points in lines.values() for p in points})
        for label, points in lines.items():
            xs = sorted(points)
            axes.plot([ticks.index(x) for x in xs], [points[x] for x in xs], marker="o", label=label)
        axes.set_xticks(range(len(ticks)), [f"p{t:g}" for t in ticks])
        axes.set_ylabel("milliseconds")
        axes.set_title(kind, fontsize=10)
        axes.legend(fontsize=7)
    return Plot("TTFT / TPOT percentiles",
                "Time to first token and time per output token at each recorded percentile, in milliseconds.",
                _encode(figure))


def trend_plot(series: dict[str, list[TrendPoint]], gated: Iterable[Gated]) -> Plot | None:
    if not series:
        return None
    bounds = {g.id: g for g in gated}
    columns = min(3, len(series))
    rows = -(-len(series) // columns)
    figure = _new_figure(3.2 * columns, 2.6 * rows)
    axes_grid = figure.subplots(rows, columns, squeeze=False)
    for axes in axes_grid.flat[len(series):]:
        axes.set_visible(False)
    for axes, (key, points) in zip(axes_grid.flat, series.items()):
        xs = list(range(len(points)))
        ys = [float("nan") if p.value is None else p.value for p in points]
        axes.plot(xs, ys, marker="o", color=NEUTRAL_COLOR)
        current = bounds.get(key)
        axes.plot(xs[-1:], ys[-1:], marker="o", markersize=9,
                  color=FAIL_COLOR if current and current.failed else PASS_COLOR)
        for bound in (current.low, current.high) if current else ():
            if bound is not None:
                axes.axhline(bound, color="black", linestyle="--", linewidth=1)
        step = max(1, len(points) // 6)
        axes.set_xticks(xs[::step], [_short_label(p.label) for p in points][::step], rotation=30, fontsize=7)
        axes.set_title(key, fontsize=8)
        axes.tick_params(axis="y", labelsize=7)
    return Plot("Trend over the history",
                "Each metric over the earlier runs (oldest left) and this run (large dot, red if it failed); "
                "dashed: this run's bound.", _encode(figure))


def _short_label(label: str) -> str:
    """``2026-11-21 08:22 abc1234`` -> ``11-21 08:22``: enough to tell nightly runs apart."""
    parts = label.split(" ")
    return " ".join(parts[:2])[5:] if re.match(r"\d{4}-", label) else label[:16]
