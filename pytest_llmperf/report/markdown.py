"""The Markdown summary: short enough for a CI job page (``$GITHUB_STEP_SUMMARY``).

Every cell is escaped: ``|`` would break the table and ``<``/``>`` would be
read as HTML by GitHub's renderer.
"""

from __future__ import annotations

from .table import COLUMNS, format_change, format_value, inconclusive_note, metric_row, verdict_label


def escape(text: object) -> str:
    """Plain text for a Markdown table cell or list item."""
    text = " ".join(str(text).split())
    for raw, safe in (("&", "&amp;"), ("<", "&lt;"), (">", "&gt;"), ("|", "\\|"), ("`", "\\`"), ("*", "\\*")):
        text = text.replace(raw, safe)
    return text


def _table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(escape(cell) for cell in row) + " |" for row in rows]
    return lines


def render_markdown(report) -> str:
    current = report.current
    inconclusive = inconclusive_note(list(current.metrics.values()))
    undecided = any(row.status == "inconclusive" for row in report.comparisons)
    verdict = ("INTERRUPTED" if current.interruption else "REGRESSED" if report.regressed
               else "PASSED, INCONCLUSIVE" if inconclusive or undecided else "PASSED")
    lines = [f"## llmperf report: {verdict}", ""]
    context = [f"run `{escape(current.label)}` (status {escape(current.status)}, "
               f"profile {escape(current.info.get('profile') or '?')})"]
    if report.baseline is not None:
        context.append(f"compared with {escape(report.baseline.label)}")
    if report.history_folder is not None:
        count = len(report.history)
        context.append(f"{count} earlier run{'s' if count != 1 else ''} in the history")
    lines += ["; ".join(context), ""]
    if inconclusive:
        lines += [f"**{escape(inconclusive)}**", ""]
    if report.reasons:
        lines += ["**What regressed**", ""] + [f"- {escape(reason)}" for reason in report.reasons] + [""]
    rows = [metric_row(metric) for metric in current.metrics.values()]
    if rows:
        lines += _table(COLUMNS, rows) + [""]
    else:
        lines += ["No metrics were recorded.", ""]
    if report.comparisons:
        lines += [f"**Against {escape(report.baseline.label)}**", ""]
        compared = [(row.id, format_value(row.metric.value) if row.status != "missing" else "n/a",
                     format_value(row.reference), format_change(row.change), row.allowed,
                     verdict_label(row.status) + (f" ({row.note})" if row.note else ""))
                    for row in report.comparisons]
        lines += _table(("metric", "value", "baseline", "change", "allowed", "status"), compared) + [""]
    return "\n".join(lines)
