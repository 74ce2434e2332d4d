"""A stand-in worker that answers at once (`python -m halyard.bench.stub_worker PORT`).

It speaks the part of the worker's HTTP contract the router uses (completions,
streamed or not, `/metrics` with the vLLM gauges, `/ready`) with constant,
near-zero work, so that `halyard bench router --latency-backend stub` sees
the router's own added latency without a model's jitter on top of it.
"""
from __future__ import annotations

import json
import sys

from aiohttp import web

_CHOICE = {"index": 0, "text": "x", "finish_reason": "length", "logprobs": None}
_USAGE = {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}
COMPLETION = json.dumps({"id": "cmpl-stub", "object": "text_completion", "created": 0, "model": "smollm2",
                         "choices": [_CHOICE], "usage": _USAGE}).encode()
CHUNKS = (b"data: " + json.dumps({"id": "cmpl-stub", "object": "text_completion", "created": 0, "model": "smollm2",
                                  "choices": [_CHOICE]}).encode() + b"\n\n",
          b"data: " + json.dumps({"id": "cmpl-stub", "object": "text_completion", "created": 0, "model": "smollm2",
                                  "choices": [], "usage": _USAGE}).encode() + b"\n\ndata: [DONE]\n\n")
METRICS = ('vllm:num_requests_running{model_name="smollm2"} 0\n'
           'vllm:num_requests_waiting{model_name="smollm2"} 0\n'
           'vllm:kv_cache_usage_perc{model_name="smollm2"} 0\n')


async def _completions(request: web.Request) -> web.StreamResponse:
    body = json.loads(await request.read())
    if not body.get("stream"):
        return web.Response(body=COMPLETION, content_type="application/json")
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await response.prepare(request)
    for chunk in CHUNKS:
        await response.write(chunk)
    await response.write_eof()
    return response


def build_app() -> web.Application:
    app = web.Application()
    app.router.add_post("/v1/completions", _completions)
    app.router.add_get("/metrics", _metrics)
    app.router.add_get("/ready", _ready)
    return app


async def _metrics(request: web.Request) -> web.Response:
    return web.Response(text=METRICS)


async def _ready(request: web.Request) -> web.Response:
    return web.Response(text="ready")


if __name__ == "__main__":
    web.run_app(build_app(), host="127.0.0.1", port=int(sys.argv[1]), access_log=None, print=None)
