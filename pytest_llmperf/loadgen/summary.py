"""Parse ``mlperf_log_summary.txt``: validity, constraints, throughput, latency percentiles.

The summary is ``key : value`` lines in sections.  Throughput lines differ by
scenario: Offline prints ``Samples per second`` and ``Tokens per second``,
Server prints ``Completed samples per second`` and ``Completed tokens per
second``; both are read into the same fields.  Latencies are in nanoseconds.
"""

from __future__ import annotations

import dataclasses
import os
import re
from pathlib import Path

from ..errors import InputError

SUMMARY_LOG = "mlperf_log_summary.txt"

#: Constraint lines as LoadGen prints them (spacing before the colon varies).
CONSTRAINTS = (
    "Performance constraints satisfied",
    "Min duration satisfied",
    "Min queries satisfied",
    "Early stopping satisfied",
)

_KEY_VALUE = re.compile(r"^\s*(?P<key>[^:]+?)\s*:\s*(?P<value>.*?)\s*$")
_PERCENTILE = re.compile(r"^(?P<p>\d+(?:\.\d+)?) percentile (?P<what>.+?) \(ns\)$")
_COUNT = re.compile(r"^(?P<n>\d+|No) (?P<what>warnings?|ERRORS?) encountered", re.IGNORECASE)


@dataclasses.dataclass(frozen=True)
class LoadgenSummary:
    """The numbers and verdicts of one ``mlperf_log_summary.txt``."""

    path: str
    """The file it was read from."""
    scenario: str
    mode: str
    sut_name: str
    valid: bool
    """``Result is : VALID``."""
    constraints: dict[str, bool]
    """Each constraint line LoadGen printed (see ``CONSTRAINTS``) -> satisfied."""
    samples_per_second: float | None
    """Offline: samples/s; Server: completed samples/s."""
    tokens_per_second: float | None
    """Offline: tokens/s; Server: completed tokens/s (only with token latencies)."""
    latency_ns: dict[float, int]
    """Sample latency percentiles, e.g. {99.0: 123456789} (ns)."""
    latency_stats: dict[str, int]
    """``min``, ``max``, ``mean`` sample latency (ns)."""
    ttft_ns: dict[float, int]
    """First-token latency percentiles (Server/Interactive)."""
    ttft_stats: dict[str, int]
    """``min``, ``max``, ``mean`` first-token latency (ns)."""
    tpot_ns: dict[float, int]
    """Time-per-output-token percentiles (Server/Interactive)."""
    tpot_stats: dict[str, int]
    """``min``, ``max``, ``mean`` time per output token (ns)."""
    recommendations: tuple[str, ...]
    """LoadGen's advice for each unmet constraint."""
    early_stopping: dict[str, str]
    """Early stopping verdict text: keys ``ttft``, ``tpot`` (token latencies) or ``latency``."""
    warnings: int
    """Count from ``N warnings encountered`` (0 for ``No warnings``)."""
    errors: int
    """Count from ``N ERRORS encountered`` (0 for ``No errors``)."""
    parameters: dict[str, str]
    """The ``Test Parameters Used`` section, as text."""

    def percentile(self, table: str, p: float) -> float | None:
        """``table`` in latency / ttft / tpot; the value at percentile ``p`` (e.g. 99.0) in ns, or None."""
        return {"latency": self.latency_ns, "ttft": self.ttft_ns, "tpot": self.tpot_ns}[table].get(float(p))

    @property
    def unmet_constraints(self) -> tuple[str, ...]:
        return tuple(name for name, met in self.constraints.items() if not met)


def read_log_text(path: str | os.PathLike, file_name: str) -> tuple[Path, str]:
    """Text of a LoadGen log given as the file or the run folder holding ``file_name``."""
    path = Path(path)
    if path.is_dir():
        path = path / file_name
    try:
        return path, path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        raise InputError(path, "no such file", "pass the folder of a finished LoadGen run") from None
    except OSError as exc:
        raise InputError(path, f"cannot be read ({exc.strerror})", "check the path and its permissions") from None


def read_summary(path: str | os.PathLike) -> LoadgenSummary:
    """Read a summary file (or the folder holding one)."""
    path, text = read_log_text(path, SUMMARY_LOG)
    return parse_summary(text, str(path))


