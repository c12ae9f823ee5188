"""Run one LoadGen test over an engine and keep everything needed to re-score it.

The call other suites make (the accuracy suite's ROUGE run, for example)::

    from pytest_llmperf.loadgen import read_accuracy_log, run_loadgen

    run = run_loadgen(
        engine,                                  # any engines.Engine
        [sample.tok_input for sample in samples],  # prompts as token ids; qsl_idx i is prompts[i]
        "Offline", "AccuracyOnly",               # scenario: Offline | Server | Interactive
                                                 # mode: AccuracyOnly | PerformanceOnly | TEST06
        llmperf_profile,                         # a Profile (or RunSettings from settings.run_settings)
        llmperf_session.test_dir(request.node.nodeid),
        metadata={"model": str(llmperf_session.model.path), "tokenizer": str(llmperf_session.model.path),
                  "dataset": "embedded"},        # what re-scoring needs; written to run.json
    )
    outputs = read_accuracy_log(run.accuracy_log)  # every sample, in AccuracyOnly mode

The folder then holds LoadGen's ``mlperf_log_summary.txt``,
``mlperf_log_detail.txt`` and ``mlperf_log_accuracy.json`` plus ``run.json``
(model, tokenizer, dataset, scenario, mode, every setting, engine, LoadGen
version, what the SUT saw).  If the engine raises, every issued query is still
completed so LoadGen can finish, run.json records the error, and
``EngineError`` is raised with the engine's message.

``StartTest`` runs on a thread of its own so that Ctrl-C and SIGTERM reach the
main thread at once; a run cut by one is marked in its folder (``run.json``
``status: interrupted``, ``INTERRUPTED.txt``) and the ``KeyboardInterrupt`` goes
on (docs/loadgen.md, "Ctrl-C and CI cancellation").
"""

from __future__ import annotations

import dataclasses
import sys
import threading
import time
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any, Sequence

from ..runtime import atomic
from ..engines import Engine, GenerationParams
from ..engines.base import batches_continuously
from ..errors import EngineError, UsageError
from ..config.profiles import Profile
from .accuracy_log import ACCURACY_LOG
from .detail import DETAIL_LOG, LoadgenDetail, read_detail
from .query_times import STALE_QUERY_TIMES, write_query_times
from .settings import RunSettings, run_settings, to_test_settings
from .summary import SUMMARY_LOG, LoadgenSummary, read_summary
from .sut import SutStats, offline_sut, server_sut

RUN_FILE = "run.json"
INTERRUPTED_FILE = "INTERRUPTED.txt"
"""Written into a run's folder when the session was interrupted during the run (run.json says the same)."""
LOADGEN_RETURN_S = 2.0
"""After an interrupt, how long LoadGen gets to return once every query was cancelled."""
GIL_SWITCH_INTERVAL_S = 0.0005
"""Python's thread switch interval during a LoadGen run (its default is 5 ms)."""
#: Never present: LoadGen would apply an ``audit.config`` found in the working
#: directory on top of our settings; runs here set audit fields themselves.
_NO_AUDIT_CONFIG = "llmperf-no-audit.config"


@dataclasses.dataclass(frozen=True)
class LoadgenRun:
    """A finished LoadGen run and where its files are."""

    folder: Path
    settings: RunSettings
    summary: LoadgenSummary | None
    """None for AccuracyOnly runs (LoadGen reports no performance then)."""
    detail: LoadgenDetail
    stats: SutStats
    seconds: float
    """Wall time of the LoadGen test, issue to last completion and log flush."""

    @property
    def accuracy_log(self) -> Path:
        return self.folder / ACCURACY_LOG

    @property
    def summary_log(self) -> Path:
        return self.folder / SUMMARY_LOG

    @property
    def detail_log(self) -> Path:
        return self.folder / DETAIL_LOG

    @property
    def run_file(self) -> Path:
        return self.folder / RUN_FILE

    @property
    def valid(self) -> bool:
        return bool(self.summary and self.summary.valid)

    @property
    def settings_section(self) -> str:
        """The profile table that configured this run."""
        return "compliance.test06" if self.settings.mode == "TEST06" else f"loadgen.{self.settings.scenario.lower()}"

    def invalid_message(self) -> str | None:
        """One line naming every unmet LoadGen constraint and LoadGen's advice; None when VALID."""
        summary = self.summary
        if summary is None:
            return f"LoadGen wrote no performance summary ({self.settings.mode} run); see {self.summary_log}"
        if summary.valid:
            return None
        unmet = ", ".join(summary.unmet_constraints) or "no constraint line"
        advice = "; ".join(summary.recommendations + tuple(v for v in summary.early_stopping.values()
                                                           if v and "unsuccessful" in v.lower()))
        return (f"LoadGen {self.settings.scenario} result INVALID, not satisfied: {unmet}"
                f"{' (' + advice + ')' if advice else ''}; see {self.summary_log}; "
                f"settings: [{self.settings_section}] of the profile, see --llmperf-profile")


