"""Fixtures shared by the plugin's own tests."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

SUITES = Path(__file__).resolve().parents[1] / "suites"

#: Fixtures that start vLLM or a server: a test using one (directly or as a parameter) must be marked ``slow``.
SLOW_FIXTURES = frozenset({"vllm_engine", "vllm_server", "openai_engine", "llm_serving_server", "llm_serving_engine",
                           "faulty_server", "dying_server", "llama_cpp_server", "llama_cpp_engine"})


def pytest_collection_modifyitems(items):
    """``slow`` is marked one way: ``@pytest.mark.slow`` on the test (or ``pytest.param(..., marks=pytest.mark.slow)``
    on one parameter); ``make test-fast`` leaves those out.  A test that starts vLLM or a server through a fixture
    without the mark is an error at collection, naming the test and the fixture."""
    unmarked = []
    for item in items:
        params = getattr(getattr(item, "callspec", None), "params", {})
        used = (set(item.fixturenames) | {value for value in params.values() if isinstance(value, str)}) & SLOW_FIXTURES
        if used and item.get_closest_marker("slow") is None:
            unmarked.append(f"{item.nodeid} (uses {', '.join(sorted(used))})")
    if unmarked:
        raise pytest.UsageError("tests that start vLLM or a server must be marked @pytest.mark.slow:\n  "
                                + "\n  ".join(unmarked))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """A failing test that used a llama-cpp-python server shows the end of that server's log."""
    outcome = yield
    report = outcome.get_result()
    if report.failed and "llama_cpp" in item.nodeid:
        import engine_fixtures

        for server in engine_fixtures.STARTED_SERVERS[-2:]:
            report.sections.append((f"llama-cpp-python server log ({server.log_path})", server.log_tail(40)))


@pytest.fixture(scope="session")
def embedded_model():
    """The embedded model's checkpoint (materialized once into $LLMPERF_CACHE)."""
    from pytest_llmperf import models

    return models.resolve(None)


@pytest.fixture(scope="session")
def hf_engine(embedded_model):
    """The real transformers engine on the embedded model, CPU, float32."""
    from pytest_llmperf.engines import EngineOptions, load_engine

    engine = load_engine("transformers", EngineOptions(str(embedded_model.path), embedded_model.name, "cpu"))
    yield engine
    engine.close()


@pytest.fixture(scope="session")
def tokenizer(embedded_model):
    from pytest_llmperf import models

    return models.load_tokenizer(embedded_model)


@pytest.fixture
def copy_suites(pytester, monkeypatch):
    """``copy_suites(folder, *names)``: shipped suite files into the pytester folder, offline and quiet."""
    def copy(folder: str, *names: str):
        monkeypatch.setenv("HF_HUB_OFFLINE", "1")
        monkeypatch.setenv("TRANSFORMERS_VERBOSITY", "error")
        for name in names:
            shutil.copy(SUITES / folder / name, pytester.path / name)
        return pytester

    return copy


from engine_fixtures import *  # noqa: F401,F403
