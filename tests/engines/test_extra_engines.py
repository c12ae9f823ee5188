"""Engines from outside the package: LLMPERF_EXTRA_ENGINES and the pytest_llmperf.engines entry points (docs/engines.md)."""

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


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


def _distribution(root: Path, entry: str) -> Path:
    """A minimal installed distribution declaring ``entry`` in the engines' entry-point group."""
    info = root / "my_engines-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: my-engines\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[pytest_llmperf.engines]\n{entry}\n")
    return root


def _python_with(code: str, site: Path) -> subprocess.CompletedProcess:
    env = {key: value for key, value in os.environ.items() if key != "LLMPERF_EXTRA_ENGINES"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, (str(site), str(REPO), os.environ.get("PYTHONPATH"))))
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)


def test_an_installed_distribution_registers_an_engine_through_its_entry_point(tmp_path):
    site = _distribution(tmp_path, "mine = collections:OrderedDict")
    done = _python_with("from pytest_llmperf import engines; print(engines.engine_class('mine').__name__, "
                        "engines.validate_engine_name('mine'))", site)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["OrderedDict", "mine"]


def test_an_entry_point_cannot_take_a_built_in_name(tmp_path):
    site = _distribution(tmp_path, "vllm = collections:OrderedDict")
    done = _python_with("import pytest_llmperf.engines", site)
    assert done.returncode != 0
    assert "pytest_llmperf.engines" in done.stderr and "my-engines" in done.stderr
    assert "'vllm' is a built-in engine name" in done.stderr
