"""ROUGE gates from a profile, and finished accuracy runs to score again.

Two kinds of limits, chosen by the profile's ``[rouge]`` table:

* ``mode = "target"`` (the mlperf-* profiles): rouge1/2/L >= ``fraction`` x the
  published ``reference``; tokens per sample within
  ``tokens_per_sample_range`` x ``tokens_per_sample`` when that is set;
* ``mode = "baseline"`` (embedded): each score may drop at most
  ``tolerance_points`` below the recorded baseline; tokens per sample stays
  within the same relative band around its baseline.

An accuracy run is a folder holding ``mlperf_log_accuracy.json``; the ROUGE
suite also writes ``run.json`` whose metadata says which dataset, how many
samples, which tokenizer and which element type made it, so the compliance
suite (or a person) can score the same log again without guessing.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from ..baselines import BaselineKey, Tolerance
from ..errors import InputError, UsageError
from ..gates import Limit
from .rouge import RougeResult

#: run.json ``metadata.suite`` of runs written by suites/accuracy/test_rouge.py.
SUITE = "accuracy-rouge"
GATED = ("rouge1", "rouge2", "rougeL")
SCORES = GATED + ("rougeLsum",)
UNIT = "points"
PROFILE_FLAG = "--llmperf-profile"


def check_section(profile) -> None:
    """Reject a ``[rouge]`` table that cannot produce limits, naming the file and key."""
    section, where = profile.rouge, profile.source or profile.name
    if section.mode not in ("baseline", "target"):
        raise UsageError(f"{where}: rouge.mode = {section.mode!r}", "is not a ROUGE gating mode",
                         "use \"baseline\" (limits from baselines/) or \"target\" (reference x fraction)")
    unknown = sorted(set(section.reference) - set(SCORES))
    if unknown:
        raise UsageError(f"{where}: rouge.reference.{unknown[0]}", "is not a ROUGE score",
                         f"use keys among {', '.join(SCORES)}")
    if section.mode == "target" and not section.reference:
        raise UsageError(f"{where}: rouge.reference", "is empty while rouge.mode = \"target\"",
                         "give the published scores, e.g. reference = { rouge1 = 44.4312, rouge2 = 22.0352, "
                         "rougeL = 28.6162 }")
    band = section.tokens_per_sample_range
    if len(band) != 2 or not 0 <= band[0] <= band[1]:
        raise UsageError(f"{where}: rouge.tokens_per_sample_range = {band!r}", "is not a [low, high] pair of fractions",
                         "use e.g. [0.9, 1.1]")


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


def record(check, profile, result: RougeResult, *, prefix: str = "rouge", baseline_key: BaselineKey | None = None,
           engine: str | None = None, expected_samples: int | None = None) -> None:
    """Record every number of ``result`` on ``check`` and gate it as the profile says.

    ``baseline_key`` is needed in baseline mode (the engine's key); without it
    baseline mode only records the values.  ``expected_samples``: an accuracy
    run must answer every sample once.
    """
    check_section(profile)
    extra = {"sentence_splitter": result.splitter}
    section = profile.rouge
    targets = target_limits(profile) if section.mode == "target" else {}
    for name in SCORES:
        value = getattr(result, name)
        metric = f"{prefix}.{name}"
        if name in targets:
            check.against(metric, value, UNIT, True, targets[name], engine=engine, extra=extra)
        elif section.mode == "baseline" and baseline_key is not None and name in GATED:
            check.against_baseline(baseline_key, metric, value, UNIT, True,
                                   Tolerance(absolute=section.tolerance_points), engine=engine, extra=extra)
        else:
            check.info(metric, value, UNIT, True, engine=engine, extra=extra)

    band = tokens_per_sample_limit(profile)
    metric = f"{prefix}.tokens_per_sample"
    if band is not None:
        check.against(metric, result.tokens_per_sample, "tokens", None, band, engine=engine)
    elif section.mode == "baseline" and baseline_key is not None:
        low, high = section.tokens_per_sample_range
        check.against_baseline(baseline_key, metric, result.tokens_per_sample, "tokens", None,
                               Tolerance(relative=max(1 - low, high - 1)), engine=engine)
    else:
        check.info(metric, result.tokens_per_sample, "tokens", None, engine=engine)
    check.info(f"{prefix}.gen_num", result.gen_num, "samples", None, engine=engine)
    check.info(f"{prefix}.gen_len", result.gen_len, "characters", None, engine=engine)
    check.info(f"{prefix}.gen_tok_len", result.gen_tok_len, "tokens", None, engine=engine)
    if expected_samples is not None and result.gen_num != expected_samples:
        check.fail(f"{prefix}: the accuracy log answers {result.gen_num} of {expected_samples} samples; "
                   "an AccuracyOnly run must answer every sample once")


# -- finished accuracy runs ----------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class AccuracyRun:
    """A folder with an accuracy log, and what scoring it needs."""

    folder: Path
    """The run's folder (it holds mlperf_log_accuracy.json)."""
    dataset: str | None
    """OpenOrca source the prompts came from (``embedded`` or a path); None = ask the profile."""
    samples: int
    """How many dataset rows the run used (0 = all; unknown for a foreign folder)."""
    tokenizer: str | None
    """Checkpoint folder whose tokenizer decodes the log; None = the session's model."""
    dtype: str
    """Element type of the logged responses."""
    profile: str | None
    """The profile the run was made under, if known."""
    target: str | None = None
    """The (engine, device) item that made it, e.g. ``transformers-cpu``, if known."""


def read_accuracy_run(folder: str | Path) -> AccuracyRun:
    """A run folder: its run.json metadata where present, defaults otherwise."""
    from ..loadgen.accuracy_log import ACCURACY_LOG

    folder = Path(folder)
    if not (folder / ACCURACY_LOG).is_file():
        raise InputError(folder, f"holds no {ACCURACY_LOG}", "pass the folder of a LoadGen AccuracyOnly run")
    metadata: dict[str, Any] = {}
    run_file = folder / "run.json"
    if run_file.is_file():
        try:
            metadata = json.loads(run_file.read_text(encoding="utf-8")).get("metadata") or {}
        except (json.JSONDecodeError, AttributeError):
            raise InputError(run_file, "is not a run.json of pytest-llmperf", "remove it or re-run the test") from None
    return AccuracyRun(folder=folder, dataset=metadata.get("dataset"), samples=int(metadata.get("samples") or 0),
                       tokenizer=metadata.get("tokenizer"), dtype=str(metadata.get("dtype") or "int32"),
                       profile=metadata.get("profile"), target=metadata.get("target"))


def find_accuracy_runs(out_dir: str | Path) -> list[AccuracyRun]:
    """ROUGE runs the accuracy suite left under ``--llmperf-out`` (``runs/*/run.json``)."""
    runs = []
    for run_file in sorted(Path(out_dir).glob("runs/*/run.json")):
        try:
            data = json.loads(run_file.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            continue
        if (data.get("metadata") or {}).get("suite") == SUITE and data.get("finished"):
            runs.append(read_accuracy_run(run_file.parent))
    return runs
