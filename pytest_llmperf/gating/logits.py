"""The logits gate: logits against ``.npy`` baselines, the check accelerator contests use.

A baseline is, per prompt, the float32 logits (K x vocab) of the first K
generated positions plus the token path they were taken on, described by a
``manifest.json``.  A later run scores the *same* path teacher-forced
(``engine.score_path``), so one token that flips does not shift every later
position, and compares each array with ``np.allclose(measured, baseline, atol,
rtol)``; it also reports max absolute and relative error, cosine similarity and
top-1 / top-5 agreement.

Engines that only return log-probabilities (``space == "logprobs"``, often only
the top few, the rest ``-inf``) are compared in log-softmax space: the
baseline's logits go through ``log_softmax`` and only the entries the engine
returned are compared.

Arrays are read with ``allow_pickle=False``: a baseline is data, never code.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import hashlib
import io
import json
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..errors import EngineError, InputError
from ..metrics.logits import Comparison, LogitsPrompt, compare
from ..runtime import atomic
from .baselines import UPDATE_FLAG
from .limits import Limit

MANIFEST = "manifest.json"
FOLDER = "logits"
"""Subfolder of a baseline key's arrays folder."""
SCHEMA = 1
DEFAULT_FIX = f"record it again with {UPDATE_FLAG}"


# -- baseline files ---------------------------------------------------------------

def save_array(path: Path, values: np.ndarray) -> None:
    buffer = io.BytesIO()
    np.save(buffer, np.ascontiguousarray(values, dtype=np.float32), allow_pickle=False)
    atomic.write_bytes(path, buffer.getvalue())


def load_array(path: Path, shape: tuple[int, int], fix: str = DEFAULT_FIX) -> np.ndarray:
    """One baseline array, checked: a plain float32 .npy of ``shape``, all finite."""
    if not path.is_file():
        raise InputError(path, f"is missing (listed in {MANIFEST})", fix)
    try:
        array = np.load(path, allow_pickle=False)
    except ValueError as exc:
        text = str(exc)
        if "pickle" in text.lower() or "object arrays" in text.lower():
            raise InputError(path, "holds pickled data or Python objects, which are refused (allow_pickle=False: "
                                   "unpickling runs code)", fix) from None
        raise InputError(path, f"is not a valid .npy file ({text})", fix) from None
    except (OSError, EOFError) as exc:
        raise InputError(path, f"is not a valid .npy file ({exc})", fix) from None
    if not isinstance(array, np.ndarray):
        raise InputError(path, "is an .npz archive, not a single .npy array", fix)
    if array.dtype != np.float32:
        raise InputError(path, f"has dtype {array.dtype}, expected float32", fix)
    if tuple(array.shape) != tuple(shape):
        raise InputError(path, f"has shape {tuple(array.shape)}, the manifest says {tuple(shape)} "
                               "(positions x vocabulary)", fix)
    bad = int(np.count_nonzero(~np.isfinite(array)))
    if bad:
        raise InputError(path, f"holds {bad} NaN or infinite values", fix)
    return array


@dataclasses.dataclass(frozen=True)
class LogitsBaseline:
    """A baseline folder: its manifest and the way to its arrays."""

    folder: Path
    """The folder holding manifest.json and one .npy per prompt."""
    manifest: dict[str, Any]
    """The parsed manifest."""

    @property
    def manifest_path(self) -> Path:
        return self.folder / MANIFEST

    @classmethod
    def read(cls, folder: Path, fix: str = DEFAULT_FIX) -> "LogitsBaseline":
        """Read ``folder/manifest.json``; FileNotFoundError when there is no baseline yet."""
        path = folder / MANIFEST
        text = path.read_text(encoding="utf-8")  # FileNotFoundError: the caller says how to record one
        try:
            manifest = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InputError(path, f"is not valid JSON ({exc.msg} at line {exc.lineno})", fix) from None
        prompts = manifest.get("prompts") if isinstance(manifest, dict) else None
        if manifest.get("schema") != SCHEMA if isinstance(manifest, dict) else True:
            raise InputError(path, f"is not a logits manifest of schema {SCHEMA}", fix)
        if not isinstance(prompts, list) or not prompts:
            raise InputError(path, "lists no prompts", fix)
        for entry in prompts:
            needed = ("id", "file", "prompt_token_ids", "token_path", "shape")
            if not isinstance(entry, dict) or any(key not in entry for key in needed):
                raise InputError(path, f"has a prompt entry without {', '.join(needed)}", fix)
        return cls(folder, manifest)

    def entry(self, prompt_id: str, fix: str = DEFAULT_FIX) -> dict[str, Any]:
        for entry in self.manifest["prompts"]:
            if entry["id"] == prompt_id:
                return entry
        known = ", ".join(e["id"] for e in self.manifest["prompts"])
        raise InputError(self.manifest_path, f"has no prompt {prompt_id!r} (it has: {known})", fix)


