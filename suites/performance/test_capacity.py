"""Capacity search, the suite form of ``llmperf find-qps``: under a profile with
``[capacity] enabled = true`` (``embedded-capacity`` ships one), find the highest Server
target_qps whose confirming LoadGen run is VALID; fail when the confirming run is
INVALID or no rate passes a probe.  Skipped under other profiles: the search takes minutes.
"""

import pytest

from pytest_llmperf import kit


def test_find_qps(llmperf_engine, llmperf_session, llmperf_check, request):
    profile = llmperf_session.profile
    if not profile.capacity.enabled:
        pytest.skip(f"profile {profile.name} has [capacity] enabled = false; use --llmperf-profile embedded-capacity "
                    "(or a profile with it on), or llmperf find-qps")
    from pytest_llmperf.loadgen.capacity import find_qps

    run_one = kit.loadgen_runner(llmperf_session, llmperf_engine, request.node.nodeid)
    out = llmperf_session.test_dir(request.node.nodeid)
    result = find_qps(run_one, profile, "Server", profile.capacity, out, print)
    where = {"logs": str(out), "probes": len(result.probes), "stopped_by": result.stopped_by,
             "user_conf": result.user_conf_line, "lowest_failing_qps": result.lowest_failing}
    llmperf_check.info("server.capacity_qps", result.rate, "queries/s", True, extra=where)
    if result.rate is None:
        llmperf_check.fail(f"find-qps: no rate passed a probe: {result.stop_message} "
                           f"(see [capacity] in {profile.source or profile.name}, --llmperf-profile)")
    elif not result.confirmed:
        llmperf_check.fail(f"find-qps: the confirming run at {result.rate:g} qps is INVALID: {result.confirm_message}")
