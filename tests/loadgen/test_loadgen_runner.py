"""The LoadGen runner and its SUTs: the real transformers engine on the embedded model
(valid runs, the response contract), and a scripted engine for failure plumbing."""

from __future__ import annotations

import dataclasses
import json
import time

import pytest

from pytest_llmperf.engines import EngineInfo, Generation, GenerationParams
from pytest_llmperf.errors import EngineError
from pytest_llmperf.loadgen import RUN_FILE, read_accuracy_log, run_loadgen, run_settings
from pytest_llmperf.config.profiles import load_profile

EOS = 2


@pytest.fixture(scope="module")
def prompts(tokenizer):
    from pytest_llmperf.datasets.openorca import load_openorca

    return [list(p) for p in load_openorca("embedded", tokenizer).prompts]


@pytest.fixture(scope="module")
def profile():
    return load_profile("embedded")


def check_response_contract(entries, eos_token_ids, first_token: bool):
    """int32 ids, n_tokens == len(ids), EOS at most once and only last, first token as reported."""
    assert entries
    for entry in entries:
        ids = entry.token_ids
        assert entry.token_count == len(ids) >= 2, entry
        eos_positions = [i for i, t in enumerate(ids) if t in eos_token_ids]
        assert eos_positions in ([], [len(ids) - 1]), entry
        if first_token:
            assert entry.first_token_ids == ids[:1], entry


# -- the real engine ------------------------------------------------------------

@pytest.mark.slow  # LoadGen on the real model
def test_offline_performance_run_is_valid(hf_engine, prompts, profile, tmp_path):
    run = run_loadgen(hf_engine, prompts, "Offline", "PerformanceOnly", profile, tmp_path,
                      metadata={"model": "m", "tokenizer": "t", "dataset": "embedded"})
    assert run.valid, run.summary_log.read_text()
    assert run.summary.errors == 0 and not run.detail.errors
    assert run.summary.tokens_per_second > 0 and run.summary.samples_per_second > 0
    assert run.stats.samples == run.settings.min_query_count == run.stats.batch_sizes[0]
    record = json.loads((tmp_path / RUN_FILE).read_text())
    assert (record["model"], record["tokenizer"], record["dataset"]) == ("m", "t", "embedded")
    assert record["result"] == "VALID" and record["settings"]["scenario"] == "Offline"
    assert record["engine"]["engine"] == "transformers"


@pytest.mark.slow  # LoadGen on the real model
def test_server_performance_run_is_valid(hf_engine, prompts, profile, tmp_path):
    run = run_loadgen(hf_engine, prompts, "Server", "PerformanceOnly", profile, tmp_path)
    assert run.valid, run.summary_log.read_text()
    assert run.summary.errors == 0 and not run.detail.errors
    assert run.summary.percentile("ttft", 99) > 0 and run.summary.percentile("tpot", 99) > 0
    assert run.stats.samples == run.settings.min_query_count


@pytest.mark.slow  # LoadGen on the real model
def test_offline_accuracy_outputs_are_the_engines(hf_engine, prompts, profile, tmp_path):
    subset = prompts[:4]
    run = run_loadgen(hf_engine, subset, "Offline", "AccuracyOnly", profile, tmp_path)
    assert run.summary is None and not run.detail.errors
    entries = read_accuracy_log(run.accuracy_log)
    assert sorted(e.qsl_idx for e in entries) == [0, 1, 2, 3]
    check_response_contract(entries, hf_engine.eos_token_ids, first_token=False)
    params = GenerationParams(max_new_tokens=run.settings.max_new_tokens, min_new_tokens=run.settings.min_new_tokens)
    direct = hf_engine.generate(subset, params)
    assert {e.qsl_idx: e.token_ids for e in entries} == {i: g.token_ids for i, g in enumerate(direct)}


@pytest.mark.slow  # LoadGen on the real model
def test_server_reports_the_first_token_it_then_returns(hf_engine, prompts, profile, tmp_path):
    fast = dataclasses.replace(run_settings(profile, "Server", "AccuracyOnly"), target_qps=5.0)
    run = run_loadgen(hf_engine, prompts[:3], "Server", "AccuracyOnly", fast, tmp_path)
    assert not run.detail.errors
    check_response_contract(read_accuracy_log(run.accuracy_log), hf_engine.eos_token_ids, first_token=True)


# -- a scripted engine: failure plumbing only --------------------------------------

class ScriptedEngine:
    """Answers every prompt with ``answer``; raises on generate call number ``fail_on``."""

    eos_token_ids = frozenset({EOS})
    info = EngineInfo("scripted", "none", "cpu", "test", "float32", {})

    def __init__(self, answer=(5, 6, EOS), fail_on: int | None = None):
        self.answer, self.fail_on, self.calls = tuple(answer), fail_on, 0

    def generate(self, prompts, params, on_token=None, on_finish=None):
        self.calls += 1
        if self.calls == self.fail_on:
            raise RuntimeError("device lost")
        start = time.perf_counter()
        out = []
        for index, _ in enumerate(prompts):
            times = []
            for token in self.answer:
                times.append(time.perf_counter())
                if on_token:
                    on_token(index, token, times[-1])
            out.append(Generation(self.answer, tuple(times), start, "eos"))
        return out


def quick(profile, scenario, mode="PerformanceOnly"):
    """8 queries over the 8 prompts of these tests, each loaded once (the profile may load fewer)."""
    return dataclasses.replace(run_settings(profile, scenario, mode), min_duration_ms=0, target_qps=50.0,
                               min_query_count=8, performance_sample_count=8)


@pytest.mark.parametrize("scenario", ["Offline", "Server"])
def test_engine_failure_completes_every_query_and_names_the_error(profile, tmp_path, scenario):
    engine = ScriptedEngine(fail_on=1 if scenario == "Offline" else 3)
    prompts = [[1, 2, 3]] * 8
    with pytest.raises(EngineError, match=r"scripted.*RuntimeError: device lost.*every issued query was completed"):
        run_loadgen(engine, prompts, scenario, "PerformanceOnly", quick(profile, scenario), tmp_path)
    record = json.loads((tmp_path / RUN_FILE).read_text())
    assert record["stats"]["engine_error"] == "RuntimeError: device lost"
    assert record["stats"]["samples"] == 8  # LoadGen saw every issued sample completed
    assert record["finished"] is not None


def test_one_token_answers_are_flagged(profile, tmp_path):
    engine = ScriptedEngine(answer=(EOS,))
    run = run_loadgen(engine, [[1, 2]] * 8, "Offline", "PerformanceOnly", quick(profile, "Offline"), tmp_path)
    assert sorted(run.stats.one_token_qsl) == list(range(8))
    assert any("greater than 1" in str(r.value) for r in run.detail.errors)
    assert run.summary.errors > 0


def test_empty_prompt_list_is_refused(profile, tmp_path):
    from pytest_llmperf.errors import UsageError

    with pytest.raises(UsageError, match="no prompts"):
        run_loadgen(ScriptedEngine(), [], "Offline", "PerformanceOnly", profile, tmp_path)
