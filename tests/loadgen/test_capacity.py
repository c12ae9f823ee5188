"""Capacity search (find-qps) through the real LoadGen, on a paced plumbing engine of known capacity.

``PacedEngine(max_running=8)`` decodes at most 8 requests at once, one token per 10 ms
step; answers of 8 tokens hold a slot for about 8 steps, so it completes at most about
8 / (8 x 10 ms) = 100 requests/s.  Below that TTFT stays within a step or two; above it
the queue grows for the whole run and TTFT with it.
"""

from __future__ import annotations

import dataclasses
import json

import pytest

from plumbing import PacedEngine
from pytest_llmperf.errors import UsageError
from pytest_llmperf.loadgen import run_loadgen
from pytest_llmperf.loadgen.capacity import (RESULT_FILE, STOPPED_BUDGET, STOPPED_PRECISION, STOPPED_QPS_MAX,
                                             check_capacity, find_qps, judge_probe, probe_settings)
from pytest_llmperf.loadgen.query_times import QUERY_TIMES, read_query_times
from pytest_llmperf.config.profiles import CapacitySection, ScenarioSection, load_profile

STEP_S, SLOTS, ANSWER = 0.010, 8, 8
CAPACITY_QPS = SLOTS / (ANSWER * STEP_S)
PROMPTS = [[ANSWER, 1, 1, 1]] * 8


def capacity_profile(**server):
    profile = load_profile("embedded")
    section = ScenarioSection(**{"min_duration_ms": 3000, "min_query_count": 60, "performance_sample_count": 8,
                                 "target_qps": 1.0, "target_latency_percentile": 0.9, "ttft_latency_ms": 100.0,
                                 "tpot_latency_ms": 30.0, **server})
    return dataclasses.replace(profile, loadgen=dataclasses.replace(profile.loadgen, server=section))


def search(**fields):
    return CapacitySection(**{"qps_min": 25.0, "qps_max": 400.0, "precision": 0.1, "margin": 0.1,
                              "probe_duration_ms": 2000, "probe_min_queries": 40, "time_budget_s": 120.0, **fields})


@pytest.fixture
def paced():
    engine = PacedEngine(STEP_S, max_running=SLOTS)
    yield engine
    engine.close()


def runner(engine):
    return lambda settings, folder: run_loadgen(engine, PROMPTS, settings.scenario, "PerformanceOnly", settings,
                                                folder)


def test_find_qps_finds_the_paced_engines_capacity(paced, tmp_path):
    lines = []
    result = find_qps(runner(paced), capacity_profile(), "Server", search(), tmp_path, lines.append)
    assert result.stopped_by == STOPPED_PRECISION, result.stop_message
    assert result.lowest_failing / result.rate <= 1.1 + 1e-9
    # Queueing below capacity costs a little: the knee lies within 25% under the ceiling, never above it.
    assert 0.75 * CAPACITY_QPS <= result.rate <= 1.1 * CAPACITY_QPS, (result.rate, lines)
    assert result.confirmed is True, result.confirm_message
    assert result.user_conf_line == f"llama2-70b.Server.target_qps = {result.rate:g}"
    for probe in result.probes:  # every probe keeps its LoadGen folder and per-query times
        assert (tmp_path / probe.folder).joinpath("mlperf_log_summary.txt").is_file()
        assert (tmp_path / probe.folder).joinpath(QUERY_TIMES).is_file()
    assert [p.passed for p in result.probes if p.qps <= result.rate] == [True] * sum(
        p.qps <= result.rate for p in result.probes)
    saved = json.loads((tmp_path / RESULT_FILE).read_text())
    assert saved["rate"] == result.rate and len(saved["probes"]) == len(result.probes)


def test_probe_over_capacity_fails_and_names_the_limit(paced, tmp_path):
    profile = capacity_profile()
    from pytest_llmperf.loadgen import run_settings

    settings = probe_settings(run_settings(profile, "Server", "PerformanceOnly"), 2 * CAPACITY_QPS, search())
    run_loadgen(paced, PROMPTS, "Server", "PerformanceOnly", settings, tmp_path)
    passed, ttft_ms, _tpot, reason = judge_probe(tmp_path, settings, 0.1)
    assert not passed and ttft_ms > 90
    assert "TTFT p90" in reason and "> 90.0 ms (0.9 x 100)" in reason
    assert len(read_query_times(tmp_path)) >= 40


def test_qps_max_and_budget_stop_the_search_and_say_so(paced, tmp_path):
    capped = find_qps(runner(paced), capacity_profile(min_duration_ms=1000, min_query_count=10), "Server",
                      search(qps_min=10.0, qps_max=20.0, probe_duration_ms=1000, probe_min_queries=10),
                      tmp_path / "capped", lambda _: None)
    assert capped.stopped_by == STOPPED_QPS_MAX and capped.rate == 20.0
    assert "raise --qps-max" in capped.stop_message
    short = find_qps(runner(paced), capacity_profile(min_duration_ms=1000, min_query_count=10), "Server",
                     search(time_budget_s=1.5), tmp_path / "short", lambda _: None)
    assert short.stopped_by == STOPPED_BUDGET and not short.probes and short.rate is None
    assert "--time-budget 1.5" in short.stop_message and short.confirmed is None


@pytest.mark.parametrize("fields, named", [
    ({"qps_min": 0.0}, "--qps-min 0"), ({"qps_min": 8.0, "qps_max": 4.0}, "--qps-max 4"),
    ({"precision": 1.5}, "--precision 1.5"), ({"margin": 1.0}, "--margin 1"),
    ({"time_budget_s": 0.0}, "--time-budget 0"), ({"probe_min_queries": 0}, "--probe-queries"),
])
def test_bad_ranges_and_budgets_are_refused(fields, named):
    with pytest.raises(UsageError, match=named.replace("-", r"\-")):
        check_capacity(search(**fields))


def test_a_scenario_without_limits_or_target_is_refused(tmp_path):
    with pytest.raises(UsageError, match="Offline"):
        find_qps(runner(None), capacity_profile(), "Offline", search(), tmp_path)
    with pytest.raises(UsageError, match="sets no TTFT or TPOT limit"):
        find_qps(runner(None), capacity_profile(ttft_latency_ms=0.0, tpot_latency_ms=0.0), "Server", search(),
                 tmp_path)


@pytest.mark.parametrize("argv, named", [
    (["--qps-min", "5", "--qps-max", "1"], "--qps-max 1: is below --qps-min 5"),
    (["--time-budget", "-3"], "--time-budget -3: must be > 0 seconds"),
    (["--precision", "0"], "--precision 0: must be a fraction in (0, 1)"),
])
def test_the_cli_refuses_bad_ranges_before_loading_an_engine(argv, named, capsys):
    from pytest_llmperf.cli import main

    assert main.main(["find-qps", "--llmperf-engine", "vllm", *argv]) == 2
    assert named in capsys.readouterr().err


def test_the_sweep_cli_refuses_a_bad_rate_list(capsys):
    from pytest_llmperf.cli import main

    assert main.main(["sweep", "--qps", "2:1:1"]) == 2
    assert "--qps 2:1:1: is not a list or a range of positive numbers" in capsys.readouterr().err


def test_user_conf_line_names_the_interactive_model():
    from pytest_llmperf.loadgen.capacity import user_conf_line

    profile = load_profile("mlperf-llama2-70b-99")
    assert user_conf_line(profile, "Server", 12.5) == "llama2-70b.Server.target_qps = 12.5"
    assert user_conf_line(profile, "Interactive", 3.084) == "llama2-70b-interactive.Server.target_qps = 3.084"
