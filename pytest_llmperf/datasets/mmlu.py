"""MMLU: read either layout users have, and build the 5-shot prompts.

Two layouts, both read through the ``datasets`` library from local files:

* the original release: ``data/{dev,val,test}/<subject>_<split>.csv`` with no
  header and six columns (question, A, B, C, D, answer letter);
* the Hugging Face parquet export: files named ``<split>-*.parquet`` with the
  columns question, subject, choices (a list of four) and answer (0..3), either
  in one ``all/`` folder or one folder per subject.

Prompts follow the original MMLU and lm-eval: a header naming the subject,
``shots`` examples from the dev split with their answers, then the test question
ending in ``Answer:``.  Too long a prompt loses shots, last first.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Callable, Iterable, Sequence

from ..errors import InputError

LETTERS = ("A", "B", "C", "D")
CSV_COLUMNS = ("question", "A", "B", "C", "D", "answer")
SPLITS = ("dev", "test")
EMBEDDED = "embedded"
EMBEDDED_DIR = Path(__file__).parent / "data" / "mmlu"
LAYOUT_HINT = ("point datasets.mmlu in the profile at the MMLU 'data' folder (dev/ and test/ with "
               "<subject>_dev.csv, <subject>_test.csv) or at a folder of the Hugging Face parquet files "
               "(dev-*.parquet, test-*.parquet), or use \"embedded\"")


@dataclasses.dataclass(frozen=True)
class MmluQuestion:
    """One multiple-choice question."""

    subject: str
    """MMLU subject name with underscores, e.g. ``high_school_geography``."""
    question: str
    """The question text as stored."""
    choices: tuple[str, str, str, str]
    """The four options, in A..D order."""
    answer: int
    """Index of the correct option (0 = A)."""
    origin: str
    """File and row it came from, for messages."""

    @property
    def answer_letter(self) -> str:
        return LETTERS[self.answer]


@dataclasses.dataclass(frozen=True)
class MmluData:
    """Dev (few-shot examples) and test questions, by subject."""

    dev: dict[str, list[MmluQuestion]]
    """Few-shot examples per subject, in file order."""
    test: dict[str, list[MmluQuestion]]
    """Scored questions per subject, in file order."""
    location: str
    """The folder read (or ``embedded``)."""
    layout: str
    """``csv`` (original release) or ``parquet`` (Hugging Face export)."""

    @property
    def subjects(self) -> list[str]:
        return sorted(self.test)

    def only(self, subjects: Sequence[str]) -> "MmluData":
        """The same data restricted to ``subjects`` (all when empty)."""
        if not subjects:
            return self
        missing = sorted(set(subjects) - set(self.test))
        if missing:
            raise InputError(self.location, f"has no test questions for subject {missing[0]!r}",
                             f"fix mmlu.subjects in the profile; available: {', '.join(self.subjects)}")
        return dataclasses.replace(self, dev={s: self.dev.get(s, []) for s in subjects},
                                   test={s: self.test[s] for s in subjects})


# -- reading ------------------------------------------------------------------

def load_mmlu(location: str | os.PathLike, cache_dir: str | os.PathLike | None = None) -> MmluData:
    """Read MMLU from ``location`` (``embedded``, a CSV ``data`` folder or a parquet folder).

    ``datasets`` keeps its Arrow copies in ``cache_dir`` (default ``$LLMPERF_CACHE/hf-datasets``).
    """
    root = EMBEDDED_DIR if str(location) == EMBEDDED else Path(location).expanduser()
    shown = EMBEDDED if str(location) == EMBEDDED else str(root)
    if not root.is_dir():
        raise InputError(root, "no such MMLU folder", LAYOUT_HINT)
    csv_root = _csv_root(root)
    if csv_root is not None:
        dev, test = _read_csv_layout(csv_root, cache_dir)
        layout = "csv"
    elif any(root.rglob("*.parquet")):
        dev, test = _read_parquet_layout(root, cache_dir)
        layout = "parquet"
    else:
        raise InputError(root, "holds no MMLU subjects (neither test/<subject>_test.csv nor test-*.parquet)",
                         LAYOUT_HINT)
    if not test:
        raise InputError(root, "holds no MMLU test questions", LAYOUT_HINT)
    return MmluData(dev=dev, test=test, location=shown, layout=layout)


def _csv_root(root: Path) -> Path | None:
    for candidate in (root, root / "data"):
        if (candidate / "test").is_dir() and any((candidate / "test").glob("*_test.csv")):
            return candidate
    return None


def _read_csv_layout(root: Path, cache_dir) -> tuple[dict, dict]:
    tests = sorted((root / "test").glob("*_test.csv"))
    subjects = [path.name[: -len("_test.csv")] for path in tests]
    test = {subject: _read_csv(path, subject, cache_dir) for subject, path in zip(subjects, tests)}
    dev = {}
    for subject in subjects:
        path = root / "dev" / f"{subject}_dev.csv"
        if not path.is_file():
            raise InputError(path, f"is missing: subject {subject!r} has test questions but no dev examples",
                             "add the dev file (the few-shot examples) or remove the subject's test file")
        dev[subject] = _read_csv(path, subject, cache_dir)
    return dev, test


def _read_csv(path: Path, subject: str, cache_dir) -> list[MmluQuestion]:
    import datasets

    # Strings throughout: pandas would turn an option "2.50" into 2.5 and "NA" into a missing value.
    features = datasets.Features({name: datasets.Value("string") for name in CSV_COLUMNS})
    table = _load(path, "csv", dict(column_names=list(CSV_COLUMNS), features=features,
                                    keep_default_na=False, na_filter=False), cache_dir)
    questions = []
    for row, record in enumerate(table, start=1):
        origin = f"{path} row {row}"
        letter = (record["answer"] or "").strip()
        if letter not in LETTERS:
            raise InputError(path, f"row {row}: answer {record['answer']!r} is not one of A, B, C, D "
                                   "(expected 6 columns: question, A, B, C, D, answer)",
                             "fix the row; MMLU CSV files have no header row")
        question = record["question"]
        choices = tuple(record[letter_] for letter_ in LETTERS)
        if not question or any(choice is None for choice in choices):
            raise InputError(path, f"row {row}: missing question or option", "fix the row (6 columns per row)")
        questions.append(MmluQuestion(subject, question, choices, LETTERS.index(letter), origin))  # type: ignore[arg-type]
    if not questions:
        raise InputError(path, "has no rows", "remove the file or fill it (6 columns per row, no header)")
    return questions


def _read_parquet_layout(root: Path, cache_dir) -> tuple[dict, dict]:
    files = sorted(root.rglob("*.parquet"))
    # The export has an ``all/`` folder and one folder per subject with the same rows: read one of them.
    in_all = [path for path in files if path.parent.name == "all"]
    files = in_all or files
    by_split: dict[str, list[Path]] = {split: [] for split in SPLITS}
    for path in files:
        split = path.name.split("-", 1)[0].split(".", 1)[0]
        if split in by_split:
            by_split[split].append(path)
    if not by_split["test"]:
        raise InputError(root, "has parquet files but none named test-*.parquet", LAYOUT_HINT)
    splits = {split: _read_parquet(paths, cache_dir) for split, paths in by_split.items() if paths}
    dev, test = splits.get("dev", {}), splits["test"]
    for subject in test:
        if not dev.get(subject):
            raise InputError(root, f"subject {subject!r} has test questions but no dev examples",
                             "add the dev-*.parquet file (the few-shot examples)")
    return dev, test


def _read_parquet(paths: list[Path], cache_dir) -> dict[str, list[MmluQuestion]]:
    by_subject: dict[str, list[MmluQuestion]] = {}
    for path in paths:
        table = _load(path, "parquet", {}, cache_dir)
        expected = {"question", "subject", "choices", "answer"}
        missing = sorted(expected - set(table.column_names))
        if missing:
            raise InputError(path, f"has no column {missing[0]!r} (columns: {', '.join(table.column_names)})",
                             "use the Hugging Face MMLU export (question, subject, choices, answer)")
        for row, record in enumerate(table, start=1):
            choices, answer = record["choices"], record["answer"]
            if (not isinstance(choices, list) or len(choices) != 4 or not isinstance(answer, int)
                    or not 0 <= answer < 4 or not record["question"] or not record["subject"]):
                raise InputError(path, f"row {row}: needs a question, a subject, 4 choices and an answer 0..3",
                                 "fix the row or re-export the dataset")
            subject = str(record["subject"])
            by_subject.setdefault(subject, []).append(
                MmluQuestion(subject, record["question"], tuple(str(c) for c in choices), answer,  # type: ignore[arg-type]
                             f"{path} row {row}"))
    return by_subject


def _load(path: Path, builder: str, options: dict, cache_dir):
    import datasets

    from .. import models

    datasets.disable_progress_bars()
    cache_dir = cache_dir or models.cache_dir() / "hf-datasets"
    try:
        loaded = datasets.load_dataset(builder, data_files={"rows": [str(path)]}, split="rows",
                                       cache_dir=str(cache_dir), **options)
    except Exception as exc:  # datasets wraps parser errors; the cause names the problem
        cause = exc.__cause__ or exc.__context__ or exc
        raise InputError(path, f"cannot be read as {builder} ({str(cause).strip().splitlines()[0]})",
                         "check that it is an MMLU file of that layout") from None
    return loaded


# -- prompts --------------------------------------------------------------------

def format_subject(subject: str) -> str:
    return subject.replace("_", " ")


def format_question(question: MmluQuestion, with_answer: bool) -> str:
    """``question\\nA. ..\\nB. ..\\nC. ..\\nD. ..\\nAnswer:`` (plus `` X\\n\\n`` for a shot)."""
    lines = [question.question.strip()]
    lines += [f"{letter}. {choice}" for letter, choice in zip(LETTERS, question.choices)]
    text = "\n".join(lines) + "\nAnswer:"
    return f"{text} {question.answer_letter}\n\n" if with_answer else text


def build_prompt(subject: str, shots: Iterable[MmluQuestion], question: MmluQuestion) -> str:
    header = f"The following are multiple choice questions (with answers) about {format_subject(subject)}.\n\n"
    return header + "".join(format_question(shot, True) for shot in shots) + format_question(question, False)


@dataclasses.dataclass(frozen=True)
class MmluPrompt:
    """A test question with the prompt it is asked with."""

    question: MmluQuestion
    """The scored question."""
    text: str
    """The whole prompt, ending in ``Answer:``."""
    shots: int
    """Few-shot examples kept after fitting into ``max_length``."""
    fits: bool
    """False when even the zero-shot prompt is longer than ``max_length``."""


def fit_prompt(question: MmluQuestion, dev: Sequence[MmluQuestion], shots: int, max_length: int,
               count_tokens: Callable[[str], int]) -> MmluPrompt:
    """The prompt with as many of the first ``shots`` dev examples as fit.

    As the original MMLU evaluation does, shots are dropped from the end until
    the prompt plus one answer token fits in ``max_length`` tokens.
    """
    for kept in range(min(shots, len(dev)), -1, -1):
        text = build_prompt(question.subject, dev[:kept], question)
        if count_tokens(text) + 1 <= max_length:
            return MmluPrompt(question, text, kept, True)
    return MmluPrompt(question, text, 0, False)


def build_prompts(data: MmluData, shots: int, max_length: int,
                  count_tokens: Callable[[str], int]) -> list[MmluPrompt]:
    """Every test question of ``data``, subjects in name order, rows in file order."""
    return [fit_prompt(question, data.dev.get(subject, []), shots, max_length, count_tokens)
            for subject in data.subjects for question in data.test[subject]]
