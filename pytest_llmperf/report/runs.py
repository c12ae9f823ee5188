"""A results.json loaded for reporting: its metrics, keyed so runs line up.

Two runs are compared metric by metric.  A metric is identified by its
engine key and name (``transformers-cpu/decode.tokens_per_second``); the test
id is left out on purpose, so renaming a test does not break a nightly
comparison.  A name measured twice in one run gets ``#2``, ``#3`` ...
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

from ..runtime.results import Metric, load_results


@dataclasses.dataclass(frozen=True)
class Run:
    """One session's results, ready to report on."""

    path: Path
    """The results.json it was read from."""
    data: dict[str, Any]
    """The file's content, as ``results.load_results`` returned it."""
    metrics: dict[str, Metric]
    """Metric id -> metric, in the order the session recorded them."""

    @property
    def info(self) -> dict[str, Any]:
        return self.data.get("run") or {}

    @property
    def status(self) -> str:
        return str(self.info.get("status") or "unknown")

    @property
    def interruption(self) -> str | None:
        """``interrupted by SIGINT at ... during <test>`` for a run cut by a signal; None otherwise."""
        if self.status != "interrupted":
            return None
        cut = self.info.get("interrupted") or {}
        during = f" during {cut['test']}" if cut.get("test") else ""
        return f"interrupted by {cut.get('signal') or 'a signal'} at {cut.get('at') or '?'}{during}"

    @property
    def started(self) -> str:
        return str(self.info.get("started") or "")

    @property
    def commit(self) -> str:
        return str(self.info.get("git_commit") or "")[:10]

    @property
    def label(self) -> str:
        """Short name for plots and headings: start time (to the minute) and commit."""
        when = self.started.replace("T", " ")[:16] or self.path.parent.name
        return f"{when} {self.commit[:7]}".strip()

    @property
    def failed_tests(self) -> list[dict[str, Any]]:
        return [t for t in self.data.get("tests") or [] if t.get("outcome") == "failed"]

    def engine(self, metric: Metric) -> dict[str, Any]:
        """The engine description a metric was measured with (may be empty)."""
        return (self.data.get("engines") or {}).get(metric.engine or "", {})


def metric_id(metric: Metric) -> str:
    return f"{metric.engine}/{metric.name}" if metric.engine else metric.name


def keyed_metrics(raw: list[dict[str, Any]]) -> dict[str, Metric]:
    keyed: dict[str, Metric] = {}
    for entry in raw:
        metric = Metric.from_dict(entry)
        base = metric_id(metric)
        key, n = base, 1
        while key in keyed:
            n += 1
            key = f"{base}#{n}"
        keyed[key] = metric
    return keyed


def load_run(path: str | os.PathLike) -> Run:
    """Read a results folder or results.json (``InputError`` when it is not one)."""
    path = Path(path)
    data = load_results(path)
    file = path / "results.json" if path.is_dir() else path
    return Run(path=file, data=data, metrics=keyed_metrics(data.get("metrics") or []))
