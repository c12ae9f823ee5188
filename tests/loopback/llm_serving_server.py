"""A loopback server that speaks MindSpore llm-serving's protocol, generating with a real engine.

No MindSpore llm-serving runs in these tests: this server stands in for it.  It
answers ``POST /models/<model>/generate`` and ``/generate_stream`` the way the
Ascend kit's server does (one JSON object per line, ``data`` holding a list
with ``generated_text``, ``tokens`` and ``details``), and generates with the
engine it is given (the real transformers engine on the embedded model), one
request at a time.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import threading

from pytest_llmperf.engines import GenerationParams


class LlmServingLoopback:
    def __init__(self, engine, tokenizer, model: str = "llama2"):
        self.engine = engine
        self.tokenizer = tokenizer
        self.model = model
        self.requests = 0
        self.generator = concurrent.futures.ThreadPoolExecutor(max_workers=1)  # the engine is not thread-safe
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="llm-serving-loopback", daemon=True)
        self.base_url = ""

    # -- lifecycle --------------------------------------------------------------

    def start(self) -> str:
        self.thread.start()
        self.base_url = asyncio.run_coroutine_threadsafe(self._serve(), self.loop).result(timeout=30)
        return self.base_url

    async def _serve(self) -> str:
        from aiohttp import web

        app = web.Application()
        app.router.add_post("/models/{model}/generate", self.generate)
        app.router.add_post("/models/{model}/generate_stream", self.generate_stream)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(timeout=30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=30)
        self.generator.shutdown(wait=True)

    # -- protocol ---------------------------------------------------------------

    async def _parse(self, request):
        from aiohttp import web

        if request.match_info["model"] != self.model:
            raise web.HTTPNotFound(text=json.dumps({"detail": f"no model {request.match_info['model']!r}"}))
        try:
            body = await request.json()
            inputs = body["inputs"]
            parameters = body.get("parameters") or {}
        except (ValueError, KeyError, TypeError):
            raise web.HTTPBadRequest(text=json.dumps({"detail": "body must be {\"inputs\": text, \"parameters\": {...}}"}))
        if parameters.get("do_sample"):
            raise web.HTTPBadRequest(text=json.dumps({"detail": "this loopback server only does greedy decoding"}))
        self.requests += 1
        prompt = self.tokenizer(inputs, add_special_tokens=True)["input_ids"]
        maximum = int(parameters.get("max_new_tokens", 32))
        params = GenerationParams(max_new_tokens=maximum, min_new_tokens=min(int(parameters.get("min_new_tokens", 1)), maximum),
                                  ignore_eos=bool(parameters.get("ignore_eos", False)))
        return prompt, params

    def _token(self, token: int) -> dict:
        special = token in self.engine.eos_token_ids
        return {"id": int(token), "logprob": None, "special": special,
                "text": "" if special else self.tokenizer.decode([int(token)])}

    async def generate(self, request):
        from aiohttp import web

        prompt, params = await self._parse(request)
        loop = asyncio.get_running_loop()
        (generation,) = await loop.run_in_executor(self.generator, lambda: self.engine.generate([prompt], params))
        ids = list(generation.token_ids)
        return web.json_response({
            "generated_text": self.tokenizer.decode(ids, skip_special_tokens=True),
            "finish_reason": "eos" if generation.finish_reason == "eos" else "length",
            "generated_tokens": len(ids),
            "tokens": [self._token(t) for t in ids],
        })

    async def generate_stream(self, request):
        from aiohttp import web

        prompt, params = await self._parse(request)
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue = asyncio.Queue()

        def on_token(_index, token, _time):
            loop.call_soon_threadsafe(queue.put_nowait, int(token))

        def run():
            try:
                return self.engine.generate([prompt], params, on_token)[0]
            finally:
                loop.call_soon_threadsafe(queue.put_nowait, None)

        response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
        await response.prepare(request)
        job = loop.run_in_executor(self.generator, run)
        count = 0
        while (token := await queue.get()) is not None:
            count += 1
            item = {"details": None, "generated_text": self._token(token)["text"], "tokens": self._token(token)}
            await response.write((json.dumps({"event": "message", "retry": 30000, "data": [item]}) + "\n").encode())
        generation = await job
        reason = "eos" if generation.finish_reason == "eos" else "length"
        final = {"details": {"finish_reason": reason, "generated_tokens": count}, "generated_text": "", "tokens": None}
        await response.write((json.dumps({"event": "message", "retry": 30000, "data": [final]}) + "\n").encode())
        await response.write_eof()
        return response
