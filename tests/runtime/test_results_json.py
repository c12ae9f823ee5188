"""results.json: every metric with its verdict and the run's metadata, written as results arrive."""

import json
import math

from hypothesis import given
from hypothesis import strategies as st

from pytest_llmperf.runtime.results import Metric, ResultsStore, load_results

METRIC_TESTS = """
from pytest_llmperf.gating.limits import Limit

def test_first(llmperf_check):
    llmperf_check.against("first.value", 10.0, "tokens/s", True,
                          Limit.at_least(5.0, reference=5.0, source="inline", flag="--flag"))
    llmperf_check.verify()

def test_second(llmperf_check):
    llmperf_check.against("second.value", 1.0, "s", False,
                          Limit.at_most(0.5, reference=0.5, source="profile x", flag="--llmperf-profile"))
    llmperf_check.verify()
"""


def test_metrics_verdicts_and_metadata_are_recorded(pytester):
    pytester.makepyfile(METRIC_TESTS)
    result = pytester.runpytest()
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines([
        "*second.value 1.0000 > 0.5000 s (profile x); see --llmperf-profile*",
        "*llmperf summary*",
        "*first.value*10*tokens/s*>= 5*PASS*",
        "*second.value*FAIL*",
    ])
    data = json.loads((pytester.path / "llmperf-results" / "results.json").read_text())
    first, second = data["metrics"]
    assert first == {**first, "name": "first.value", "value": 10.0, "unit": "tokens/s", "higher_is_better": True,
                     "verdict": "pass", "baseline": 5.0, "limit": ">= 5", "source": "inline"}
    assert second["verdict"] == "fail" and second["higher_is_better"] is False
    run = data["run"]
    assert run["status"] == "failed" and run["finished"] and run["started"]
    assert run["versions"]["pytest"] and run["profile"] == "embedded"
    assert "git_commit" in run
    assert [t["outcome"] for t in data["tests"]] == ["passed", "failed"]


def test_a_crash_keeps_what_was_measured_before_it(pytester):
    pytester.makepyfile(METRIC_TESTS + """
import os

def test_third_crashes():
    os._exit(3)  # the process dies: no teardown, no session finish
""")
    result = pytester.runpytest_subprocess()
    assert result.ret == 3
    data = json.loads((pytester.path / "llmperf-results" / "results.json").read_text())
    assert [m["name"] for m in data["metrics"]] == ["first.value", "second.value"]
    assert data["run"]["status"] == "running"  # never finished: a reader can tell


def test_only_the_xdist_controller_writes_results(pytester):
    pytester.makepyfile(METRIC_TESTS)
    result = pytester.runpytest_subprocess("-n", "2", "-p", "xdist")
    result.assert_outcomes(passed=1, failed=1)
    data = json.loads((pytester.path / "llmperf-results" / "results.json").read_text())
    assert sorted(m["name"] for m in data["metrics"]) == ["first.value", "second.value"]


finite = st.floats(allow_nan=False, allow_infinity=False, width=32)


@given(st.lists(st.tuples(st.text(min_size=1, max_size=20), st.one_of(st.none(), st.floats()),
                          st.sampled_from(["pass", "fail", "new", "info"]),
                          st.dictionaries(st.text(max_size=5), st.one_of(finite, st.text(max_size=5)), max_size=3)),
                max_size=5))
def test_results_round_trip(tmp_path_factory, rows):
    out = tmp_path_factory.mktemp("results")
    store = ResultsStore(out, {"argv": ["pytest"]})
    for name, value, verdict, extra in rows:
        store.add_metric(Metric(name=name, value=value, unit="u", higher_is_better=True, verdict=verdict, extra=extra))
    loaded = load_results(out)
    assert len(loaded["metrics"]) == len(rows)
    for (name, value, verdict, extra), metric in zip(rows, loaded["metrics"]):
        assert metric["name"] == name and metric["verdict"] == verdict
        if value is None or not math.isfinite(value):
            assert metric["value"] is None  # strict JSON: NaN and Inf are stored as null
        else:
            assert metric["value"] == value
        assert Metric.from_dict(metric).name == name
