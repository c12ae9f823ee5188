"""Paired A/B verdicts: the setup under test (B, "current") against a reference (A) measured beside it.

Under ``--llmperf-compare`` each performance metric is measured in *pairs* of rounds, one round of each
side, the order alternating pair by pair (A B, B A, A B, ...: the rounds run A B B A A B B A), so that
a drift of the machine or a neighbour's burst falls on both sides alike.  Each pair gives one log
ratio ``d = log(B / A)``; the verdict comes from Student's t interval of their mean (``scipy.stats``):

* REGRESSED: the whole interval lies beyond the paired minimum effect in the bad direction;
* IMPROVED: the whole interval lies beyond it in the good direction;
* PASS: the whole interval lies on the good side of the bad bound (any slowdown is smaller than it);
* INCONCLUSIVE: otherwise; the line says how many pairs the spread seen would need.

The minimum effect (``[performance] paired_min_effect_throughput`` / ``paired_min_effect_latency``) is
small: two sides measured minutes apart on one machine differ by far less than a run and a baseline
recorded on another day.  Correction for many metrics: Bonferroni over the test's metrics and the two
looks of the sequential rule (``gate_pairs``): each interval is at ``1 - (1 - confidence) / (metrics
x looks)``.  Bonferroni because it holds whatever the dependence between metrics (tokens/s and
samples/s are nearly one number; TTFT and TPOT come from the same runs) and it gives simultaneous
intervals, which the table shows; Holm's step-down would gain little at two to four metrics a test.

The minimum detectable effect (MDE) is the smallest regression these pairs, at the spread they show,
would call REGRESSED with 80% power: the bad bound plus ``(t_crit + t_power)`` standard errors.

Accuracy is compared paired too: MMLU per question (an exact binomial test on the questions one side
answers right and the other wrong: McNemar's exact test) and ROUGE per sample (a paired bootstrap of
the mean difference).
"""

from __future__ import annotations

import dataclasses
import math
import statistics
from typing import Any, Callable, Literal, Sequence

from .contention import ContentionMeter, host_id

PairedVerdict = Literal["improved", "pass", "regressed", "inconclusive"]
POWER = 0.8
"""The power at which the MDE is stated."""
MIN_PAIRS = 3
"""Fewer pairs than this give an interval with one or no degree of freedom: measured up to it."""
SIDES = ("reference", "current")


@dataclasses.dataclass(frozen=True)
class PairedJudgement:
    """The current side's rounds against the reference's, pair by pair."""

    verdict: PairedVerdict
    change: float
    """``current / reference - 1`` (geometric mean of the pair ratios)."""
    low: float
    high: float
    """The interval of ``change`` at ``confidence`` (already corrected for the number of metrics and looks)."""
    mde: float
    """The smallest regression (a fraction) these pairs would call REGRESSED with 80% power."""
    min_effect: float
    confidence: float
    higher_is_better: bool
    pairs: int
    """The pairs judged."""
    left_out: int = 0
    """Pairs measured but not judged: a neighbour took ``max_contention`` or more of the CPU during them."""

    def describe(self) -> str:
        """``-3.1% (99.4% CI -5.0%..-1.2%; regressed beyond -3%; MDE 4.2% at 6 pairs)``."""
        bad = -self.min_effect if self.higher_is_better else self.min_effect
        left_out = f", {self.left_out} beside a neighbour left out" if self.left_out else ""
        return (f"{100 * self.change:+.1f}% ({100 * self.confidence:.4g}% CI {100 * self.low:+.1f}%.."
                f"{100 * self.high:+.1f}%; regressed beyond {100 * bad:+g}%; MDE {100 * self.mde:.1f}% "
                f"at {self.pairs} pairs{left_out})")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    # What the report reads of an unpaired ``noise.Judgement`` too.
    basis = "paired"

    @property
    def n_baseline(self) -> int:
        return self.pairs

    @property
    def n_current(self) -> int:
        return self.pairs


