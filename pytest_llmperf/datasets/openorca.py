"""OpenOrca in MLPerf's processed format, and the embedded sample.

MLPerf's llama2-70b benchmark feeds the model a table with the columns
``id, system_prompt, question, output, input, tok_input, tok_output, origin``
(``input`` is the prompt text, ``tok_input`` its token ids, ``output`` the
reference answer).  ``load_openorca`` reads that table from parquet or JSON
through the ``datasets`` library (local files only), from MLPerf's ``.pkl``
only when pickle is explicitly allowed, or builds it from the embedded sample:
our own question/answer pairs, prompted through the model's chat template and
tokenized by the tokenizer in use.  The embedded sample is tokenized once per
tokenizer and cached under ``$LLMPERF_CACHE/datasets/``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from pathlib import Path
from typing import Any, Iterable, Sequence

from ..runtime import atomic
from ..errors import InputError

EMBEDDED = "embedded"
EMBEDDED_FILE = Path(__file__).parent / "data" / "openorca" / "openorca-embedded.json"
COLUMNS = ("id", "system_prompt", "question", "output", "input", "tok_input", "tok_output", "origin")
TEXT_SUFFIXES = {".parquet": "parquet", ".json": "json", ".jsonl": "json"}
PICKLE_SUFFIXES = (".pkl", ".pickle")
#: Bump when the cached tokenization's layout or recipe changes.
CACHE_FORMAT = 1


@dataclasses.dataclass(frozen=True)
class OpenOrcaSample:
    """One row of MLPerf's processed OpenOrca."""

    id: str
    """OpenOrca id, e.g. ``cot.12345``; its prefix is the origin."""
    system_prompt: str
    """System message of the chat."""
    question: str
    """The user's message."""
    output: str
    """Reference answer ROUGE compares against."""
    input: str
    """The full prompt text as the model sees it."""
    tok_input: tuple[int, ...]
    """Token ids of ``input`` (what engines are fed)."""
    tok_output: tuple[int, ...]
    """Token ids of ``output`` (reference length in tokens)."""
    origin: str
    """Source collection: cot, flan, niv, t0 (or ``embedded-*`` styles in our sample)."""


@dataclasses.dataclass(frozen=True)
class OpenOrcaDataset:
    """A processed OpenOrca table, in file order."""

    path: Path
    """The file the rows came from."""
    samples: tuple[OpenOrcaSample, ...]
    """The rows (the first ``samples`` of the file when a count was given)."""

    def __len__(self) -> int:
        return len(self.samples)

    @property
    def references(self) -> list[str]:
        return [sample.output for sample in self.samples]

    @property
    def prompts(self) -> list[tuple[int, ...]]:
        return [sample.tok_input for sample in self.samples]


def load_openorca(source: str, tokenizer=None, samples: int = 0, allow_pickle: bool = False) -> OpenOrcaDataset:
    """Read processed OpenOrca from ``source`` (``embedded`` or a file path).

    ``tokenizer`` is needed for the embedded sample only (it builds the prompts);
    ``samples`` > 0 keeps the first rows, as MLPerf's ``total_sample_count`` does.
    """
    if samples < 0:
        raise ValueError(f"samples must be >= 0, got {samples}")
    if source == EMBEDDED:
        if tokenizer is None:
            raise ValueError("the embedded OpenOrca sample needs the model's tokenizer to build its prompts")
        path, rows = EMBEDDED_FILE, _embedded_rows(tokenizer)
    else:
        path = Path(source).expanduser()
        rows = read_table(path, COLUMNS, allow_pickle)
    if samples:
        rows = rows[:samples]
    return OpenOrcaDataset(path=path, samples=tuple(_sample(row, path, index) for index, row in enumerate(rows)))


# -- files ----------------------------------------------------------------------

