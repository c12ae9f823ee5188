"""Compare a run with a baseline (an earlier run or a baselines folder) and
decide whether anything regressed.

A metric the session judged in rounds is judged again by the session's own
rule (``gating.recorded.against_entry``) from the rounds results.json kept:
against a baselines folder, the folder's entry for it; against an earlier run,
that run's rounds.  Given the baselines the session used, each such metric gets
the session's verdict: PASS (status ``within`` or ``improved``), FAIL
(``regressed``), INCONCLUSIVE (``inconclusive``, not a regression unless the
profile set ``inconclusive_fails``) or NO BASELINE (``no baseline``, shown with
the command that records one, not a regression).  A metric of a paired A/B
session (``--llmperf-compare``) is judged again against the reference measured
beside it, from the pairs it kept (``gating.paired.judge_recorded_metric``),
whatever ``--baseline`` says: the session's verdict.  A metric without recorded
rounds (older results.json files, accuracy metrics) is judged on its value by a
tolerance: the baselines folder's, else the one the run recorded, else
``--tolerance``; where the other side has rounds, the row says so.

A run regressed when any of its own gates failed (a metric verdict ``fail``,
a failed test, a run that never finished), when a metric regressed against the
baseline, or when a metric of the baseline run was not measured at all (a
baselines folder holds every suite's metrics, so against one a metric left out
is not a regression).  Informational metrics (verdict ``info``) are shown with
their change but never gated.
"""

from __future__ import annotations

import dataclasses
import math
import os
from pathlib import Path
from typing import Any, Literal

from ..errors import InputError
from ..gating.baselines import (BaselineStore, Tolerance, has_rounds, limit_from_entry, looks_like_baselines,
                                record_command)
from ..gating.limits import Limit
from ..gating.noise import Judgement
from ..gating.paired import PairedJudgement, judge_recorded_metric
from ..gating.recorded import RecordedRounds, against_entry, improved, recorded_rounds, run_entry
from ..runtime.results import Metric
from .baseline_updates import baseline_key_for
from .runs import Run, load_run
from .table import format_change, format_value, relative_change

Status = Literal["regressed", "improved", "within", "inconclusive", "no baseline", "not gated", "new", "missing"]
VERDICT_OF_STATUS = {"within": "pass", "improved": "pass", "regressed": "fail", "inconclusive": "inconclusive",
                     "no baseline": "no_baseline"}


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
    """The interval the current value had to fall in; None when not gated.  For a metric judged in
    rounds: the minimum-effect bound around ``reference`` (what the speed plot draws)."""
    status: Status
    judgement: Judgement | PairedJudgement | None = None
    """For a metric judged in rounds: the interval of its change and the verdict (for one judged in
    pairs, against the reference measured beside it)."""
    source: str = ""
    """Where the baseline came from (for a metric judged in rounds; else the limit's source)."""
    note: str = ""
    """Why it was judged the way it was, where that is not the usual (a tolerance instead of rounds, the
    command that records a missing baseline)."""
    inconclusive_fails: bool = False
    """The session's profile set ``performance.inconclusive_fails``: INCONCLUSIVE is a regression."""

    @property
    def change(self) -> float | None:
        if self.status == "missing":
            return None
        if self.judgement is not None:
            return self.judgement.change
        return relative_change(self.metric.value, self.reference)

    @property
    def verdict(self) -> str | None:
        """``pass``, ``fail``, ``inconclusive`` or ``no_baseline`` (as a session's verdicts); None otherwise."""
        return VERDICT_OF_STATUS.get(self.status)

    @property
    def allowed(self) -> str:
        if self.judgement is not None:
            return self.judgement.describe()
        return self.limit.describe() if self.limit else ""

    @property
    def origin(self) -> str:
        return self.source or (self.limit.source if self.limit else "")

    def describe(self) -> str:
        value = f"{format_value(self.metric.value)} {self.metric.unit}".strip()
        reference = format_value(self.reference)
        if self.status == "missing":
            return f"{self.id}: measured in the baseline ({value}) but not in this run"
        if self.status == "no baseline":
            return f"{self.id}: {value}; {self.note}"
        note = f"; {self.note}" if self.note else ""
        if self.judgement is not None:
            return f"{self.id}: {value} vs {reference}, {self.allowed} against {self.origin}{note}"
        allowed = f"; allowed {self.allowed} ({self.origin})" if self.allowed else ""
        return f"{self.id}: {value} vs {reference} ({format_change(self.change)}){allowed}{note}"


