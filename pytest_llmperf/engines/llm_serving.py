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

from ..errors import EngineError
from .base import EngineOptions, Generation, GenerationParams, ScoredPath, TokenCallback
from .http_common import decode_json, endpoint_settings
from .http_engine import Collected, HttpEngine
from .model_files import eos_token_ids, load_tokenizer

ENGINE_SETTINGS = {
    "model": "the model's route name, /models/<model>/... (default llama2)",
    "stream": "use generate_stream (default true); false: generate, where every token arrives at the end",
    "dtype": "precision the server runs, for baseline keys (default: server)",
}


class LlmServingEngine(HttpEngine):
    """A MindSpore llm-serving endpoint behind the engine interface."""

    def __init__(self, options: EngineOptions):
        self.endpoint, self.http, rest = endpoint_settings("llm-serving", options, ENGINE_SETTINGS, "http://127.0.0.1:8080")
        self.route = f"models/{rest.get('model', 'llama2')}"
        self.stream = bool(rest.get("stream", True))
        self.tokenizer = load_tokenizer(options.model_path)
        self.eos_token_ids = eos_token_ids(options.model_path, self.tokenizer)
        self.returns_token_ids = False
        try:
            self._connect("llmperf-llm-serving-loop")
            self._loop.run(self._probe())
        except BaseException:
            self.close()
            raise
        notes = [f"endpoint {self.endpoint}", "prompts sent as detokenized text (the protocol takes text)"]
        if not self.stream:
            notes.append("non-streaming generate: every token is stamped when the whole answer arrives")
        self.info = self._info("llm-serving", options, rest, notes)

    def url(self, stream: bool) -> str:
        return f"{self.endpoint}/{self.route}/{'generate_stream' if stream else 'generate'}"

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

    async def _generate_one(self, index: int, prompt: Sequence[int], params: GenerationParams,
                            on_token: TokenCallback | None) -> Generation:
        collected = _Collected(self.tokenizer, index, on_token, self.url(self.stream))
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
        return collected.finish(start, params, self.eos_token_ids)

    # -- scoring: not in the protocol ------------------------------------------

    def _no_scores(self, what: str):
        raise EngineError(f"{self.endpoint}: the llm-serving protocol returns no log-probabilities, so {what} "
                          "cannot run on it; score with --llmperf-engine transformers, vllm or openai")

    def score_path(self, prompt: Sequence[int], path: Sequence[int], top_k: int | None = None) -> ScoredPath:
        self._no_scores("score_path (logits comparison)")

    def loglikelihood(self, requests: Sequence[tuple[Sequence[int], Sequence[int]]]) -> list[tuple[float, bool]]:
        self._no_scores("loglikelihood (MMLU)")

def _first_item(answer: Any) -> dict | None:
    """The generation record of an answer or stream object: ``data[0]``, ``[0]``, or the object itself."""
    if isinstance(answer, dict) and isinstance(answer.get("data"), list):
        answer = answer["data"]
    if isinstance(answer, list):
        answer = answer[0] if answer else None
    return answer if isinstance(answer, dict) else None


class _Collected(Collected):
    """One answer: the server's token ids where it sends them, else its text pieces."""

    def item(self, item: dict | None, now: float, streamed: bool) -> None:
        if item is None:
            raise EngineError(f"{self.url}: malformed answer (no data item with generated_text)")
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
                self.add(int(token["id"]), now)
        elif item.get("generated_text"):
            self.add_text(str(item["generated_text"]), now, report=streamed)

    def finish(self, start: float, params: GenerationParams, eos: frozenset[int]) -> Generation:
        if self.text_mode:
            stopped = self.finish_reason in ("eos", "stop", "eos_token") and not params.ignore_eos
            self.settle_text(stopped, min(eos))
        ended = bool(self.token_ids) and self.token_ids[-1] in eos and not params.ignore_eos
        complete = ended or self.finish_reason is not None or len(self.token_ids) >= params.max_new_tokens
        if not complete:
            raise EngineError(f"{self.url}: the stream ended after {len(self.token_ids)} tokens, without EOS, "
                              f"a finish_reason or max_new_tokens ({params.max_new_tokens}) (truncated, request "
                              f"{self.index}); did the server crash? see its log")
        return self.generation(start, params, eos)
