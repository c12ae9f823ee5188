"""Compile mode of the transformers engine: settings, naming, and the same greedy tokens as eager.

The speed-up is measured on a GPU by benchmarks/bench_compile.py (see docs/gpu-runs.md);
here torch.compile runs for real on the CPU, on a two-layer model, so the test stays short.
"""

import json
import shutil

import pytest

from pytest_llmperf import models
from pytest_llmperf.engines import EngineOptions, GenerationParams, load_engine
from pytest_llmperf.engines.transformers_engine import COMPILE_ENV, compile_settings
from pytest_llmperf.errors import UsageError

TINY = dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2, head_dim=16,
            intermediate_size=128)
PROMPTS = [[1, 9, 42, 7, 300, 12], [5, 6, 7], [2000, 31, 8, 8]]


@pytest.fixture(autouse=True)
def _no_compile_env(monkeypatch):
    monkeypatch.delenv(COMPILE_ENV, raising=False)


@pytest.fixture(scope="module")
def tiny_random(embedded_model, tmp_path_factory):
    folder = tmp_path_factory.mktemp("tiny-compile")
    for name in ("tokenizer.json", "tokenizer_config.json", "generation_config.json"):
        shutil.copy(embedded_model.path / name, folder / name)
    config = json.loads((embedded_model.path / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, **TINY}))
    return models.resolve(f"random@11:{folder}")


def test_compile_is_off_unless_asked():
    assert compile_settings({}) == (False, "reduce-overhead")
    assert compile_settings({"compile": True}) == (True, "reduce-overhead")
    assert compile_settings({"compile": True, "compile_mode": "default"}) == (True, "default")


@pytest.mark.parametrize("value, expected", [("1", True), ("true", True), ("0", False), ("False", False)])
def test_the_environment_variable_wins(monkeypatch, value, expected):
    monkeypatch.setenv(COMPILE_ENV, value)
    assert compile_settings({"compile": not expected})[0] is expected


@pytest.mark.parametrize("settings, env, message", [
    ({"compile": "yes"}, None, "[engine.transformers] compile: 'yes' is not a boolean"),
    ({"compile": True, "compile_mode": "fast"}, None, "compile_mode: 'fast' is not a torch.compile mode"),
    ({}, "maybe", f"{COMPILE_ENV}: 'maybe' is not a boolean; set it to 1 or 0"),
])
def test_bad_compile_settings_name_the_setting_and_the_fix(monkeypatch, settings, env, message):
    if env is not None:
        monkeypatch.setenv(COMPILE_ENV, env)
    with pytest.raises(UsageError) as caught:
        compile_settings(settings)
    assert message in str(caught.value)


def _generate(spec, settings):
    engine = load_engine("transformers", EngineOptions(str(spec.path), spec.name, "cpu", settings=settings))
    try:
        params = GenerationParams(max_new_tokens=12, min_new_tokens=12, ignore_eos=True)
        return engine.info, engine.model.generation_config, [g.token_ids for g in engine.generate(PROMPTS, params)]
    finally:
        engine.close()


@pytest.mark.slow  # torch.compile of a model: about a minute on a 2-core CPU
def test_compiled_greedy_tokens_equal_eager_tokens(tiny_random):
    eager_info, _, eager = _generate(tiny_random, {})
    info, config, compiled = _generate(tiny_random, {"compile": True, "compile_mode": "default"})
    assert eager_info.engine == "transformers"
    # a name of its own: compiled and eager runs never share a baseline file
    assert info.engine == "transformers-compiled"
    assert "torch.compile (mode=default) with a static KV cache" in info.notes
    assert config.cache_implementation == "static" and config.compile_config.mode == "default"
    assert compiled == eager


def test_a_wrong_compile_mode_fails_the_suite_with_the_fix(pytester, tiny_random):
    pytester.makefile(".toml", bad="""
        [engine.transformers]
        compile = true
        compile_mode = "turbo"
    """)
    pytester.makepyfile(test_one="def test_generates(llmperf_engine):\n    pass\n")
    result = pytester.runpytest("-p", "no:cacheprovider", "--llmperf-device", "cpu", "--llmperf-profile", "bad.toml",
                                "--llmperf-model", f"random:{tiny_random.path}")
    result.assert_outcomes(errors=1)  # the engine fixture fails at setup
    result.stdout.fnmatch_lines(["*compile_mode: 'turbo' is not a torch.compile mode; use one of: reduce-overhead*"])
