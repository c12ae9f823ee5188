"""MLPerf's processorca filters: OpenOrca parquet -> the processed llama2-70b dataset.

Input: the OpenOrca GPT-4 parquet (``id, system_prompt, question, response``).
Steps, as MLPerf's ``language/llama2-70b/processorca.py`` applies them:

1. ``response`` becomes ``output``; ``input`` is the prompt text (Llama-2 chat
   format by default), ``tok_input`` its token ids (plus the Llama "▁" token
   MLPerf appends), ``tok_output`` the output's token ids; ``origin`` is the id's
   prefix before the first dot (cot, flan, niv, t0);
2. keep rows whose input and output are ASCII, allowing ’ – “ ” —;
3. keep rows with fewer than ``seqlen_limit`` input and output tokens;
4. keep rows whose output has at least 3 tokens;
5. drop niv and t0 rows whose system prompt is one of the known bad ones;
6. take the same number of rows from every origin, ``DataFrame.sample`` with
   random_state 1337, origins in sorted order.

The filters are per-row tests, so the cheap ones run first and only the
survivors are tokenized; the result is the same as MLPerf's order.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from ..errors import InputError, UsageError

SOURCE_COLUMNS = ("id", "system_prompt", "question", "response")
ALLOWED_NON_ASCII = frozenset("’–“”—")
BAD_SYSTEM_PROMPTS = (
    "",
    "You are an AI assistant that follows instruction extremely well. Help as much as you can.",
    "You are an AI assistant. Provide a detailed answer so user don’t need to search outside to understand the answer.",
    "You are an AI assistant. Provide a detailed answer so user don't need to search outside to understand the answer.",
    "User will you give you a task with some instruction. Your job is follow the instructions as faithfully as you can. "
    "While answering think step-by-step and justify your answer.",
    "Explain how you used the definition to come up with the answer.",
)
BAD_PROMPT_ORIGINS = ("niv", "t0")
SAMPLING_SEED = 1337
CALIBRATION_SEED = 12345
LLAMA2_WITH_SYSTEM = "<s>[INST] <<SYS>>\n{}\n<</SYS>>\n\n{} [/INST]"
LLAMA2_WITHOUT_SYSTEM = "<s>[INST] {} [/INST]"
#: Llama-2's "▁" token, appended to every prompt by MLPerf (the model always emits it first).
LLAMA_RESPONSE_START = "▁"


@dataclasses.dataclass(frozen=True)
class ProcessorcaSettings:
    """The knobs of MLPerf's processorca.py, with its defaults."""

    seqlen_limit: int = 1024
    """Input and output must have fewer tokens than this."""
    min_output_tokens: int = 3
    """Outputs with fewer tokens are dropped (one- and two-word answers score erratically)."""
    total_samples: int = 24576
    """Rows in the sampled dataset; must divide evenly among the origins."""
    prompt_format: str = "llama2"
    """``llama2`` (MLPerf's prompt text) or ``chat-template`` (the tokenizer's own chat template)."""


@dataclasses.dataclass(frozen=True)
class ProcessorcaReport:
    """What each step kept, for the command's printout."""

    rows_read: int
    kept_after: tuple[tuple[str, int], ...]
    """(step, rows left) in order."""
    per_origin: tuple[tuple[str, int], ...]
    """(origin, rows available after filtering)."""


def is_english(text: str) -> bool:
    """MLPerf's test: ASCII, plus curly quotes and dashes."""
    return text.isascii() or all(c.isascii() or c in ALLOWED_NON_ASCII for c in text)


def format_prompt(system_prompt: str, question: str, prompt_format: str, tokenizer=None) -> str:
    if prompt_format == "llama2":
        if system_prompt:
            return LLAMA2_WITH_SYSTEM.format(system_prompt, question)
        return LLAMA2_WITHOUT_SYSTEM.format(question)
    from .openorca import chat_prompt_text

    return chat_prompt_text(tokenizer, question, system_prompt or None)


def read_openorca_parquet(path: Path):
    import pandas

    if not path.is_file():
        raise InputError(path, "no such file", "pass the OpenOrca GPT-4 parquet (1M-GPT4-Augmented.parquet)")
    try:
        frame = pandas.read_parquet(path)
    except Exception as exc:  # pyarrow raises several unrelated types
        raise InputError(path, f"cannot be read as parquet ({type(exc).__name__})",
                         "pass the OpenOrca GPT-4 parquet (1M-GPT4-Augmented.parquet)") from None
    missing = [c for c in SOURCE_COLUMNS if c not in frame.columns]
    if missing:
        raise InputError(path, f"has no column {', '.join(repr(m) for m in missing)} "
                               f"(columns: {', '.join(map(str, frame.columns))})",
                         f"pass the OpenOrca parquet, which has {', '.join(SOURCE_COLUMNS)}")
    if frame.empty:
        raise InputError(path, "has zero rows", "pass the OpenOrca GPT-4 parquet")
    return frame


