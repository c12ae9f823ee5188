"""TEST06 checks on crafted accuracy logs: the strict rules, MLPerf's verdict, and `llmperf test06`."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pytest_llmperf.cli.main import main
from pytest_llmperf.compliance.test06 import check_test06, reference_verdict
from pytest_llmperf.loadgen.accuracy_log import ACCURACY_LOG, AccuracyEntry, read_accuracy_log

EOS = 2
GOOD = ([5, 6, 7, EOS], [8, 9, 10, 11], [12, EOS])
#: Set to MLPerf's compliance/TEST06/run_verification.py to compare verdicts with it.
REFERENCE_ENV = "LLMPERF_MLPERF_TEST06_SCRIPT"


def hex_ids(ids) -> str:
    return np.asarray(ids, dtype=np.int32).tobytes().hex().upper()


def raw_entry(index, ids, first="same", count="same"):
    entry = {"seq_id": index, "qsl_idx": 10 + index, "data": hex_ids(ids)}
    if first is not None:
        entry["token_data"] = hex_ids(ids[:1] if first == "same" else first)
    if count is not None:
        entry["token_count"] = len(ids) if count == "same" else count
    return entry


def log(*bad, rest=GOOD[1:]):
    """A log whose first entry is ``bad`` (raw_entry arguments) and the rest good."""
    return [raw_entry(0, *bad)] + [raw_entry(i, ids) for i, ids in enumerate(rest, start=1)]


CASES = {
    # name: (entries, strict verdicts (first, eos, length) for Server, reference verdicts with the default -e)
    "good": ([raw_entry(i, ids) for i, ids in enumerate(GOOD)], (True, True, True), (True, True, True)),
    "doubled EOS": (log([5, 6, EOS, EOS]), (True, False, True), (True, False, True)),
    "EOS in the middle": (log([5, EOS, 7, EOS]), (True, False, True), (True, True, True)),
    "EOS at index 0": (log([EOS, EOS], [EOS]), (True, False, True), (True, True, True)),
    "wrong token count": (log([5, 6, 7, EOS], "same", 7), (True, True, False), (True, True, False)),
    "wrong first token": (log([5, 6, 7, EOS], [99]), (False, True, True), (False, True, True)),
    "empty first token": (log([5, 6, 7, EOS], []), (False, True, True), (True, True, True)),
    "no first token logged": (log([5, 6, 7, EOS], None), (False, True, True), (False, True, True)),
}


def write(folder, entries):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / ACCURACY_LOG).write_text(json.dumps(entries))
    return folder


@pytest.mark.parametrize("name", CASES)
def test_strict_rules_name_the_sample(tmp_path, name):
    entries, strict, _ = CASES[name]
    result = check_test06(read_accuracy_log(write(tmp_path, entries)), "Server", {EOS})
    assert (result.first_token, result.eos, result.sample_length) == strict
    assert result.passed is all(strict)
    lines = result.failure_lines()
    assert len(lines) == strict.count(False)
    for line in lines:
        assert "qsl_idx 10" in line and "of 3 samples" in line


def test_offline_skips_the_first_token_rule(tmp_path):
    entries, _, _ = CASES["wrong first token"]
    result = check_test06(read_accuracy_log(write(tmp_path, entries)), "Offline", {EOS})
    assert result.first_token is None and result.passed


@pytest.mark.parametrize("name", CASES)
def test_reference_verdict(name):
    entries, _, expected = CASES[name]
    verdict = reference_verdict(entries, "Server", "int32", EOS)
    assert (verdict.first_token, verdict.eos, verdict.sample_length) == expected
    # Given with -e, the reference compares a string and never sees an EOS.
    assert reference_verdict(entries, "Server", "int32", str(EOS)).eos is True


@given(st.lists(st.lists(st.integers(0, 5), max_size=8), min_size=1, max_size=6))
def test_strict_eos_rule_is_at_least_as_strict_as_the_reference(outputs):
    entries = [raw_entry(i, ids) for i, ids in enumerate(outputs)]
    decoded = [AccuracyEntry(e["seq_id"], e["qsl_idx"], tuple(ids), len(ids), tuple(ids[:1]))
               for e, ids in zip(entries, outputs)]
    strict = check_test06(decoded, "Offline", {EOS})
    reference = reference_verdict(entries, "Offline", "int32", EOS)
    if not reference.eos:
        assert not strict.eos
    at_most_one_at_end = all(ids.count(EOS) == 0 or (ids.count(EOS) == 1 and ids[-1] == EOS) for ids in outputs)
    assert strict.eos is at_most_one_at_end


# -- the command --------------------------------------------------------------------

def run_cli(capsys, *args):
    status = main(["test06", *map(str, args)])
    return status, capsys.readouterr()


def test_cli_prints_the_reference_lines_and_writes_verify_accuracy(tmp_path, capsys):
    folder = write(tmp_path / "run", CASES["good"][0])
    status, out = run_cli(capsys, folder, "--scenario", "Server")
    expected = ("First token check pass: True\nEOS check pass: True\nSample length check pass: True\n"
                "TEST06 verification complete\n")
    assert status == 0
    assert out.out == expected + "\n"
    assert (folder / "TEST06" / "verify_accuracy.txt").read_text() == expected
    assert (folder / "TEST06" / "accuracy" / ACCURACY_LOG).is_file()


@pytest.mark.parametrize("name, status, verdict_line", [
    ("doubled EOS", 1, "EOS check pass: False"),
    ("wrong token count", 1, "Sample length check pass: False"),
    ("wrong first token", 1, "First token check pass: False"),
])
def test_cli_fails_like_the_reference(tmp_path, capsys, name, status, verdict_line):
    folder = write(tmp_path / "run", CASES[name][0])
    got, out = run_cli(capsys, folder, "--scenario", "Server", "--output-dir", tmp_path / "out")
    assert got == status
    assert verdict_line in out.out and "TEST06 verification failed" in out.out
    assert "TEST06 verification failed" in (tmp_path / "out" / "TEST06" / "verify_accuracy.txt").read_text()


def test_cli_warns_where_the_reference_is_lax(tmp_path, capsys):
    folder = write(tmp_path / "run", CASES["EOS at index 0"][0])
    status, out = run_cli(capsys, folder, "--scenario", "Offline")
    assert status == 0
    assert "TEST06 verification complete" in out.out
    assert ("WARNING: stricter check: TEST06 eos check failed for 1 of 3 samples (qsl_idx 10)" in out.out)
    assert run_cli(capsys, folder, "--scenario", "Offline", "--strict")[0] == 1


def test_cli_warns_about_the_string_eos_of_the_reference(tmp_path, capsys):
    folder = write(tmp_path / "run", CASES["doubled EOS"][0])
    status, out = run_cli(capsys, folder, "--scenario", "Server", "--eos-token-id", EOS)
    assert status == 0 and "EOS check pass: True" in out.out
    assert "compares -e 2 as a string and finds no EOS" in out.out
    assert "EOS at positions 2, 3 of 4 tokens" in out.out


def test_cli_bad_input_exits_2(tmp_path, capsys):
    status, out = run_cli(capsys, tmp_path, "--scenario", "Offline")
    assert status == 2
    assert f"{ACCURACY_LOG}: no such file" in out.err and "Traceback" not in out.err
    (tmp_path / ACCURACY_LOG).write_text('[{"seq_id": 0, "qsl_idx": 4, "data": "0100000002"}]')
    status, out = run_cli(capsys, tmp_path, "--scenario", "Offline")
    assert status == 2 and "qsl_idx 4" in out.err and "not a multiple of 4" in out.err


@pytest.mark.skipif(not os.environ.get(REFERENCE_ENV), reason=f"set {REFERENCE_ENV} to MLPerf's run_verification.py")
@pytest.mark.parametrize("scenario", ["Offline", "Server"])
@pytest.mark.parametrize("name", CASES)
def test_same_verdict_as_mlperfs_script(tmp_path, capsys, name, scenario):
    folder = write(tmp_path / "run", CASES[name][0])
    reference = subprocess.run([sys.executable, os.environ[REFERENCE_ENV], "-c", str(folder), "-o",
                                str(tmp_path / "ref"), "-s", scenario], capture_output=True, text=True, check=True)
    _, ours = run_cli(capsys, folder, "--scenario", scenario, "--output-dir", tmp_path / "ours")
    verdict = [line for line in ours.out.splitlines() if not line.startswith("WARNING")]
    assert verdict == reference.stdout.splitlines()
    assert ((tmp_path / "ours" / "TEST06" / "verify_accuracy.txt").read_text()
            == (tmp_path / "ref" / "TEST06" / "verify_accuracy.txt").read_text())
