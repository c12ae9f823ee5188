"""Gates and baselines: direction-aware limits, one-line failures, atomic locked updates."""

import json
import multiprocessing

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pytest_llmperf.gating.baselines import BaselineKey, BaselineStore, limit_from_entry
from pytest_llmperf.errors import InputError
from pytest_llmperf.gating.limits import Limit, failure_message, judge

KEY = BaselineKey("SmolLM2-135M-Instruct", "cpu", "transformers", "float32")


def test_failure_message_names_value_limit_source_and_flag():
    limit = Limit.at_least(0.99 * 44.4312, reference=44.4312, source="mlperf-llama2-70b-99: 0.99 x 44.4312",
                           flag="--llmperf-profile")
    metric = judge("rouge1", 41.2, "", True, limit)
    assert metric.verdict == "fail"
    assert failure_message(metric, limit) == (
        "rouge1 41.2000 < 43.9869 (mlperf-llama2-70b-99: 0.99 x 44.4312); see --llmperf-profile")


def test_nan_never_passes():
    limit = Limit.at_most(1.0, reference=1.0, source="x", flag="--f")
    assert judge("ttft", float("nan"), "s", False, limit).verdict == "fail"
    assert judge("ttft", None, "s", False, limit).verdict == "fail"


@pytest.mark.parametrize("higher, value, passes", [
    (True, 70.0, True), (True, 60.0, False), (True, 500.0, True),      # throughput may not drop
    (False, 130.0, True), (False, 140.0, False), (False, 1.0, True),    # latency may not rise
    (None, 95.0, True), (None, 115.0, False), (None, 85.0, False),      # two-sided
])
def test_baseline_limits_follow_the_direction(higher, value, passes):
    entry = {"value": 100.0, "higher_is_better": higher, "tolerance": {"relative": 0.35 if higher is not None else 0.1}}
    if higher is False:
        entry["tolerance"] = {"relative": 0.35}
    limit = limit_from_entry(entry, "b.json")
    assert limit.admits(value) is passes


def test_absolute_tolerance_is_in_points():
    limit = limit_from_entry({"value": 30.0, "higher_is_better": True, "tolerance": {"absolute": 1.0}}, "b.json")
    assert limit.low == 29.0 and limit.high is None
    assert "tolerance 1 absolute" in limit.source


def test_update_keeps_hand_tuned_tolerance(tmp_path):
    store = BaselineStore(tmp_path)
    store.update(KEY, {"x": {"value": 1.0, "higher_is_better": True, "tolerance": {"relative": 0.1}}})
    data = json.loads(store.path(KEY).read_text())
    data["metrics"]["x"]["tolerance"] = {"relative": 0.5}
    store.path(KEY).write_text(json.dumps(data))
    store.update(KEY, {"x": {"value": 2.0, "higher_is_better": True, "tolerance": {"relative": 0.1}}})
    assert store.entry(KEY, "x") == {"value": 2.0, "higher_is_better": True, "tolerance": {"relative": 0.5}}


def test_corrupt_baseline_file_is_a_clear_error(tmp_path):
    store = BaselineStore(tmp_path)
    store.path(KEY).parent.mkdir(parents=True)
    store.path(KEY).write_text('{"schema": 1, "metrics": {')
    with pytest.raises(InputError, match="is not valid JSON .*; restore it from git or rewrite it with --llmperf-update-baselines"):
        store.limit(KEY, "x")


def _writer(root, index):
    BaselineStore(root).update(KEY, {f"metric{index}": {"value": float(index), "higher_is_better": True}})


