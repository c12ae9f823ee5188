"""OpenOrca loading: the embedded sample with the real tokenizer, and the processed formats."""

from __future__ import annotations

import json

import pytest

from pytest_llmperf.datasets import openorca
from pytest_llmperf.errors import InputError


def processed_rows(count: int = 3) -> list[dict]:
    return [
        {"id": f"cot.{i}", "system_prompt": "Be brief.", "question": f"Question {i}?", "output": f"Answer number {i}.",
         "input": f"<s>[INST] Question {i}? [/INST]", "tok_input": [1, 2, 3 + i], "tok_output": [4, 5 + i],
         "origin": "cot"}
        for i in range(count)
    ]


def test_embedded_sample_has_mixed_styles_and_real_tokens(tokenizer):
    dataset = openorca.load_openorca("embedded", tokenizer)
    assert len(dataset) >= 48
    assert dataset.path == openorca.EMBEDDED_FILE
    assert set(openorca.origins(dataset)) == {"cot", "flan", "niv", "t0"}
    assert len({s.id for s in dataset.samples}) == len(dataset)
    first = dataset.samples[0]
    # the prompt is the model's chat template (system + user), and the tokens are the tokenizer's
    assert first.system_prompt in first.input and first.question in first.input
    assert tokenizer.decode(first.tok_input) == first.input
    assert tokenizer.decode(first.tok_output) == first.output
    for sample in dataset.samples:
        assert sample.system_prompt and sample.question and sample.output
        assert 3 <= len(sample.output.split()) <= 80


def test_any_prefix_of_the_embedded_sample_mixes_styles(tokenizer):
    dataset = openorca.load_openorca("embedded", tokenizer, samples=8)
    assert len(dataset) == 8
    assert len(openorca.origins(dataset)) == 4


def test_embedded_tokenization_is_cached_per_tokenizer(tokenizer, tmp_path, monkeypatch):
    monkeypatch.setenv("LLMPERF_CACHE", str(tmp_path))
    first = openorca.load_openorca("embedded", tokenizer)
    cached = list((tmp_path / "datasets").glob("openorca-embedded-*.json"))
    assert len(cached) == 1
    # a second load reads the cache: tamper with it and see the tampered value come back
    data = json.loads(cached[0].read_text())
    data["rows"][0]["tok_input"] = [7, 7, 7]
    cached[0].write_text(json.dumps(data))
    second = openorca.load_openorca("embedded", tokenizer)
    assert second.samples[0].tok_input == (7, 7, 7)
    assert second.samples[1:] == first.samples[1:]


@pytest.mark.parametrize("suffix", [".parquet", ".json", ".jsonl"])
def test_processed_file_round_trip(tmp_path, suffix):
    path = openorca.write_processed(tmp_path / f"orca{suffix}", processed_rows(3))
    dataset = openorca.load_openorca(str(path))
    assert dataset.path == path
    assert [s.id for s in dataset.samples] == ["cot.0", "cot.1", "cot.2"]
    assert dataset.samples[2].tok_input == (1, 2, 5)
    assert dataset.samples[1].tok_output == (4, 6)
    assert openorca.load_openorca(str(path), samples=2).samples == dataset.samples[:2]


def test_missing_file_names_the_file(tmp_path):
    with pytest.raises(InputError, match=r"nope\.parquet: no such file; .*prepare-openorca"):
        openorca.load_openorca(str(tmp_path / "nope.parquet"))


def test_missing_columns_are_named(tmp_path):
    rows = [{k: v for k, v in row.items() if k not in ("tok_input", "origin")} for row in processed_rows(2)]
    path = openorca.write_processed(tmp_path / "orca.parquet", rows)
    with pytest.raises(InputError, match=r"has no column 'tok_input', 'origin'"):
        openorca.load_openorca(str(path))


def test_zero_rows(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    empty_json = tmp_path / "empty.json"
    empty_json.write_text("")
    with pytest.raises(InputError, match="empty.json: has zero rows"):
        openorca.load_openorca(str(empty_json))
    empty_parquet = tmp_path / "empty.parquet"
    pq.write_table(pa.table({c: pa.array([], pa.string()) for c in openorca.COLUMNS}), empty_parquet)
    with pytest.raises(InputError, match="empty.parquet: has zero rows"):
        openorca.load_openorca(str(empty_parquet))


def test_unreadable_parquet(tmp_path):
    path = tmp_path / "broken.parquet"
    path.write_bytes(b"not a parquet file")
    with pytest.raises(InputError, match=r"broken.parquet: cannot be read as parquet"):
        openorca.load_openorca(str(path))


def test_pickle_needs_explicit_opt_in(tmp_path):
    import pandas

    path = tmp_path / "orca.pkl"
    pandas.DataFrame(processed_rows(2)).to_pickle(path)
    with pytest.raises(InputError, match=r"orca.pkl: is a pickle, and loading a pickle runs code.*allow_pickle"):
        openorca.load_openorca(str(path))
    dataset = openorca.load_openorca(str(path), allow_pickle=True)
    assert [s.output for s in dataset.samples] == ["Answer number 0.", "Answer number 1."]


def test_unknown_extension(tmp_path):
    path = tmp_path / "orca.csv"
    path.write_text("id\n1\n")
    with pytest.raises(InputError, match=r"unknown extension '.csv'"):
        openorca.load_openorca(str(path))