def _bounds(min_effect: float, higher_is_better: bool) -> tuple[float, float]:
    """(bad, good) bounds on the log ratio."""
    if higher_is_better:
        bad = math.log(1 - min_effect) if min_effect < 1 else -math.inf
        return bad, -bad
    bad = math.log(1 + min_effect)
    return bad, -bad


def judge_pairs(reference: Sequence[float], current: Sequence[float], *, higher_is_better: bool,
                min_effect: float, confidence: float) -> PairedJudgement:
    """The verdict (module docstring) on paired round values; ``reference[i]`` and ``current[i]`` are one pair."""
    from scipy import stats

    if len(reference) != len(current) or not reference:
        raise ValueError(f"paired rounds need equal, non-zero counts: {len(reference)} and {len(current)}")
    values = [float(v) for v in (*reference, *current)]
    if any(not math.isfinite(v) or v <= 0 for v in values):
        raise ValueError(f"round values must be positive finite numbers, got {values!r}")
    logs = [math.log(b / a) for a, b in zip(reference, current)]
    n, mean = len(logs), statistics.fmean(logs)
    bad, good = _bounds(min_effect, higher_is_better)
    if n < 2:
        half = se = math.inf
        t_crit = t_power = math.inf
    else:
        se = statistics.stdev(logs) / math.sqrt(n)
        t_crit = float(stats.t.ppf(0.5 + confidence / 2, n - 1))
        t_power = float(stats.t.ppf(POWER, n - 1))
        half = t_crit * se
    low, high = mean - half, mean + half
    if higher_is_better:
        verdict: PairedVerdict = ("regressed" if high < bad else "improved" if low > good
                                  else "pass" if low > bad else "inconclusive")
        shift = -bad + (t_crit + t_power) * se if se < math.inf else math.inf
        mde = -math.expm1(-shift) if shift < math.inf else 1.0
    else:
        verdict = ("regressed" if low > bad else "improved" if high < good
                   else "pass" if high < bad else "inconclusive")
        shift = bad + (t_crit + t_power) * se if se < math.inf else math.inf
        mde = math.expm1(shift) if shift < math.inf else math.inf
    return PairedJudgement(verdict, math.expm1(mean), _expm1(low), _expm1(high), mde, min_effect, confidence,
                           higher_is_better, n)


def _expm1(x: float) -> float:
    return -1.0 if x == -math.inf else math.inf if x == math.inf else math.expm1(x)


def pairs_needed(judgement: PairedJudgement) -> int | None:
    """About how many pairs of this spread would decide (the interval narrow enough to clear the bound
    on either side of the estimate), or None when no count would (the estimate sits on the bound)."""
    from scipy import stats

    if judgement.pairs < 2 or judgement.verdict != "inconclusive":
        return None
    bad, _ = _bounds(judgement.min_effect, judgement.higher_is_better)
    mean = math.log1p(judgement.change)
    distance = abs(mean - bad)
    half = (math.log1p(judgement.high) - math.log1p(judgement.low)) / 2
    t_now = float(stats.t.ppf(0.5 + judgement.confidence / 2, judgement.pairs - 1))
    if distance == 0 or half == 0:
        return None
    sd = half / t_now * math.sqrt(judgement.pairs)
    # The interval shrinks as 1/sqrt(n); t at large n is about the normal quantile.
    z = float(stats.norm.ppf(0.5 + judgement.confidence / 2))
    return max(judgement.pairs + 1, math.ceil((z * sd / distance) ** 2))


def quiet_pairs(record: dict[str, Any], max_contention: float) -> list[int]:
    """The pairs of ``record`` during which no neighbour took ``max_contention`` or more of the CPU on either
    side (unknown counts as quiet); all pairs where fewer than ``MIN_PAIRS`` would be left."""
    count = len(record["reference"])
    contention = record.get("contention") or {}
    known = {side: list(contention.get(side) or []) + [None] * count for side in SIDES}
    quiet = [i for i in range(count) if all(known[side][i] is None or known[side][i] < max_contention
                                            for side in SIDES)]
    return quiet if len(quiet) >= MIN_PAIRS else list(range(count))


