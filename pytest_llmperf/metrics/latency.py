"""Percentiles as LoadGen computes them: the value at index ``floor(p/100 x n)`` of the sorted values.

The one percentile of the project: the SUT's engine-side latencies, the per-query TTFT/TPOT/ITL/E2E of
``loadgen.query_times`` and the capacity search all use it, so a number measured here and a number in a
LoadGen summary are computed the same way.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np


def percentile(values: Sequence[float] | np.ndarray, p: float) -> float | None:
    """LoadGen's rule at ``p`` percent (NaN values left out; None when no value is left)."""
    return percentiles(np.array(values, dtype=np.float64), (p,))[p]


def percentiles(values: np.ndarray, ps: Sequence[float]) -> dict[float, float | None]:
    """``percentile`` at each of ``ps``; reorders ``values`` in place (pass an array of your own)."""
    count = len(values) - int(np.count_nonzero(np.isnan(values)))
    if not count:
        return {p: None for p in ps}
    ranks = {p: min(count - 1, int(p / 100 * count)) for p in ps}
    values.partition(sorted(set(ranks.values())))  # NaN goes last, past every rank
    return {p: float(values[rank]) for p, rank in ranks.items()}
