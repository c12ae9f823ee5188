"""The OpenAI-compatible HTTP engine: against a real ``vllm serve``, and against a server that misbehaves.

Every fault ends in one EngineError whose message names the endpoint and says
what went wrong.
"""

from __future__ import annotations

import pytest

from pytest_llmperf.datasets.chat import chat_prompt_ids
from pytest_llmperf.engines import EngineOptions, GenerationParams, load_engine
from pytest_llmperf.errors import EngineError, UsageError

QUESTIONS = ("What is 2+2?", "Write a poem about the sea.", "Name three colors.", "Why is the sky blue?")


def options(checkpoint, endpoint, **settings) -> EngineOptions:
    return EngineOptions(str(checkpoint.path), checkpoint.name, "cpu", endpoint=endpoint, settings=settings)


@pytest.fixture
def prompt(tokenizer):
    return chat_prompt_ids(tokenizer, "Say hello.")


# -- settings -------------------------------------------------------------------------

def test_no_endpoint_is_a_usage_error_naming_the_option(embedded_model):
    with pytest.raises(UsageError, match="--llmperf-endpoint"):
        load_engine("openai", options(embedded_model, None))


@pytest.mark.slow
def test_unknown_setting_names_the_table_and_the_known_keys(embedded_model, faulty_server):
    with pytest.raises(UsageError, match=r"\[engine.openai\] temprature.*read_timeout"):
        load_engine("openai", options(embedded_model, f"{faulty_server}/needkey/v1", temprature=0))


@pytest.mark.slow
def test_a_wrongly_typed_timeout_is_a_usage_error(embedded_model, faulty_server):
    with pytest.raises(UsageError, match="read_timeout"):
        load_engine("openai", options(embedded_model, f"{faulty_server}/needkey/v1", read_timeout="soon"))


# -- against a real vllm serve ----------------------------------------------------------

@pytest.mark.slow
def test_generates_like_the_in_process_vllm_engine(openai_engine, vllm_engine, tokenizer):
    prompts = [chat_prompt_ids(tokenizer, q) for q in QUESTIONS]
    params = GenerationParams(max_new_tokens=24)
    over_http = openai_engine.generate(prompts, params)
    in_process = vllm_engine.generate(prompts, params)
    assert [g.token_ids for g in over_http] == [g.token_ids for g in in_process]
    assert [g.finish_reason for g in over_http] == [g.finish_reason for g in in_process]


@pytest.mark.slow
def test_uses_token_prompts_and_token_ids_of_vllm(openai_engine):
    assert openai_engine.token_prompts and openai_engine.vllm_extras and openai_engine.returns_token_ids
    assert not any("re-tokenized" in note for note in openai_engine.info.notes)
    found = openai_engine.info.capabilities
    assert found["token_prompts"] and found["output_token_ids"] and found["prompt_logprobs"]
    assert found["min_tokens"] is None and found["ignore_eos"] is None  # accepted, never seen ignored


@pytest.mark.slow
def test_vllm_serve_is_named_with_its_version(openai_engine):
    import vllm

    info = openai_engine.info
    assert info.engine == "openai-vllm"
    assert info.server == f"vllm {vllm.__version__}" and info.versions["vllm"] == vllm.__version__


@pytest.mark.slow
def test_streams_a_timestamp_per_token(openai_engine, prompt):
    (generation,) = openai_engine.generate([prompt], GenerationParams(max_new_tokens=16, min_new_tokens=16,
                                                                       ignore_eos=True))
    assert len(generation.token_ids) == len(generation.token_times) == 16
    assert generation.start_time < generation.token_times[0]
    assert list(generation.token_times) == sorted(generation.token_times)
    # Tokens arrive in several chunks, not all at the end.
    assert len(set(generation.token_times)) > 1


