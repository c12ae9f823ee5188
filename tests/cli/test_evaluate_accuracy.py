"""``llmperf evaluate-accuracy``: MLPerf's arguments and printed dict; one-line errors, exit 2."""

from __future__ import annotations

import ast
import json
import subprocess
import sys

import numpy as np
import pytest

from pytest_llmperf.cli.main import main
from pytest_llmperf.datasets.openorca import embedded_records, write_processed
from pytest_llmperf.loadgen.accuracy_log import read_accuracy_log
from pytest_llmperf.metrics import rouge


def write_log(path, responses, dtype=np.int32):
    """responses: (qsl_idx, token ids) in log order, written as LoadGen does (hex, little-endian)."""
    entries = [{"seq_id": seq, "qsl_idx": qsl, "data": np.asarray(tokens, dtype).tobytes().hex().upper(),
                "token_count": len(tokens)} for seq, (qsl, tokens) in enumerate(responses)]
    path.write_text(json.dumps(entries))
    return path


@pytest.fixture
def run_files(tmp_path, tokenizer):
    """A dataset of 12 embedded references and a log answering each with another sample's answer."""
    records = embedded_records()[:12]
    dataset = write_processed(tmp_path / "orca.parquet",
                              [{"id": r["id"], "output": r["output"], "origin": r["origin"]} for r in records])
    eos = tokenizer.eos_token_id
    responses = [(i, tokenizer(records[(i + 1) % 12]["output"] if i % 3 else records[i]["output"],
                               add_special_tokens=False)["input_ids"] + [eos]) for i in reversed(range(12))]
    responses.append((3, [eos]))  # a later response for qsl_idx 3: ignored
    log = write_log(tmp_path / "mlperf_log_accuracy.json", responses)
    return log, dataset


def args(log, dataset, *extra):
    return ["evaluate-accuracy", "--checkpoint-path", "embedded", "--mlperf-accuracy-file", str(log),
            "--dataset-file", str(dataset), "--dtype", "int32", *extra]


def test_prints_mlperf_dict_as_last_line(run_files, tokenizer, capsys):
    log, dataset = run_files
    assert main(args(log, dataset)) == 0
    out = capsys.readouterr().out
    assert "rougeLsum sentence splitter: " in out and "\nResults\n" in out
    printed = ast.literal_eval(out.strip().splitlines()[-1])  # plain numbers: literal_eval would reject np.float64(...)
    expected = rouge.score_accuracy_log(read_accuracy_log(log, "int32"), [r["output"] for r in embedded_records()[:12]],
                                        tokenizer, method="reference")
    assert printed == expected.mlperf_dict()
    assert printed["gen_num"] == 12
    # samples 0, 3, 6, 9 answered with their own reference
    assert 0 < printed["rouge1"] < 100 and printed["rouge2"] < printed["rouge1"]


def test_reference_method_and_json_output(run_files, tmp_path, capsys):
    log, dataset = run_files
    out_json = tmp_path / "result.json"
    assert main(args(log, dataset, "--method", "reference", "--json", str(out_json), "--verbose")) == 0
    printed = ast.literal_eval(capsys.readouterr().out.strip().splitlines()[-1])
    written = json.loads(out_json.read_text())
    assert {k: written[k] for k in printed} == printed
    assert written["sentence_splitter"]


def test_json_dataset_and_folder_log(run_files, tmp_path, capsys):
    log, _ = run_files
    dataset = write_processed(tmp_path / "orca.jsonl", [{"output": r["output"]} for r in embedded_records()[:12]])
    assert main(args(log.parent, dataset)) == 0
    assert ast.literal_eval(capsys.readouterr().out.strip().splitlines()[-1])["gen_num"] == 12


def error_of(argv, capsys) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    return err


def test_missing_log(run_files, tmp_path, capsys):
    _, dataset = run_files
    assert "nope.json: no such file" in error_of(args(tmp_path / "nope.json", dataset), capsys)


def test_truncated_log(run_files, capsys):
    log, dataset = run_files
    log.write_text(log.read_text()[:-40])
    assert "mlperf_log_accuracy.json: is truncated" in error_of(args(log, dataset), capsys)


def test_byte_count_not_a_multiple_of_the_dtype(run_files, tmp_path, capsys):
    _, dataset = run_files
    log = write_log(tmp_path / "odd.json", [(0, [1, 2, 3])])  # 12 bytes of int32
    err = error_of(args(log, dataset)[:-2] + ["--dtype", "int64"], capsys)
    assert "odd.json: entry 0 (qsl_idx 0): 'data' holds 12 bytes, not a multiple of 8 (int64)" in err


def test_wrong_dtype_that_divides_evenly_is_caught_by_the_vocabulary(run_files, tmp_path, capsys):
    _, dataset = run_files
    log = write_log(tmp_path / "even.json", [(0, [1000, 2000])])  # 8 bytes read as one int64
    err = error_of(args(log, dataset)[:-2] + ["--dtype", "int64"], capsys)
    assert "even.json: token id 8589934593000 is outside the tokenizer's vocabulary" in err and "--dtype" in err


def test_qsl_idx_outside_the_dataset(run_files, tmp_path, capsys):
    _, dataset = run_files
    log = write_log(tmp_path / "far.json", [(0, [1]), (12, [1])])
    assert "far.json: qsl_idx 12 (seq_id 1) is outside the dataset (12 samples)" in error_of(args(log, dataset), capsys)


def test_dataset_without_output(run_files, tmp_path, capsys):
    log, _ = run_files
    dataset = write_processed(tmp_path / "no_output.parquet", [{"id": "cot.1", "question": "q"}])
    err = error_of(args(log, dataset), capsys)
    assert "no_output.parquet: has no column 'output' (columns: id, question)" in err


def test_pickle_dataset_needs_allow_pickle(run_files, tmp_path, capsys):
    import pandas

    log, _ = run_files
    dataset = tmp_path / "orca.pkl"
    pandas.DataFrame({"output": [r["output"] for r in embedded_records()[:12]]}).to_pickle(dataset)
    assert "orca.pkl: is a pickle, and loading a pickle runs code" in error_of(args(log, dataset), capsys)
    assert main(args(log, dataset, "--allow-pickle")) == 0
    assert ast.literal_eval(capsys.readouterr().out.strip().splitlines()[-1])["gen_num"] == 12


def test_checkpoint_that_is_not_a_folder(run_files, tmp_path, capsys):
    log, dataset = run_files
    argv = args(log, dataset)
    argv[argv.index("embedded")] = str(tmp_path / "no-model")
    assert "no-model: is not a folder" in error_of(argv, capsys)


def test_console_script_exits_2_without_traceback(run_files, tmp_path):
    _, dataset = run_files
    done = subprocess.run([sys.executable, "-m", "pytest_llmperf.cli.main", *args(tmp_path / "nope.json", dataset)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr and "nope.json: no such file" in done.stderr


def test_embedded_dataset_by_name(tmp_path, tokenizer, capsys):
    records = embedded_records()
    responses = [(i, tokenizer(records[i]["output"], add_special_tokens=False)["input_ids"]) for i in range(4)]
    log = write_log(tmp_path / "mlperf_log_accuracy.json", responses)
    assert main(args(log, "embedded")) == 0
    printed = ast.literal_eval(capsys.readouterr().out.strip().splitlines()[-1])
    assert printed["gen_num"] == 4 and printed["rouge1"] == 100.0
