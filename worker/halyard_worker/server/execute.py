"""Shared request execution: admission, engine jobs, collection, SSE framing."""
from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass, field
from typing import AsyncIterator, Callable

from fastapi import Request
from fastapi.responses import StreamingResponse
from starlette.background import BackgroundTask

from halyard_worker.server.errors import APIError, error_body
from halyard_worker.server.generation import ChoiceRun, Job, Piece
from halyard_worker.server.responses import sse


@dataclass
class Collected:
    """Everything one choice produced (non-streaming responses)."""

    text: str = ""
    token_ids: list[int] = field(default_factory=list)
    logprobs: list = field(default_factory=list)
    finish_reason: str | None = None
    prompt_tokens: int = 0
    prompt_logprobs: tuple | None = None


def request_id(request: Request) -> str:
    return request.headers.get("x-request-id") or uuid.uuid4().hex


def start(state, rid: str, prompts: list[list[int]], params: list, priority: int) -> ChoiceRun:
    """Admit len(prompts) engine requests (or raise 429/503) and start them."""
    state.gate.admit(len(prompts))
    many = len(prompts) > 1
    jobs = [Job(i, f"{rid}/{i}" if many else rid, tuple(p), params[i], priority)
            for i, p in enumerate(prompts)]
    return ChoiceRun(state.runtime.engine, state.gate, state.metrics, jobs)


@dataclass
class Started:
    """An admitted request: its id (held until the response is over), run and headers."""

    state: object
    rid: str
    run: ChoiceRun
    headers: dict
    created: int

    def stream(self, request: Request, events) -> StreamingResponse:
        """The SSE response; the id is freed when it is over."""
        return stream_response(self.run, request, events, self.headers, lambda: self.state.gate.free_id(self.rid))

    async def collect(self, request: Request, n: int) -> list[Collected]:
        """Every choice in full (non-streaming); the id is freed when done."""
        try:
            return await collect(self.run, request, n)
        finally:
            self.state.gate.free_id(self.rid)


async def begin(state, request: Request, prompts: list[list[int]], params: list, priority: int,
                stream: bool) -> Started:
    """Reserve the request id, admit and start the run; a stream also waits for its first
    output, so failures before it are HTTP errors. On failure the id is freed again."""
    rid = state.gate.reserve_id(request_id(request))
    try:
        run = start(state, rid, prompts, params, priority)
        if stream:
            await run.first()
    except Exception:
        state.gate.free_id(rid)
        raise
    headers = {"X-Request-Id": request.headers.get("x-request-id", rid)}
    return Started(state, rid, run, headers, int(time.time()))


async def wait_disconnect(request: Request) -> None:
    """Returns when the client has gone away (the body was already read)."""
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            return


async def collect(run: ChoiceRun, request: Request, n: int) -> list[Collected]:
    """All pieces per choice; a client disconnect aborts the run (APIError 499)."""
    out = [Collected() for _ in range(n)]

    async def gather():
        async for piece in run.pieces():
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

    worker = asyncio.ensure_future(gather())
    watcher = asyncio.ensure_future(wait_disconnect(request))
    try:
        done, _ = await asyncio.wait({worker, watcher}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        watcher.cancel()
    if worker not in done:
        run.cancel()
        worker.cancel()
        raise APIError(499, "client closed the request")
    return worker.result()


def stream_response(run: ChoiceRun, request: Request, events: Callable[[AsyncIterator[Piece]],
                    AsyncIterator[dict]], headers: dict,
                    on_close: Callable[[], None]) -> StreamingResponse:
    """SSE response of `events(pieces)` then `data: [DONE]`; disconnect aborts.
    `on_close` runs once the response is over, even if the body never started."""

    async def body():
        watcher = asyncio.ensure_future(_cancel_on_disconnect(run, request))
        try:
            async for payload in events(run.pieces()):
                yield sse(payload)
            yield sse("[DONE]")
        except Exception as err:  # failed after the 200 went out: report in-band
            failure = err if isinstance(err, APIError) else APIError(500, f"internal error: {err}")
            yield sse(error_body(failure.status, failure.message, failure.param, failure.code))
            yield sse("[DONE]")
        finally:
            watcher.cancel()
            run.cancel()

    def close():
        run.cancel()
        on_close()

    return StreamingResponse(body(), media_type="text/event-stream", headers=headers,
                             background=BackgroundTask(close))


async def _cancel_on_disconnect(run: ChoiceRun, request: Request) -> None:
    await wait_disconnect(request)
    run.cancel()
