"""``llmperf compare``: the verdict table of an A/B comparison, offline, from results.json files.

* ``llmperf compare RUN``: a paired session's results (``--llmperf-compare``): each metric measured in
  pairs judged again from the pairs it kept, by the function the session used (the same verdicts);
* ``llmperf compare A B``: two sessions (A the reference, B the one under test): each metric of B
  judged against A by the session's rules: its pairs where B was a paired session, else its rounds
  against A's rounds (``gating.recorded``), else its value by ``--tolerance``.

Exit status: 0 nothing REGRESSED; 1 something did (or, where the profile set
``performance.inconclusive_fails``, was INCONCLUSIVE); 2 bad input.
"""

from __future__ import annotations

import argparse

from ..config.parsers import fraction

EXIT_OK, EXIT_REGRESSED = 0, 1

LABELS = {"regressed": "REGRESSED", "improved": "IMPROVED", "within": "PASS", "inconclusive": "INCONCLUSIVE",
          "no baseline": "NO BASELINE", "not gated": "INFO", "new": "NEW", "missing": "MISSING"}


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("runs", metavar="RESULTS", nargs="+",
                        help="a paired session's results folder (or results.json); or two: the reference A, then B")
    parser.add_argument("--tolerance", metavar="FRACTION", type=fraction("pass a fraction such as 0.05 for 5%"),
                        default=None, help="for A B: judge metrics that kept no rounds on both sides by this "
                                           "tolerance (default: shown, not judged)")


def rows_of(runs: list[str], tolerance: float | None):
    """(reference label, the comparisons) for one paired run or two runs."""
    from ..errors import UsageError
    from ..report.diff import compare_runs, judged_in_pairs
    from ..report.runs import load_run

    if len(runs) > 2:
        raise UsageError(f"llmperf compare {' '.join(runs)}", "takes one or two results",
                         "pass a paired session's results, or the reference's and then the one under test's")
    if len(runs) == 1:
        run = load_run(runs[0])
        rows = [row for key, metric in run.metrics.items() if (row := judged_in_pairs(key, metric)) is not None]
        if not rows:
            raise UsageError(runs[0], "holds no metric measured in pairs (it was not a --llmperf-compare session)",
                             "pass two results to compare them: llmperf compare A/results.json B/results.json")
        return "the reference measured beside it", rows
    reference, current = load_run(runs[0]), load_run(runs[1])
    return f"run {reference.label}", compare_runs(current, reference, tolerance)


def run(args: argparse.Namespace) -> int:
    from ..report.table import format_change, format_value, text_table

    label, rows = rows_of(args.runs, args.tolerance)
    table = [("metric", "A (reference)", "B", "unit", "change", "interval / rule", "verdict")]
    for row in rows:
        change = format_change(row.change) if row.status != "missing" else ""
        table.append((row.id, format_value(row.reference), format_value(row.metric.value) if row.status != "missing"
                      else "", row.metric.unit, change, row.allowed or row.note, LABELS[row.status]))
    for line in text_table(table[1:], header=table[0]):
        print(line)
    bad = [row for row in rows if row.status == "regressed" or (row.status == "inconclusive" and row.inconclusive_fails)]
    counts: dict[str, int] = {}
    for row in rows:
        counts[LABELS[row.status]] = counts.get(LABELS[row.status], 0) + 1
    print(f"against {label}: " + ", ".join(f"{n} {name}" for name, n in sorted(counts.items())))
    from ..gating.paired import PairedJudgement, pairs_needed

    for row in rows:
        if row.status == "inconclusive" and isinstance(row.judgement, PairedJudgement):
            needed = pairs_needed(row.judgement)
            if needed:
                print(f"INCONCLUSIVE {row.id}: about {needed} pairs of this spread would decide "
                      "([performance] paired_max_rounds)")
    for row in bad:
        print(f"REGRESSED {row.describe()}")
    return EXIT_REGRESSED if bad else EXIT_OK
