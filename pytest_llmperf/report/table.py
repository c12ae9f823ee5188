"""The metric table (metric, engine, value, unit, limit, delta, verdict).

The terminal summary at the end of a session
(``recording.SessionRecorder.summary_lines``) and the HTML and Markdown
reports all format it here, so a number read in the terminal can be found
unchanged in the reports.
"""

from __future__ import annotations

import math

from ..runtime.results import Metric

COLUMNS = ("metric", "engine", "value", "unit", "limit", "delta", "verdict")


def format_value(value: float | None) -> str:
    """Four significant digits; scientific notation from 100,000 up; ``n/a`` when unmeasured."""
    if value is None or not math.isfinite(value):
        return "n/a"
    return f"{value:.4g}" if abs(value) < 1e5 else f"{value:.3e}"


def relative_change(value: float | None, reference: float | None) -> float | None:
    """``(value - reference) / |reference|`` as a fraction, or None when undefined."""
    if value is None or reference is None or reference == 0:
        return None
    if not (math.isfinite(value) and math.isfinite(reference)):
        return None
    return (value - reference) / abs(reference)


def format_change(change: float | None) -> str:
    return "" if change is None else f"{100 * change:+.1f}%"


def metric_row(metric: Metric) -> tuple[str, ...]:
    """One row of the table for ``metric`` (strings, unescaped)."""
    return (
        metric.name,
        metric.engine or "",
        format_value(metric.value),
        metric.unit,
        metric.limit or "",
        format_change(relative_change(metric.value, metric.baseline)),
        verdict_label((metric.extra.get("paired") or {}).get("verdict") or metric.verdict),
    )


def verdict_label(verdict: str) -> str:
    """``PASS``, ``FAIL``, ``INCONCLUSIVE``, ``NO BASELINE``, ... as the terminal and the reports show it
    (a paired A/B metric shows its own verdict: ``IMPROVED``, ``PASS``, ``REGRESSED``, ``INCONCLUSIVE``)."""
    return verdict.upper().replace("_", " ")


def inconclusive_note(metrics: list[Metric]) -> str | None:
    """``2 metrics INCONCLUSIVE: decode.tokens_per_second, ...`` (they did not fail), or None."""
    names = [f"{m.name} [{m.engine}]" if m.engine else m.name for m in metrics if m.verdict == "inconclusive"]
    if not names:
        return None
    return (f"{len(names)} metric{'s' if len(names) != 1 else ''} INCONCLUSIVE (the rounds could not tell a "
            f"regression from noise; did not fail, see [performance] inconclusive_fails): {', '.join(names)}")


def no_baseline_note(metrics: list[Metric]) -> str | None:
    """``2 metrics NO BASELINE: ...; record with: pytest ...`` (they did not fail), or None."""
    missing = [m for m in metrics if m.verdict == "no_baseline"]
    if not missing:
        return None
    names = [f"{m.name} [{m.engine}]" if m.engine else m.name for m in missing]
    commands = list(dict.fromkeys(str(m.extra.get("record_with")) for m in missing if m.extra.get("record_with")))
    return (f"{len(names)} metric{'s' if len(names) != 1 else ''} NO BASELINE (nothing recorded to judge "
            f"{'them' if len(names) != 1 else 'it'} against; did not fail, see --llmperf-strict-baselines): "
            f"{', '.join(names)}; record with: {' ; '.join(commands)}")


def text_table(rows: list[tuple[str, ...]], header: tuple[str, ...] = COLUMNS) -> list[str]:
    """Left-aligned columns with a dashed rule under the header, as in the terminal summary."""
    table = [header, *rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in table]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return lines


PHASES = ("load", "warm-up", "data", "calibrate", "generate", "score")
"""The phases a session times (``harness.session.LlmperfSession.timed``), in the order a test meets them."""


def duration_table(durations: dict[str, dict], tests: list[dict]) -> list[str]:
    """Per test (longest first, ties in run order): its duration from setup to teardown, the seconds of each phase, the rest
    ("other": pytest, the test's own code, judging) and its rounds' wall times; a total row last."""
    totals = {test["nodeid"]: float(test.get("duration_s") or 0.0) for test in tests}
    totals.update({name: float(spent["total"]) for name, spent in durations.items() if "total" in spent})
    names = sorted(dict.fromkeys([*totals, *durations]), key=lambda n: -totals.get(n, 0.0))
    header = ("test", "total", *PHASES, "other", "rounds")
    rows, sums = [], dict.fromkeys(("total", *PHASES, "other"), 0.0)
    for name in names:
        spent = durations.get(name, {})
        total = totals.get(name, 0.0)
        phases = [float(spent.get(phase, 0.0)) for phase in PHASES]
        other = max(0.0, total - sum(phases))
        for key, value in zip(("total", *PHASES, "other"), (total, *phases, other)):
            sums[key] += value
        rounds = spent.get("rounds") or []
        rows.append((name.split("::", 1)[-1], f"{total:.1f}", *(f"{v:.1f}" if v else "-" for v in phases),
                     f"{other:.1f}", " ".join(f"{s:.1f}" for s in rounds) or "-"))
    rows.append(("all tests", *(f"{sums[key]:.1f}" for key in ("total", *PHASES, "other")), ""))
    return text_table(rows, header)