def build_manifest(engine_info, prompts: Sequence[LogitsPrompt], paths: Sequence[Sequence[int]],
                   arrays: Sequence[np.ndarray], git_commit: str | None) -> dict[str, Any]:
    entries = []
    for prompt, path, values in zip(prompts, paths, arrays):
        data = np.ascontiguousarray(values, dtype=np.float32)
        entries.append({
            "id": prompt.id, "file": f"{prompt.id}.npy", "text": prompt.text,
            "prompt_token_ids": list(prompt.token_ids), "token_path": [int(t) for t in path],
            "shape": list(data.shape), "sha256": hashlib.sha256(data.tobytes()).hexdigest(),
        })
    return {
        "schema": SCHEMA,
        "dtype": "float32",
        "space": "logits",
        "positions": int(arrays[0].shape[0]) if arrays else 0,
        "vocab": int(arrays[0].shape[1]) if arrays else 0,
        "engine": engine_info.engine, "model": engine_info.model, "device": engine_info.device,
        "device_name": engine_info.device_name, "engine_dtype": engine_info.dtype,
        "versions": dict(engine_info.versions),
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "git_commit": git_commit,
        "prompts": entries,
    }


# -- the two things a run does ----------------------------------------------------

class LogprobsOnly(EngineError):
    """The engine returns log-probabilities, so it cannot record a logits baseline."""


def record(engine, prompts: Sequence[LogitsPrompt], positions: int, out: Path,
           git_commit: str | None = None) -> dict[str, Any]:
    """Generate K greedy tokens per prompt, score that path, write arrays and manifest into ``out``."""
    from ..engines import GenerationParams

    generations = engine.generate([list(p.token_ids) for p in prompts],
                                  GenerationParams(max_new_tokens=positions, min_new_tokens=positions))
    paths, arrays = [], []
    for prompt, generation in zip(prompts, generations):
        path = list(generation.token_ids[:positions])
        if len(path) < positions:
            raise EngineError(f"engine {engine.info.engine} generated {len(path)} tokens for prompt "
                              f"{prompt.id!r}; {positions} are needed for a logits baseline")
        scored = engine.score_path(list(prompt.token_ids), path)
        if scored.space != "logits":
            raise LogprobsOnly(f"engine {engine.info.engine} returns {scored.space}, not logits, so it cannot record "
                               "a logits baseline; record one with the transformers engine and point [logits] "
                               "reference in the profile at its folder")
        paths.append(path)
        arrays.append(np.asarray(scored.values, dtype=np.float32))
    for prompt, values in zip(prompts, arrays):
        save_array(out / f"{prompt.id}.npy", values)
    manifest = build_manifest(engine.info, prompts, paths, arrays, git_commit)
    atomic.write_json(out / MANIFEST, manifest)
    return manifest


@dataclasses.dataclass(frozen=True)
class PromptResult:
    """One prompt checked against its baseline file."""

    prompt_id: str
    """The prompt's id."""
    file: Path
    """The baseline array it was compared with."""
    comparison: Comparison
    """The numbers."""


