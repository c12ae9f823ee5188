"""The per-query Server path: each sample completed when its own answer ends, each query
submitted on arrival to an engine that batches continuously.

Timing properties are checked with plumbing engines (``plumbing.py``: fakes that stamp
their own tokens, so "true" times are known) through the real LoadGen; the same
properties are checked on the real vLLM CPU engine as orderings and ratios.
"""

from __future__ import annotations

import dataclasses
import json
import threading
import time

import pytest

from plumbing import InstantEngine, PacedEngine, PacedStaticEngine
from pytest_llmperf.engines import GenerationParams
from pytest_llmperf.errors import EngineError
from pytest_llmperf.loadgen import RUN_FILE, run_loadgen, run_settings
from pytest_llmperf.config.profiles import load_profile

STEP_S = 0.010
MS = 1e6  # LoadGen reports nanoseconds


@pytest.fixture(scope="module")
def profile():
    return load_profile("embedded")


def server(profile, qps=20.0, queries=40, samples=2, **fields):
    return dataclasses.replace(run_settings(profile, "Server", "PerformanceOnly"), min_duration_ms=0, target_qps=qps,
                               min_query_count=queries, performance_sample_count=samples,
                               **{"max_new_tokens": 64, **fields})


def offline(profile, samples):
    return dataclasses.replace(run_settings(profile, "Offline", "PerformanceOnly"), min_duration_ms=0,
                               min_query_count=1, performance_sample_count=samples, max_new_tokens=64,
                               target_qps=1.0)


@pytest.fixture
def completions(monkeypatch):
    """(perf_counter time, response id, token count) of every QuerySamplesComplete, in order;
    LoadGen still gets every call."""
    import mlperf_loadgen as lg

    real, seen = lg.QuerySamplesComplete, []

    def recording(responses):
        now = time.perf_counter()
        seen.extend((now, r.id, r.n_tokens) for r in responses)
        return real(responses)

    monkeypatch.setattr(lg, "QuerySamplesComplete", recording)
    return seen


@pytest.mark.parametrize("engine_class", [PacedEngine, PacedStaticEngine])
def test_a_short_answer_beside_a_long_one_is_completed_at_its_own_end(profile, tmp_path, completions, engine_class):
    engine = engine_class(step_s=STEP_S)
    try:
        run = run_loadgen(engine, [[4, 1], [64, 1]], "Offline", "PerformanceOnly", offline(profile, 2), tmp_path)
    finally:
        engine.close()
    assert run.valid, run.summary_log.read_text()
    assert [count for _, _, count in completions] == [4, 64]
    short_done, long_done = completions[0][0], completions[1][0]
    # The 4-token answer is out ~60 steps before the 64-token one; a batch barrier would make them equal.
    assert long_done - short_done > 40 * STEP_S
    # LoadGen's own latency of the short sample (its minimum) is a few steps of its own length, not 64.
    assert run.summary.latency_stats["min"] / MS < (4 + 6) * STEP_S * 1e3


