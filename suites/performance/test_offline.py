"""Offline throughput through MLPerf LoadGen: tokens/s and samples/s against the baseline.

Several short LoadGen Offline runs (PerformanceOnly) over the profile's OpenOrca
prompts, each one round between calibrations (docs/performance-gates.md); the
first is the process's shared run, which the compliance suite reuses.  Its logs
and run.json stay in this test's folder under --llmperf-out, later rounds' in
``round-<n>/``.  MFU and MBU are reported next to the throughput ("n/a" where
the device's peak is not known).
"""

from pytest_llmperf import kit

METRICS = (kit.RoundMetric("offline.tokens_per_second", "tokens/s", True),
           kit.RoundMetric("offline.samples_per_second", "samples/s", True))


def test_offline_throughput(llmperf_engine, llmperf_session, llmperf_check, benchmark, request):
    engine = llmperf_engine
    runs = []

    def values(run):
        if (message := run.invalid_message()) is not None:
            llmperf_check.fail(message)
        return {METRICS[0].name: run.summary.tokens_per_second, METRICS[1].name: run.summary.samples_per_second}

    measure = kit.loadgen_rounds(llmperf_session, engine, "Offline", request.node.nodeid, values, runs)
    workload = kit.loadgen_workload(llmperf_session, engine, "Offline")
    where = {"logs": str(request.node.nodeid)}
    measured = benchmark.pedantic(kit.gate_in_rounds, args=(llmperf_check, llmperf_session, engine, METRICS,
                                                            measure, workload), kwargs={"extra": where},
                                  rounds=1, iterations=1)
    tokens = measured.values(METRICS[0].name)
    run = runs[sorted(range(len(tokens)), key=tokens.__getitem__)[len(tokens) // 2]]  # the median round
    tokens_per_second = run.summary.tokens_per_second
    utilization = kit.record_utilization(llmperf_check, llmperf_session, engine, "offline", tokens_per_second,
                                         kit.loadgen_steps_per_second(run, tokens_per_second), run)
    benchmark.extra_info.update(
        scenario="Offline", tokens_per_second=tokens_per_second, samples_per_second=run.summary.samples_per_second,
        rounds=len(runs), round_tokens_per_second=tokens, calibration=measured.calibration,
        samples=run.stats.samples, tokens=run.stats.tokens, loadgen_seconds=sum(r.seconds for r in runs),
        result="VALID" if all(r.valid for r in runs) else "INVALID", logs=[str(r.folder) for r in runs], **utilization,
    )

