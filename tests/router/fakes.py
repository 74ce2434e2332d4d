"""Workers that speak the worker's HTTP contract over real sockets, with scripted
failures: the router's failure handling needs backends that die on cue."""
from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field

from aiohttp import web
from aiohttp.test_utils import TestServer


@dataclass
class FakeWorker:
    """`mode`: ok | draining | full | die_before | die_mid. `running`/`waiting`:
    what /metrics reports. `bodies`: every generate request received."""

    name: str
    mode: str = "ok"
    running: float = 0
    waiting: float = 0
    chunks: int = 4
    delay: float = 0.0
    bodies: list = field(default_factory=list)
    gone: int = 0  # requests whose client (the router) left before the answer ended
    server: TestServer | None = None

    @property
    def url(self) -> str:
        return str(self.server.make_url("")).rstrip("/")

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/v1/completions", self.generate)
        app.router.add_post("/v1/chat/completions", self.generate)
        app.router.add_get("/v1/models", self.models)
        app.router.add_get("/metrics", self.metrics)
        return app

    async def models(self, request):
        return web.json_response({"object": "list", "data": [{"id": "m"}]})

    async def metrics(self, request):
        text = (f'vllm:num_requests_running{{model_name="m"}} {self.running}\n'
                f'vllm:num_requests_waiting{{model_name="m"}} {self.waiting}\n'
                f'vllm:kv_cache_usage_perc{{model_name="m"}} 0.1\n')
        return web.Response(text=text)

    async def generate(self, request):
        try:
            return await self._generate(request)
        except asyncio.CancelledError:
            self.gone += 1
            raise

    async def _generate(self, request):
        body = await request.json()
        self.bodies.append(body)
        if self.mode == "draining":
            return web.json_response({"error": {"message": "draining", "code": "draining"}}, status=503)
        if self.mode == "full":
            return web.json_response({"error": {"message": "queue full", "code": "queue_full"}}, status=429)
        if self.mode == "die_before":
            request.transport.close()
            await asyncio.sleep(0.1)
            return web.Response()
        if not body.get("stream"):
            await asyncio.sleep(self.delay)
            return web.json_response(self.completion(body))
        return await self.stream(request, body)

    def completion(self, body):
        return {"id": "cmpl-1", "object": "text_completion", "created": 0, "model": "m",
                "choices": [{"index": 0, "text": f"{self.name} answers", "finish_reason": "stop",
                             "logprobs": None}],
                "usage": {"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3}}

    async def stream(self, request, body):
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        for i in range(self.chunks):
            await asyncio.sleep(self.delay)
            chunk = {"id": "cmpl-1", "object": "text_completion", "created": 0, "model": "m",
                     "choices": [{"index": 0, "text": f"t{i} ", "finish_reason": None, "logprobs": None}]}
            await response.write(f"data: {json.dumps(chunk)}\n\n".encode())
            if self.mode == "die_mid" and i == 1:
                request.transport.abort()
                return response
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        return response


async def start_worker(name: str, **kw) -> FakeWorker:
    worker = FakeWorker(name, **kw)
    worker.server = TestServer(worker.app(), host="127.0.0.1")
    await worker.server.start_server()
    return worker
