"""The bad-input matrix at the user's level: each case is one line naming the file, the problem and the fix,
exit status 2, and no Python traceback.  (Module-level cases live beside each module's tests; README lists all.)"""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def llmperf(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "pytest_llmperf.cli.main", *map(str, args)],
                          capture_output=True, text=True, cwd=cwd)


@pytest.fixture
def files(tmp_path):
    (tmp_path / "truncated.json").write_text('[{"seq_id": 0, "qsl_idx": 0, "data": "0200')
    (tmp_path / "odd").mkdir()
    (tmp_path / "odd" / "mlperf_log_accuracy.json").write_text(
        json.dumps([{"seq_id": 0, "qsl_idx": 0, "data": "020000", "token_count": 1}]))
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "results.json").write_text('{"schema": 1, "metrics": [')
    baseline = tmp_path / "baselines" / "m" / "cpu" / "e-float32.json"
    baseline.parent.mkdir(parents=True)
    baseline.write_text('{"schema": 1,')
    return tmp_path


CASES = {
    "missing accuracy log": (["test06", "{tmp}/nowhere", "--scenario", "Offline"],
                             r"nowhere: no such file; pass the folder of a LoadGen run"),
    "truncated accuracy log": (["test06", "{tmp}/truncated.json", "--scenario", "Offline"],
                               r"truncated.json: .*(truncated|not valid JSON).*"),
    "byte count not a multiple of int32": (["test06", "{tmp}/odd", "--scenario", "Offline"],
                                           r"mlperf_log_accuracy.json: .*3 bytes.*not a multiple of 4"),
    "malformed results.json": (["report", "{tmp}/results", "--out", "{tmp}/report"],
                               r"results.json: is not valid JSON .*; re-run the session"),
    "corrupt baseline file": (["baselines", "show", "--baselines", "{tmp}/baselines"],
                              r"e-float32.json: is not valid JSON .*; restore it from git"),
    "missing results folder": (["report", "{tmp}/nothing", "--out", "{tmp}/report"],
                               r"nothing: no such file; pass a folder written by a pytest-llmperf session"),
}


@pytest.mark.parametrize("case", CASES)
def test_cli_bad_input_is_one_line_exit_2(files, case):
    args, pattern = CASES[case]
    result = llmperf(*[a.format(tmp=files) for a in args])
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and re.search(pattern, lines[0]), lines


def test_no_shell_strings_anywhere():
    """Commands are argument lists, never shell strings built from user input."""
    offenders = []
    for path in list((ROOT / "pytest_llmperf").rglob("*.py")) + list((ROOT / "suites").rglob("*.py")):
        text = path.read_text()
        if re.search(r"shell\s*=\s*True|os\.system\(|os\.popen\(", text):
            offenders.append(str(path.relative_to(ROOT)))
    assert offenders == []


def test_pickle_is_only_loaded_behind_an_opt_in():
    """np.load never allows pickle; pickle.load appears only behind allow_pickle checks."""
    for path in (ROOT / "pytest_llmperf").rglob("*.py"):
        text = path.read_text()
        assert "allow_pickle=True" not in text, path
        if re.search(r"pickle\.load|read_pickle", text):
            assert "allow_pickle" in text, f"{path} reads pickle without an opt-in"
