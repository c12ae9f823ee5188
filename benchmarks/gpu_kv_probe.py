"""The KV cache of a vLLM configuration: its capacity, the concurrency it allows, and how far an FP8
cache moves the log-probabilities of a bf16 one.

A pytest file run in the same session as the Offline suite, so that the engine starts once::

    pytest -m cuda suites/performance/test_offline.py benchmarks/gpu_kv_probe.py --llmperf-engine vllm \\
        --llmperf-model shape:llama-3.1-8b --llmperf-profile gpu-h200-kv-bf16
    LLMPERF_KV_REFERENCE=<the first run's out>/kv-probe.npz pytest ... --llmperf-profile gpu-h200-kv-fp8

Each run records ``kv.capacity_tokens`` and ``kv.max_concurrency`` (vLLM's own figures: the cache's
positions, and how many requests of ``max_model_len`` tokens fit) and writes ``kv-probe.npz`` under
``--llmperf-out``: the first ``[logits] prompts`` embedded prompts, greedy paths of ``[logits]
positions`` tokens and their teacher-forced top-20 log-probabilities.  With ``LLMPERF_KV_REFERENCE``
the same paths are scored again and compared: ``kv.logprob_max_abs_error`` (over the tokens both runs
rank in their top 20) is gated at the profile's ``[logits] atol``, and the top-1 agreement is reported.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from pytest_llmperf import kit

REFERENCE = "LLMPERF_KV_REFERENCE"


def cache_figures(engine) -> tuple[int | None, float | None]:
    """(positions the KV cache holds, requests of max_model_len it fits) from the engine's vLLM config."""
    config = getattr(getattr(engine, "_llm", None), "vllm_config", None)
    cache = getattr(config, "cache_config", None)
    blocks, block_size = getattr(cache, "num_gpu_blocks", None), getattr(cache, "block_size", None)
    if not blocks or not block_size:
        return None, None
    positions = int(blocks) * int(block_size)
    return positions, positions / int(config.model_config.max_model_len)


def test_kv_probe(llmperf_engine, llmperf_session, llmperf_check, request):
    engine, session = llmperf_engine, llmperf_session
    section = session.profile.logits
    positions, concurrency = cache_figures(engine)
    llmperf_check.info("kv.capacity_tokens", positions, "tokens", True,
                       extra={"kv_cache_dtype": getattr(engine, "kv_cache_dtype", "auto")})
    llmperf_check.info("kv.max_concurrency", concurrency, "requests", True,
                       extra={"note": "requests of max_model_len tokens the KV cache holds at once (vLLM's figure)"})

    table = kit.openorca_dataset(session)
    prompts = [list(p) for p in table.prompts[: section.prompts]]
    reference_file = os.environ.get(REFERENCE)
    if reference_file:
        reference = np.load(reference_file, allow_pickle=False)
        paths = [list(map(int, row)) for row in reference["paths"]]
    else:
        outputs = engine.generate(prompts, kit.GenerationParams(max_new_tokens=section.positions,
                                                                 min_new_tokens=section.positions))
        paths = [list(o.token_ids[: section.positions]) for o in outputs]
    scores = np.stack([engine.score_path(p, path).values for p, path in zip(prompts, paths)])
    out = session.test_dir(request.node.nodeid)
    np.savez(out / "kv-probe.npz", paths=np.asarray(paths, dtype=np.int64), scores=scores)
    if not reference_file:
        return
    expected = reference["scores"]
    both = np.isfinite(scores) & np.isfinite(expected)
    error = float(np.max(np.abs(scores[both] - expected[both]))) if both.any() else None
    top1 = float(np.mean(np.argmax(scores, axis=-1) == np.argmax(expected, axis=-1)))
    where = session.profile.source or session.profile.name
    limit = kit.Limit.at_most(section.atol, reference=None, source=f"{where}: logits.atol = {section.atol:g} "
                              f"against {reference_file}", flag="--llmperf-profile")
    llmperf_check.against("kv.logprob_max_abs_error", error, "logprob", False, limit,
                          extra={"compared": int(both.sum()), "reference": reference_file})
    llmperf_check.info("kv.top1_agreement", top1, "ratio", True)
    (out / "kv-probe.json").write_text(json.dumps({"max_abs_error": error, "top1_agreement": top1,
                                                   "compared": int(both.sum()), "capacity_tokens": positions,
                                                   "max_concurrency": concurrency}, indent=1))
