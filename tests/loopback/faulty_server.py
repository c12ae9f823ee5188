"""A loopback server that misbehaves on purpose, for the HTTP engines' fault tests.

Run as ``python faulty_server.py PORT``.  The first path segment picks the
fault, for the OpenAI API (``/<fault>/v1/...``) and llm-serving
(``/<fault>/models/llama2/...``) alike.  Small non-streaming requests (the
engines' probes at load) are answered well, except under ``http500`` and
``http400``; streaming requests misbehave:

  http500     every request: HTTP 500 with an OpenAI-style error message
  http400     every generation request: HTTP 400 with an error message
  probe500    every generation request: HTTP 500 that is not about the request (the probe must not fall back)
  stream500   streams: HTTP 500
  slow        streams: nothing for 30 s (longer than the client's read timeout)
  truncated   streams: two tokens, then a clean end without [DONE] / finish
  malformed   streams: an event that is not JSON
  lostchunks  streams (OpenAI): two tokens but a usage of five
  dies        streams: two tokens, then the process exits (a crashed server)

Two more behave well, to test what the engines adapt to:

  needkey     HTTP 401 unless ``Authorization: Bearer sk-loopback-key``; then three tokens
  textonly    (OpenAI) refuses token-id prompts and vLLM's extra fields; streams text only
  validation500  (OpenAI) refuses token-id prompts with HTTP 500 carrying a request-validation error
              (as llama-cpp-python's server does), takes text prompts and ignores extra fields
"""

from __future__ import annotations

import asyncio
import json
import os
import sys

from aiohttp import web

FAULTS = ("http500", "http400", "probe500", "stream500", "slow", "truncated", "malformed", "lostchunks", "dies",
          "needkey", "textonly", "validation500")
VALIDATION = {"error": {"message": "1 validation error for CreateCompletionRequest\nprompt\n  Input should be a valid "
                                   "string", "type": "internal_server_error"}}
API_KEY = "sk-loopback-key"
ERROR = {"error": {"message": "the model fell over", "type": "InternalServerError", "code": 500}}


def _openai_chunk(token: int, finish: str | None = None) -> bytes:
    event = {"choices": [{"index": 0, "text": f"t{token} ", "token_ids": [token], "finish_reason": finish}]}
    return f"data: {json.dumps(event)}\n\n".encode()


def _serving_line(token: int) -> bytes:
    item = {"details": None, "generated_text": f"t{token} ", "tokens": {"id": token, "text": f"t{token} ", "special": False}}
    return (json.dumps({"event": "message", "data": [item]}) + "\n").encode()


async def models(request):
    if request.match_info["fault"] == "http500":
        return web.json_response(ERROR, status=500)
    return web.json_response({"object": "list", "data": [{"id": "faulty-model", "object": "model"}]})


async def _common(request, fault: str, stream: bool):
    if fault not in FAULTS:
        return web.json_response({"error": {"message": f"unknown fault {fault}"}}, status=404)
    if fault == "http500":
        return web.json_response(ERROR, status=500)
    if fault == "needkey" and request.headers.get("Authorization") != f"Bearer {API_KEY}":
        return web.json_response({"error": {"message": "missing or wrong API key"}}, status=401)
    if fault == "http400":
        return web.json_response({"error": {"message": "prompt is too long for this model"}}, status=400)
    if fault == "probe500":
        return web.json_response(ERROR, status=500)
    if not stream:
        return None
    if fault == "stream500":
        return web.json_response(ERROR, status=500)
    if fault == "slow":
        await asyncio.sleep(30)
        return web.json_response(ERROR, status=504)
    return None


async def completions(request):
    fault = request.match_info["fault"]
    body = await request.json()
    stream = bool(body.get("stream"))
    early = await _common(request, fault, stream)
    if early is not None:
        return early
    if fault in ("textonly", "validation500"):
        return await _text_only(request, body, strict=fault == "textonly")
    if not stream:
        return web.json_response({"choices": [{"index": 0, "text": "!", "token_ids": [0], "finish_reason": "length"}]})
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await response.prepare(request)
    if fault == "malformed":
        await response.write(b"data: {this is not json\n\n")
        await response.write_eof()
        return response
    for token in (11, 12):
        await response.write(_openai_chunk(token))
    if fault == "dies":
        await asyncio.sleep(0.2)
        os._exit(1)
    if fault == "needkey":
        await response.write(_openai_chunk(13, "length"))
        await response.write(b"data: [DONE]\n\n")
    if fault == "lostchunks":
        await response.write(_openai_chunk(13, "length"))
        await response.write(f"data: {json.dumps({'choices': [], 'usage': {'completion_tokens': 5}})}\n\n".encode())
        await response.write(b"data: [DONE]\n\n")
    await response.write_eof()  # truncated: a clean end, but no finish_reason and no [DONE]
    return response


async def _text_only(request, body, strict: bool):
    """A strict OpenAI-style server: text prompts only, no vLLM fields (``strict``), text-only chunks."""
    if not strict and not isinstance(body.get("prompt"), str):
        return web.json_response(VALIDATION, status=500)
    if strict and (not isinstance(body.get("prompt"), str) or "return_token_ids" in body or "min_tokens" in body):
        return web.json_response({"error": {"message": "prompt must be a string; unknown fields"}}, status=400)
    if not body.get("stream"):
        return web.json_response({"choices": [{"index": 0, "text": "!", "finish_reason": "length"}]})
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await response.prepare(request)
    for piece, finish in (("", None), ("Hello", None), (" wor", None), ("ld", None), ("", "stop")):
        event = {"choices": [{"index": 0, "text": piece, "finish_reason": finish}]}
        await response.write(f"data: {json.dumps(event)}\n\n".encode())
    # Its own tokenizer's count, which need not match a re-tokenization of the text.
    await response.write(f"data: {json.dumps({'choices': [], 'usage': {'completion_tokens': 7}})}\n\n".encode())
    await response.write(b"data: [DONE]\n\n")
    await response.write_eof()
    return response


async def generate(request):
    early = await _common(request, request.match_info["fault"], False)
    if early is not None:
        return early
    return web.json_response({"generated_text": "!", "finish_reason": "length", "tokens": [{"id": 0, "text": "!"}]})


async def generate_stream(request):
    fault = request.match_info["fault"]
    early = await _common(request, fault, True)
    if early is not None:
        return early
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await response.prepare(request)
    if fault == "malformed":
        await response.write(b"{this is not json\n")
        await response.write_eof()
        return response
    for token in (11, 12):
        await response.write(_serving_line(token))
    if fault == "dies":
        await asyncio.sleep(0.2)
        os._exit(1)
    await response.write_eof()
    return response


def main() -> None:
    app = web.Application()
    app.router.add_get("/{fault}/v1/models", models)
    app.router.add_post("/{fault}/v1/completions", completions)
    app.router.add_post("/{fault}/models/{model}/generate", generate)
    app.router.add_post("/{fault}/models/{model}/generate_stream", generate_stream)
    web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None, handle_signals=True)


if __name__ == "__main__":
    main()
