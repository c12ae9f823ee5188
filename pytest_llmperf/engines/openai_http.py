"""The OpenAI-compatible HTTP engine: ``POST {endpoint}/completions`` with streaming.

Run here against ``vllm serve`` and llama-cpp-python's server
(``python -m llama_cpp.server``); other OpenAI-compatible servers speak the same
API but were not run.  At load the engine names the server (``server_identity``:
part of its key in results.json and baselines) and probes, with tiny requests,
what it takes: token-id prompts (else prompts are detokenized), vLLM's extra
parameters (``min_tokens``, ``ignore_eos``, ``return_token_ids``), prompt
log-probabilities by token id.  A server that rejects a parameter (any 4xx but a
key or path problem, or a 5xx whose message is a request-validation error) gets the
next fallback; any other failure stays an error naming the endpoint.  What it
lacks goes into ``EngineInfo.capabilities`` (and, for a parameter a server accepts
but ignores, is found from its output); tests that need it skip
(``capabilities``).  Output token ids come from the server where it returns them;
otherwise the text is re-tokenized with the model's tokenizer.

Timing: a request starts when it is sent; each token is stamped when the chunk
carrying it arrives, so the first chunk that carries text gives the TTFT.
Requests run concurrently on one asyncio loop (``max_concurrency`` at once).
"""

from __future__ import annotations

import dataclasses
import json
import time
from typing import Any, Sequence

import numpy as np

from ..errors import EngineError
from . import capabilities
from .base import EngineOptions, Generation, GenerationParams, ScoredPath, TokenCallback, group_one_token_requests
from .event_loop import run_all
from .http_common import HttpStatusError, decode_json, endpoint_settings, server_message, sse_events
from .http_engine import Collected, HttpEngine
from .model_files import eos_token_ids, load_tokenizer, vocab_size
from .server_identity import identify

ENGINE_SETTINGS = {
    "model": "served model name (default: the one /models lists)",
    "dtype": "precision the server runs, for baseline keys (default: server)",
    "top_k": "log-probabilities asked per position by score_path (default 20)",
    "server": "name of the server software, for the engine's key where the server does not say (e.g. llama-cpp-python)",
    "require": "capabilities whose absence fails the tests that need them instead of skipping them",
}
VLLM_EXTRAS = ("min_tokens", "ignore_eos", "return_token_ids")
TOKEN_ID_PREFIX = "token_id:"


