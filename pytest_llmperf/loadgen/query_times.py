"""Per-query token times of a LoadGen run, from the engine's own timestamps.

LoadGen's logs report TTFT, TPOT and latency percentiles but no per-token
times and no per-query records.  The SUT keeps, for every completed sample, the
time LoadGen handed it over and the ``perf_counter`` time the engine stamped on
each of its tokens; the runner writes them to ``queries.json`` beside LoadGen's
logs.  From them: TTFT, TPOT, inter-token latency (ITL) and end-to-end latency
per query, their percentiles, and goodput (queries meeting every SLO, per
second).  Percentiles follow LoadGen's rule (the value at index floor(p x n)).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Iterable, Sequence

from .. import atomic
from ..errors import InputError

QUERY_TIMES = "queries.json"
PERCENTILES = (50.0, 90.0, 99.0)
LATENCIES = ("ttft", "tpot", "itl", "e2e")
"""Time to first token, time per output token after the first, inter-token gap, issue to last token."""


@dataclasses.dataclass(frozen=True)
class QueryTiming:
    """One completed sample: when it was issued and when the engine emitted each of its tokens."""

    qsl_idx: int
    issued: float
    """Seconds (perf_counter, relative to the run's first issue) at which LoadGen issued it to the SUT."""
    token_times: tuple[float, ...]
    """Seconds, same clock, at which the engine emitted each token."""
    tokens: int

    @property
    def ttft(self) -> float | None:
        return self.token_times[0] - self.issued if self.token_times else None

    @property
    def tpot(self) -> float | None:
        """(last - first token) / (tokens - 1), as LoadGen defines it; None below 2 tokens."""
        if len(self.token_times) < 2:
            return None
        return (self.token_times[-1] - self.token_times[0]) / (len(self.token_times) - 1)

    @property
    def e2e(self) -> float | None:
        return self.token_times[-1] - self.issued if self.token_times else None

    @property
    def itl(self) -> list[float]:
        times = self.token_times
        return [b - a for a, b in zip(times, times[1:])]


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


def percentile(values: Sequence[float], p: float) -> float | None:
    """LoadGen's rule: the value at index floor(p/100 x n) of the sorted values."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


def write_query_times(folder: Path, queries: Iterable[tuple[int, float, tuple[float, ...], int]]) -> Path:
    """``queries.json``: each sample's issue and token times, relative to the first issue, in seconds."""
    rows = list(queries)
    origin = min((issued for _, issued, _, _ in rows), default=0.0)
    data = {"schema": 1, "clock": "seconds since the first issue (perf_counter)",
            "queries": [[index, round(issued - origin, 6), [round(t - origin, 6) for t in times], tokens]
                        for index, issued, times, tokens in rows]}
    path = Path(folder) / QUERY_TIMES
    atomic.write_json(path, data)
    return path


def read_query_times(folder: str | Path) -> list[QueryTiming]:
    path = Path(folder)
    if path.is_dir():
        path = path / QUERY_TIMES
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return [QueryTiming(int(i), float(issued), tuple(float(t) for t in times), int(n))
                for i, issued, times, n in data["queries"]]
    except FileNotFoundError:
        raise InputError(path, "no such file", "pass the folder of a LoadGen run made by pytest-llmperf") from None
    except (ValueError, KeyError, TypeError) as exc:
        raise InputError(path, f"is not a per-query times file ({exc})",
                         "re-run the LoadGen test; the SUT writes it at the end of each run") from None


def query_stats(queries: Sequence[QueryTiming], slo: Slo = Slo()) -> QueryStats:
    """Throughput, latency percentiles and goodput of one run's queries."""
    answered = [q for q in queries if q.token_times]
    start = min((q.issued for q in queries), default=0.0)
    end = max((q.token_times[-1] for q in answered), default=start)
    seconds = max(end - start, 1e-9)
    values = {"ttft": [q.ttft for q in answered], "tpot": [q.tpot for q in answered if q.tpot is not None],
              "itl": [gap for q in answered for gap in q.itl], "e2e": [q.e2e for q in answered]}
    table = {name: {p: _ms(percentile(values[name], p)) for p in PERCENTILES} for name in LATENCIES}
    good = sum(slo.met_by(q) for q in queries)
    median_tpot = percentile(values["tpot"], 50.0)
    return QueryStats(
        queries=len(queries), seconds=round(seconds, 6),
        samples_per_second=len(answered) / seconds,
        tokens_per_second=sum(q.tokens for q in answered) / seconds,
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
