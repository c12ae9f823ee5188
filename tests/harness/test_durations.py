"""Where a session's time goes: exclusive phase timers, results.json's ``durations`` and ``--llmperf-durations``."""

import json

from pytest_llmperf.harness import session as session_module
from pytest_llmperf.report.table import duration_table


class FakeClock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def test_a_nested_phase_is_counted_once(monkeypatch):
    clock = FakeClock()
    monkeypatch.setattr(session_module.time, "perf_counter", clock)
    sink, stack = {}, []
    with session_module._Timer(sink, "generate", stack):
        clock.now += 2.0
        with session_module._Timer(sink, "warm-up", stack):
            clock.now += 0.5
        clock.now += 1.0
    assert sink == {"generate": 3.0, "warm-up": 0.5}  # 3.5 s in all, none of it twice
    with session_module._Timer(sink, "score", stack):
        clock.now += 0.25
    assert sink["score"] == 0.25 and not stack


def test_the_table_gives_the_rest_of_each_test_and_a_total():
    durations = {"a.py::test_slow": {"total": 10.0, "load": 4.0, "generate": 5.0, "rounds": [2.5, 2.5]},
                 "a.py::test_fast": {"total": 1.0, "score": 0.4}}
    lines = duration_table(durations, [])
    assert lines[0].split() == ["test", "total", "load", "warm-up", "data", "calibrate", "generate", "score", "other",
                                "rounds"]
    assert lines[2].split() == ["test_slow", "10.0", "4.0", "-", "-", "-", "5.0", "-", "1.0", "2.5", "2.5"]
    assert lines[3].split() == ["test_fast", "1.0", "-", "-", "-", "-", "-", "0.4", "0.6", "-"]
    assert lines[-1].split() == ["all", "tests", "11.0", "4.0", "0.0", "0.0", "0.0", "5.0", "0.4", "1.6"]


def test_a_session_records_each_tests_phases_and_prints_them(pytester):
    pytester.makepyfile(test_phases='''
        def test_phases(llmperf_session):
            with llmperf_session.timed("generate"):
                with llmperf_session.timed("warm-up"):
                    pass
            with llmperf_session.timed("score"):
                pass

        def test_nothing_timed():
            pass
    ''')
    result = pytester.runpytest("--llmperf-durations")
    result.assert_outcomes(passed=2)
    # Both tests take ~0 s, so which row comes first is not fixed: look for each after the header.
    for row in ("*test_phases*", "*test_nothing_timed*"):
        result.stdout.fnmatch_lines(["*llmperf durations (seconds)*", "test*total*load*generate*score*other*rounds",
                                     row, "all tests*"])
    data = json.loads((pytester.path / "llmperf-results" / "results.json").read_text())
    phases = data["durations"]["test_phases.py::test_phases"]
    assert {"generate", "warm-up", "score", "total"} <= set(phases)
    assert phases["generate"] + phases["warm-up"] + phases["score"] <= phases["total"]
    assert set(data["durations"]["test_phases.py::test_nothing_timed"]) == {"total"}
    assert set(data["timings"]) == {"generate", "warm-up", "score"}


def test_without_the_option_no_table_is_printed(pytester):
    pytester.makepyfile("def test_nothing():\n    pass\n")
    result = pytester.runpytest()
    assert "llmperf durations" not in result.stdout.str()