class OpenAIEngine(HttpEngine):
    """An OpenAI-compatible completions endpoint behind the engine interface."""

    settings_table = "[engine.openai]"

    def __init__(self, options: EngineOptions):
        self.endpoint, self.http, rest = endpoint_settings("openai", options, ENGINE_SETTINGS, "http://127.0.0.1:8000/v1")
        self.completions_url = f"{self.endpoint}/completions"
        self.tokenizer = load_tokenizer(options.model_path)
        self.eos_token_ids = eos_token_ids(options.model_path, self.tokenizer)
        self.vocab_size = vocab_size(options.model_path, self.tokenizer)
        self.top_k = int(rest.get("top_k", 20))
        self.required_capabilities = capabilities.required(rest.get(capabilities.REQUIRE_SETTING), "[engine.openai]")
        try:
            self._connect("llmperf-openai-loop")
            listing = self._loop.run(self._client.get_json("models"))
            self.model = str(rest.get("model") or self._served_model(listing, options))
            self.server = self._loop.run(identify(self._client, self.endpoint, listing, rest.get("server")))
            self.token_prompts, self.vllm_extras, self.returns_token_ids = self._loop.run(self._probe())
            prompt_logprobs = self._loop.run(self._probe_prompt_logprobs())
        except BaseException:
            self.close()
            raise
        notes = [f"endpoint {self.endpoint}", f"served model {self.model}",
                 f"server {self.server.label} (from {self.server.source})"]
        if self.server.software == "unidentified":
            notes.append("the server did not say what it is: set server = \"NAME\" in [engine.openai] so its "
                         "baselines are kept apart from other servers'")
        if not self.token_prompts:
            notes.append("the server refused token-id prompts: prompts were sent as detokenized text")
        if not self.vllm_extras:
            notes.append("the server refused min_tokens/ignore_eos: outputs may stop earlier than asked")
        if not self.returns_token_ids:
            notes.append("the server returns no token ids: output text was re-tokenized with the model's tokenizer")
        info = self._info("openai", options, rest, notes)
        # min_tokens / ignore_eos accepted: None (not seen ignored yet; an answer can show it, check_honoured).
        accepted = None if self.vllm_extras else False
        found = {"token_prompts": self.token_prompts, "output_token_ids": self.returns_token_ids,
                 "prompt_logprobs": prompt_logprobs, "min_tokens": accepted, "ignore_eos": accepted}
        self.info = dataclasses.replace(info, engine=self.server.engine_name("openai"), server=self.server.label,
                                        capabilities=found,
                                        versions={**info.versions, **({self.server.software: self.server.version}
                                                                      if self.server.version else {})})

    # -- connection -----------------------------------------------------------

    def _served_model(self, listing: Any, options: EngineOptions) -> str:
        ids = [str(m.get("id")) for m in (listing.get("data") or []) if isinstance(m, dict)] if isinstance(listing, dict) else []
        if len(ids) == 1:
            return ids[0]
        for wanted in (options.model_name, options.model_path):
            if wanted in ids:
                return wanted
        raise EngineError(f"{self.endpoint}/models: serves {ids or 'no model'}; cannot tell which to test. "
                          "Set model = \"NAME\" in the profile's [engine.openai] table")

    def _probe_prompt(self) -> list[int]:
        return self.tokenizer("Hello", add_special_tokens=False)["input_ids"] or [0]

    async def _probe(self) -> tuple[bool, bool, bool]:
        """(token-id prompts accepted, vLLM extras accepted, token ids returned), from tiny requests."""
        first_error = None
        for tokens, extras in ((True, True), (True, False), (False, True), (False, False)):
            body = self._body(self._probe_prompt(), max_tokens=1, tokens=tokens, extras=extras)
            try:
                answer = await self._client.post_json("completions", body)
            except HttpStatusError as exc:
                if not exc.rejects_request:
                    raise  # a key problem, a 5xx that is not about the request: not a matter of parameters
                first_error = first_error or exc
                continue
            choice = (answer.get("choices") or [{}])[0] if isinstance(answer, dict) else {}
            return tokens, extras, extras and isinstance(choice.get("token_ids"), list)
        raise EngineError(f"{first_error}; the server refused every form of request tried "
                          "(token-id and text prompts, with and without min_tokens/ignore_eos/return_token_ids)")

    async def _probe_prompt_logprobs(self) -> bool:
        """True when the server echoes prompt log-probabilities keyed by token id (score_path needs them)."""
        sequence = self._probe_prompt() * 2
        try:
            await self._echo_logprobs(sequence, 1)
        except HttpStatusError as exc:
            if exc.rejects_request:
                return False
            raise
        except EngineError as exc:
            if "prompt log-probabilities" in str(exc) or "re-tokenized" in str(exc):
                return False
            raise
        return True

    def _body(self, prompt: Sequence[int], *, max_tokens: int, tokens: bool | None = None,
              extras: bool | None = None, **fields: Any) -> dict[str, Any]:
        tokens = self.token_prompts if tokens is None else tokens
        extras = self.vllm_extras if extras is None else extras
        body: dict[str, Any] = {
            "model": getattr(self, "model", ""),
            "prompt": [int(t) for t in prompt] if tokens else self.tokenizer.decode(list(prompt)),
            "max_tokens": max_tokens,
            "temperature": 0.0,
        }
        if extras:
            body["return_token_ids"] = True
        body.update(fields)
        if not extras:
            for name in VLLM_EXTRAS:
                body.pop(name, None)
        return body

    # -- generation -------------------------------------------------------------

    async def _generate_one(self, index: int, prompt: Sequence[int], params: GenerationParams,
                            on_token: TokenCallback | None) -> Generation:
        body = self._body(prompt, max_tokens=params.max_new_tokens, stream=True,
                          stream_options={"include_usage": True},
                          min_tokens=params.min_new_tokens, ignore_eos=params.ignore_eos)
        stream = _Stream(self, index, on_token)
        start = time.perf_counter()
        async with self._client.post_lines("completions", body) as lines:
            async for payload in sse_events(lines):
                if payload.strip() == "[DONE]":
                    stream.done = True
                    break
                stream.event(decode_json(self.completions_url, payload), time.perf_counter())
        return stream.finish(start, params)

    # -- scoring ----------------------------------------------------------------

    async def _echo_logprobs(self, sequence: list[int], top_k: int) -> tuple[list[float | None], list[dict | None]]:
        """Per prompt position: (log P of the actual token, {token id: log P} of the top k)."""
        unsupported = (f"{self.completions_url}: this server does not return prompt log-probabilities keyed by "
                       "token id (echo + logprobs + return_tokens_as_token_ids, as vLLM does); score_path and "
                       "loglikelihood need them: use vllm serve, or an in-process engine")
        if not self.token_prompts:
            raise EngineError(unsupported)
        body = self._body(sequence, max_tokens=0, echo=True, logprobs=top_k, return_tokens_as_token_ids=True)
        body.pop("return_token_ids", None)
        try:
            answer = await self._client.post_json("completions", body)
        except HttpStatusError as exc:
            if exc.rejects_request:
                raise EngineError(f"{unsupported} (server said: HTTP {exc.status}: {exc.message})") from None
            raise
        try:
            logprobs = answer["choices"][0]["logprobs"]
            tokens = [_token_id(t) for t in logprobs["tokens"][: len(sequence)]]
            actual = list(logprobs["token_logprobs"][: len(sequence)])
            top = [None if entry is None else {_token_id(k): float(v) for k, v in entry.items()}
                   for entry in logprobs["top_logprobs"][: len(sequence)]]
        except (KeyError, IndexError, TypeError, ValueError):
            raise EngineError(unsupported) from None
        if tokens != sequence:
            raise EngineError(f"{self.completions_url}: the echoed prompt differs from the token ids sent; "
                              "the server re-tokenized it, so positions cannot be scored")
        return actual, top

    def _check_top_k(self, top_k: int | None) -> int:
        k = self.top_k if top_k is None else int(top_k)
        if k < 1:
            raise ValueError(f"top_k must be >= 1, got {k}")
        return k

    def score_path(self, prompt: Sequence[int], path: Sequence[int], top_k: int | None = None) -> ScoredPath:
        """Top-k log-probabilities at each path position (plus the path token's own); the rest is ``-inf``."""
        if not prompt or not path:
            raise ValueError("score_path needs a non-empty prompt and path")
        sequence = [int(t) for t in prompt] + [int(t) for t in path]
        actual, top = self._loop.run(self._echo_logprobs(sequence, self._check_top_k(top_k)))
        values = np.full((len(path), self.vocab_size), -np.inf, dtype=np.float32)
        for position in range(len(path)):
            row = len(prompt) + position
            for token, logprob in (top[row] or {}).items():
                values[position, token] = logprob
            values[position, sequence[row]] = float(actual[row])
        return ScoredPath(values=values, space="logprobs")

    def loglikelihood(self, requests: Sequence[tuple[Sequence[int], Sequence[int]]]) -> list[tuple[float, bool]]:
        """Echoed prompt log-probs of each continuation; one-token continuations of one context are
        first looked up in the top-k after the context (one short request for all of them)."""
        single, longer = group_one_token_requests(requests)
        return self._loop.run(self._loglikelihood_all(requests, single, longer))

    async def _loglikelihood_all(self, requests, single, longer) -> list[tuple[float, bool]]:
        results: list[tuple[float, bool]] = [(0.0, False)] * len(requests)

        async def echoed(index: int) -> None:
            context, continuation = requests[index]
            sequence = [int(t) for t in context] + [int(t) for t in continuation]
            actual, top = await self._echo_logprobs(sequence, 1)
            total, greedy = 0.0, True
            for row in range(len(context), len(sequence)):
                total += float(actual[row])
                greedy = greedy and float(actual[row]) >= max((top[row] or {}).values(), default=-np.inf) - 1e-6
            results[index] = (total, greedy)

        async def one_token(context: tuple[int, ...], indices: list[int]) -> None:
            # One request for all one-token continuations of a context (MMLU's " A".." D"): the top-k
            # after it; a continuation outside the top-k is scored from echoed prompt log-probs instead.
            found = await self._next_token(list(context), self._check_top_k(None))
            missing = []
            for index in indices:
                token = int(requests[index][1][0])
                if found is not None and token in found[1]:
                    results[index] = (found[1][token], token == found[0])
                else:
                    missing.append(index)
            await run_all(echoed(index) for index in missing)

        await run_all([*(one_token(context, indices) for context, indices in single.items()),
                       *(echoed(index) for index in longer)])
        return results

    async def _next_token(self, context: list[int], top_k: int) -> tuple[int, dict[int, float]] | None:
        """(greedy next token, {token id: log P} of the top k there), or None where the server
        does not answer in that form (the echo route then decides)."""
        if not self.token_prompts:
            return None
        body = self._body(context, max_tokens=1, logprobs=top_k, return_tokens_as_token_ids=True)
        body.pop("return_token_ids", None)
        try:
            answer = await self._client.post_json("completions", body)
            logprobs = answer["choices"][0]["logprobs"]
            greedy = _token_id(logprobs["tokens"][0])
            top = {_token_id(k): float(v) for k, v in logprobs["top_logprobs"][0].items()}
        except HttpStatusError as exc:
            if exc.rejects_request:
                return None
            raise
        except (KeyError, IndexError, TypeError, ValueError, AttributeError):
            return None
        return greedy, top

    def check_honoured(self, params: GenerationParams, finish_reason: str, count: int) -> None:
        # count: tokens before the EOS.
        """A server that took min_tokens/ignore_eos but stopped at EOS before them ignores them:
        recorded as a capability it lacks (found from its output; the answer itself stands)."""
        if finish_reason != "stop" or not self.vllm_extras:
            return
        ignored = [name for name, broken in (("ignore_eos", params.ignore_eos),
                                              ("min_tokens", count < params.min_new_tokens)) if broken]
        if ignored and any(self.info.capabilities.get(name) is not False for name in ignored):
            found = {**self.info.capabilities, **{name: False for name in ignored}}
            note = (f"the server accepted but ignored {' and '.join(ignored)}: an answer stopped at EOS after "
                    f"{count} tokens (asked: min {params.min_new_tokens}, max {params.max_new_tokens}"
                    f"{', ignore_eos' if params.ignore_eos else ''})")
            self.info = dataclasses.replace(self.info, capabilities=found, notes=(*self.info.notes, note))


