"""How far one engine's logits are from another's: ``compare`` (``np.allclose`` with max absolute and
relative error, cosine similarity and top-1 / top-5 agreement), in logits or in log-softmax space.

Engines that only return log-probabilities (often only the top few, the rest ``-inf``) are compared in
log-softmax space: the baseline's logits go through ``log_softmax`` and only the entries the engine
returned are compared.  Reading and writing baselines and judging them is ``gating.logits``.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np


@dataclasses.dataclass(frozen=True)
class LogitsPrompt:
    """One prompt of the fixed set."""

    id: str
    """Stable name; also the ``.npy`` file's name."""
    text: str
    """What the user asks (kept in the manifest for people reading it)."""
    token_ids: tuple[int, ...]
    """The prompt as the engine receives it."""


@dataclasses.dataclass(frozen=True)
class Comparison:
    """How one prompt's measured scores compare with its baseline."""

    space: str
    """``logits``, or ``logprobs`` (baseline converted with log_softmax)."""
    positions: int
    """Rows compared (K)."""
    entries: int
    """Values compared in all (K x vocab for logits; the returned entries for logprobs)."""
    nonfinite: int
    """Compared entries where either side is NaN or infinite, plus positions where the engine returned
    nothing (each one fails the check)."""
    max_abs_error: float
    """max |measured - baseline| over finite entries."""
    max_rel_error: float
    """max |measured - baseline| / |baseline| over finite entries (inf where the baseline is 0)."""
    cosine_similarity: float
    """Smallest per-position cosine similarity."""
    top1_agreement: float
    """Fraction of positions with the same argmax."""
    top5_agreement: float
    """Mean overlap of the two top-5 sets, as a fraction."""
    allclose_error: float
    """max(0, |measured - baseline| - rtol x |baseline|): np.allclose holds when this is <= atol."""
    allclose: bool
    """np.allclose over the compared entries, and nothing non-finite or missing."""
    worst: dict[str, Any]
    """Where ``allclose_error`` peaks: position, token id, measured and baseline values."""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def log_softmax(values: np.ndarray) -> np.ndarray:
    values = np.asarray(values, dtype=np.float64)
    peak = np.max(values, axis=-1, keepdims=True)
    shifted = values - peak
    return shifted - np.log(np.sum(np.exp(shifted), axis=-1, keepdims=True))


def _rank_safe(row: np.ndarray) -> np.ndarray:
    """NaN ranks lowest, so a NaN is never a 'top' token."""
    return np.where(np.isnan(row), -np.inf, row)


def _top_overlap(a: np.ndarray, b: np.ndarray, k: int) -> float:
    k = min(k, a.size)
    if k == 0:
        return 0.0
    top_a = set(np.argpartition(-_rank_safe(a), k - 1)[:k].tolist())
    top_b = set(np.argpartition(-_rank_safe(b), k - 1)[:k].tolist())
    return len(top_a & top_b) / k


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    norm_a, norm_b = float(np.linalg.norm(a)), float(np.linalg.norm(b))
    if norm_a == 0.0 or norm_b == 0.0:
        return 1.0 if norm_a == norm_b else 0.0
    return float(np.dot(a, b)) / (norm_a * norm_b)


def compare(measured: np.ndarray, baseline: np.ndarray, *, atol: float, rtol: float,
            space: str = "logits") -> Comparison:
    """Compare two K x vocab arrays; never raises on NaN or Inf, never passes with one."""
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):  # non-finite values are counted instead
        return _compare(measured, baseline, atol, rtol, space)


def _compare(measured: np.ndarray, baseline: np.ndarray, atol: float, rtol: float, space: str) -> Comparison:
    measured = np.asarray(measured, dtype=np.float64)
    baseline = np.asarray(baseline, dtype=np.float64)
    if measured.ndim != 2 or measured.shape != baseline.shape:
        raise ValueError(f"shapes differ: measured {measured.shape}, baseline {baseline.shape}")
    if space == "logprobs":
        baseline = log_softmax(baseline)
        compared = ~np.isneginf(measured)  # what the engine returned; a NaN counts, and fails
    elif space == "logits":
        compared = np.ones(measured.shape, dtype=bool)
    else:
        raise ValueError(f"unknown score space {space!r}")
    finite = compared & np.isfinite(measured) & np.isfinite(baseline)
    nonfinite = int(np.count_nonzero(compared & ~finite))
    empty_rows = int(np.count_nonzero(~compared.any(axis=1)))
    difference = np.abs(measured - baseline)
    relative = np.where(baseline != 0, difference / np.abs(baseline), np.where(difference == 0, 0.0, np.inf))
    excess = np.where(finite, difference - rtol * np.abs(baseline), -np.inf)
    has_finite = bool(finite.any())
    cosines, top1, top5 = [], [], []
    for row in range(measured.shape[0]):
        keep = finite[row]
        a, b = measured[row, keep], baseline[row, keep]
        cosines.append(_cosine(a, b) if a.size else float("nan"))
        top1.append(bool(a.size) and int(np.argmax(_rank_safe(a))) == int(np.argmax(_rank_safe(b))))
        top5.append(_top_overlap(a, b, 5))
    if has_finite:
        position, token = np.unravel_index(int(np.argmax(excess)), excess.shape)
        worst = {"position": int(position), "token_id": int(token),
                 "measured": float(measured[position, token]), "baseline": float(baseline[position, token])}
    else:
        worst = {}
    clean = nonfinite == 0 and empty_rows == 0 and has_finite
    allclose = clean and bool(np.allclose(measured[finite], baseline[finite], atol=atol, rtol=rtol))
    return Comparison(
        space=space,
        positions=int(measured.shape[0]),
        entries=int(np.count_nonzero(compared)),
        nonfinite=nonfinite + empty_rows,
        max_abs_error=float(difference[finite].max()) if has_finite else float("nan"),
        max_rel_error=float(relative[finite].max()) if has_finite else float("nan"),
        cosine_similarity=float(np.min(cosines)) if cosines else float("nan"),  # NaN (an empty row) wins
        top1_agreement=float(np.mean(top1)) if top1 else float("nan"),
        top5_agreement=float(np.mean(top5)) if top5 else float("nan"),
        allclose_error=max(0.0, float(excess.max())) if clean else float("inf"),
        allclose=allclose,
        worst=worst,
    )
