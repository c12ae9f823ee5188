"""Metrics measured in rounds, each normalized by the calibration taken around it.

``RoundMeasurer`` interleaves calibrations with the rounds (calibrate, round,
calibrate, round, ..., calibrate); a round's normalized value is its raw value
divided by the mean of the two calibration rates around it (higher is better)
or multiplied by it (lower is better: a time in units of calibration work).
``judge_entry`` judges one metric's rounds against its baseline entry; the rule that
decides how many rounds to measure is ``gating.sequential``.

Each round also records how much of the CPU other processes took meanwhile
(``gating.contention``).  Against a clean baseline from the same host, this run's
clean rounds (two or more) are judged, on raw or calibrated values, whichever spread
less in the baseline, and the other is asked as a check: where it firmly disagrees,
the verdict is INCONCLUSIVE.  Otherwise the calibrated ratio is judged, and a run a
neighbour shared can be PASS or INCONCLUSIVE but not FAIL; re-measuring while
INCONCLUSIVE gives a neighbour that leaves the chance to.
"""

from __future__ import annotations

import dataclasses
import math
import statistics
from typing import Any, Callable, Sequence

from ..config.profiles import PerformanceSection
from .baselines import has_rounds, workload_differences
from .contention import ContentionMeter, all_clean, host_id
from .noise import Judgement, judge_rounds, t_quantile



_DEFAULTS = PerformanceSection()


@dataclasses.dataclass(frozen=True)
class RoundSettings:
    """The ``[performance]`` keys that drive round-based gates (defaults: ``profiles.PerformanceSection``'s)."""

    rounds: int = _DEFAULTS.rounds
    max_rounds: int = _DEFAULTS.max_rounds
    min_effect_throughput: float = _DEFAULTS.min_effect_throughput
    min_effect_latency: float = _DEFAULTS.min_effect_latency
    confidence: float = _DEFAULTS.confidence
    inconclusive_fails: bool = _DEFAULTS.inconclusive_fails
    max_contention: float = _DEFAULTS.max_contention
    paired_rounds: int = _DEFAULTS.paired_rounds
    paired_max_rounds: int = _DEFAULTS.paired_max_rounds
    paired_min_effect_throughput: float = _DEFAULTS.paired_min_effect_throughput
    paired_min_effect_latency: float = _DEFAULTS.paired_min_effect_latency
    source: str = "defaults"
    """The profile they came from (named in failure messages)."""

    @classmethod
    def of(cls, section: PerformanceSection, source: str) -> "RoundSettings":
        return cls(section.rounds, section.max_rounds, section.min_effect_throughput, section.min_effect_latency,
                   section.confidence, section.inconclusive_fails, section.max_contention,
                   section.paired_rounds, section.paired_max_rounds, section.paired_min_effect_throughput, section.paired_min_effect_latency, source)

    @property
    def looks(self) -> int:
        """How often the sequential rule looks: after ``rounds``, and after ``max_rounds`` when more are allowed."""
        return 2 if self.max_rounds > self.rounds else 1

    @property
    def look_confidence(self) -> float:
        """Each look's confidence: ``confidence`` split over the looks (Bonferroni), so that the rule as a
        whole holds ``confidence``."""
        return 1 - (1 - self.confidence) / self.looks

    def at_each_look(self) -> "RoundSettings":
        """These settings with ``confidence`` set to one look's (what judging a look uses)."""
        return dataclasses.replace(self, confidence=self.look_confidence)

    def min_effect(self, higher_is_better: bool) -> float:
        return self.min_effect_throughput if higher_is_better else self.min_effect_latency

    def paired_min_effect(self, higher_is_better: bool) -> float:
        """Paired A/B's minimum effect (``gating.paired``)."""
        return self.paired_min_effect_throughput if higher_is_better else self.paired_min_effect_latency

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
    """Runs rounds of ``measure(index) -> {metric: value}`` between calls of ``calibrate() -> rate``,
    each inside ``meter`` (how much of the CPU others took during it)."""

    def __init__(self, measure: Callable[[int], dict[str, float]], calibrate: Callable[[], float], kind: str,
                 meter: ContentionMeter | None = None):
        self.measure, self.calibrate, self.kind = measure, calibrate, kind
        self.meter = meter or ContentionMeter()
        self.raw: list[dict[str, float]] = []
        self.calibration: list[float] = []
        """Calibration rate of each round (mean of the rates before and after it)."""
        self.contention: list[float | None] = []
        """Fraction of the machine's CPU others used during each round (None: unknown)."""
        self._last: float | None = None
        self.on_round: Callable[[int], None] | None = None
        """Called with the count of rounds measured after each one (a progress line)."""

    @property
    def count(self) -> int:
        return len(self.raw)

    def more(self, rounds: int) -> None:
        if self._last is None:
            self._last = self.calibrate()
        for _ in range(rounds):
            self.meter.start()
            values = self.measure(len(self.raw))
            self.contention.append(self.meter.stop())
            after = self.calibrate()
            self.raw.append(dict(values))
            self.calibration.append((self._last + after) / 2)
            self._last = after
            if self.on_round is not None:
                self.on_round(self.count)

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
                "calibration": list(self.calibration), "calibration_kind": self.kind,
                "contention": list(self.contention), "host": host_id()}


