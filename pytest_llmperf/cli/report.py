"""``llmperf report``: HTML, Markdown and JSON reports from a results folder.

Exit status: 0 nothing regressed (INCONCLUSIVE and NO BASELINE included); 1 a
gate failed in the run, or a metric regressed against ``--baseline``: by the
session's own rule for a metric measured in rounds, by its tolerance otherwise
(so a nightly job goes red); 2 bad input (printed as one line by ``cli.main``).
"""

from __future__ import annotations

import argparse

from ..errors import UsageError
from ..config.parsers import fraction

EXIT_OK, EXIT_REGRESSED = 0, 1

parse_tolerance = fraction("pass a fraction such as 0.05 for 5%")


def configure(parser: argparse.ArgumentParser) -> None:
    from ..report.build import DEFAULT_TOLERANCE

    parser.add_argument("results", metavar="RESULTS_DIR",
                        help="a results folder written by a pytest-llmperf session (--llmperf-out), or its results.json")
    parser.add_argument("--baseline", metavar="DIR", default=None,
                        help="compare with an earlier results folder, or with a baselines folder (e.g. baselines/)")
    parser.add_argument("--history", metavar="DIR", default=None,
                        help="folder of earlier results folders or results.json files, for the trend plot")
    parser.add_argument("--out", metavar="DIR", required=True,
                        help="where to write report.html, summary.md and diff.json")
    parser.add_argument("--tolerance", metavar="FRACTION", type=parse_tolerance, default=DEFAULT_TOLERANCE,
                        help="tolerance for gated metrics that recorded neither rounds nor a tolerance of their own "
                             f"(default {DEFAULT_TOLERANCE}: 5%%)")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ..report import build_report, write_report
    from ..report.table import metric_row, text_table

    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out}", "is a file", "pass a folder (it is created if missing)")
    report = build_report(args.results, args.baseline, args.history, args.tolerance)
    files = write_report(report, out)
    rows = [metric_row(metric) for metric in report.current.metrics.values()]
    for line in text_table(rows) if rows else ["no metrics recorded"]:
        print(line)
    if report.baseline is not None:
        counts: dict[str, int] = {}
        for row in report.comparisons:
            counts[row.status] = counts.get(row.status, 0) + 1
        summary = ", ".join(f"{n} {status}" for status, n in sorted(counts.items())) or "nothing to compare"
        print(f"against {report.baseline.label}: {summary}")
        for row in report.comparisons:
            if row.status in ("inconclusive", "no baseline"):
                print(f"{row.status.upper()} {row.describe()}")
    for reason in report.reasons:
        print(f"REGRESSED {reason}")
    print(f"html: {files.html}")
    print(f"markdown: {files.markdown}")
    print(f"json: {files.json}")
    return EXIT_REGRESSED if report.regressed else EXIT_OK
