"""The engine contract, checked the same way on every engine, each one real.

transformers and vLLM run in process; openai talks to a real ``vllm serve``;
llm-serving talks to a loopback server of that protocol backed by the
transformers engine (no real llm-serving runs here).
"""

from __future__ import annotations

import numpy as np
import pytest

from pytest_llmperf.datasets.chat import chat_prompt_ids
from pytest_llmperf.engines import GenerationParams
from pytest_llmperf.errors import EngineError

#: The engines every property is checked on; those that start vLLM or a server are slow.
ENGINE_FIXTURES = ("hf_engine", pytest.param("vllm_engine", marks=pytest.mark.slow),
                   pytest.param("openai_engine", marks=pytest.mark.slow),
                   pytest.param("llm_serving_engine", marks=pytest.mark.slow))
QUESTIONS = (
    "What is 2+2? Answer with one number.",
    "Write a haiku about rain.",
    "Name the capital of France.",
    "Explain photosynthesis in two sentences.",
)


@pytest.fixture(scope="session", params=ENGINE_FIXTURES)
def engine(request):
    return request.getfixturevalue(request.param)


@pytest.fixture(scope="session")
def prompts(tokenizer):
    return [chat_prompt_ids(tokenizer, q) for q in QUESTIONS]


def _scores(engine, prompt, path):
    """log P rows of ``path`` under ``score_path``; skips where the protocol has no scores (checked elsewhere)."""
    try:
        scored = engine.score_path(prompt, path)
    except EngineError as exc:
        assert engine.info.engine == "llm-serving", str(exc)
        pytest.skip(f"{engine.info.engine} has no log-probability API ({exc})")
    values = scored.values.astype(np.float64)
    if scored.space == "logits":
        values = values - np.logaddexp.reduce(values, axis=-1, keepdims=True)
    return values


def test_greedy_output_is_identical_twice(engine, prompts):
    params = GenerationParams(max_new_tokens=24)
    first = engine.generate(prompts, params)
    second = engine.generate(prompts, params)
    assert [g.token_ids for g in first] == [g.token_ids for g in second]


def test_eos_at_most_once_and_only_last(engine, prompts):
    params = GenerationParams(max_new_tokens=48)
    for generation in engine.generate(prompts, params):
        ids = generation.token_ids
        eos_positions = [i for i, token in enumerate(ids) if token in engine.eos_token_ids]
        assert len(eos_positions) <= 1
        if eos_positions:
            assert eos_positions == [len(ids) - 1] and generation.finish_reason == "eos"
        else:
            assert generation.finish_reason == "length" and len(ids) == params.max_new_tokens
        assert len(generation.token_times) == len(ids)


def test_min_new_tokens_holds_eos_back(engine, prompts):
    params = GenerationParams(max_new_tokens=40, min_new_tokens=40)
    for generation in engine.generate(prompts[:2], params):
        assert len(generation.token_ids) == 40
        assert not set(generation.token_ids[:-1]) & engine.eos_token_ids


def test_batched_equals_unbatched(engine, prompts):
    params = GenerationParams(max_new_tokens=24)
    batched = engine.generate(prompts, params)
    one_by_one = [engine.generate([prompt], params)[0] for prompt in prompts]
    assert [g.token_ids for g in batched] == [g.token_ids for g in one_by_one]


def test_on_token_reports_every_token_once_in_order(engine, prompts):
    seen: dict[int, list[tuple[int, float]]] = {}
    generations = engine.generate(prompts, GenerationParams(max_new_tokens=16),
                                  on_token=lambda index, token, now: seen.setdefault(index, []).append((token, now)))
    for index, generation in enumerate(generations):
        reported = seen.get(index, [])
        assert tuple(token for token, _ in reported) == generation.token_ids
        assert tuple(now for _, now in reported) == generation.token_times
        assert generation.start_time <= generation.token_times[0]
        assert list(generation.token_times) == sorted(generation.token_times)


def test_loglikelihood_agrees_with_score_path(engine, prompts):
    prompt = prompts[2]
    (generation,) = engine.generate([prompt], GenerationParams(max_new_tokens=6, min_new_tokens=6))
    greedy_path = list(generation.token_ids[:5])
    other_path = [greedy_path[0], 1000, 2000]
    rows = {tuple(path): _scores(engine, prompt, path) for path in (greedy_path, other_path)}
    results = engine.loglikelihood([(prompt, greedy_path), (prompt, other_path)])
    for path, (total, is_greedy) in zip((greedy_path, other_path), results):
        values = rows[tuple(path)]
        expected = sum(values[i, token] for i, token in enumerate(path))
        assert total == pytest.approx(expected, abs=2e-3 * len(path))
        assert is_greedy == all(values[i].argmax() == token for i, token in enumerate(path))
    assert results[0][1] and not results[1][1]


def test_one_token_continuations_agree_with_longer_paths(engine, prompts):
    """MMLU's case, several one-token continuations of one context, may take a shorter route (vLLM reads
    the next token's log-probs, the openai engine the top-k after the context, instead of prompt
    log-probs): same numbers as a two-token path, on either route (1000, 2000, 30000 are not top-k)."""
    prompt = prompts[0]
    (generation,) = engine.generate([prompt], GenerationParams(max_new_tokens=2, min_new_tokens=2))
    greedy = generation.token_ids[0]
    candidates = [greedy, 1000, 2000, 30000]
    first_rows = {token: _scores(engine, prompt, [token, generation.token_ids[1]])[0] for token in candidates}
    results = engine.loglikelihood([(prompt, [token]) for token in candidates])
    for token, (total, is_greedy) in zip(candidates, results):
        first_row = first_rows[token]
        assert total == pytest.approx(first_row[token], abs=2e-3)
        assert is_greedy == (token == greedy)
        alone = _scores(engine, prompt, [token])[0]
        assert alone[token] == pytest.approx(first_row[token], abs=2e-3)
        assert int(alone.argmax()) == greedy


def test_generated_tokens_are_the_best_scored(engine, prompts):
    """Decoding and teacher-forced scoring agree: each generated token is (within rounding) the argmax."""
    prompt = prompts[3]
    (generation,) = engine.generate([prompt], GenerationParams(max_new_tokens=8, min_new_tokens=8))
    values = _scores(engine, prompt, list(generation.token_ids))
    for position, token in enumerate(generation.token_ids):
        assert values[position].max() - values[position, token] < 0.05, f"position {position}"


def test_scoring_is_refused_clearly_where_the_protocol_has_none(engine, prompts):
    if engine.info.engine != "llm-serving":
        pytest.skip("this engine scores")
    with pytest.raises(EngineError, match=engine.endpoint):
        engine.score_path(prompts[0], [1, 2])
