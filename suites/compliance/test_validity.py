"""LoadGen validity: a VALID result with every constraint met, no LoadGen errors,
the requested minimum duration and query count honoured, token latencies p99
within the profile's limits; under the mlperf-* profiles also the MLPerf
submission checker's rules for llama2-70b.

Judges the same LoadGen performance runs as suites/performance (made once per
process by whichever test needs them first).
"""

import pytest

from pytest_llmperf.compliance.validity import check_submission_rules, check_validity
from pytest_llmperf.loadgen.suite_runs import scenario_run


@pytest.mark.parametrize("scenario", ["Offline", "Server"])
def test_loadgen_validity(llmperf_engine, llmperf_session, llmperf_check, request, scenario):
    shared = scenario_run(llmperf_session, llmperf_engine, scenario, "PerformanceOnly", request.node.nodeid)
    run = shared.run
    engine_key = llmperf_check.engine(llmperf_engine)
    problems = check_validity(run)
    if llmperf_session.profile.compliance.submission_rules:
        problems += check_submission_rules(run)
    llmperf_check.info(f"validity.{scenario.lower()}.problems", len(problems), "count", False, engine=engine_key,
                       extra={"logs": str(run.folder), "run_by": shared.owner, "problems": problems})
    for problem in problems:
        llmperf_check.fail(problem)
    llmperf_check.verify()
