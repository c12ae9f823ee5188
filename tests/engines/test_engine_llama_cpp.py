"""The openai engine against a second real server: llama-cpp-python's (``python -m llama_cpp.server``)
serving the embedded GGUF.

It takes no token-id prompts (HTTP 500 with a validation error), returns no token
ids and no prompt log-probabilities by token id, honours ``min_tokens`` and ignores
``ignore_eos``: the engine must find all of that, key itself by the server, and
say what to do when the server cuts its streams.  Skipped where llama-cpp-python
is not installed (``make llama-cpp``).
"""

from __future__ import annotations

import pytest

from pytest_llmperf import kit
from pytest_llmperf.datasets.chat import chat_prompt_ids
from pytest_llmperf.engines import EngineOptions, GenerationParams, load_engine
from pytest_llmperf.errors import EngineError
from pytest_llmperf.gating.baselines import BaselineKey

QUESTIONS = ("What is 2+2?", "Write a poem about the sea.", "Name three colors.", "Why is the sky blue?")


@pytest.mark.slow
def test_the_server_is_named_and_its_capabilities_found_at_load(llama_cpp_engine):
    info = llama_cpp_engine.info
    assert info.engine == "openai-llama-cpp-python"
    assert info.server == "llama-cpp-python 0.3.36" and info.versions["llama-cpp-python"] == "0.3.36"
    # A token-id prompt gets HTTP 500 with a validation error: a fallback, not a load failure.
    assert info.capabilities["token_prompts"] is False
    assert info.capabilities["output_token_ids"] is False
    assert info.capabilities["prompt_logprobs"] is False
    assert info.capabilities["min_tokens"] is None  # accepted; no answer has shown it ignored
    assert any("detokenized text" in note for note in info.notes)


@pytest.mark.slow
def test_baselines_are_keyed_by_the_server(llama_cpp_engine):
    key = BaselineKey.of("SmolLM2-135M-Instruct", llama_cpp_engine.info.engine, "cpu",
                         llama_cpp_engine.info.device_name, llama_cpp_engine.info.dtype)
    assert str(key.relative_path()) == "smollm2-135m-instruct/cpu/openai-llama-cpp-python-server.json"


@pytest.mark.slow
def test_concurrent_streams_all_finish(llama_cpp_engine, tokenizer):
    prompts = [chat_prompt_ids(tokenizer, q) for q in QUESTIONS]
    generations = llama_cpp_engine.generate(prompts, GenerationParams(max_new_tokens=16, min_new_tokens=2))
    for generation in generations:
        assert 2 <= len(generation.token_ids) <= 17  # re-tokenized text, plus the EOS where it stopped
        assert len(generation.token_times) == len(generation.token_ids)
        assert list(generation.token_times) == sorted(generation.token_times)
        assert len(set(generation.token_times)) > 1  # streamed, not delivered at the end
    assert tokenizer.decode(generations[0].token_ids).strip()


@pytest.mark.slow
def test_ignore_eos_is_found_ignored_from_the_output(embedded_model, llama_cpp_server, tokenizer):
    engine = load_engine("openai", EngineOptions(str(embedded_model.path), embedded_model.name, "cpu",
                                                 endpoint=llama_cpp_server.base_url))
    try:
        assert engine.info.capabilities["ignore_eos"] is None  # accepted at load: nothing to tell yet
        (generation,) = engine.generate([chat_prompt_ids(tokenizer, "Say hello.")],
                                        GenerationParams(max_new_tokens=64, ignore_eos=True))
        assert len(generation.token_ids) < 64
        assert engine.info.capabilities["ignore_eos"] is False
        assert any("accepted but ignored ignore_eos" in note for note in engine.info.notes)
    finally:
        engine.close()


@pytest.mark.slow
def test_a_missing_capability_skips_naming_the_server_or_fails_where_required(embedded_model, llama_cpp_server):
    engine = load_engine("openai", EngineOptions(str(embedded_model.path), embedded_model.name, "cpu",
                                                 endpoint=llama_cpp_server.base_url,
                                                 settings={"require": ["output_token_ids"]}))
    try:
        with pytest.raises(pytest.skip.Exception, match=r"MMLU needs prompt log-probabilities .*\(prompt_logprobs\)"
                                                        r".*openai-llama-cpp-python \(llama-cpp-python 0.3.36"):
            kit.require_capability(engine, "prompt_logprobs", "MMLU")
        with pytest.raises(pytest.fail.Exception, match=r"TEST06 needs the token ids of its output "
                                                        r".*llama-cpp-python.*the profile requires it"):
            kit.require_capability(engine, "output_token_ids", "TEST06")
        kit.require_capability(engine, "min_tokens", "anything")  # present: goes on
        with pytest.raises(EngineError, match="does not return prompt log-probabilities keyed by token id"):
            engine.score_path([1, 2, 3], [4])
    finally:
        engine.close()