def _token_id(text: str) -> int:
    if not isinstance(text, str) or not text.startswith(TOKEN_ID_PREFIX):
        raise ValueError(text)
    return int(text[len(TOKEN_ID_PREFIX):])


class _Stream(Collected):
    """One streamed completion: its tokens (or text) with arrival times, reported as they come."""

    def __init__(self, engine: OpenAIEngine, index: int, on_token: TokenCallback | None):
        super().__init__(engine.tokenizer, index, on_token, engine.completions_url)
        self.engine = engine
        self.usage_tokens: int | None = None
        self.done = False

    def event(self, event: Any, now: float) -> None:
        if not isinstance(event, dict):
            raise EngineError(f"{self.url}: malformed stream event {str(event)[:200]!r}")
        if event.get("error"):
            raise EngineError(f"{self.url}: the server reported an error mid-stream: "
                              f"{server_message(json.dumps(event))}")
        for choice in event.get("choices") or []:
            ids = choice.get("token_ids") if self.engine.returns_token_ids else None
            if ids:
                for token in ids:
                    self.add(int(token), now)
            elif choice.get("text"):
                self.add_text(str(choice["text"]), now, report=True)
            if choice.get("finish_reason"):
                self.finish_reason = str(choice["finish_reason"])
        usage = event.get("usage")
        if isinstance(usage, dict) and usage.get("completion_tokens") is not None:
            self.usage_tokens = int(usage["completion_tokens"])

    def finish(self, start: float, params: GenerationParams) -> Generation:
        count = len(self.token_ids) or len(self.pieces)
        if not self.done or self.finish_reason is None:
            missing = "[DONE]" if not self.done else "a finish_reason"
            cause = self.engine.server.stream_cut_cause()
            why = f"likely cause: {cause}" if cause else "did the server crash? see its log"
            raise EngineError(f"{self.url}: the stream ended without {missing} after {count} chunks of output "
                              f"(truncated, request {self.index}); {why}")
        eos, text_mode = self.engine.eos_token_ids, self.text_mode
        if text_mode:
            # Re-tokenized text: the server's own count is recorded beside ours, not compared with it.
            self.settle_text(self.finish_reason == "stop" and not params.ignore_eos, min(eos))
        before_eos = len(self.token_ids) - int(bool(self.token_ids) and self.token_ids[-1] in eos)
        self.engine.check_honoured(params, self.finish_reason, before_eos)
        if text_mode:
            return self.generation(start, params, eos, server_token_count=self.usage_tokens)
        if self.usage_tokens is not None and self.engine.returns_token_ids and self.usage_tokens != len(self.token_ids):
            raise EngineError(f"{self.url}: the stream carried {len(self.token_ids)} tokens but its usage says "
                              f"{self.usage_tokens} (request {self.index}); chunks were lost")
        return self.generation(start, params, eos)
