"""Parse ``mlperf_log_detail.txt``: one ``:::MLLOG {json}`` record per line.

Each record has a ``key``, a ``value``, a ``time_ms`` and ``metadata`` with
``is_error`` / ``is_warning`` flags.  The parsed log keeps every record, the
last value of each key, and the errors and warnings LoadGen flagged.
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Any

from ..errors import InputError
from .summary import read_log_text

DETAIL_LOG = "mlperf_log_detail.txt"
PREFIX = ":::MLLOG"


@dataclasses.dataclass(frozen=True)
class DetailRecord:
    """One ``:::MLLOG`` line."""

    key: str
    value: Any
    time_ms: float | None
    is_error: bool
    is_warning: bool
    line: int
    """Line number in the file (1-based)."""

    def describe(self) -> str:
        return f"{self.key}: {self.value}"


@dataclasses.dataclass(frozen=True)
class LoadgenDetail:
    """The records of one ``mlperf_log_detail.txt``."""

    path: str
    records: tuple[DetailRecord, ...]
    values: dict[str, Any]
    """Last value logged under each key (``result_validity``, ``effective_min_duration_ms``, ...)."""
    errors: tuple[DetailRecord, ...]
    """Records LoadGen flagged ``is_error`` (e.g. ``error_runtime``, ``error_invalid_config``)."""
    warnings: tuple[DetailRecord, ...]
    """Records LoadGen flagged ``is_warning``."""

    def get(self, key: str, default: Any = None) -> Any:
        return self.values.get(key, default)

    @property
    def valid(self) -> bool | None:
        validity = self.values.get("result_validity")
        return None if validity is None else validity == "VALID"

    def percentile_ns(self, table: str, p: float) -> float | None:
        """latency / ttft / tpot at percentile ``p`` (e.g. 99.0), from the ``result_*`` records."""
        label = f"{p:.2f}"
        key = {
            "latency": f"result_{label}_percentile_latency_ns",
            "ttft": f"result_first_token_{label}_percentile_latency_ns",
            "tpot": f"result_time_per_output_token_{label}_percentile_ns",
        }[table]
        value = self.values.get(key)
        return None if value is None else float(value)


def read_detail(path: str | os.PathLike) -> LoadgenDetail:
    """Read a detail log (or the folder holding one)."""
    path, text = read_log_text(path, DETAIL_LOG)
    return parse_detail(text, str(path))


def parse_detail(text: str, path: str = DETAIL_LOG) -> LoadgenDetail:
    records = []
    lines = text.splitlines()
    for number, raw in enumerate(lines, start=1):
        line = raw.strip()
        if not line.startswith(PREFIX):
            continue  # LoadGen's old format and stray output carry nothing we read
        try:
            data = json.loads(line[len(PREFIX):])
        except json.JSONDecodeError as exc:
            if number == len(lines):  # a run killed mid-write leaves its last line cut off
                break
            raise InputError(path, f"line {number} is not valid MLLOG JSON ({exc.msg})",
                             "pass the mlperf_log_detail.txt LoadGen wrote") from None
        if not isinstance(data, dict) or "key" not in data:
            raise InputError(path, f"line {number} is an MLLOG record without a 'key'",
                             "pass the mlperf_log_detail.txt LoadGen wrote")
        metadata = data.get("metadata") if isinstance(data.get("metadata"), dict) else {}
        records.append(DetailRecord(
            key=str(data["key"]), value=data.get("value"), time_ms=data.get("time_ms"),
            is_error=bool(metadata.get("is_error")), is_warning=bool(metadata.get("is_warning")), line=number,
        ))
    if not records:
        raise InputError(path, f"holds no '{PREFIX}' records", "pass the mlperf_log_detail.txt LoadGen wrote")
    return LoadgenDetail(
        path=path,
        records=tuple(records),
        values={r.key: r.value for r in records},
        errors=tuple(r for r in records if r.is_error),
        warnings=tuple(r for r in records if r.is_warning),
    )
