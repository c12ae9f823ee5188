"""Gates: a measured value against a limit, and the one-line verdict.

A limit knows where it came from (a baseline file or a profile) and which flag
changes it, so a failure reads like
``rouge1 41.2000 < 43.9869 (mlperf-llama2-70b-99: 0.99 x 44.4312); see --llmperf-profile``.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Literal

from ..runtime.results import Metric


@dataclasses.dataclass(frozen=True)
class Limit:
    """An accepted interval for one metric."""

    low: float | None
    """Smallest passing value (inclusive), or None."""
    high: float | None
    """Largest passing value (inclusive), or None."""
    reference: float | None
    """The value the interval was derived from (baseline or published target)."""
    source: str
    """Where it came from, e.g. ``baselines/x.json (tolerance 10%)`` or ``mlperf-llama2-70b-99: 0.99 x 44.4312``."""
    flag: str
    """The option that changes it, e.g. ``--llmperf-profile``."""

    @classmethod
    def at_least(cls, low: float, *, reference: float | None, source: str, flag: str) -> "Limit":
        return cls(low, None, reference, source, flag)

    @classmethod
    def at_most(cls, high: float, *, reference: float | None, source: str, flag: str) -> "Limit":
        return cls(None, high, reference, source, flag)

    def describe(self) -> str:
        if self.low is not None and self.high is not None:
            return f"within {self.low:.4g}..{self.high:.4g}"
        if self.low is not None:
            return f">= {self.low:.4g}"
        if self.high is not None:
            return f"<= {self.high:.4g}"
        return "any value"

    def admits(self, value: float) -> bool:
        if value is None or not math.isfinite(value):
            return False
        if self.low is not None and value < self.low:
            return False
        if self.high is not None and value > self.high:
            return False
        return True


def judge(
    name: str,
    value: float | None,
    unit: str,
    higher_is_better: bool | None,
    limit: Limit | None,
    *,
    test: str | None = None,
    engine: str | None = None,
    verdict: Literal["pass", "fail", "inconclusive", "no_baseline", "new"] | None = None,
    extra: dict | None = None,
) -> Metric:
    """Return the metric with its verdict: ``verdict`` where the caller decided it, else
    ``pass``/``fail`` by ``limit``, ``info`` without one."""
    if verdict is None and limit is None:
        verdict = "info"
    elif verdict is None:
        verdict = "pass" if value is not None and limit.admits(float(value)) else "fail"
    return Metric(
        name=name,
        value=None if value is None else float(value),
        unit=unit,
        higher_is_better=higher_is_better,
        verdict=verdict,
        baseline=None if limit is None else limit.reference,
        limit=None if limit is None else limit.describe(),
        source=None if limit is None else limit.source,
        test=test,
        engine=engine,
        extra=dict(extra or {}),
    )


def failure_message(metric: Metric, limit: Limit) -> str:
    """One line: measured, limit, where it came from, the flag that changes it."""
    value = "not measured" if metric.value is None else f"{metric.value:.4f}"
    if metric.value is None or not math.isfinite(metric.value):
        relation = f"is {value}, need {limit.describe()}"
    elif limit.low is not None and metric.value < limit.low:
        relation = f"{value} < {limit.low:.4f}"
    elif limit.high is not None and metric.value > limit.high:
        relation = f"{value} > {limit.high:.4f}"
    else:
        relation = f"{value} {limit.describe()}"
    unit = f" {metric.unit}" if metric.unit not in ("", "ratio") else ""
    return f"{metric.name} {relation}{unit} ({limit.source}); see {limit.flag}"
