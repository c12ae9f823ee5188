"""An engine that returns only log-probabilities (vLLM) against the transformers engine's logits:
compared in log-softmax space over the entries it returned, and it cannot record logits itself."""

import pytest

from pytest_llmperf.datasets.chat import chat_prompt_ids
from pytest_llmperf.gating import logits


@pytest.fixture(scope="module")
def recorded(hf_engine, tokenizer, tmp_path_factory):
    folder = tmp_path_factory.mktemp("logits")
    prompts = [logits.LogitsPrompt(name, text, tuple(chat_prompt_ids(tokenizer, text)))
               for name, text in (("capital-japan", "What is the capital of Japan?"),
                                  ("haiku-autumn", "Write a haiku about autumn leaves."))]
    logits.record(hf_engine, prompts, 4, folder)
    return prompts, logits.LogitsBaseline.read(folder)


@pytest.mark.slow
def test_vllm_is_compared_in_log_softmax_space(vllm_engine, recorded):
    prompts, baseline = recorded
    for result in logits.check(vllm_engine, baseline, prompts, 4, atol=5e-3, rtol=1e-5):
        comparison = result.comparison
        assert comparison.space == "logprobs"
        assert 4 <= comparison.entries < 4 * 49152  # only what the engine returned
        assert comparison.nonfinite == 0
        assert comparison.top1_agreement == 1.0  # same weights, same greedy tokens
        assert comparison.max_abs_error < 0.05  # other kernels, same float32 model


@pytest.mark.slow
def test_vllm_cannot_record_logits(vllm_engine, recorded, tmp_path):
    prompts, _ = recorded
    with pytest.raises(logits.LogprobsOnly, match="returns logprobs, not logits.*reference"):
        logits.record(vllm_engine, prompts, 4, tmp_path)
