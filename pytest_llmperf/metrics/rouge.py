"""ROUGE exactly as MLPerf scores llama2-70b (``language/llama2-70b/evaluate-accuracy.py``).

The order of operations, which every number here follows:

1. walk the accuracy log in file order; the first response of each ``qsl_idx``
   wins, later ones are ignored; ``gen_tok_len`` adds the token count of each
   kept response;
2. decode each kept response with the model's tokenizer, special tokens
   skipped;
3. strip prediction and reference, split each into sentences and join them
   with ``\\n`` (rougeLsum scores line by line);
4. score each (reference, prediction) pair with ``rouge_score`` (rouge1,
   rouge2, rougeL, rougeLsum; Porter stemmer) and keep the F-measures;
5. average each metric over samples (``numpy.mean``), times 100, rounded to 4
   places; ``gen_len`` = characters of the post-processed predictions,
   ``gen_num`` = kept responses, ``tokens_per_sample`` = ``gen_tok_len /
   gen_num`` rounded to 1 place.

MLPerf splits sentences with nltk's punkt model, which must be downloaded.
Where its data is missing a stated fallback is used (``REGEX_SPLITTER``); the
splitter changes rougeLsum and gen_len only (rouge1/2/L tokenize on
non-alphanumerics and ignore line breaks), and every result names it.

Step 4 runs either through ``rouge_score`` itself (``method="reference"``) or
through :mod:`.rouge_fast`, which gives identical per-sample numbers much
faster and uses every core.
"""

from __future__ import annotations

import dataclasses
import os
import re
from typing import Callable, Sequence

from ..errors import InputError, UsageError
from .rouge_fast import ROUGE_TYPES

PUNKT = "punkt"
REGEX = "regex"
SPLITTERS = ("auto", PUNKT, REGEX)
PUNKT_SPLITTER = "nltk punkt (english), as MLPerf"
REGEX_SPLITTER = ("regex fallback (nltk punkt data not installed): a sentence ends at . ! or ? "
                  "(and closing quotes or brackets) followed by whitespace and an uppercase letter, digit or quote")
#: Below this many samples the fast scorer stays in-process (starting workers costs more).
PARALLEL_THRESHOLD = 2000

_SENTENCE_BOUNDARY = re.compile(r"""[.!?]+["')\]]*\s+(?=["'(\[]*[A-Z0-9])""")


@dataclasses.dataclass(frozen=True)
class RougeResult:
    """The numbers MLPerf's llama2-70b evaluate-accuracy.py prints, and how they were made."""

    rouge1: float
    """Mean ROUGE-1 F-measure x 100, rounded to 4 places."""
    rouge2: float
    """Mean ROUGE-2 F-measure x 100, rounded to 4 places."""
    rougeL: float
    """Mean ROUGE-L F-measure x 100, rounded to 4 places."""
    rougeLsum: float
    """Mean summary-level ROUGE-L (one sentence per line) x 100; depends on ``splitter``."""
    gen_len: int
    """Characters of all post-processed predictions."""
    gen_num: int
    """Scored samples: distinct qsl_idx, first response of each."""
    gen_tok_len: int
    """Generated tokens over the scored samples."""
    tokens_per_sample: float
    """``gen_tok_len / gen_num``, rounded to 1 place."""
    splitter: str
    """The sentence splitter that produced rougeLsum and gen_len."""
    per_sample: tuple[tuple[float, float, float, float], ...] = dataclasses.field(default=(), repr=False)
    """Per-sample (rouge1, rouge2, rougeL, rougeLsum) F-measures, in scoring order."""

    def mlperf_dict(self) -> dict[str, float | int]:
        """The dict MLPerf's script prints, in its key order, with plain Python numbers."""
        return {
            "rouge1": self.rouge1, "rouge2": self.rouge2, "rougeL": self.rougeL, "rougeLsum": self.rougeLsum,
            "gen_len": self.gen_len, "gen_num": self.gen_num, "gen_tok_len": self.gen_tok_len,
            "tokens_per_sample": self.tokens_per_sample,
        }


# -- sentence splitting ----------------------------------------------------------

