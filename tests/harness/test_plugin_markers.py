"""Device markers: registered, attached to every engine item, absent devices skipped with the check made."""

import json
import subprocess
import sys

import pytest

from pytest_llmperf import hardware
from pytest_llmperf.config.options import Settings
from pytest_llmperf.harness.session import EngineTarget, engine_targets, unavailable_reason

ENGINE_TEST = """
def test_engine(llmperf_target):
    pass

def test_no_engine():
    pass
"""


def test_markers_are_listed_outside_the_repository(tmp_path):
    out = subprocess.run([sys.executable, "-m", "pytest", "--markers"], cwd=tmp_path,
                         capture_output=True, text=True, check=True).stdout
    for name in ("cpu", "cuda", "rocm", "ascend"):
        assert f"@pytest.mark.{name}:" in out


def test_auto_device_makes_one_item_per_device_class(pytester):
    pytester.makepyfile(ENGINE_TEST)
    result = pytester.runpytest("--collect-only", "-q")
    result.stdout.fnmatch_lines([
        "*test_engine[[]transformers-cpu]*", "*test_engine[[]transformers-cuda]*",
        "*test_engine[[]transformers-rocm]*", "*test_engine[[]transformers-ascend]*", "*test_no_engine*",
    ])


def test_each_item_carries_its_device_marker(pytester):
    pytester.makepyfile(ENGINE_TEST)
    for device in hardware.DEVICE_CLASSES:
        result = pytester.runpytest("--collect-only", "-q", "-m", device)
        result.stdout.fnmatch_lines([f"*test_engine[[]transformers-{device}]*", "*1/5 tests collected (4 deselected)*"])


@pytest.mark.skipif(hardware.detect("cuda").available, reason="this machine has CUDA")
def test_cuda_items_skip_with_the_check_that_was_made(pytester):
    pytester.makepyfile("""
        def test_engine(llmperf_engine):
            raise AssertionError("must not run without CUDA")
    """)
    result = pytester.runpytest("-m", "cuda", "-rs")
    result.assert_outcomes(skipped=1)
    assert result.ret == 0
    result.stdout.fnmatch_lines(["*SKIPPED*cuda not available: torch.cuda.is_available() is False*"])


def test_explicit_device_makes_only_that_item(pytester):
    pytester.makepyfile(ENGINE_TEST)
    result = pytester.runpytest("--collect-only", "-q", "--llmperf-device", "cpu", "--llmperf-engine", "transformers,vllm")
    result.stdout.fnmatch_lines(["*test_engine[[]transformers-cpu]*", "*test_engine[[]vllm-cpu]*", "*3 tests collected*"])


def _settings(tmp_path, **changes):
    values = dict(engines=("transformers",), model=None, device="auto", out=tmp_path, baselines=tmp_path,
                  update_baselines=False, profile="embedded", endpoint=None, samples=None, rootdir=tmp_path)
    values.update(changes)
    return Settings(**values)


def test_http_engines_get_one_item_and_need_an_endpoint(tmp_path):
    settings = _settings(tmp_path, engines=("openai",))
    targets = engine_targets(settings)
    assert targets == [EngineTarget("openai", hardware.resolve_auto()[0])]
    assert "needs --llmperf-endpoint" in unavailable_reason(settings, targets[0])


def test_auto_skips_the_cpu_items_when_an_accelerator_was_chosen(tmp_path, monkeypatch):
    monkeypatch.setattr(hardware, "resolve_auto", lambda: ("cuda", "torch.cuda.is_available() is True"))
    reason = unavailable_reason(_settings(tmp_path), EngineTarget("transformers", "cpu"))
    assert reason == ("--llmperf-device auto chose cuda (torch.cuda.is_available() is True); "
                      "pass --llmperf-device cpu to run the cpu items")


def test_xdist_worker_is_pinned_to_its_device(monkeypatch):
    # setenv first so that monkeypatch restores the variable the call below sets
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES")
    assert hardware.pin_worker("cuda", 3) == "CUDA_VISIBLE_DEVICES=3"
    monkeypatch.setenv("HIP_VISIBLE_DEVICES", "4,5,6,7")
    assert hardware.pin_worker("rocm", 1) == "HIP_VISIBLE_DEVICES=5"
    assert hardware.pin_worker("cpu", 1) is None


def test_xdist_workers_see_pinned_devices(pytester):
    pytester.makepyfile("""
        import os
        def test_worker(llmperf_session):
            worker = os.environ["PYTEST_XDIST_WORKER"]
            assert os.environ["CUDA_VISIBLE_DEVICES"] == worker.lstrip("gw")
    """)
    pytester.makepyfile(test_other="def test_other():\n    pass\n")
    result = pytester.runpytest_subprocess("-n", "2", "--llmperf-device", "cuda", "-p", "xdist")
    result.assert_outcomes(passed=2)
    data = json.loads((pytester.path / "llmperf-results" / "results.json").read_text())
    assert {t["outcome"] for t in data["tests"]} == {"passed"}
