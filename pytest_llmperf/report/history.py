"""Earlier runs (the nightly history) and the trend of each metric across them.

``--history DIR`` is a folder of earlier results: sub-folders holding a
``results.json`` (as CI artifacts unpack), and/or ``*.json`` result files
side by side.  Runs are ordered by their start time.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from ..errors import InputError
from .runs import Run, load_run


@dataclasses.dataclass(frozen=True)
class TrendPoint:
    label: str
    """The run's label (start time and commit)."""
    value: float | None
    current: bool
    """True for the run being reported on."""


def find_history_files(folder: Path) -> list[Path]:
    """results.json files under ``folder`` (any depth) plus ``*.json`` files directly in it."""
    found = set(folder.rglob("results.json"))
    found.update(p for p in folder.glob("*.json") if p.is_file())
    return sorted(found)


def load_history(folder: str | os.PathLike, exclude: Path | None = None) -> list[Run]:
    """Every earlier run under ``folder``, oldest first; ``exclude`` (the current run) is left out."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(folder, "is not a folder",
                         "pass --history a folder of earlier results folders or results.json files")
    skip = exclude.resolve() if exclude is not None else None
    runs = [load_run(path) for path in find_history_files(folder) if path.resolve() != skip]
    return sorted(runs, key=lambda run: (run.started, str(run.path)))


def trends(history: list[Run], current: Run, limit: int = 12) -> dict[str, list[TrendPoint]]:
    """Metric id -> its values over the history then the current run.

    Only metrics of the current run that appear in at least one earlier run,
    gated ones first, at most ``limit`` of them (a page of small plots).
    """
    seen_before = {key for run in history for key in run.metrics}
    keys = [key for key in current.metrics if key in seen_before]
    keys.sort(key=lambda key: current.metrics[key].verdict == "info")
    series: dict[str, list[TrendPoint]] = {}
    for key in keys[:limit]:
        points = [TrendPoint(run.label, run.metrics[key].value, False) for run in history if key in run.metrics]
        points.append(TrendPoint(current.label, current.metrics[key].value, True))
        series[key] = points
    return series
