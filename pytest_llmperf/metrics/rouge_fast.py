"""Exact ROUGE, fast: the same per-sample F-measures as ``rouge_score``, bit for bit.

``rouge_score`` (with the Porter stemmer) spends its time in three places:
stemming every token, filling full ``len(ref) x len(pred)`` LCS tables in
Python for rougeL, and once more per sentence pair for rougeLsum.  Here:

* tokens are made with the same regular expressions, and each distinct word is
  stemmed once per process (the stemmer is a pure function of the word);
* LCS lengths come from the bit-parallel recurrence (Allison-Dix / Hyyrö):
  one Python integer holds a whole table column as bits, so a column costs a
  handful of integer operations instead of a Python loop over the rows;
* rougeLsum needs *which* reference tokens ``rouge_score``'s backtrack picks, not
  just how many.  All reference sentences are packed into one integer (a zero
  guard bit between them stops carries), so one pass over a candidate sentence
  yields its table against every reference sentence at once; the backtrack is
  then replayed with the same tie-breaking, jumping over runs of non-matching
  cells with bit scans (see ``_union_lcs_hits``), so it costs O(LCS) steps.

Inputs are the post-processed texts (stripped, one sentence per line), exactly
what ``rouge_score.RougeScorer.score(target, prediction)`` receives.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Callable, Sequence

ROUGE_TYPES = ("rouge1", "rouge2", "rougeL", "rougeLsum")

# rouge_score.tokenize: lowercase, non-alphanumerics become spaces, split.
# Keeping "\n" lets one pass serve both the whole text and its lines.
_NON_ALPHANUMERIC_KEEP_NEWLINE = re.compile(r"[^a-z0-9\n]+")
_VALID_TOKEN = re.compile(r"^[a-z0-9]+$")


class StemCache(dict):
    """word -> rouge_score's token for it (stemmed when longer than 3 characters), or None if dropped."""

    def __init__(self):
        super().__init__()
        from nltk.stem import porter

        self._stem = porter.PorterStemmer().stem

    def __missing__(self, word: str):
        token = self._stem(word) if len(word) > 3 else word
        value = token if _VALID_TOKEN.match(token) else None
        self[word] = value
        return value


def tokenize_lines(text: str, stems: StemCache) -> list[list[str]]:
    """Tokens of each ``\\n``-separated line that ``rouge_score`` keeps for rougeLsum.

    Empty lines are dropped (as ``rouge_score`` drops empty sentences); lines
    without tokens are kept as empty lists, as there.
    """
    lines = _NON_ALPHANUMERIC_KEEP_NEWLINE.sub(" ", text.lower()).split("\n")
    original = text.split("\n") if len(lines) > 1 else (text,)
    result = []
    for line, source in zip(lines, original):
        if not source:
            continue
        tokens = [stems[word] for word in line.split()]
        if None in tokens:
            tokens = [t for t in tokens if t is not None]
        result.append(tokens)
    return result


def _fmeasure(precision: float, recall: float) -> float:
    # rouge_score.scoring.fmeasure, same operations in the same order
    if precision + recall > 0:
        return 2 * precision * recall / (precision + recall)
    return 0.0


def _ngram_f(target: list, prediction: list, n: int) -> float:
    if n == 1:
        target_counts, prediction_counts = Counter(target), Counter(prediction)
    else:
        target_counts, prediction_counts = Counter(zip(target, target[1:])), Counter(zip(prediction, prediction[1:]))
    overlap = 0
    get = prediction_counts.get
    for gram, count in target_counts.items():
        other = get(gram)
        if other:
            overlap += count if count < other else other
    precision = overlap / max(len(prediction) - n + 1, 1)
    recall = overlap / max(len(target) - n + 1, 1)
    return _fmeasure(precision, recall)