def punkt_available() -> bool:
    try:
        from nltk.data import find

        find("tokenizers/punkt_tab/english/")
        return True
    except LookupError:
        return False


def resolve_splitter(name: str = "auto") -> str:
    """``auto`` -> ``punkt`` where its data is installed, else ``regex``."""
    if name not in SPLITTERS:
        raise UsageError(f"sentence splitter {name!r}", "is unknown", f"use one of: {', '.join(SPLITTERS)}")
    if name == "auto":
        return PUNKT if punkt_available() else REGEX
    if name == PUNKT and not punkt_available():
        raise UsageError("sentence splitter 'punkt'", "nltk's punkt_tab data is not installed",
                         "install it (python -m nltk.downloader punkt_tab) or use the regex fallback")
    return name


def describe_splitter(name: str) -> str:
    return PUNKT_SPLITTER if name == PUNKT else REGEX_SPLITTER


def splitter_function(name: str) -> Callable[[str], list[str]]:
    if name == PUNKT:
        import nltk

        return nltk.sent_tokenize
    return split_sentences_regex


def split_sentences_regex(text: str) -> list[str]:
    """The fallback splitter: break after . ! ? (+ closing quotes/brackets) before whitespace and a capital/digit."""
    sentences, start = [], 0
    for boundary in _SENTENCE_BOUNDARY.finditer(text):
        piece = text[start:boundary.end()].strip()
        if piece:
            sentences.append(piece)
        start = boundary.end()
    tail = text[start:].strip()
    if tail:
        sentences.append(tail)
    return sentences


def postprocess(text: str, split: Callable[[str], list[str]]) -> str:
    """Strip, then one sentence per line (MLPerf's ``postprocess_text`` for one text)."""
    return "\n".join(split(text.strip()))


# -- scoring ---------------------------------------------------------------------

def _reference_chunk(chunk: tuple[list[str], list[str]]) -> list[tuple[float, float, float, float]]:
    from rouge_score import rouge_scorer

    targets, predictions = chunk
    scorer = rouge_scorer.RougeScorer(list(ROUGE_TYPES), use_stemmer=True)
    scores = []
    for target, prediction in zip(targets, predictions):
        result = scorer.score(target, prediction)
        scores.append(tuple(result[name].fmeasure for name in ROUGE_TYPES))
    return scores


def reference_scores(targets: Sequence[str], predictions: Sequence[str], workers: int = 1
                     ) -> list[tuple[float, float, float, float]]:
    """Per-sample F-measures through ``rouge_score`` itself, split into one chunk per
    worker process as MLPerf's script does (``Pool(cpu_count())``)."""
    if workers <= 1 or len(predictions) < 2:
        return _reference_chunk((list(targets), list(predictions)))
    import multiprocessing

    size = len(predictions) // workers + (len(predictions) % workers > 0)
    chunks = [(list(targets[i:i + size]), list(predictions[i:i + size])) for i in range(0, len(predictions), size)]
    with multiprocessing.get_context("fork" if os.name == "posix" else "spawn").Pool(workers) as pool:
        results = pool.map(_reference_chunk, chunks)
    return [score for chunk in results for score in chunk]


def aggregate(per_sample: Sequence[tuple[float, float, float, float]], gen_len: int, gen_tok_len: int,
              splitter: str) -> RougeResult:
    """Step 5: mean x 100 rounded to 4 places, plus the length statistics."""
    import numpy as np

    if not per_sample:
        raise ValueError("no samples to aggregate")
    means = {}
    for index, name in enumerate(ROUGE_TYPES):
        # numpy's pairwise summation, as the script's np.mean, so the last digit agrees too
        means[name] = float(round(np.mean([scores[index] for scores in per_sample]) * 100, 4))
    gen_num = len(per_sample)
    return RougeResult(
        rouge1=means["rouge1"], rouge2=means["rouge2"], rougeL=means["rougeL"], rougeLsum=means["rougeLsum"],
        gen_len=int(gen_len), gen_num=gen_num, gen_tok_len=int(gen_tok_len),
        tokens_per_sample=float(round(gen_tok_len / gen_num, 1)),
        splitter=describe_splitter(splitter), per_sample=tuple(per_sample),
    )