def process(frame, tokenizer, settings: ProcessorcaSettings, source: object = "dataset"):
    """Apply the filters and the per-origin sampling; returns (sampled frame, filtered frame, report)."""
    import pandas

    if settings.prompt_format not in ("llama2", "chat-template"):
        raise UsageError(f"prompt format {settings.prompt_format!r}", "is unknown", "use llama2 or chat-template")
    steps: list[tuple[str, int]] = []
    rows_read = len(frame)
    frame = frame.rename(columns={"response": "output"})
    frame["system_prompt"] = frame["system_prompt"].fillna("").astype(str)
    frame["question"] = frame["question"].fillna("").astype(str)
    frame["output"] = frame["output"].fillna("").astype(str)
    frame["input"] = [format_prompt(s, q, settings.prompt_format, tokenizer)
                      for s, q in zip(frame["system_prompt"], frame["question"])]
    frame["origin"] = frame["id"].astype(str).str.split(".").str[0]

    english = frame["input"].map(is_english) & frame["output"].map(is_english)
    frame = frame[english].reset_index(drop=True)
    steps.append(("ASCII input and output (plus curly quotes, dashes)", len(frame)))

    bad = frame["system_prompt"].isin(BAD_SYSTEM_PROMPTS) & frame["origin"].isin(BAD_PROMPT_ORIGINS)
    frame = frame[~bad].reset_index(drop=True)
    steps.append(("no known bad system prompt on niv/t0", len(frame)))

    frame["tok_input"] = _token_lists(tokenizer, list(frame["input"]), settings.prompt_format == "llama2")
    frame["tok_output"] = _token_lists(tokenizer, list(frame["output"]), False)
    frame["tok_input_length"] = frame["tok_input"].map(len)
    frame["tok_output_length"] = frame["tok_output"].map(len)
    frame = frame[(frame["tok_input_length"] < settings.seqlen_limit)
                  & (frame["tok_output_length"] < settings.seqlen_limit)].reset_index(drop=True)
    steps.append((f"input and output shorter than {settings.seqlen_limit} tokens", len(frame)))
    frame = frame[frame["tok_output_length"] >= settings.min_output_tokens].reset_index(drop=True)
    steps.append((f"output of at least {settings.min_output_tokens} tokens", len(frame)))

    by_origin = {origin: group.reset_index(drop=True) for origin, group in frame.groupby("origin")}
    report = ProcessorcaReport(rows_read, tuple(steps), tuple((o, len(g)) for o, g in by_origin.items()))
    if not by_origin:
        raise InputError(source, "has no rows left after the filters", "check the input parquet")
    if settings.total_samples % len(by_origin):
        raise UsageError(f"--num-total-samples {settings.total_samples}",
                         f"does not divide evenly among the {len(by_origin)} origins ({', '.join(by_origin)})",
                         f"pass a multiple of {len(by_origin)}")
    share = settings.total_samples // len(by_origin)
    short = [(o, len(g)) for o, g in by_origin.items() if len(g) < share]
    if short:
        origin, available = short[0]
        raise UsageError(f"--num-total-samples {settings.total_samples}",
                         f"needs {share} rows per origin, but {origin!r} has {available} after filtering",
                         f"pass at most {len(by_origin) * min(len(g) for g in by_origin.values())}")
    sampled = pandas.concat([group.sample(n=share, random_state=SAMPLING_SEED) for group in by_origin.values()])
    return sampled.reset_index(drop=True), frame, report


def calibration_subset(sampled, size: int):
    """MLPerf's calibration rows: ``size`` rows of the sampled set, random_state 12345."""
    return sampled.sample(n=size, random_state=CALIBRATION_SEED).reset_index(drop=True)


def _token_lists(tokenizer, texts: list[str], append_response_start: bool) -> list[list[int]]:
    if not texts:
        return []
    ids = tokenizer(texts)["input_ids"]
    extra: list[int] = []
    if append_response_start:
        token = tokenizer.convert_tokens_to_ids(LLAMA_RESPONSE_START)
        if token is not None and token != tokenizer.unk_token_id:
            extra = [int(token)]  # 29871 for Llama-2, as MLPerf appends it
    return [[int(t) for t in row] + extra for row in ids]
