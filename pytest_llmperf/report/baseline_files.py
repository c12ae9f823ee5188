"""Baseline files as the CLI sees them: listing a baselines folder, and the
entries a passed run proposes for it.

A run records, in the ``extra`` of each metric gated on a baseline, the
baseline key (``baseline_key``) and the tolerance it was judged with
(``tolerance``).  That is all ``llmperf baselines update`` needs to write the
same entries ``--llmperf-update-baselines`` would have written, after the fact.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any

from ..baselines import SCHEMA_VERSION, BaselineKey
from ..errors import InputError
from ..results import Metric
from .runs import Run

#: ``<model>/<hardware>/<engine>-<dtype>.json``: array manifests sit one level deeper.
BASELINE_FILE_DEPTH = 3


@dataclasses.dataclass(frozen=True)
class BaselineFile:
    """One ``<engine>-<dtype>.json`` of a baselines folder."""

    path: Path
    key: BaselineKey
    metrics: dict[str, dict[str, Any]]
    """Metric name -> entry (value, unit, higher_is_better, tolerance, provenance)."""
    arrays: tuple[Path, ...]
    """``.npy`` files kept beside it (logits baselines)."""


def candidate_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*.json") if len(p.relative_to(root).parts) == BASELINE_FILE_DEPTH)


def read_baseline_files(root: str | os.PathLike) -> list[BaselineFile]:
    """Every baseline file under ``root``, validated (``InputError`` names a bad one)."""
    root = Path(root)
    if not root.is_dir():
        raise InputError(root, "is not a folder", "pass the baselines folder (the repository's baselines/)")
    files = []
    for path in candidate_files(root):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise InputError(path, f"is not valid JSON ({exc.msg} at line {exc.lineno})",
                             "restore it from git or record it again with --llmperf-update-baselines")
        try:
            if data.get("schema") != SCHEMA_VERSION or not isinstance(data.get("metrics"), dict):
                raise TypeError
            key = BaselineKey(**data["key"])
        except (AttributeError, KeyError, TypeError):
            raise InputError(path, f"is not a baseline file of schema {SCHEMA_VERSION}",
                             "restore it from git or record it again with --llmperf-update-baselines") from None
        arrays = tuple(sorted(path.with_suffix("").glob("*.npy")))
        files.append(BaselineFile(path, key, data["metrics"], arrays))
    return files


def looks_like_baselines(root: Path) -> bool:
    return root.is_dir() and bool(candidate_files(root))


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
    hardware = "cpu" if engine["device"] == "cpu" else str(engine.get("device_name") or engine["device"])
    return BaselineKey(str(engine["model"]), hardware, str(engine["engine"]), str(engine["dtype"]))


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
        key = baseline_key_for(metric, run)
        if key is None:
            continue
        by_key.setdefault(key, {})[metric.name] = {
            "value": float(metric.value),
            "unit": metric.unit,
            "higher_is_better": metric.higher_is_better,
            "tolerance": dict(metric.extra.get("tolerance") or {}),
            "provenance": {
                "date": run.info.get("finished") or run.started,
                "git_commit": run.info.get("git_commit"),
                "test": metric.test,
                "results": str(run.path),
            },
        }
    return by_key