def _score(targets: Sequence[str], predictions: Sequence, tokenizer, gen_tok_len: int, splitter: str,
           method: str, workers: int) -> RougeResult:
    """Steps 2-5; ``predictions`` are token lists when ``tokenizer`` is given, else decoded text."""
    name = resolve_splitter(splitter)
    split = splitter_function(name)
    workers = workers or default_workers()
    if method == "reference":
        texts = decode_all(predictions, tokenizer) if tokenizer is not None else list(predictions)
        texts = [postprocess(p, split) for p in texts]
        processed_targets = [postprocess(t, split) for t in targets]
        per_sample = reference_scores(processed_targets, texts, workers)
        return aggregate(per_sample, sum(len(p) for p in texts), gen_tok_len, name)
    if method != "fast":
        raise UsageError(f"method {method!r}", "is unknown", "use 'fast' or 'reference'")
    from . import rouge_fast

    if len(predictions) < PARALLEL_THRESHOLD:
        workers = 1
    per_sample, gen_len = rouge_fast.score_pipeline(targets, predictions, split, tokenizer=tokenizer, workers=workers)
    return aggregate(per_sample, gen_len, gen_tok_len, name)


def score_texts(references: Sequence[str], predictions: Sequence[str], *, gen_tok_len: int,
                splitter: str = "auto", method: str = "fast", workers: int = 0) -> RougeResult:
    """Steps 3-5 for decoded predictions and their references (same order)."""
    if len(references) != len(predictions):
        raise ValueError(f"{len(references)} references but {len(predictions)} predictions")
    return _score(references, predictions, None, gen_tok_len, splitter, method, workers)


# -- accuracy logs -----------------------------------------------------------------

def kept_responses(entries: Sequence, dataset_size: int, log_path: object) -> list:
    """Step 1: first response per qsl_idx, in log order; qsl_idx checked against the dataset."""
    seen: set[int] = set()
    kept = []
    for entry in entries:
        if entry.qsl_idx in seen:
            continue
        if not 0 <= entry.qsl_idx < dataset_size:
            raise InputError(log_path, f"qsl_idx {entry.qsl_idx} (seq_id {entry.seq_id}) is outside the dataset "
                                       f"({dataset_size} samples)",
                             "pass the dataset the run used (--dataset-file), with at least as many rows")
        seen.add(entry.qsl_idx)
        kept.append(entry)
    if not kept:
        raise InputError(log_path, "holds no responses", "pass the accuracy log of a run in AccuracyOnly mode")
    return kept


def check_vocabulary(token_lists: Sequence[Sequence[int]], tokenizer, log_path: object) -> None:
    """Token ids the tokenizer does not know mean the wrong --dtype (or model): say so."""
    vocabulary = len(tokenizer)
    for tokens in token_lists:
        if tokens and (min(tokens) < 0 or max(tokens) >= vocabulary):
            bad = next(t for t in tokens if not 0 <= t < vocabulary)
            raise InputError(log_path, f"token id {bad} is outside the tokenizer's vocabulary (0..{vocabulary - 1})",
                             "check --dtype (the SUT's response element type: int32 for pytest-llmperf and "
                             "MLPerf's reference SUT) and --checkpoint-path")


def decode_all(token_lists: Sequence[Sequence[int]], tokenizer) -> list[str]:
    return tokenizer.batch_decode([list(t) for t in token_lists], skip_special_tokens=True)


def score_accuracy_log(entries: Sequence, references: Sequence[str], tokenizer, *, log_path: object = "accuracy log",
                       splitter: str = "auto", method: str = "fast", workers: int = 0) -> RougeResult:
    """MLPerf's whole evaluation of decoded accuracy-log entries (``loadgen.accuracy_log``)."""
    kept = kept_responses(entries, len(references), log_path)
    token_lists = [entry.token_ids for entry in kept]
    check_vocabulary(token_lists, tokenizer, log_path)
    targets = [references[entry.qsl_idx] for entry in kept]
    return _score(targets, token_lists, tokenizer, sum(len(t) for t in token_lists), splitter, method, workers)


def default_workers() -> int:
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1))
