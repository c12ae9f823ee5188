"""MMLU data: both layouts through ``datasets``, clear errors, prompts as MMLU and lm-eval build them."""

import csv
import shutil

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_llmperf.datasets import mmlu
from pytest_llmperf.errors import InputError

SUBJECTS = ("astronomy", "computer_security", "elementary_mathematics", "high_school_geography")


def _write_csv(path, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as handle:
        csv.writer(handle, lineterminator="\n").writerows(rows)


def _write_parquet(path, questions):
    import pyarrow as pa
    import pyarrow.parquet as pq

    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table({
        "question": [q.question for q in questions],
        "subject": [q.subject for q in questions],
        "choices": [list(q.choices) for q in questions],
        "answer": pa.array([q.answer for q in questions], type=pa.int64()),
    }), path)


@pytest.fixture(scope="module")
def embedded():
    return mmlu.load_mmlu("embedded")


@pytest.fixture
def csv_copy(tmp_path):
    target = tmp_path / "mmlu" / "data"
    shutil.copytree(mmlu.EMBEDDED_DIR, target)
    return target


def test_embedded_sample_has_four_subjects_of_5_dev_and_10_test(embedded):
    assert embedded.layout == "csv"
    assert embedded.subjects == list(SUBJECTS)
    for subject in SUBJECTS:
        assert len(embedded.dev[subject]) == 5
        assert len(embedded.test[subject]) == 10
        letters = [q.answer_letter for q in embedded.test[subject]]
        assert set(letters) == set(mmlu.LETTERS)  # every letter is right somewhere: no position wins by design


def test_options_stay_text(tmp_path):
    _write_csv(tmp_path / "data" / "test" / "x_test.csv", [["Pick one", "2.50", "NA", "007", "None", "C"]])
    _write_csv(tmp_path / "data" / "dev" / "x_dev.csv", [["Q", "a", "b", "c", "d", "A"]])
    question = mmlu.load_mmlu(tmp_path).test["x"][0]  # the folder above data/ works too
    assert question.choices == ("2.50", "NA", "007", "None")
    assert question.answer == 2 and question.origin.endswith("x_test.csv row 1")


def test_parquet_export_reads_like_the_csv_files(embedded, tmp_path):
    for split in ("dev", "test"):
        rows = [q for subject in SUBJECTS for q in getattr(embedded, split)[subject]]
        _write_parquet(tmp_path / "all" / f"{split}-00000-of-00001.parquet", rows)
        # The export repeats the rows in one folder per subject: they must not be read twice.
        _write_parquet(tmp_path / "astronomy" / f"{split}-00000-of-00001.parquet",
                       getattr(embedded, split)["astronomy"])
    _write_parquet(tmp_path / "all" / "validation-00000-of-00001.parquet", embedded.test["astronomy"][:2])
    data = mmlu.load_mmlu(tmp_path)
    assert data.layout == "parquet"
    assert data.subjects == embedded.subjects
    for subject in SUBJECTS:
        assert len(data.test[subject]) == 10 and len(data.dev[subject]) == 5
    prompts_csv = mmlu.build_prompts(embedded, 5, 2048, len)
    prompts_parquet = mmlu.build_prompts(data, 5, 2048, len)
    assert [p.text for p in prompts_csv] == [p.text for p in prompts_parquet]
    assert [p.question.answer for p in prompts_csv] == [p.question.answer for p in prompts_parquet]


def test_parquet_per_subject_folders_without_all(embedded, tmp_path):
    for subject in ("astronomy", "computer_security"):
        _write_parquet(tmp_path / subject / "test-00000-of-00001.parquet", embedded.test[subject])
        _write_parquet(tmp_path / subject / "dev-00000-of-00001.parquet", embedded.dev[subject])
    assert mmlu.load_mmlu(tmp_path).subjects == ["astronomy", "computer_security"]


# -- bad input: one clear message naming the file ------------------------------------

def test_missing_folder(tmp_path):
    with pytest.raises(InputError, match="no such MMLU folder") as info:
        mmlu.load_mmlu(tmp_path / "nowhere")
    assert str(tmp_path / "nowhere") in str(info.value) and "datasets.mmlu" in str(info.value)


