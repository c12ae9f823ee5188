"""Serving sweeps: LoadGen Server runs over a list of rates, and closed-loop concurrency runs.

Each point records LoadGen's own numbers (completed samples/s and tokens/s,
TTFT/TPOT percentiles, VALID or INVALID) beside the engine's per-query token
times (``queries.npz``): TTFT, TPOT, inter-token latency and end-to-end
latency at p50/p90/p99, and goodput, the queries per second that met every
SLO of the profile.  On one point the per-query TTFT and TPOT are checked
against LoadGen's (``agreement``).  The Pareto front is taken over tokens/s per
user (1 / median TPOT) against tokens/s per device.
"""

from __future__ import annotations

import dataclasses
import json
import threading
import time
from pathlib import Path
from typing import Callable, Sequence

from ..engines.base import batches_continuously
from ..runtime import atomic
from ..errors import InputError, UsageError
from ..config.profiles import Profile
from .query_times import QueryStats, Slo, agreement, query_stats, read_query_times, write_query_times
from .settings import RunSettings, run_settings

SWEEP_FILE = "sweep.json"


@dataclasses.dataclass(frozen=True)
class SweepPoint:
    """One rate (or concurrency) of the sweep."""

    kind: str
    """``qps`` (a LoadGen Server run) or ``concurrency`` (closed loop, no LoadGen)."""
    load: float
    """target_qps, or requests in flight."""
    stats: QueryStats
    loadgen: dict | None
    """LoadGen's result and numbers for qps points: result, samples_per_second, tokens_per_second,
    ttft_ms / tpot_ms at p50/p90/p99."""
    folder: str
    devices: int = 1

    @property
    def tokens_per_second_per_device(self) -> float:
        return self.stats.tokens_per_second / self.devices

    def to_dict(self) -> dict:
        return {"kind": self.kind, "load": self.load, "folder": self.folder, "devices": self.devices,
                "tokens_per_second_per_device": self.tokens_per_second_per_device,
                "stats": self.stats.to_dict(), "loadgen": self.loadgen}


