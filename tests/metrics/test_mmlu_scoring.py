"""MMLU scoring: lm-eval's log-likelihood and FlagPerf's argmax on the real engine, and their gates."""


import numpy as np
import pytest

from pytest_llmperf.gating.baselines import BaselineKey, BaselineStore
from pytest_llmperf.gating.checker import Checker
from pytest_llmperf.datasets import mmlu as data
from pytest_llmperf.gating import mmlu as mmlu_gate
from pytest_llmperf.metrics import mmlu
from pytest_llmperf.config.profiles import load_profile


@pytest.fixture(scope="module")
def prompts(tokenizer):
    sample = data.load_mmlu("embedded").only(["astronomy"])
    return data.build_prompts(sample, 2, 2048, mmlu.prompt_token_count(tokenizer))[:3]


def test_answer_tokens_are_the_bare_and_the_spaced_letter(tokenizer):
    ids = mmlu.answer_token_ids(tokenizer)
    for letter in data.LETTERS:
        bare = tokenizer(letter, add_special_tokens=False)["input_ids"]
        spaced = tokenizer(" " + letter, add_special_tokens=False)["input_ids"]
        assert ids[letter] == {bare[0], spaced[0]}


def test_continuations_are_split_as_lm_eval_does(tokenizer):
    context, continuation = mmlu.encode_pair(tokenizer, "Question?\nAnswer:", " B")
    assert continuation == tokenizer(" B", add_special_tokens=False)["input_ids"]
    assert context + continuation == tokenizer("Question?\nAnswer: B", add_special_tokens=False)["input_ids"]
    # A trailing space on the context moves to the continuation.
    assert mmlu.encode_pair(tokenizer, "Question?\nAnswer: ", "B") == (context, continuation)


def test_loglikelihood_picks_the_most_likely_letter(hf_engine, tokenizer, prompts):
    predictions = mmlu.score_loglikelihood(hf_engine, tokenizer, prompts)
    letter_ids = [tokenizer(" " + letter, add_special_tokens=False)["input_ids"][0] for letter in data.LETTERS]
    for prompt, prediction in zip(prompts, predictions):
        context, _ = mmlu.encode_pair(tokenizer, prompt.text, " A")
        row = hf_engine.score_path(context, [letter_ids[0]]).values[0].astype(np.float64)
        logprobs = row - np.log(np.exp(row - row.max()).sum()) - row.max()
        assert prediction.predicted == data.LETTERS[int(np.argmax(logprobs[letter_ids]))]
        assert list(prediction.detail["logprobs"].values()) == pytest.approx(logprobs[letter_ids], abs=1e-4)
        assert prediction.answer == prompt.question.answer_letter and prediction.shots == 2


def test_argmax_takes_the_whole_vocabulary(hf_engine, tokenizer, prompts):
    predictions = mmlu.score_argmax(hf_engine, tokenizer, prompts)
    letters = {t: letter for letter, ids in mmlu.answer_token_ids(tokenizer).items() for t in ids}
    for prompt, prediction in zip(prompts, predictions):
        ids = tokenizer(prompt.text)["input_ids"]
        argmax = int(hf_engine.score_path(ids, [0]).values[0].argmax())
        assert prediction.detail["argmax_token_id"] == (argmax if argmax in letters else None)
        assert prediction.predicted == letters.get(argmax)


def test_both_modes_in_one_call_equal_each_mode_alone(hf_engine, tokenizer, prompts):
    both = mmlu.score_modes(hf_engine, tokenizer, prompts, mmlu.MODES)
    assert both["loglikelihood"] == mmlu.score_loglikelihood(hf_engine, tokenizer, prompts)
    assert both["argmax"] == mmlu.score_argmax(hf_engine, tokenizer, prompts)


class _FixedArgmax:
    """Plumbing only: an engine whose next-token argmax is a chosen token."""

    def __init__(self, token):
        self.token = token

    def loglikelihood(self, requests):
        return [(0.0 if continuation == [self.token] else -5.0, continuation == [self.token])
                for _, continuation in requests]


def test_argmax_on_a_token_that_is_no_letter_is_a_miss(tokenizer, prompts):
    newline = tokenizer("\n", add_special_tokens=False)["input_ids"][0]
    (prediction,) = mmlu.score_argmax(_FixedArgmax(newline), tokenizer, prompts[:1])
    assert prediction.predicted is None and not prediction.correct
    answer = prompts[0].question.answer_letter
    bare = tokenizer(answer, add_special_tokens=False)["input_ids"][0]
    (prediction,) = mmlu.score_argmax(_FixedArgmax(bare), tokenizer, prompts[:1])
    assert prediction.correct  # FlagPerf's form: the letter encoded on its own


def _prediction(subject, correct):
    return mmlu.MmluPrediction(subject, "x", "A", "A" if correct else "B", 5, {})


def test_accuracy_is_micro_averaged_with_a_per_subject_table():
    predictions = [_prediction("a", True)] * 3 + [_prediction("a", False)] + [_prediction("b", False)] * 2
    score = mmlu.summarize("argmax", predictions)
    assert score.accuracy == 50.0 and (score.correct, score.total) == (3, 6)
    assert score.per_subject == {"a": {"correct": 3, "total": 4, "accuracy": 75.0},
                                 "b": {"correct": 0, "total": 2, "accuracy": 0.0}}
    assert "| a | 3 | 4 | 75.0 |" in score.table()


def _checker(tmp_path):
    return Checker("suites/accuracy/test_mmlu.py::test_mmlu_accuracy[argmax]", [], BaselineStore(tmp_path),
                   False).bind(baseline_key=KEY)


KEY = BaselineKey("m", "cpu", "transformers", "float32")


def test_flagperf_target_fails_below_45_8_percent(tmp_path):
    profile = load_profile("flagperf-llama2-7b-mmlu")
    check = _checker(tmp_path)
    mmlu_gate.record(check, profile, mmlu.summarize("argmax", [_prediction("a", True), _prediction("a", False)] * 2
                                               + [_prediction("a", False)] * 4))
    assert check.failures == ["mmlu.accuracy.argmax 25.0000 < 45.8000 % "
                              "(flagperf-llama2-7b-mmlu: mmlu.target_accuracy = 0.458); see --llmperf-profile"]
    passing = _checker(tmp_path)
    mmlu_gate.record(passing, profile, mmlu.summarize("argmax", [_prediction("a", True)]))
    assert passing.failures == [] and passing.metrics[0].verdict == "pass"


def test_embedded_profile_without_baseline_names_the_record_command(tmp_path):
    check = _checker(tmp_path)
    mmlu_gate.record(check, load_profile("embedded"), mmlu.summarize("argmax", [_prediction("a", True)]))
    gated = [m for m in check.metrics if m.verdict == "no_baseline"]
    assert check.failures == [] and gated and "--llmperf-update-baselines" in gated[0].extra["record_with"]
    strict = _checker(tmp_path)
    strict.strict = True
    mmlu_gate.record(strict, load_profile("embedded"), mmlu.summarize("argmax", [_prediction("a", True)]))
    assert "no baseline in" in strict.failures[0] and "--llmperf-update-baselines" in strict.failures[0]
