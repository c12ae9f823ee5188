"""``llmperf baselines``: show the baselines folder, or update it from a passed run.

``show`` prints one table per baseline key (model / hardware / engine / dtype).
``update RESULTS_DIR`` writes the values a passed run measured, under the same
rules as ``--llmperf-update-baselines``: only from a run whose status is
``passed`` and where no metric failed, merged atomically under the file lock,
existing tolerances kept, provenance (date, commit, test, results file)
recorded.  A refused update prints one line and exits 1; bad input exits 2.
"""

from __future__ import annotations

import argparse
import sys

EXIT_OK, EXIT_REFUSED = 0, 1
DEFAULT_FOLDER = "baselines"


def configure(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    show = actions.add_parser("show", help="print every baseline: value, unit, direction, tolerance, provenance")
    show.add_argument("--baselines", metavar="DIR", default=DEFAULT_FOLDER,
                      help=f"baselines folder (default: {DEFAULT_FOLDER})")
    update = actions.add_parser("update", help="record a passed run's values as the new baselines")
    update.add_argument("results", metavar="RESULTS_DIR",
                        help="results folder of a passed session (--llmperf-out), or its results.json")
    update.add_argument("--baselines", metavar="DIR", default=DEFAULT_FOLDER,
                        help=f"baselines folder (default: {DEFAULT_FOLDER})")
    update.add_argument("--dry-run", action="store_true", help="print what would change, write nothing")


def run(args: argparse.Namespace) -> int:
    return show(args.baselines) if args.action == "show" else update(args.results, args.baselines, args.dry_run)


def _direction(higher_is_better: object) -> str:
    return {True: "higher", False: "lower"}.get(higher_is_better, "two-sided")  # type: ignore[arg-type]


def _tolerance(tolerance: object) -> str:
    if not isinstance(tolerance, dict) or not tolerance:
        return "none"
    if "absolute" in tolerance:
        return f"±{tolerance['absolute']:g} abs"
    return f"{100 * float(tolerance.get('relative', 0)):g}%"


def show(folder: str) -> int:
    from ..gating.baselines import read_baseline_files
    from ..report.table import format_value, text_table

    files = read_baseline_files(folder)
    if not files:
        print(f"no baseline files under {folder}; record some with: pytest suites -m cpu --llmperf-update-baselines")
        return EXIT_OK
    header = ("metric", "value", "unit", "direction", "tolerance", "date", "commit")
    for index, file in enumerate(files):
        key = file.key
        if index:
            print()
        print(f"{key.model} / {key.hardware} / {key.engine} / {key.dtype}  ({file.path})")
        rows = []
        for name, entry in sorted(file.metrics.items()):
            provenance = entry.get("provenance") or {}
            value = entry.get("value")
            rows.append((name, format_value(value if isinstance(value, (int, float)) else None),
                         str(entry.get("unit", "")), _direction(entry.get("higher_is_better")),
                         _tolerance(entry.get("tolerance")), str(provenance.get("date") or "")[:10],
                         str(provenance.get("git_commit") or "")[:10]))
        for line in text_table(rows, header) if rows else ["(no metrics)"]:
            print(line)
        if file.arrays:
            print(f"arrays: {len(file.arrays)} .npy files in {file.path.with_suffix('')}")
    return EXIT_OK


def update(results: str, folder: str, dry_run: bool) -> int:
    from ..gating.baselines import BaselineStore
    from ..errors import InputError
    from ..report.baseline_updates import proposed_entries, refusal_reason
    from ..report.runs import load_run
    from ..report.table import format_value

    run = load_run(results)
    reason = refusal_reason(run)
    if reason:
        print(f"llmperf baselines: not updated: {reason}; baselines are only recorded from a passed run",
              file=sys.stderr)
        return EXIT_REFUSED
    proposed = proposed_entries(run)
    if not proposed:
        raise InputError(run.path, "has no metric gated on a baseline (none records a 'baseline_key' in its extra)",
                         "run the suites with this version of pytest-llmperf, or record with --llmperf-update-baselines")
    store = BaselineStore(folder)
    for key, entries in proposed.items():
        old = store.load(key)["metrics"]
        for name, entry in sorted(entries.items()):
            before = old.get(name, {}).get("value")
            change = "new" if before is None else f"{format_value(before)} -> {format_value(entry['value'])}"
            print(f"{'would update' if dry_run else 'update'} {store.path(key)}: {name} {change} {entry['unit']}")
        if not dry_run:
            store.update(key, entries)
    return EXIT_OK
