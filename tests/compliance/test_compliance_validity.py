"""LoadGen validity and the llama2-70b submission rules on crafted logs."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from pytest_llmperf.compliance.validity import check_submission_rules, check_validity
from pytest_llmperf.loadgen.detail import parse_detail
from pytest_llmperf.loadgen.runner import LoadgenRun
from pytest_llmperf.loadgen.settings import run_settings
from pytest_llmperf.loadgen.summary import parse_summary
from pytest_llmperf.loadgen.sut import SutStats
from pytest_llmperf.config.profiles import load_profile


def summary(valid=True, constraints=None, errors=0, recommendations=()):
    constraints = constraints or {"Performance constraints satisfied": True, "Min duration satisfied": True,
                                  "Min queries satisfied": True, "Early stopping satisfied": True}
    lines = ["MLPerf Results Summary", "Scenario : Server", "Mode     : PerformanceOnly",
             f"Result is : {'VALID' if valid else 'INVALID'}"]
    lines += [f"  {name} : {'Yes' if met else 'NO'}" for name, met in constraints.items()]
    if recommendations:
        lines += ["Recommendations:"] + [f" * {r}" for r in recommendations]
    lines.append("No errors encountered during test." if not errors else f"{errors} ERRORS encountered. See detailed log.")
    return parse_summary("\n".join(lines))


def detail(**values):
    records = []
    for key, value in values.items():
        error = key.startswith("error")
        records.append(":::MLLOG " + json.dumps({"key": key.replace("__", "."), "value": value,
                                                  "metadata": {"is_error": error, "is_warning": False}}))
    return parse_detail("\n".join(records))


EMBEDDED_SERVER_OK = dict(
    result_validity="VALID", result_min_duration_met=True, result_min_queries_met=True,
    effective_min_duration_ms=10000, effective_min_query_count=8, effective_performance_sample_count=8,
    requested_use_token_latencies=True,
    result_first_token_99__00_percentile_latency_ns=4_000_000_000,
    result_time_per_output_token_99__00_percentile_ns=300_000_000,
)


def run_of(profile_name, scenario, summary_, detail_, **settings):
    run = run_settings(load_profile(profile_name), scenario, "PerformanceOnly")
    return LoadgenRun(Path("runs/x"), dataclasses.replace(run, **settings), summary_, detail_, SutStats(), 1.0)


def test_valid_run_has_no_problems():
    assert check_validity(run_of("embedded", "Server", summary(), detail(**EMBEDDED_SERVER_OK))) == []


def test_invalid_result_names_constraint_and_advice():
    bad = summary(valid=False, constraints={"Performance constraints satisfied": False, "Min duration satisfied": True},
                  recommendations=["TPOT constrain not met: Reduce target QPS to improve latency."])
    problems = check_validity(run_of("embedded", "Server", bad, detail(**EMBEDDED_SERVER_OK)))
    assert problems == [
        "LoadGen Server result INVALID, not satisfied: Performance constraints satisfied "
        "(TPOT constrain not met: Reduce target QPS to improve latency.); see runs/x/mlperf_log_summary.txt; "
        "settings: [loadgen.server] of the profile, see --llmperf-profile"]


def test_loadgen_errors_fail():
    logged = detail(**EMBEDDED_SERVER_OK, error_runtime="Number of tokens need to be greater than 1")
    problems = check_validity(run_of("embedded", "Server", summary(errors=1), logged))
    assert problems == ["LoadGen logged 1 error(s), need 0: error_runtime: Number of tokens need to be greater "
                        "than 1; see runs/x/mlperf_log_detail.txt"]


def test_minimums_and_what_loadgen_actually_used():
    values = dict(EMBEDDED_SERVER_OK, result_min_duration_met=False, result_min_queries_met=False,
                  effective_min_duration_ms=10, effective_min_query_count=3)
    problems = check_validity(run_of("embedded", "Server", summary(), detail(**values)))
    assert any("minimum duration not met (min_duration_ms = 10)" in p for p in problems)
    assert any("minimum query count not met (min_query_count = 3)" in p for p in problems)
    assert any("min_duration_ms 10 < 10000 requested" in p for p in problems)
    assert any("min_query_count 3 < 8 requested" in p for p in problems)


def test_tpot_limit_below_measured():
    problems = check_validity(run_of("embedded", "Server", summary(), detail(**EMBEDDED_SERVER_OK), tpot_latency_ms=100))
    assert problems == ["Server TPOT p99 300.0 ms > 100 ms (loadgen.server.tpot_latency_ms in the profile); "
                        "see --llmperf-profile"]


def test_submission_rules_refuse_a_short_cpu_run():
    problems = check_submission_rules(run_of("mlperf-llama2-70b-99", "Server", summary(), detail(**EMBEDDED_SERVER_OK)))
    assert problems == [
        "min_duration_ms 10000 < 600000 (MLPerf submission checker, llama2-70b; effective_min_duration_ms in "
        "runs/x/mlperf_log_detail.txt)",
        "performance_sample_count 8 < 24576 (MLPerf submission checker, llama2-70b; "
        "effective_performance_sample_count in runs/x/mlperf_log_detail.txt)",
        "Server TTFT p99 4000.0 ms >= 2000 ms (MLPerf submission checker, llama2-70b)",
        "Server TPOT p99 300.0 ms >= 200 ms (MLPerf submission checker, llama2-70b)",
    ]


@pytest.mark.parametrize("scenario, ttft_ms, tpot_ms", [("Server", 1999, 199), ("Interactive", 449, 39)])
def test_submission_rules_pass_a_conforming_run(scenario, ttft_ms, tpot_ms):
    values = dict(EMBEDDED_SERVER_OK, effective_min_duration_ms=600000, effective_performance_sample_count=24576,
                  result_first_token_99__00_percentile_latency_ns=ttft_ms * 1_000_000,
                  result_time_per_output_token_99__00_percentile_ns=tpot_ms * 1_000_000)
    assert check_submission_rules(run_of("mlperf-llama2-70b-99", scenario, summary(), detail(**values))) == []
    at_limit = dict(values, result_time_per_output_token_99__00_percentile_ns=(tpot_ms + 1) * 1_000_000)
    assert check_submission_rules(run_of("mlperf-llama2-70b-99", scenario, summary(), detail(**at_limit))) == [
        f"{scenario} TPOT p99 {tpot_ms + 1:.1f} ms >= {tpot_ms + 1} ms (MLPerf submission checker, llama2-70b)"]


def test_submission_rules_offline_and_token_latencies():
    values = dict(effective_min_duration_ms=600000, effective_performance_sample_count=24576,
                  effective_samples_per_query=1000, requested_use_token_latencies=False)
    problems = check_submission_rules(run_of("mlperf-llama2-70b-99", "Offline", summary(), detail(**values)))
    assert problems == [
        "Offline samples_per_query 1000 < 24576 (MLPerf submission checker, llama2-70b; effective_samples_per_query "
        "in runs/x/mlperf_log_detail.txt)",
        "use_token_latencies is False, must be enabled for an LLM benchmark (MLPerf submission checker, llama2-70b)",
    ]
