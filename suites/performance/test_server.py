"""Server latency through MLPerf LoadGen: median TTFT and TPOT against the baseline, p99 against the
profile's limits, and a VALID result.

LoadGen Server runs (PerformanceOnly, Poisson arrivals at the profile's target QPS);
the SUT reports each first token the moment it exists, so TTFT and TPOT are
LoadGen's own measurements.  A short run (8-16 queries) can estimate a median,
not a p99 (that is about its slowest query), so the regression gate judges the
medians, in calibrated rounds (``[performance] latency_rounds`` per run, ``rounds``
when recording a baseline; docs/performance-gates.md), and the p99 meets the
profile's sanity limits.  Completed tokens/s, MFU and MBU are reported, not gated:
in Server they follow the arrival rate.
"""

from pytest_llmperf import kit

NS_PER_MS = 1e6
METRICS = (kit.RoundMetric("server.ttft_p50", "ms", False), kit.RoundMetric("server.tpot_p50", "ms", False))


def test_server_latency(llmperf_engine, llmperf_session, llmperf_check, benchmark, request):
    engine = llmperf_engine
    profile = llmperf_session.profile
    runs = []

    def values(run):
        if (message := run.invalid_message()) is not None:
            llmperf_check.fail(message)
        return {f"server.{name}_p50": _ms(run.summary.percentile(name, 50.0)) for name in ("ttft", "tpot")}

    measure = kit.loadgen_rounds(llmperf_session, engine, "Server", request.node.nodeid, values, runs)
    workload = kit.loadgen_workload(llmperf_session, engine, "Server")
    rounds = benchmark.pedantic(kit.gate_in_rounds, args=(llmperf_check, llmperf_session, engine, METRICS,
                                                            measure, workload),
                                  kwargs={"rounds": profile.performance.latency_rounds}, rounds=1, iterations=1)
    ttft = rounds.values(METRICS[0].name)
    run = runs[sorted(range(len(ttft)), key=lambda i: ttft[i] or 0)[len(ttft) // 2]]  # the median round
    summary = run.summary
    where = {"logs": str(run.folder), "queries": run.stats.samples, "rounds": len(runs),
             "submission": run.stats.submission, "notes": list(run.settings.notes)}
    measured = {}
    for name, limit_ms in (("ttft", run.settings.ttft_latency_ms), ("tpot", run.settings.tpot_latency_ms)):
        value_ms = _ms(summary.percentile(name, 99.0))
        measured[f"{name}_p99_ms"] = value_ms
        if limit_ms > 0:
            limit = kit.Limit.at_most(limit_ms, reference=limit_ms, flag="--llmperf-profile",
                                      source=f"{profile.name}: loadgen.server.{name}_latency_ms = {limit_ms:g}")
            llmperf_check.against(f"server.{name}_p99.limit", value_ms, "ms", False, limit, extra=where)
        else:
            llmperf_check.info(f"server.{name}_p99", value_ms, "ms", False, extra=where)
    llmperf_check.info("server.completed_tokens_per_second", summary.tokens_per_second, "tokens/s", True, extra=where)
    for name, value in (run.stats.engine_latency_ms or {}).items():
        if name != "requests":  # the engine's own per-request timings, beside LoadGen's (vLLM)
            llmperf_check.info(f"server.engine_{name}", value, "ms", False, extra=where)
    utilization = kit.record_utilization(llmperf_check, llmperf_session, engine, "server", summary.tokens_per_second,
                                         kit.loadgen_steps_per_second(run, summary.tokens_per_second), run)
    benchmark.extra_info.update(
        scenario="Server", target_qps=run.settings.target_qps, completed_tokens_per_second=summary.tokens_per_second,
        completed_samples_per_second=summary.samples_per_second, queries=run.stats.samples, **measured,
        rounds=len(runs), round_ttft_p50_ms=ttft, round_tpot_p50_ms=rounds.values(METRICS[1].name),
        loadgen_seconds=sum(r.seconds for r in runs),
        result="VALID" if all(r.valid for r in runs) else "INVALID", logs=[str(r.folder) for r in runs], **utilization,
    )


def _ms(value_ns):
    return None if value_ns is None else value_ns / NS_PER_MS
