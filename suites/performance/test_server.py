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

METRICS = (kit.RoundMetric("server.ttft_p50", "ms", False), kit.RoundMetric("server.tpot_p50", "ms", False))


def test_server_latency(llmperf_engine, llmperf_session, llmperf_check, benchmark, request):
    def values(run):
        return {f"server.{name}_p50": kit.ms(run.summary.percentile(name, 50.0)) for name in ("ttft", "tpot")}

    measured = kit.gate_loadgen_rounds(llmperf_check, llmperf_session, llmperf_engine, "Server", request.node.nodeid,
                                       METRICS, values, benchmark=benchmark,
                                       rounds=llmperf_session.profile.performance.latency_rounds)
    run = measured.median_run(METRICS[0].name)
    summary = run.summary
    where = {"logs": str(run.folder), "queries": run.stats.samples, "rounds": len(measured.runs),
             "submission": run.stats.submission, "notes": list(run.settings.notes)}
    p99 = kit.gate_p99_limits(llmperf_check, llmperf_session, run, extra=where)
    llmperf_check.info("server.completed_tokens_per_second", summary.tokens_per_second, "tokens/s", True, extra=where)
    for name, value in (run.stats.engine_latency_ms or {}).items():
        if name != "requests":  # the engine's own per-request timings, beside LoadGen's (vLLM)
            llmperf_check.info(f"server.engine_{name}", value, "ms", False, extra=where)
    utilization = kit.record_utilization(llmperf_check, llmperf_session, llmperf_engine, "server",
                                         summary.tokens_per_second,
                                         kit.loadgen_steps_per_second(run, summary.tokens_per_second), run)
    benchmark.extra_info.update(
        scenario="Server", target_qps=run.settings.target_qps, completed_tokens_per_second=summary.tokens_per_second,
        completed_samples_per_second=summary.samples_per_second, queries=run.stats.samples, **p99,
        round_ttft_p50_ms=measured.values(METRICS[0].name), round_tpot_p50_ms=measured.values(METRICS[1].name),
        **measured.evidence(), **utilization,
    )
