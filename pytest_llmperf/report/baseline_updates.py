"""The baseline entries a passed run proposes (``llmperf baselines update``).

A run records, in the ``extra`` of each metric gated on a baseline, the
baseline key (``baseline_key``) and the tolerance it was judged with
(``tolerance``), or for a metric measured in rounds its ``rounds``, ``workload``
and ``min_effect``.  That is all ``llmperf baselines update`` needs to write the
same entries ``--llmperf-update-baselines`` would have written, after the fact.
The file format itself belongs to ``gating.baselines``.
"""

from __future__ import annotations

from typing import Any

from ..gating.baselines import BaselineKey, baseline_entry
from ..runtime.results import Metric
from .runs import Run


def baseline_key_for(metric: Metric, run: Run) -> BaselineKey | None:
    """The key a metric was judged under: recorded in its extra, else rebuilt from its engine."""
    recorded = metric.extra.get("baseline_key")
    if isinstance(recorded, dict):
        try:
            return BaselineKey(**recorded)
        except TypeError:
            return None
    engine = run.engine(metric)
    if not all(engine.get(field) for field in ("model", "device", "engine", "dtype")):
        return None
    return BaselineKey.of(str(engine["model"]), str(engine["engine"]), str(engine["device"]),
                          str(engine.get("device_name") or engine["device"]), str(engine["dtype"]),
                          engine.get("key_options") or None)


def refusal_reason(run: Run) -> str | None:
    """Why ``run`` may not become a baseline (one line), or None when it may."""
    if run.status != "passed":
        failed = [t["nodeid"] for t in run.failed_tests]
        detail = f"; failed: {', '.join(failed[:3])}{' ...' if len(failed) > 3 else ''}" if failed else ""
        return f"{run.path} records run status {run.status!r}, not 'passed'{detail}"
    failed_metrics = [key for key, metric in run.metrics.items() if metric.verdict == "fail"]
    if failed_metrics:
        return f"{run.path} has failed metrics: {', '.join(failed_metrics)}"
    return None


def proposed_entries(run: Run) -> dict[BaselineKey, dict[str, dict[str, Any]]]:
    """Baseline key -> {metric name: entry} for every metric of ``run`` gated on a baseline."""
    by_key: dict[BaselineKey, dict[str, dict[str, Any]]] = {}
    for metric in run.metrics.values():
        if not isinstance(metric.extra.get("baseline_key"), dict) or metric.value is None:
            continue
        if metric.verdict == "inconclusive":
            continue  # INCONCLUSIVE never becomes a baseline
        key = baseline_key_for(metric, run)
        if key is None:
            continue
        provenance = {"date": run.info.get("finished") or run.started, "git_commit": run.info.get("git_commit"),
                      "test": metric.test, "results": str(run.path)}
        rounds = metric.extra.get("rounds")
        measured = {} if not isinstance(rounds, dict) else {
            "rounds": rounds, "workload": metric.extra.get("workload") or {}, "min_effect": metric.extra.get("min_effect")}
        by_key.setdefault(key, {})[metric.name] = baseline_entry(
            metric.value, metric.unit, metric.higher_is_better, metric.extra.get("tolerance") or {}, provenance,
            **measured)
    return by_key
