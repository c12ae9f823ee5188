"""Both HTTP engines against a real loopback server that misbehaves on purpose (``loopback/faulty_server.py``).

One table: each fault, for each engine, ends in one EngineError whose message starts
with the URL that failed and says what went wrong.  Protocol-specific faults (vLLM's
token counts, OpenAI's 400 at probing) stay in the engines' own test files.
"""

from __future__ import annotations

import dataclasses

import pytest

from pytest_llmperf.datasets.chat import chat_prompt_ids
from pytest_llmperf.engines import EngineOptions, GenerationParams, load_engine
from pytest_llmperf.errors import EngineError


@dataclasses.dataclass(frozen=True)
class Protocol:
    engine: str
    base: str
    """Appended to the server (and fault) URL to form ``--llmperf-endpoint``."""
    probe: str
    """Path (after the endpoint) of the first request made at load."""
    stream: str
    """Path of a streaming generation."""
    truncated: str
    """What the message says of a stream that ends without its end marker."""


PROTOCOLS = [
    Protocol("openai", "/v1", "/models", "/completions", r"stream ended without \[DONE\] .*truncated"),
    Protocol("llm-serving", "", "/models/llama2/generate", "/models/llama2/generate_stream",
             r"stream ended after 2 tokens.*truncated"),
]
IDS = [p.engine for p in PROTOCOLS]


def load(checkpoint, endpoint: str, protocol: Protocol, **settings):
    return load_engine(protocol.engine, EngineOptions(str(checkpoint.path), checkpoint.name, "cpu",
                                                      endpoint=endpoint + protocol.base, settings=settings))


@pytest.fixture
def prompt(tokenizer):
    return chat_prompt_ids(tokenizer, "Say hello.")


@pytest.mark.parametrize("protocol", PROTOCOLS, ids=IDS)
def test_connection_refused_names_the_endpoint(embedded_model, protocol):
    from pytest_llmperf.engines.servers import free_port

    server = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(EngineError, match=rf"{server}{protocol.base}{protocol.probe}: cannot connect"):
        load(embedded_model, server, protocol, connect_timeout=5)


@pytest.mark.slow
@pytest.mark.parametrize("protocol", PROTOCOLS, ids=IDS)
def test_http_500_at_load_carries_the_servers_message(embedded_model, faulty_server, protocol):
    endpoint = f"{faulty_server}/http500"
    with pytest.raises(EngineError, match=rf"{endpoint}{protocol.base}{protocol.probe}: HTTP 500 .*fell over"):
        load(embedded_model, endpoint, protocol)


@pytest.mark.parametrize("protocol", PROTOCOLS, ids=IDS)
@pytest.mark.parametrize("fault, message", [
    ("stream500", r"HTTP 500 Internal Server Error: the model fell over"),
    ("truncated", None),
    ("malformed", r"not JSON"),
    ("slow", r"no answer within .*read 1 s"),
])
@pytest.mark.slow
def test_a_broken_stream_fails_naming_the_endpoint(embedded_model, faulty_server, prompt, protocol, fault, message):
    endpoint = f"{faulty_server}/{fault}"
    engine = load(embedded_model, endpoint, protocol, read_timeout=1)
    try:
        with pytest.raises(EngineError, match=rf"^{endpoint}{protocol.base}{protocol.stream}: "
                                              rf".*{message or protocol.truncated}"):
            engine.generate([prompt], GenerationParams(max_new_tokens=8))
    finally:
        engine.close()


@pytest.mark.slow
@pytest.mark.parametrize("protocol", PROTOCOLS, ids=IDS)
def test_a_server_dying_mid_answer_is_reported(embedded_model, dying_server, prompt, protocol):
    process, url = dying_server
    engine = load(embedded_model, f"{url}/dies", protocol)
    try:
        with pytest.raises(EngineError, match=rf"{url}/dies{protocol.base}{protocol.stream}: the server closed"):
            engine.generate([prompt], GenerationParams(max_new_tokens=8))
        assert process.wait(timeout=10) == 1
    finally:
        engine.close()
