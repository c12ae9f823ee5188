"""``--llmperf-compare REF``: the reference side (A) of a paired A/B session.

The setup under test (B) is what the other options say.  REF says how the reference differs from it,
as comma-separated ``key=value`` pairs:

* ``endpoint=URL``: another server for the HTTP engines (main's server beside the pull request's);
* ``model=PATH``: another model folder (it must share the tokenizer: both sides get the same token ids);
* ``dtype=float32|bfloat16|float16`` and ``max_batch_size=N``: engine options every engine takes;
* ``<engine>.<setting>=VALUE``: a key of the profile's ``[engine.<engine>]`` table, e.g.
  ``vllm.kv_cache_dtype=fp8``, ``vllm.max_num_seqs=4``, ``transformers.compile=true``.

``same`` names no difference: an A/A session, two loads of one setup, which shows the gate's noise floor.

Values are read as TOML scalars where they parse as one (``4``, ``0.9``, ``true``), else as text.
Everything not named is the same on both sides.
"""

from __future__ import annotations

import argparse
import dataclasses
import tomllib
from typing import Any

from .parsers import parse_endpoint

DTYPES = ("float32", "bfloat16", "float16", "auto")


@dataclasses.dataclass(frozen=True)
class CompareSpec:
    """How the reference side differs from the side under test."""

    text: str
    """REF as given (shown in the summary and recorded in results.json)."""
    endpoint: str | None = None
    model: str | None = None
    dtype: str | None = None
    max_batch_size: int | None = None
    settings: tuple[tuple[str, str, Any], ...] = ()
    """``(engine, key, value)``: overrides of ``[engine.<engine>]`` keys."""

    def engine_settings(self, engine: str, base: dict[str, Any]) -> dict[str, Any]:
        """``base`` (the profile's ``[engine.<engine>]``) with this reference's overrides for ``engine``."""
        found = dict(base)
        found.update({key: value for name, key, value in self.settings if name == engine})
        return found

    def describe(self) -> dict[str, Any]:
        """What results.json records of the reference."""
        found: dict[str, Any] = {"spec": self.text}
        for name in ("endpoint", "model", "dtype", "max_batch_size"):
            if getattr(self, name) is not None:
                found[name] = getattr(self, name)
        if self.settings:
            found["engine_settings"] = {f"{engine}.{key}": value for engine, key, value in self.settings}
        return found


def _scalar(text: str) -> Any:
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def parse_compare(text: str) -> CompareSpec:
    """REF (module docstring) -> ``CompareSpec``; argparse's error names the bad pair and the forms allowed."""
    forms = ("same, endpoint=URL, model=PATH, dtype=float32|bfloat16|float16, max_batch_size=N, "
             "<engine>.<setting>=VALUE (e.g. vllm.max_num_seqs=4)")
    fields: dict[str, Any] = {}
    settings: list[tuple[str, str, Any]] = []
    if text.strip() == "same":
        return CompareSpec(text="same")
    pairs = [part.strip() for part in text.split(",") if part.strip()]
    if not pairs:
        raise argparse.ArgumentTypeError(f"--llmperf-compare {text!r} names no difference; pass one of: {forms}")
    for pair in pairs:
        key, sep, value = pair.partition("=")
        key, value = key.strip(), value.strip()
        if not sep or not key or not value:
            raise argparse.ArgumentTypeError(f"{pair!r} is not key=value; pass one of: {forms}")
        if "." in key:
            engine, _, setting = key.partition(".")
            if not engine or not setting:
                raise argparse.ArgumentTypeError(f"{key!r} is not <engine>.<setting>; pass e.g. vllm.max_num_seqs=4")
            settings.append((engine, setting, _scalar(value)))
        elif key == "endpoint":
            fields["endpoint"] = parse_endpoint(value)
        elif key == "model":
            fields["model"] = value
        elif key == "dtype":
            if value not in DTYPES:
                raise argparse.ArgumentTypeError(f"dtype={value!r}: choose from {', '.join(DTYPES)}")
            fields["dtype"] = value
        elif key == "max_batch_size":
            if not value.isdigit() or int(value) < 1:
                raise argparse.ArgumentTypeError(f"max_batch_size={value!r}: pass a whole number >= 1")
            fields["max_batch_size"] = int(value)
        else:
            raise argparse.ArgumentTypeError(f"unknown key {key!r} in {pair!r}; pass one of: {forms}")
    return CompareSpec(text=text, settings=tuple(settings), **fields)
