"""Throughput and latency statistics of a set of generations (no LoadGen).

Percentiles follow LoadGen's rule (the value at index ``floor(n x p)`` of the
sorted list), so numbers measured on a bare engine and numbers from a LoadGen
summary are computed the same way.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Iterable, Sequence

from ..engines import Generation

PERCENTILES = (0.5, 0.9, 0.95, 0.97, 0.99, 0.999)


def percentile(values: Iterable[float], p: float) -> float:
    """LoadGen's percentile: ``sorted(values)[floor(len x p)]``; NaN for no values."""
    if not 0.0 <= p < 1.0:
        raise ValueError(f"percentile must be in [0, 1), got {p}")
    ordered = sorted(v for v in values if not math.isnan(v))
    if not ordered:
        return float("nan")
    return ordered[int(len(ordered) * p)]


@dataclasses.dataclass(frozen=True)
class GenerationStats:
    """Throughput and token latencies of generations that ran together."""

    samples: int
    tokens: int
    """Generated tokens (EOS included)."""
    seconds: float
    """First request start to last token."""
    tokens_per_second: float
    samples_per_second: float
    ttft_s: dict[float, float]
    """Time to first token at each of ``PERCENTILES`` (seconds)."""
    tpot_s: dict[float, float]
    """Time per output token after the first, at each of ``PERCENTILES`` (seconds)."""
    decode_steps: int
    """Distinct token timestamps: tokens produced by one batched forward pass count once."""


def generation_stats(generations: Sequence[Generation]) -> GenerationStats:
    timed = [g for g in generations if g.token_times]
    if not timed:
        raise ValueError("no generation produced a token")
    start = min(g.start_time for g in timed)
    end = max(g.token_times[-1] for g in timed)
    seconds = max(end - start, 1e-9)
    tokens = sum(len(g.token_ids) for g in generations)
    ttft = [g.time_to_first_token for g in timed]
    tpot = [g.time_per_output_token for g in timed]
    return GenerationStats(
        samples=len(generations),
        tokens=tokens,
        seconds=seconds,
        tokens_per_second=tokens / seconds,
        samples_per_second=len(generations) / seconds,
        ttft_s={p: percentile(ttft, p) for p in PERCENTILES},
        tpot_s={p: percentile(tpot, p) for p in PERCENTILES},
        decode_steps=len({t for g in timed for t in g.token_times}),
    )