def run_loadgen(engine: Engine, prompts: Sequence[Sequence[int]], scenario: str, mode: str,
                settings: Profile | RunSettings, out_dir: str | Path, metadata: dict[str, Any] | None = None) -> LoadgenRun:
    """Run LoadGen ``scenario`` in ``mode`` over ``prompts``; logs and run.json go to ``out_dir``."""
    import mlperf_loadgen as lg

    run = run_settings(settings, scenario, mode) if isinstance(settings, Profile) else settings
    if (run.scenario, run.mode) != (scenario, mode):
        raise UsageError("run_loadgen", f"settings are for {run.scenario} {run.mode}, not {scenario} {mode}",
                         "build them with settings.run_settings(profile, scenario, mode)")
    if not prompts:
        raise UsageError("run_loadgen", "no prompts given", "pass at least one prompt (a list of token ids)")
    if run.loadgen_scenario != "Offline" and run.server_workers != 1:
        run = dataclasses.replace(run, notes=(*run.notes, server_workers_note(run.server_workers, engine)))
    folder = Path(out_dir)
    folder.mkdir(parents=True, exist_ok=True)
    for stale in (RUN_FILE, SUMMARY_LOG, DETAIL_LOG, ACCURACY_LOG, *STALE_QUERY_TIMES, INTERRUPTED_FILE):
        (folder / stale).unlink(missing_ok=True)
    record = _run_record(engine, run, len(prompts), metadata or {})
    atomic.write_json(folder / RUN_FILE, record)

    params = GenerationParams(max_new_tokens=run.max_new_tokens, min_new_tokens=run.min_new_tokens)
    if run.loadgen_scenario == "Offline":
        sut = offline_sut(engine, prompts, params, run.use_token_latencies)
    else:
        sut = server_sut(engine, prompts, params, run.max_batch_size, run.use_token_latencies)
    performance_count = min(run.performance_sample_count or len(prompts), len(prompts))
    log_settings = lg.LogSettings()
    log_settings.log_output.outdir = str(folder)
    log_settings.log_output.copy_summary_to_stdout = False
    log_settings.enable_trace = False
    lg_sut = lg.ConstructSUT(sut.issue_query, sut.flush_queries)
    # Prompts live in memory: loading and unloading samples costs nothing.
    lg_qsl = lg.ConstructQSL(len(prompts), performance_count, _no_op, _no_op)
    start = time.perf_counter()
    switch_interval = sys.getswitchinterval()
    # LoadGen's issue and completion threads call into Python: each waits for the GIL, by default up
    # to 5 ms while another thread (an engine's loop, a SUT worker) holds it. That wait lands in
    # every reported latency; 0.5 ms keeps it well under a millisecond.
    sys.setswitchinterval(GIL_SWITCH_INTERVAL_S)
    test = _LoadgenThread(lambda: lg.StartTestWithLogSettings(lg_sut, lg_qsl, to_test_settings(run), log_settings,
                                                               str(folder / _NO_AUDIT_CONFIG)))
    returned = True
    try:
        test.wait()
    except KeyboardInterrupt:
        returned = _cut(test, sut, engine, folder, record, time.perf_counter() - start)
        raise
    finally:
        seconds = time.perf_counter() - start
        sys.setswitchinterval(switch_interval)
        if returned:
            sut.stop()
            lg.DestroyQSL(lg_qsl)
            lg.DestroySUT(lg_sut)
    test.reraise()

    detail = read_detail(folder)
    summary = read_summary(folder) if run.loadgen_mode == "PerformanceOnly" else None
    record.update(
        finished=_now(), seconds=round(seconds, 3), stats=sut.stats.to_dict(),
        result=None if summary is None else ("VALID" if summary.valid else "INVALID"),
        loadgen_errors=[r.describe() for r in detail.errors],
    )
    atomic.write_json(folder / RUN_FILE, record)
    write_query_times(folder, sut.queries.columns())  # the SUT has stopped: its buffers are final
    sut.queries.release()
    if sut.stats.engine_error:
        raise EngineError(
            f"engine {engine.info.engine!r} failed during the LoadGen {scenario} {mode} run: "
            f"{sut.stats.engine_error} (every issued query was completed so LoadGen could finish; logs in {folder})"
        )
    return LoadgenRun(folder, run, summary, detail, sut.stats, seconds)


