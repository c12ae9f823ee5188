"""The report's plots drawn as inline SVG: rounds' intervals against the minimum effect, accuracy against
its thresholds.

Inline SVG needs no plotting library, stays sharp at any zoom and can be checked in a browser: each
metric's mark is one ``<g class="mark <verdict>" data-metric="<id>">`` (what tests/report/test_report_browser.py
looks for in a rendered page).  Every text taken from results passes through ``html.escape``.
"""

from __future__ import annotations

import dataclasses
import math
from html import escape
from typing import Iterable

from ..runtime.results import Metric
from .diff import Comparison
from .plots import FAIL_COLOR, INCONCLUSIVE_COLOR, PASS_COLOR, Gated, Plot

BAND_COLOR, AXIS_COLOR, TEXT_COLOR = "#e3e8ed", "#52606d", "#1f2933"
VERDICT_COLOR = {"pass": PASS_COLOR, "fail": FAIL_COLOR, "inconclusive": INCONCLUSIVE_COLOR}
WIDTH, LABEL_WIDTH, NOTE_WIDTH, ROW, TOP, BOTTOM = 960, 330, 170, 30, 16, 40
LABEL_CHARS = 48


@dataclasses.dataclass(frozen=True)
class Interval:
    """One metric's change against its baseline, as judged in rounds (``gating.noise.Judgement``)."""

    id: str
    change: float
    low: float
    """Lower end of the interval (``-inf`` where it has none)."""
    high: float
    min_effect: float
    higher_is_better: bool
    verdict: str
    basis: str


def intervals(metrics: dict[str, Metric], comparisons: list[Comparison]) -> list[Interval]:
    """Against ``--baseline`` when the report was given one (the report's judgement), else the session's own."""
    if comparisons:
        return [Interval(row.id, j.change, j.low, j.high, j.min_effect, j.higher_is_better, row.verdict or "", j.basis)
                for row in comparisons if (j := row.judgement) is not None]
    found = []
    for key, metric in metrics.items():
        extra = metric.extra
        interval, change, effect = extra.get("interval"), extra.get("change"), extra.get("min_effect")
        if (metric.verdict in VERDICT_COLOR and isinstance(interval, list) and len(interval) == 2
                and isinstance(change, (int, float)) and isinstance(effect, (int, float))
                and metric.higher_is_better is not None):
            low = -math.inf if interval[0] is None else float(interval[0])
            high = math.inf if interval[1] is None else float(interval[1])
            found.append(Interval(key, float(change), low, high, float(effect), bool(metric.higher_is_better),
                                  metric.verdict, str(extra.get("basis") or "")))
    return found


def _row_label(text: str, y: float) -> str:
    """A row's metric id, right-aligned left of the plot (its end kept where it is too long)."""
    shown = text if len(text) <= LABEL_CHARS else "..." + text[-(LABEL_CHARS - 3):]
    return f'<text x="{LABEL_WIDTH}" y="{y + 4:.1f}" text-anchor="end" fill="{TEXT_COLOR}">{escape(shown)}</text>'


def _ticks(low: float, high: float, count: int = 5) -> list[float]:
    step = (high - low) / count
    magnitude = 10 ** math.floor(math.log10(step))
    step = min((m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= step), default=step)
    first = math.ceil(low / step) * step
    return [first + i * step for i in range(int((high - first) / step + 1e-9) + 1)]


def _svg(height: int, parts: Iterable[str], title: str) -> str:
    return (f'<svg class="llmperf-plot" xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
            f'viewBox="0 0 {WIDTH} {height}" role="img" aria-label="{escape(title)}" '
            f'font-family="system-ui, sans-serif" font-size="12">{"".join(parts)}</svg>')


