"""ROUGE as MLPerf scores llama2-70b: the fast scorer is identical to rouge_score, the pipeline follows the script."""

from __future__ import annotations

import random
import string

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pytest_llmperf.errors import InputError, UsageError
from pytest_llmperf.loadgen.accuracy_log import AccuracyEntry
from pytest_llmperf.metrics import rouge, rouge_fast


@pytest.fixture(scope="module")
def scorer():
    from rouge_score import rouge_scorer

    return rouge_scorer.RougeScorer(list(rouge_fast.ROUGE_TYPES), use_stemmer=True)


def expected(scorer, target: str, prediction: str) -> tuple[float, ...]:
    result = scorer.score(target, prediction)
    return tuple(result[name].fmeasure for name in rouge_fast.ROUGE_TYPES)


# Few distinct words, so that texts share many tokens and the LCS backtrack has
# many ties to break; stems (running/runs/ran), case, digits, non-ASCII and
# every kind of separator rouge_score treats specially.
WORDS = ["the", "a", "of", "cat", "cats", "dog", "running", "runs", "ran", "is", "was", "being", "42", "x1",
         "Über", "İstanbul", "naïve", "K", "generalization", "generalize", "ok"]
SEPARATORS = [" ", " ", " ", ", ", ". ", ".\n", "!\n", "\n", "\n\n", " - ", "'s ", "\t", "\r\n", "?"]


def texts(max_words: int = 60):
    return st.lists(st.tuples(st.sampled_from(WORDS), st.sampled_from(SEPARATORS)), max_size=max_words).map(
        lambda parts: "".join(word + sep for word, sep in parts))


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(target=texts(), prediction=texts())
def test_fast_scores_equal_rouge_score_bit_for_bit(scorer, target, prediction):
    assert rouge_fast.score_texts(target, prediction, rouge_fast.StemCache()) == expected(scorer, target, prediction)


@settings(max_examples=100, deadline=None)
@given(target=st.text(max_size=80), prediction=st.text(max_size=80))
def test_fast_scores_equal_rouge_score_on_arbitrary_unicode(scorer, target, prediction):
    assert rouge_fast.score_texts(target, prediction, rouge_fast.StemCache()) == expected(scorer, target, prediction)


def test_fast_scores_equal_rouge_score_on_a_large_random_corpus(scorer):
    """600 pairs of 50-300 words with sentence breaks, from a small and a large vocabulary."""
    rng = random.Random(1234)
    vocabulary = WORDS + ["".join(rng.choice(string.ascii_lowercase) for _ in range(rng.randint(2, 9)))
                          for _ in range(300)]
    stems = rouge_fast.StemCache()
    for index in range(600):
        words = WORDS if index % 3 == 0 else vocabulary

        def text() -> str:
            return "".join(rng.choice(words) + rng.choice(SEPARATORS) for _ in range(rng.randint(50, 300)))

        target, prediction = text(), text()
        assert rouge_fast.score_texts(target, prediction, stems) == expected(scorer, target, prediction), index


@settings(max_examples=300, deadline=None)
@given(a=st.lists(st.integers(0, 5), max_size=70), b=st.lists(st.integers(0, 5), max_size=70))
def test_lcs_length_matches_the_dynamic_program(a, b):
    table = [[0] * (len(b) + 1) for _ in range(len(a) + 1)]
    for i in range(1, len(a) + 1):
        for j in range(1, len(b) + 1):
            table[i][j] = table[i - 1][j - 1] + 1 if a[i - 1] == b[j - 1] else max(table[i - 1][j], table[i][j - 1])
    assert rouge_fast.lcs_length(a, b) == table[-1][-1]


def test_edge_cases_match(scorer):
    stems = rouge_fast.StemCache()
    for target, prediction in [("", ""), ("", "a b"), ("a b", ""), ("...", "!!"), ("\n\n", "a\n\nb"),
                               ("The cat.\n\nThe dog.", "the dog\nthe cat"), ("a a a a", "a")]:
        assert rouge_fast.score_texts(target, prediction, stems) == expected(scorer, target, prediction)


# -- the MLPerf pipeline ------------------------------------------------------------

def test_regex_splitter():
    text = 'It rains. "Take a coat!" she said. Then 3 dogs ran away? e.g. this stays, and so does 2.5 here.\nNext line.'
    assert rouge.split_sentences_regex(text) == [
        "It rains.", '"Take a coat!" she said.', "Then 3 dogs ran away? e.g. this stays, and so does 2.5 here.",
        "Next line."]
    assert rouge.postprocess("  One. Two.  ", rouge.split_sentences_regex) == "One.\nTwo."


def test_splitter_is_resolved_and_named():
    name = rouge.resolve_splitter("auto")
    assert name == (rouge.PUNKT if rouge.punkt_available() else rouge.REGEX)
    assert rouge.describe_splitter(rouge.REGEX).startswith("regex fallback")
    with pytest.raises(UsageError, match="unknown"):
        rouge.resolve_splitter("spacy")
    if not rouge.punkt_available():
        with pytest.raises(UsageError, match="punkt_tab data is not installed"):
            rouge.resolve_splitter("punkt")


