"""Baselines: schema-versioned JSON (plus ``.npy`` arrays) keyed by
model / hardware / engine / dtype, with a direction-aware tolerance per metric.

Layout under the baselines folder::

    <model>/<hardware>/<engine>-<dtype>[-<options>].json      metrics
    <model>/<hardware>/<engine>-<dtype>[-<options>]/*.npy     arrays (logits), with a manifest

``<options>`` names the engine options that change the numbers when they differ from the engine's
defaults (``vllm-bfloat16-kv_cache_dtype-fp8-quantization-fp8.json``): ``BaselineKey.options``.

Every baseline file is read, listed and written here; a metric entry is
built by ``baseline_entry`` only (the checker stages one, ``llmperf baselines
update`` proposes one from a passed run)::

    "offline.tokens_per_second": {
        "value": 131.2, "unit": "tokens/s", "higher_is_better": true,
        "tolerance": {"relative": 0.35},
        "provenance": {"date": ..., "git_commit": ..., "test": ..., "results": ...}
    }

``higher_is_better`` true: value may not fall below ``value x (1 - relative)``;
false: may not rise above ``value x (1 + relative)``; null: two-sided.  An
``absolute`` tolerance is used instead where given (accuracy in points).

A performance metric measured in rounds (``gating.rounds``) is recorded with its
distribution and the workload that produced it, and is judged by ``gating.noise``
instead of a tolerance::

    "decode.tokens_per_second": {
        "value": 39.1, "unit": "tokens/s", "higher_is_better": true,
        "rounds": {"normalized": [...], "raw": [...], "calibration": [...],
                   "median": 0.47, "log_sd": 0.021, "calibration_kind": "torch-matmul-float32-256x400"},
        "min_effect": 0.15,
        "workload": {"test": "decode", "max_new_tokens": 32, "threads": 2, "cpu_model": ...},
        "provenance": {...}
    }

Entries without ``rounds`` (recorded before) keep the tolerance rule.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import re
from pathlib import Path
from typing import Any

from ..runtime import atomic
from ..errors import InputError
from .limits import Limit
from .noise import RoundStats

SCHEMA_VERSION = 1
UPDATE_FLAG = "--llmperf-update-baselines"
STRICT_FLAG = "--llmperf-strict-baselines"


@dataclasses.dataclass(frozen=True)
class BaselineKey:
    """What a baseline is valid for."""

    model: str
    hardware: str
    """Device class for CPUs (``cpu``); the accelerator's name otherwise (``nvidia-h100-80gb-hbm3``)."""
    engine: str
    dtype: str
    options: str = ""
    """The engine options that change the numbers, as ``name=value`` pairs joined by commas
    (``kv_cache_dtype=fp8,quantization=fp8``; ``EngineInfo.key_options``); empty for the engine's
    defaults.  They name a file of their own, so an FP8 run never overwrites the bf16 baselines."""

    @classmethod
    def of(cls, model: str, engine: str, device: str, device_name: str, dtype: str,
           options: dict[str, str] | None = None) -> "BaselineKey":
        """The key of a measurement on ``device`` (class) named ``device_name``."""
        return cls(model, hardware_key(device, device_name), engine, dtype, key_options(options or {}))

    def relative_path(self) -> Path:
        name = f"{slug(self.engine)}-{slug(self.dtype)}" + (f"-{slug(self.options)}" if self.options else "")
        return Path(slug(self.model)) / slug(self.hardware) / f"{name}.json"

    def arrays_dir(self, root: Path) -> Path:
        return root / self.relative_path().with_suffix("")


def key_options(options: dict[str, str]) -> str:
    """``{"quantization": "fp8", "kv_cache_dtype": "fp8"}`` -> ``kv_cache_dtype=fp8,quantization=fp8`` (sorted)."""
    return ",".join(f"{name}={options[name]}" for name in sorted(options))


def hardware_key(device: str, device_name: str) -> str:
    """The hardware part of a key: ``cpu`` for CPUs (their names vary between runners
    of one kind), the accelerator's name otherwise."""
    return "cpu" if device == "cpu" else (device_name or device)


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9._]+", "-", text.lower()).strip("-") or "unknown"


@dataclasses.dataclass(frozen=True)
class Tolerance:
    relative: float | None = None
    absolute: float | None = None

    def to_dict(self) -> dict[str, float]:
        return {k: v for k, v in (("relative", self.relative), ("absolute", self.absolute)) if v is not None}

    def describe(self) -> str:
        if self.absolute is not None:
            return f"tolerance {self.absolute:g} absolute"
        return f"tolerance {100 * (self.relative or 0):g}%"


def baseline_entry(value: float, unit: str, higher_is_better: bool | None, tolerance: dict[str, float],
                   provenance: dict[str, Any], *, rounds: dict[str, Any] | None = None,
                   workload: dict[str, Any] | None = None, min_effect: float | None = None) -> dict[str, Any]:
    """One metric entry of a baseline file (the only place that builds one).

    With ``rounds`` (a metric measured in rounds) the entry stores the round values, their
    median and spread and the ``workload``, and no tolerance: ``gating.noise`` judges it."""
    entry: dict[str, Any] = {"value": float(value), "unit": unit, "higher_is_better": higher_is_better}
    if rounds is None:
        entry["tolerance"] = dict(tolerance)
    else:
        normalized = [float(v) for v in rounds["normalized"]]
        stats = RoundStats.of(normalized)
        entry["rounds"] = {"normalized": normalized, "raw": [float(v) for v in rounds["raw"]],
                           "calibration": [float(v) for v in rounds["calibration"]],
                           "median": stats.median, "log_sd": stats.log_sd,
                           "calibration_kind": str(rounds["calibration_kind"])}
        if rounds.get("contention") is not None:  # what others took of the CPU per round, and where
            entry["rounds"]["contention"] = [None if c is None else round(float(c), 4) for c in rounds["contention"]]
            entry["rounds"]["host"] = rounds.get("host")
        entry["min_effect"] = None if min_effect is None else float(min_effect)
        entry["workload"] = dict(workload or {})
    entry["provenance"] = dict(provenance)
    return entry


