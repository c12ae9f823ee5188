"""Finished LoadGen accuracy runs: a folder holding ``mlperf_log_accuracy.json``.

The ROUGE suite also writes ``run.json`` whose metadata says which dataset, how
many samples, which tokenizer and which element type made it, so the compliance
suite (or a person) can score the same log again without guessing.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from ..errors import InputError
from .accuracy_log import ACCURACY_LOG
from .runner import RUN_FILE

#: run.json ``metadata.suite`` of runs written by suites/accuracy/test_rouge.py.
ROUGE_SUITE = "accuracy-rouge"


@dataclasses.dataclass(frozen=True)
class AccuracyRun:
    """A folder with an accuracy log, and what scoring it needs."""

    folder: Path
    """The run's folder (it holds mlperf_log_accuracy.json)."""
    dataset: str | None
    """OpenOrca source the prompts came from (``embedded`` or a path); None = ask the profile."""
    samples: int
    """How many dataset rows the run used (0 = all; unknown for a foreign folder)."""
    tokenizer: str | None
    """Checkpoint folder whose tokenizer decodes the log; None = the session's model."""
    dtype: str
    """Element type of the logged responses."""
    profile: str | None
    """The profile the run was made under, if known."""
    target: str | None = None
    """The (engine, device) item that made it, e.g. ``transformers-cpu``, if known."""

    @property
    def accuracy_log(self) -> Path:
        return self.folder / ACCURACY_LOG


def read_accuracy_run(folder: str | Path) -> AccuracyRun:
    """A run folder: its run.json metadata where present, defaults otherwise."""
    folder = Path(folder)
    if not (folder / ACCURACY_LOG).is_file():
        raise InputError(folder, f"holds no {ACCURACY_LOG}", "pass the folder of a LoadGen AccuracyOnly run")
    metadata: dict[str, Any] = {}
    run_file = folder / RUN_FILE
    if run_file.is_file():
        try:
            metadata = json.loads(run_file.read_text(encoding="utf-8")).get("metadata") or {}
        except (json.JSONDecodeError, AttributeError):
            raise InputError(run_file, "is not a run.json of pytest-llmperf", "remove it or re-run the test") from None
    return AccuracyRun(folder=folder, dataset=metadata.get("dataset"), samples=int(metadata.get("samples") or 0),
                       tokenizer=metadata.get("tokenizer"), dtype=str(metadata.get("dtype") or "int32"),
                       profile=metadata.get("profile"), target=metadata.get("target"))


def find_accuracy_runs(out_dir: str | Path) -> list[AccuracyRun]:
    """ROUGE runs the accuracy suite left under ``--llmperf-out`` (``runs/*/run.json``)."""
    runs = []
    for run_file in sorted(Path(out_dir).glob(f"runs/*/{RUN_FILE}")):
        try:
            data = json.loads(run_file.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            continue
        if (data.get("metadata") or {}).get("suite") == ROUGE_SUITE and data.get("finished"):
            runs.append(read_accuracy_run(run_file.parent))
    return runs
