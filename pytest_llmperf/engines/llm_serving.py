"""The MindSpore llm-serving engine (the server of the Ascend MLPerf kit).

Protocol: ``POST {endpoint}/models/{model}/generate`` (one JSON answer) and
``.../generate_stream`` (one JSON object per line, optionally as SSE ``data:``
lines), with the body ``{"inputs": text, "parameters": {"max_new_tokens",
"do_sample": false, ...}, "stream": bool}``.  Each stream object holds ``data``,
a list whose first item has ``generated_text`` (the new piece) and, where the
server sends it, ``tokens`` (``id``, ``text``, ``special``) and ``details``
(``finish_reason``).

Prompts travel as text (the server tokenizes), so they are detokenized with the
model's tokenizer.  Output token ids are the server's where it sends them,
else the re-tokenized text.  The protocol has no log-probability API:
``score_path`` and ``loglikelihood`` raise a clear error.
"""

from __future__ import annotations

import time
from typing import Any, Sequence
from urllib.parse import urlparse

from ..errors import EngineError
from . import EngineOptions
from .base import EngineInfo, Generation, GenerationParams, ScoredPath, TokenCallback
from .event_loop import LoopThread, run_all
from .http_common import HttpClient, decode_json, endpoint_settings
from .model_files import eos_token_ids, load_tokenizer

ENGINE_SETTINGS = {
    "model": "the model's route name, /models/<model>/... (default llama2)",
    "stream": "use generate_stream (default true); false: generate, where every token arrives at the end",
    "dtype": "precision the server runs, for baseline keys (default: server)",
}


class LlmServingEngine:
    """A MindSpore llm-serving endpoint behind the engine interface."""

    def __init__(self, options: EngineOptions):
        self.endpoint, self.http, rest = endpoint_settings("llm-serving", options, ENGINE_SETTINGS, "http://127.0.0.1:8080")
        self.route = f"models/{rest.get('model', 'llama2')}"
        self.stream = bool(rest.get("stream", True))
        self.tokenizer = load_tokenizer(options.model_path)
        self.eos_token_ids = eos_token_ids(options.model_path, self.tokenizer)
        self._loop = LoopThread("llmperf-llm-serving-loop")
        self.returns_token_ids = False
        try:
            self._client: HttpClient = self._loop.run(self._open())
            self._loop.run(self._probe())
        except BaseException:
            self.close()
            raise
        notes = [f"endpoint {self.endpoint}", "prompts sent as detokenized text (the protocol takes text)"]
        if not self.stream:
            notes.append("non-streaming generate: every token is stamped when the whole answer arrives")
        import aiohttp

        self.info = EngineInfo(
            engine="llm-serving",
            model=options.model_name,
            device=options.device,
            device_name=f"server at {urlparse(self.endpoint).netloc}",
            dtype=str(rest.get("dtype", "server")),
            versions={"aiohttp": aiohttp.__version__},
            notes=tuple(notes),
        )

    def url(self, stream: bool) -> str:
        return f"{self.endpoint}/{self.route}/{'generate_stream' if stream else 'generate'}"

    async def _open(self) -> HttpClient:
        return HttpClient(self.endpoint, self.http)

    async def _probe(self) -> None:
        """One tiny non-streaming request: fails early, with the endpoint named, if the server is not there."""
        body = self._body(self.tokenizer("Hello", add_special_tokens=False)["input_ids"] or [0],
                          GenerationParams(max_new_tokens=1), stream=False)
        answer = await self._client.post_json(f"{self.route}/generate", body)
        first = _first_item(answer)
        if first is None or "generated_text" not in first:
            raise EngineError(f"{self.url(False)}: the answer has no generated_text: {str(answer)[:200]!r}; "
                              "is this an llm-serving endpoint?")

    def _body(self, prompt: Sequence[int], params: GenerationParams, stream: bool) -> dict[str, Any]:
        parameters: dict[str, Any] = {"max_new_tokens": params.max_new_tokens, "do_sample": False,
                                      "return_full_text": False}
        if params.min_new_tokens > 1:
            parameters["min_new_tokens"] = params.min_new_tokens
        if params.ignore_eos:
            parameters["ignore_eos"] = True
        return {"inputs": self.tokenizer.decode([int(t) for t in prompt]), "parameters": parameters,
                "stream": stream}

    # -- generation -------------------------------------------------------------

    def generate(
        self,
        prompts: Sequence[Sequence[int]],
        params: GenerationParams,
        on_token: TokenCallback | None = None,
    ) -> list[Generation]:
        """Concurrent requests; ``on_token`` is called from the engine's loop thread."""
        return self._loop.run(self._generate_all(prompts, params, on_token))

    async def _generate_all(self, prompts, params, on_token) -> list[Generation]:
        return await run_all(self._generate_one(i, p, params, on_token) for i, p in enumerate(prompts))

    async def _generate_one(self, index: int, prompt: Sequence[int], params: GenerationParams,
                            on_token: TokenCallback | None) -> Generation:
        collected = _Collected(self, index, on_token, self.url(self.stream))
        start = time.perf_counter()
        if self.stream:
            async with self._client.post_lines(f"{self.route}/generate_stream",
                                               self._body(prompt, params, True)) as lines:
                async for line in lines:
                    payload = line.strip()
                    if payload.startswith("data:"):
                        payload = payload[5:].strip()
                    if not payload or payload.startswith(("event:", "retry:", "id:", ":")):
                        continue
                    collected.item(_first_item(decode_json(collected.url, payload)), time.perf_counter(), True)
        else:
            answer = await self._client.post_json(f"{self.route}/generate", self._body(prompt, params, False))
            collected.item(_first_item(answer), time.perf_counter(), False)
        return collected.finish(start, params)

    # -- scoring: not in the protocol ------------------------------------------

    def _no_scores(self, what: str):
        raise EngineError(f"{self.endpoint}: the llm-serving protocol returns no log-probabilities, so {what} "
                          "cannot run on it; score with --llmperf-engine transformers, vllm or openai")

    def score_path(self, prompt: Sequence[int], path: Sequence[int], top_k: int | None = None) -> ScoredPath:
        self._no_scores("score_path (logits comparison)")

    def loglikelihood(self, requests: Sequence[tuple[Sequence[int], Sequence[int]]]) -> list[tuple[float, bool]]:
        self._no_scores("loglikelihood (MMLU)")

    def close(self) -> None:
        loop = getattr(self, "_loop", None)
        client = getattr(self, "_client", None)
        if loop is None:
            return
        if client is not None:
            try:
                loop.run(client.close(), timeout=10)
            except Exception:  # the session is going away anyway
                pass
            self._client = None  # type: ignore[assignment]
        loop.stop()