def parse_loads(text: str, what: str = "--qps") -> list[float]:
    """``1,2,4`` or ``START:STOP:STEP`` (both ends included)."""
    try:
        if ":" in text:
            start, stop, step = (float(part) for part in text.split(":"))
            if step <= 0 or stop < start:
                raise ValueError
            count = int(round((stop - start) / step)) + 1
            values = [round(start + i * step, 6) for i in range(count) if start + i * step <= stop + 1e-9]
        else:
            values = [float(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise UsageError(f"{what} {text}", "is not a list or a range of positive numbers",
                         f"pass e.g. {what} 1,2,4 or {what} 1:8:1 (start:stop:step)") from None
    if not values or any(value <= 0 for value in values):
        raise UsageError(f"{what} {text}", "holds no positive value", f"pass e.g. {what} 1,2,4")
    return values


def slo_of(run: RunSettings) -> Slo:
    return Slo(ttft_ms=run.ttft_latency_ms, tpot_ms=run.tpot_latency_ms)


def qps_point(run_one: Callable[[RunSettings, Path], object], base: RunSettings, qps: float, folder: Path,
              devices: int = 1) -> SweepPoint:
    settings = dataclasses.replace(base, target_qps=qps)
    run = run_one(settings, folder)
    stats = query_stats(read_query_times(folder), slo_of(settings))
    summary = run.summary
    loadgen = None
    if summary is not None:
        loadgen = {"result": "VALID" if summary.valid else "INVALID", "unmet": list(summary.unmet_constraints),
                   "samples_per_second": summary.samples_per_second, "tokens_per_second": summary.tokens_per_second,
                   **{f"{name}_ms": {f"p{p:g}": _ms(summary.percentile(name, p)) for p in (50.0, 90.0, 99.0)}
                      for name in ("ttft", "tpot", "latency")},
                   "agreement": agreement(stats, summary)}
    return SweepPoint("qps", qps, stats, loadgen, str(folder), devices)


def sweep(run_one: Callable[[RunSettings, Path], object], profile: Profile, loads: Sequence[float], out_dir: Path,
          scenario: str = "Server", duration_ms: int = 0, min_queries: int = 0, devices: int = 1,
          report: Callable[[str], None] = print) -> list[SweepPoint]:
    """One LoadGen ``scenario`` run per rate in ``loads``; writes ``sweep.json`` after each point."""
    base = run_settings(profile, scenario, "PerformanceOnly")
    base = dataclasses.replace(base, min_duration_ms=duration_ms or base.min_duration_ms,
                               min_query_count=min_queries or base.min_query_count)
    out_dir = Path(out_dir)
    points: list[SweepPoint] = []
    for qps in loads:
        point = qps_point(run_one, base, qps, out_dir / f"qps-{qps:g}", devices)
        points.append(point)
        report(describe(point))
        write_sweep(out_dir, points, profile, base)
    return points


def concurrency_point(engine, prompts: Sequence[Sequence[int]], params, concurrency: int, requests: int,
                      slo: Slo, folder: Path) -> SweepPoint:
    """``concurrency`` requests in flight, each followed by the next as it ends, ``requests`` in all
    (closed loop through ``engine.submit``; LoadGen has no such scenario)."""
    if not batches_continuously(engine):
        raise UsageError(f"--concurrency for engine {engine.info.engine!r}", "needs an engine that takes requests one "
                         "by one (submit: vllm, openai, llm-serving)", "sweep --qps instead")
    lock, finished = threading.Lock(), threading.Event()
    issued: dict[int, float] = {}
    rows: list[tuple[int, float, tuple[float, ...], int]] = []
    errors: list[str] = []
    counter = iter(range(requests))

    def start_next() -> None:
        with lock:
            tag = next(counter, None)
            if tag is None:
                return
            issued[tag] = time.perf_counter()
        try:
            engine.submit(tag, prompts[tag % len(prompts)], params, None, done)
        except Exception as exc:  # a refused request counts as answered with nothing
            done(tag, exc)

    def done(tag: int, result) -> None:
        # On the engine's thread; the next request starts from here (an engine that answers inside
        # submit recurses once per request: fine for the few hundred a point runs).
        with lock:
            if isinstance(result, BaseException):
                errors.append(f"{type(result).__name__}: {result}")
                rows.append((tag % len(prompts), issued[tag], (), 0))
            else:
                rows.append((tag % len(prompts), issued[tag], tuple(result.token_times), len(result.token_ids)))
            if len(rows) == requests:
                finished.set()
        start_next()

    for _ in range(min(concurrency, requests)):
        start_next()
    finished.wait()
    folder.mkdir(parents=True, exist_ok=True)
    write_query_times(folder, rows)
    stats = query_stats(read_query_times(folder), slo)
    return SweepPoint("concurrency", concurrency, stats, {"errors": errors[:5]} if errors else None, str(folder))


def pareto_front(points: Sequence[SweepPoint]) -> list[SweepPoint]:
    """Points no other point beats on both tokens/s per user and tokens/s per device (higher is better)."""
    def key(point: SweepPoint) -> tuple[float, float]:
        return point.stats.tokens_per_second_per_user or 0.0, point.tokens_per_second_per_device

    front = []
    for point in points:
        user, device = key(point)
        dominated = any(u >= user and d >= device and (u, d) != (user, device) for u, d in map(key, points))
        if not dominated:
            front.append(point)
    return sorted(front, key=lambda p: key(p)[1])


def describe(point: SweepPoint) -> str:
    stats, lat = point.stats, point.stats.latency_ms
    result = f" {point.loadgen['result']}" if point.loadgen and "result" in point.loadgen else ""
    if point.loadgen and point.loadgen.get("unmet"):
        result += f" (not satisfied: {', '.join(point.loadgen['unmet'])})"
    return (f"{point.kind} {point.load:g}{result}: {stats.tokens_per_second:.1f} tokens/s, "
            f"{stats.samples_per_second:.2f} samples/s, goodput {stats.goodput:.2f}/s "
            f"({stats.good_queries}/{stats.queries}); TTFT p50/p90/p99 {_triple(lat['ttft'])} ms, "
            f"TPOT {_triple(lat['tpot'])} ms, ITL {_triple(lat['itl'])} ms, E2E {_triple(lat['e2e'])} ms")


def write_sweep(out_dir: Path, points: Sequence[SweepPoint], profile: Profile, base: RunSettings) -> Path:
    """``sweep.json``: every point, the limits drawn in the report, and the Pareto front."""
    front = {id(p) for p in pareto_front(points)}
    data = {"schema": SWEEP_SCHEMA, "profile": profile.source or profile.name, "scenario": base.scenario,
            "limits_ms": {"ttft": base.ttft_latency_ms, "tpot": base.tpot_latency_ms},
            "percentile": base.target_latency_percentile * 100,
            "points": [{**p.to_dict(), "pareto": id(p) in front} for p in points]}
    path = Path(out_dir) / SWEEP_FILE
    atomic.write_json(path, data)
    return path


SWEEP_SCHEMA = 1


def read_sweep(path: Path) -> dict:
    """A ``sweep.json`` that ``write_sweep`` wrote (its one reader); InputError naming the file otherwise."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        points = data["points"]
        schema = data.get("schema")
    except (OSError, ValueError, KeyError, AttributeError) as exc:
        raise InputError(path, f"is not a sweep written by llmperf sweep ({exc})",
                         "re-run llmperf sweep, or remove the file") from None
    if schema != SWEEP_SCHEMA or not isinstance(points, list):
        raise InputError(path, f"has sweep schema {schema!r}; this version reads schema {SWEEP_SCHEMA}",
                         "re-run llmperf sweep with this version, or remove the file")
    return data


def _triple(table: dict) -> str:
    return "/".join("-" if table.get(p) is None else f"{table[p]:.0f}" for p in (50.0, 90.0, 99.0))


def _ms(ns: float | None) -> float | None:
    return None if ns is None else round(ns / 1e6, 3)


__all__: Sequence[str] = ("SweepPoint", "concurrency_point", "pareto_front", "parse_loads", "sweep")
