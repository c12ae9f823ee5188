"""The test-side API for gates: record metrics, judge them, fail with one line each.

A ``Checker`` belongs to one test.  It judges each metric against a limit
(a profile target or a baseline), records every metric (passed or not) for
results.json, stages new baseline values under ``--llmperf-update-baselines``,
and ``verify()`` fails the test with all failed gates, one line each.

Records travel as pytest ``user_properties`` so that under pytest-xdist only
the controller writes results.json and baselines.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
from typing import Any

from .baselines import UPDATE_FLAG, BaselineKey, BaselineStore, Tolerance
from .engines import Engine
from .gates import Limit, failure_message, judge
from .results import Metric, git_commit

METRIC = "llmperf_metric"
BASELINE = "llmperf_baseline"
ENGINE = "llmperf_engine"
TIMING = "llmperf_timing"


class Checker:
    def __init__(self, nodeid: str, user_properties: list, baselines: BaselineStore, update: bool):
        self.nodeid = nodeid
        self.user_properties = user_properties
        self.store = baselines
        self.update = update
        self.failures: list[str] = []
        self.metrics: list[Metric] = []

    # -- recording ----------------------------------------------------------

    def engine(self, engine: Engine) -> str:
        """Record the engine's description once per test; return its results key."""
        key = f"{engine.info.engine}-{engine.info.device}"
        self.user_properties.append((ENGINE, {"key": key, **dataclasses.asdict(engine.info)}))
        return key

    def _record(self, metric: Metric) -> Metric:
        self.metrics.append(metric)
        self.user_properties.append((METRIC, metric.to_dict()))
        return metric

    def info(self, name: str, value: float | None, unit: str, higher_is_better: bool | None = None,
             *, engine: str | None = None, extra: dict | None = None) -> Metric:
        """A value reported but not gated (MFU, sample counts, ...)."""
        return self._record(judge(name, value, unit, higher_is_better, None, test=self.nodeid,
                                  engine=engine, extra=extra))

    def against(self, name: str, value: float | None, unit: str, higher_is_better: bool | None,
                limit: Limit, *, engine: str | None = None, extra: dict | None = None) -> Metric:
        """Gate ``value`` on a fixed limit (a profile target)."""
        metric = self._record(judge(name, value, unit, higher_is_better, limit, test=self.nodeid,
                                    engine=engine, extra=extra))
        if metric.verdict == "fail":
            self.failures.append(failure_message(metric, limit))
        return metric

    def against_baseline(self, key: BaselineKey, name: str, value: float | None, unit: str,
                         higher_is_better: bool | None, tolerance: Tolerance, *, engine: str | None = None,
                         extra: dict | None = None) -> Metric:
        """Gate ``value`` on the recorded baseline for ``key``.

        No baseline yet: the test fails and names the command that records one,
        unless this run is recording baselines (then the verdict is ``new``).
        The key and tolerance go into the metric's extra, so ``llmperf baselines
        update`` and ``llmperf report`` can find the baseline later.
        """
        extra = {**(extra or {}), "baseline_key": dataclasses.asdict(key), "tolerance": tolerance.to_dict()}
        limit = self.store.limit(key, name)
        if self.update:
            self.stage_baseline(key, name, value, unit, higher_is_better, tolerance)
            metric = judge(name, value, unit, higher_is_better, limit, test=self.nodeid, engine=engine,
                           verdict_if_no_limit="new", extra=extra)
            if metric.verdict == "fail":  # recording a new value: report the change, do not gate on it
                metric = dataclasses.replace(metric, verdict="new")
            return self._record(metric)
        if limit is None:
            metric = self._record(judge(name, value, unit, higher_is_better, None, test=self.nodeid,
                                        engine=engine, verdict_if_no_limit="new", extra=extra))
            metric = dataclasses.replace(metric, verdict="fail")
            self.metrics[-1] = metric
            self.user_properties[-1] = (METRIC, metric.to_dict())
            self.failures.append(
                f"{name}: no baseline in {self.store.display_path(key)}; record one with: "
                f"pytest {self.nodeid.split('[')[0]} {UPDATE_FLAG}"
            )
            return metric
        return self.against(name, value, unit, higher_is_better, limit, engine=engine, extra=extra)

    def stage_baseline(self, key: BaselineKey, name: str, value: float | None, unit: str,
                       higher_is_better: bool | None, tolerance: Tolerance, files: dict[str, str] | None = None) -> None:
        """Propose a baseline entry; the controller writes it only if the whole run passes."""
        if value is None:
            return
        entry: dict[str, Any] = {
            "value": float(value),
            "unit": unit,
            "higher_is_better": higher_is_better,
            "tolerance": tolerance.to_dict(),
            "provenance": {
                "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
                "git_commit": git_commit(),
                "test": self.nodeid,
            },
        }
        self.user_properties.append((BASELINE, {"key": dataclasses.asdict(key), "name": name, "entry": entry,
                                                "files": files or {}}))

    def fail(self, message: str) -> None:
        """A failed check that is not a metric (a compliance rule, an invalid run)."""
        self.failures.append(message)

    # -- verdict ------------------------------------------------------------

    def verify(self) -> None:
        """Fail the test with every failed gate, one line each."""
        if self.failures:
            import pytest

            __tracebackhide__ = True
            pytest.fail("\n".join(self.failures), pytrace=False)
