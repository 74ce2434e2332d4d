"""HTTP side of running a request: admit, start, watch the client, collect or stream."""
from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import AsyncIterator, Awaitable, Callable

from fastapi import Request
from fastapi.responses import StreamingResponse
from starlette.background import BackgroundTask

from halyard_worker.server.errors import APIError, error_body, internal_error
from halyard_worker.server.request import Piece, ServedRequest
from halyard_worker.server.responses import sse

CLIENT_GONE = APIError(499, "client closed the request")


@dataclass
class Collected:
    """Everything one choice produced (non-streaming responses)."""

    text: str = ""
    token_ids: list[int] = field(default_factory=list)
    logprobs: list = field(default_factory=list)
    finish_reason: str | None = None
    prompt_tokens: int = 0
    prompt_logprobs: tuple | None = None


@dataclass
class Started:
    """An admitted, running request and the headers of its response."""

    served: ServedRequest
    headers: dict
    created: int

    @property
    def rid(self) -> str:
        return self.served.id

    def stream(self, request: Request, events) -> StreamingResponse:
        return stream_response(self.served, request, events, self.headers)

    async def collect(self, request: Request, n: int) -> list[Collected]:
        return await collect(self.served, request, n)


async def begin(state, request: Request, prompts: list[list[int]], params: list, priority: int,
                stream: bool) -> Started:
    """Admit (or raise 429/503) and start the request's engine work. A stream also
    waits for its first output, so failures before it are HTTP errors; a client
    that leaves while queued frees its slots at once and is never prefilled."""
    client_id = request.headers.get("x-request-id")
    served = state.gate.admit(ServedRequest(state.gate, state.metrics, len(prompts), client_id))
    served.start(state.runtime.engine, prompts, params, priority)
    if stream:
        await until_disconnect(served, request, served.first())
    return Started(served, {"X-Request-Id": served.echo_id}, int(time.time()))


async def wait_disconnect(request: Request) -> None:
    """Returns when the client has gone away (the body was already read)."""
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            return


async def until_disconnect(served: ServedRequest, request: Request, work: Awaitable):
    """`work`'s result, or cancel the request and raise 499 if the client leaves first."""
    worker = asyncio.ensure_future(work)
    watcher = asyncio.ensure_future(wait_disconnect(request))
    try:
        done, _ = await asyncio.wait({worker, watcher}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        watcher.cancel()
    if worker not in done:
        served.cancel()
        worker.cancel()
        raise CLIENT_GONE
    return worker.result()


async def collect(served: ServedRequest, request: Request, n: int) -> list[Collected]:
    """All pieces per choice; a client disconnect aborts the run (APIError 499)."""
    out = [Collected() for _ in range(n)]

    async def gather():
        async for piece in served.pieces():
            c = out[piece.index]
            c.text += piece.text
            c.token_ids.extend(piece.token_ids)
            c.prompt_tokens = piece.prompt_tokens
            if piece.logprobs:
                c.logprobs.extend(piece.logprobs)
            if piece.prompt_logprobs is not None:
                c.prompt_logprobs = piece.prompt_logprobs
            if piece.finish_reason:
                c.finish_reason = piece.finish_reason
        return out

    return await until_disconnect(served, request, gather())


def stream_response(served: ServedRequest, request: Request,
                    events: Callable[[AsyncIterator[Piece]], AsyncIterator[dict]],
                    headers: dict) -> StreamingResponse:
    """SSE response of `events(pieces)` then `data: [DONE]`; disconnect cancels."""

    async def body():
        watcher = asyncio.ensure_future(_cancel_on_disconnect(served, request))
        try:
            async for payload in events(served.pieces()):
                yield sse(payload)
            yield sse("[DONE]")
        except Exception as err:  # failed after the 200 went out: report in-band
            failure = err if isinstance(err, APIError) else internal_error(served.id, err)
            yield sse(error_body(failure.status, failure.message, failure.param, failure.code))
            yield sse("[DONE]")
        finally:
            watcher.cancel()
            served.cancel()

    return StreamingResponse(body(), media_type="text/event-stream", headers=headers,
                             background=BackgroundTask(served.cancel))


async def _cancel_on_disconnect(served: ServedRequest, request: Request) -> None:
    await wait_disconnect(request)
    served.cancel()