def parse_summary(text: str, path: str = SUMMARY_LOG) -> LoadgenSummary:
    if "MLPerf Results Summary" not in text:
        raise InputError(path, "is not a LoadGen summary (no 'MLPerf Results Summary' header)",
                         "pass the mlperf_log_summary.txt of a finished LoadGen run")
    fields: dict[str, str] = {}
    parameters: dict[str, str] = {}
    percentiles: dict[str, dict[float, int]] = {"latency": {}, "ttft": {}, "tpot": {}}
    stats: dict[str, dict[str, int]] = {"latency": {}, "ttft": {}, "tpot": {}}
    constraints: dict[str, bool] = {}
    recommendations: list[str] = []
    early: dict[str, list[str]] = {}
    counts = {"warning": 0, "error": 0}
    section, block = "results", None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or set(line) == {"="}:
            continue
        if line in ("Additional Stats", "Test Parameters Used"):
            section, block = line, None
            continue
        if counted := _COUNT.match(line):
            kind = "warning" if counted["what"].lower().startswith("warning") else "error"
            counts[kind] = 0 if counted["n"] == "No" else int(counted["n"])
            continue
        if section == "results":
            if line == "Recommendations:":
                block = "recommendations"
                continue
            if line.endswith("Early Stopping Result:"):
                block = {"TTFT": "ttft", "TPOT": "tpot"}.get(line.split()[0], "latency")
                early[block] = []
                continue
            if block == "recommendations" and line.startswith("*"):
                recommendations.append(line.lstrip("* ").strip())
                continue
            if block == "recommendations" and recommendations and raw.startswith(" "):
                recommendations[-1] += " " + line  # a recommendation continued on the next line
                continue
            if block in early:
                early[block].append(line.lstrip("* ").strip())
                continue
        match = _KEY_VALUE.match(line)
        if not match:
            continue
        key, value = match["key"], match["value"]
        if section == "Test Parameters Used":
            parameters[key] = value
            continue
        if key in CONSTRAINTS:
            constraints[key] = value.lower() == "yes"
            continue
        if pct := _PERCENTILE.match(key):
            table = _latency_table(pct["what"])
            if table and _is_number(value):
                percentiles[table][float(pct["p"])] = int(float(value))
            continue
        if stat := _stat_key(key):
            table, name = stat
            if _is_number(value):
                stats[table][name] = int(float(value))
            continue
        fields.setdefault(key, value)
    if "Result is" not in fields:
        raise InputError(path, "has no 'Result is' line (the run did not finish)",
                         "re-run the LoadGen test; a killed run leaves its summary incomplete")
    samples = fields.get("Samples per second", fields.get("Completed samples per second"))
    tokens = fields.get("Tokens per second", fields.get("Completed tokens per second"))
    return LoadgenSummary(
        path=path,
        scenario=fields.get("Scenario", ""),
        mode=fields.get("Mode", ""),
        sut_name=fields.get("SUT name", ""),
        valid=fields["Result is"] == "VALID",
        constraints=constraints,
        samples_per_second=_number(samples),
        tokens_per_second=_number(tokens),
        latency_ns=percentiles["latency"], latency_stats=stats["latency"],
        ttft_ns=percentiles["ttft"], ttft_stats=stats["ttft"],
        tpot_ns=percentiles["tpot"], tpot_stats=stats["tpot"],
        recommendations=tuple(recommendations),
        early_stopping={k: " ".join(v) for k, v in early.items()},
        warnings=counts["warning"],
        errors=counts["error"],
        parameters=parameters,
    )


def _latency_table(what: str) -> str | None:
    what = what.lower()
    if what == "latency":
        return "latency"
    if "first token" in what:
        return "ttft"
    if "output token" in what:
        return "tpot"
    return None


def _stat_key(key: str) -> tuple[str, str] | None:
    """``Min latency (ns)`` -> (latency, min); ``Mean First Token latency (ns)`` -> (ttft, mean)."""
    words = key.split(" ", 1)
    if len(words) != 2 or words[0] not in ("Min", "Max", "Mean") or not words[1].endswith("(ns)"):
        return None
    table = _latency_table(words[1][: -len("(ns)")].strip())
    return (table, words[0].lower()) if table else None


def _is_number(text: str) -> bool:
    return _number(text) is not None


def _number(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        return float(text)
    except ValueError:
        return None
