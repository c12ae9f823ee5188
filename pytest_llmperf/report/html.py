"""The HTML report: one self-contained file (inline CSS, plots as data: PNGs and inline SVG).

Everything that comes from a results file (metric names, sources, test
messages, model outputs kept in a metric's ``extra``) passes through ``esc``,
so a ``<script>`` in a model's output is shown as text.  A Content Security
Policy forbids scripts and any remote load as a second line of defence.
"""

from __future__ import annotations

import json
from html import escape

from .plots import Plot
from .table import COLUMNS, format_change, format_value, inconclusive_note, metric_row, verdict_label

CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"
EXTRA_SHOWN_CHARS = 20_000
STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2rem auto; max-width: 1100px;
       color: #1f2933; background: #ffffff; padding: 0 1rem; }
h1 { margin-bottom: .2rem; } h2 { margin-top: 2rem; border-bottom: 1px solid #d9e2ec; padding-bottom: .2rem; }
.badge { display: inline-block; padding: .15rem .6rem; border-radius: .3rem; color: #fff; font-weight: 600; }
.badge.passed { background: #2e7d32; } .badge.inconclusive { background: #b26a00; }
tr.inconclusive td.verdict, p.inconclusive { color: #b26a00; } .badge.regressed { background: #c62828; }
table { border-collapse: collapse; width: 100%; font-size: .9rem; margin: .5rem 0; }
th, td { border: 1px solid #d9e2ec; padding: .3rem .5rem; text-align: left; vertical-align: top; }
th { background: #f0f4f8; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.fail td, tr.regressed td { background: #fdecea; } tr.pass td.verdict, tr.within td.status { color: #2e7d32; }
tr.improved td.status { color: #1565c0; } tr.missing td { background: #fff8e1; }
tr.inconclusive td.status { color: #b26a00; } tr.no-baseline td.status { color: #52606d; }
figure svg { max-width: 100%; height: auto; border: 1px solid #d9e2ec; }
td.verdict, td.status { font-weight: 600; }
ul.reasons li { color: #c62828; margin: .2rem 0; }
dl.run { display: grid; grid-template-columns: max-content auto; gap: .1rem 1rem; }
dl.run dt { font-weight: 600; } dl.run dd { margin: 0; }
figure { margin: 1rem 0; } figure img { max-width: 100%; border: 1px solid #d9e2ec; }
figcaption { font-size: .85rem; color: #52606d; }
pre { background: #f5f7fa; padding: .5rem; overflow-x: auto; white-space: pre-wrap; font-size: .8rem; }
footer { margin-top: 2rem; font-size: .8rem; color: #7b8794; }
"""


def esc(value: object) -> str:
    return escape("" if value is None else str(value), quote=True)


def _table(header: tuple[str, ...], rows: list[tuple[str, list[str]]], numeric: set[int] = frozenset(),
           classes: dict[int, str] | None = None) -> str:
    """``rows``: (row css class, cells already escaped)."""
    classes = classes or {}
    head = "".join(f"<th>{esc(name)}</th>" for name in header)
    body = []
    for css, cells in rows:
        tds = "".join(
            f'<td class="{"num" if i in numeric else classes.get(i, "")}">{cell}</td>' for i, cell in enumerate(cells))
        body.append(f'<tr class="{esc(css)}">{tds}</tr>')
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _run_section(report) -> str:
    current = report.current
    info = current.info
    items = [
        ("results", current.path), ("status", current.interruption or current.status), ("started", info.get("started")),
        ("finished", info.get("finished") or "did not finish"), ("git commit", info.get("git_commit")),
        ("profile", info.get("profile")), ("host", info.get("host")),
        ("command", " ".join(map(str, info.get("argv") or []))),
    ]
    if report.baseline is not None:
        status = f", status {report.baseline.run.status}" if report.baseline.run is not None else ""
        items.append(("baseline", f"{report.baseline.label} ({report.baseline.path}{status})"))
    if report.history_folder is not None:
        count = len(report.history)
        items.append(("history", f"{count} earlier run{'s' if count != 1 else ''} in {report.history_folder}"))
    rows = "".join(f"<dt>{esc(k)}</dt><dd>{esc(v)}</dd>" for k, v in items if v not in (None, ""))
    engines = current.data.get("engines") or {}
    engine_rows = [("", [esc(key), esc(e.get("engine")), esc(e.get("model")), esc(e.get("device")),
                         esc(e.get("device_name")), esc(e.get("dtype")),
                         esc(", ".join(f"{k} {v}" for k, v in (e.get("versions") or {}).items()))])
                   for key, e in engines.items()]
    engine_table = _table(("key", "engine", "model", "device", "device name", "dtype", "versions"),
                          engine_rows) if engine_rows else ""
    return f'<h2>Run</h2><dl class="run">{rows}</dl>{engine_table}'


def _reasons_section(report) -> str:
    inconclusive = inconclusive_note(list(report.current.metrics.values()))
    note = f'<p class="inconclusive">{esc(inconclusive)}</p>' if inconclusive else ""
    undecided = [row.id for row in report.comparisons if row.status == "inconclusive"]
    if undecided:
        note += (f'<p class="inconclusive">INCONCLUSIVE against {esc(report.baseline.label)} (not a regression): '
                 f'{esc(", ".join(undecided))}</p>')
    if not report.reasons:
        return note + "<p>Nothing regressed: every gate passed" + (
            " and no metric regressed against the baseline.</p>" if report.baseline else ".</p>")
    items = "".join(f"<li>{esc(reason)}</li>" for reason in report.reasons)
    return f'<h2>What regressed</h2><ul class="reasons">{items}</ul>' + note


def _metrics_section(report) -> str:
    metrics = report.current.metrics
    if not metrics:
        return "<h2>Metrics</h2><p>No metrics were recorded in this run.</p>"
    rows = [(metric.verdict, [esc(cell) for cell in metric_row(metric)]) for metric in metrics.values()]
    note = ("<p>Same columns as the table printed at the end of the pytest session; "
            "limit and delta are against the baseline or target the run was judged by.</p>")
    return "<h2>Metrics</h2>" + note + _table(COLUMNS, rows, numeric={2, 5}, classes={6: "verdict"})


def _comparison_section(report) -> str:
    if report.baseline is None:
        return ""
    if not report.comparisons:
        return f"<h2>Against {esc(report.baseline.label)}</h2><p>No metrics to compare.</p>"
    rows = []
    for row in report.comparisons:
        value = "n/a" if row.status == "missing" else format_value(row.metric.value)
        origin = "; ".join(part for part in (row.origin, row.note) if part)
        rows.append((row.status.replace(" ", "-"), [
            esc(row.id), esc(value), esc(format_value(row.reference)), esc(row.metric.unit),
            esc(format_change(row.change)), esc(row.allowed), esc(origin), esc(verdict_label(row.status))]))
    header = ("metric", "value", "baseline", "unit", "change", "allowed", "from", "status")
    return (f"<h2>Against {esc(report.baseline.label)}</h2>"
            + _table(header, rows, numeric={1, 2, 4}, classes={7: "status"}))


def _plots_section(plots: list[Plot]) -> str:
    if not plots:
        return "<h2>Plots</h2><p>No metric of this run has a baseline, target or history to plot.</p>"
    figures = "".join(
        f'<figure><h3>{esc(plot.title)}</h3>'
        + (plot.svg if plot.svg else f'<img alt="{esc(plot.title)}" src="data:image/png;base64,{plot.png_base64}">')
        + f'<figcaption>{esc(plot.caption)}</figcaption></figure>'
        for plot in plots)
    return "<h2>Plots</h2>" + figures


def _sweeps_section(report) -> str:
    from .sweeps import sweep_tables

    return sweep_tables(getattr(report, "sweeps", []), esc, _table)


def _tests_section(report) -> str:
    tests = report.current.data.get("tests") or []
    if not tests:
        return ""
    rows = []
    for test in tests:
        message = test.get("message")
        shown = f"<pre>{esc(message)}</pre>" if message else ""
        rows.append((test.get("outcome") == "failed" and "fail" or "",
                     [esc(test.get("nodeid")), esc(test.get("outcome")), esc(test.get("duration_s")), shown]))
    return "<h2>Tests</h2>" + _table(("test", "outcome", "seconds", "message"), rows, numeric={2})


def _details_section(report) -> str:
    """Each metric's source, test and extra (per-subject tables, percentiles, sample outputs)."""
    blocks = []
    for key, metric in report.current.metrics.items():
        if not metric.extra and not metric.source:
            continue
        text = json.dumps(metric.extra, indent=2, ensure_ascii=False, default=str)
        if len(text) > EXTRA_SHOWN_CHARS:
            text = text[:EXTRA_SHOWN_CHARS] + f"\n... ({len(text) - EXTRA_SHOWN_CHARS} more characters in results.json)"
        blocks.append(f"<details><summary>{esc(key)}</summary><p>test: {esc(metric.test)}<br>"
                      f"limit from: {esc(metric.source or 'none (not gated)')}</p><pre>{esc(text)}</pre></details>")
    return "<h2>Metric details</h2>" + "".join(blocks) if blocks else ""


def _history_section(report) -> str:
    if not report.history:
        if report.history_folder is not None:
            return f"<h2>History</h2><p>No earlier results found in {esc(report.history_folder)}.</p>"
        return ""
    rows = [(run.status == "failed" and "fail" or "", [esc(run.label), esc(run.status), esc(len(run.metrics)),
                                                       esc(run.path)]) for run in report.history]
    return "<h2>History</h2>" + _table(("run", "status", "metrics", "results"), rows, numeric={2})


def render_html(report, plots: list[Plot]) -> str:
    inconclusive = inconclusive_note(list(report.current.metrics.values())) or any(
        row.status == "inconclusive" for row in report.comparisons)
    state = "regressed" if report.regressed else "inconclusive" if inconclusive else "passed"
    title = f"llmperf report: {report.current.label}"
    body = "".join((
        f'<h1>llmperf report <span class="badge {state}">{state.upper()}</span></h1>',
        _reasons_section(report), _run_section(report), _metrics_section(report), _comparison_section(report),
        _plots_section(plots), _sweeps_section(report), _tests_section(report), _details_section(report),
        _history_section(report),
        f"<footer>Written by llmperf report at {esc(report.generated)}.</footer>",
    ))
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{esc(title)}</title><style>{STYLE}</style></head><body>{body}</body></html>\n")
