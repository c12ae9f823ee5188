"""The performance suite goes red: a throughput baseline raised 2x, a latency baseline
halved, a TTFT limit below what was measured, a missing baseline.

Runs the shipped suite files in a pytester session on the embedded model
(real LoadGen runs, about a minute on a small CPU).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

REPO = Path(__file__).resolve().parents[1]
BASELINE = REPO / "baselines" / "smollm2-135m-instruct" / "cpu" / "transformers-float32.json"
PROFILE = REPO / "pytest_llmperf" / "profiles" / "embedded.toml"


@pytest.fixture
def suite(pytester, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_VERBOSITY", "error")
    for name in ("test_offline.py", "test_server.py"):
        shutil.copy(REPO / "suites" / "performance" / name, pytester.path / name)
    return pytester


def edited_baselines(root: Path) -> Path:
    data = json.loads(BASELINE.read_text())
    metrics = data["metrics"]
    for name in ("offline.tokens_per_second", "offline.samples_per_second", "server.ttft_p99", "server.tpot_p99"):
        assert name in metrics, f"record the baselines first: pytest suites/performance -m cpu --llmperf-update-baselines"
    metrics["offline.tokens_per_second"]["value"] *= 2  # the engine now looks twice as slow as recorded
    metrics["server.tpot_p99"]["value"] /= 2  # and its TPOT twice as high
    del metrics["offline.samples_per_second"]
    target = root / "baselines" / BASELINE.relative_to(REPO / "baselines")
    target.parent.mkdir(parents=True)
    target.write_text(json.dumps(data))
    return root / "baselines"


def test_performance_suite_goes_red(suite, tmp_path):
    baselines = edited_baselines(tmp_path)
    profile = tmp_path / "embedded-strict.toml"
    text = PROFILE.read_text()
    assert "ttft_latency_ms = 10000" in text
    profile.write_text(text.replace("ttft_latency_ms = 10000", "ttft_latency_ms = 1"))
    result = suite.runpytest_subprocess("-m", "cpu", "--llmperf-device", "cpu", f"--llmperf-baselines={baselines}",
                             f"--llmperf-profile={profile}", f"--llmperf-out={tmp_path / 'out'}", "-p", "no:randomly")
    result.assert_outcomes(failed=2)
    text = result.stdout.str()
    result.stdout.re_match_lines([
        r"offline.tokens_per_second \d+\.\d+ < \d+\.\d+ tokens/s \(.*transformers-float32.json: \S+ tolerance 35%\); "
        r"see --llmperf-update-baselines",
        r"offline.samples_per_second: no baseline in .*; record one with: pytest test_offline.py::test_offline_throughput "
        r"--llmperf-update-baselines",
    ], consecutive=False)
    result.stdout.re_match_lines([
        r"server.ttft_p99.limit \d+\.\d+ > 1.0000 ms \(embedded-strict: loadgen.server.ttft_latency_ms = 1\); "
        r"see --llmperf-profile",
        r"server.tpot_p99 \d+\.\d+ > \d+\.\d+ ms \(.*transformers-float32.json: \S+ tolerance \d+%\); see --llmperf-update-baselines",
        r"LoadGen Server result INVALID, not satisfied: Performance constraints satisfied.*TTFT constrain not met.*"
        r"settings: \[loadgen.server\] of the profile, see --llmperf-profile",
    ], consecutive=False)
    assert "server.ttft_p99 " not in text.split("FAILURES")[1].split("llmperf summary")[0]  # within its baseline
