"""The MMLU gate: accuracy against the profile's published target, or against the engine's baseline
within ``[mmlu] tolerance_points`` (scoring is ``metrics.mmlu``)."""

from __future__ import annotations

from typing import Any

from ..metrics.mmlu import UNIT, MmluScore, metric_name
from .baselines import Tolerance
from .limits import Limit

PROFILE_FLAG = "--llmperf-profile"


def target_limit(profile) -> Limit | None:
    """The published accuracy to reach (``mmlu.target_accuracy``), or None for baseline mode."""
    target = profile.mmlu.target_accuracy
    if target <= 0:
        return None
    return Limit.at_least(100.0 * target, reference=100.0 * target,
                          source=f"{profile.name}: mmlu.target_accuracy = {target:g}", flag=PROFILE_FLAG)


def record(check, profile, result: MmluScore, *, extra: dict[str, Any] | None = None) -> None:
    """Gate ``result`` on the profile's target, or on the bound engine's baseline within ``tolerance_points``."""
    name = metric_name(result.mode)
    extra = {"mode": result.mode, "correct": result.correct, "questions": result.total,
             "per_subject": result.per_subject, **(extra or {})}
    limit = target_limit(profile)
    if limit is not None:
        check.against(name, result.accuracy, UNIT, True, limit, extra=extra)
    else:
        check.against_baseline(name, result.accuracy, UNIT, True, Tolerance(absolute=profile.mmlu.tolerance_points),
                               extra=extra)
