"""LoadGen settings from profiles: every field set directly, TEST06 audit values, user.conf in a child process."""

from __future__ import annotations

import dataclasses

import pytest

from pytest_llmperf.errors import InputError, UsageError
from pytest_llmperf.loadgen.settings import read_user_conf, run_settings, to_test_settings
from pytest_llmperf.config.profiles import GenerationSection, LoadgenSection, load_profile


def test_embedded_server_settings_reach_loadgen():
    import mlperf_loadgen as lg

    run = run_settings(load_profile("embedded"), "Server", "PerformanceOnly")
    settings = to_test_settings(run)
    assert settings.scenario == lg.TestScenario.Server
    assert settings.mode == lg.TestMode.PerformanceOnly
    assert settings.server_target_qps == run.target_qps
    assert settings.server_target_latency_percentile == run.target_latency_percentile
    assert settings.ttft_latency == int(run.ttft_latency_ms * 1_000_000)
    assert settings.tpot_latency == int(run.tpot_latency_ms * 1_000_000)
    assert settings.min_duration_ms == run.min_duration_ms
    assert settings.min_query_count == run.min_query_count
    assert settings.use_token_latencies is True


def test_interactive_is_a_server_run_with_its_own_limits():
    import mlperf_loadgen as lg

    run = run_settings(load_profile("mlperf-llama2-70b-99"), "Interactive", "PerformanceOnly")
    assert (run.ttft_latency_ms, run.tpot_latency_ms) == (450, 40)
    assert to_test_settings(run).scenario == lg.TestScenario.Server


def test_mlperf_profile_carries_mlperf_conf_values():
    run = run_settings(load_profile("mlperf-llama2-70b-99.9"), "Offline", "PerformanceOnly")
    assert run.min_duration_ms == 600_000
    assert run.min_query_count == 24_576
    assert run.performance_sample_count == 24_576
    assert run.sample_concatenate_permutation is True
    assert to_test_settings(run).qsl_rng_seed == run.qsl_rng_seed != 0


def test_test06_uses_the_audit_config_values():
    import mlperf_loadgen as lg

    run = run_settings(load_profile("mlperf-llama2-70b-99"), "Server", "TEST06")
    settings = to_test_settings(run)
    assert settings.mode == lg.TestMode.PerformanceOnly
    assert settings.accuracy_log_sampling_target == 100
    assert settings.accuracy_log_rng_seed == 720381539243781796
    assert settings.min_query_count == 100
    assert settings.min_duration_ms == 0
    assert settings.sample_concatenate_permutation is False


def test_min_new_tokens_raised_to_two_with_a_note():
    profile = dataclasses.replace(load_profile("embedded"), generation=GenerationSection(min_new_tokens=1))
    run = run_settings(profile, "Offline", "PerformanceOnly")
    assert run.min_new_tokens == 2
    assert any("rejects 1-token responses" in note for note in run.notes)


def test_one_new_token_cannot_measure_token_latencies():
    profile = dataclasses.replace(load_profile("embedded"),
                                  generation=GenerationSection(max_new_tokens=1, min_new_tokens=1))
    with pytest.raises(UsageError, match="generation.max_new_tokens = 1.*at least 2 output tokens"):
        run_settings(profile, "Offline", "PerformanceOnly")


def test_unknown_scenario_and_mode():
    profile = load_profile("embedded")
    with pytest.raises(UsageError, match="scenario 'SingleStream'.*Offline, Server, Interactive"):
        run_settings(profile, "SingleStream", "PerformanceOnly")
    with pytest.raises(UsageError, match="mode 'Submission'"):
        run_settings(profile, "Offline", "Submission")


def test_user_conf_is_read_in_a_child_process(tmp_path):
    conf = tmp_path / "user.conf"
    conf.write_text("llama2-70b.Server.target_qps = 3.5\n*.Server.min_query_count = 77\n")
    changed = read_user_conf(str(conf), "llama2-70b", "Server")
    assert changed["server_target_qps"] == 3.5
    assert changed["min_query_count"] == 77
    # LoadGen's built-in mlperf.conf comes first, as with FromConfig in a harness.
    assert changed["use_token_latencies"] is True
    profile = dataclasses.replace(load_profile("embedded"),
                                  loadgen=dataclasses.replace(LoadgenSection(), user_conf=str(conf)))
    run = run_settings(profile, "Server", "PerformanceOnly")
    assert to_test_settings(run).server_target_qps == 3.5
    assert any("user.conf" in note for note in run.notes)


def test_missing_user_conf(tmp_path):
    with pytest.raises(InputError, match="no such user.conf"):
        read_user_conf(str(tmp_path / "nope.conf"), "llama2-70b", "Server")
