"""What the HTTP engines share: settings, one aiohttp session, errors that name the endpoint, stream parsing.

Every failure a server can cause (refused connection, HTTP error, timeout, a
malformed or cut-off stream, a server that dies mid-answer) becomes one
``EngineError`` whose message starts with the URL.  The API key is read from an
environment variable, sent as a header and never put in a message.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import os
import re
from typing import Any, AsyncIterator

from ..errors import EngineError, UsageError

API_KEY_VARIABLES = ("LLMPERF_API_KEY", "OPENAI_API_KEY")
#: How a server that answers a request it cannot parse with a 5xx says so (llama-cpp-python's
#: server: HTTP 500 carrying pydantic's "validation error"); such an answer is about the request.
VALIDATION_MESSAGE = re.compile(r"validation error|validationerror|invalid request|invalid_request|unprocessable",
                                re.IGNORECASE)


class HttpStatusError(EngineError):
    """An HTTP error answer; ``status`` and the server's ``message`` kept for the caller to judge."""

    def __init__(self, url: str, status: int, reason: str, message: str):
        self.url, self.status, self.message = url, status, message
        super().__init__(f"{url}: HTTP {status} {reason}: {message}")

    @property
    def rejects_request(self) -> bool:
        """True when the server refused the request itself (a parameter it does not take): any 4xx
        but 401/403 (a key), 404 (a path) and 429 (a rate limit), or a 5xx whose message is a
        request-validation error."""
        if 400 <= self.status < 500:
            return self.status not in (401, 403, 404, 429)
        return bool(VALIDATION_MESSAGE.search(self.message))


@dataclasses.dataclass(frozen=True)
class HttpSettings:
    """Connection settings of an HTTP engine (the profile's ``[engine.openai]`` / ``[engine.llm-serving]``)."""

    connect_timeout: float = 10.0
    """Seconds to open a connection before giving up."""
    read_timeout: float = 300.0
    """Seconds of silence from the server (between two reads) before giving up."""
    max_concurrency: int = 64
    """Requests in flight at once."""
    api_key_env: str = ""
    """Environment variable holding the API key; empty = LLMPERF_API_KEY, then OPENAI_API_KEY."""

    @classmethod
    def from_settings(cls, engine: str, settings: dict[str, Any]) -> tuple["HttpSettings", dict[str, Any]]:
        """Split an engine's settings into these and the rest (validated by the engine)."""
        own = {f.name: f.type for f in dataclasses.fields(cls)}
        values, rest = {}, {}
        for key, value in settings.items():
            if key not in own:
                rest[key] = value
                continue
            expected = {"float": (int, float), "int": (int,), "str": (str,)}[str(own[key])]
            if not isinstance(value, expected) or isinstance(value, bool):
                raise UsageError(f"[engine.{engine}] {key}", f"{value!r} is not a {own[key]}",
                                 f"set {key} to a {own[key]} in the profile (--llmperf-profile)")
            values[key] = value
        http = cls(**values)
        if http.connect_timeout <= 0 or http.read_timeout <= 0 or http.max_concurrency < 1:
            raise UsageError(f"[engine.{engine}]", "timeouts must be > 0 and max_concurrency >= 1",
                             "fix the values in the profile (--llmperf-profile)")
        return http, rest

    def api_key(self) -> str | None:
        names = (self.api_key_env,) if self.api_key_env else API_KEY_VARIABLES
        for name in names:
            value = os.environ.get(name)
            if value:
                return value
        return None


def endpoint_settings(engine: str, options, own_settings: tuple[str, ...],
                      example_url: str) -> tuple[str, HttpSettings, dict[str, Any]]:
    """The endpoint, HTTP settings and the engine's own settings of an HTTP engine.

    A missing endpoint or a setting no one knows is a usage error naming the option or table.
    """
    if not options.endpoint:
        raise UsageError("--llmperf-endpoint", f"the {engine} engine needs the server's base URL",
                         f"pass e.g. --llmperf-endpoint {example_url}")
    http, rest = HttpSettings.from_settings(engine, options.settings)
    unknown = sorted(set(rest) - set(own_settings))
    if unknown:
        known = ", ".join([*own_settings, "connect_timeout", "read_timeout", "max_concurrency", "api_key_env"])
        raise UsageError(f"[engine.{engine}] {unknown[0]}", f"is not a setting of the {engine} engine",
                         f"use one of: {known}")
    return options.endpoint.rstrip("/"), http, rest


