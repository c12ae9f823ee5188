"""Options and ini settings: parsed, validated, and reported as usage errors."""

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pytest_llmperf.config import options

ENGINE_TEST = """
def test_engine(llmperf_target):
    pass
"""


def test_defaults_are_used_without_options(pytester):
    pytester.makepyfile(test_settings="""
        def test_settings(llmperf_session):
            s = llmperf_session.settings
            assert s.engines == ("transformers",)
            assert s.device == "auto"
            assert s.profile == "embedded"
            assert s.model is None
            assert s.samples is None
            assert s.out.name == "llmperf-results"
    """)
    pytester.runpytest().assert_outcomes(passed=1)


@pytest.mark.parametrize("args, message", [
    (["--llmperf-engine", "vlm"], "unknown engine 'vlm'; did you mean 'vllm'? available: transformers, vllm, openai, llm-serving"),
    (["--llmperf-device", "tpu"], "unknown device 'tpu'; choose from auto, cpu, cuda, rocm, ascend"),
    (["--llmperf-samples", "many"], "'many' is not a whole number"),
    (["--llmperf-samples", "-3"], "-3 is negative"),
    (["--llmperf-endpoint", "localhost:8000"], "is not an http(s) URL"),
    (["--llmperf-compare", "batch=2"], "unknown key 'batch' in 'batch=2'; pass one of: same, endpoint=URL"),
    (["--llmperf-compare", "same", "--llmperf-update-baselines"],
     "a paired A/B session is judged against its reference, so it records no baselines"),
    (["--llmperf-profile", "nightly-h100"],
     "unknown profile; use one of: ascend-kit, ascend-kit-short, embedded, embedded-capacity, flagperf"),
])
def test_bad_option_values_are_usage_errors(pytester, args, message):
    pytester.makepyfile(ENGINE_TEST)
    result = pytester.runpytest(*args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*{message}*"])


def test_options_can_be_set_in_ini(pytester):
    pytester.makeini("""
        [pytest]
        llmperf_engine = transformers,vllm
        llmperf_device = cpu
        llmperf_samples = 7
        llmperf_out = custom-out
        llmperf_update_baselines = true
    """)
    pytester.makepyfile(test_settings="""
        def test_settings(llmperf_session):
            s = llmperf_session.settings
            assert s.engines == ("transformers", "vllm")
            assert s.device == "cpu"
            assert s.samples == 7
            assert s.out.name == "custom-out"
            assert s.update_baselines is True
    """)
    pytester.runpytest().assert_outcomes(passed=1)
    assert (pytester.path / "custom-out" / "results.json").is_file()


def test_command_line_overrides_ini(pytester):
    pytester.makeini("""
        [pytest]
        llmperf_samples = 7
    """)
    pytester.makepyfile(test_settings="""
        def test_settings(llmperf_session):
            assert llmperf_session.settings.samples == 3
    """)
    pytester.runpytest("--llmperf-samples", "3").assert_outcomes(passed=1)


def test_bad_ini_value_names_the_setting_and_the_fix(pytester):
    pytester.makeini("""
        [pytest]
        llmperf_device = gpu
    """)
    pytester.makepyfile(ENGINE_TEST)
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*ini setting llmperf_device = 'gpu'*unknown device 'gpu'*override with --llmperf-device*"])


@pytest.mark.parametrize("text, message", [
    ("[rouge]\nfractoin = 0.9\n", "*mine.toml: unknown key 'fractoin' in ?rouge?; known keys there: mode, reference*"),
    ("[loadgen.server]\ntarget_qps = \"fast\"\n", "*loadgen.server.target_qps = 'fast' is a str, expected float*"),
    ("[mmlu]\nshots = -1\n", "*mine.toml: mmlu.shots = -1 is out of range; set mmlu.shots to >= 0*"),
])
def test_a_bad_profile_file_is_a_usage_error_at_start(pytester, text, message):
    profile = pytester.path / "mine.toml"
    profile.write_text(text)
    pytester.makepyfile(ENGINE_TEST)
    result = pytester.runpytest("--llmperf-profile", str(profile))
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message])


def test_help_lists_every_option(pytester):
    result = pytester.runpytest("--help")
    for spec in options.OPTIONS:
        result.stdout.fnmatch_lines([f"*{spec.flag}*"])
    assert not (pytester.path / "llmperf-results").exists(), "--help must not write results"


@given(st.lists(st.sampled_from(["transformers", "vllm", "openai", "llm-serving"]), min_size=1, max_size=6))
def test_engine_lists_parse_in_order_without_duplicates(names):
    parsed = options.parse_engines(",".join(names))
    assert parsed == tuple(dict.fromkeys(names))


@given(st.text(min_size=1).filter(lambda t: t.strip().lower() not in options.DEVICE_CHOICES + ("npu",)))
def test_device_parser_rejects_everything_unknown(text):
    with pytest.raises(Exception, match="choose from auto, cpu, cuda, rocm, ascend"):
        options.parse_device(text)


def test_results_json_names_requested_settings(pytester):
    pytester.makepyfile("def test_nothing():\n    pass\n")
    pytester.runpytest("--llmperf-device", "cpu", "--llmperf-engine", "transformers")
    data = json.loads((pytester.path / "llmperf-results" / "results.json").read_text())
    assert data["run"]["device_requested"] == "cpu"
    assert data["run"]["engines_requested"] == ["transformers"]
    assert data["run"]["status"] == "passed"
