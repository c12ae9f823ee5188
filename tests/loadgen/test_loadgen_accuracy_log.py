"""Reading mlperf_log_accuracy.json: decoding by dtype and clear errors on bad files."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pytest_llmperf.errors import InputError, UsageError
from pytest_llmperf.loadgen.accuracy_log import ACCURACY_LOG, DTYPES, read_accuracy_log

token_lists = st.lists(st.integers(min_value=-(2**31), max_value=2**31 - 1), min_size=0, max_size=40)


def write_log(folder, entries) -> None:
    (folder / ACCURACY_LOG).write_text(json.dumps(entries), encoding="utf-8")


def hex_of(values, dtype) -> str:
    return np.asarray(values, dtype=DTYPES[dtype]).tobytes().hex().upper()


@given(st.lists(token_lists, max_size=12), st.booleans())
def test_int32_round_trip(tmp_path_factory, outputs, with_counts):
    folder = tmp_path_factory.mktemp("log")
    entries = []
    for index, tokens in enumerate(outputs):
        entry = {"seq_id": index, "qsl_idx": 100 + index, "data": hex_of(tokens, "int32")}
        if with_counts:
            entry["token_count"] = len(tokens)
        entries.append(entry)
    write_log(folder, entries)
    decoded = read_accuracy_log(folder)
    assert [e.token_ids for e in decoded] == [tuple(t) for t in outputs]
    assert [e.qsl_idx for e in decoded] == [100 + i for i in range(len(outputs))]
    assert [e.token_count for e in decoded] == [len(t) if with_counts else None for t in outputs]


@given(st.lists(st.integers(min_value=-(2**63), max_value=2**63 - 1), max_size=20))
def test_int64_decoding(tmp_path_factory, values):
    folder = tmp_path_factory.mktemp("log")
    write_log(folder, [{"seq_id": 0, "qsl_idx": 3, "data": hex_of(values, "int64")}])
    assert read_accuracy_log(folder / ACCURACY_LOG, dtype="int64")[0].token_ids == tuple(values)


@given(st.lists(st.floats(width=32, allow_nan=False), max_size=20))
def test_float32_decoding(tmp_path_factory, values):
    folder = tmp_path_factory.mktemp("log")
    write_log(folder, [{"seq_id": 0, "qsl_idx": 3, "data": hex_of(values, "float32")}])
    assert read_accuracy_log(folder, dtype="float32")[0].token_ids == tuple(values)


def test_lowercase_hex_and_empty_list(tmp_path):
    write_log(tmp_path, [{"seq_id": 1, "qsl_idx": 2, "data": "0d000000"}])
    assert read_accuracy_log(tmp_path)[0].token_ids == (13,)
    write_log(tmp_path, [])
    assert read_accuracy_log(tmp_path) == []


def test_first_token_data(tmp_path):
    write_log(tmp_path, [{"seq_id": 0, "qsl_idx": 5, "data": hex_of([7, 8, 2], "int32"),
                          "token_data": hex_of([7], "int32"), "token_count": 3}])
    entry = read_accuracy_log(tmp_path)[0]
    assert (entry.token_ids, entry.first_token_ids, entry.token_count) == ((7, 8, 2), (7,), 3)
    write_log(tmp_path, [{"seq_id": 0, "qsl_idx": 5, "data": "", "token_data": "0700"}])
    with pytest.raises(InputError, match="'token_data' holds 2 bytes"):
        read_accuracy_log(tmp_path)


def test_missing_file_names_the_file(tmp_path):
    with pytest.raises(InputError, match=f"{ACCURACY_LOG}: no such file"):
        read_accuracy_log(tmp_path)


def test_truncated_file_says_truncated(tmp_path):
    text = json.dumps([{"seq_id": 0, "qsl_idx": 0, "data": "01000000"}] * 3)
    (tmp_path / ACCURACY_LOG).write_text(text[: len(text) // 2])
    with pytest.raises(InputError, match="is truncated .*re-run the LoadGen test"):
        read_accuracy_log(tmp_path)


def test_malformed_json(tmp_path):
    (tmp_path / ACCURACY_LOG).write_text('[{"seq_id": 0,, }]')
    with pytest.raises(InputError, match="is not valid JSON"):
        read_accuracy_log(tmp_path)


def test_byte_count_not_multiple_of_dtype(tmp_path):
    write_log(tmp_path, [{"seq_id": 0, "qsl_idx": 7, "data": "010000000200"}])
    with pytest.raises(InputError, match=r"entry 0 \(qsl_idx 7\): 'data' holds 6 bytes, not a multiple of 4 \(int32\)"):
        read_accuracy_log(tmp_path)


@pytest.mark.parametrize("entries, problem", [
    ({"seq_id": 0}, "expected a list"),
    ([[1, 2]], "entry 0 is a list"),
    ([{"qsl_idx": 1, "data": ""}], "no integer 'seq_id'"),
    ([{"seq_id": 0, "qsl_idx": 1}], "no hex string 'data'"),
    ([{"seq_id": 0, "qsl_idx": 1, "data": "zz"}], "not hexadecimal"),
    ([{"seq_id": 0, "qsl_idx": 1, "data": "", "token_count": "3"}], "'token_count' is '3'"),
])
def test_wrong_shapes(tmp_path, entries, problem):
    write_log(tmp_path, entries)
    with pytest.raises(InputError, match=problem):
        read_accuracy_log(tmp_path)


def test_unknown_dtype(tmp_path):
    write_log(tmp_path, [])
    with pytest.raises(UsageError, match="dtype 'int33'.*int32"):
        read_accuracy_log(tmp_path, dtype="int33")
