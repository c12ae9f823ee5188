"""The MindSpore llm-serving engine, against loopback servers.

No real llm-serving runs here: ``loopback/llm_serving_server.py`` speaks its
protocol and generates with the real transformers engine, so what these tests
show is that the adapter speaks the protocol and reports the same tokens the
model produced.  Its faults, with the openai engine's, are in test_http_faults.py.
"""

from __future__ import annotations

import pytest

from pytest_llmperf.datasets.chat import chat_prompt_ids
from pytest_llmperf.engines import EngineOptions, GenerationParams, load_engine
from pytest_llmperf.errors import EngineError, UsageError

QUESTIONS = ("What is 2+2?", "Name three colors.", "Why is the sky blue?")


def options(checkpoint, endpoint, **settings) -> EngineOptions:
    return EngineOptions(str(checkpoint.path), checkpoint.name, "cpu", endpoint=endpoint, settings=settings)


@pytest.fixture
def prompt(tokenizer):
    return chat_prompt_ids(tokenizer, "Say hello.")


def test_no_endpoint_is_a_usage_error(embedded_model):
    with pytest.raises(UsageError, match="--llmperf-endpoint"):
        load_engine("llm-serving", options(embedded_model, None))


@pytest.mark.slow
def test_unknown_setting_is_a_usage_error(embedded_model, faulty_server):
    with pytest.raises(UsageError, match=r"\[engine.llm-serving\] max_tokens"):
        load_engine("llm-serving", options(embedded_model, f"{faulty_server}/truncated", max_tokens=3))


@pytest.mark.slow
def test_streams_the_tokens_the_model_generates(llm_serving_engine, hf_engine, tokenizer):
    prompts = [chat_prompt_ids(tokenizer, q) for q in QUESTIONS]
    params = GenerationParams(max_new_tokens=24)
    served = llm_serving_engine.generate(prompts, params)
    direct = hf_engine.generate(prompts, params)
    assert [g.token_ids for g in served] == [g.token_ids for g in direct]
    assert [g.finish_reason for g in served] == [g.finish_reason for g in direct]
    for generation in served:
        assert generation.start_time < generation.token_times[0]
        assert list(generation.token_times) == sorted(generation.token_times)


@pytest.mark.slow
def test_non_streaming_generate_gives_the_same_tokens(embedded_model, llm_serving_server, llm_serving_engine, prompt):
    engine = load_engine("llm-serving", options(embedded_model, llm_serving_server.base_url, stream=False))
    try:
        params = GenerationParams(max_new_tokens=12)
        assert engine.generate([prompt], params)[0].token_ids == llm_serving_engine.generate([prompt], params)[0].token_ids
        assert any("non-streaming" in note for note in engine.info.notes)
    finally:
        engine.close()


@pytest.mark.slow
def test_scoring_is_refused_with_the_endpoint_named(llm_serving_engine, prompt):
    with pytest.raises(EngineError, match=rf"{llm_serving_engine.endpoint}: .*no log-probabilities"):
        llm_serving_engine.score_path(prompt, [1])
    with pytest.raises(EngineError, match="loglikelihood"):
        llm_serving_engine.loglikelihood([(prompt, [1])])


@pytest.mark.slow
def test_wrong_model_route_is_an_http_404_naming_the_url(embedded_model, llm_serving_server):
    with pytest.raises(EngineError, match=r"/models/llama3/generate: HTTP 404 .*no model 'llama3'"):
        load_engine("llm-serving", options(embedded_model, llm_serving_server.base_url, model="llama3"))


