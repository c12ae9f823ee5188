"""Capacity search: the highest Server (or Interactive) ``target_qps`` whose run is VALID.

Short probes bracket the rate (doubling from ``qps_min`` until a probe fails or
``qps_max`` passes), then bisect (geometric midpoints) until the passing and
failing rates are within ``precision`` of each other.  A probe is too short for
LoadGen's early stopping to certify a 99th percentile, so a probe passes when
its own TTFT and TPOT at the profile's percentile, estimated from the engine's
token times of every query (``queries.npz``), are at most ``(1 - margin)`` x
the profile's limits.  One confirming run at the found rate, with the profile's
full duration and query count, must then be VALID in LoadGen's own terms.

Why not LoadGen's ``FindPeakPerformance`` mode: see docs/loadgen.md.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Callable, Sequence

from ..runtime import atomic
from ..errors import UsageError
from ..config.profiles import CapacitySection, Profile
from ..metrics.latency import percentile
from .query_times import read_query_times
from .settings import RunSettings, run_settings

RESULT_FILE = "find-qps.json"
STOPPED_PRECISION, STOPPED_QPS_MAX, STOPPED_BUDGET = "precision", "qps-max", "time-budget"


@dataclasses.dataclass(frozen=True)
class Probe:
    """One short LoadGen run at ``qps`` and its verdict."""

    qps: float
    passed: bool
    ttft_ms: float | None
    """TTFT at the profile's percentile, from the engine's token times."""
    tpot_ms: float | None
    reason: str
    folder: str
    seconds: float
    queries: int
    loadgen_result: str | None


@dataclasses.dataclass(frozen=True)
class Search:
    """The search's outcome; ``confirmed`` is None when no rate passed a probe."""

    scenario: str
    rate: float | None
    """The highest rate that passed a probe (the confirming run's target_qps)."""
    lowest_failing: float | None
    probes: tuple[Probe, ...]
    stopped_by: str
    """``precision``, ``qps-max`` (qps_max passed) or ``time-budget``."""
    stop_message: str
    confirmed: bool | None
    """The confirming run's LoadGen result (True = VALID)."""
    confirm_folder: str | None
    confirm_message: str | None
    """LoadGen's unmet constraints when the confirming run is INVALID."""
    user_conf_line: str | None
    seconds: float

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def check_capacity(search: CapacitySection, where: str = "find-qps") -> None:
    """Bad ranges and budgets fail before any run, naming the option."""
    if search.qps_min <= 0:
        raise UsageError(f"{where}: --qps-min {search.qps_min:g}", "must be > 0", "pass a positive rate, e.g. --qps-min 0.5")
    if search.qps_max < search.qps_min:
        raise UsageError(f"{where}: --qps-max {search.qps_max:g}", f"is below --qps-min {search.qps_min:g}",
                         "pass a range with qps_min <= qps_max")
    if not 0 < search.precision < 1:
        raise UsageError(f"{where}: --precision {search.precision:g}", "must be a fraction in (0, 1)",
                         "pass e.g. 0.05 to stop when the bracket is within 5%")
    if not 0 <= search.margin < 1:
        raise UsageError(f"{where}: --margin {search.margin:g}", "must be a fraction in [0, 1)",
                         "pass e.g. 0.1: a probe passes at or below 90% of each limit")
    if search.time_budget_s <= 0:
        raise UsageError(f"{where}: --time-budget {search.time_budget_s:g}", "must be > 0 seconds",
                         "pass the seconds the whole search may take, e.g. --time-budget 600")
    if search.probe_duration_ms <= 0 or search.probe_min_queries < 1:
        raise UsageError(f"{where}: probe of {search.probe_duration_ms} ms / {search.probe_min_queries} queries",
                         "is empty", "pass --probe-seconds > 0 and --probe-queries >= 1")


def probe_settings(base: RunSettings, qps: float, search: CapacitySection) -> RunSettings:
    return dataclasses.replace(base, target_qps=qps, min_duration_ms=search.probe_duration_ms,
                               min_query_count=search.probe_min_queries, max_duration_ms=0, max_query_count=0)


def judge_probe(folder: Path, run: RunSettings, margin: float) -> tuple[bool, float | None, float | None, str]:
    """Pass when TTFT and TPOT at the run's percentile are within (1 - margin) x their limits."""
    queries = read_query_times(folder)
    p = run.target_latency_percentile * 100
    empty = len(queries) - int(queries.answered.sum())
    ttft = percentile(queries.ttft(), p)  # NaN (no answer, or under 2 tokens for TPOT) is left out
    tpot = percentile(queries.tpot(), p)
    ttft_ms = None if ttft is None else ttft * 1e3
    tpot_ms = None if tpot is None else tpot * 1e3
    if empty or not queries:
        return False, ttft_ms, tpot_ms, f"{empty} of {len(queries)} queries got no answer"
    over = []
    for name, value, limit in (("TTFT", ttft_ms, run.ttft_latency_ms), ("TPOT", tpot_ms, run.tpot_latency_ms)):
        if limit > 0 and (value is None or value > (1 - margin) * limit):
            shown = "none" if value is None else f"{value:.1f} ms"
            over.append(f"{name} p{p:g} {shown} > {(1 - margin) * limit:.1f} ms ({1 - margin:g} x {limit:g})")
    return not over, ttft_ms, tpot_ms, "; ".join(over) or "within the limits"


