"""``llmperf sweep``: Server runs over a list or range of rates (and, for engines that take
requests one by one, closed-loop concurrencies), one line per point, ``sweep.json`` at the end.

Per point: completed tokens/s and samples/s, TTFT, TPOT, inter-token and end-to-end latency
at p50/p90/p99 from the engine's own token times, goodput (queries meeting every SLO of the
profile, per second), LoadGen's result; ``llmperf report`` draws the latency-throughput
curve and the Pareto front from ``sweep.json``.  Exit status 0, or 2 on bad input.
"""

from __future__ import annotations

import argparse

from . import engine_run


def configure(parser: argparse.ArgumentParser) -> None:
    engine_run.configure(parser)
    parser.add_argument("--scenario", choices=("Server", "Interactive"), default="Server")
    parser.add_argument("--qps", metavar="LIST|RANGE", default=None,
                        help="rates: 1,2,4 or start:stop:step (default: the profile's sweep.qps)")
    parser.add_argument("--concurrency", metavar="LIST", default=None,
                        help="also closed-loop points with this many requests in flight, e.g. 1,4,16")
    parser.add_argument("--requests", type=int, default=64, metavar="N",
                        help="requests per concurrency point (default 64)")
    parser.add_argument("--devices", type=int, default=1, metavar="N",
                        help="devices the engine spans, for tokens/s per device (default 1)")


def run(args: argparse.Namespace) -> int:
    from ..engines import GenerationParams
    from ..errors import UsageError
    from ..loadgen.settings import run_settings
    from ..loadgen.sweep import concurrency_point, describe, parse_loads, slo_of, sweep, write_sweep
    from ..config.profiles import load_profile

    profile = load_profile(args.llmperf_profile)
    loads = parse_loads(args.qps) if args.qps else list(profile.sweep.qps)
    concurrencies = [int(c) for c in parse_loads(args.concurrency, "--concurrency")] if args.concurrency else []
    if not loads and not concurrencies:
        raise UsageError(f"profile {profile.name}", "has no sweep.qps and no --qps or --concurrency was given",
                         "pass --qps 1,2,4 (or a range start:stop:step)")
    if args.devices < 1 or args.requests < 1:
        raise UsageError(f"--devices {args.devices} / --requests {args.requests}", "must be >= 1", "pass counts >= 1")
    loaded = engine_run.open_engine(args, "sweep")
    try:
        out = loaded.out / "sweep" / f"{loaded.engine.info.engine}-{args.scenario}"
        section = profile.sweep
        points = sweep(loaded.run_one, loaded.profile, loads, out, args.scenario, section.duration_ms,
                       section.min_queries, args.devices)
        base = run_settings(loaded.profile, args.scenario, "PerformanceOnly")
        params = GenerationParams(max_new_tokens=base.max_new_tokens, min_new_tokens=base.min_new_tokens)
        for concurrency in concurrencies:
            point = concurrency_point(loaded.engine, loaded.prompts, params, concurrency, args.requests,
                                      slo_of(base), out / f"concurrency-{concurrency}")
            points.append(point)
            print(describe(point))
            write_sweep(out, points, loaded.profile, base)
    finally:
        loaded.close()
    agreed = next((p.loadgen["agreement"] for p in points if p.loadgen and "agreement" in p.loadgen), None)
    if agreed is not None:
        values = ", ".join(f"{name} {row['engine_ms']:.1f}/{row['loadgen_ms']:.1f} ms"
                           for name, row in agreed["values"].items())
        print(f"per-query TTFT/TPOT (engine/LoadGen) on the first point: "
              f"{'agree' if agreed['agrees'] else 'DIFFER'} ({values})")
    print(f"sweep: {out / 'sweep.json'}")
    _results_file(loaded, args)
    return 0


def _results_file(loaded, args: argparse.Namespace) -> None:
    """A results.json beside the sweep when the folder has none, so ``llmperf report`` can read it."""
    import dataclasses
    import sys

    from ..runtime.results import ResultsStore, git_commit, package_versions

    if (loaded.out / "results.json").exists():
        return
    store = ResultsStore(loaded.out, {"argv": sys.argv, "command": "llmperf sweep", "profile": loaded.profile.name,
                                      "git_commit": git_commit(), "versions": package_versions()})
    info = dataclasses.asdict(loaded.engine.info)
    store.add_engine(f"{info['engine']}-{info['device']}", info)
    store.finish("passed")
    print(f"report: llmperf report {loaded.out} --out REPORT_DIR")