def test_an_interrupting_server_is_named_as_the_cause_with_the_fix(embedded_model, tokenizer, tmp_path):
    from engine_fixtures import start_llama_cpp_server

    # The server's own default: a new request stops the stream running.
    with start_llama_cpp_server(tmp_path / "server.log", extra_args=("--n_ctx", "4096")) as server:
        engine = load_engine("openai", EngineOptions(str(embedded_model.path), embedded_model.name, "cpu",
                                                     endpoint=server.base_url))
        try:
            prompts = [chat_prompt_ids(tokenizer, q) for q in QUESTIONS]
            with pytest.raises(EngineError, match=rf"^{server.base_url}/completions: the stream ended without .*"
                                                  r"likely cause: llama-cpp-python's server stops a running stream "
                                                  r"when another request arrives .*--interrupt_requests False"):
                engine.generate(prompts, GenerationParams(max_new_tokens=32, min_new_tokens=32))
        finally:
            engine.close()


def test_the_launcher_runs_a_command_against_the_server_and_stops_it(tmp_path):
    import socket
    import subprocess
    import sys

    from pytest_llmperf.errors import EngineUnavailable
    from pytest_llmperf.engines.servers import llama_cpp_module

    try:
        llama_cpp_module()
    except EngineUnavailable as exc:
        pytest.skip(str(exc))
    probe = ("import sys, urllib.request; urllib.request.urlopen(sys.argv[1] + '/models', timeout=10); "
             "open(sys.argv[2], 'w').write(sys.argv[1]); sys.exit(3)")
    seen = tmp_path / "endpoint.txt"
    done = subprocess.run([sys.executable, "-m", "pytest_llmperf.engines.servers", "--server", "llama-cpp", "--port", "0",
                           "--", sys.executable, "-c", probe, "{endpoint}", str(seen)],
                          capture_output=True, text=True, timeout=180)
    assert done.returncode == 3, done.stdout + done.stderr  # the command's status
    endpoint = seen.read_text()
    assert endpoint.startswith("http://127.0.0.1:") and endpoint.endswith("/v1")
    port = int(endpoint.rsplit(":", 1)[1].split("/")[0])
    with pytest.raises(OSError):  # stopped: nothing listens there any more
        socket.create_connection(("127.0.0.1", port), timeout=2).close()


@pytest.mark.slow
def test_a_paired_session_measures_two_real_servers_side_by_side(llama_cpp_server, pytester, tmp_path):
    """--llmperf-compare endpoint=URL: the decode suite against two llama-cpp-python servers of one model, the
    second as the reference; both are measured in alternating rounds and the verdict names the reference."""
    import json
    import re
    from pathlib import Path

    from engine_fixtures import start_llama_cpp_server
    from pytest_llmperf.config.profiles import profile_path

    suite = Path(__file__).resolve().parents[2] / "suites" / "performance" / "test_decode.py"
    pytester.path.joinpath("test_decode.py").write_text(suite.read_text())
    profile = re.sub(r"(?m)^paired_rounds = \d+$", "paired_rounds = 3", profile_path("embedded").read_text())
    profile = re.sub(r"(?m)^paired_max_rounds = \d+$", "paired_max_rounds = 3", profile)
    pytester.path.joinpath("paired.toml").write_text(profile)
    with start_llama_cpp_server(tmp_path / "current.log") as current:
        result = pytester.runpytest_subprocess(
            "-m", "cpu", "-p", "no:randomly", "--llmperf-engine", "openai", "--llmperf-endpoint", current.base_url,
            "--llmperf-compare", f"endpoint={llama_cpp_server.base_url}", "--llmperf-profile",
            str(pytester.path / "paired.toml"), "--llmperf-out", str(pytester.path / "out"))
    data = json.loads((pytester.path / "out" / "results.json").read_text())
    (metric,) = [m for m in data["metrics"] if m["name"] == "decode.tokens_per_second"]
    paired = metric["extra"]["paired"]
    assert paired["pairs"] == 3 and paired["rounds"]["order"] == ["reference", "current", "current", "reference",
                                                                  "reference", "current"]
    assert all(v > 0 for side in ("reference", "current") for v in paired["rounds"][side])
    setup = paired["reference_setup"]
    assert setup["endpoint"] == llama_cpp_server.base_url
    assert setup["engine_info"]["engine"] == "openai-llama-cpp-python"
    # One model on two identical servers: no regression (3 pairs may well not decide: INCONCLUSIVE passes).
    assert paired["verdict"] in ("pass", "inconclusive"), paired
    assert result.ret == 0
