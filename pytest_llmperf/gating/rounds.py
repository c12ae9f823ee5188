"""Metrics measured in rounds, each normalized by the calibration taken around it.

``RoundMeasurer`` interleaves calibrations with the rounds (calibrate, round,
calibrate, round, ..., calibrate); a round's normalized value is its raw value
divided by the mean of the two calibration rates around it (higher is better)
or multiplied by it (lower is better: a time in units of calibration work).
``gate_rounds`` measures ``[performance] rounds`` rounds, re-measures one round
at a time while any metric is INCONCLUSIVE (up to ``max_rounds``), then records
every metric on the checker, which judges it (``Checker.against_rounds``).
"""

from __future__ import annotations

import dataclasses
import math
from typing import TYPE_CHECKING, Any, Callable, Sequence

from .baselines import BaselineKey, has_rounds, workload_differences
from .noise import Judgement, judge_rounds

if TYPE_CHECKING:
    from ..profiles import PerformanceSection
    from .checker import Checker


@dataclasses.dataclass(frozen=True)
class RoundSettings:
    """The ``[performance]`` keys that drive round-based gates."""

    rounds: int = 5
    max_rounds: int = 8
    min_effect_throughput: float = 0.15
    min_effect_latency: float = 0.30
    confidence: float = 0.95
    inconclusive_fails: bool = False
    source: str = "defaults"
    """The profile they came from (named in failure messages)."""

    @classmethod
    def of(cls, section: "PerformanceSection", source: str) -> "RoundSettings":
        return cls(section.rounds, section.max_rounds, section.min_effect_throughput, section.min_effect_latency,
                   section.confidence, section.inconclusive_fails, source)

    def min_effect(self, higher_is_better: bool) -> float:
        return self.min_effect_throughput if higher_is_better else self.min_effect_latency

    def min_effect_key(self, higher_is_better: bool) -> str:
        return "performance.min_effect_throughput" if higher_is_better else "performance.min_effect_latency"


@dataclasses.dataclass(frozen=True)
class RoundMetric:
    """A metric each round yields."""

    name: str
    unit: str
    higher_is_better: bool


def normalize(value: float, rate: float, higher_is_better: bool) -> float:
    """The round value judged: throughput per unit of calibration rate, latency times it."""
    return value / rate if higher_is_better else value * rate


class RoundMeasurer:
    """Runs rounds of ``measure(index) -> {metric: value}`` between calls of ``calibrate() -> rate``."""

    def __init__(self, measure: Callable[[int], dict[str, float]], calibrate: Callable[[], float], kind: str):
        self.measure, self.calibrate, self.kind = measure, calibrate, kind
        self.raw: list[dict[str, float]] = []
        self.calibration: list[float] = []
        """Calibration rate of each round (mean of the rates before and after it)."""
        self._last: float | None = None

    @property
    def count(self) -> int:
        return len(self.raw)

    def more(self, rounds: int) -> None:
        if self._last is None:
            self._last = self.calibrate()
        for _ in range(rounds):
            values = self.measure(len(self.raw))
            after = self.calibrate()
            self.raw.append(dict(values))
            self.calibration.append((self._last + after) / 2)
            self._last = after

    def values(self, name: str) -> list[float | None]:
        return [None if r.get(name) is None else float(r[name]) for r in self.raw]

    def measured(self, name: str) -> bool:
        """Every round measured ``name`` (a positive, finite value)."""
        return all(v is not None and 0 < v < math.inf for v in self.values(name))

    def normalized(self, metric: RoundMetric) -> list[float | None]:
        return [None if value is None else normalize(value, rate, metric.higher_is_better)
                for value, rate in zip(self.values(metric.name), self.calibration)]

    def record(self, metric: RoundMetric) -> dict[str, Any]:
        """What a baseline entry and results.json keep of ``metric``'s rounds."""
        return {"raw": self.values(metric.name), "normalized": self.normalized(metric),
                "calibration": list(self.calibration), "calibration_kind": self.kind}


def comparable(entry: dict[str, Any] | None, workload: dict[str, Any], kind: str) -> bool:
    """True when ``entry`` has rounds measured under the same workload and calibration."""
    return (has_rounds(entry) and entry["rounds"].get("calibration_kind") == kind  # type: ignore[index]
            and not workload_differences(entry.get("workload") or {}, workload))  # type: ignore[union-attr]


def judge_entry(entry: dict[str, Any], normalized: Sequence[float], metric: RoundMetric,
                settings: RoundSettings) -> Judgement:
    return judge_rounds(entry["rounds"]["normalized"], normalized, higher_is_better=metric.higher_is_better,
                        min_effect=settings.min_effect(metric.higher_is_better), confidence=settings.confidence)


def record_interrupted(check: "Checker", metrics: Sequence[RoundMetric], measurer: RoundMeasurer) -> None:
    """The session was interrupted between or during rounds: each metric measured in at least one
    round is recorded, not judged, as the median of its raw rounds, with every round kept."""
    for metric in metrics:
        values = sorted(v for v in measurer.values(metric.name) if v is not None)
        if values:
            check.info(metric.name, values[len(values) // 2], metric.unit, metric.higher_is_better,
                       extra={"rounds": measurer.record(metric), "interrupted": True,
                              "note": f"{len(values)} round(s) measured before the session was interrupted; not judged"})


def gate_rounds(check: "Checker", metrics: Sequence[RoundMetric], measurer: RoundMeasurer, settings: RoundSettings,
                workload: dict[str, Any], *, key: BaselineKey | None = None, extra: dict | None = None) -> None:
    """Measure, re-measure while INCONCLUSIVE (up to ``max_rounds``), and record each metric on ``check``."""
    key = check.resolve_key(key, metrics[0].name)
    entries = {m.name: check.store.entry(key, m.name) for m in metrics}

    def undecided() -> bool:
        return any(measurer.measured(m.name) and comparable(entries[m.name], workload, measurer.kind)
                   and judge_entry(entries[m.name], measurer.normalized(m), m, settings).verdict == "inconclusive"
                   for m in metrics)

    try:
        measurer.more(settings.rounds)
        while measurer.count < settings.max_rounds and undecided():
            measurer.more(1)
    except KeyboardInterrupt:  # Ctrl-C, SIGTERM: keep the rounds measured so far, judge nothing
        record_interrupted(check, metrics, measurer)
        raise
    for metric in metrics:
        if not measurer.measured(metric.name):
            check.fail(f"{metric.name}: not measured in every round ({measurer.values(metric.name)}); "
                       "see the LoadGen logs in the test's folder")
            check.info(metric.name, None, metric.unit, metric.higher_is_better, extra={"rounds": measurer.record(metric)})
            continue
        check.against_rounds(metric, measurer.record(metric), settings, workload, entry=entries[metric.name],
                             key=key, extra=extra)
