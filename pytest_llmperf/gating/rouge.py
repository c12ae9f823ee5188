"""ROUGE gates from a profile.

Two kinds of limits, chosen by the profile's ``[rouge]`` table:

* ``mode = "target"`` (the mlperf-* profiles): rouge1/2/L >= ``fraction`` x the
  published ``reference``; tokens per sample within
  ``tokens_per_sample_range`` x ``tokens_per_sample`` when that is set;
* ``mode = "baseline"`` (embedded): each score may drop at most
  ``tolerance_points`` below the recorded baseline; tokens per sample stays
  within the same relative band around its baseline.

Finished accuracy runs to score again are found by ``loadgen.run_folders``.
"""

from __future__ import annotations

from .baselines import Tolerance
from .limits import Limit
from ..config.profiles import ROUGE_SCORES
from ..metrics.rouge import RougeResult

GATED = ("rouge1", "rouge2", "rougeL")
SCORES = ROUGE_SCORES
UNIT = "points"
PROFILE_FLAG = "--llmperf-profile"


def target_limits(profile) -> dict[str, Limit]:
    """``mode = "target"``: score >= fraction x reference, for each published reference."""
    section = profile.rouge
    return {name: Limit.at_least(section.fraction * reference, reference=reference,
                                 source=f"{profile.name}: {section.fraction:g} x {reference:g}", flag=PROFILE_FLAG)
            for name, reference in section.reference.items()}


def tokens_per_sample_limit(profile) -> Limit | None:
    """The band around the profile's reference tokens per sample, or None when not gated."""
    section = profile.rouge
    if section.tokens_per_sample <= 0:
        return None
    low, high = section.tokens_per_sample_range
    reference = section.tokens_per_sample
    return Limit(low * reference, high * reference, reference,
                 f"{profile.name}: {low:g}..{high:g} x {reference:g}", PROFILE_FLAG)


def record(check, profile, result: RougeResult, *, prefix: str = "rouge", expected_samples: int | None = None) -> None:
    """Record every number of ``result`` on ``check`` and gate it as the profile says.

    Baseline mode gates on the baseline of the engine ``check`` is bound to; a
    checker without a baseline key (a run judged from its files) only records
    the values.  ``expected_samples``: an accuracy run must answer every sample once.
    """
    baseline_key = check.baseline_key
    extra = {"sentence_splitter": result.splitter}
    section = profile.rouge
    targets = target_limits(profile) if section.mode == "target" else {}
    for name in SCORES:
        value = getattr(result, name)
        metric = f"{prefix}.{name}"
        if name in targets:
            check.against(metric, value, UNIT, True, targets[name], extra=extra)
        elif section.mode == "baseline" and baseline_key is not None and name in GATED:
            check.against_baseline(metric, value, UNIT, True, Tolerance(absolute=section.tolerance_points), extra=extra)
        else:
            check.info(metric, value, UNIT, True, extra=extra)

    band = tokens_per_sample_limit(profile)
    metric = f"{prefix}.tokens_per_sample"
    if band is not None:
        check.against(metric, result.tokens_per_sample, "tokens", None, band)
    elif section.mode == "baseline" and baseline_key is not None:
        low, high = section.tokens_per_sample_range
        check.against_baseline(metric, result.tokens_per_sample, "tokens", None,
                               Tolerance(relative=max(1 - low, high - 1)))
    else:
        check.info(metric, result.tokens_per_sample, "tokens", None)
    check.info(f"{prefix}.gen_num", result.gen_num, "samples", None)
    check.info(f"{prefix}.gen_len", result.gen_len, "characters", None)
    check.info(f"{prefix}.gen_tok_len", result.gen_tok_len, "tokens", None)
    if expected_samples is not None and result.gen_num != expected_samples:
        check.fail(f"{prefix}: the accuracy log answers {result.gen_num} of {expected_samples} samples; "
                   "an AccuracyOnly run must answer every sample once")
