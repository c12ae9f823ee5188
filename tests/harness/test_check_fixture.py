"""``llmperf_check`` judges itself: a suite that never calls ``verify()`` still goes red, in the
test's own call phase (FAILED), and a checker bound once names its engine on every metric."""

import json

from pytest_llmperf.gating.baselines import BaselineKey, BaselineStore, Tolerance
from pytest_llmperf.gating.checker import BASELINE, METRIC, Checker
from pytest_llmperf.gating.limits import Limit

LIMIT = 'Limit.at_least(10.0, reference=10.0, source="my-profile: speed >= 10", flag="--llmperf-profile")'

FORGETFUL_SUITE = f"""
from pytest_llmperf.kit import Limit

def test_forgets_verify(llmperf_check):
    llmperf_check.against("speed", 1.0, "tokens/s", True, {LIMIT})

def test_passes_without_verify(llmperf_check):
    llmperf_check.against("speed", 11.0, "tokens/s", True, {LIMIT})
"""


def test_a_suite_without_verify_fails_in_its_call_phase(pytester):
    pytester.makepyfile(FORGETFUL_SUITE)
    result = pytester.runpytest("--llmperf-out", str(pytester.path / "out"))
    result.assert_outcomes(failed=1, passed=1, errors=0)
    result.stdout.fnmatch_lines(["*_ test_forgets_verify _*",
                                 "speed 1.0000 < 10.0000 tokens/s (my-profile: speed >= 10); see --llmperf-profile",
                                 "FAILED *::test_forgets_verify*"])
    reports = pytester.inline_run("--llmperf-out", str(pytester.path / "again")).getreports("pytest_runtest_logreport")
    assert [(r.head_line, r.when) for r in reports if r.failed] == [("test_forgets_verify", "call")]
    results = json.loads((pytester.path / "out" / "results.json").read_text())
    outcomes = {test["nodeid"].split("::")[-1]: test["outcome"] for test in results["tests"]}
    assert outcomes == {"test_forgets_verify": "failed", "test_passes_without_verify": "passed"}


def test_an_explicit_verify_is_not_reported_twice(pytester):
    pytester.makepyfile(f"""
        from pytest_llmperf.kit import Limit

        def test_verifies(llmperf_check):
            llmperf_check.against("speed", 1.0, "tokens/s", True, {LIMIT})
            llmperf_check.verify()
    """)
    # -rN: no short summary, whose line repeats the message only when the terminal is wide enough
    result = pytester.runpytest("-rN")
    result.assert_outcomes(failed=1)
    assert result.stdout.str().count("speed 1.0000 < 10.0000") == 1


def test_a_bound_checker_keys_every_metric_and_baseline(tmp_path):
    key = BaselineKey("m", "cpu", "e", "float32")
    properties: list = []
    check = Checker("t.py::test", properties, BaselineStore(tmp_path), update=True).bind(
        engine_key="e-cpu", baseline_key=key)
    check.info("note", 1.0, "count")
    check.against_baseline("speed", 5.0, "tokens/s", True, Tolerance(relative=0.1))
    assert [m.engine for m in check.metrics] == ["e-cpu", "e-cpu"]
    assert check.metrics[1].verdict == "new" and check.failures == []
    staged = [payload for kind, payload in properties if kind == BASELINE]
    assert staged[0]["key"] == {"model": "m", "hardware": "cpu", "engine": "e", "dtype": "float32", "options": ""}
    assert sum(kind == METRIC for kind, _ in properties) == 2  # one record per metric


def test_against_baseline_without_a_baseline_records_one_no_baseline_metric(tmp_path):
    properties: list = []
    check = Checker("t.py::test[x]", properties, BaselineStore(tmp_path), update=False).bind(
        baseline_key=BaselineKey("m", "cpu", "e", "float32"))
    metric = check.against_baseline("speed", 5.0, "tokens/s", True, Tolerance(relative=0.1))
    assert metric.verdict == "no_baseline" and [p["verdict"] for k, p in properties if k == METRIC] == ["no_baseline"]
    assert check.failures == []
    assert metric.extra["record_with"] == "pytest t.py::test --llmperf-update-baselines"


def test_strict_baselines_turn_a_missing_baseline_into_one_failure(tmp_path):
    properties: list = []
    check = Checker("t.py::test[x]", properties, BaselineStore(tmp_path), update=False, strict=True).bind(
        baseline_key=BaselineKey("m", "cpu", "e", "float32"))
    metric = check.against_baseline("speed", 5.0, "tokens/s", True, Tolerance(relative=0.1))
    assert metric.verdict == "no_baseline" and [p["verdict"] for k, p in properties if k == METRIC] == ["no_baseline"]
    assert check.failures == [f"speed: no baseline in {check.store.display_path(check.baseline_key)}; "
                              "record one with: pytest t.py::test --llmperf-update-baselines "
                              "(--llmperf-strict-baselines makes a missing baseline a failure)"]


def test_limit_is_exported_by_the_kit():
    from pytest_llmperf import kit

    assert kit.Limit is Limit and kit.Tolerance is Tolerance
