"""LoadGen validity: a VALID result with every constraint met, no LoadGen errors,
the requested minimum duration and query count honoured, token latencies p99
within the profile's limits; under the mlperf-* profiles also the MLPerf
submission checker's rules for llama2-70b.

Judges the same LoadGen performance runs as suites/performance (made once per
process by whichever test needs them first).
"""

import pytest

from pytest_llmperf import kit


@pytest.mark.parametrize("scenario", ["Offline", "Server"])
def test_loadgen_validity(llmperf_engine, llmperf_session, llmperf_check, request, scenario):
    shared = kit.scenario_run(llmperf_session, llmperf_engine, scenario, "PerformanceOnly", request.node.nodeid)
    problems = kit.check_validity(shared.run)
    if llmperf_session.profile.compliance.submission_rules:
        problems += kit.check_submission_rules(shared.run)
    llmperf_check.info(f"validity.{scenario.lower()}.problems", len(problems), "count", False,
                       extra={"logs": str(shared.run.folder), "run_by": shared.owner, "problems": problems})
    for problem in problems:
        llmperf_check.fail(problem)
