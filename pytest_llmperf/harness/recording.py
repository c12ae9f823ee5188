"""Controller side of a session: results.json, baseline updates, the summary table.

Only the process that owns the session (the xdist controller, or the single
pytest process) creates a ``SessionRecorder``.  It reads what tests recorded
from their reports' ``user_properties``, so workers never write shared files.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..runtime import atomic, interrupts
from ..gating.baselines import BaselineKey, BaselineStore
from ..gating.checker import BASELINE, ENGINE, METRIC, TIMING
from ..config.options import Settings
from ..runtime.results import Metric, ResultsStore, git_commit, now_iso, package_versions


class SessionRecorder:
    def __init__(self, settings: Settings, profile_name: str, argv: list[str]):
        self.settings = settings
        self.store = ResultsStore(settings.out, {
            "argv": argv,
            "profile": profile_name,
            "engines_requested": list(settings.engines),
            "device_requested": settings.device,
            "model_requested": settings.model or "embedded",
            "git_commit": git_commit(settings.rootdir),
            "versions": package_versions(),
        })
        self.staged: list[dict[str, Any]] = []
        self.failed_tests = 0
        self.interrupted_test: str | None = None
        self._wall: dict[str, float] = {}  # setup + call + teardown seconds of the test running now

    def on_report(self, report) -> None:
        """Take one test report (setup, call or teardown)."""
        if report.when == "call" or (report.when == "setup" and not report.passed):
            outcome = "skipped" if report.skipped else report.outcome
            message = None
            if report.failed:
                message = str(getattr(report, "longreprtext", "") or "")[-2000:]
            elif report.skipped and isinstance(report.longrepr, tuple):
                message = str(report.longrepr[2])
            self.store.add_test(report.nodeid, outcome, report.duration, message)
        if report.failed:
            self.failed_tests += 1
        self._wall[report.nodeid] = self._wall.get(report.nodeid, 0.0) + report.duration
        if report.when != "teardown":
            return
        self.store.add_timing(report.nodeid, {"total": self._wall.pop(report.nodeid)})
        # user_properties accumulate over the phases: read them once, at teardown.
        for kind, payload in report.user_properties:
            if kind == METRIC:
                self.store.add_metric(Metric.from_dict(payload))
            elif kind == ENGINE:
                info = dict(payload)
                self.store.add_engine(info.pop("key"), info)
            elif kind == TIMING:
                self.store.add_timing(report.nodeid, payload)
            elif kind == BASELINE:
                self.staged.append(payload)

    def on_interrupted(self, nodeid: str | None, user_properties: list, seconds: float) -> None:
        """The session was interrupted during test ``nodeid``: keep what it had recorded (pytest makes no
        report for it) and list it as ``interrupted``."""
        self.interrupted_test = nodeid
        if nodeid is None:
            return
        self.store.add_test(nodeid, "interrupted", seconds, f"cut by {interrupts.signal_name() or 'KeyboardInterrupt'}")
        for kind, payload in user_properties:
            if kind == METRIC:
                self.store.add_metric(Metric.from_dict({**payload, "extra": {**payload.get("extra", {}),
                                                                             "interrupted": True}}))
            elif kind == ENGINE:
                info = dict(payload)
                self.store.add_engine(info.pop("key"), info)

    def interruption(self) -> dict[str, Any]:
        return {"signal": interrupts.signal_name() or "KeyboardInterrupt", "at": interrupts.received_at() or now_iso(),
                "test": self.interrupted_test}

    def finish(self, exitstatus: int) -> list[Path]:
        """Close results.json; write staged baselines if (and only if) the run passed: never from an
        interrupted run (exit status 2, or a signal seen), whatever its tests did before."""
        interrupted = exitstatus == interrupts.INTERRUPTED_EXIT_STATUS or interrupts.requested()
        passed = exitstatus == 0 and self.failed_tests == 0 and not interrupted
        written: list[Path] = []
        if self.settings.update_baselines and passed:
            written = self.write_baselines()
        status = "interrupted" if interrupted else "passed" if passed else "failed"
        self.store.finish(status, [m.name for m in self.store.metrics if m.verdict == "inconclusive"],
                          self.interruption() if interrupted else None,
                          no_baseline=[m.name for m in self.store.metrics if m.verdict == "no_baseline"])
        return written

    def hard_stop(self, _signal_name: str) -> None:
        """A second signal ends the process now: results.json says ``interrupted`` first."""
        self.store.mark_interrupted(self.interruption())

    def write_baselines(self) -> list[Path]:
        store = BaselineStore(self.settings.baselines)
        by_key: dict[BaselineKey, dict[str, Any]] = {}
        for staged in self.staged:
            key = BaselineKey(**staged["key"])
            by_key.setdefault(key, {})[staged["name"]] = staged["entry"]
            for relative, source in staged.get("files", {}).items():
                target = self.settings.baselines / relative
                with atomic.locked(target):
                    atomic.write_bytes(target, Path(source).read_bytes())
        return [store.update(key, entries) for key, entries in by_key.items()]

    def duration_lines(self) -> list[str]:
        """``--llmperf-durations``: per test, the seconds of each phase and of the rest, longest test first."""
        from ..report.table import duration_table

        return duration_table(self.store.data.get("durations") or {}, self.store.data.get("tests") or [])

    def summary_lines(self) -> list[str]:
        """The end-of-session table (``report.table``'s, as in the reports), the time per phase, the file."""
        from ..report.table import inconclusive_note, metric_row, no_baseline_note, text_table

        metrics = self.store.metrics
        if not metrics:
            return []
        lines = text_table([metric_row(metric) for metric in metrics])
        for note in (inconclusive_note(metrics), no_baseline_note(metrics)):
            if note is not None:
                lines.append(note)
        timings = self.store.data.get("timings") or {}
        if timings:
            lines.append("time: " + ", ".join(f"{phase} {seconds:.1f} s" for phase, seconds in sorted(timings.items())))
        lines.append(f"results: {self.store.path}")
        return lines
