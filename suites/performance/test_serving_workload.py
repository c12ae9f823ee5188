"""The Ascend kit's serving workload, under a profile with ``[serving_workload] enabled = true``
(``ascend-kit``: X = 0.5 queries/s for T = 3000 s; ``ascend-kit-short``: T = 60 s): Poisson
arrivals at X for T seconds, X x T requests, scored by the total wall time; the latency table
(TTFT, TPOT, ITL, E2E at p50/p90/p99) is reported beside it.  Meant for the llm-serving and
openai engines (the kit's server), runs on any.  Skipped under other profiles.
"""

import pytest

from pytest_llmperf import kit


def test_serving_workload(llmperf_engine, llmperf_session, llmperf_check, request):
    profile = llmperf_session.profile
    workload = profile.serving_workload
    if not workload.enabled:
        pytest.skip(f"profile {profile.name} has [serving_workload] enabled = false; use --llmperf-profile "
                    "ascend-kit or ascend-kit-short")
    from pytest_llmperf.loadgen.serving_workload import run_workload

    run_one = kit.loadgen_runner(llmperf_session, llmperf_engine, request.node.nodeid, "Server")
    result = run_workload(run_one, profile, llmperf_session.test_dir(request.node.nodeid))
    where = {"logs": result.folder, "qps": result.qps, "seconds": result.seconds, "requests": result.requests,
             "loadgen_result": result.loadgen_result}
    llmperf_check.info("serving.total_inference_seconds", result.total_seconds, "s", False, extra=where)
    llmperf_check.info("serving.samples_per_second", result.stats.samples_per_second, "samples/s", True, extra=where)
    llmperf_check.info("serving.tokens_per_second", result.stats.tokens_per_second, "tokens/s", True, extra=where)
    for name, table in result.stats.latency_ms.items():
        for p, value in table.items():
            llmperf_check.info(f"serving.{name}_p{p:g}", value, "ms", False, extra=where)
    if result.stats.queries != result.requests:
        llmperf_check.fail(f"serving workload: {result.stats.queries} requests completed, the profile asks for "
                           f"{result.requests} ({result.qps:g} x {result.seconds:g}); logs in {result.folder}")
