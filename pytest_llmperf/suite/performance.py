"""Performance metrics measured in calibrated rounds, for suites (re-exported by ``kit``).

* ``workload``, ``loadgen_workload``: the settings that change a performance number (recorded in baselines; a
  baseline of another workload is not judged against).
* ``gate_in_rounds``: measure a callable in ``[performance] rounds`` rounds between
  calibrations and gate each metric it returns (``gating.rounds``, ``gating.noise``); under
  ``--llmperf-compare``, in pairs of rounds of the reference and this engine (``gating.paired``).
* ``loadgen_rounds``: a ``measure`` callable whose rounds are short LoadGen runs of one scenario;
  the first is the process's shared run (``suite.runs.scenario_run``) when this test makes it.

docs/performance-gates.md explains the statistics.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import time
from typing import TYPE_CHECKING, Any, Callable, Sequence

from ..engines.base import optional
from ..errors import UsageError
from ..gating.calibration import calibration_kind, calibration_rate
from ..gating.checker import TIMING
from ..gating.contention import ContentionMeter, server_pids
from ..gating.rounds import RoundMeasurer, RoundMetric, RoundSettings
from ..loadgen.settings import NS_PER_MS
from ..gating.paired import PairedMeasurer
from ..gating.sequential import gate_pairs, gate_rounds

if TYPE_CHECKING:
    from ..engines import Engine
    from ..gating.checker import Checker
    from ..loadgen import LoadgenRun
    from ..harness.session import LlmperfSession


def round_settings(session: "LlmperfSession", *, rounds: int | None = None) -> RoundSettings:
    """The profile's round settings; ``rounds`` overrides the first batch's size and keeps the number of
    extra rounds allowed while INCONCLUSIVE (``max_rounds - rounds``)."""
    profile = session.profile
    found = RoundSettings.of(profile.performance, profile.source or profile.name)
    if rounds is not None:
        found = dataclasses.replace(found, rounds=rounds, max_rounds=rounds + found.max_rounds - found.rounds)
    return found


def workload(engine: "Engine", **settings: Any) -> dict[str, Any]:
    """``settings`` plus the engine's thread count and, on CPUs, the CPU model (their speeds differ
    more than any tolerance; accelerators are already keyed by name in the baseline's path)."""
    found = dict(settings)
    found["threads"] = engine.info.threads
    if engine.info.device == "cpu":
        found["cpu_model"] = engine.info.device_name
    return found


LOADGEN_WORKLOAD = ("scenario", "target_qps", "performance_sample_count", "min_query_count", "max_query_count",
                    "min_duration_ms", "max_new_tokens", "min_new_tokens", "max_batch_size", "server_workers",
                    "schedule_rng_seed", "qsl_rng_seed", "sample_index_rng_seed")
"""The LoadGen settings that change a performance number."""


def loadgen_workload(session: "LlmperfSession", engine: "Engine", scenario: str) -> dict[str, Any]:
    """``workload`` of a PerformanceOnly run of ``scenario`` under the session's profile (and the dataset size)."""
    from ..loadgen import run_settings

    run = run_settings(session.profile, scenario, "PerformanceOnly")
    settings = {name: getattr(run, name) for name in LOADGEN_WORKLOAD}
    settings["samples"] = session.samples()
    return workload(engine, **settings)


def contention_meter(session: "LlmperfSession", engine: "Engine") -> ContentionMeter:
    """The meter of ``engine``'s rounds. An HTTP engine's server counts as part of the run: the process
    named by ``--llmperf-server-pid``, else the one listening on a loopback endpoint's port; where a local
    server's process cannot be found, contention is unknown (docs/performance-gates.md)."""
    endpoint = optional(engine, "endpoint")
    if endpoint is None:
        return ContentionMeter()
    if session.settings.server_pid is not None:
        return ContentionMeter(pids=(session.settings.server_pid,))
    pids = server_pids(endpoint)
    return ContentionMeter(enabled=pids is not None, pids=pids or ())


