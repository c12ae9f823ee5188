"""Scoring a suite's evidence and gating it on the test's checker (judged when the test returns):
ROUGE of an accuracy log, two engines' agreement, MFU/MBU, and the logits gate."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Sequence

import pytest

from ..engines import Engine
from ..engines.base import optional
from ..errors import LlmperfError
from ..gating.baselines import UPDATE_FLAG, Tolerance
from ..gating.checker import Checker
from ..loadgen import LoadgenRun, read_accuracy_log
from ..loadgen.run_folders import AccuracyRun
from ..metrics.rouge import RougeResult
from ..harness.session import LlmperfSession
from .engines import require_capability, skip_weightless
from .runs import openorca_dataset, tokenizer_of


def score_rouge(session: LlmperfSession, log: Path, references: Sequence[str], tokenizer=None,
                dtype: str = "int32") -> RougeResult:
    """ROUGE of an accuracy log, exactly as MLPerf's evaluate-accuracy.py scores it (timed as scoring)."""
    from ..metrics import rouge

    with session.timed("score"):
        return rouge.score_accuracy_log(read_accuracy_log(log, dtype), references, tokenizer or session.tokenizer,
                                        log_path=log)


def score_finished_run(session: LlmperfSession, run: AccuracyRun) -> tuple[RougeResult, int]:
    """ROUGE of a finished accuracy run, with the dataset and tokenizer its run.json names
    (else the profile's and the model's); returns the result and the dataset's size."""
    tokenizer = tokenizer_of(session, run.tokenizer)
    samples = run.samples if run.dataset else None
    dataset = openorca_dataset(session, run.dataset, samples, tokenizer)
    return score_rouge(session, run.accuracy_log, dataset.references, tokenizer, run.dtype), len(dataset)


def compare_outputs(session: LlmperfSession, reference: Engine, candidate: Engine, prompts, outputs_a, outputs_b,
                    top_k: int):
    """vLLM's agreement rule over two engines' outputs (``metrics.agreement.compare``), timed as scoring."""
    from ..metrics.agreement import compare

    with session.timed("score"):
        return compare(reference, candidate, prompts, outputs_a, outputs_b, top_k=top_k)


def record_utilization(check: Checker, session: LlmperfSession, engine: Engine, prefix: str,
                       tokens_per_second: float | None, steps_per_second: float | None,
                       run: LoadgenRun | None = None) -> dict:
    """Record ``<prefix>.mfu`` and ``<prefix>.mbu`` (None, "n/a", where no peak is known); return them.

    With the LoadGen ``run``, MBU adds the KV-cache bytes its generated tokens read (positions
    attended to x the model's KV bytes per position)."""
    from ..metrics.utilization import kv_bytes_per_position, utilization
    from ..models import parameter_count

    parameters = session.shared(("parameter-count", str(session.model.path)), lambda: parameter_count(session.model))
    kv_per_second = None
    if run is not None and tokens_per_second and run.stats.tokens:
        config = json.loads((session.model.path / "config.json").read_text(encoding="utf-8"))
        per_position = kv_bytes_per_position(config, engine.info.dtype, optional(engine, "kv_cache_dtype", "auto"))
        if per_position is not None:
            kv_per_second = run.stats.kv_positions_read * per_position * tokens_per_second / run.stats.tokens
    quantization = (getattr(engine.info, "key_options", None) or {}).get("quantization")
    found = utilization(engine.info.device_name, parameters, engine.info.dtype, tokens_per_second, steps_per_second,
                        kv_per_second, quantization=quantization)
    extra = found.extra()
    if session.model.shape:
        extra["model_shape"] = (f"shape:{session.model.shape}: the real architecture with the embedded tokenizer's "
                                "vocabulary (49,152) and random weights; parameters counted with that vocabulary")
    check.info(f"{prefix}.mfu", found.mfu, "ratio", True, extra=extra)
    check.info(f"{prefix}.mbu", found.mbu, "ratio", True, extra=extra)
    return {"mfu": found.mfu, "mbu": found.mbu, "utilization_note": found.note}


def logits_baseline_folder(session: LlmperfSession, engine: Engine) -> tuple[Path, Path]:
    """(folder to compare with, folder relative to the baselines root this engine records into).

    ``[logits] reference`` wins; else the engine's own folder; an engine that returns only
    log-probabilities (vLLM, openai) and has none falls back to the transformers engine's
    logits of the same model and hardware (its dtype, else float32)."""
    from ..gating.logits import FOLDER, MANIFEST

    root, section, key = session.baselines.root, session.profile.logits, session.baseline_key(engine)
    relative = key.arrays_dir(Path()) / FOLDER
    if section.reference:
        return root / section.reference, relative
    if engine.info.engine != "transformers" and not (root / relative / MANIFEST).exists():
        for dtype in dict.fromkeys((key.dtype, "float32")):
            candidate = dataclasses.replace(key, engine="transformers", dtype=dtype).arrays_dir(Path()) / FOLDER
            if (root / candidate / MANIFEST).exists():
                return root / candidate, relative
    return root / relative, relative