def read_table(path: Path, required: Sequence[str], allow_pickle: bool = False,
               only_required: bool = False) -> list[dict[str, Any]]:
    """Rows of a parquet / JSON / (opt-in) pickle table, checked for ``required`` columns.

    Shared with ``llmperf evaluate-accuracy``, which needs only ``output``
    (``only_required`` drops the other columns, which saves time on big files).
    """
    path = Path(path)
    if not path.exists():
        raise InputError(path, "no such file",
                         "pass MLPerf's processed OpenOrca (.parquet or .json; .pkl with pickle allowed), "
                         "or 'embedded'; `llmperf prepare-openorca` makes one from the OpenOrca parquet")
    if path.is_dir():
        raise InputError(path, "is a folder, not a dataset file", "pass the .parquet, .json or .pkl file itself")
    suffix = path.suffix.lower()
    if path.stat().st_size == 0 or (suffix == ".parquet" and _parquet_rows(path) == 0):
        raise InputError(path, "has zero rows", "pass a dataset with at least one sample")
    if suffix in PICKLE_SUFFIXES:
        columns, rows = _read_pickle(path, allow_pickle, required if only_required else None)
    elif suffix in TEXT_SUFFIXES:
        columns, rows = _read_with_datasets(path, TEXT_SUFFIXES[suffix], required if only_required else None)
    else:
        raise InputError(path, f"has an unknown extension {path.suffix!r}",
                         "use .parquet, .json or .jsonl (or .pkl with pickle allowed)")
    missing = [name for name in required if name not in columns]
    if missing:
        raise InputError(path, f"has no column {', '.join(repr(m) for m in missing)} "
                               f"(columns: {', '.join(columns) or 'none'})",
                         f"pass MLPerf's processed OpenOrca, which has {', '.join(required)}")
    if not rows:
        raise InputError(path, "has zero rows", "pass a dataset with at least one sample")
    return rows


def _parquet_rows(path: Path) -> int | None:
    """Row count from the parquet footer (the datasets library fails obscurely on empty files)."""
    import pyarrow.parquet

    try:
        return pyarrow.parquet.read_metadata(path).num_rows
    except Exception:  # not a parquet file: the reader below says so
        return None


def _read_with_datasets(path: Path, builder: str, keep: Sequence[str] | None) -> tuple[list[str], list[dict[str, Any]]]:
    from .. import models

    models.offline_environment()
    import datasets

    datasets.logging.set_verbosity_error()
    datasets.disable_progress_bars()
    try:
        table = datasets.load_dataset(builder, data_files=str(path.resolve()), split="train",
                                      cache_dir=str(models.cache_dir() / "hf-datasets"))
    except Exception as exc:  # pyarrow / json errors carry no common base class
        raise InputError(path, f"cannot be read as {builder} ({type(exc).__name__}: {_first_line(exc)})",
                         f"check that it is a valid {builder} file with one row per sample") from None
    columns = list(table.column_names)
    if keep is not None and all(name in columns for name in keep):
        table = table.select_columns(list(keep))
    return columns, table.to_list()


def _read_pickle(path: Path, allow_pickle: bool, keep: Sequence[str] | None) -> tuple[list[str], list[dict[str, Any]]]:
    if not allow_pickle:
        raise InputError(path, "is a pickle, and loading a pickle runs code from the file",
                         "convert it to parquet (pandas: read_pickle(...).to_parquet(...)) or, for a file you trust, "
                         "allow it with allow_pickle = true under [datasets] in the profile "
                         "(llmperf evaluate-accuracy: --allow-pickle)")
    import pandas

    try:
        frame = pandas.read_pickle(path)
    except Exception as exc:  # unpickling can fail in any way
        raise InputError(path, f"cannot be unpickled ({type(exc).__name__}: {_first_line(exc)})",
                         "pass MLPerf's processed OpenOrca .pkl (a pandas DataFrame)") from None
    if not isinstance(frame, pandas.DataFrame):
        raise InputError(path, f"holds a {type(frame).__name__}, not a pandas DataFrame",
                         "pass MLPerf's processed OpenOrca .pkl")
    columns = [str(c) for c in frame.columns]
    if keep is not None and all(name in columns for name in keep):
        frame = frame[list(keep)]
    return columns, frame.to_dict("records")


