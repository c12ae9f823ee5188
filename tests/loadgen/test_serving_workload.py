"""The Ascend kit's workload (Poisson X qps for T s, X x T requests, scored by wall time):
its profiles, on a paced plumbing engine, and for real on the llm-serving loopback server."""

from __future__ import annotations

import dataclasses

import pytest

from plumbing import PacedEngine
from pytest_llmperf.errors import InputError
from pytest_llmperf.loadgen import run_loadgen
from pytest_llmperf.loadgen.serving_workload import run_workload, workload_settings
from pytest_llmperf.config.profiles import ServingWorkloadSection, load_profile

PROMPTS = [[8, 1, 1, 1]] * 8


def test_profiles_carry_the_kits_defaults():
    kit, short = load_profile("ascend-kit"), load_profile("ascend-kit-short")
    assert (kit.serving_workload.qps, kit.serving_workload.seconds, kit.serving_workload.requests) == (0.5, 3000, 1500)
    assert (short.serving_workload.qps, short.serving_workload.requests) == (0.5, 30)
    settings = workload_settings(kit)
    assert (settings.target_qps, settings.min_query_count, settings.max_query_count, settings.min_duration_ms) == (
        0.5, 1500, 1500, 0)


def test_a_fractional_request_count_is_refused(tmp_path):
    text = (load_profile("ascend-kit-short").source and
            open(load_profile("ascend-kit-short").source).read().replace("seconds = 60", "seconds = 61.3"))
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(InputError, match=r"0.5 x 61.3 = 30.65 is not a whole number of requests"):
        load_profile(str(path))


def test_exactly_x_times_t_requests_are_issued(tmp_path):
    profile = load_profile("ascend-kit-short")
    profile = dataclasses.replace(profile, serving_workload=ServingWorkloadSection(True, 20.0, 1.5))
    engine = PacedEngine(0.005)
    try:
        result = run_workload(lambda s, f: run_loadgen(engine, PROMPTS, "Server", "PerformanceOnly", s, f),
                              profile, tmp_path)
    finally:
        engine.close()
    assert result.requests == 30 and result.stats.queries == 30
    assert result.loadgen_result == "VALID"
    # Poisson arrivals for 1.5 s on average; 30 of them end within a few seconds either way.
    assert 0.3 < result.total_seconds < 10
    assert result.stats.latency_ms["e2e"][50.0] >= 8 * 5 - 1  # 8 tokens of 5 ms


@pytest.mark.slow
def test_short_kit_workload_on_the_llm_serving_loopback(llm_serving_engine, tokenizer, tmp_path):
    """The real thing, shortened: the llm-serving engine over HTTP against the loopback server
    (the transformers engine on the embedded model, one request at a time)."""
    profile = load_profile("ascend-kit-short")
    profile = dataclasses.replace(profile, serving_workload=ServingWorkloadSection(True, 0.5, 12.0))
    from pytest_llmperf.datasets.openorca import load_openorca

    prompts = [list(p) for p in load_openorca("embedded", tokenizer, samples=8).prompts]
    result = run_workload(lambda s, f: run_loadgen(llm_serving_engine, prompts, "Server", "PerformanceOnly", s, f),
                          profile, tmp_path)
    assert result.stats.queries == 6 and result.stats.tokens_per_second > 0
    assert result.stats.latency_ms["ttft"][50.0] > 0 and result.total_seconds > 0