def comparable(entry: dict[str, Any] | None, workload: dict[str, Any], kind: str) -> bool:
    """True when ``entry`` has rounds measured under the same workload and calibration."""
    return (has_rounds(entry) and entry["rounds"].get("calibration_kind") == kind  # type: ignore[index]
            and not workload_differences(entry.get("workload") or {}, workload))  # type: ignore[union-attr]


def clean(rounds: dict[str, Any], settings: RoundSettings) -> bool:
    """Every round of this record (a baseline's or this run's) ran with the machine to itself."""
    return all_clean(rounds.get("contention"), settings.max_contention)


def clean_rounds(rounds: dict[str, Any], settings: RoundSettings) -> dict[str, Any]:
    """``rounds`` with only its clean rounds (contention known and below ``max_contention``)."""
    keep = [i for i, c in enumerate(rounds.get("contention") or []) if c is not None and c < settings.max_contention]
    picked = {side: [rounds[side][i] for i in keep] for side in ("raw", "normalized", "calibration")}
    return {**rounds, **picked, "contention": [rounds["contention"][i] for i in keep]}


def judge_entry(entry: dict[str, Any], rounds: dict[str, Any], metric: RoundMetric,
                settings: RoundSettings) -> Judgement:
    """This run's ``rounds`` (a ``RoundMeasurer.record``) against the baseline ``entry`` (module docstring):
    its clean rounds, when there are two or more, against a clean baseline from this host, on raw or
    calibrated values; else on calibrated values, and a run a neighbour shared can then not FAIL."""
    def judge(now: dict[str, Any], side: str, basis: str) -> Judgement:
        found = judge_rounds(entry["rounds"][side], now[side], higher_is_better=metric.higher_is_better,
                             min_effect=settings.min_effect(metric.higher_is_better), confidence=settings.confidence)
        return dataclasses.replace(found, basis=basis)

    base = entry["rounds"]
    known = [c for c in rounds.get("contention") or [] if c is not None]
    quiet = clean_rounds(rounds, settings)
    if not (clean(base, settings) and base.get("host") == rounds.get("host") and len(quiet["raw"]) >= 2):
        calibrated = judge(rounds, "normalized", "calibrated")
        if known and max(known) >= settings.max_contention and calibrated.verdict == "fail":
            # Measured beside a neighbour, the ratio is no proof: the matrix product and the engine stall
            # differently on a shared core (docs/performance-gates.md), so a red here could be the neighbour's.
            return dataclasses.replace(calibrated, verdict="inconclusive", basis=(
                f"calibrated, not judged: other processes took up to {100 * max(known):.0f}% of the CPU"))
        return calibrated
    note = "" if len(quiet["raw"]) == len(rounds["raw"]) else f" ({len(quiet['raw'])} of {len(rounds['raw'])} rounds quiet)"
    raw, calibrated = judge(quiet, "raw", "raw" + note), judge(quiet, "normalized", "calibrated" + note)
    # Judge the values whose baseline rounds spread less (decided from the baseline alone, so the
    # choice cannot follow this run's data); the other values cross-check.
    first, second = (raw, calibrated) if _spread(base["raw"]) <= _spread(base["normalized"]) else (calibrated, raw)
    if {first.verdict, second.verdict} == {"pass", "fail"}:
        # The machine itself is faster or slower than when the baseline was made (another host of
        # the same name, a changed clock), or the calibration moved alone: neither can be trusted.
        return dataclasses.replace(first, verdict="inconclusive",
                                   basis=f"{first.basis}, but the {second.basis} values say {second.verdict.upper()}")
    return first


def decidable(entry: dict[str, Any], rounds: dict[str, Any], judgement: Judgement, metric: RoundMetric,
              settings: RoundSettings, total: int) -> bool:
    """Whether ``total`` rounds of this spread could give a verdict at all: False when even an unchanged
    engine would stay INCONCLUSIVE there (the interval wider than the band up to the minimum effect),
    so that more rounds would only cost time."""
    side = "raw" if judgement.basis.startswith("raw") else "normalized"
    base, now = entry["rounds"][side], rounds[side]
    base_sd = _spread(base)
    now_sd = _spread(now) if len(now) > 1 else base_sd
    if not (math.isfinite(base_sd) and math.isfinite(now_sd)):
        return True
    variance = base_sd ** 2 / len(base) + now_sd ** 2 / total
    half = t_quantile(0.5 + settings.confidence / 2, len(base) + total - 2) * math.sqrt(variance)
    effect = settings.min_effect(metric.higher_is_better)
    band = -math.log(1 - effect) if metric.higher_is_better and effect < 1 else math.log(1 + effect)
    return half < band


def _spread(values: Sequence[float]) -> float:
    logs = [math.log(v) for v in values]
    return statistics.stdev(logs) if len(logs) > 1 else math.inf
