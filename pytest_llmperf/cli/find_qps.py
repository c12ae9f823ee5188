"""``llmperf find-qps``: the highest Server/Interactive target_qps whose LoadGen run is VALID.

Prints every probe, why the search stopped, the confirming run's LoadGen summary
lines and, last, the ``user.conf`` line to paste.  Every probe's LoadGen folder
and ``find-qps.json`` go to ``--llmperf-out``/find-qps/<engine>-<scenario>/.
Exit status: 0 the confirming run is VALID; 1 it is INVALID, or no rate passed a
probe; 2 bad input.
"""

from __future__ import annotations

import argparse
import dataclasses

from . import engine_run

EXIT_VALID, EXIT_INVALID = 0, 1
#: option -> (CapacitySection field, scale from the option's unit to the field's)
SEARCH_OPTIONS = {"qps_min": ("qps_min", 1), "qps_max": ("qps_max", 1), "precision": ("precision", 1),
                  "margin": ("margin", 1), "probe_seconds": ("probe_duration_ms", 1000),
                  "probe_queries": ("probe_min_queries", 1), "time_budget": ("time_budget_s", 1),
                  "check_above": ("check_above", 1)}
#: The summary lines that carry the verdict.
KEY_LINES = ("Scenario", "Result is", "Performance constraints satisfied", "Min duration satisfied",
             "Min queries satisfied", "Early stopping satisfied", "Completed samples per second",
             "Completed tokens per second", "target_qps", "percentile first token latency",
             "percentile time to output token", "ttft_latency", "tpot_latency")


def configure(parser: argparse.ArgumentParser) -> None:
    engine_run.configure(parser)
    parser.add_argument("--scenario", choices=("Server", "Interactive"), default="Server")
    add = parser.add_argument
    add("--qps-min", type=float, default=None, metavar="QPS", help="first probe's rate (profile: capacity.qps_min)")
    add("--qps-max", type=float, default=None, metavar="QPS", help="never probe above (capacity.qps_max)")
    add("--precision", type=float, default=None, metavar="FRACTION",
        help="stop when the failing rate is within this fraction of the passing one (capacity.precision)")
    add("--margin", type=float, default=None, metavar="FRACTION",
        help="a probe passes at or below (1 - margin) x each limit (capacity.margin)")
    add("--probe-seconds", type=float, default=None, metavar="S", help="each probe's min duration")
    add("--probe-queries", type=int, default=None, metavar="N", help="each probe's min query count")
    add("--time-budget", type=float, default=None, metavar="S", help="the whole search, confirmation included")
    add("--check-above", type=float, default=None, metavar="FACTOR",
        help="after a VALID confirmation, also run the full test at FACTOR x the rate (evidence, e.g. 1.5)")


def search_settings(args: argparse.Namespace, profile):
    changes = {}
    for option, (field, scale) in SEARCH_OPTIONS.items():
        value = getattr(args, option, None)
        if value is not None:
            changes[field] = int(value * scale) if field in ("probe_duration_ms", "probe_min_queries") else value
    return dataclasses.replace(profile.capacity, **changes)


def run(args: argparse.Namespace) -> int:
    from ..loadgen.capacity import check_capacity, find_qps, run_above

    from ..config.profiles import load_profile

    profile = load_profile(args.llmperf_profile)
    search = search_settings(args, profile)
    check_capacity(search)  # bad ranges fail before the engine loads
    loaded = engine_run.open_engine(args, "find-qps")
    try:
        out = loaded.out / "find-qps" / f"{loaded.engine.info.engine}-{args.scenario}"
        result = find_qps(loaded.run_one, loaded.profile, args.scenario, search, out)
        if result.confirm_folder is not None:
            print(f"confirming run: {'VALID' if result.confirmed else 'INVALID'} ({result.confirm_folder})")
            print_key_lines(result.confirm_folder)
        if result.confirmed and search.check_above > 0:
            above = run_above(loaded.run_one, loaded.profile, args.scenario, result.rate, search.check_above, out)
            print(f"check at {search.check_above:g} x: {above.settings.target_qps:g} qps "
                  f"{'VALID' if above.valid else 'INVALID'} ({above.folder})")
            print_key_lines(above.folder)
    finally:
        loaded.close()
    print(f"results: {out}")
    if result.rate is None:
        print(f"no rate passed a probe: {result.stop_message}")
        return EXIT_INVALID
    if not result.confirmed:
        print(f"confirming run at {result.rate:g} qps is INVALID: {result.confirm_message}")
        print(f"# not backed by a VALID run: {result.user_conf_line}")
        return EXIT_INVALID
    print(result.user_conf_line)
    return EXIT_VALID


def print_key_lines(folder) -> None:
    from pathlib import Path

    from ..loadgen.summary import SUMMARY_LOG

    for line in (Path(folder) / SUMMARY_LOG).read_text(encoding="utf-8", errors="replace").splitlines():
        if any(key in line for key in KEY_LINES):
            print(f"  {line.strip()}")