def tolerance_of(metric: Metric, earlier: Metric | None, default_relative: float | None) -> dict[str, float] | None:
    for source in (metric, earlier):
        recorded = source.extra.get("tolerance") if source is not None else None
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


def record_hint(metric: Metric) -> str:
    command = metric.extra.get("record_with") or (record_command(metric.test) if metric.test else None)
    return f"record one with: {command}" if command else "record one with --llmperf-update-baselines"


def judged_in_rounds(key: str, metric: Metric, recorded: RecordedRounds, entry: dict[str, Any] | None,
                     where: str) -> Comparison:
    """``metric``'s recorded rounds against ``entry`` by the session's rule (``gating.recorded``)."""
    outcome = against_entry(entry, recorded.rounds, recorded.metric, recorded.settings, recorded.workload, where)
    if outcome.verdict == "no_baseline":
        return Comparison(key, metric, None, None, "no baseline", note=f"{outcome.reason}; {record_hint(metric)}")
    if outcome.verdict == "tolerance":  # an entry of one value: the session judged the median by its tolerance
        limit = outcome.limit
        assert limit is not None
        return Comparison(key, metric, limit.reference, limit, judge_against(metric, limit.reference, limit),
                          note="the baseline has no rounds: judged on the median by its tolerance")
    judgement = outcome.judgement
    assert judgement is not None
    status: Status = ("regressed" if judgement.verdict == "fail" else "inconclusive"
                      if judgement.verdict == "inconclusive" else "improved" if improved(judgement) else "within")
    limit = None
    if outcome.reference is not None:
        effect = judgement.min_effect
        limit = (Limit(outcome.reference * (1 - effect), None, outcome.reference, outcome.source, "--llmperf-profile")
                 if judgement.higher_is_better else
                 Limit(None, outcome.reference * (1 + effect), outcome.reference, outcome.source, "--llmperf-profile"))
    return Comparison(key, metric, outcome.reference, limit, status, judgement, outcome.source,
                      inconclusive_fails=recorded.settings.inconclusive_fails)


PAIRED_STATUS: dict[str, Status] = {"regressed": "regressed", "improved": "improved", "pass": "within",
                                     "inconclusive": "inconclusive"}


def judged_in_pairs(key: str, metric: Metric) -> Comparison | None:
    """A paired A/B metric against the reference measured beside it, by the session's rule; None for
    a metric not measured in pairs."""
    import statistics

    judgement = judge_recorded_metric(metric)
    if judgement is None:
        return None
    paired = metric.extra["paired"]
    reference = statistics.median(paired["rounds"]["reference"])
    setup = (paired.get("reference_setup") or {}).get("spec", "")
    settings = paired.get("round_settings") or {}
    return Comparison(key, metric, reference, None, PAIRED_STATUS[judgement.verdict], judgement,
                      f"the reference measured beside it (--llmperf-compare {setup})",
                      inconclusive_fails=bool(settings.get("inconclusive_fails")))


def by_tolerance(key: str, metric: Metric, reference: float | None, tolerance: dict[str, float] | None,
                 higher_is_better: bool | None, where: str, note: str = "") -> Comparison:
    limit = None
    if tolerance is not None and reference is not None:
        entry = {"value": reference, "tolerance": tolerance, "higher_is_better": higher_is_better}
        limit = limit_from_entry(entry, where)
    return Comparison(key, metric, reference, limit, judge_against(metric, reference, limit), note=note)