def _first_item(answer: Any) -> dict | None:
    """The generation record of an answer or stream object: ``data[0]``, ``[0]``, or the object itself."""
    if isinstance(answer, dict) and isinstance(answer.get("data"), list):
        answer = answer["data"]
    if isinstance(answer, list):
        answer = answer[0] if answer else None
    return answer if isinstance(answer, dict) else None


class _Collected:
    """Tokens (or text pieces) of one answer with arrival times."""

    def __init__(self, engine: LlmServingEngine, index: int, on_token: TokenCallback | None, url: str):
        self.engine, self.index, self.on_token, self.url = engine, index, on_token, url
        self.token_ids: list[int] = []
        self.token_times: list[float] = []
        self.pieces: list[tuple[str, float]] = []
        self.finish_reason: str | None = None
        self.items = 0

    def item(self, item: dict | None, now: float, streamed: bool) -> None:
        if item is None:
            raise EngineError(f"{self.url}: malformed answer (no data item with generated_text)")
        self.items += 1
        details = item.get("details")
        if isinstance(details, dict) and details.get("finish_reason"):
            self.finish_reason = str(details["finish_reason"])
        elif item.get("finish_reason"):
            self.finish_reason = str(item["finish_reason"])
        tokens = item.get("tokens")
        if isinstance(tokens, dict):
            tokens = [tokens]
        if isinstance(tokens, list) and tokens and all(isinstance(t, dict) and "id" in t for t in tokens):
            for token in tokens:
                self._add(int(token["id"]), now)
        elif item.get("generated_text"):
            self.pieces.append((str(item["generated_text"]), now))

    def _add(self, token: int, now: float) -> None:
        self.token_ids.append(token)
        self.token_times.append(now)
        if self.on_token is not None:
            self.on_token(self.index, token, now)

    def finish(self, start: float, params: GenerationParams) -> Generation:
        eos = self.engine.eos_token_ids
        if self.pieces and not self.token_ids:
            text = "".join(piece for piece, _ in self.pieces)
            for token in self.engine.tokenizer(text, add_special_tokens=False)["input_ids"]:
                self._add(int(token), self.pieces[-1][1])
            if self.finish_reason in ("eos", "stop", "eos_token") and not params.ignore_eos:
                self._add(min(eos), self.pieces[-1][1])  # text does not show the EOS the server stopped at
        ended = bool(self.token_ids) and self.token_ids[-1] in eos and not params.ignore_eos
        complete = ended or self.finish_reason is not None or len(self.token_ids) >= params.max_new_tokens
        if not complete:
            raise EngineError(f"{self.url}: the stream ended after {len(self.token_ids)} tokens, without EOS, "
                              f"a finish_reason or max_new_tokens ({params.max_new_tokens}) (truncated); "
                              "did the server crash? see its log")
        return Generation(tuple(self.token_ids), tuple(self.token_times), start, "eos" if ended else "length")
