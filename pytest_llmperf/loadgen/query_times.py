"""Per-query token times of a LoadGen run, from the engine's own timestamps.

LoadGen's logs report TTFT, TPOT and latency percentiles but no per-token
times and no per-query records.  The SUT keeps, for every completed sample, the
time LoadGen handed it over and the ``perf_counter`` time the engine stamped on
each of its tokens, as columns (``query_store``); the runner writes them to
``queries.npz`` beside LoadGen's logs.  From them: TTFT, TPOT, inter-token
latency (ITL) and end-to-end latency per query, their percentiles, and goodput
(queries meeting every SLO, per second).  Percentiles follow LoadGen's rule (the value at index floor(p x n)).
The statistics work on the columns, so a run of millions of tokens costs seconds.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from ..metrics.latency import percentiles
from .query_store import (LEGACY_QUERY_TIMES, QUERY_STORE, QueryTimes, QueryTiming, read_query_store,
                          write_query_store)

QUERY_TIMES = QUERY_STORE
STALE_QUERY_TIMES = (QUERY_STORE, LEGACY_QUERY_TIMES)
"""Removed from a run folder before a run: an older run's ``queries.json`` must not outlive it."""
PERCENTILES = (50.0, 90.0, 99.0)
LATENCIES = ("ttft", "tpot", "itl", "e2e")
"""Time to first token, time per output token after the first, inter-token gap, issue to last token."""


@dataclasses.dataclass(frozen=True)
class Slo:
    """Per-request service-level objectives in ms (0 = not judged)."""

    ttft_ms: float = 0.0
    tpot_ms: float = 0.0
    e2e_ms: float = 0.0

    def met_by(self, query: QueryTiming) -> bool:
        """True when the query answered and every objective that is set holds; a one-token answer has
        no TPOT (LoadGen flags it as an error) and never meets a TPOT objective."""
        if not query.token_times:
            return False
        for limit_ms, value in ((self.ttft_ms, query.ttft), (self.tpot_ms, query.tpot), (self.e2e_ms, query.e2e)):
            if limit_ms > 0 and (value is None or value * 1e3 > limit_ms):
                return False
        return True

    def met(self, times: QueryTimes) -> np.ndarray:
        """``met_by`` for every query of ``times`` at once (a bool per query)."""
        good = times.answered.copy()
        with np.errstate(invalid="ignore"):
            for limit_ms, values in ((self.ttft_ms, times.ttft), (self.tpot_ms, times.tpot), (self.e2e_ms, times.e2e)):
                if limit_ms > 0:
                    good &= values() * 1e3 <= limit_ms  # NaN (no value) compares False
        return good


@dataclasses.dataclass(frozen=True)
class QueryStats:
    """What the per-query times of one run say."""

    queries: int
    seconds: float
    """First issue to last token."""
    samples_per_second: float
    tokens_per_second: float
    latency_ms: dict[str, dict[float, float | None]]
    """``ttft`` / ``tpot`` / ``itl`` / ``e2e`` -> percentile -> ms (None when no query had a value)."""
    good_queries: int
    goodput: float
    """Queries meeting every SLO, per second of the run."""
    tokens_per_second_per_user: float | None
    """1 / median TPOT: the decode speed one user sees."""

    def to_dict(self) -> dict:
        data = dataclasses.asdict(self)
        data["latency_ms"] = {name: {f"p{p:g}": v for p, v in table.items()} for name, table in self.latency_ms.items()}
        return data


def write_query_times(folder: Path, queries: QueryTimes | Iterable[tuple[int, float, Iterable[float], int]]) -> Path:
    """``queries.npz``: each sample's issue and token times, relative to the first issue, in seconds."""
    times = queries if isinstance(queries, QueryTimes) else QueryTimes.from_rows(queries)
    return write_query_store(folder, times)


def read_query_times(folder: str | Path) -> QueryTimes:
    """A run folder's per-query times (``queries.npz``, or an older run's ``queries.json``)."""
    return read_query_store(folder)


def query_stats(queries: QueryTimes | Sequence[QueryTiming], slo: Slo = Slo()) -> QueryStats:
    """Throughput, latency percentiles and goodput of one run's queries."""
    times = queries if isinstance(queries, QueryTimes) else QueryTimes.from_rows(
        (q.qsl_idx, q.issued, q.token_times, q.tokens) for q in queries)
    answered = times.answered
    start = float(times.issued.min()) if len(times) else 0.0
    end = float(np.nanmax(times.last_token())) if answered.any() else start
    seconds = max(end - start, 1e-9)
    values = {"ttft": times.ttft(), "tpot": times.tpot(), "itl": times.itl(), "e2e": times.e2e()}
    good = int(np.count_nonzero(slo.met(times)))
    raw = {name: percentiles(values.pop(name), PERCENTILES) for name in LATENCIES}  # each freed once ranked
    table = {name: {p: _ms(v) for p, v in raw[name].items()} for name in LATENCIES}
    median_tpot = raw["tpot"][50.0]
    return QueryStats(
        queries=len(times), seconds=round(seconds, 6),
        samples_per_second=int(np.count_nonzero(answered)) / seconds,
        tokens_per_second=int(times.tokens[answered].sum()) / seconds,
        latency_ms=table, good_queries=good, goodput=good / seconds,
        tokens_per_second_per_user=(1.0 / median_tpot) if median_tpot else None,
    )


def agreement(stats: QueryStats, summary, tolerance: float = 0.05, slack_ms: float = 1.0) -> dict:
    """TTFT and TPOT p50/p99 from the engine's token times next to LoadGen's: within
    ``tolerance`` (relative) plus ``slack_ms``?  ``summary`` is a ``LoadgenSummary``."""
    rows, agrees = {}, True
    for name in ("ttft", "tpot"):
        for p in (50.0, 99.0):
            loadgen_ns = summary.percentile(name, p)
            ours = stats.latency_ms[name].get(p)
            if loadgen_ns is None or ours is None:
                continue
            loadgen_ms = loadgen_ns / 1e6
            ok = abs(ours - loadgen_ms) <= tolerance * loadgen_ms + slack_ms
            agrees &= ok
            rows[f"{name}_p{p:g}"] = {"engine_ms": round(ours, 3), "loadgen_ms": round(loadgen_ms, 3), "agrees": ok}
    return {"tolerance": tolerance, "slack_ms": slack_ms, "agrees": agrees and bool(rows), "values": rows}


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1e3, 3)