def compare_runs(current: Run, earlier: Run, default_relative: float | None) -> list[Comparison]:
    rows = []
    where = f"run {earlier.label}"
    for key, metric in current.metrics.items():
        paired = judged_in_pairs(key, metric)
        if paired is not None:
            rows.append(paired)
            continue
        before = earlier.metrics.get(key)
        if before is None:
            rows.append(Comparison(key, metric, None, None, "new"))
            continue
        recorded, entry = recorded_rounds(metric), run_entry(before)
        if recorded is not None and entry is not None:
            rows.append(judged_in_rounds(key, metric, recorded, entry, where))
            continue
        note = ""
        if recorded is not None or entry is not None:
            which = "the earlier run" if recorded is not None else "this run"
            note = f"{which} recorded no complete rounds of it: judged on the value by tolerance"
        rows.append(by_tolerance(key, metric, before.value, tolerance_of(metric, before, default_relative),
                                 metric.higher_is_better, where, note))
    for key, before in earlier.metrics.items():
        if key not in current.metrics:
            rows.append(Comparison(key, before, before.value, None, "missing"))
    return rows


def compare_baselines(current: Run, store: BaselineStore, default_relative: float | None = None) -> list[Comparison]:
    rows = []
    for key, metric in current.metrics.items():
        paired = judged_in_pairs(key, metric)
        if paired is not None:
            rows.append(paired)
            continue
        baseline_key = baseline_key_for(metric, current)
        if baseline_key is None:
            rows.append(Comparison(key, metric, None, None, "new"))
            continue
        where = store.display_path(baseline_key)
        entry = store.entry(baseline_key, metric.name)
        recorded = recorded_rounds(metric)
        if recorded is not None:
            rows.append(judged_in_rounds(key, metric, recorded, entry, where))
            continue
        gated_on_baseline = isinstance(metric.extra.get("baseline_key"), dict) and metric.verdict != "info"
        if entry is None:
            rows.append(Comparison(key, metric, None, None, "no baseline", note=f"no baseline in {where}; "
                                   f"{record_hint(metric)}") if gated_on_baseline
                        else Comparison(key, metric, None, None, "new"))
            continue
        limit = store.limit(baseline_key, metric.name)  # checks the entry's value
        assert limit is not None
        if has_rounds(entry):  # a baseline in rounds, but this run kept none to judge with
            tolerance = tolerance_of(metric, None, default_relative)
            rows.append(by_tolerance(key, metric, limit.reference, tolerance, entry.get("higher_is_better"), where,
                                     "this run recorded no rounds of it: judged on the value by "
                                     + ("no tolerance" if tolerance is None else Tolerance(
                                         tolerance.get("relative"), tolerance.get("absolute")).describe())))
            continue
        rows.append(Comparison(key, metric, limit.reference, limit, judge_against(metric, limit.reference, limit)))
    return rows


def compare(current: Run, baseline: BaselineSource | None, default_relative: float | None) -> list[Comparison]:
    if baseline is None:
        return []
    if baseline.run is not None:
        return compare_runs(current, baseline.run, default_relative)
    assert baseline.store is not None
    return compare_baselines(current, baseline.store, default_relative)


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
    reasons.extend(f"INCONCLUSIVE against the baseline, which the profile makes a failure "
                   f"(performance.inconclusive_fails = true): {row.describe()}" for row in comparisons
                   if row.status == "inconclusive" and row.inconclusive_fails)
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
    judged = row.judgement
    return {
        "status": row.status,
        "verdict": row.verdict,
        "baseline_value": row.reference,
        "change": None if row.change is None else round(row.change, 6),
        "allowed": row.allowed or None,
        "source": row.origin or None,
        "note": row.note or None,
        "rounds": None if judged is None else {
            "interval": [_finite(judged.low), _finite(judged.high)], "min_effect": judged.min_effect,
            "confidence": judged.confidence,
            "basis": judged.basis, "baseline_rounds": judged.n_baseline, "rounds": judged.n_current},
    }


def _finite(value: float) -> float | None:
    """JSON has no infinity: an interval without an end (one round on each side) has None there."""
    return value if math.isfinite(value) else None
