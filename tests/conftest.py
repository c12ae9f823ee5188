"""Fixtures shared by the plugin's own tests."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

SUITES = Path(__file__).resolve().parents[1] / "suites"


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