@pytest.mark.slow
def test_scores_match_the_in_process_vllm_engine(openai_engine, vllm_engine, prompt):
    path = [504, 2988, 288]
    over_http = openai_engine.score_path(prompt, path, top_k=5)
    in_process = vllm_engine.score_path(prompt, path, top_k=5)
    assert over_http.space == in_process.space == "logprobs"
    finite = in_process.values > -1e30
    assert (finite == (over_http.values > -1e30)).all()
    assert abs(over_http.values[finite] - in_process.values[finite]).max() < 1e-3


# -- faults (the shared ones: tests/engines/test_http_faults.py) ------------------------------

@pytest.mark.slow
def test_http_400_carries_the_servers_message(embedded_model, faulty_server):
    with pytest.raises(EngineError, match=rf"{faulty_server}/http400/v1/completions: HTTP 400 .*prompt is too long"):
        load_engine("openai", options(embedded_model, f"{faulty_server}/http400/v1"))


@pytest.mark.slow
def test_lost_chunks_are_caught_by_the_usage_count(embedded_model, faulty_server, prompt):
    engine = load_engine("openai", options(embedded_model, f"{faulty_server}/lostchunks/v1"))
    try:
        with pytest.raises(EngineError, match=rf"^{faulty_server}/lostchunks/v1/completions: .*carried 3 tokens "
                                              r"but its usage says 5 \(request 0\); chunks were lost"):
            engine.generate([prompt], GenerationParams(max_new_tokens=8))
    finally:
        engine.close()


@pytest.mark.parametrize("status, message, rejects", [
    (400, "prompt is too long", True),
    (422, "field required", True),
    (500, "4 validation errors:\n  {'type': 'string_type', 'loc': ('body', 'prompt', 'str')}", True),
    (500, "the model fell over", False),
    (503, "overloaded", False),
    (401, "missing or wrong API key", False),
    (404, "no such route", False),
    (429, "slow down", False),
])
def test_which_http_errors_are_about_the_request(status, message, rejects):
    from pytest_llmperf.engines.http_common import HttpStatusError

    error = HttpStatusError("http://host/v1/completions", status, "Reason", message)
    assert error.rejects_request is rejects
    assert str(error).startswith(f"http://host/v1/completions: HTTP {status} Reason: ")


@pytest.mark.slow
def test_a_5xx_that_is_not_about_the_request_stays_an_error_at_load(embedded_model, faulty_server):
    with pytest.raises(EngineError, match=rf"^{faulty_server}/probe500/v1/completions: HTTP 500 .*fell over"):
        load_engine("openai", options(embedded_model, f"{faulty_server}/probe500/v1"))


@pytest.mark.slow
def test_a_5xx_validation_error_gets_the_text_fallback(embedded_model, faulty_server, prompt, tokenizer):
    engine = load_engine("openai", options(embedded_model, f"{faulty_server}/validation500/v1"))
    try:
        assert engine.info.capabilities["token_prompts"] is False
        assert engine.info.capabilities["output_token_ids"] is False
        (generation,) = engine.generate([prompt], GenerationParams(max_new_tokens=8))
        assert tokenizer.decode(generation.token_ids, skip_special_tokens=True) == "Hello world"
    finally:
        engine.close()


# -- server identity -----------------------------------------------------------------------

@pytest.mark.slow
def test_a_server_that_does_not_say_is_unidentified_until_named(embedded_model, faulty_server):
    endpoint = f"{faulty_server}/textonly/v1"
    engine = load_engine("openai", options(embedded_model, endpoint))
    try:
        assert engine.info.engine == "openai-unidentified" and engine.info.server == "unidentified"
        assert any('set server = "NAME" in [engine.openai]' in note for note in engine.info.notes)
    finally:
        engine.close()
    engine = load_engine("openai", options(embedded_model, endpoint, server="My-Server_2"))
    try:
        assert engine.info.engine == "openai-my-server_2"
        assert not any("did not say" in note for note in engine.info.notes)
    finally:
        engine.close()


