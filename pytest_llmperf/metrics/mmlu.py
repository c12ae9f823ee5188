"""MMLU accuracy through the engine interface, in the two ways the field scores it.

* ``loglikelihood`` (lm-eval): the context is the prompt ending in ``Answer:``,
  the continuations are `` A``.. `` D``; the answer is the continuation with the
  highest log-probability.  Text is encoded without special tokens and each
  continuation is split off the encoded ``context + continuation``, as lm-eval's
  Hugging Face backend does.
* ``argmax`` (FlagPerf's llama2-7b MMLU case): one forward pass over the prompt
  (encoded with the tokenizer's defaults, BOS included where it adds one), the
  argmax over the whole vocabulary at the last position, and a hit only when
  that token is the answer letter.  FlagPerf compares with the letter encoded
  on its own (after the BOS); for SentencePiece vocabularies that is the same
  token as `` A``, for byte-level BPE vocabularies it is not, so both the bare
  and the space-prefixed single-token forms count.  Any other token (another
  letter, a newline, a word) is a miss.  A letter token is the argmax exactly
  when the engine's ``loglikelihood`` calls it greedy, so both modes go through
  that one call (``score_modes``).

Accuracy is micro-averaged over all questions, in percent, with a per-subject table.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any, Sequence

from ..runtime import atomic
from ..datasets.mmlu import LETTERS, MmluPrompt
from ..config.profiles import MMLU_MODES

MODES = MMLU_MODES
UNIT = "%"


@dataclasses.dataclass(frozen=True)
class MmluPrediction:
    """The engine's answer to one question."""

    subject: str
    """The question's subject."""
    origin: str
    """File and row of the question."""
    answer: str
    """The correct letter."""
    predicted: str | None
    """The letter the engine chose; None when the argmax token is no answer letter's."""
    shots: int
    """Few-shot examples in its prompt."""
    detail: dict[str, Any]
    """Mode-specific evidence: log-probabilities per letter, or the argmax letter token and
    the log-probabilities of every letter token."""

    @property
    def correct(self) -> bool:
        return self.predicted == self.answer

    def to_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "correct": self.correct}


@dataclasses.dataclass(frozen=True)
class MmluScore:
    """Accuracy of one mode over a set of predictions."""

    mode: str
    """``loglikelihood`` or ``argmax``."""
    correct: int
    """Questions answered correctly."""
    total: int
    """Questions asked."""
    per_subject: dict[str, dict[str, float]]
    """Subject -> {correct, total, accuracy (percent)}."""

    @property
    def accuracy(self) -> float:
        """Micro-averaged accuracy in percent."""
        return 100.0 * self.correct / self.total if self.total else float("nan")

    def table(self) -> str:
        """The per-subject table as Markdown."""
        lines = ["| subject | correct | total | accuracy % |", "|---|---:|---:|---:|"]
        for subject, row in self.per_subject.items():
            lines.append(f"| {subject} | {row['correct']} | {row['total']} | {row['accuracy']:.1f} |")
        lines.append(f"| **all (micro)** | {self.correct} | {self.total} | {self.accuracy:.1f} |")
        return "\n".join(lines)


def summarize(mode: str, predictions: Sequence[MmluPrediction]) -> MmluScore:
    per_subject: dict[str, dict[str, float]] = {}
    for prediction in predictions:
        row = per_subject.setdefault(prediction.subject, {"correct": 0, "total": 0})
        row["total"] += 1
        row["correct"] += int(prediction.correct)
    for row in per_subject.values():
        row["accuracy"] = 100.0 * row["correct"] / row["total"]
    correct = sum(int(p.correct) for p in predictions)
    return MmluScore(mode, correct, len(predictions), dict(sorted(per_subject.items())))


# -- tokenization ---------------------------------------------------------------

def _encode(tokenizer, text: str, special_tokens: bool) -> list[int]:
    return [int(t) for t in tokenizer(text, add_special_tokens=special_tokens)["input_ids"]]


def encode_pair(tokenizer, context: str, continuation: str) -> tuple[list[int], list[int]]:
    """lm-eval's split: trailing spaces move to the continuation; the continuation's
    tokens are what encoding the whole adds after the encoded context."""
    stripped = context.rstrip()
    continuation = context[len(stripped):] + continuation
    whole = _encode(tokenizer, stripped + continuation, False)
    context_ids = _encode(tokenizer, stripped, False)
    return context_ids, whole[len(context_ids):]


def answer_token_ids(tokenizer) -> dict[str, frozenset[int]]:
    """Token ids that count as each answer letter in ``argmax`` mode."""
    special = set(getattr(tokenizer, "all_special_ids", ()) or ())
    accepted: dict[str, frozenset[int]] = {}
    for letter in LETTERS:
        ids = set()
        alone = [t for t in _encode(tokenizer, letter, True) if t not in special]
        if alone:
            ids.add(alone[0])
        spaced = _encode(tokenizer, " " + letter, False)
        if len(spaced) == 1:
            ids.add(spaced[0])
        accepted[letter] = frozenset(ids)
    seen: set[int] = set()
    for letter, ids in accepted.items():
        if not ids or ids & seen:
            raise ValueError(f"the tokenizer has no token of its own for answer letter {letter!r}")
        seen |= ids
    return accepted


