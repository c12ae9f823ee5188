"""What an engine behind an API may lack, and the one line a test that needs it reports.

A server that cannot do something (return prompt log-probabilities by token id,
return the token ids of its output, honour ``min_tokens``) is a fact about the
server, not a failed gate: tests that need it SKIP with a line naming the server and
the capability, unless ``[engine.openai] require`` lists the capability (then they
FAIL with the same line).  ``EngineInfo.capabilities`` holds what was found; it goes
into results.json with the rest of the engine's description.
"""

from __future__ import annotations

from typing import Iterable

from ..errors import UsageError

CAPABILITIES = {
    "token_prompts": "prompts as token ids",
    "output_token_ids": "the token ids of its output",
    "prompt_logprobs": "prompt log-probabilities keyed by token id (echo + logprobs)",
    "min_tokens": "min_tokens (no EOS before that many tokens)",
    "ignore_eos": "ignore_eos (generation through EOS)",
}
REQUIRE_SETTING = "require"


def required(value: object, table: str) -> frozenset[str]:
    """The ``require`` setting of ``table`` (a list of capability names), checked."""
    if value is None:
        return frozenset()
    names = [value] if isinstance(value, str) else value
    if not isinstance(names, (list, tuple)) or not all(isinstance(n, str) for n in names):
        raise UsageError(f"{table} {REQUIRE_SETTING}", f"{value!r} is not a list of capability names",
                         f"write e.g. {REQUIRE_SETTING} = [\"output_token_ids\"]; known: {', '.join(CAPABILITIES)}")
    unknown = sorted(set(names) - set(CAPABILITIES))
    if unknown:
        raise UsageError(f"{table} {REQUIRE_SETTING}", f"{unknown[0]!r} is not a capability",
                         f"use names among: {', '.join(CAPABILITIES)}")
    return frozenset(names)


def lacking(info, capability: str, needed_by: str, required_names: Iterable[str] = (),
            table: str = "[engine.<name>]") -> str | None:
    """The line for a test (``needed_by``) whose engine lacks ``capability``; None when it has it."""
    if capability not in CAPABILITIES:
        raise ValueError(f"unknown capability {capability!r}; known: {', '.join(CAPABILITIES)}")
    if info.capabilities.get(capability) is not False:  # None: accepted, not seen ignored
        return None
    server = info.server or info.engine
    line = (f"{needed_by} needs {CAPABILITIES[capability]} ({capability}), which the server behind engine "
            f"{info.engine} ({server}, {info.device_name}) does not provide")
    if capability in set(required_names):
        return f"{line}; the profile requires it ({table} {REQUIRE_SETTING})"
    return f"{line}: skipped, not failed (list it in the profile's {table} {REQUIRE_SETTING} to fail instead)"
