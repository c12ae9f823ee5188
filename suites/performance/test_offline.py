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
    def values(run):
        return {METRICS[0].name: run.summary.tokens_per_second, METRICS[1].name: run.summary.samples_per_second}

    measured = kit.gate_loadgen_rounds(llmperf_check, llmperf_session, llmperf_engine, "Offline", request.node.nodeid,
                                       METRICS, values, benchmark=benchmark, extra={"logs": request.node.nodeid})
    run = measured.median_run(METRICS[0].name)
    tokens_per_second = run.summary.tokens_per_second
    utilization = kit.record_utilization(llmperf_check, llmperf_session, llmperf_engine, "offline", tokens_per_second,
                                         kit.loadgen_steps_per_second(run, tokens_per_second), run)
    benchmark.extra_info.update(
        scenario="Offline", tokens_per_second=tokens_per_second, samples_per_second=run.summary.samples_per_second,
        round_tokens_per_second=measured.values(METRICS[0].name), calibration=measured.measurer.calibration,
        samples=run.stats.samples, tokens=run.stats.tokens, **measured.evidence(), **utilization,
    )