def prompt_token_count(tokenizer):
    """The length function used to fit prompts (FlagPerf counts with the tokenizer's defaults)."""
    return lambda text: len(_encode(tokenizer, text, True))


# -- scoring ----------------------------------------------------------------------

def score_modes(engine, tokenizer, prompts: Sequence[MmluPrompt], modes: Sequence[str]) -> dict[str, list[MmluPrediction]]:
    """Predictions of each mode in ``modes``, from one ``engine.loglikelihood`` call.

    Both modes read the next-token distribution after the prompt: lm-eval's the
    log-probabilities of `` A``.. `` D``, FlagPerf's whether the argmax is a letter
    token (a letter token is the argmax exactly when it is greedy).  Where both
    encode the prompt alike, the engine scores all the candidates with one forward
    pass per question.
    """
    unknown = [mode for mode in modes if mode not in MODES]
    if unknown:
        raise ValueError(f"unknown MMLU mode {unknown[0]!r}; known: {', '.join(MODES)}")
    letters = answer_token_ids(tokenizer) if "argmax" in modes else {}
    requests: dict[str, list[list[tuple[list[int], list[int]]]]] = {mode: [] for mode in modes}
    for prompt in prompts:
        if "loglikelihood" in modes:
            requests["loglikelihood"].append([encode_pair(tokenizer, prompt.text, " " + letter) for letter in LETTERS])
        if "argmax" in modes:
            context = _encode(tokenizer, prompt.text, True)
            requests["argmax"].append([(context, [token]) for letter in LETTERS for token in sorted(letters[letter])])
    flat = [request for mode in modes for per_prompt in requests[mode] for request in per_prompt]
    results = iter(engine.loglikelihood(flat))
    predictions: dict[str, list[MmluPrediction]] = {}
    for mode in modes:
        predictions[mode] = []
        for prompt, per_prompt in zip(prompts, requests[mode]):
            answers = [next(results) for _ in per_prompt]
            predictions[mode].append(_loglikelihood_prediction(prompt, answers) if mode == "loglikelihood"
                                     else _argmax_prediction(prompt, answers, per_prompt, letters))
    return predictions


def _loglikelihood_prediction(prompt: MmluPrompt, results) -> MmluPrediction:
    """lm-eval's choice: the letter whose `` X`` continuation is most likely."""
    scores = [total for total, _ in results]
    best = max(range(len(LETTERS)), key=lambda k: (scores[k], -k))  # first of equals, as argmax
    return MmluPrediction(
        subject=prompt.question.subject, origin=prompt.question.origin, answer=prompt.question.answer_letter,
        predicted=LETTERS[best], shots=prompt.shots,
        detail={"logprobs": dict(zip(LETTERS, (round(float(s), 6) for s in scores)))},
    )


def _argmax_prediction(prompt: MmluPrompt, results, requests, letters) -> MmluPrediction:
    """FlagPerf's choice: the letter whose token is the argmax over the vocabulary, else none."""
    letter_of = {token: letter for letter, ids in letters.items() for token in ids}
    greedy = [continuation[0] for (_, continuation), (_, is_greedy) in zip(requests, results) if is_greedy]
    token = greedy[0] if greedy else None
    return MmluPrediction(
        subject=prompt.question.subject, origin=prompt.question.origin, answer=prompt.question.answer_letter,
        predicted=letter_of.get(token), shots=prompt.shots,
        detail={"argmax_token_id": token,  # None: the argmax is no answer letter's token
                "letter_token_logprobs": {str(c[0]): round(float(total), 6)
                                          for (_, c), (total, _) in zip(requests, results)}},
    )


def score_loglikelihood(engine, tokenizer, prompts: Sequence[MmluPrompt]) -> list[MmluPrediction]:
    """lm-eval's scoring alone."""
    return score_modes(engine, tokenizer, prompts, ["loglikelihood"])["loglikelihood"]


def score_argmax(engine, tokenizer, prompts: Sequence[MmluPrompt]) -> list[MmluPrediction]:
    """FlagPerf's scoring alone."""
    return score_modes(engine, tokenizer, prompts, ["argmax"])["argmax"]


# -- names ---------------------------------------------------------------------------

def metric_name(mode: str) -> str:
    return f"mmlu.accuracy.{mode}"


def write_predictions(path: Path, predictions: Sequence[MmluPrediction]) -> None:
    """One JSON line per question: what was asked, answered and expected."""
    atomic.write_text(path, "".join(json.dumps(p.to_dict(), sort_keys=True) + "\n" for p in predictions))
