"""The verdict of a metric measured in rounds: PASS, FAIL or INCONCLUSIVE.

Plain functions over round values (each already normalized by the calibration
of its moment, see ``calibration``).  The rule (docs/performance-gates.md):

* work on logarithms, so a change is a ratio and a slowdown of x% means the
  same on a fast and a slow machine;
* a confidence interval for ``current / baseline`` from Welch's t on the log
  values (unequal spreads, unequal round counts); where one side has a single
  round, the other side's spread is used (a prediction interval);
* FAIL when the whole interval lies beyond the minimum effect in the bad
  direction (the regression is statistically clear *and* large enough to
  matter); PASS when the whole interval lies on the good side of it;
  INCONCLUSIVE otherwise: the data cannot tell, measure more.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import statistics
from typing import Literal, Sequence

Verdict = Literal["pass", "fail", "inconclusive"]


@dataclasses.dataclass(frozen=True)
class RoundStats:
    """Summary of one side's round values (positive numbers)."""

    n: int
    median: float
    log_mean: float
    log_sd: float
    """Sample standard deviation of the natural logs (0 for one round): about the relative spread."""

    @classmethod
    def of(cls, values: Sequence[float]) -> "RoundStats":
        values = [float(v) for v in values]
        if not values or any(not math.isfinite(v) or v <= 0 for v in values):
            raise ValueError(f"round values must be positive finite numbers, got {values!r}")
        logs = [math.log(v) for v in values]
        sd = statistics.stdev(logs) if len(logs) > 1 else 0.0
        return cls(len(values), statistics.median(values), statistics.fmean(logs), sd)


@dataclasses.dataclass(frozen=True)
class Judgement:
    """Current rounds against baseline rounds."""

    verdict: Verdict
    change: float
    """Estimated relative change of the value, ``current / baseline - 1`` (geometric means)."""
    low: float
    """Lower end of the confidence interval of ``change``."""
    high: float
    """Upper end of the confidence interval of ``change``."""
    min_effect: float
    """The smallest change in the bad direction that counts as a regression (0.15 = 15%)."""
    confidence: float
    higher_is_better: bool
    n_baseline: int
    n_current: int
    basis: str = "calibrated"
    """Which values were judged: ``raw`` or ``calibrated`` (``gating.rounds.judge_entry``)."""

    def describe(self) -> str:
        """``-3.1% (95% CI -8.0%..+2.1%; fail beyond -15%; raw)``."""
        bad = -self.min_effect if self.higher_is_better else self.min_effect
        return (f"{100 * self.change:+.1f}% ({100 * self.confidence:g}% CI {100 * self.low:+.1f}%.."
                f"{100 * self.high:+.1f}%; fail beyond {100 * bad:+g}%; {self.basis})")


def judge_rounds(baseline: Sequence[float], current: Sequence[float], *, higher_is_better: bool,
                 min_effect: float, confidence: float = 0.95) -> Judgement:
    """The verdict on ``current`` round values against ``baseline`` ones."""
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    if min_effect < 0:
        raise ValueError(f"min_effect must be >= 0, got {min_effect}")
    base, now = RoundStats.of(baseline), RoundStats.of(current)
    difference = now.log_mean - base.log_mean
    half = _half_width(base, now, confidence)
    low, high = difference - half, difference + half
    # Bounds on the log scale: a drop of m is log(1 - m), a rise of m is log(1 + m).
    if higher_is_better:
        bound = math.log(1 - min_effect) if min_effect < 1 else -math.inf
        verdict: Verdict = "fail" if high < bound else "pass" if low > bound else "inconclusive"
    else:
        bound = math.log(1 + min_effect)
        verdict = "fail" if low > bound else "pass" if high < bound else "inconclusive"
    return Judgement(verdict, math.expm1(difference), _expm1(low), _expm1(high), min_effect, confidence,
                     higher_is_better, base.n, now.n)


def _expm1(x: float) -> float:
    return -1.0 if x == -math.inf else math.inf if x == math.inf else math.expm1(x)


def _half_width(base: RoundStats, now: RoundStats, confidence: float) -> float:
    """Half the width of the interval for the difference of log means."""
    if base.n > 1 and now.n > 1:
        v_base, v_now = base.log_sd ** 2 / base.n, now.log_sd ** 2 / now.n
        variance = v_base + v_now
        if variance == 0:
            return 0.0
        # Welch-Satterthwaite degrees of freedom.
        df = variance ** 2 / ((v_base ** 2 / (base.n - 1) if v_base else 0) + (v_now ** 2 / (now.n - 1) if v_now else 0))
        return t_quantile(0.5 + confidence / 2, df) * math.sqrt(variance)
    if base.n == 1 and now.n == 1:
        return math.inf  # no spread known on either side: nothing can be concluded
    # One side has one round: the other side's spread stands for both (prediction interval).
    known = base if base.n > 1 else now
    scale = known.log_sd * math.sqrt(1 / base.n + 1 / now.n)
    return t_quantile(0.5 + confidence / 2, known.n - 1) * scale


@functools.lru_cache(maxsize=256)
def t_quantile(p: float, df: float) -> float:
    """Quantile of Student's t with ``df`` degrees of freedom (``p`` in (0.5, 1)); scipy's, cached."""
    if df <= 0:
        raise ValueError(f"degrees of freedom must be > 0, got {df}")
    from scipy import stats  # about 0.3 s to import: only when a gate judges rounds

    return float(stats.t.ppf(p, df))