def test_folder_without_subjects(tmp_path):
    (tmp_path / "test").mkdir()
    with pytest.raises(InputError, match="holds no MMLU subjects"):
        mmlu.load_mmlu(tmp_path)


@pytest.mark.parametrize("row, problem", [
    (["Q", "a", "b", "c", "d", "E"], "row 3: answer 'E' is not one of A, B, C, D"),
    (["Q", "a", "b", "C"], "row 3: answer '' is not one of A, B, C, D"),
    (["Q", "a", "b", "c", "d", "A", "extra"], "cannot be read as csv"),
    (["", "a", "b", "c", "d", "A"], "row 3: missing question"),
])
def test_malformed_rows_name_file_and_row(csv_copy, row, problem):
    path = csv_copy / "test" / "astronomy_test.csv"
    rows = list(csv.reader(open(path, encoding="utf-8")))
    rows[2] = row
    _write_csv(path, rows)
    with pytest.raises(InputError) as info:
        mmlu.load_mmlu(csv_copy)
    assert str(path) in str(info.value) and problem in str(info.value)


def test_subject_without_dev_examples(csv_copy):
    (csv_copy / "dev" / "astronomy_dev.csv").unlink()
    with pytest.raises(InputError, match="astronomy_dev.csv: is missing: subject 'astronomy' has test questions"):
        mmlu.load_mmlu(csv_copy)


def test_parquet_without_a_column(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    tmp_path.joinpath("all").mkdir()
    pq.write_table(pa.table({"question": ["q"], "answer": [1]}), tmp_path / "all" / "test-0.parquet")
    with pytest.raises(InputError, match="test-0.parquet: has no column 'choices'"):
        mmlu.load_mmlu(tmp_path)


def test_unknown_subject_filter(embedded):
    with pytest.raises(InputError, match="no test questions for subject 'astrology'"):
        embedded.only(["astrology"])
    assert embedded.only(["astronomy"]).subjects == ["astronomy"]


# -- prompts ------------------------------------------------------------------------------

def test_prompt_text_is_the_mmlu_format():
    shot = mmlu.MmluQuestion("high_school_geography", "Largest ocean?", ("Atlantic", "Indian", "Pacific", "Arctic"), 2, "x")
    question = mmlu.MmluQuestion("high_school_geography", " Longest river? ", ("Nile", "Thames", "Seine", "Po"), 0, "y")
    assert mmlu.build_prompt("high_school_geography", [shot], question) == (
        "The following are multiple choice questions (with answers) about high school geography.\n\n"
        "Largest ocean?\nA. Atlantic\nB. Indian\nC. Pacific\nD. Arctic\nAnswer: C\n\n"
        "Longest river?\nA. Nile\nB. Thames\nC. Seine\nD. Po\nAnswer:"
    )


def test_five_shots_from_the_dev_split_in_file_order(embedded):
    prompt = mmlu.build_prompts(embedded, 5, 2048, len)[0]
    assert prompt.shots == 5 and prompt.fits
    assert prompt.text.count("\nAnswer: ") == 5 and prompt.text.endswith("Answer:")
    positions = [prompt.text.index(q.question) for q in embedded.dev["astronomy"]]
    assert positions == sorted(positions)


@settings(max_examples=60, deadline=None)
@given(max_length=st.integers(min_value=2, max_value=1500), shots=st.integers(min_value=0, max_value=7))
def test_shots_are_dropped_last_first_until_the_prompt_fits(embedded, max_length, shots):
    dev, question = embedded.dev["astronomy"], embedded.test["astronomy"][3]
    prompt = mmlu.fit_prompt(question, dev, shots, max_length, len)  # characters stand in for tokens
    kept = prompt.shots
    assert prompt.text == mmlu.build_prompt("astronomy", dev[:kept], question)  # a prefix of the dev examples
    if prompt.fits:
        assert len(prompt.text) + 1 <= max_length
        if kept < min(shots, len(dev)):  # one more shot would not have fitted
            assert len(mmlu.build_prompt("astronomy", dev[:kept + 1], question)) + 1 > max_length
    else:
        assert kept == 0 and len(prompt.text) + 1 > max_length