def sample_texts(count: int, seed: int = 0) -> tuple[list[str], list[str]]:
    from pytest_llmperf.datasets.openorca import embedded_records

    rng = random.Random(seed)
    outputs = [r["output"] for r in embedded_records()]
    references = [" ".join(rng.sample(outputs, 3)) for _ in range(count)]
    predictions = [" ".join(rng.sample(outputs, 2)) for _ in range(count)]
    return references, predictions


def test_fast_and_reference_give_the_same_dict_and_per_sample_scores():
    references, predictions = sample_texts(120)
    fast = rouge.score_texts(references, predictions, gen_tok_len=1234, splitter="regex", method="fast")
    reference = rouge.score_texts(references, predictions, gen_tok_len=1234, splitter="regex", method="reference",
                                  workers=2)
    assert fast.per_sample == reference.per_sample
    assert fast.mlperf_dict() == reference.mlperf_dict()
    assert list(fast.mlperf_dict()) == ["rouge1", "rouge2", "rougeL", "rougeLsum", "gen_len", "gen_num",
                                        "gen_tok_len", "tokens_per_sample"]
    # plain numbers, not numpy scalars (MLPerf's script prints np.float64(...) reprs under numpy 2)
    assert all(type(v) in (int, float) for v in fast.mlperf_dict().values())
    assert fast.gen_num == 120 and fast.tokens_per_sample == round(1234 / 120, 1)
    assert fast.gen_len == sum(len(rouge.postprocess(p, rouge.split_sentences_regex)) for p in predictions)


def test_worker_processes_give_the_same_numbers_as_one_process():
    references, predictions = sample_texts(600, seed=1)
    one, _ = rouge_fast.score_pipeline(references, predictions, rouge.split_sentences_regex, workers=1)
    two, _ = rouge_fast.score_pipeline(references, predictions, rouge.split_sentences_regex, workers=2, chunk_size=64)
    assert one == two


def test_aggregate_rounds_like_the_script():
    per_sample = [(0.123456789, 0.5, 0.25, 1.0), (0.3333333333, 0.0, 0.75, 0.0), (0.9, 0.1, 0.2, 0.3)]
    result = rouge.aggregate(per_sample, gen_len=10, gen_tok_len=7, splitter="regex")
    for index, name in enumerate(rouge_fast.ROUGE_TYPES):
        assert getattr(result, name) == round(np.mean([s[index] for s in per_sample]) * 100, 4)
    assert result.tokens_per_sample == 2.3


# -- accuracy-log semantics --------------------------------------------------------------

def entry(seq_id: int, qsl_idx: int, tokens) -> AccuracyEntry:
    return AccuracyEntry(seq_id, qsl_idx, tuple(tokens), len(tokens))


def test_first_response_per_qsl_idx_wins_and_special_tokens_are_skipped(tokenizer):
    references = ["The cat sat on the mat.", "Dogs like to run in the park."]
    cat = tokenizer("The cat sat on the mat.", add_special_tokens=False)["input_ids"]
    dog = tokenizer("Dogs run in the park.", add_special_tokens=False)["input_ids"]
    eos = tokenizer.eos_token_id
    entries = [entry(0, 1, dog + [eos]), entry(1, 0, cat + [eos]), entry(2, 1, cat)]  # the later qsl_idx 1 is ignored
    result = rouge.score_accuracy_log(entries, references, tokenizer, splitter="regex")
    assert result.gen_num == 2
    assert result.gen_tok_len == len(dog) + len(cat) + 2  # EOS counts as a generated token, as in MLPerf
    assert result.rouge1 == round(100 * (1.0 + 2 * 5 / (5 + 7)) / 2, 4)  # 5 of 5 and 5 of 7 words
    assert result.gen_len == len("Dogs run in the park.") + len("The cat sat on the mat.")


def test_qsl_idx_outside_the_dataset_is_named(tokenizer):
    with pytest.raises(InputError, match=r"log.json: qsl_idx 5 \(seq_id 0\) is outside the dataset \(2 samples\)"):
        rouge.score_accuracy_log([entry(0, 5, [1, 2])], ["a", "b"], tokenizer, log_path="log.json")


def test_token_ids_outside_the_vocabulary_point_at_the_dtype(tokenizer):
    with pytest.raises(InputError, match=r"token id 9000000000 is outside the tokenizer's vocabulary.*--dtype"):
        rouge.score_accuracy_log([entry(0, 0, [9000000000])], ["a"], tokenizer, log_path="log.json")


def test_an_empty_log_is_an_error(tokenizer):
    with pytest.raises(InputError, match="holds no responses"):
        rouge.score_accuracy_log([], ["a"], tokenizer, log_path="log.json")
