"""Server latency through MLPerf LoadGen: TTFT and TPOT p99 against the profile's
limits and the baseline, and a VALID result.

One LoadGen Server run (PerformanceOnly, Poisson arrivals at the profile's
target QPS); the SUT reports each first token the moment it exists, so TTFT and
TPOT are LoadGen's own measurements.  Completed tokens/s, MFU and MBU are
reported, not gated: in Server they follow the arrival rate.
"""

from pytest_llmperf import kit

NS_PER_MS = 1e6


def test_server_latency(llmperf_engine, llmperf_session, llmperf_check, benchmark, request):
    engine = llmperf_engine
    profile = llmperf_session.profile
    shared = benchmark.pedantic(kit.scenario_run, args=(llmperf_session, engine, "Server", "PerformanceOnly",
                                                        request.node.nodeid), rounds=1, iterations=1)
    run, summary = shared.run, shared.run.summary
    tolerance = kit.Tolerance(relative=profile.performance.latency_tolerance)
    where = {"logs": str(run.folder), "run_by": shared.owner, "queries": run.stats.samples,
             "submission": run.stats.submission, "notes": list(run.settings.notes)}
    measured = {}
    for name, limit_ms in (("ttft", run.settings.ttft_latency_ms), ("tpot", run.settings.tpot_latency_ms)):
        value_ns = summary.percentile(name, 99.0)
        value_ms = None if value_ns is None else value_ns / NS_PER_MS
        measured[f"{name}_p99_ms"] = value_ms
        llmperf_check.against_baseline(f"server.{name}_p99", value_ms, "ms", False, tolerance, extra=where)
        if limit_ms > 0:
            limit = kit.Limit.at_most(limit_ms, reference=limit_ms, flag="--llmperf-profile",
                                      source=f"{profile.name}: loadgen.server.{name}_latency_ms = {limit_ms:g}")
            llmperf_check.against(f"server.{name}_p99.limit", value_ms, "ms", False, limit, extra=where)
    llmperf_check.info("server.completed_tokens_per_second", summary.tokens_per_second, "tokens/s", True, extra=where)
    for name, value in (run.stats.engine_latency_ms or {}).items():
        if name != "requests":  # the engine's own per-request timings, beside LoadGen's (vLLM)
            llmperf_check.info(f"server.engine_{name}", value, "ms", False, extra=where)
    utilization = kit.record_utilization(llmperf_check, llmperf_session, engine, "server", summary.tokens_per_second,
                                         kit.loadgen_steps_per_second(run, summary.tokens_per_second), run)
    benchmark.extra_info.update(
        scenario="Server", target_qps=run.settings.target_qps, completed_tokens_per_second=summary.tokens_per_second,
        completed_samples_per_second=summary.samples_per_second, queries=run.stats.samples, **measured,
        loadgen_seconds=run.seconds, reused_run_of=shared.owner if shared.reused else None,
        result="VALID" if run.valid else "INVALID", logs=str(run.folder), **utilization,
    )
    if (message := run.invalid_message()) is not None:
        llmperf_check.fail(message)
