"""What engines that do not hold a transformers model read from the checkpoint folder.

vLLM and the HTTP engines stop on the same end-of-sequence tokens as the
transformers engine: those of ``config.json``, ``generation_config.json`` and the
tokenizer.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..models import load_tokenizer


def _listed(value) -> set[int]:
    if value is None:
        return set()
    if isinstance(value, list):
        return {int(v) for v in value}
    return {int(value)}


def eos_token_ids(model_path: str, tokenizer=None) -> frozenset[int]:
    """End-of-sequence ids named by the checkpoint (and its tokenizer, loaded if not given)."""
    folder = Path(model_path)
    ids: set[int] = set()
    for name in ("config.json", "generation_config.json"):
        file = folder / name
        if file.is_file():
            ids |= _listed(json.loads(file.read_text(encoding="utf-8")).get("eos_token_id"))
    if tokenizer is None:
        tokenizer = load_tokenizer(model_path)
    if tokenizer.eos_token_id is not None:
        ids.add(int(tokenizer.eos_token_id))
    return frozenset(ids)


def vocab_size(model_path: str, tokenizer=None) -> int:
    """Rows of the model's output layer (``config.json``), else the tokenizer's size."""
    file = Path(model_path) / "config.json"
    if file.is_file():
        value = json.loads(file.read_text(encoding="utf-8")).get("vocab_size")
        if value:
            return int(value)
    if tokenizer is None:
        tokenizer = load_tokenizer(model_path)
    return len(tokenizer)