def judge_recorded_pairs(record: dict[str, Any], metric: Any, settings: Any, confidence: float) -> PairedJudgement:
    """The one paired judgement: ``record`` (``PairedMeasurer.record``) of ``metric`` (a ``RoundMetric``)
    under ``settings`` (``RoundSettings``) at ``confidence``, on its quiet pairs (``quiet_pairs``: a burst of
    a neighbour falls on one side of a pair more than on the other); the session and ``llmperf compare``
    both call it."""
    keep = quiet_pairs(record, settings.max_contention)
    found = judge_pairs([record["reference"][i] for i in keep], [record["current"][i] for i in keep],
                        higher_is_better=metric.higher_is_better,
                        min_effect=settings.paired_min_effect(metric.higher_is_better), confidence=confidence)
    return dataclasses.replace(found, left_out=len(record["reference"]) - len(keep))


def judge_recorded_metric(metric: Any) -> PairedJudgement | None:
    """A results.json metric (``runtime.results.Metric``) of a paired session judged again from what it kept
    (``extra["paired"]``: the rounds of both sides, the round settings, the confidence); None for a metric
    not measured in pairs.  ``llmperf report`` and ``llmperf compare`` reach the session's verdict by it."""
    from .rounds import RoundMetric, RoundSettings

    paired = metric.extra.get("paired") if isinstance(metric.extra, dict) else None
    if not isinstance(paired, dict) or metric.higher_is_better is None or metric.verdict == "info":
        return None
    record, settings = paired.get("rounds"), paired.get("round_settings")
    if not isinstance(record, dict) or not isinstance(settings, dict) or "confidence" not in paired:
        return None
    known = {field.name for field in dataclasses.fields(RoundSettings)}
    round_settings = RoundSettings(**{name: value for name, value in settings.items() if name in known})
    return judge_recorded_pairs(record, RoundMetric(metric.name, metric.unit, bool(metric.higher_is_better)),
                                round_settings, float(paired["confidence"]))


# -- measuring ---------------------------------------------------------------------------------------

class PairedMeasurer:
    """Rounds of two sides, ``measure[side](index) -> {metric: value}``, in pairs whose order alternates
    (A B, B A, ...), each round inside ``meter``.  One meter serves both sides: the idle side's
    processes (an engine core, a server) count as this run's own CPU use, not as a neighbour's."""

    calibration: tuple = ()
    """Paired rounds are not calibrated (each pair is its own control); here so callers of either measurer read it."""

    def __init__(self, measure_reference: Callable[[int], dict[str, float]],
                 measure_current: Callable[[int], dict[str, float]], meter: ContentionMeter | None = None):
        self.measure = {"reference": measure_reference, "current": measure_current}
        self.meter = meter or ContentionMeter()
        self.raw: dict[str, list[dict[str, float]]] = {side: [] for side in SIDES}
        self.contention: dict[str, list[float | None]] = {side: [] for side in SIDES}
        self.order: list[str] = []
        """The sides in the order their rounds ran (``reference``, ``current``, ``current``, ...)."""
        self.on_round: Callable[[int], None] | None = None
        """Called with the count of pairs measured after each pair (a progress line)."""

    @property
    def count(self) -> int:
        """Complete pairs measured."""
        return min(len(self.raw[side]) for side in SIDES)

    def more(self, pairs: int) -> None:
        for _ in range(pairs):
            sides = SIDES if self.count % 2 == 0 else SIDES[::-1]
            for side in sides:
                self.meter.start()
                values = self.measure[side](len(self.raw[side]))
                self.contention[side].append(self.meter.stop())
                self.raw[side].append(dict(values))
                self.order.append(side)
            if self.on_round is not None:
                self.on_round(self.count)

    def values(self, name: str, side: str = "current") -> list[float | None]:
        """``name``'s value in each round of ``side`` (default: the side under test)."""
        return [None if r.get(name) is None else float(r[name]) for r in self.raw[side]]

    def measured(self, name: str) -> bool:
        """Every round of both sides measured ``name`` (a positive, finite value)."""
        return all(v is not None and 0 < v < math.inf for side in SIDES for v in self.values(name, side))

    def record(self, name: str) -> dict[str, Any]:
        """What results.json keeps of ``name``'s pairs (``llmperf compare`` judges them again from it)."""
        return {"reference": self.values(name, "reference"), "current": self.values(name, "current"),
                "order": list(self.order), "contention": {side: list(self.contention[side]) for side in SIDES},
                "host": host_id()}


