"""The transformers engine on the real embedded model (CPU, float32)."""

import numpy as np
import pytest

from pytest_llmperf.datasets.chat import chat_prompt_ids
from pytest_llmperf.engines import GenerationParams
from pytest_llmperf.engines.transformers_engine import length_sorted_batches

QUESTIONS = ("What is the capital of France?", "Name three colours.", "Say hello.",
             "Write a long story about a dragon who learns to bake bread in a small village.")


@pytest.fixture(scope="module")
def prompts(tokenizer):
    return [chat_prompt_ids(tokenizer, q) for q in QUESTIONS]


@pytest.fixture(scope="module")
def batched(hf_engine, prompts):
    return hf_engine.generate(prompts, GenerationParams(max_new_tokens=24))


def test_greedy_output_is_identical_twice(hf_engine, prompts, batched):
    again = hf_engine.generate(prompts, GenerationParams(max_new_tokens=24))
    assert [g.token_ids for g in again] == [g.token_ids for g in batched]


def test_eos_appears_at_most_once_and_only_at_the_end(hf_engine, batched):
    eos = hf_engine.eos_token_ids
    assert any(g.finish_reason == "eos" for g in batched), "the short answers should end with EOS"
    for g in batched:
        positions = [i for i, t in enumerate(g.token_ids) if t in eos]
        assert positions == ([len(g.token_ids) - 1] if g.finish_reason == "eos" else [])
        assert 1 <= len(g.token_ids) <= 24


def test_batched_output_equals_unbatched_output(hf_engine, prompts, batched):
    single = [hf_engine.generate([p], GenerationParams(max_new_tokens=24))[0] for p in prompts]
    assert [g.token_ids for g in single] == [g.token_ids for g in batched]


def test_padding_is_never_returned(hf_engine, prompts, batched):
    # prompts of different lengths share a batch: left padding must not leak into outputs
    assert len({len(p) for p in prompts}) > 1
    for g in batched:
        assert len(g.token_times) == len(g.token_ids)


def test_timestamps_are_ordered_and_on_token_reports_every_token(hf_engine, prompts):
    seen = {}
    gens = hf_engine.generate(prompts[:2], GenerationParams(max_new_tokens=8),
                              on_token=lambda i, tok, t: seen.setdefault(i, []).append((tok, t)))
    for index, g in enumerate(gens):
        assert [tok for tok, _ in seen[index]] == list(g.token_ids)
        assert list(g.token_times) == sorted(g.token_times)
        assert g.start_time <= g.token_times[0]
        assert g.time_to_first_token > 0


def test_min_new_tokens_suppresses_early_eos(hf_engine, prompts):
    (g,) = hf_engine.generate([prompts[2]], GenerationParams(max_new_tokens=40, min_new_tokens=40))
    assert len(g.token_ids) == 40


def test_loglikelihood_agrees_with_the_logits(hf_engine, prompts, batched):
    path = batched[0].token_ids[:6]
    scored = hf_engine.score_path(prompts[0], path)
    assert scored.values.shape == (len(path), 49152) and scored.space == "logits"
    logits = scored.values.astype(np.float64)
    log_softmax = logits - np.log(np.exp(logits - logits.max(-1, keepdims=True)).sum(-1, keepdims=True)) - logits.max(-1, keepdims=True)
    expected = float(sum(log_softmax[i, t] for i, t in enumerate(path)))
    ((total, greedy),) = hf_engine.loglikelihood([(prompts[0], path)])
    assert total == pytest.approx(expected, abs=1e-3)
    assert greedy, "the greedy path must be greedy under its own scores"
    ((other, other_greedy),) = hf_engine.loglikelihood([(prompts[0], [path[0] + 1])])
    assert other < expected and not other_greedy


def test_length_sorted_batches_group_similar_lengths():
    batches = length_sorted_batches([5, 100, 7, 98, 6, 99], 3)
    assert batches == [[1, 5, 3], [2, 4, 0]]


def test_single_token_continuations_share_one_pass_and_agree_with_separate_calls(hf_engine, prompts, batched):
    context = prompts[0]
    requests = [(context, [330]), (context, [49]), (context, list(batched[0].token_ids[:3])), (prompts[1], [330])]
    together = hf_engine.loglikelihood(requests)
    alone = [hf_engine.loglikelihood([r])[0] for r in requests]
    for (a, ga), (b, gb) in zip(together, alone):
        assert a == pytest.approx(b, abs=1e-3) and ga == gb