def find_qps(run_one: Callable[[RunSettings, Path], object], profile: Profile, scenario: str,
             search: CapacitySection, out_dir: Path, report: Callable[[str], None] = print,
             clock: Callable[[], float] = time.monotonic) -> Search:
    """Search and confirm.  ``run_one(settings, folder)`` runs one LoadGen test and returns its
    ``LoadgenRun``; every probe gets its own folder under ``out_dir``."""
    if scenario not in ("Server", "Interactive"):
        raise UsageError(f"--scenario {scenario}", "has no target_qps to search", "use Server or Interactive")
    check_capacity(search)
    base = run_settings(profile, scenario, "PerformanceOnly")
    if base.ttft_latency_ms <= 0 and base.tpot_latency_ms <= 0:
        raise UsageError(f"{profile.source or profile.name}: loadgen.{scenario.lower()}", "sets no TTFT or TPOT limit",
                         "set ttft_latency_ms and/or tpot_latency_ms: the search needs a limit to find")
    out_dir = Path(out_dir)
    started = clock()
    probes: list[Probe] = []

    def probe(qps: float) -> Probe:
        settings = probe_settings(base, qps, search)
        folder = out_dir / f"probe-{len(probes) + 1:02d}-qps-{qps:.4g}"
        t0 = clock()
        run = run_one(settings, folder)
        passed, ttft, tpot, reason = judge_probe(folder, settings, search.margin)
        result = getattr(run, "summary", None)
        outcome = Probe(qps, passed, ttft, tpot, reason, str(folder), round(clock() - t0, 3),
                        getattr(getattr(run, "stats", None), "samples", 0),
                        None if result is None else ("VALID" if result.valid else "INVALID"))
        probes.append(outcome)
        report(f"probe {len(probes)}: {qps:.4g} qps {'PASS' if passed else 'FAIL'} ({reason}) "
               f"[{outcome.seconds:.1f} s, {outcome.queries} queries]")
        return outcome

    def budget_left() -> bool:
        """Room for one more probe (as long as the last) and the confirming run."""
        last = probes[-1].seconds if probes else search.probe_duration_ms / 1e3
        confirm = max(base.min_duration_ms / 1e3, base.min_query_count / (lo or search.qps_min))
        return clock() - started + last + confirm <= search.time_budget_s

    lo, hi = None, None
    stopped, message = STOPPED_PRECISION, ""
    qps = _round(search.qps_min)
    while True:
        if not budget_left():
            stopped = STOPPED_BUDGET
            break
        if probe(qps).passed:
            lo = qps
            if qps >= search.qps_max:
                stopped = STOPPED_QPS_MAX
                break
            qps = min(_round(qps * 2), search.qps_max)
        else:
            hi = qps
            break
    while stopped == STOPPED_PRECISION and lo is not None and hi is not None and hi / lo > 1 + search.precision:
        if not budget_left():
            stopped = STOPPED_BUDGET
            break
        middle = _round((lo * hi) ** 0.5)
        if middle <= lo or middle >= hi:
            break
        if probe(middle).passed:
            lo = middle
        else:
            hi = middle
    if stopped == STOPPED_QPS_MAX:
        message = f"stopped at --qps-max {search.qps_max:g}, which passed: the capacity may be higher; raise --qps-max"
    elif stopped == STOPPED_BUDGET:
        bracket = f"between {lo:g} and {hi:g} qps" if lo and hi else f"above {lo:g} qps" if lo else "not bracketed"
        message = (f"stopped by --time-budget {search.time_budget_s:g} s after {len(probes)} probes: capacity "
                   f"{bracket}; raise --time-budget or narrow --qps-min/--qps-max")
    elif lo is None:
        message = f"the lowest rate, --qps-min {search.qps_min:g}, failed its probe: lower --qps-min"
    else:
        message = f"bracket {lo:g}..{hi:g} qps is within --precision {search.precision:g}"
    report(message)
    confirmed = confirm_folder = confirm_message = line = None
    if lo is not None:
        final = dataclasses.replace(base, target_qps=lo)
        folder = out_dir / f"confirm-qps-{lo:.4g}"
        report(f"confirming run at {lo:g} qps: min {base.min_duration_ms / 1e3:g} s, min {base.min_query_count} queries")
        run = run_one(final, folder)
        confirmed, confirm_folder = bool(run.valid), str(folder)
        confirm_message = run.invalid_message()
        line = user_conf_line(profile, scenario, lo)
    result = Search(scenario, lo, hi, tuple(probes), stopped, message, confirmed, confirm_folder, confirm_message,
                    line, round(clock() - started, 3))
    atomic.write_json(out_dir / RESULT_FILE, result.to_dict())
    return result


def run_above(run_one: Callable[[RunSettings, Path], object], profile: Profile, scenario: str, rate: float,
              factor: float, out_dir: Path):
    """The full test at ``factor`` x ``rate``: evidence that the found rate is near the edge."""
    qps = _round(rate * factor)
    settings = dataclasses.replace(run_settings(profile, scenario, "PerformanceOnly"), target_qps=qps)
    return run_one(settings, Path(out_dir) / f"above-{factor:g}x-qps-{qps:.4g}")


def user_conf_line(profile: Profile, scenario: str, qps: float) -> str:
    """``llama2-70b.Server.target_qps = X`` (MLPerf names Interactive as a model of its own)."""
    model = profile.loadgen.mlperf_model + ("-interactive" if scenario == "Interactive" else "")
    return f"{model}.Server.target_qps = {qps:g}"


def _round(qps: float) -> float:
    """Four significant digits: rates a user.conf line can carry as printed."""
    return float(f"{qps:.4g}")


__all__: Sequence[str] = ("Probe", "Search", "check_capacity", "find_qps", "judge_probe", "run_above", "user_conf_line")
