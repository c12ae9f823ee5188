"""Do two engines generate the same greedy text?  vLLM's own rule for comparing implementations.

Greedy outputs of two correct implementations may part at a near-tie, since
their arithmetic differs.  The rule (as in vLLM's ``check_logprobs_close``):
where the two token streams first differ, each side's token must be among the
other side's top-k candidates at that position; after that point the streams
are not compared.  The exact-match rate and where streams part are reported too.
"""

from __future__ import annotations

import dataclasses
from typing import Sequence

import numpy as np

from ..engines import Engine


@dataclasses.dataclass(frozen=True)
class Divergence:
    """Where one prompt's two greedy outputs first differ."""

    prompt_index: int
    position: int
    """Index of the first differing generated token."""
    token_a: int
    token_b: int
    rank_of_b_under_a: int
    """Rank of engine B's token among engine A's candidates there (0 = A's own choice)."""
    rank_of_a_under_b: int
    top_k: int

    @property
    def within_top_k(self) -> bool:
        return self.rank_of_b_under_a < self.top_k and self.rank_of_a_under_b < self.top_k

    def describe(self, name_a: str, name_b: str) -> str:
        return (f"prompt {self.prompt_index}, token {self.position}: {name_a} chose {self.token_a} "
                f"(rank {self.rank_of_a_under_b} under {name_b}), {name_b} chose {self.token_b} "
                f"(rank {self.rank_of_b_under_a} under {name_a}); top-{self.top_k} required")


@dataclasses.dataclass(frozen=True)
class Agreement:
    """The comparison of two engines over a set of prompts."""

    prompts: int
    exact_matches: int
    divergences: tuple[Divergence, ...]
    top_k: int

    @property
    def exact_match_rate(self) -> float:
        return self.exact_matches / self.prompts if self.prompts else float("nan")

    @property
    def violations(self) -> tuple[Divergence, ...]:
        return tuple(d for d in self.divergences if not d.within_top_k)

    @property
    def first_divergence_positions(self) -> list[int]:
        return [d.position for d in self.divergences]


def first_difference(a: Sequence[int], b: Sequence[int]) -> int | None:
    """Index of the first position where both streams have a token and they differ."""
    for position, (x, y) in enumerate(zip(a, b)):
        if x != y:
            return position
    return None


def rank_of(row: np.ndarray, token: int) -> int:
    """How many candidates score strictly higher than ``token`` (0 = the argmax).

    Works for logits and for top-k log-probabilities alike: entries outside
    an API's top-k are ``-inf``, so a token that is not in the top-k ranks >= k.
    """
    return int((row > row[token]).sum())


def _rank_at(engine: Engine, prompt: Sequence[int], prefix: Sequence[int], token: int, top_k: int) -> int:
    scored = engine.score_path(prompt, [*prefix, token], top_k=top_k)
    return rank_of(np.asarray(scored.values[-1], dtype=np.float64), token)


def compare(
    engine_a: Engine,
    engine_b: Engine,
    prompts: Sequence[Sequence[int]],
    outputs_a: Sequence[Sequence[int]],
    outputs_b: Sequence[Sequence[int]],
    top_k: int = 5,
) -> Agreement:
    """Apply the rule to two engines' greedy outputs (generated token ids) for the same prompts."""
    if not len(prompts) == len(outputs_a) == len(outputs_b):
        raise ValueError("prompts and both engines' outputs must have the same length")
    exact, divergences = 0, []
    for index, (prompt, a, b) in enumerate(zip(prompts, outputs_a, outputs_b)):
        position = first_difference(a, b)
        if position is None:
            exact += int(len(a) == len(b))
            continue
        prefix = a[:position]  # shared by both streams
        token_a, token_b = a[position], b[position]
        divergences.append(Divergence(
            prompt_index=index, position=position, token_a=token_a, token_b=token_b,
            rank_of_b_under_a=_rank_at(engine_a, prompt, prefix, token_b, top_k),
            rank_of_a_under_b=_rank_at(engine_b, prompt, prefix, token_a, top_k),
            top_k=top_k,
        ))
    return Agreement(len(prompts), exact, tuple(divergences), top_k)