def test_a_query_issued_mid_generation_starts_at_once_on_a_continuous_engine(profile, tmp_path):
    engine = PacedEngine(step_s=STEP_S)
    try:
        # 64-token answers (0.64 s) at 20 QPS: about 13 in flight at any time.
        run = run_loadgen(engine, [[64, 1]], "Server", "PerformanceOnly", server(profile, samples=1), tmp_path)
    finally:
        engine.close()
    assert run.valid, run.summary_log.read_text()
    assert run.stats.submission == "per-query" and run.stats.batch_sizes == []
    # A batch barrier would make late arrivals wait for a whole answer (640 ms): TTFT stays near one step.
    assert run.summary.percentile("ttft", 99) / MS < 3 * STEP_S * 1e3
    true_ttft = sorted(g.token_times[0] - g.start_time for g in engine.finished)
    assert true_ttft[len(true_ttft) // 2] < 2 * STEP_S


def test_reported_tpot_is_the_pacing_step_at_20_qps(profile, tmp_path):
    engine = PacedEngine(step_s=STEP_S)
    try:
        run = run_loadgen(engine, [[4, 1], [64, 1]], "Server", "PerformanceOnly", server(profile), tmp_path)
    finally:
        engine.close()
    tpot_ms = [run.summary.percentile("tpot", p) / MS for p in (50, 99)]
    # Generous bounds (a fidelity property, not a speed target): the batch path reported 214 ms here.
    assert STEP_S * 1e3 * 0.9 < tpot_ms[0] <= tpot_ms[1] < STEP_S * 1e3 * 2, tpot_ms


def test_a_static_engine_completes_each_sample_at_its_eos_step(profile, tmp_path):
    engine = PacedStaticEngine(step_s=STEP_S)
    run = run_loadgen(engine, [[4, 1], [64, 1]], "Server", "PerformanceOnly",
                      server(profile, qps=40.0, max_batch_size=16), tmp_path)
    assert run.valid and run.stats.submission == "batch"
    assert max(engine.batches) > 1  # queries that arrived during a batch shared the next one
    # Samples end at their own step, so TPOT is the step; completing at the batch's end would make it ~10x.
    assert run.summary.percentile("tpot", 99) / MS < 2 * STEP_S * 1e3


def test_an_engine_failing_on_the_10th_request_completes_every_query(profile, tmp_path):
    engine = PacedEngine(step_s=0.001, fail_on=10)
    try:
        with pytest.raises(EngineError, match=r"RuntimeError: request 10 refused.*every issued query was completed"):
            run_loadgen(engine, [[4, 1]], "Server", "PerformanceOnly", server(profile, qps=100.0, queries=30,
                                                                             samples=1), tmp_path)
    finally:
        engine.close()
    record = json.loads((tmp_path / RUN_FILE).read_text())
    assert record["stats"]["samples"] == 30 and record["finished"] is not None
    assert record["stats"]["submission"] == "per-query"
    assert len(record["stats"]["empty_qsl"]) >= 21  # the 10th and every one issued after it
    assert record["stats"]["tokens"] >= 9 * 4  # what was measured before the failure is kept


@pytest.mark.slow
def test_an_http_server_dying_mid_stream_on_the_per_query_path(embedded_model, dying_server, profile, tmp_path):
    from pytest_llmperf.engines import EngineOptions, load_engine

    process, url = dying_server
    engine = load_engine("openai", EngineOptions(str(embedded_model.path), embedded_model.name, "cpu",
                                                 endpoint=f"{url}/dies/v1", settings={"connect_timeout": 2.0}))
    try:
        with pytest.raises(EngineError, match=rf"{url}/dies/v1/completions: .*every issued query was completed"):
            run_loadgen(engine, [[1, 2, 3]], "Server", "PerformanceOnly",
                        server(profile, qps=50.0, queries=8, samples=1), tmp_path)
    finally:
        engine.close()
    record = json.loads((tmp_path / RUN_FILE).read_text())
    assert record["stats"]["samples"] == 8 and record["stats"]["submission"] == "per-query"


def test_server_workers_is_ignored_and_says_so(profile, tmp_path):
    engine = InstantEngine()
    run = run_loadgen(engine, [[1, 2]], "Server", "PerformanceOnly",
                      server(profile, qps=200.0, queries=20, samples=1, server_workers=8), tmp_path)
    assert run.valid and run.stats.samples == 20
    record = json.loads((tmp_path / RUN_FILE).read_text())
    assert any("server_workers = 8 was ignored" in note for note in record["settings"]["notes"])


# -- the same properties on the real vLLM CPU engine ----------------------------------------

@pytest.mark.slow
def test_vllm_submit_finishes_a_short_request_first(vllm_engine, tokenizer):
    prompt = tokenizer("Write a long story about a lighthouse keeper.", add_special_tokens=False)["input_ids"]
    done, finished = threading.Event(), []

    def on_done(tag, result):
        finished.append((tag, time.perf_counter(), result))
        if len(finished) == 2:
            done.set()

    start = time.perf_counter()
    vllm_engine.submit(0, prompt, GenerationParams(max_new_tokens=64, min_new_tokens=64, ignore_eos=True), None, on_done)
    vllm_engine.submit(1, prompt, GenerationParams(max_new_tokens=4, min_new_tokens=4, ignore_eos=True), None, on_done)
    assert done.wait(120)
    assert [tag for tag, _, _ in finished] == [1, 0]
    assert [len(result.token_ids) for _, _, result in finished] == [4, 64]
    short, long = (when - start for _, when, _ in finished)
    assert short < long / 3  # both started together; the short one did not wait for the long one


@pytest.mark.slow
def test_vllm_server_run_reports_the_engines_own_timings(vllm_engine, tokenizer, profile, tmp_path):
    from pytest_llmperf.datasets.openorca import load_openorca

    prompts = [list(p) for p in load_openorca("embedded", tokenizer, samples=8).prompts]
    seen, real_submit = [], vllm_engine.submit

    def watching(tag, prompt, params, on_token, on_done):
        def done(tag_, result):
            seen.append(result)
            on_done(tag_, result)
        real_submit(tag, prompt, params, on_token, done)

    vllm_engine.submit = watching
    try:
        run = run_loadgen(vllm_engine, prompts, "Server", "PerformanceOnly",
                          server(profile, qps=4.0, queries=16, samples=8, max_new_tokens=32), tmp_path)
    finally:
        del vllm_engine.submit
    assert run.stats.submission == "per-query" and run.stats.decode_steps_from == "engine"
    # Requests overlapped in the engine (per-query submission, no barrier).
    spans = sorted((g.start_time, g.token_times[-1]) for g in seen)
    assert any(later_start < end for (_, end), (later_start, _) in zip(spans, spans[1:]))
    true_ttft = sorted(g.time_to_first_token for g in seen)
    true_tpot = sorted(g.time_per_output_token for g in seen if len(g.token_ids) > 1)
    reported_ttft = run.summary.percentile("ttft", 50) / 1e9
    reported_tpot = run.summary.percentile("tpot", 50) / 1e9
    # Ratios, robust to a slow machine: LoadGen's medians agree with the engine's own stamps.
    assert reported_ttft < 1.5 * true_ttft[len(true_ttft) // 2] + 0.005
    assert 0.7 < reported_tpot / true_tpot[len(true_tpot) // 2] < 1.3
    # MBU's step count comes from vLLM's own step counter: fewer steps than tokens when requests overlap.
    assert 0 < run.stats.decode_steps <= run.stats.tokens