def lcs_length(a: Sequence, b: Sequence) -> int:
    """Length of the longest common subsequence (bit-parallel, O(len(a) x len(b) / word))."""
    if len(a) < len(b):
        a, b = b, a  # bits over the longer sequence, one step per item of the shorter
    if not b:
        return 0
    masks: dict = {}
    for position, item in enumerate(a):
        masks[item] = masks.get(item, 0) | (1 << position)
    full = (1 << len(a)) - 1
    v = full
    get = masks.get
    for item in b:
        u = v & get(item, 0)
        v = ((v + u) | (v - u)) & full
    return len(a) - v.bit_count()


def _lcs_f(target: list, prediction: list) -> float:
    if not target or not prediction:
        return 0.0
    lcs = lcs_length(target, prediction)
    return _fmeasure(lcs / len(prediction), lcs / len(target))


def _union_lcs_hits(target_sents: list[list], prediction_sents: list[list]) -> float:
    """rouge_score's summary-level LCS F-measure (``_summary_level_lcs``), exactly.

    For each reference sentence r and candidate sentence c, ``rouge_score`` fills
    the table t[i][j] = LCS(r[:i], c[:j]) and walks back from the corner: on a
    match it steps diagonally and keeps index i-1; otherwise it steps left when
    t[i][j-1] > t[i-1][j], else up.  Without a match t[i][j] is the larger of its
    two neighbours, so "left" happens exactly when t[i-1][j] = t[i][j] - 1,
    i.e. when column j's difference bit i-1 is set.  Hence:

    * going up, the walk stops at the first row (scanning upwards) whose column
      bit is set or whose token matches c[j-1]: one bit scan;
    * going left, t[i][.] cannot drop before a match (t[i-1][.] <= t[i][j]-1
      there), so the walk runs to the previous occurrence of r[i-1] in c:
      one bit scan.

    Column j's difference bits are the complement of the bit-parallel state
    after c[:j], computed for all reference sentences at once (one segment of
    bits per sentence, a zero guard bit after each); the walk works on global
    bit positions, so a segment's rows are bits offset+1 .. offset+len(r).
    """
    if not target_sents or not prediction_sents:
        return 0.0
    m = sum(map(len, target_sents))
    n = sum(map(len, prediction_sents))
    if not n or not m:
        return 0.0

    segments = []  # (mask, offset, top) per non-empty reference sentence
    flat: list = []  # reference token at each global bit (None at guards)
    match: dict = {}
    full = 0
    for sentence in target_sents:
        offset = len(flat)
        for item in sentence:
            match[item] = match.get(item, 0) | (1 << len(flat))
            flat.append(item)
        flat.append(None)  # the guard bit: carries stop here
        if sentence:
            mask = ((1 << len(sentence)) - 1) << offset
            segments.append((mask, offset, offset + len(sentence)))
            full |= mask
    get = match.get
    union = 0

    for candidate in prediction_sents:
        if not candidate:
            continue
        v = full
        differences = [0]  # column j: bits where t[i+1][j] - t[i][j] = 1
        matches = []  # candidate position j-1: bits of the reference tokens equal to it
        for item in candidate:
            bits = get(item, 0)
            matches.append(bits)
            u = v & bits
            v = ((v + u) | (v - u)) & full
            differences.append(full ^ v)
        final = differences[-1]
        if not final:
            continue
        positions: dict = {}
        for index, item in enumerate(candidate):
            positions[item] = positions.get(item, 0) | (1 << index)
        for mask, offset, top in segments:
            if not final & mask:
                continue  # LCS with this sentence is empty: nothing to keep
            row, j = top, len(candidate)
            while j:
                stop = ((differences[j] | matches[j - 1]) & ((1 << row) - 1)).bit_length()
                if stop <= offset:
                    break
                row = stop
                if not matches[j - 1] >> (row - 1) & 1:
                    j = (positions[flat[row - 1]] & ((1 << (j - 1)) - 1)).bit_length()
                union |= 1 << (row - 1)
                row -= 1
                j -= 1
                if row == offset:
                    break

    # rouge_score counts union tokens in reference order, each at most as often
    # as it occurs in both texts
    remaining_target = Counter(item for sentence in target_sents for item in sentence)
    remaining_prediction = Counter(item for sentence in prediction_sents for item in sentence)
    hits = 0
    while union:
        low = union & -union
        union ^= low
        item = flat[low.bit_length() - 1]
        if remaining_prediction[item] > 0 and remaining_target[item] > 0:
            hits += 1
            remaining_prediction[item] -= 1
            remaining_target[item] -= 1
    return _fmeasure(hits / n, hits / m)


