"""One API request's engine work, owned by one object from admission to its end.

`Gate.admit` creates a `ServedRequest`; it holds everything about the
request's life: its server-generated id (the engine ids derive from it, so
they are unique by construction; the client's `X-Request-Id` is only echoed
and logged), its admission slots, one task per choice that drives the engine,
the abort used by the drain (the request ends with its output so far and
finish_reason "drain"), the cancel used when the client goes away, and its
metrics. Each choice releases its slot exactly once, when its task ends.
"""
from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, AsyncIterator

from halyard_worker.server.errors import APIError
from halyard_worker.server.metrics import RequestTimer, ServerMetrics

if TYPE_CHECKING:
    from halyard_worker.server.admission import Gate
    from halyard_worker.server.runtime import EngineClient

log = logging.getLogger("halyard_worker.server")

DRAIN_REASON = "drain"


@dataclass(frozen=True)
class Piece:
    """New output of choice `index` since its previous piece.

    `finish_reason` is set on the choice's last piece only ("stop", "length",
    "abort", or "drain" when the drain deadline cut it short).
    """

    index: int
    text: str
    token_ids: tuple[int, ...]
    logprobs: Any
    finish_reason: str | None
    prompt_tokens: int
    prompt_logprobs: Any = None  # engine prompt_logprobs, on the first piece that has them


@dataclass(frozen=True)
class Job:
    """One engine request of a ServedRequest (one choice)."""

    index: int
    engine_id: str
    prompt_ids: tuple[int, ...]
    params: Any  # engine SamplingParams
    priority: int


class _Failed:
    def __init__(self, error: BaseException):
        self.error = error


def _as_api_error(err: Exception, request_id: str, metrics: ServerMetrics) -> Exception:
    from halyard_worker.engine.types import InvalidParameter

    if isinstance(err, InvalidParameter):
        return APIError(400, str(err), param=err.param)
    metrics.engine_error()
    log.error("request %s failed in the engine: %s: %s", request_id, type(err).__name__, err)
    return APIError(500, f"the engine failed on this request (request id {request_id}); "
                         "other requests are unaffected", code="engine_error")


class ServedRequest:
    """`n` engine requests admitted together (one per prompt/choice)."""

    def __init__(self, gate: Gate, metrics: ServerMetrics, n: int, client_id: str | None):
        self.id = uuid.uuid4().hex
        self.client_id = client_id
        self.n = n
        self._gate, self._metrics = gate, metrics
        self._slots = n  # admission slots not yet released
        self._engine: EngineClient | None = None
        self._jobs: dict[int, Job] = {}  # choices still running in the engine
        self._queue: asyncio.Queue = asyncio.Queue()
        self._open = n
        self._peeked = None
        self._tasks: list[asyncio.Task] = []

    @property
    def echo_id(self) -> str:
        """The id returned in `X-Request-Id`: the client's, else ours."""
        return self.client_id or self.id

    # -- lifecycle ---------------------------------------------------------
    def start(self, engine: EngineClient, prompts: list[list[int]], params: list, priority: int) -> None:
        self._engine = engine
        jobs = [Job(i, f"{self.id}-{i}", tuple(p), params[i], priority) for i, p in enumerate(prompts)]
        self._tasks = [asyncio.ensure_future(self._drive(job)) for job in jobs]

    def abort(self) -> None:
        """End every choice in the engine now; each ends with the output it had."""
        for job in list(self._jobs.values()):
            self._engine.abort(job.engine_id)

    def cancel(self) -> None:
        """The client is gone: stop driving (the engine requests are aborted)."""
        for task in self._tasks:
            task.cancel()
        if not self._tasks:
            self._release(self._slots)

    def _release(self, k: int) -> None:
        k = min(k, self._slots)
        if k > 0:
            self._slots -= k
            self._gate.release(self, k)

    # -- driving one choice -------------------------------------------------
    async def _drive(self, job: Job) -> None:
        timer = RequestTimer(self._metrics)
        reason = "abort"
        self._jobs[job.index] = job
        prompt_lps_sent = False
        try:
            stream = self._engine.generate(job.engine_id, list(job.prompt_ids), job.params,
                                           priority=job.priority)
            async for out in stream:
                timer.on_tokens(len(out.new_token_ids), len(job.prompt_ids))
                finish = self._reason(out.finish_reason) if out.finished else None
                reason = finish or reason
                prompt_lps = None if prompt_lps_sent else getattr(out, "prompt_logprobs", None)
                prompt_lps_sent = prompt_lps_sent or prompt_lps is not None
                self._queue.put_nowait(Piece(job.index, out.new_text, tuple(out.new_token_ids),
                                             out.new_logprobs, finish, len(job.prompt_ids), prompt_lps))
                if out.finished:
                    return
            reason = self._reason("abort")
            self._queue.put_nowait(Piece(job.index, "", (), None, reason, len(job.prompt_ids)))
        except asyncio.CancelledError:
            self._engine.abort(job.engine_id)
            raise
        except Exception as err:  # surfaced to the consumer (e.g. InvalidParameter)
            reason = "error"
            self._queue.put_nowait(_Failed(_as_api_error(err, self.id, self._metrics)))
        finally:
            self._jobs.pop(job.index, None)
            self._release(1)
            if reason != "error":
                timer.on_finish(reason)
            self._open -= 1
            if self._open == 0:
                self._queue.put_nowait(None)

    def _reason(self, engine_reason: str | None) -> str:
        if engine_reason == "abort" and self._gate.drain_expired:
            return DRAIN_REASON
        return engine_reason or "stop"

    # -- consuming ------------------------------------------------------------
    async def pieces(self) -> AsyncIterator[Piece]:
        """Pieces in arrival order; raises the first engine error."""
        while True:
            item, self._peeked = (self._peeked or await self._queue.get()), None
            if item is None:
                return
            if isinstance(item, _Failed):
                self.cancel()
                raise item.error
            yield item

    async def first(self) -> Piece | None:
        """Wait for the first piece (so errors surface before a stream starts)."""
        item = await self._queue.get()
        if isinstance(item, _Failed):
            self.cancel()
            raise item.error
        self._peeked = item  # handed out again by pieces()
        return item