def _first_line(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else "no detail"


def _sample(row: dict[str, Any], path: Path, index: int) -> OpenOrcaSample:
    def text(name: str) -> str:
        value = row.get(name)
        return "" if value is None else str(value)

    return OpenOrcaSample(
        id=text("id"), system_prompt=text("system_prompt"), question=text("question"),
        output=text("output"), input=text("input"),
        tok_input=_token_ids(row.get("tok_input"), path, index, "tok_input"),
        tok_output=_token_ids(row.get("tok_output"), path, index, "tok_output"),
        origin=text("origin"),
    )


def _token_ids(value: Any, path: Path, index: int, column: str) -> tuple[int, ...]:
    if value is None:
        return ()
    if isinstance(value, str):  # some exports store the list as text
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            raise InputError(path, f"row {index}: {column} is text that is not a list of token ids",
                             f"store {column} as a list of integers") from None
    try:
        return tuple(int(token) for token in value)
    except (TypeError, ValueError):
        raise InputError(path, f"row {index}: {column} is not a list of token ids",
                         f"store {column} as a list of integers") from None


# -- the embedded sample --------------------------------------------------------

def embedded_records() -> list[dict[str, str]]:
    """The embedded question/answer pairs (id, origin, system_prompt, question, output)."""
    return json.loads(EMBEDDED_FILE.read_text(encoding="utf-8"))


def _embedded_rows(tokenizer) -> list[dict[str, Any]]:
    """Embedded rows with prompt text and tokens for this tokenizer, from the cache when possible."""
    from .. import models

    source = EMBEDDED_FILE.read_bytes()
    digest = hashlib.sha256(source + tokenizer_fingerprint(tokenizer).encode()).hexdigest()[:20]
    cache = models.cache_dir() / "datasets" / f"openorca-embedded-{digest}.json"
    if cache.is_file():
        try:
            cached = json.loads(cache.read_text(encoding="utf-8"))
            if cached.get("format") == CACHE_FORMAT:
                return cached["rows"]
        except (OSError, json.JSONDecodeError, AttributeError, KeyError):
            pass  # a damaged cache is rebuilt below
    rows = [_tokenize_record(record, tokenizer) for record in json.loads(source)]
    try:
        atomic.write_json(cache, {"format": CACHE_FORMAT, "rows": rows})
    except OSError:
        pass  # a read-only cache only costs the tokenization next time
    return rows


def _tokenize_record(record: dict[str, str], tokenizer) -> dict[str, Any]:
    from .chat import chat_prompt_ids

    system, question = record["system_prompt"], record["question"]
    return {
        **record,
        "input": chat_prompt_text(tokenizer, question, system),
        "tok_input": chat_prompt_ids(tokenizer, question, system),
        "tok_output": [int(t) for t in tokenizer(record["output"], add_special_tokens=False)["input_ids"]],
    }


def chat_prompt_text(tokenizer, user: str, system: str | None = None) -> str:
    """The prompt text of :func:`chat_prompt_ids` (what ``input`` holds)."""
    messages = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": user}]
    if getattr(tokenizer, "chat_template", None):
        return tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    return (f"{system}\n\n" if system else "") + user


def tokenizer_fingerprint(tokenizer) -> str:
    """A string that changes whenever the tokenizer would tokenize differently."""
    parts: list[str] = [type(tokenizer).__name__, str(getattr(tokenizer, "name_or_path", "")),
                        str(len(tokenizer)), str(getattr(tokenizer, "chat_template", ""))]
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:
        parts.append(hashlib.sha256(backend.to_str().encode()).hexdigest())
    else:
        parts.append(hashlib.sha256(json.dumps(sorted(tokenizer.get_vocab().items())).encode()).hexdigest())
    return "\x00".join(parts)


def origins(dataset: OpenOrcaDataset) -> dict[str, int]:
    """Sample count per origin, in first-seen order."""
    counts: dict[str, int] = {}
    for sample in dataset.samples:
        counts[sample.origin] = counts.get(sample.origin, 0) + 1
    return counts


def write_processed(path: str | os.PathLike, rows: Iterable[dict[str, Any]]) -> Path:
    """Write rows in the processed layout as JSON lines or parquet (by extension), atomically."""
    path = Path(path)
    rows = list(rows)
    if path.suffix.lower() == ".parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        pq.write_table(pa.Table.from_pylist(rows), tmp)
        os.replace(tmp, path)
    else:
        atomic.write_text(path, "".join(json.dumps(row) + "\n" for row in rows))
    return path