class HttpClient:
    """An aiohttp session bound to one base URL; create and use it on one event loop."""

    def __init__(self, base_url: str, settings: HttpSettings):
        import aiohttp

        self.base_url = base_url.rstrip("/")
        self.settings = settings
        headers = {"Accept": "application/json, text/event-stream"}
        key = settings.api_key()
        if key:
            headers["Authorization"] = f"Bearer {key}"
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=settings.connect_timeout,
                                        sock_read=settings.read_timeout)
        connector = aiohttp.TCPConnector(limit=settings.max_concurrency)
        self.session = aiohttp.ClientSession(headers=headers, timeout=timeout, connector=connector)
        self.slots = asyncio.Semaphore(settings.max_concurrency)

    def url(self, path: str) -> str:
        return f"{self.base_url}/{path.lstrip('/')}"

    async def close(self) -> None:
        await self.session.close()

    @contextlib.asynccontextmanager
    async def _errors(self, url: str):
        """Turn every transport failure into an EngineError that names ``url``."""
        import aiohttp

        try:
            yield
        except EngineError:
            raise
        except aiohttp.ClientConnectorError as exc:
            raise EngineError(f"{url}: cannot connect ({exc.os_error.strerror or exc}); is the server running? "
                              "check --llmperf-endpoint") from None
        except (asyncio.TimeoutError, aiohttp.ServerTimeoutError):
            raise EngineError(f"{url}: no answer within the timeout (connect {self.settings.connect_timeout:g} s, "
                              f"read {self.settings.read_timeout:g} s); raise read_timeout in the profile's "
                              "engine table if the server is just slow") from None
        except (aiohttp.ServerDisconnectedError, aiohttp.ClientPayloadError, ConnectionResetError) as exc:
            raise EngineError(f"{url}: the server closed the connection in the middle of an answer "
                              f"({type(exc).__name__}); did it crash? see its log") from None
        except aiohttp.ClientError as exc:
            raise EngineError(f"{url}: request failed ({type(exc).__name__}: {exc})") from None

    async def _raise_for_status(self, url: str, response) -> None:
        if response.status < 400:
            return
        body = await response.text(errors="replace")
        raise HttpStatusError(url, response.status, str(response.reason), server_message(body))

    async def get_json(self, path: str) -> Any:
        """GET ``path`` under the base URL (or a whole URL) and decode the JSON answer."""
        url = path if path.startswith(("http://", "https://")) else self.url(path)
        async with self.slots, self._errors(url):
            async with self.session.get(url) as response:
                await self._raise_for_status(url, response)
                return decode_json(url, await response.text(errors="replace"))

    async def post_json(self, path: str, body: dict) -> Any:
        url = self.url(path)
        async with self.slots, self._errors(url):
            async with self.session.post(url, json=body) as response:
                await self._raise_for_status(url, response)
                return decode_json(url, await response.text(errors="replace"))

    @contextlib.asynccontextmanager
    async def post_lines(self, path: str, body: dict) -> AsyncIterator[AsyncIterator[str]]:
        """POST and yield the response body as an async iterator of text lines (no line-length limit)."""
        url = self.url(path)
        async with self.slots, self._errors(url):
            async with self.session.post(url, json=body) as response:
                await self._raise_for_status(url, response)
                yield _lines(response)


async def _lines(response) -> AsyncIterator[str]:
    pending = b""
    async for chunk in response.content.iter_any():
        pending += chunk
        *complete, pending = pending.split(b"\n")
        for line in complete:
            yield line.rstrip(b"\r").decode("utf-8", errors="replace")
    if pending:
        yield pending.rstrip(b"\r").decode("utf-8", errors="replace")


async def sse_events(lines: AsyncIterator[str]) -> AsyncIterator[str]:
    """The ``data`` payloads of a server-sent-event stream (multi-line data joined with newlines)."""
    data: list[str] = []
    async for line in lines:
        if not line:
            if data:
                yield "\n".join(data)
                data = []
            continue
        if line.startswith(":"):
            continue  # a comment (keep-alive)
        field, _, value = line.partition(":")
        if field == "data":
            data.append(value[1:] if value.startswith(" ") else value)
    if data:
        yield "\n".join(data)


def decode_json(url: str, text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        raise EngineError(f"{url}: the answer is not JSON: {text[:200]!r}") from None


def server_message(body: str) -> str:
    """The human part of an error body: OpenAI's ``error.message``, a ``detail``/``message``, or the text."""
    try:
        data = json.loads(body)
    except json.JSONDecodeError:
        return body.strip()[:500] or "(empty body)"
    if isinstance(data, dict):
        error = data.get("error")
        if isinstance(error, dict) and error.get("message"):
            return str(error["message"])[:500]
        for key in ("message", "detail", "error"):
            if data.get(key):
                return str(data[key])[:500]
    return body.strip()[:500]