# -- accuracy, paired --------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class PairedAccuracy:
    """Two sides scored on the same items."""

    test: str
    reference: float
    current: float
    difference: float
    """``current - reference`` (accuracy points as fractions, or ROUGE points)."""
    p_value: float
    """Two-sided: the chance of a difference this large if the sides were equally good."""
    low: float
    high: float
    """Interval of ``difference`` at the confidence asked (NaN where the test gives none)."""
    items: int
    discordant: int | None = None
    """McNemar: the questions exactly one side answered right."""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def accuracy_verdict(paired: PairedAccuracy, min_effect: float) -> PairedVerdict:
    """The verdict on a paired accuracy difference, by the performance rule on its interval: REGRESSED when
    the whole interval lies below ``-min_effect`` (same units as the difference), IMPROVED when above
    ``+min_effect``, PASS when above ``-min_effect``, else INCONCLUSIVE."""
    if paired.high < -min_effect:
        return "regressed"
    if paired.low > min_effect:
        return "improved"
    return "pass" if paired.low > -min_effect else "inconclusive"


def mcnemar_exact(reference_correct: Sequence[bool], current_correct: Sequence[bool],
                  confidence: float = 0.95) -> PairedAccuracy:
    """MMLU per question: McNemar's exact test, a binomial test on the discordant questions (right on one
    side only); the interval is that of the accuracy difference (Wald, on the paired proportions)."""
    from scipy import stats

    if len(reference_correct) != len(current_correct) or not reference_correct:
        raise ValueError("paired accuracy needs the same, non-empty list of questions on both sides")
    n = len(reference_correct)
    only_current = sum(1 for a, b in zip(reference_correct, current_correct) if b and not a)
    only_reference = sum(1 for a, b in zip(reference_correct, current_correct) if a and not b)
    discordant = only_current + only_reference
    p = 1.0 if discordant == 0 else float(stats.binomtest(only_current, discordant, 0.5).pvalue)
    difference = (only_current - only_reference) / n
    variance = (only_current + only_reference) / n ** 2 - difference ** 2 / n
    half = float(stats.norm.ppf(0.5 + confidence / 2)) * math.sqrt(max(variance, 0.0))
    return PairedAccuracy("mcnemar-exact", sum(reference_correct) / n, sum(current_correct) / n, difference, p,
                          difference - half, difference + half, n, discordant)


def paired_bootstrap(reference_scores: Sequence[float], current_scores: Sequence[float], *,
                     confidence: float = 0.95, resamples: int = 10_000, seed: int = 0) -> PairedAccuracy:
    """ROUGE per sample: resample the samples (the same indices on both sides) and read the interval of
    the mean difference from the resampled means; the p-value is twice the smaller tail beyond zero."""
    import numpy as np

    if len(reference_scores) != len(current_scores) or not reference_scores:
        raise ValueError("paired scores need the same, non-empty list of samples on both sides")
    a, b = np.asarray(reference_scores, dtype=float), np.asarray(current_scores, dtype=float)
    differences = b - a
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(differences), size=(resamples, len(differences)))
    means = differences[picks].mean(axis=1)
    tail = (1 - confidence) / 2
    low, high = np.quantile(means, [tail, 1 - tail])
    below, above = float((means <= 0).mean()), float((means >= 0).mean())
    p = 1.0 if not differences.any() else min(1.0, 2 * min(below, above))
    return PairedAccuracy("paired-bootstrap", float(a.mean()), float(b.mean()), float(differences.mean()), p,
                          float(low), float(high), len(differences))