def score_texts(target: str, prediction: str, stems: StemCache) -> tuple[float, float, float, float]:
    """(rouge1, rouge2, rougeL, rougeLsum) F-measures, as ``RougeScorer(..., use_stemmer=True).score``."""
    target_sents = tokenize_lines(target, stems)
    prediction_sents = tokenize_lines(prediction, stems)
    target_tokens = [t for sentence in target_sents for t in sentence]
    prediction_tokens = [t for sentence in prediction_sents for t in sentence]
    return (
        _ngram_f(target_tokens, prediction_tokens, 1),
        _ngram_f(target_tokens, prediction_tokens, 2),
        _lcs_f(target_tokens, prediction_tokens),
        _union_lcs_hits(target_sents, prediction_sents),
    )


def score_many(targets: Sequence[str], predictions: Sequence[str]) -> list[tuple[float, float, float, float]]:
    """Per-sample F-measures for aligned lists (one process)."""
    stems = StemCache()
    return [score_texts(t, p, stems) for t, p in zip(targets, predictions)]


# -- the whole pipeline over worker processes ------------------------------------------

#: What a fork-started worker inherits: (tokenizer, split function); set before the pool starts.
_WORKER_STATE: dict = {}


def _score_chunk(chunk: tuple[list, list[str]]) -> tuple[list[tuple[float, float, float, float]], int]:
    """Decode, post-process and score one chunk; returns its scores and prediction characters."""
    token_lists, targets = chunk
    tokenizer, split = _WORKER_STATE["tokenizer"], _WORKER_STATE["split"]
    stems = _WORKER_STATE.get("stems")
    if stems is None:
        stems = _WORKER_STATE["stems"] = StemCache()
    if tokenizer is None:
        predictions = token_lists  # already text
    else:
        predictions = tokenizer.batch_decode(token_lists, skip_special_tokens=True)
    scores, characters = [], 0
    for target, prediction in zip(targets, predictions):
        prediction = "\n".join(split(prediction.strip()))
        characters += len(prediction)
        scores.append(score_texts("\n".join(split(target.strip())), prediction, stems))
    return scores, characters


def _init_worker(tokenizer, split) -> None:
    _WORKER_STATE.clear()
    _WORKER_STATE.update(tokenizer=tokenizer, split=split)


def score_pipeline(targets: Sequence[str], predictions: Sequence, split: Callable[[str], list[str]], *,
                   tokenizer=None, workers: int = 1, chunk_size: int = 256
                   ) -> tuple[list[tuple[float, float, float, float]], int]:
    """Decode (when ``tokenizer`` is given and ``predictions`` are token lists), split and score.

    Returns per-sample (rouge1, rouge2, rougeL, rougeLsum) F-measures in input
    order and the characters of the post-processed predictions (gen_len).  With
    ``workers`` > 1 the chunks are spread over forked processes: decoding,
    splitting and scoring all run there, so every core is busy from the start.
    """
    # chunks are made as the workers ask for them: a 24,576-sample log is not copied at once
    chunks = ((list(predictions[i:i + chunk_size]), list(targets[i:i + chunk_size]))
              for i in range(0, len(predictions), chunk_size))
    if workers <= 1 or len(predictions) <= chunk_size:
        _init_worker(tokenizer, split)
        results = [_score_chunk(chunk) for chunk in chunks]
    else:
        import multiprocessing

        # fork: the workers inherit the tokenizer and the imported stemmer instead of re-importing them
        method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
        context = multiprocessing.get_context(method)
        with context.Pool(workers, initializer=_init_worker, initargs=(tokenizer, split)) as pool:
            results = list(pool.imap(_score_chunk, chunks, chunksize=1))
    scores = [score for chunk_scores, _ in results for score in chunk_scores]
    return scores, sum(characters for _, characters in results)
