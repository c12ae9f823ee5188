"""``llmperf prepare-openorca``: MLPerf's processorca filters on a small OpenOrca-schema parquet we write."""

from __future__ import annotations

import pandas
import pytest

from pytest_llmperf.cli.main import main
from pytest_llmperf.datasets import processorca
from pytest_llmperf.datasets.openorca import load_openorca

GOOD_PROMPT = "You are a helpful assistant."
BAD_PROMPT = "Explain how you used the definition to come up with the answer."


def openorca_rows() -> list[dict]:
    """Rows named by whether the filters must keep them."""
    rows = []

    def add(label: str, origin: str, question: str, response: str, system: str = GOOD_PROMPT):
        rows.append({"id": f"{origin}.{label}-{len(rows)}", "system_prompt": system, "question": question,
                     "response": response})

    for origin in ("cot", "flan", "niv", "t0"):
        for n in range(6):
            add("keep", origin, f"What is {n} plus {n} in the {origin} set?", f"The sum of {n} and {n} is {2 * n}.")
        add("drop", origin, "Où est la gare?", "The station is next to the market.")  # non-ASCII input
        add("drop", origin, "Name a pastry.", "A croissant or a crème brûlée.")  # non-ASCII output
        add("keep", origin, "Quote the sign’s text — exactly.", "It says “closed on Sunday” – sorry.")  # allowed
        add("drop", origin, " ".join(["word"] * 300), "A long question indeed.")  # input too long
        add("drop", origin, "Write a long answer.", " ".join(["answer"] * 300))  # output too long
        add("drop", origin, "Is water wet?", "Yes")  # output shorter than 3 tokens
    add("drop", "niv", "Bad prompt on niv.", "This row uses a known bad system prompt.", system="")
    add("drop", "t0", "Bad prompt on t0.", "This row uses a known bad system prompt.", system=BAD_PROMPT)
    add("keep", "cot", "Bad prompt on cot.", "Bad prompts only matter for niv and t0 rows.", system="")
    return rows


@pytest.fixture
def openorca_parquet(tmp_path):
    path = tmp_path / "openorca.parquet"
    pandas.DataFrame(openorca_rows()).to_parquet(path)
    return path


def expected_sample(total: int) -> list[str]:
    kept = pandas.DataFrame([r for r in openorca_rows() if ".keep-" in r["id"]])
    kept["origin"] = kept["id"].str.split(".").str[0]
    share = total // 4
    return [i for _, group in kept.groupby("origin") for i in
            group.reset_index(drop=True).sample(n=share, random_state=1337)["id"]]


def test_filters_and_equal_sampling_per_origin(openorca_parquet, tokenizer):
    frame = processorca.read_openorca_parquet(openorca_parquet)
    settings = processorca.ProcessorcaSettings(seqlen_limit=200, total_samples=20)
    sampled, filtered, report = processorca.process(frame, tokenizer, settings)
    assert sorted(filtered["id"]) == sorted(r["id"] for r in openorca_rows() if ".keep-" in r["id"])
    assert list(sampled["id"]) == expected_sample(20)
    assert sampled["origin"].value_counts().to_dict() == {"cot": 5, "flan": 5, "niv": 5, "t0": 5}
    assert dict(report.per_origin) == {"cot": 8, "flan": 7, "niv": 7, "t0": 7}
    first = sampled.iloc[0]
    assert first["input"] == processorca.LLAMA2_WITH_SYSTEM.format(first["system_prompt"], first["question"])
    assert list(first["tok_output"]) == tokenizer(first["output"])["input_ids"]


def test_is_english_allows_curly_quotes_and_dashes_only():
    assert processorca.is_english("plain ASCII, even ~ and \t")
    assert processorca.is_english("it’s “quoted” – and — dashed")
    assert not processorca.is_english("naïve")
    assert not processorca.is_english("‘single left quote’")  # not in MLPerf's list


def test_command_writes_parquet_the_loader_reads(openorca_parquet, tmp_path, capsys):
    export = tmp_path / "out"
    assert main(["prepare-openorca", "--dataset_pq_path", str(openorca_parquet), "--model_dir", "embedded",
                 "--seqlen_limit", "200", "--export_dir", str(export), "--num_total_samples", "28",
                 "--calibration_subset_size", "10"]) == 0
    out = capsys.readouterr().out
    assert "read 51 rows" in out and "per origin: cot 8, flan 7, niv 7, t0 7" in out
    dataset = load_openorca(str(export / "open_orca_gpt4_tokenized_llama.sampled_28.parquet"))
    assert [s.id for s in dataset.samples] == expected_sample(28)
    assert all(s.tok_input and s.tok_output and s.origin for s in dataset.samples)
    calibration = pandas.read_parquet(export / "open_orca_gpt4_tokenized_llama.calibration_10.parquet")
    assert len(calibration) == 10 and set(calibration["id"]) <= set(expected_sample(28))


def one_line_error(argv, capsys) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    return err


def base_args(parquet, tmp_path, total: str) -> list[str]:
    return ["prepare-openorca", "--dataset-pq-path", str(parquet), "--model-dir", "embedded", "--seqlen-limit", "200",
            "--export-dir", str(tmp_path / "out"), "--num-total-samples", total]


def test_total_not_divisible_by_origins(openorca_parquet, tmp_path, capsys):
    err = one_line_error(base_args(openorca_parquet, tmp_path, "30"), capsys)
    assert "--num-total-samples 30: does not divide evenly among the 4 origins" in err


def test_not_enough_rows_in_an_origin(openorca_parquet, tmp_path, capsys):
    err = one_line_error(base_args(openorca_parquet, tmp_path, "32"), capsys)
    assert "needs 8 rows per origin, but 'flan' has 7 after filtering; pass at most 28" in err


def test_missing_columns_and_missing_file(tmp_path, capsys):
    wrong = tmp_path / "wrong.parquet"
    pandas.DataFrame([{"id": "cot.1", "question": "q", "output": "a"}]).to_parquet(wrong)
    err = one_line_error(base_args(wrong, tmp_path, "4"), capsys)
    assert "wrong.parquet: has no column 'system_prompt', 'response'" in err
    assert "nope.parquet: no such file" in one_line_error(base_args(tmp_path / "nope.parquet", tmp_path, "4"), capsys)