def has_rounds(entry: dict[str, Any] | None) -> bool:
    """True for an entry recorded with its round values (judged by ``gating.noise``)."""
    return bool(entry) and isinstance(entry.get("rounds"), dict) and bool(entry["rounds"].get("normalized"))


def workload_differences(recorded: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """``max_new_tokens 32 here, 64 in the baseline`` for each setting that differs (sorted)."""
    return [f"{name} {current.get(name)!r} here, {recorded.get(name)!r} in the baseline"
            for name in sorted(set(recorded) | set(current)) if recorded.get(name) != current.get(name)]


def record_command(nodeid: str) -> str:
    """The command that records the baselines of the test ``nodeid`` (its file, every parameter)."""
    return f"pytest {nodeid.split('[')[0]} {UPDATE_FLAG}"


def limit_from_entry(entry: dict[str, Any], source: str) -> Limit:
    """Turn one baseline entry into the interval a new measurement must fall in."""
    value = float(entry["value"])
    tolerance = entry.get("tolerance") or {}
    if "absolute" in tolerance:
        slack = float(tolerance["absolute"])
    else:
        slack = abs(value) * float(tolerance.get("relative", 0.0))
    higher = entry.get("higher_is_better")
    source = f"{source}: {value:.4g} {Tolerance(tolerance.get('relative'), tolerance.get('absolute')).describe()}"
    low = value - slack if higher in (True, None) else None
    high = value + slack if higher in (False, None) else None
    return Limit(low, high, value, source, UPDATE_FLAG)


class BaselineStore:
    """Reads and (atomically, under a lock) updates one baselines folder."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)

    def path(self, key: BaselineKey) -> Path:
        return self.root / key.relative_path()

    def load(self, key: BaselineKey) -> dict[str, Any]:
        path = self.path(key)
        if not path.exists():
            return {"schema": SCHEMA_VERSION, "key": dataclasses.asdict(key), "metrics": {}}
        return read_file_data(path)

    def entry(self, key: BaselineKey, metric: str) -> dict[str, Any] | None:
        return self.load(key)["metrics"].get(metric)

    def limit(self, key: BaselineKey, metric: str) -> Limit | None:
        """The limit for ``metric``, or None when no baseline was recorded yet."""
        entry = self.entry(key, metric)
        if entry is None:
            return None
        value = entry.get("value")
        if not isinstance(value, (int, float)) or not math.isfinite(value):
            raise InputError(self.path(key), f"metric {metric!r} has no finite 'value'",
                             f"rewrite it with {UPDATE_FLAG}")
        return limit_from_entry(entry, self.display_path(key))

    def display_path(self, key: BaselineKey) -> str:
        try:
            return str(self.path(key).relative_to(Path.cwd()))
        except ValueError:
            return str(self.path(key))

    def update(self, key: BaselineKey, metrics: dict[str, dict[str, Any]]) -> Path:
        """Merge ``metrics`` (name -> entry) into the key's file, atomically and locked.

        An existing entry keeps its tolerance (people tune those by hand);
        value, unit, direction and provenance are replaced.  An entry measured in
        rounds replaces the old one whole (it has no tolerance).
        """
        path = self.path(key)
        with atomic.locked(path):
            data = self.load(key)
            for name, entry in metrics.items():
                old = data["metrics"].get(name, {})
                merged = dict(entry)
                if "tolerance" in old and "tolerance" in merged:
                    merged["tolerance"] = old["tolerance"]
                data["metrics"][name] = merged
            data["metrics"] = dict(sorted(data["metrics"].items()))
            atomic.write_json(path, data)
        return path


# -- reading files --------------------------------------------------------------------

#: ``<model>/<hardware>/<engine>-<dtype>.json``: array manifests sit one level deeper.
BASELINE_FILE_DEPTH = 3
_RESTORE = f"restore it from git or rewrite it with {UPDATE_FLAG}"


def read_file_data(path: Path) -> dict[str, Any]:
    """A baseline file's content, checked against the schema (``InputError`` names a bad file)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise InputError(path, f"is not valid JSON ({exc.msg} at line {exc.lineno})", _RESTORE) from None
    if not isinstance(data, dict) or data.get("schema") != SCHEMA_VERSION or not isinstance(data.get("metrics"), dict):
        raise InputError(path, f"is not a baseline file of schema {SCHEMA_VERSION}", _RESTORE)
    return data


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
        data = read_file_data(path)
        try:
            key = BaselineKey(**data["key"])
        except (KeyError, TypeError):
            raise InputError(path, f"is not a baseline file of schema {SCHEMA_VERSION}", _RESTORE) from None
        arrays = tuple(sorted(path.with_suffix("").glob("*.npy")))
        files.append(BaselineFile(path, key, data["metrics"], arrays))
    return files


def looks_like_baselines(root: Path) -> bool:
    return root.is_dir() and bool(candidate_files(root))