def check(engine, baseline: LogitsBaseline, prompts: Sequence[LogitsPrompt], positions: int,
          atol: float, rtol: float, fix: str = DEFAULT_FIX) -> list[PromptResult]:
    """Score each baseline path teacher-forced and compare with the recorded arrays."""
    results = []
    for prompt in prompts:
        entry = baseline.entry(prompt.id, fix)
        if [int(t) for t in entry["prompt_token_ids"]] != list(prompt.token_ids):
            raise InputError(baseline.manifest_path, f"prompt {prompt.id!r} was recorded with other token ids "
                                                     "(the prompt text or the tokenizer changed)", fix)
        recorded = int(entry["shape"][0])
        if positions > recorded or len(entry["token_path"]) < positions:
            raise InputError(baseline.manifest_path, f"prompt {prompt.id!r} has {recorded} positions; "
                                                     f"the profile asks for logits.positions = {positions}", fix)
        file = baseline.folder / entry["file"]
        expected = np.asarray(load_array(file, (recorded, int(entry["shape"][1])), fix)[:positions])
        path = [int(t) for t in entry["token_path"][:positions]]
        scored = engine.score_path(list(prompt.token_ids), path)
        values = np.asarray(scored.values)
        if values.shape[-1] != expected.shape[1]:
            raise InputError(file, f"vocabulary mismatch: the engine returns {values.shape[-1]} entries per "
                                   f"position, the baseline has {expected.shape[1]}", fix)
        if values.shape[0] != positions:
            raise EngineError(f"engine {engine.info.engine} scored {values.shape[0]} positions, asked for {positions}")
        results.append(PromptResult(prompt.id, file, compare(values, expected, atol=atol, rtol=rtol,
                                                              space=scored.space)))
    return results


# -- gates --------------------------------------------------------------------------

def gate(check, profile, results: Sequence[PromptResult]) -> None:
    """One gated metric per prompt (``logits.<id>.allclose_error <= atol``) plus summary values."""
    atol, rtol = profile.logits.atol, profile.logits.rtol
    for result in results:
        c, name = result.comparison, f"logits.{result.prompt_id}.allclose_error"
        unit = "logit" if c.space == "logits" else "logprob"
        compared_in = ("logits" if c.space == "logits" else
                       "log-softmax space: the engine returns log-probabilities, so the baseline's logits went "
                       f"through log_softmax and only the {c.entries} returned entries were compared")
        limit = Limit.at_most(atol, reference=None, flag="--llmperf-profile",
                              source=f"{profile.name}: np.allclose(atol={atol:g}, rtol={rtol:g}) against {result.file}")
        metric = check.against(name, c.allclose_error, unit, False, limit,
                               extra={**c.to_dict(), "file": str(result.file), "compared_in": compared_in})
        if c.nonfinite:
            check.fail(f"{name}: {c.nonfinite} NaN, infinite or missing values against {result.file}")
        elif not c.allclose and metric.verdict == "pass":  # only at a rounding boundary: np.allclose decides
            check.fail(f"{name}: np.allclose(atol={atol:g}, rtol={rtol:g}) is False against {result.file}")
    if results:
        comparisons = [r.comparison for r in results]
        space = comparisons[0].space
        unit = "logit" if space == "logits" else "logprob"
        note = {"space": space, "prompts": [r.prompt_id for r in results]}
        check.info("logits.max_abs_error", max(c.max_abs_error for c in comparisons), unit, False,
                   extra=note)
        check.info("logits.max_rel_error", max(c.max_rel_error for c in comparisons), "ratio", False,
                   extra=note)
        check.info("logits.cosine_similarity", min(c.cosine_similarity for c in comparisons), "ratio", True,
                   extra=note)
        check.info("logits.top1_agreement", 100 * float(np.mean([c.top1_agreement for c in comparisons])), "%",
                   True, extra=note)
        check.info("logits.top5_agreement", 100 * float(np.mean([c.top5_agreement for c in comparisons])), "%",
                   True, extra=note)
