"""Which server answers behind an OpenAI-compatible endpoint, and what it is known to do.

The identity is part of the engine's key (``openai-vllm``, ``openai-llama-cpp-python``)
in results.json and in baselines, so one server is never judged against another's
numbers.  It comes from what the server says about itself, else from the profile:

* vLLM: ``owned_by: "vllm"`` in ``/v1/models``; its version from ``GET /version``.
* llama-cpp-python's server: the title of its ``/openapi.json`` (``llama.cpp Python API``)
  and that document's version.
* anything else: ``server = "NAME"`` in ``[engine.openai]`` (also overrides the above);
  unset, the server is ``unidentified`` and the notes say how to name it.

The version is recorded (results.json ``versions``), not keyed on: a new release of a
server is judged against the baseline of the last one, as an upgrade of an in-process
engine is; that comparison is what the baselines are for.
"""

from __future__ import annotations

import dataclasses
from typing import Any
from urllib.parse import urlparse

from ..errors import EngineError, UsageError

UNIDENTIFIED = "unidentified"
#: ``owned_by`` values of ``/v1/models`` that name the software.
OWNERS = {"vllm": "vllm"}
#: Words of an ``/openapi.json`` title that name the software.
TITLES = {"llama.cpp python api": "llama-cpp-python"}
#: Servers known to cut a stream short on purpose: the cause and the fix, for the error message.
STREAM_CUTS = {
    "llama-cpp-python": "llama-cpp-python's server stops a running stream when another request arrives "
                        "(its default); start it with --interrupt_requests False",
}


@dataclasses.dataclass(frozen=True)
class ServerIdentity:
    """The software (and version, where it says) serving the endpoint."""

    software: str
    version: str | None
    source: str
    """How it was found: ``GET /version``, ``GET /openapi.json``, ``[engine.openai] server``."""

    @property
    def label(self) -> str:
        return f"{self.software} {self.version}" if self.version else self.software

    def engine_name(self, engine: str) -> str:
        """The engine's key: ``openai-vllm``."""
        return f"{engine}-{self.software}"

    def stream_cut_cause(self) -> str | None:
        return STREAM_CUTS.get(self.software)


def root_url(endpoint: str) -> str:
    """``http://host:port`` of ``http://host:port/v1`` (where /version and /openapi.json live)."""
    base = endpoint.rstrip("/")
    if base.endswith("/v1"):
        return base[: -len("/v1")]
    parsed = urlparse(base)
    return f"{parsed.scheme}://{parsed.netloc}"


def named_server(value: Any) -> str:
    """The ``server`` setting, checked: a non-empty name of letters, digits, '.', '_' and '-'."""
    text = str(value).strip().lower() if isinstance(value, str) else ""
    if not text or not all(c.isalnum() or c in "._-" for c in text):
        raise UsageError("[engine.openai] server", f"{value!r} is not a server name",
                         'set e.g. server = "llama-cpp-python" (letters, digits, ".", "_", "-") in the profile')
    return text


async def identify(client, endpoint: str, listing: Any, setting: Any = None) -> ServerIdentity:
    """The identity of the server at ``endpoint``; ``listing`` is its ``/models`` answer."""
    software, version, source = None, None, ""
    owners = {str(m.get("owned_by", "")).lower() for m in (listing.get("data") or []) if isinstance(m, dict)} \
        if isinstance(listing, dict) else set()
    for owner, name in OWNERS.items():
        if owner in owners:
            software, source = name, f"owned_by of {endpoint}/models"
            answer = await _optional_json(client, f"{root_url(endpoint)}/version")
            if isinstance(answer, dict) and answer.get("version"):
                version, source = str(answer["version"]), f"GET {root_url(endpoint)}/version"
    if software is None:
        document = await _optional_json(client, f"{root_url(endpoint)}/openapi.json")
        info = document.get("info") if isinstance(document, dict) else None
        title = str(info.get("title", "")).lower() if isinstance(info, dict) else ""
        for words, name in TITLES.items():
            if words in title:
                software, source = name, f"GET {root_url(endpoint)}/openapi.json"
                version = str(info["version"]) if info.get("version") else None
    if setting is not None:
        return ServerIdentity(named_server(setting), version if software == named_server(setting) else None,
                              "[engine.openai] server")
    return ServerIdentity(software or UNIDENTIFIED, version, source or "nothing the server said")


async def _optional_json(client, url: str) -> Any:
    """The JSON at ``url``, or None where the server has no such page (or answers something else)."""
    try:
        return await client.get_json(url)
    except EngineError:
        return None