def _axis(x, low: float, high: float, top: int, bottom: int, label: str, fmt) -> list[str]:
    parts = [f'<line x1="{x(low):.1f}" y1="{bottom}" x2="{x(high):.1f}" y2="{bottom}" stroke="{AXIS_COLOR}"/>']
    for tick in _ticks(low, high):
        parts.append(f'<line x1="{x(tick):.1f}" y1="{top}" x2="{x(tick):.1f}" y2="{bottom + 4}" stroke="{BAND_COLOR}" '
                     f'stroke-width="0.5"/><text x="{x(tick):.1f}" y="{bottom + 16}" text-anchor="middle" '
                     f'fill="{AXIS_COLOR}">{escape(fmt(tick))}</text>')
    parts.append(f'<text x="{(x(low) + x(high)) / 2:.1f}" y="{bottom + 32}" text-anchor="middle" '
                 f'fill="{AXIS_COLOR}">{escape(label)}</text>')
    return parts


def interval_plot(rows: list[Interval]) -> Plot | None:
    """Each metric's interval for its change (dot: the estimate) over its minimum-effect band."""
    if not rows:
        return None
    finite = [abs(v) for r in rows for v in (r.change, r.low, r.high) if math.isfinite(v)]
    reach = max(0.01, min(1.0, max([1.25 * r.min_effect for r in rows] + [1.1 * v for v in finite])))
    left, right = LABEL_WIDTH + 10, WIDTH - NOTE_WIDTH

    def x(value: float) -> float:
        value = max(-reach, min(reach, value))
        return left + (value + reach) / (2 * reach) * (right - left)

    bottom = TOP + ROW * len(rows)
    parts = [f'<rect width="{WIDTH}" height="{bottom + BOTTOM}" fill="#ffffff"/>']
    parts += _axis(x, -reach, reach, TOP, bottom, "change against the baseline",
                   lambda v: f"{100 * v:+.0f}%" if round(100 * v) else "0%")
    for index, row in enumerate(rows):
        y = TOP + ROW * index + ROW / 2
        bad = -row.min_effect if row.higher_is_better else row.min_effect
        color = VERDICT_COLOR.get(row.verdict, AXIS_COLOR)
        describe = (f"{row.id}: {100 * row.change:+.1f}% ({100 * row.low:+.1f}%..{100 * row.high:+.1f}%); "
                    f"fail beyond {100 * bad:+g}%; {row.verdict.upper()} ({row.basis})")
        parts.append(
            f'<rect x="{x(-row.min_effect):.1f}" y="{y - 9:.1f}" width="{x(row.min_effect) - x(-row.min_effect):.1f}" '
            f'height="18" fill="{BAND_COLOR}"/>'
            f'<line x1="{x(bad):.1f}" y1="{y - 11:.1f}" x2="{x(bad):.1f}" y2="{y + 11:.1f}" stroke="{FAIL_COLOR}" '
            f'stroke-dasharray="3,2" stroke-width="1.5"/>'
            + _row_label(row.id, y)
            + f'<g class="mark {escape(row.verdict)}" data-metric="{escape(row.id)}"><title>{escape(describe)}</title>'
            f'<line x1="{x(row.low):.1f}" y1="{y:.1f}" x2="{x(row.high):.1f}" y2="{y:.1f}" stroke="{color}" '
            f'stroke-width="5" stroke-linecap="round"/>'
            f'<circle cx="{x(row.change):.1f}" cy="{y:.1f}" r="5" fill="{color}" stroke="#ffffff" '
            f'stroke-width="1"/></g>'
            f'<text x="{right + 10}" y="{y + 4:.1f}" fill="{color}">{100 * row.change:+.1f}% '
            f'{escape(row.verdict.upper())}</text>')
    parts.append(f'<line x1="{x(0):.1f}" y1="{TOP - 4}" x2="{x(0):.1f}" y2="{bottom}" stroke="{TEXT_COLOR}"/>')
    title = "Metrics measured in rounds: change against the minimum effect"
    caption = ("Each line is a metric's confidence interval for its change against the baseline, the dot its "
               "estimate; the grey band spans the changes smaller than the minimum effect and the red dashed edge "
               "is where a regression starts. Green PASS: the whole interval on the good side of the edge; red FAIL: "
               "the whole interval beyond it; amber INCONCLUSIVE: across it (more rounds could decide). An "
               "interval past the axis is cut at its end.")
    return Plot(title, caption, "", svg=_svg(bottom + BOTTOM, parts, title))


