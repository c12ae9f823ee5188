"""The Ascend kit's serving workload: Poisson arrivals at X queries/s for T seconds, X x T
requests in all, scored by the total wall time of the run (the kit's "inference time").

It is a LoadGen Server run with ``target_qps = X`` and ``min_query_count = max_query_count =
X x T`` (min duration 0, so exactly X x T queries are issued, Poisson-spaced by LoadGen); its
score is LoadGen's wall time from the first issue to the last completion, and its latency table
the per-query TTFT, TPOT, ITL and E2E from the engine's token times.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Callable

from ..config.profiles import Profile
from .query_times import QueryStats, query_stats, read_query_times
from .settings import RunSettings, run_settings
from .sweep import slo_of


@dataclasses.dataclass(frozen=True)
class WorkloadResult:
    qps: float
    seconds: float
    """T, as the profile set it."""
    requests: int
    total_seconds: float
    """The score: wall time of the whole run (lower is better)."""
    stats: QueryStats
    loadgen_result: str | None
    folder: str


def workload_settings(profile: Profile) -> RunSettings:
    workload = profile.serving_workload
    base = run_settings(profile, "Server", "PerformanceOnly")
    return dataclasses.replace(base, target_qps=workload.qps, min_duration_ms=0, max_duration_ms=0,
                               min_query_count=workload.requests, max_query_count=workload.requests)


def run_workload(run_one: Callable[[RunSettings, Path], object], profile: Profile, folder: Path) -> WorkloadResult:
    settings = workload_settings(profile)
    run = run_one(settings, Path(folder))
    stats = query_stats(read_query_times(folder), slo_of(settings))
    summary = getattr(run, "summary", None)
    workload = profile.serving_workload
    return WorkloadResult(workload.qps, workload.seconds, workload.requests, round(run.seconds, 3), stats,
                          None if summary is None else ("VALID" if summary.valid else "INVALID"), str(folder))