@pytest.mark.parametrize("setting, message", [
    ({"server": "two words"}, r"\[engine.openai\] server: 'two words' is not a server name"),
    ({"server": ""}, r"\[engine.openai\] server: '' is not a server name"),
    ({"require": ["logits"]}, r"\[engine.openai\] require: 'logits' is not a capability; use names among: "
                              r"token_prompts, output_token_ids"),
    ({"require": "output_token_ids, min_tokens"}, r"'output_token_ids, min_tokens' is not a capability"),
])
@pytest.mark.slow
def test_bad_identity_and_require_settings_are_usage_errors(embedded_model, faulty_server, setting, message):
    with pytest.raises(UsageError, match=message):
        load_engine("openai", options(embedded_model, f"{faulty_server}/textonly/v1", **setting))


# -- API key and fallbacks ----------------------------------------------------------------

@pytest.mark.slow
def test_api_key_comes_from_the_environment_and_never_shows(embedded_model, faulty_server, prompt, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("LLMPERF_API_KEY", raising=False)
    with pytest.raises(EngineError, match="HTTP 401 .*missing or wrong API key"):
        load_engine("openai", options(embedded_model, f"{faulty_server}/needkey/v1"))
    monkeypatch.setenv("LLMPERF_API_KEY", "sk-loopback-key")
    engine = load_engine("openai", options(embedded_model, f"{faulty_server}/needkey/v1"))
    try:
        (generation,) = engine.generate([prompt], GenerationParams(max_new_tokens=3))
        assert generation.token_ids == (11, 12, 13)
        assert "sk-loopback-key" not in repr(engine.info)
    finally:
        engine.close()
    # A wrong key is refused, and the message does not repeat it.
    monkeypatch.setenv("LLMPERF_API_KEY", "sk-wrong-secret")
    with pytest.raises(EngineError) as failure:
        load_engine("openai", options(embedded_model, f"{faulty_server}/needkey/v1"))
    assert "sk-wrong-secret" not in str(failure.value)


@pytest.mark.slow
def test_a_strict_server_gets_text_prompts_and_its_text_is_retokenized(embedded_model, faulty_server, prompt,
                                                                       tokenizer):
    engine = load_engine("openai", options(embedded_model, f"{faulty_server}/textonly/v1"))
    try:
        assert not engine.token_prompts and not engine.returns_token_ids
        assert any("re-tokenized" in note for note in engine.info.notes)
        seen = []
        (generation,) = engine.generate([prompt], GenerationParams(max_new_tokens=8),
                                        on_token=lambda i, token, t: seen.append(token))
        expected = tuple(tokenizer("Hello world", add_special_tokens=False)["input_ids"]) + (tokenizer.eos_token_id,)
        assert generation.token_ids == expected
        assert generation.finish_reason == "eos"
        assert tuple(seen) == expected
        # The server's own count is kept beside the re-tokenized one, never compared with it.
        assert generation.server_token_count == 7 != len(expected)
        with pytest.raises(EngineError, match=rf"{faulty_server}/textonly/v1/completions: .*log-probabilities"):
            engine.score_path(prompt, [1, 2])
    finally:
        engine.close()


# -- the vllm serve launcher ----------------------------------------------------------------

@pytest.mark.slow  # starts a real server process that fails
def test_a_server_that_cannot_start_is_reported_with_its_log(tmp_path):
    pytest.importorskip("vllm", reason="vllm is not installed")
    from pytest_llmperf.engines.servers import VllmServer, VllmServeSpec

    server = VllmServer(VllmServeSpec(str(tmp_path / "no-such-model"), log_path=tmp_path / "server.log",
                                      startup_timeout=300))
    with pytest.raises(EngineError, match=r"vllm serve exited with status \d+ before answering "
                                          rf"http://127.0.0.1:{server.port}/v1/models"):
        server.start()
    assert server.process is None and (tmp_path / "server.log").stat().st_size > 0


@pytest.mark.slow
def test_the_session_server_answers_on_loopback(vllm_server):
    import urllib.request

    with urllib.request.urlopen(f"{vllm_server.base_url}/models", timeout=10) as response:
        assert response.status == 200
    assert vllm_server.alive() and vllm_server.startup_seconds > 0
