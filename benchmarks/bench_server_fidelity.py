"""Server fidelity and harness ceiling: what LoadGen reports against what the engine did.

    python benchmarks/bench_server_fidelity.py [--rates 20,200,2000] [--seconds 10] [--step-ms 10]

Fidelity: a paced plumbing engine (``tests/plumbing.py``: a continuous batcher
that gives every running request a token each step, new requests joining at the next step;
answers of 4 or 64 tokens, alternating in the QSL) through the Server SUT and
the real LoadGen at each Poisson rate.  "True" TTFT and TPOT are the times the
engine stamped on its own tokens; "reported" are LoadGen's percentiles.  Goal:
reported within 5% (+1 ms) of true at every rate, with the default settings.

Ceiling: an instant plumbing engine (answers of ``--ceiling-tokens`` tokens,
default 32) through the Offline SUT (samples/s and tokens/s: the harness's
cost is per sample, so tokens/s scales with the answer length) and the Server
SUT at the highest rate (latency p99).  Goals: Offline >= 1 M tokens/s, Server
>= 2,000 QPS with p99 <= 2 ms.  Fakes measure the harness, never an engine.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from plumbing import InstantEngine, PacedEngine, answer_tokens  # noqa: E402

MS_PER_NS = 1e-6


def server_settings(profile, qps: float, seconds: float, samples: int):
    from pytest_llmperf.loadgen import run_settings

    return dataclasses.replace(run_settings(profile, "Server", "PerformanceOnly"), target_qps=qps,
                               min_duration_ms=int(seconds * 1000), min_query_count=int(qps * seconds),
                               performance_sample_count=samples, max_new_tokens=64)


def fidelity_row(profile, qps: float, seconds: float, step_s: float, out: Path) -> dict:
    from pytest_llmperf.loadgen import run_loadgen
    from pytest_llmperf.metrics.latency import percentile

    engine = PacedEngine(step_s=step_s)
    try:
        run = run_loadgen(engine, [[4, 1], [64, 1]], "Server", "PerformanceOnly",
                          server_settings(profile, qps, seconds, 2), out / f"paced-{qps:g}")
    finally:
        engine.close()
    ttft = [(g.token_times[0] - g.start_time) * 1e3 for g in engine.finished]
    tpot = [g.time_per_output_token * 1e3 for g in engine.finished]
    row = {"qps": qps, "queries": run.stats.samples, "valid": run.valid}
    for name, true in (("ttft", ttft), ("tpot", tpot)):
        for p in (50, 99):
            reported = run.summary.percentile(name, p) * MS_PER_NS
            row[f"{name}_p{p}"] = (percentile(true, p), reported)
    return row


def within_goal(true: float, reported: float) -> bool:
    return abs(reported - true) <= 0.05 * true + 1.0


def ceiling(profile, qps: float, seconds: float, tokens: int, out: Path) -> dict:
    from pytest_llmperf.loadgen import run_loadgen, run_settings

    engine = InstantEngine(answer=answer_tokens(tokens))
    offline = dataclasses.replace(run_settings(profile, "Offline", "PerformanceOnly"), min_duration_ms=2000,
                                  min_query_count=1, performance_sample_count=1024, target_qps=200_000.0)
    run = run_loadgen(engine, [[1, 2]] * 1024, "Offline", "PerformanceOnly", offline, out / "instant-offline")
    server = run_loadgen(engine, [[1, 2]] * 1024, "Server", "PerformanceOnly",
                         server_settings(profile, qps, seconds, 1024), out / "instant-server")
    return {"offline_tokens_per_second": run.summary.tokens_per_second,
            "offline_samples_per_second": run.summary.samples_per_second,
            "server_qps": server.summary.samples_per_second,
            "server_valid": server.valid,
            "server_latency_p99_ms": server.summary.percentile("latency", 99) * MS_PER_NS}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rates", default="20,200,2000", help="Poisson QPS, comma-separated")
    parser.add_argument("--seconds", type=float, default=10.0, help="LoadGen min duration per rate")
    parser.add_argument("--step-ms", type=float, default=10.0, help="the paced engine's step")
    parser.add_argument("--ceiling-tokens", type=int, default=32, help="answer length of the instant engine")
    args = parser.parse_args()

    from pytest_llmperf.config.profiles import load_profile

    profile = load_profile("embedded")
    rates = [float(r) for r in args.rates.split(",")]
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder)
        rows = [fidelity_row(profile, qps, args.seconds, args.step_ms / 1e3, out) for qps in rates]
        top = ceiling(profile, max(rates), args.seconds, args.ceiling_tokens, out)

    print(f"Server fidelity: paced engine, step {args.step_ms:g} ms, answers of 4 or 64 tokens; "
          "true (engine stamps) vs reported (LoadGen), ms")
    header = ["QPS", "queries", "valid"] + [f"{n} p{p} true/reported" for n in ("TTFT", "TPOT") for p in (50, 99)]
    print(" | ".join(header))
    failures = 0
    for row in rows:
        cells = [f"{row['qps']:g}", str(row["queries"]), "VALID" if row["valid"] else "INVALID"]
        for key in ("ttft_p50", "ttft_p99", "tpot_p50", "tpot_p99"):
            true, reported = row[key]
            ok = within_goal(true, reported)
            failures += not ok
            cells.append(f"{true:.2f} / {reported:.2f}{'' if ok else ' (off goal)'}")
        print(" | ".join(cells))
    print(f"goal: reported within 5% (+1 ms) of true: {'met' if not failures else f'{failures} cells off'}")
    print()
    print(f"Harness ceiling: instant engine, answers of {args.ceiling_tokens} tokens")
    print(f"Offline: {top['offline_samples_per_second']:,.0f} samples/s, {top['offline_tokens_per_second']:,.0f} "
          "tokens/s (goal >= 1,000,000 tokens/s)")
    print(f"Server at {max(rates):g} QPS: completed {top['server_qps']:,.0f} samples/s, "
          f"latency p99 {top['server_latency_p99_ms']:.3f} ms, {'VALID' if top['server_valid'] else 'INVALID'} "
          "(goal >= 2,000 QPS, p99 <= 2 ms)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