def _threshold(item: Gated) -> float | None:
    """The pass threshold a gated metric's value is divided by: the bound on its bad side."""
    bound = item.high if item.metric.higher_is_better is False else item.low if item.low is not None else item.high
    return bound if bound is not None and bound > 0 else None


def accuracy_plot(gated: list[Gated], name_pattern) -> Plot | None:
    """Gated accuracy metrics as measured / threshold on one axis with a line at 1.0 (INFO metrics left out):
    ROUGE in points, MMLU in % and the like can share it."""
    items = [(g, t) for g in gated if name_pattern.search(g.metric.name) and g.metric.value is not None
             and g.metric.verdict not in ("info", "no_baseline") and (t := _threshold(g)) is not None]
    if not items:
        return None
    ratios = [g.metric.value / threshold for g, threshold in items]
    top = max(1.25, 1.05 * max(ratios))
    left, right = LABEL_WIDTH + 10, WIDTH - NOTE_WIDTH

    def x(value: float) -> float:
        return left + max(0.0, min(top, value)) / top * (right - left)

    bottom = TOP + ROW * len(items)
    parts = [f'<rect width="{WIDTH}" height="{bottom + BOTTOM}" fill="#ffffff"/>']
    parts += _axis(x, 0.0, top, TOP, bottom, "measured / pass threshold", lambda v: f"{v:g}")
    for index, ((g, threshold), ratio) in enumerate(zip(items, ratios)):
        y = TOP + ROW * index + ROW / 2
        verdict = "fail" if g.failed or g.metric.verdict == "fail" else "pass"
        relation = "<=" if g.metric.higher_is_better is False else ">="
        describe = (f"{g.id}: {g.metric.value:.4g} {g.metric.unit} / threshold {threshold:.4g} = {ratio:.3f} "
                    f"(pass {relation} 1)")
        parts.append(
            _row_label(g.id, y)
            + f'<g class="mark {verdict}" data-metric="{escape(g.id)}"><title>{escape(describe)}</title>'
            f'<rect x="{left}" y="{y - 8:.1f}" width="{max(2.0, x(ratio) - left):.1f}" height="16" '
            f'fill="{VERDICT_COLOR[verdict]}"/></g>'
            f'<text x="{right + 10}" y="{y + 4:.1f}" fill="{VERDICT_COLOR[verdict]}">{ratio:.3f} '
            f'({escape(f"{g.metric.value:.4g}")} / {escape(f"{threshold:.4g}")})</text>')
        if g.low is not None and g.high is not None and g.low > 0:  # two-sided: the upper bound too
            parts.append(f'<line x1="{x(g.high / g.low):.1f}" y1="{y - 11:.1f}" x2="{x(g.high / g.low):.1f}" '
                         f'y2="{y + 11:.1f}" stroke="{TEXT_COLOR}" stroke-dasharray="3,2"/>')
    parts.append(f'<line x1="{x(1.0):.1f}" y1="{TOP - 4}" x2="{x(1.0):.1f}" y2="{bottom}" stroke="{TEXT_COLOR}" '
                 f'stroke-width="1.5"/>')
    title = "ROUGE / MMLU against targets"
    caption = ("Each gated accuracy metric as its measured value divided by its pass threshold (the profile's "
               "target or the baseline's bound), so metrics in points, % or characters share one axis; the solid "
               "line is 1.0. Higher-is-better metrics pass at or right of it. Red: failed. INFO metrics (gen_len, "
               "sample counts) are not drawn.")
    return Plot(title, caption, "", svg=_svg(bottom + BOTTOM, parts, title))
