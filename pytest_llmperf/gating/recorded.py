"""The verdict of a metric measured in rounds, reached the same way in the session and after it.

``against_entry`` is the one decision made from a metric's rounds and a baseline entry: NO BASELINE
(no entry, or one of another workload or calibration), the old tolerance rule (an entry of one value),
or ``rounds.judge_entry``'s PASS / FAIL / INCONCLUSIVE.  ``Checker.against_rounds`` makes it during
the session; ``llmperf report`` makes it again from results.json, where each such metric keeps in its
``extra`` what the verdict was made of: ``rounds`` (raw, normalized, calibration, contention, host),
``workload``, ``baseline_key`` and ``round_settings`` (the settings of one look: min effects,
confidence, ``max_contention``).  ``recorded_rounds`` reads those back.  Given the very baselines the
session used, the report therefore reaches the session's verdict.  Against an earlier run, that run's
rounds stand for the baseline entry (``run_entry``).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Literal

from ..runtime.results import Metric
from .baselines import baseline_entry, has_rounds, limit_from_entry, workload_differences
from .limits import Limit
from .noise import Judgement, RoundStats
from .rounds import RoundMetric, RoundSettings, comparable, judge_entry, normalize

OutcomeVerdict = Literal["pass", "fail", "inconclusive", "no_baseline", "tolerance"]


@dataclasses.dataclass(frozen=True)
class Outcome:
    """How a metric's rounds meet a baseline entry."""

    verdict: OutcomeVerdict
    """``judge_entry``'s verdict; ``no_baseline``; or ``tolerance``: an old entry of one value, judged by
    ``limit`` on the median of the raw rounds."""
    judgement: Judgement | None = None
    limit: Limit | None = None
    """For ``tolerance``: the entry's limit."""
    reason: str = ""
    """For ``no_baseline``: why there is nothing to be judged against."""
    reference: float | None = None
    """The baseline value shown beside the median: the baseline's raw median where raw values were judged,
    else its normalized median at this run's calibration (what the baseline engine would do here, now)."""
    source: str = ""
    """Where the baseline came from, its rounds and spread, and the min effect with the setting that sets it."""


def against_entry(entry: dict[str, Any] | None, rounds: dict[str, Any], metric: RoundMetric,
                  settings: RoundSettings, workload: dict[str, Any], where: str) -> Outcome:
    """This run's ``rounds`` against the baseline ``entry`` found in ``where`` (a file, a run)."""
    if entry is None:
        return Outcome("no_baseline", reason=f"no baseline in {where}")
    if not has_rounds(entry):
        return Outcome("tolerance", limit=limit_from_entry(entry, where))
    if not comparable(entry, workload, rounds["calibration_kind"]):
        differences = workload_differences(entry.get("workload") or {}, workload)
        if entry["rounds"].get("calibration_kind") != rounds["calibration_kind"]:
            differences.append(f"calibration {rounds['calibration_kind']!r} here, "
                               f"{entry['rounds'].get('calibration_kind')!r} in the baseline")
        return Outcome("no_baseline", reason=f"the baseline in {where} was measured under another workload "
                                             f"({'; '.join(differences)})")
    judgement = judge_entry(entry, rounds, metric, settings)
    base = entry["rounds"]
    rate = RoundStats.of(rounds["calibration"]).median
    if judgement.basis.startswith("raw"):
        raw = RoundStats.of(base["raw"])
        spread, reference = raw.log_sd, raw.median
    else:
        spread = base["log_sd"]
        reference = normalize(base["median"], 1 / rate, metric.higher_is_better) if rate else None
    higher = metric.higher_is_better
    source = (f"{where}: {len(base['normalized'])} rounds, spread {100 * spread:.1f}%; min effect "
              f"{100 * settings.min_effect(higher):g}% ({settings.source}: {settings.min_effect_key(higher)})")
    return Outcome(judgement.verdict, judgement, reference=reference, source=source)


@dataclasses.dataclass(frozen=True)
class RecordedRounds:
    """What results.json keeps of a metric judged in rounds: enough to judge it again."""

    metric: RoundMetric
    rounds: dict[str, Any]
    workload: dict[str, Any]
    settings: RoundSettings
    """The settings of one look, as the session judged with them."""


def usable_rounds(rounds: Any) -> bool:
    """A complete record of rounds: raw, normalized and calibration values, all positive and finite."""
    if not isinstance(rounds, dict) or not rounds.get("calibration_kind"):
        return False
    sides = [rounds.get(side) for side in ("raw", "normalized", "calibration")]
    return all(isinstance(values, list) and values and all(
        isinstance(v, (int, float)) and 0 < v < math.inf for v in values) for values in sides)


def recorded_rounds(metric: Metric) -> RecordedRounds | None:
    """The rounds and settings ``metric`` was judged with, or None: a metric not gated in rounds, one
    interrupted or not measured in every round (recorded as INFO), or one from before round settings
    were recorded."""
    extra = metric.extra
    settings = extra.get("round_settings")
    if metric.verdict == "info" or metric.higher_is_better is None or not isinstance(settings, dict):
        return None
    if not usable_rounds(extra.get("rounds")):
        return None
    known = {field.name for field in dataclasses.fields(RoundSettings)}
    return RecordedRounds(RoundMetric(metric.name, metric.unit, bool(metric.higher_is_better)), extra["rounds"],
                          dict(extra.get("workload") or {}),
                          RoundSettings(**{name: value for name, value in settings.items() if name in known}))


def run_entry(metric: Metric) -> dict[str, Any] | None:
    """An earlier run's metric as the baseline entry its rounds would have made
    (``llmperf baselines update`` writes the same), or None when it kept no complete rounds."""
    rounds = metric.extra.get("rounds")
    if metric.value is None or metric.verdict == "info" or not usable_rounds(rounds):
        return None
    return baseline_entry(metric.value, metric.unit, metric.higher_is_better, {}, {}, rounds=rounds,
                          workload=metric.extra.get("workload") or {}, min_effect=metric.extra.get("min_effect"))


def improved(judgement: Judgement) -> bool:
    """The whole interval lies beyond the minimum effect in the good direction."""
    if judgement.higher_is_better:
        return judgement.low > judgement.min_effect
    return judgement.high < -judgement.min_effect
