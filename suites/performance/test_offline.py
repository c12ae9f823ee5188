"""Offline throughput through MLPerf LoadGen: tokens/s and samples/s against the baseline.

One LoadGen Offline run (PerformanceOnly) over the profile's OpenOrca prompts;
its logs and run.json stay in this test's folder under --llmperf-out.  MFU and
MBU are reported next to the throughput ("n/a" where the device's peak is not
known).
"""

from pytest_llmperf import kit


def test_offline_throughput(llmperf_engine, llmperf_session, llmperf_check, benchmark, request):
    engine = llmperf_engine
    shared = benchmark.pedantic(kit.scenario_run, args=(llmperf_session, engine, "Offline", "PerformanceOnly",
                                                        request.node.nodeid), rounds=1, iterations=1)
    run, summary = shared.run, shared.run.summary
    tolerance = kit.Tolerance(relative=llmperf_session.profile.performance.throughput_tolerance)
    where = {"logs": str(run.folder), "run_by": shared.owner, "result": "VALID" if run.valid else "INVALID"}

    llmperf_check.against_baseline("offline.tokens_per_second", summary.tokens_per_second, "tokens/s", True,
                                   tolerance, extra=where)
    llmperf_check.against_baseline("offline.samples_per_second", summary.samples_per_second, "samples/s", True,
                                   tolerance, extra=where)
    utilization = kit.record_utilization(llmperf_check, llmperf_session, engine, "offline", summary.tokens_per_second,
                                         kit.loadgen_steps_per_second(run, summary.tokens_per_second), run)
    benchmark.extra_info.update(
        scenario="Offline", tokens_per_second=summary.tokens_per_second,
        samples_per_second=summary.samples_per_second, samples=run.stats.samples, tokens=run.stats.tokens,
        loadgen_seconds=run.seconds, reused_run_of=shared.owner if shared.reused else None,
        result="VALID" if run.valid else "INVALID", logs=str(run.folder), **utilization,
    )
    if (message := run.invalid_message()) is not None:
        llmperf_check.fail(message)
