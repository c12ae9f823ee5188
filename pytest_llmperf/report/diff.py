"""Compare a run with a baseline (an earlier run or a baselines folder) and
decide whether anything regressed.

A run regressed when any of its own gates failed (a metric verdict ``fail``,
a failed test, a run that never finished), when a metric is worse than the
baseline by more than that metric's tolerance, or when a metric of the
baseline run was not measured at all (a baselines folder holds every suite's
metrics, so against one a metric left out is not a regression).  Tolerances come from the
baselines folder, from the run's record of the tolerance it was judged with,
or, for gated metrics with neither, from ``--tolerance``.  Informational
metrics (verdict ``info``) are shown with their change but never gated.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any, Literal

from ..errors import InputError
from ..gating.baselines import BaselineStore, limit_from_entry, looks_like_baselines
from ..gating.limits import Limit
from ..results import Metric
from .baseline_updates import baseline_key_for
from .runs import Run, load_run
from .table import format_change, format_value, relative_change

Status = Literal["regressed", "improved", "within", "not gated", "new", "missing"]


@dataclasses.dataclass(frozen=True)
class BaselineSource:
    """What ``--baseline`` pointed at."""

    kind: Literal["run", "baselines"]
    path: Path
    run: Run | None = None
    store: BaselineStore | None = None

    @property
    def label(self) -> str:
        return f"run {self.run.label}" if self.run is not None else f"baselines in {self.path}"


def load_baseline(path: str | os.PathLike) -> BaselineSource:
    """An earlier results folder / results.json, or a baselines folder."""
    path = Path(path)
    if path.is_file() or (path / "results.json").is_file():
        return BaselineSource("run", path, run=load_run(path))
    if looks_like_baselines(path):
        return BaselineSource("baselines", path, store=BaselineStore(path))
    problem = "does not exist" if not path.exists() else "holds neither a results.json nor baseline files"
    raise InputError(path, problem, "pass --baseline an earlier results folder (--llmperf-out of that run) "
                                    "or a baselines folder (<model>/<hardware>/<engine>-<dtype>.json)")


@dataclasses.dataclass(frozen=True)
class Comparison:
    """One metric of the current run next to its baseline."""

    id: str
    metric: Metric
    """The current measurement (for ``missing``: the baseline run's metric)."""
    reference: float | None
    """The baseline's value."""
    limit: Limit | None
    """The interval the current value had to fall in; None when not gated."""
    status: Status

    @property
    def change(self) -> float | None:
        if self.status == "missing":
            return None
        return relative_change(self.metric.value, self.reference)

    def describe(self) -> str:
        value = f"{format_value(self.metric.value)} {self.metric.unit}".strip()
        reference = format_value(self.reference)
        if self.status == "missing":
            return f"{self.id}: measured in the baseline ({value}) but not in this run"
        allowed = f"; allowed {self.limit.describe()} ({self.limit.source})" if self.limit else ""
        return f"{self.id}: {value} vs {reference} ({format_change(self.change)}){allowed}"


def tolerance_of(metric: Metric, earlier: Metric, default_relative: float | None) -> dict[str, float] | None:
    for source in (metric, earlier):
        recorded = source.extra.get("tolerance")
        if isinstance(recorded, dict) and recorded:
            return recorded
    if metric.verdict != "info" and default_relative is not None:
        return {"relative": default_relative}
    return None


def judge_against(metric: Metric, reference: float | None, limit: Limit | None) -> Status:
    if limit is None or reference is None:
        return "not gated"
    if metric.value is None or not limit.admits(metric.value):
        return "regressed"
    better_beyond = (
        (metric.higher_is_better is True and limit.low is not None and metric.value > 2 * reference - limit.low)
        or (metric.higher_is_better is False and limit.high is not None and metric.value < 2 * reference - limit.high)
    )
    return "improved" if better_beyond else "within"


def compare_runs(current: Run, earlier: Run, default_relative: float | None) -> list[Comparison]:
    rows = []
    for key, metric in current.metrics.items():
        before = earlier.metrics.get(key)
        if before is None:
            rows.append(Comparison(key, metric, None, None, "new"))
            continue
        tolerance = tolerance_of(metric, before, default_relative)
        limit = None
        if tolerance is not None and before.value is not None:
            entry = {"value": before.value, "tolerance": tolerance, "higher_is_better": metric.higher_is_better}
            limit = limit_from_entry(entry, f"run {earlier.label}")
        rows.append(Comparison(key, metric, before.value, limit, judge_against(metric, before.value, limit)))
    for key, before in earlier.metrics.items():
        if key not in current.metrics:
            rows.append(Comparison(key, before, before.value, None, "missing"))
    return rows


def compare_baselines(current: Run, store: BaselineStore) -> list[Comparison]:
    rows = []
    for key, metric in current.metrics.items():
        baseline_key = baseline_key_for(metric, current)
        limit = store.limit(baseline_key, metric.name) if baseline_key is not None else None
        if limit is None:
            rows.append(Comparison(key, metric, None, None, "new"))
            continue
        rows.append(Comparison(key, metric, limit.reference, limit, judge_against(metric, limit.reference, limit)))
    return rows


def compare(current: Run, baseline: BaselineSource | None, default_relative: float | None) -> list[Comparison]:
    if baseline is None:
        return []
    if baseline.run is not None:
        return compare_runs(current, baseline.run, default_relative)
    assert baseline.store is not None
    return compare_baselines(current, baseline.store)


def regression_reasons(current: Run, comparisons: list[Comparison]) -> list[str]:
    """One line per reason to fail a nightly job; empty when nothing regressed."""
    reasons = []
    failed_tests_with_metrics = set()
    for key, metric in current.metrics.items():
        if metric.verdict == "fail":
            failed_tests_with_metrics.add(metric.test)
            value = f"{format_value(metric.value)} {metric.unit}".strip()
            reasons.append(f"{key}: {value} failed its gate {metric.limit or ''} ({metric.source or 'no source'})")
    failed_tests = current.failed_tests
    for test in failed_tests:
        if test.get("nodeid") not in failed_tests_with_metrics:
            first_line = (str(test.get("message") or "").strip().splitlines() or ["no message"])[-1]
            reasons.append(f"test {test.get('nodeid')} failed: {first_line[:300]}")
    if current.interruption is not None:  # what it measured is kept, but it is not a whole run
        reasons.insert(0, f"run {current.interruption}: only what was measured before the signal is in it")
    elif current.status != "passed" and not reasons:
        reasons.append(f"run status is {current.status!r} (not 'passed'): "
                       "the session failed outside any test or did not finish")
    reasons.extend(f"regressed against the baseline: {row.describe()}" for row in comparisons
                   if row.status == "regressed")
    # Lost coverage (a test now skipped, a device gone) must not pass a nightly silently.
    reasons.extend(f"missing: {row.describe()}" for row in comparisons if row.status == "missing")
    return reasons


def diff_json(current: Run, baseline: BaselineSource | None, comparisons: list[Comparison],
              history: list[Run], reasons: list[str]) -> dict[str, Any]:
    """The machine-readable report: every metric, its own verdict and its comparison."""
    by_id = {row.id: row for row in comparisons}
    metrics = []
    for key, metric in current.metrics.items():
        row = by_id.get(key)
        metrics.append({"id": key, **metric.to_dict(), "comparison": _comparison_json(row)})
    for row in comparisons:
        if row.status == "missing":
            metrics.append({"id": row.id, **row.metric.to_dict(), "value": None, "verdict": "missing",
                            "comparison": _comparison_json(row)})
    return {
        "schema": 1,
        "regressed": bool(reasons),
        "reasons": reasons,
        "run": {"path": str(current.path), **{k: current.info.get(k) for k in
                                              ("started", "finished", "status", "git_commit", "profile", "host")}},
        "baseline": None if baseline is None else {
            "kind": baseline.kind, "path": str(baseline.path), "label": baseline.label},
        "history": [{"path": str(run.path), "label": run.label, "status": run.status} for run in history],
        "metrics": metrics,
    }


def _comparison_json(row: Comparison | None) -> dict[str, Any] | None:
    if row is None:
        return None
    return {
        "status": row.status,
        "baseline_value": row.reference,
        "change": None if row.change is None else round(row.change, 6),
        "allowed": None if row.limit is None else row.limit.describe(),
        "source": None if row.limit is None else row.limit.source,
    }