def _takes_engine(measure: Callable) -> bool:
    """``measure(index, engine)`` (measures any engine it is given) rather than ``measure(index)``."""
    try:
        parameters = inspect.signature(measure).parameters.values()
    except (TypeError, ValueError):
        return False
    positional = [p for p in parameters if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return len(positional) >= 2 or any(p.kind == p.VAR_POSITIONAL for p in parameters)


def gate_in_rounds(check: "Checker", session: "LlmperfSession", engine: "Engine", metrics: Sequence[RoundMetric],
                   measure: Callable[..., dict[str, float]], workload: dict[str, Any], *,
                   rounds: int | None = None, extra: dict | None = None) -> "RoundMeasurer | PairedMeasurer":
    """Measure ``measure(index, engine) -> {metric name: value}`` in rounds between calibrations and gate
    every metric on ``check`` (judged when the test returns); returns the measurer (its rounds).

    Under ``--llmperf-compare`` the rounds are pairs, one on the reference engine and one on ``engine``
    (``gate_paired``).  A ``measure(index)`` that takes no engine is measured on ``engine`` alone."""
    if session.settings.compare is not None:
        if not _takes_engine(measure):
            raise UsageError(f"{check.nodeid}: --llmperf-compare", "this test's measure(index) is bound to one engine",
                             "write it as measure(index, engine) so that both sides can be measured")
        return gate_paired(check, session, engine, metrics, measure, workload, extra=extra)
    if _takes_engine(measure):
        measure = functools.partial(_on_engine, measure, engine)
    kind = calibration_kind(engine.info.device)

    def calibrate() -> float:
        with session.timed("calibrate"):
            return calibration_rate(kind, engine.info.threads)

    round_seconds: list[float] = []

    def timed_round(index: int) -> dict[str, float]:
        start = time.perf_counter()
        try:
            return measure(index)
        finally:
            round_seconds.append(round(time.perf_counter() - start, 3))

    meter = contention_meter(session, engine)
    measurer = RoundMeasurer(timed_round, calibrate, kind, meter)
    settings = round_settings(session, rounds=rounds)
    if session.settings.update_baselines:  # a baseline always gets its full count of rounds
        settings = round_settings(session, rounds=session.profile.performance.baseline_rounds)
    try:
        gate_rounds(check, metrics, measurer, settings, workload, extra=extra, say=session.say)
    finally:  # each round's wall time, for --llmperf-durations and results.json's "durations"
        check.user_properties.append((TIMING, {"rounds": round_seconds}))
    return measurer


def _on_engine(measure: Callable, engine: "Engine", index: int) -> dict[str, float]:
    return measure(index, engine)


def gate_paired(check: "Checker", session: "LlmperfSession", engine: "Engine", metrics: Sequence[RoundMetric],
                measure: Callable[[int, "Engine"], dict[str, float]], workload: dict[str, Any], *,
                extra: dict | None = None) -> PairedMeasurer:
    """Paired A/B: one warm-up round of each side (not judged), then pairs of rounds, the order alternating
    (A B, B A, ...), gated by ``gating.sequential.gate_pairs``.  No calibration: each pair is its own control."""
    with session.timed("load"):
        reference = session.reference_for(engine)
    for side in (reference, engine):
        with session.timed("warm-up"):
            measure(-1, side)
    meters = [contention_meter(session, side) for side in (reference, engine)]
    # One meter for both sides: the idle side's processes (a server, an engine core) are this run's own.
    meter = ContentionMeter(enabled=all(m.enabled for m in meters), pids=tuple(p for m in meters for p in m.pids))
    round_seconds: list[float] = []

    def timed(side: "Engine") -> Callable[[int], dict[str, float]]:
        def one(index: int) -> dict[str, float]:
            start = time.perf_counter()
            try:
                return measure(index, side)
            finally:
                round_seconds.append(round(time.perf_counter() - start, 3))
        return one

    measurer = PairedMeasurer(timed(reference), timed(engine), meter)
    try:
        gate_pairs(check, metrics, measurer, round_settings(session), workload, session.reference_setup(reference),
                   extra=extra, say=session.say)
    finally:
        check.user_properties.append((TIMING, {"rounds": round_seconds}))
    return measurer


def loadgen_rounds(session: "LlmperfSession", engine: "Engine", scenario: str, nodeid: str,
                   values: Callable[["LoadgenRun"], dict[str, float]], runs: list["LoadgenRun"]) -> Callable:
    """``measure(index, engine)`` for ``gate_in_rounds``: round 0 is the process's shared LoadGen run of
    ``scenario`` (PerformanceOnly) when this test makes it, else a fresh run like every later round
    (a run made earlier by another test was not timed between calibrations).  Each run is appended
    to ``runs``; later rounds' logs go to ``round-<n>/`` in the test's folder.  Under ``--llmperf-compare``
    every round is a fresh run (both sides alike), the reference engine's go to ``reference/round-<n>/``
    (and are not appended), a warm-up round (index -1) to ``warm-up/``."""
    from ..loadgen import run_loadgen
    from .runs import openorca_dataset, scenario_run

    def measure(index: int, on: "Engine" = engine) -> dict[str, float]:
        run = None
        if index == 0 and session.settings.compare is None:
            shared = scenario_run(session, engine, scenario, "PerformanceOnly", nodeid)
            run = None if shared.reused else shared.run
        if run is None:
            table = openorca_dataset(session)
            metadata = {"model": str(session.model.path), "dataset": str(table.path), "test": nodeid,
                        "profile": session.profile.source or session.profile.name, "round": index}
            folder = f"round-{index}" if index >= 0 else "warm-up"
            if on is not engine:  # the reference side of a paired session
                folder, metadata["side"] = f"reference/{folder}", "reference"
            with session.timed("generate"):
                run = run_loadgen(on, [list(p) for p in table.prompts], scenario, "PerformanceOnly",
                                  session.profile, session.test_dir(nodeid) / folder, metadata)
        if on is engine and index >= 0:
            runs.append(run)
        return values(run)

    return measure


@dataclasses.dataclass(frozen=True)
class LoadgenRounds:
    """The LoadGen runs of a scenario's rounds (one run a round) and the measurer that judged them."""

    runs: list
    measurer: RoundMeasurer

    def values(self, name: str) -> list:
        """``name``'s value in each round."""
        return self.measurer.values(name)

    def median_run(self, name: str):
        """The run of the round whose ``name`` is the median (the upper one of an even count)."""
        values = self.values(name)
        order = sorted(range(len(values)), key=lambda i: values[i] if values[i] is not None else 0.0)
        return self.runs[order[len(order) // 2]]

    def evidence(self) -> dict[str, Any]:
        """What pytest-benchmark's extra_info records of the rounds."""
        return {"rounds": len(self.runs), "loadgen_seconds": sum(r.seconds for r in self.runs),
                "result": "VALID" if all(r.valid for r in self.runs) else "INVALID",
                "logs": [str(r.folder) for r in self.runs]}


def gate_loadgen_rounds(check: "Checker", session: "LlmperfSession", engine: "Engine", scenario: str, nodeid: str,
                        metrics: Sequence[RoundMetric], values: Callable[["LoadgenRun"], dict[str, float]], *,
                        benchmark=None, rounds: int | None = None, extra: dict | None = None) -> LoadgenRounds:
    """Gate ``metrics`` in rounds of LoadGen runs of ``scenario``: ``values(run)`` gives a round's
    metrics; every run must be VALID (an INVALID one fails the test with LoadGen's reason).  With
    pytest-benchmark's ``benchmark`` fixture the rounds are timed as one benchmark round."""
    runs: list = []

    def checked(run: "LoadgenRun") -> dict[str, float]:
        if (message := run.invalid_message()) is not None:
            check.fail(message)
        return values(run)

    measure = loadgen_rounds(session, engine, scenario, nodeid, checked, runs)
    args = (check, session, engine, metrics, measure, loadgen_workload(session, engine, scenario))
    kwargs = {"rounds": rounds, "extra": extra}
    if benchmark is None:
        measurer = gate_in_rounds(*args, **kwargs)
    else:
        measurer = benchmark.pedantic(gate_in_rounds, args=args, kwargs=kwargs, rounds=1, iterations=1)
    return LoadgenRounds(runs, measurer)


def ms(value_ns: float | None) -> float | None:
    """Nanoseconds (LoadGen's unit) to milliseconds; None stays None."""
    return None if value_ns is None else value_ns / NS_PER_MS


def gate_p99_limits(check: "Checker", session: "LlmperfSession", run: "LoadgenRun",
                    extra: dict | None = None) -> dict[str, float | None]:
    """TTFT and TPOT p99 of a Server-like ``run`` against the profile's ``ttft_latency_ms`` /
    ``tpot_latency_ms`` (recorded, not gated, where a limit is 0); returns them in ms."""
    from ..gating.limits import Limit

    profile, measured = session.profile, {}
    scenario = run.settings.scenario.lower()
    for name, limit_ms in (("ttft", run.settings.ttft_latency_ms), ("tpot", run.settings.tpot_latency_ms)):
        value_ms = ms(run.summary.percentile(name, 99.0))
        measured[f"{name}_p99_ms"] = value_ms
        metric = f"{scenario}.{name}_p99"
        if limit_ms > 0:
            limit = Limit.at_most(limit_ms, reference=limit_ms, flag="--llmperf-profile",
                                  source=f"{profile.name}: loadgen.{scenario}.{name}_latency_ms = {limit_ms:g}")
            check.against(f"{metric}.limit", value_ms, "ms", False, limit, extra=extra)
        else:
            check.info(metric, value_ms, "ms", False, extra=extra)
    return measured
