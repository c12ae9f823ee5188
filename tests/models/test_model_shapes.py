"""Weightless model shapes: resolved from the shipped configs with the embedded tokenizer, random
weights named as such, accuracy suites skipped before any engine loads, MBU's KV-cache term."""

import json

import pytest

from pytest_llmperf import models
from pytest_llmperf.errors import UsageError
from pytest_llmperf.metrics.utilization import kv_bytes_per_position, kv_positions_read, utilization


@pytest.mark.parametrize("name, billions", [("llama-3.1-8b", 7.38), ("llama-2-7b", 6.88), ("llama-2-70b", 69.26)])
def test_a_shape_has_the_real_architecture_with_the_embedded_vocabulary(name, billions):
    spec = models.resolve(f"shape:{name}")
    config = json.loads((spec.path / "config.json").read_text())
    assert spec.shape == name and spec.random_seed == 0 and "random weights" in spec.name
    assert config["vocab_size"] == 49152 and (spec.path / "tokenizer.json").is_file()
    assert not any(spec.path.glob("*.safetensors"))
    # The real parameter count with a 49,152-entry vocabulary (llama-3.1-8b has 8.03 B with its own).
    assert models.parameter_count(spec) / 1e9 == pytest.approx(billions, abs=0.01)


def test_an_unknown_shape_names_the_close_one_and_the_list():
    with pytest.raises(UsageError, match=r"did you mean shape:llama-3.1-8b\? available: shape:llama-2-70b"):
        models.resolve("shape:llama-3-8b")


def test_kv_bytes_follow_the_config_and_the_cache_dtype():
    config = json.loads((models.SHAPES_DIR / "llama-3.1-8b.json").read_text())
    # K and V x 32 layers x 8 KV heads x 128 dims x 2 bytes = 131,072 bytes a position; fp8 halves it.
    assert kv_bytes_per_position(config, "bfloat16") == 131072
    assert kv_bytes_per_position(config, "bfloat16", "fp8") == 65536
    assert kv_bytes_per_position({"hidden_size": 8}, "bfloat16") is None
    assert kv_positions_read(prompt_length=100, generated=3) == 100 + 101 + 102


def test_mbu_adds_the_kv_cache_term_and_peaks_scale_with_devices():
    weights_only = utilization("NVIDIA H200", 8_000_000_000, "bfloat16", 1000.0, 10.0)
    with_kv = utilization("NVIDIA H200", 8_000_000_000, "bfloat16", 1000.0, 10.0, kv_bytes_per_second=4.8e11)
    assert with_kv.mbu == pytest.approx(weights_only.mbu + 0.1, rel=1e-3)  # 0.48 TB/s of a 4.8 TB/s peak
    two = utilization("NVIDIA H200", 8_000_000_000, "bfloat16", 1000.0, 10.0, devices=2)
    assert two.mfu == pytest.approx(weights_only.mfu / 2) and two.mbu == pytest.approx(weights_only.mbu / 2)
    assert "KV cache not counted" in weights_only.note and "KV-cache bytes read/s included" in with_kv.note


@pytest.mark.slow
def test_accuracy_suites_skip_a_shape_before_loading_an_engine(copy_suites):
    # (test_mmlu.py: tests/ has a test_rouge.py of its own, and in-process pytester cannot import two.)
    pytester = copy_suites("accuracy", "test_mmlu.py")
    result = pytester.runpytest("-m", "cpu", "--llmperf-model", "shape:llama-2-70b", "-rs")
    result.assert_outcomes(skipped=2)
    result.stdout.fnmatch_lines(["*shape:llama-2-70b has random weights, so accuracy cannot be judged*"])


def test_fp8_weights_count_one_byte_and_fp8_math_is_against_the_fp8_peak():
    bf16 = utilization("NVIDIA H200", 70_000_000_000, "bfloat16", 3000.0, 20.0)
    fp8 = utilization("NVIDIA H200", 70_000_000_000, "bfloat16", 3000.0, 20.0, quantization="fp8")
    assert fp8.bytes_per_step == bf16.bytes_per_step / 2  # 1 byte per weight, not bfloat16's 2
    assert fp8.mbu == pytest.approx(bf16.mbu / 2)
    assert fp8.mfu == pytest.approx(bf16.mfu * 989.4 / 1978.9)  # the H200's dense FP8 peak is twice its bf16 one
    assert "dense FP8" in fp8.note and "quantization=fp8" in fp8.note and fp8.extra()["peak_flops"] == 1978.9e12
    # A device without FP8 matrix units reads n/a rather than a number against the wrong peak.
    assert utilization("NVIDIA A100-SXM4-80GB", 70_000_000_000, "bfloat16", 3000.0, 20.0, quantization="fp8").mfu is None
