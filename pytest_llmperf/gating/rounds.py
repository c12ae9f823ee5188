"""Metrics measured in rounds, each normalized by the calibration taken around it.

``RoundMeasurer`` interleaves calibrations with the rounds (calibrate, round,
calibrate, round, ..., calibrate); a round's normalized value is its raw value
divided by the mean of the two calibration rates around it (higher is better)
or multiplied by it (lower is better: a time in units of calibration work).
``gate_rounds`` follows a two-look sequential rule: it measures ``[performance]
rounds`` rounds and looks; while any metric is INCONCLUSIVE (and ``max_rounds``
rounds of the spread seen could decide it at all) it measures up to ``max_rounds``
and looks once more; then it records every metric on the checker, which judges it
(``Checker.against_rounds``).  Each look's interval is at confidence
``1 - (1 - confidence) / looks`` (``RoundSettings.look_confidence``, Bonferroni over
the looks), so the chance that any look's interval misses the true change stays
within ``1 - confidence``: a false FAIL (a change inside the minimum effect called a
regression) and a false PASS (a regression beyond it called a pass) each within
``(1 - confidence) / 2``, however the run stops.  Re-measuring one round at a time and
looking each time at 95% held no such bound.

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
from typing import TYPE_CHECKING, Any, Callable, Sequence

from ..profiles import PerformanceSection
from .baselines import BaselineKey, has_rounds, workload_differences
from .contention import ContentionMeter, all_clean, host_id
from .noise import Judgement, judge_rounds, t_quantile

if TYPE_CHECKING:
    from .checker import Checker


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
    source: str = "defaults"
    """The profile they came from (named in failure messages)."""

    @classmethod
    def of(cls, section: PerformanceSection, source: str) -> "RoundSettings":
        return cls(section.rounds, section.max_rounds, section.min_effect_throughput, section.min_effect_latency,
                   section.confidence, section.inconclusive_fails, section.max_contention, source)

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
    """Measure ``rounds``, then up to ``max_rounds`` while any metric is INCONCLUSIVE (the two-look rule of
    the module docstring), and record each metric on ``check``."""
    key = check.resolve_key(key, metrics[0].name)
    family = settings
    settings = settings.at_each_look()
    entries = {m.name: check.store.entry(key, m.name) for m in metrics}

    def undecided(metric: RoundMetric) -> bool:
        entry = entries[metric.name]
        if not (measurer.measured(metric.name) and comparable(entry, workload, measurer.kind)):
            return False
        rounds = measurer.record(metric)
        judgement = judge_entry(entry, rounds, metric, settings)  # type: ignore[arg-type]
        return judgement.verdict == "inconclusive" and decidable(entry, rounds, judgement, metric,  # type: ignore[arg-type]
                                                                  settings, settings.max_rounds)

    try:
        measurer.more(settings.rounds)
        # Recording a baseline compares with nothing: its rounds are what they are.
        if not check.update and measurer.count < settings.max_rounds and any(map(undecided, metrics)):
            measurer.more(settings.max_rounds - measurer.count)  # the second and last look
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
                             key=key, extra={**(extra or {}), "sequential": {
                                 "looks": family.looks, "family_confidence": family.confidence,
                                 "rule": "two looks, confidence split over them (Bonferroni)"}})