def test_parallel_updates_lose_nothing(tmp_path):
    processes = [multiprocessing.get_context("spawn").Process(target=_writer, args=(tmp_path, i)) for i in range(6)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(60)
    metrics = json.loads(BaselineStore(tmp_path).path(KEY).read_text())["metrics"]
    assert sorted(metrics) == [f"metric{i}" for i in range(6)]


@given(st.floats(1e-3, 1e6), st.floats(0, 0.9), st.booleans())
def test_the_recorded_value_always_passes_its_own_baseline(value, tolerance, higher):
    limit = limit_from_entry({"value": value, "higher_is_better": higher, "tolerance": {"relative": tolerance}}, "b")
    assert limit.admits(value)


BASELINE_SUITE = """
from pytest_llmperf.gating.baselines import BaselineKey, Tolerance

KEY = BaselineKey("m", "cpu", "e", "float32")

def test_speed(llmperf_check):
    llmperf_check.against_baseline("speed", 100.0, "tokens/s", True, Tolerance(relative=0.2), key=KEY)
    llmperf_check.verify()
"""


def test_missing_baseline_is_no_baseline_and_names_the_command(pytester):
    pytester.makepyfile(BASELINE_SUITE)
    result = pytester.runpytest()
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*speed*NO BASELINE*", "*1 metric NO BASELINE*record with: pytest "
                                 "test_missing_baseline_is_no_baseline_and_names_the_command.py::test_speed "
                                 "--llmperf-update-baselines*"])
    data = json.loads((pytester.path / "llmperf-results" / "results.json").read_text())
    assert data["run"]["no_baseline"] == ["speed"] and data["run"]["status"] == "passed"


def test_missing_baseline_fails_under_strict_baselines(pytester):
    pytester.makepyfile(BASELINE_SUITE)
    result = pytester.runpytest("--llmperf-strict-baselines")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*speed: no baseline in *e-float32.json; record one with: pytest test_missing_baseline_fails_under_strict_baselines.py::test_speed --llmperf-update-baselines*"])


def test_update_then_gate_then_raised_baseline_goes_red(pytester):
    pytester.makepyfile(BASELINE_SUITE)
    result = pytester.runpytest("--llmperf-update-baselines")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*baseline written:*e-float32.json*"])
    pytester.runpytest().assert_outcomes(passed=1)
    path = next(pytester.path.joinpath("baselines").rglob("e-float32.json"))
    data = json.loads(path.read_text())
    data["metrics"]["speed"]["value"] = 200.0  # raised 2x: 100 tokens/s is now a regression
    path.write_text(json.dumps(data))
    result = pytester.runpytest()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*speed 100.0000 < 160.0000 tokens/s (baselines/m/cpu/e-float32.json: 200 tolerance 20%); see --llmperf-update-baselines*"])


def test_baselines_are_never_taken_from_a_failed_run(pytester):
    pytester.makepyfile(BASELINE_SUITE + "\ndef test_broken():\n    assert False\n")
    result = pytester.runpytest("--llmperf-update-baselines")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*baselines not updated: the run did not pass*"])
    assert not pytester.path.joinpath("baselines").exists()


def test_engine_options_that_change_the_numbers_get_a_baseline_file_of_their_own():
    from pytest_llmperf.engines.vllm_settings import key_options

    default = BaselineKey.of("m", "vllm", "cuda", "NVIDIA H200", "bfloat16", key_options({"max_num_seqs": 256}))
    fp8_kv = BaselineKey.of("m", "vllm", "cuda", "NVIDIA H200", "bfloat16",
                            key_options({"kv_cache_dtype": "fp8", "max_num_seqs": 256}))
    fp8 = BaselineKey.of("m", "vllm", "cuda", "NVIDIA H200", "bfloat16",
                         key_options({"quantization": "fp8", "kv_cache_dtype": "fp8", "tensor_parallel_size": 1}))
    assert str(default.relative_path()) == "m/nvidia-h200/vllm-bfloat16.json"  # the files recorded before keep their name
    assert str(fp8_kv.relative_path()) == "m/nvidia-h200/vllm-bfloat16-kv_cache_dtype-fp8.json"
    assert str(fp8.relative_path()) == "m/nvidia-h200/vllm-bfloat16-kv_cache_dtype-fp8-quantization-fp8.json"
    assert fp8.options == "kv_cache_dtype=fp8,quantization=fp8"
    # A file written before the options entered the key still reads as the default configuration.
    assert BaselineKey(**{"model": "m", "hardware": "cpu", "engine": "e", "dtype": "float32"}).options == ""