class _LoadgenThread:
    """LoadGen's ``StartTest`` on a thread of its own, so the main thread stays free for signals.

    ``StartTest`` runs LoadGen's issue loop on the calling thread and calls the SUT from it; a
    Python signal handler runs only on the main thread between bytecodes, so on the main thread a
    Ctrl-C would wait for the whole run (or surface inside the SUT's callback, in LoadGen's C++)."""

    def __init__(self, start_test):
        self.done = threading.Event()
        self.error: BaseException | None = None

        def target() -> None:
            try:
                start_test()
            except BaseException as exc:  # handed to the main thread by reraise()
                self.error = exc
            finally:
                self.done.set()

        self.thread = threading.Thread(target=target, name="llmperf-loadgen", daemon=True)
        self.thread.start()

    def wait(self) -> None:
        while not self.done.wait(0.5):  # interruptible: the signal handler raises here
            pass

    def reraise(self) -> None:
        if self.error is not None:
            raise self.error


def _cut(test: _LoadgenThread, sut, engine: Engine, folder: Path, record: dict[str, Any], seconds: float) -> bool:
    """The session was interrupted during the run: cancel every query, abort the engine, give LoadGen
    ``LOADGEN_RETURN_S`` to return, and say in the run's folder that it was cut; True if it returned."""
    from ..runtime import interrupts
    from ..engines.base import abort

    sut.cancel()
    abort(engine)
    returned = test.done.wait(LOADGEN_RETURN_S)
    how = ("LoadGen returned after its queries were cancelled; its logs end there" if returned else
           f"LoadGen had not returned {LOADGEN_RETURN_S:g} s after its queries were cancelled (its schedule "
           "was still running) and was left behind; its logs are incomplete")
    record.update(
        finished=None, status="interrupted", seconds=round(seconds, 3), stats=sut.stats.to_dict(), result=None,
        interrupted={"signal": interrupts.signal_name() or "KeyboardInterrupt", "at": interrupts.received_at() or _now(),
                     "after_s": round(seconds, 3), "loadgen_returned": returned,
                     "samples_completed": sut.stats.samples, "samples_cancelled": sut.stats.cancelled},
    )
    atomic.write_json(folder / RUN_FILE, record)
    write_query_times(folder, sut.queries_so_far())  # the queries answered before the signal
    atomic.write_text(folder / INTERRUPTED_FILE,
                      f"This LoadGen run was cut by {record['interrupted']['signal']} at {record['interrupted']['at']}, "
                      f"{seconds:.1f} s in: {sut.stats.samples} samples had completed, {sut.stats.cancelled} were "
                      f"completed empty when it was cancelled. {how}. Its numbers are not a result.\n")
    if not returned:
        interrupts.abandoned(str(folder))
    return returned


def server_workers_note(workers: int, engine: Engine) -> str:
    """Why ``loadgen.server_workers`` had no effect (profiles that set it still load)."""
    how = ("each query goes to the engine the moment LoadGen issues it" if batches_continuously(engine)
           else "a static-batch engine runs one batch at a time")
    return f"loadgen.server_workers = {workers} was ignored: {how}"


def _no_op(_samples) -> None:
    return None


def _now() -> str:
    from ..runtime.results import now_iso

    return now_iso()


def _run_record(engine: Engine, run: RunSettings, prompt_count: int, metadata: dict[str, Any]) -> dict[str, Any]:
    try:
        loadgen_version = importlib_metadata.version("mlcommons-loadgen")
    except importlib_metadata.PackageNotFoundError:
        loadgen_version = None
    return {
        "schema": 1,
        "model": metadata.get("model"),
        "tokenizer": metadata.get("tokenizer"),
        "dataset": metadata.get("dataset"),
        "metadata": metadata,
        "scenario": run.scenario,
        "mode": run.mode,
        "prompts": prompt_count,
        "settings": run.to_dict(),
        "engine": dataclasses.asdict(engine.info),
        "loadgen_version": loadgen_version,
        "started": _now(),
        "finished": None,
    }
