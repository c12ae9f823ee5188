"""The part of an HTTP engine that does not depend on the protocol.

Both HTTP engines (openai, llm-serving) own one event-loop thread with one
``HttpClient`` on it, and implement one coroutine per request,
``_generate_one(index, prompt, params, on_token)``.  From that this base gives
them ``generate`` (concurrent requests, ``on_finish`` as each ends), ``submit``
(one request started at once: a server batches continuously, so the Server SUT
sends each query the moment LoadGen issues it) and ``close``.

``Collected`` gathers one answer's tokens with their arrival times; where a
server sends text instead of token ids, it re-tokenizes the text with the
model's tokenizer and gives each token the arrival time of the chunk that
completed it.
"""

from __future__ import annotations

import time
from typing import Any, Sequence
from urllib.parse import urlparse

from .base import EngineInfo, Generation, GenerationParams, TokenCallback
from .event_loop import LoopThread, generate_each
from .http_common import HttpClient, HttpSettings


class HttpEngine:
    """Loop thread, client, ``generate`` / ``submit`` / ``close`` for an HTTP engine."""

    endpoint: str
    http: HttpSettings
    _loop: LoopThread | None = None
    _client: HttpClient | None = None

    def _connect(self, thread_name: str) -> None:
        """Start the loop and open the client on it."""
        self._loop = LoopThread(thread_name)
        self._client = self._loop.run(self._open())

    async def _open(self) -> HttpClient:
        return HttpClient(self.endpoint, self.http)  # built on the loop: aiohttp binds to it

    def _info(self, engine: str, options, rest: dict[str, Any], notes: list[str]) -> EngineInfo:
        import aiohttp

        return EngineInfo(
            engine=engine,
            model=options.model_name,
            device=options.device,
            # The host, not the port: a port says nothing of the hardware, and a server started on a
            # free port gets a new one each run (the name is part of performance baselines' workload).
            device_name=f"server at {urlparse(self.endpoint).hostname}",
            dtype=str(rest.get("dtype", "server")),
            versions={"aiohttp": aiohttp.__version__},
            notes=tuple(notes),
        )

    async def _generate_one(self, index: int, prompt: Sequence[int], params: GenerationParams,
                            on_token: TokenCallback | None) -> Generation:
        raise NotImplementedError

    def generate(self, prompts: Sequence[Sequence[int]], params: GenerationParams,
                 on_token: TokenCallback | None = None, on_finish=None) -> list[Generation]:
        """Concurrent requests; the callbacks are called from the engine's loop thread."""
        return self._loop.run(generate_each(self._generate_one, prompts, params, on_token, on_finish))

    def submit(self, tag: int, prompt: Sequence[int], params: GenerationParams,
               on_token: TokenCallback | None, on_done) -> None:
        """Send one request now; ``on_done(tag, generation or exception)`` when it ends."""
        self._loop.submit(self._generate_one(tag, prompt, params, on_token), tag, on_done)

    def abort(self) -> None:
        """Stop now (the session was interrupted): cancel every request in flight (closing its
        connection, which a server takes as the client going away)."""
        if self._loop is not None:
            self._loop.cancel_requests()

    def close(self) -> None:
        loop, client = self._loop, self._client
        if loop is None:
            return
        if client is not None:
            try:
                loop.run(client.close(), timeout=10)
            except Exception:  # the session is going away anyway
                pass
            self._client = None
        loop.stop()


class Collected:
    """One answer's tokens (or text pieces) with arrival times, reported through ``on_token``."""

    def __init__(self, tokenizer, index: int, on_token: TokenCallback | None, url: str):
        self.tokenizer, self.index, self.on_token, self.url = tokenizer, index, on_token, url
        self.token_ids: list[int] = []
        self.token_times: list[float] = []
        self.pieces: list[tuple[str, float]] = []  # text mode: (text, arrival time)
        self.reported = 0  # text mode: tokens already given to on_token
        self.finish_reason: str | None = None

    @property
    def text_mode(self) -> bool:
        return bool(self.pieces) and not self.token_ids

    def add(self, token: int, now: float) -> None:
        self.token_ids.append(token)
        self.token_times.append(now)
        if self.on_token is not None:
            self.on_token(self.index, token, now)

    def add_text(self, text: str, now: float, report: bool) -> None:
        """A text piece; with ``report``, tokens whose tokenization is settled go to ``on_token`` now."""
        self.pieces.append((text, now))
        if report:
            self._report_text(final=False)

    def _report_text(self, final: bool) -> None:
        """Report re-tokenized tokens not yet reported: all but the last (which may still grow), unless final."""
        if self.on_token is None:
            return
        text = "".join(piece for piece, _ in self.pieces)
        ids = list(self.tokenizer(text, add_special_tokens=False)["input_ids"]) if text else []
        settled = len(ids) if final else max(len(ids) - 1, 1 if ids else 0)
        now = self.pieces[-1][1] if self.pieces else time.perf_counter()
        for position in range(self.reported, settled):
            self.on_token(self.index, ids[position], now)
        self.reported = max(self.reported, settled)

    def settle_text(self, stopped_at_eos: bool, eos: int) -> None:
        """Text mode, at the end: the tokens are the re-tokenized text (each stamped with the
        arrival of the chunk that completed it), plus ``eos`` where the server stopped at EOS,
        which text does not show (counted as the other engines count it)."""
        self._report_text(final=True)
        text = "".join(piece for piece, _ in self.pieces)
        encoded = self.tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
        ends, total = [], 0
        for piece, arrived in self.pieces:
            total += len(piece)
            ends.append((total, arrived))
        times, cursor = [], 0
        for _, end in encoded["offset_mapping"]:
            while cursor < len(ends) - 1 and ends[cursor][0] < end:
                cursor += 1
            times.append(ends[cursor][1])
        self.token_ids, self.token_times = [int(t) for t in encoded["input_ids"]], times
        if stopped_at_eos:
            self.token_ids.append(eos)
            self.token_times.append(self.pieces[-1][1])
            if self.on_token is not None:
                self.on_token(self.index, eos, self.pieces[-1][1])

    def generation(self, start: float, params: GenerationParams, eos_token_ids: frozenset[int],
                   server_token_count: int | None = None) -> Generation:
        ended = bool(self.token_ids) and self.token_ids[-1] in eos_token_ids and not params.ignore_eos
        return Generation(tuple(self.token_ids), tuple(self.token_times), start, "eos" if ended else "length",
                          server_token_count=server_token_count)