def gate_logits(check: Checker, session: LlmperfSession, engine: Engine, prompts: Sequence, nodeid: str) -> None:
    """Under ``--llmperf-update-baselines`` stage the logits of ``prompts`` as the new baseline; else
    compare them with the baseline (``np.allclose`` with the profile's ``[logits] atol, rtol``)."""
    skip_weightless(session)
    require_capability(engine, "prompt_logprobs", "the logits suite")
    from ..gating import logits
    from ..runtime.results import git_commit

    profile, section = session.profile, session.profile.logits
    folder, relative = logits_baseline_folder(session, engine)
    command = f"pytest {nodeid.split('[')[0]} -m {engine.info.device} {UPDATE_FLAG}"
    if session.settings.update_baselines and not section.reference:
        out = session.test_dir(nodeid) / logits.FOLDER
        try:
            with session.timed("score"):
                manifest = logits.record(engine, prompts, section.positions, out, git_commit())
        except logits.LogprobsOnly as exc:
            pytest.skip(str(exc))  # recording the other suites' baselines must not hinge on it
        names = [logits.MANIFEST] + [entry["file"] for entry in manifest["prompts"]]
        check.stage_baseline("logits.baseline_prompts", len(prompts), "prompts", None, Tolerance(),
                             files={str(relative / name): str(out / name) for name in names})
        check.info("logits.baseline_prompts", len(prompts), "prompts",
                   extra={"folder": str(folder), "positions": section.positions, "staged_from": str(out)})
        return
    where = profile.source or profile.name
    fix = "set [logits] reference to a recorded folder" if section.reference else f"record it again with: {command}"
    try:
        baseline = logits.LogitsBaseline.read(folder, fix)
        with session.timed("score"):
            results = logits.check(engine, baseline, prompts, section.positions, section.atol, section.rtol, fix)
    except FileNotFoundError:
        if section.reference:  # a folder named on purpose that is not there: the profile is wrong
            check.fail(f"logits: no baseline in {folder / logits.MANIFEST}; "
                       f"fix [logits] reference = {section.reference!r} in {where}")
        else:
            check.no_baseline("logits", None, "", None, f"no baseline in {folder / logits.MANIFEST}",
                              command=f"{command} (or set [logits] reference to another engine's logits folder)")
    except LlmperfError as exc:
        check.fail(f"logits: {exc}")
    else:
        logits.gate(check, profile, results)


# -- paired A/B: the reference side scored on the same items ---------------------------------------

def compare_mmlu(check: Checker, session: LlmperfSession, engine: Engine, mode: str, found) -> None:
    """Under ``--llmperf-compare``: the reference engine answers the same MMLU questions and the two
    sides are compared question by question (McNemar's exact test); ``mmlu.accuracy.<mode>.vs_reference``
    (accuracy points, this side minus the reference) is REGRESSED beyond ``[mmlu] tolerance_points``.
    Without ``--llmperf-compare`` nothing happens."""
    if session.settings.compare is None:
        return
    from ..gating.paired import mcnemar_exact
    from .runs import mmlu_predictions

    reference = session.reference_for(engine)
    theirs = mmlu_predictions(session, reference, mode)
    if [p.origin for p in theirs.predictions] != [p.origin for p in found.predictions]:
        check.fail("MMLU: the reference was asked other questions than this side; both sides must use one profile")
        return
    paired = mcnemar_exact([p.correct for p in theirs.predictions], [p.correct for p in found.predictions])
    points = dataclasses.replace(paired, reference=100 * paired.reference, current=100 * paired.current,
                                 difference=100 * paired.difference, low=100 * paired.low, high=100 * paired.high)
    profile = session.profile
    check.paired_accuracy(f"mmlu.accuracy.{mode}.vs_reference", points, "points", profile.mmlu.tolerance_points,
                          session.reference_setup(reference),
                          setting=f"{profile.source or profile.name}: mmlu.tolerance_points")


def compare_rouge(check: Checker, session: LlmperfSession, engine: Engine, target_id: str, nodeid: str,
                  result: RougeResult) -> None:
    """Under ``--llmperf-compare``: the reference engine's own accuracy run over the same samples, and the
    two sides' per-sample ROUGE compared by a paired bootstrap; ``rouge.<score>.vs_reference`` (ROUGE
    points, this side minus the reference) for rouge1, rouge2 and rougeL (the scores MLPerf gates) is
    REGRESSED beyond ``[rouge] tolerance_points``.
    Without ``--llmperf-compare`` nothing happens."""
    if session.settings.compare is None:
        return
    from ..gating.paired import paired_bootstrap
    from ..config.profiles import ROUGE_SCORES
    from .runs import accuracy_run

    reference = session.reference_for(engine)
    dataset = openorca_dataset(session)
    run = accuracy_run(session, reference, f"{target_id}-reference", nodeid).run
    theirs = score_rouge(session, run.accuracy_log, dataset.references)
    if len(theirs.per_sample) != len(result.per_sample) or not result.per_sample:
        check.fail(f"ROUGE: {len(theirs.per_sample)} samples scored on the reference, {len(result.per_sample)} "
                   "here; both sides must answer every sample (see the accuracy logs)")
        return
    profile, setup = session.profile, session.reference_setup(reference)
    for index, score in enumerate(ROUGE_SCORES[:3]):  # rougeLsum: reported, not gated
        paired = paired_bootstrap([100 * s[index] for s in theirs.per_sample],
                                  [100 * s[index] for s in result.per_sample])
        check.paired_accuracy(f"rouge.{score}.vs_reference", paired, "points", profile.rouge.tolerance_points, setup,
                              setting=f"{profile.source or profile.name}: rouge.tolerance_points")

