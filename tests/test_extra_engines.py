"""LLMPERF_EXTRA_ENGINES registers an engine from outside the package (docs/engines.md)."""

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _python(code: str, extra: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "LLMPERF_EXTRA_ENGINES": extra,
           "PYTHONPATH": os.pathsep.join(filter(None, (str(REPO), os.environ.get("PYTHONPATH"))))}
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)


def test_an_extra_engine_is_registered_and_imported_from_its_own_module():
    done = _python("from pytest_llmperf import engines; print(engines.engine_class('mine').__name__, "
                   "engines.validate_engine_name('mine'))", "mine=collections:OrderedDict")
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["OrderedDict", "mine"]


def test_a_malformed_entry_names_the_variable_and_the_form():
    done = _python("import pytest_llmperf.engines", "mine=collections")
    assert done.returncode != 0
    assert "LLMPERF_EXTRA_ENGINES" in done.stderr and "is not name=module:Class" in done.stderr
