"""LoadGen validity as checks: a VALID result, every constraint met, no LoadGen
errors, the requested minimum duration and query count honoured; and, for the
MLPerf profiles, the submission checker's rules for llama2-70b.

Every check returns one line per problem: what was found, the limit, where the
limit comes from, and what to change.
"""

from __future__ import annotations

import dataclasses

from ..loadgen.detail import LoadgenDetail
from ..loadgen.runner import LoadgenRun
from ..loadgen.settings import RunSettings
from ..loadgen.summary import LoadgenSummary


@dataclasses.dataclass(frozen=True)
class SubmissionRules:
    """The submission checker's performance rules for one benchmark."""

    benchmark: str
    min_duration_ms: int
    """effective_min_duration_ms must reach this (TEST_DURATION_MS)."""
    performance_sample_count: int
    """effective_performance_sample_count must reach this."""
    offline_samples_per_query: int
    """Offline: effective_samples_per_query must reach this (closed division)."""
    latency_limits_ms: dict[str, tuple[float, float]]
    """Scenario -> (TTFT p99, TPOT p99) upper limits; the measured values must be strictly below."""


#: tools/submission/submission_checker (constants.py, checks/performance_check.py), llama2-70b-99 and -99.9.
LLAMA2_70B = SubmissionRules(
    benchmark="llama2-70b",
    min_duration_ms=600_000,
    performance_sample_count=24_576,
    offline_samples_per_query=24_576,
    latency_limits_ms={"Server": (2000.0, 200.0), "Interactive": (450.0, 40.0)},
)

NS_PER_MS = 1e6


def check_validity(run: LoadgenRun) -> list[str]:
    """Every problem with a performance run's validity, one line each (empty when valid)."""
    summary, detail, settings = run.summary, run.detail, run.settings
    if summary is None:
        return [run.invalid_message()]
    problems = []
    if (message := run.invalid_message()) is not None:
        problems.append(message)
    problems += _error_lines(run, summary, detail)
    problems += _minimums(run, detail, settings)
    problems += _latency_limits(run, detail, settings)
    return problems


def _latency_limits(run: LoadgenRun, detail: LoadgenDetail, settings: RunSettings) -> list[str]:
    """TTFT/TPOT p99 within the profile's limits (LoadGen itself judges its target percentile only)."""
    if settings.loadgen_scenario == "Offline" or not settings.use_token_latencies:
        return []
    problems = []
    for name, table, limit_ms in (("TTFT", "ttft", settings.ttft_latency_ms), ("TPOT", "tpot", settings.tpot_latency_ms)):
        found_ns = detail.percentile_ns(table, 99.0)
        if limit_ms > 0 and found_ns is not None and found_ns / NS_PER_MS > limit_ms:
            problems.append(f"{settings.scenario} {name} p99 {found_ns / NS_PER_MS:.1f} ms > {limit_ms:g} ms "
                            f"({run.settings_section}.{table}_latency_ms in the profile); see --llmperf-profile")
    return problems


def _error_lines(run: LoadgenRun, summary: LoadgenSummary, detail: LoadgenDetail) -> list[str]:
    count = max(summary.errors, len(detail.errors))
    if not count:
        return []
    shown = "; ".join(sorted({r.describe() for r in detail.errors})[:3])
    return [f"LoadGen logged {count} error(s), need 0: {shown}; see {run.detail_log}"]


def _minimums(run: LoadgenRun, detail: LoadgenDetail, settings: RunSettings) -> list[str]:
    problems = []
    where = f"[{run.settings_section}] of the profile, see --llmperf-profile"
    if detail.get("result_min_duration_met") is False:
        problems.append(f"LoadGen {settings.scenario}: minimum duration not met "
                        f"(min_duration_ms = {detail.get('effective_min_duration_ms')}); see {run.detail_log}")
    if detail.get("result_min_queries_met") is False:
        problems.append(f"LoadGen {settings.scenario}: minimum query count not met "
                        f"(min_query_count = {detail.get('effective_min_query_count')}); see {run.detail_log}")
    # The run must have used what was asked for (an audit.config or user.conf could change it).
    effective_duration = detail.get("effective_min_duration_ms")
    if isinstance(effective_duration, (int, float)) and effective_duration < settings.min_duration_ms:
        problems.append(f"LoadGen ran with min_duration_ms {effective_duration} < {settings.min_duration_ms} requested; "
                        f"see {run.detail_log} and {where}")
    if settings.loadgen_scenario == "Offline":
        issued, what = detail.get("effective_samples_per_query"), "samples_per_query"
    else:
        issued, what = detail.get("effective_min_query_count"), "min_query_count"
    if isinstance(issued, (int, float)) and issued < settings.min_query_count:
        problems.append(f"LoadGen ran with {what} {issued} < {settings.min_query_count} requested "
                        f"(min_query_count); see {run.detail_log} and {where}")
    return problems


def check_submission_rules(run: LoadgenRun, rules: SubmissionRules = LLAMA2_70B) -> list[str]:
    """The submission checker's performance rules, one line per rule broken."""
    detail, scenario = run.detail, run.settings.scenario
    source = f"MLPerf submission checker, {rules.benchmark}"
    problems = []

    def below(key: str, need: float, what: str) -> None:
        found = detail.get(key)
        if not isinstance(found, (int, float)) or found < need:
            problems.append(f"{what} {found} < {need:g} ({source}; {key} in {run.detail_log})")

    below("effective_min_duration_ms", rules.min_duration_ms, "min_duration_ms")
    below("effective_performance_sample_count", rules.performance_sample_count, "performance_sample_count")
    if scenario == "Offline":
        below("effective_samples_per_query", rules.offline_samples_per_query, "Offline samples_per_query")
    if detail.get("requested_use_token_latencies") is not True:
        problems.append(f"use_token_latencies is {detail.get('requested_use_token_latencies')}, must be enabled "
                        f"for an LLM benchmark ({source})")
    limits = rules.latency_limits_ms.get(scenario)
    if limits is not None:
        for (name, table), limit_ms in zip((("TTFT", "ttft"), ("TPOT", "tpot")), limits):
            found_ns = detail.percentile_ns(table, 99.0)
            if found_ns is None:
                problems.append(f"{name} p99 missing from {run.detail_log} ({source})")
            elif not found_ns / NS_PER_MS < limit_ms:
                problems.append(f"{scenario} {name} p99 {found_ns / NS_PER_MS:.1f} ms >= {limit_ms:g} ms ({source})")
    return problems
