"""The test-side API for gates: record metrics, judge them, fail with one line each.

A ``Checker`` belongs to one test and, once bound (``bind``), to one engine:
every metric it records carries that engine's key, and baseline gates use that
engine's baseline key.  The plugin binds the ``llmperf_check`` fixture to the
``llmperf_engine`` of the same test by itself.  It judges each metric against a
limit (a profile target or a baseline), records every metric (passed or not) for
results.json, stages new baseline values under ``--llmperf-update-baselines``,
and ``verify()`` fails the test with all failed gates, one line each.  The
plugin calls ``verify()`` when the test body returns, so a gate cannot be
forgotten.

Records travel as pytest ``user_properties`` so that under pytest-xdist only
the controller writes results.json and baselines.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
from typing import TYPE_CHECKING

from ..results import Metric, git_commit
from .baselines import UPDATE_FLAG, BaselineKey, BaselineStore, Tolerance, baseline_entry
from .limits import Limit, failure_message, judge

if TYPE_CHECKING:
    from ..engines import Engine

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
        self.engine_key: str | None = None
        """Results key of the bound engine (``transformers-cpu``); None until bound."""
        self.baseline_key: BaselineKey | None = None
        """Baseline key of the bound engine; None until bound."""

    # -- binding --------------------------------------------------------------

    def bind(self, engine: "Engine | None" = None, *, baseline_key: BaselineKey | None = None,
             engine_key: str | None = None) -> "Checker":
        """Bind to ``engine`` (its description is recorded once) or to a bare ``engine_key``; returns self."""
        if engine is not None:
            key = engine_key or f"{engine.info.engine}-{engine.info.device}"
            if key != self.engine_key:
                self.user_properties.append((ENGINE, {"key": key, **dataclasses.asdict(engine.info)}))
            engine_key = key
        self.engine_key = engine_key or self.engine_key
        self.baseline_key = baseline_key or self.baseline_key
        return self

    def engine(self, engine: "Engine") -> str:
        """Bind to ``engine`` (the older spelling); return its results key."""
        return self.bind(engine).engine_key  # type: ignore[return-value]

    # -- recording ----------------------------------------------------------

    def _record(self, metric: Metric) -> Metric:
        self.metrics.append(metric)
        self.user_properties.append((METRIC, metric.to_dict()))
        return metric

    def info(self, name: str, value: float | None, unit: str, higher_is_better: bool | None = None,
             *, engine: str | None = None, extra: dict | None = None) -> Metric:
        """A value reported but not gated (MFU, sample counts, ...)."""
        return self._record(judge(name, value, unit, higher_is_better, None, test=self.nodeid,
                                  engine=engine or self.engine_key, extra=extra))

    def against(self, name: str, value: float | None, unit: str, higher_is_better: bool | None,
                limit: Limit, *, engine: str | None = None, extra: dict | None = None) -> Metric:
        """Gate ``value`` on a fixed limit (a profile target)."""
        metric = self._record(judge(name, value, unit, higher_is_better, limit, test=self.nodeid,
                                    engine=engine or self.engine_key, extra=extra))
        if metric.verdict == "fail":
            self.failures.append(failure_message(metric, limit))
        return metric

    def against_baseline(self, name: str, value: float | None, unit: str, higher_is_better: bool | None,
                         tolerance: Tolerance, *, key: BaselineKey | None = None, engine: str | None = None,
                         extra: dict | None = None) -> Metric:
        """Gate ``value`` on the recorded baseline of ``key`` (default: the bound engine's).

        No baseline yet: the test fails and names the command that records one,
        unless this run is recording baselines (then the verdict is ``new``, and
        a change from the old baseline is reported, not gated).  The key and
        tolerance go into the metric's extra, so ``llmperf baselines update``
        and ``llmperf report`` can find the baseline later.
        """
        key = self._key(key, name)
        extra = {**(extra or {}), "baseline_key": dataclasses.asdict(key), "tolerance": tolerance.to_dict()}
        limit = self.store.limit(key, name)
        if not self.update and limit is not None:
            return self.against(name, value, unit, higher_is_better, limit, engine=engine, extra=extra)
        if self.update:
            self.stage_baseline(name, value, unit, higher_is_better, tolerance, key=key)
            verdict = "pass" if limit is not None and value is not None and limit.admits(float(value)) else "new"
        else:
            verdict = "fail"
            self.failures.append(f"{name}: no baseline in {self.store.display_path(key)}; record one with: "
                                 f"pytest {self.nodeid.split('[')[0]} {UPDATE_FLAG}")
        return self._record(judge(name, value, unit, higher_is_better, limit, test=self.nodeid,
                                  engine=engine or self.engine_key, verdict=verdict, extra=extra))

    def stage_baseline(self, name: str, value: float | None, unit: str, higher_is_better: bool | None,
                       tolerance: Tolerance, *, key: BaselineKey | None = None,
                       files: dict[str, str] | None = None) -> None:
        """Propose a baseline entry; the controller writes it only if the whole run passes."""
        key = self._key(key, name)
        if value is None:
            return
        provenance = {"date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
                      "git_commit": git_commit(), "test": self.nodeid}
        entry = baseline_entry(value, unit, higher_is_better, tolerance.to_dict(), provenance)
        self.user_properties.append((BASELINE, {"key": dataclasses.asdict(key), "name": name, "entry": entry,
                                                "files": files or {}}))

    def _key(self, key: BaselineKey | None, name: str) -> BaselineKey:
        if key is None and self.baseline_key is None:
            raise TypeError(f"{name}: this checker is bound to no engine, so it has no baseline key; "
                            "use llmperf_engine in the test, call llmperf_check.bind(engine), or pass key=")
        return key or self.baseline_key  # type: ignore[return-value]

    def fail(self, message: str) -> None:
        """A failed check that is not a metric (a compliance rule, an invalid run)."""
        self.failures.append(message)

    # -- verdict ------------------------------------------------------------

    def verify(self) -> None:
        """Fail the test with every failed gate, one line each (the plugin calls it when the test returns)."""
        if self.failures:
            import pytest

            __tracebackhide__ = True
            pytest.fail("\n".join(self.failures), pytrace=False)
