"""ROUGE gates go red: targets above the measured value, tokens per sample outside the band, raised baselines.

The suites run for real (transformers engine, embedded model, LoadGen
AccuracyOnly) on a few samples with short answers, inside pytester.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from pytest_llmperf.gating import rouge as rouge_gate
from pytest_llmperf.config.profiles import load_profile

REPO = Path(__file__).resolve().parents[2]
ROUGE_SUITE = REPO / "suites" / "accuracy" / "test_rouge.py"
TARGETS_SUITE = REPO / "suites" / "compliance" / "test_accuracy_targets.py"
AGREEMENT_SUITE = REPO / "suites" / "accuracy" / "test_agreement.py"
FEW_SAMPLES = """
description = "a few embedded samples, short answers"
[generation]
max_new_tokens = 12
min_new_tokens = 2
max_batch_size = 4
[datasets]
openorca = "embedded"
samples = 4
[loadgen.offline]
min_duration_ms = 0
min_query_count = 4
"""


def profile_text(rouge: str) -> str:
    return FEW_SAMPLES + "[rouge]\n" + rouge


# -- limits from a profile (no engine) -------------------------------------------------

def test_target_limits_are_fraction_times_reference():
    profile = load_profile("mlperf-llama2-70b-99")
    limits = rouge_gate.target_limits(profile)
    assert set(limits) == {"rouge1", "rouge2", "rougeL"}
    assert limits["rouge1"].low == pytest.approx(0.99 * 44.4312)
    assert limits["rouge1"].source == "mlperf-llama2-70b-99: 0.99 x 44.4312"
    band = rouge_gate.tokens_per_sample_limit(profile)
    assert (band.low, band.high) == pytest.approx((0.9 * 294.45, 1.1 * 294.45))
    strict = rouge_gate.target_limits(load_profile("mlperf-llama2-70b-99.9"))
    assert strict["rougeL"].low == pytest.approx(0.999 * 28.6162)
    assert rouge_gate.tokens_per_sample_limit(load_profile("embedded")) is None



# -- the suites go red -------------------------------------------------------------------

def run_suite(pytester, profile: str, *files: Path, args=()):
    (pytester.path / "gate.toml").write_text(profile)
    for file in files:
        shutil.copy(file, pytester.path / file.name)
    # a process per run: LoadGen and the engine keep native state that a second in-process session trips over
    return pytester.runpytest_subprocess(*[f.name for f in files], "--llmperf-device", "cpu",
                                         "--llmperf-profile", "gate.toml", *args, timeout=1500)


@pytest.mark.slow
def test_raised_baselines_and_targets_turn_the_rouge_suite_red(pytester, monkeypatch):
    baseline_mode = profile_text('mode = "baseline"\ntolerance_points = 1.0\n')
    # record baselines from a passing run; it also leaves an accuracy run behind
    recorded = run_suite(pytester, baseline_mode, ROUGE_SUITE, args=["--llmperf-update-baselines"])
    recorded.assert_outcomes(passed=1)
    baseline_file = next((pytester.path / "baselines").rglob("transformers-float32.json"))
    metrics = json.loads(baseline_file.read_text())["metrics"]
    assert {"rouge.rouge1", "rouge.rouge2", "rouge.rougeL", "rouge.tokens_per_sample"} <= set(metrics)
    results = json.loads((pytester.path / "llmperf-results" / "results.json").read_text())
    measured = {m["name"]: m["value"] for m in results["metrics"]}
    assert measured["rouge.gen_num"] == 4 and 0 < measured["rouge.tokens_per_sample"] <= 12
    run_folder = next((pytester.path / "llmperf-results" / "runs").iterdir())
    assert (run_folder / "mlperf_log_accuracy.json").stat().st_size > 2

    # the MLPerf targets over that finished run: reachable targets pass, raised ones fail
    monkeypatch.setenv("LLMPERF_ACCURACY_RUN", str(run_folder))
    reachable = profile_text('mode = "target"\nreference = { rouge1 = 0.0, rouge2 = 0.0, rougeL = 0.0 }\n'
                             f'tokens_per_sample = {measured["rouge.tokens_per_sample"]}\n')
    # both tests judge that run: one found under --llmperf-out for transformers-cpu, one through the folder
    run_suite(pytester, reachable, TARGETS_SUITE).assert_outcomes(passed=2)
    raised = profile_text(f'mode = "target"\nreference = {{ rouge1 = {measured["rouge.rouge1"] + 5}, '
                          'rouge2 = 0.0, rougeL = 0.0 }\nfraction = 0.99\n'
                          f'tokens_per_sample = {measured["rouge.tokens_per_sample"] * 2}\n')
    red = run_suite(pytester, raised, TARGETS_SUITE)
    red.assert_outcomes(failed=2)
    red.stdout.fnmatch_lines([
        "*compliance.accuracy.rouge1 * < * points (gate: 0.99 x *); see --llmperf-profile",
        "*compliance.accuracy.tokens_per_sample * < * tokens (gate: 0.9..1.1 x *); see --llmperf-profile",
    ] * 2)
    monkeypatch.delenv("LLMPERF_ACCURACY_RUN")

    # raise the recorded rouge1 baseline by 5 points: the baseline gate goes red
    data = json.loads(baseline_file.read_text())
    data["metrics"]["rouge.rouge1"]["value"] += 5
    baseline_file.write_text(json.dumps(data))
    red = run_suite(pytester, baseline_mode, ROUGE_SUITE)
    red.assert_outcomes(failed=1)
    red.stdout.fnmatch_lines(["*rouge.rouge1 * < * points (baselines/*transformers-float32.json: * tolerance 1 absolute)"
                              "; see --llmperf-update-baselines"])

    # and the ROUGE suite itself in target mode, with both gates out of reach
    red = run_suite(pytester, raised, ROUGE_SUITE)
    red.assert_outcomes(failed=1)
    red.stdout.fnmatch_lines([
        "*rouge.rouge1 * < * points (gate: 0.99 x *); see --llmperf-profile",
        "*rouge.tokens_per_sample * < * tokens (gate: 0.9..1.1 x *); see --llmperf-profile",
    ])


def test_compliance_targets_skip_without_targets_or_runs(pytester, monkeypatch):
    monkeypatch.delenv("LLMPERF_ACCURACY_RUN", raising=False)
    skipped = run_suite(pytester, profile_text('mode = "baseline"\n'), TARGETS_SUITE, args=["-rs", "-m", "cpu"])
    skipped.assert_outcomes(skipped=1)
    skipped.stdout.fnmatch_lines(["*sets no ROUGE targets*--llmperf-profile mlperf-llama2-70b-99*"])
    nothing = run_suite(pytester, profile_text('mode = "target"\nreference = { rouge1 = 1.0 }\n'), TARGETS_SUITE,
                        args=["-rs"])
    nothing.assert_outcomes(skipped=2)
    nothing.stdout.fnmatch_lines(["*no finished accuracy run of transformers-cpu under*",
                                  "*set LLMPERF_ACCURACY_RUN=FOLDER*"])


@pytest.mark.slow
def test_rouge_and_agreement_share_one_accuracy_run_per_engine(pytester):
    """The agreement suite runs first and makes both engines' accuracy runs; the ROUGE suite scores
    them.  Each engine's logs stay in that engine's ROUGE folder (two runs never share a folder)."""
    pytest.importorskip("vllm")
    profile = (profile_text('mode = "baseline"\ntolerance_points = 1.0\n')
               + "[engine.vllm]\nkv_cache_memory_bytes = 536870912\nmax_model_len = 2048\n")
    result = run_suite(pytester, profile, AGREEMENT_SUITE, ROUGE_SUITE,
                       args=["-s", "-m", "cpu", "--llmperf-engine", "transformers,vllm", "--llmperf-update-baselines"])
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(["*scoring the accuracy run made by *test_agreement.py::*"] * 2)
    runs = pytester.path / "llmperf-results" / "runs"
    assert sorted(p.name for p in runs.iterdir()) == ["accuracy-rouge_transformers-cpu",
                                                       "accuracy-rouge_vllm-cpu"]
    for target in ("transformers-cpu", "vllm-cpu"):
        run = json.loads((runs / f"accuracy-rouge_{target}" / "run.json").read_text())
        assert run["metadata"]["target"] == target and run["engine"]["engine"] == target.split("-")[0]
