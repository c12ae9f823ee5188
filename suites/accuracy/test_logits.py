"""Logits of the first K generated positions against ``.npy`` baselines.

``--llmperf-update-baselines`` generates K greedy tokens per prompt, scores
that path and stages one float32 ``.npy`` per prompt plus ``manifest.json``
(written under the baseline key's folder only if the whole run passes).  A
normal run scores the recorded path teacher-forced and compares with
``np.allclose`` (``[logits] atol, rtol`` in the profile).  ``[logits]
reference`` compares with another folder instead; an engine without logits of
its own (vLLM, OpenAI: log-probabilities only) is compared with the transformers
engine's logits of the same model and hardware.
"""

import dataclasses
from pathlib import Path

import pytest
from logits_prompts import logits_prompts

from pytest_llmperf.baselines import UPDATE_FLAG, Tolerance
from pytest_llmperf.errors import LlmperfError
from pytest_llmperf.metrics import logits
from pytest_llmperf.results import git_commit


def test_logits_match_baseline(llmperf_engine, llmperf_session, llmperf_profile, llmperf_check, request):
    session, section, engine = llmperf_session, llmperf_profile.logits, llmperf_engine
    logits.check_section(llmperf_profile)
    prompts = logits_prompts(session.tokenizer, section.prompts, llmperf_profile.source or llmperf_profile.name)
    key = session.baseline_key(engine)
    relative = key.arrays_dir(Path()) / logits.FOLDER
    folder = session.baselines.root / (section.reference or relative)
    if not section.reference and engine.info.engine != "transformers" and not (folder / logits.MANIFEST).exists():
        # Engines that expose only log-probabilities cannot record logits of their own:
        # compare them with the transformers engine's logits of the same model and hardware.
        for dtype in dict.fromkeys((key.dtype, "float32")):
            candidate = dataclasses.replace(key, engine="transformers", dtype=dtype).arrays_dir(Path()) / logits.FOLDER
            if (session.baselines.root / candidate / logits.MANIFEST).exists():
                folder = session.baselines.root / candidate
                break
    engine_key = llmperf_check.engine(engine)
    command = f"pytest {request.node.nodeid.split('[')[0]} -m {engine.info.device} {UPDATE_FLAG}"

    if session.settings.update_baselines and not section.reference:
        out = session.test_dir(request.node.nodeid) / logits.FOLDER
        try:
            with session.timed("score"):
                manifest = logits.record(engine, prompts, section.positions, out, git_commit())
        except logits.LogprobsOnly as exc:
            pytest.skip(str(exc))  # recording the other suites' baselines must not hinge on it
        names = [logits.MANIFEST] + [entry["file"] for entry in manifest["prompts"]]
        llmperf_check.stage_baseline(key, "logits.baseline_prompts", len(prompts), "prompts", None, Tolerance(),
                                     files={str(relative / name): str(out / name) for name in names})
        llmperf_check.info("logits.baseline_prompts", len(prompts), "prompts", engine=engine_key,
                           extra={"folder": str(folder), "positions": section.positions, "staged_from": str(out)})
        llmperf_check.verify()
        return

    fix = ("set [logits] reference to a recorded folder" if section.reference
           else f"record it again with: {command}")
    try:
        baseline = logits.LogitsBaseline.read(folder, fix)
        with session.timed("score"):
            results = logits.check(engine, baseline, prompts, section.positions, section.atol, section.rtol, fix)
    except FileNotFoundError:
        where = f"{folder / logits.MANIFEST}"
        llmperf_check.fail(f"logits: no baseline in {where}; " + (
            f"fix [logits] reference = {section.reference!r} in {llmperf_profile.source or llmperf_profile.name}"
            if section.reference else
            f"record one with: {command} (or set [logits] reference to another engine's logits folder)"))
    except LlmperfError as exc:
        llmperf_check.fail(f"logits: {exc}")
    else:
        logits.gate(llmperf_check, llmperf_profile, results, engine=engine_key)
    llmperf_check.verify()
