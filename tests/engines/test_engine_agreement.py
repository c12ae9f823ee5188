"""The cross-engine agreement rule (plumbing, with scripted score tables) and the suite's skip.

The rule's real run is suites/accuracy/test_agreement.py on transformers and
vLLM; here scripted engines make every branch happen, the failing one included.
"""

from __future__ import annotations

import numpy as np
import pytest

from pytest_llmperf.engines import ScoredPath
from pytest_llmperf.metrics.agreement import compare, first_difference, rank_of

VOCAB = 10


class ScriptedScores:
    """Plumbing only: score_path returns a fixed ranking per position (best first)."""

    def __init__(self, ranking: list[int], space: str):
        self.ranking, self.space = ranking, space

    def score_path(self, prompt, path, top_k=None):
        values = np.full((len(path), VOCAB), -np.inf if self.space == "logprobs" else -5.0)
        kept = self.ranking[:top_k] if self.space == "logprobs" else self.ranking
        for rank, token in enumerate(kept):
            values[-1, token] = -float(rank)
        if self.space == "logprobs":  # an API adds the path token's own score
            values[-1, path[-1]] = max(values[-1, path[-1]], -50.0)
        return ScoredPath(values=values, space=self.space)


def generation(*ids):
    """A greedy output: its generated token ids."""
    return tuple(ids)


def test_first_difference_and_rank():
    assert first_difference([1, 2, 3], [1, 2, 3]) is None
    assert first_difference([1, 2, 3], [1, 4, 3]) == 1
    assert first_difference([1, 2], [1, 2, 3]) is None
    row = np.array([0.1, 0.9, 0.5, -np.inf])
    assert rank_of(row, 1) == 0 and rank_of(row, 2) == 1 and rank_of(row, 3) == 3


def test_identical_streams_are_exact_matches():
    a = ScriptedScores([1, 2, 3], "logits")
    result = compare(a, a, [[0]], [generation(1, 2)], [generation(1, 2)], top_k=2)
    assert result.exact_match_rate == 1.0 and not result.divergences


def test_a_near_tie_divergence_passes():
    a, b = ScriptedScores([4, 5, 6], "logits"), ScriptedScores([5, 4, 6], "logprobs")
    result = compare(a, b, [[0]], [generation(1, 4)], [generation(1, 5)], top_k=2)
    (divergence,) = result.divergences
    assert divergence.position == 1 and divergence.within_top_k and not result.violations
    assert result.exact_match_rate == 0.0 and result.first_divergence_positions == [1]


def test_a_token_outside_the_other_sides_top_k_is_a_violation():
    a, b = ScriptedScores([4, 6, 7, 5], "logits"), ScriptedScores([5, 8, 9, 4], "logprobs")
    result = compare(a, b, [[0]], [generation(4)], [generation(5)], top_k=2)
    (violation,) = result.violations
    assert violation.rank_of_b_under_a == 3 and violation.rank_of_a_under_b >= 2
    assert "prompt 0, token 0: hf chose 4" in violation.describe("hf", "vllm")


def test_lengths_must_match():
    a = ScriptedScores([1], "logits")
    with pytest.raises(ValueError):
        compare(a, a, [[0], [1]], [generation(1)], [generation(1)])


def test_the_suite_skips_with_a_reason_unless_both_engines_are_selected(pytester):
    import pathlib

    suite = pathlib.Path(__file__).parents[2] / "suites" / "accuracy" / "test_agreement.py"
    pytester.makepyfile(test_agreement=suite.read_text())
    result = pytester.runpytest("-m", "cpu", "--llmperf-engine", "transformers", "--llmperf-device", "cpu", "-rs",
                                "--llmperf-out", str(pytester.path / "out"))
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*select both with --llmperf-engine transformers,vllm*"])
