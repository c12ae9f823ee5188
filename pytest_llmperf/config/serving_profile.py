"""Profile sections of the serving tools: capacity search (``[capacity]``), sweeps
(``[sweep]``) and the Ascend kit's workload (``[serving_workload]``).  Loaded and checked by
``config/profiles.py`` with the rest of a profile; docs/loadgen.md describes what each key does."""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class CapacitySection:
    """``llmperf find-qps`` and the suite's capacity test (docs/loadgen.md); options override each key."""

    enabled: bool = False
    """Run suites/performance/test_capacity.py (the search takes minutes)."""
    qps_min: float = 0.5
    """The first probe's rate; the search doubles it until a probe fails."""
    qps_max: float = 64.0
    """The search never probes above it (and says so when it passes)."""
    precision: float = 0.1
    """Stop bisecting when the failing rate is within this fraction above the passing one."""
    margin: float = 0.1
    """A probe passes when TTFT and TPOT at the profile's percentile are at most (1 - margin) x the limits."""
    probe_duration_ms: int = 10000
    probe_min_queries: int = 16
    time_budget_s: float = 1800.0
    """The whole search, confirming run included; it stops and says so when the next probe would not fit."""
    check_above: float = 0.0
    """After a VALID confirmation, also run the full test at this multiple of the rate (e.g. 1.5; 0 = no)."""


@dataclasses.dataclass(frozen=True)
class SweepSection:
    """``llmperf sweep``: the Server rates (and HTTP concurrencies) to measure."""

    qps: list[float] = dataclasses.field(default_factory=list)
    """Target rates, one LoadGen Server run each."""
    duration_ms: int = 0
    """Each point's min_duration_ms; 0 = the scenario's."""
    min_queries: int = 0
    """Each point's min_query_count; 0 = the scenario's."""


@dataclasses.dataclass(frozen=True)
class ServingWorkloadSection:
    """The Ascend kit's serving workload: Poisson arrivals at ``qps`` for ``seconds``, qps x seconds
    requests in all, scored by the total wall time (suites/performance/test_serving_workload.py)."""

    enabled: bool = False
    qps: float = 0.5
    """X: the Poisson arrival rate (the kit's default 0.5)."""
    seconds: float = 3000.0
    """T: the kit's default 3000; qps x seconds must be a whole number of requests (the kit: 1500)."""

    @property
    def requests(self) -> int:
        return round(self.qps * self.seconds)
