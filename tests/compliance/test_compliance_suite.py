"""The compliance suite goes red: crafted TEST06 logs (doubled EOS, wrong token
count, wrong first token) and a TPOT limit below what the engine measured."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.slow

pytest_plugins = ["pytester"]

REPO = Path(__file__).resolve().parents[2]
PROFILE = REPO / "pytest_llmperf" / "profiles" / "embedded.toml"
EOS = 2  # the embedded model's <|im_end|>


def entry(qsl_idx, ids, first=None, count=None):
    return {"seq_id": qsl_idx, "qsl_idx": qsl_idx, "data": np.asarray(ids, np.int32).tobytes().hex(),
            "token_data": np.asarray(ids[:1] if first is None else first, np.int32).tobytes().hex(),
            "token_count": len(ids) if count is None else count}


@pytest.fixture
def suite(copy_suites):
    return copy_suites("compliance", "test_test06.py", "test_validity.py")


def test_crafted_test06_logs_turn_the_suite_red(suite, monkeypatch, tmp_path):
    server = tmp_path / "audit" / "Server"
    server.mkdir(parents=True)
    (server / "mlperf_log_accuracy.json").write_text(json.dumps([
        entry(3, [5, 6, 7, EOS]),
        entry(10, [5, 6, EOS, EOS]),         # doubled EOS
        entry(11, [8, 9, 10], count=4),      # wrong token count
        entry(12, [12, 13, EOS], first=[99]),  # wrong first token
    ]))
    monkeypatch.setenv("LLMPERF_TEST06_LOGS", str(tmp_path / "audit"))
    result = suite.runpytest_subprocess("test_test06.py", "-k", "finished_logs", f"--llmperf-out={tmp_path / 'out'}")
    result.assert_outcomes(failed=1)
    result.stdout.re_match_lines([
        r"TEST06 first_token check failed for 1 of 4 samples \(qsl_idx 12\): the first token reported through "
        r"FirstTokenComplete must be the output's first token; e.g. qsl_idx 12: reported \[99\], output starts with \[12\]",
        r"TEST06 eos check failed for 1 of 4 samples \(qsl_idx 10\): an output may hold at most one EOS token, and only "
        r"as its last token; e.g. qsl_idx 10: EOS at positions 2, 3 of 4 tokens; see .*mlperf_log_accuracy.json",
        r"TEST06 sample_length check failed for 1 of 4 samples \(qsl_idx 11\): the reported token count must equal "
        r"the output length; e.g. qsl_idx 11: reported 4 tokens, output has 3",
    ])


def test_good_test06_logs_pass(suite, monkeypatch, tmp_path):
    offline = tmp_path / "audit" / "Offline"
    offline.mkdir(parents=True)
    (offline / "mlperf_log_accuracy.json").write_text(json.dumps([entry(0, [5, 6, EOS], first=[77])]))
    monkeypatch.setenv("LLMPERF_TEST06_LOGS", str(tmp_path / "audit"))
    suite.runpytest_subprocess("test_test06.py", "-k", "finished_logs", f"--llmperf-out={tmp_path / 'out'}").assert_outcomes(passed=1)


def test_tpot_limit_below_measured_turns_validity_red(suite, tmp_path):
    text = PROFILE.read_text()
    assert "tpot_latency_ms = 2000" in text
    profile = tmp_path / "embedded-tight.toml"
    profile.write_text(text.replace("tpot_latency_ms = 2000", "tpot_latency_ms = 1"))
    result = suite.runpytest_subprocess("test_validity.py", "-m", "cpu", "--llmperf-device", "cpu", "-k", "Server",
                             f"--llmperf-profile={profile}", f"--llmperf-out={tmp_path / 'out'}")
    result.assert_outcomes(failed=1)
    result.stdout.re_match_lines([
        r"LoadGen Server result INVALID, not satisfied: Performance constraints satisfied.*TPOT constrain not met.*",
        r"Server TPOT p99 \d+\.\d ms > 1 ms \(loadgen.server.tpot_latency_ms in the profile\); see --llmperf-profile",
    ])
