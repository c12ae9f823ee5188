"""Paired A/B end to end on the real engine: the decode suite under ``--llmperf-compare``, with a real
slowdown made by a real engine setting (a batch of 2 instead of 16 for four prompts).  That an A/A session
does not read REGRESSED is shown by benchmarks/bench_paired.py (and by the simulations of tests/gating/test_paired.py)."""

import json
import re
from pathlib import Path

import pytest

from pytest_llmperf.config.profiles import profile_path

pytestmark = pytest.mark.slow

SUITE = Path(__file__).resolve().parents[2] / "suites" / "performance" / "test_decode.py"


def _profile(pytester, max_batch_size: int) -> Path:
    """The embedded profile with another batch size and four pairs (a short test)."""
    text = profile_path("embedded").read_text()
    text = re.sub(r"(?m)^max_batch_size = \d+$", f"max_batch_size = {max_batch_size}", text)
    text = re.sub(r"(?m)^paired_rounds = \d+$", "paired_rounds = 4", text)
    text = re.sub(r"(?m)^paired_max_rounds = \d+$", "paired_max_rounds = 4", text)
    assert "paired_rounds = 4" in text and "paired_max_rounds = 4" in text, "the embedded profile lost its paired keys"
    path = pytester.path / f"batch-{max_batch_size}.toml"
    path.write_text(text)
    return path


def _run(pytester, profile: Path, compare: str, out: str):
    pytester.path.joinpath("test_decode.py").write_text(SUITE.read_text())
    result = pytester.runpytest_subprocess("-m", "cpu", "--llmperf-device", "cpu", "--llmperf-engine", "transformers",
                                           "--llmperf-profile", str(profile), "--llmperf-compare", compare,
                                           "--llmperf-out", str(pytester.path / out), "-p", "no:randomly")
    data = json.loads((pytester.path / out / "results.json").read_text())
    (metric,) = [m for m in data["metrics"] if m["name"] == "decode.tokens_per_second"]
    return result, metric


def test_a_smaller_batch_is_regressed_against_the_reference(pytester):
    result, metric = _run(pytester, _profile(pytester, 2), "max_batch_size=16", "ab")
    result.assert_outcomes(failed=1)
    paired = metric["extra"]["paired"]
    assert paired["verdict"] == "regressed" and metric["verdict"] == "fail", paired
    assert paired["change"] < -0.10 and paired["pairs"] == 4
    assert paired["rounds"]["order"] == ["reference", "current", "current", "reference"] * 2
    setup = paired["reference_setup"]
    assert setup["spec"] == "max_batch_size=16" and setup["max_batch_size"] == 16
    assert setup["engine_info"]["engine"] == "transformers" and setup["engine_info"]["versions"]
    result.stdout.fnmatch_lines(["*decode.tokens_per_second REGRESSED against the reference*"
                                 "--llmperf-compare max_batch_size=16*"])

