"""Run one API request's prompts on the engine and merge their outputs.

Each prompt (choice) runs in its own task that pushes `Piece`s onto one
queue, so several prompts stream interleaved, a client disconnect cancels
everything at once, and cleanup (abort in the engine, admission release,
metrics) happens in the task that owns the engine request whatever the
consumer does.
"""
from __future__ import annotations

import asyncio
import inspect
from dataclasses import dataclass
from typing import Any, AsyncIterator

from halyard_worker.server.admission import Gate
from halyard_worker.server.errors import APIError
from halyard_worker.server.metrics import RequestTimer, ServerMetrics

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
    """One engine request: `engine_id` is unique among live requests."""

    index: int
    engine_id: str
    prompt_ids: tuple[int, ...]
    params: Any  # engine SamplingParams
    priority: int


class _Failed:
    def __init__(self, error: BaseException):
        self.error = error


def abort_engine(engine, engine_id: str) -> None:
    result = engine.abort(engine_id)
    if inspect.isawaitable(result):
        asyncio.ensure_future(result)


def _as_api_error(err: Exception) -> Exception:
    from halyard_worker.engine.types import InvalidParameter

    if isinstance(err, InvalidParameter):
        return APIError(400, str(err), param=err.param)
    return err


class ChoiceRun:
    """Drives several Jobs; iterate for Pieces; `cancel()` aborts them all."""

    def __init__(self, engine, gate: Gate, metrics: ServerMetrics, jobs: list[Job]):
        self._engine, self._gate, self._metrics = engine, gate, metrics
        self._queue: asyncio.Queue = asyncio.Queue()
        self._open = len(jobs)
        self._peeked = None
        self._tasks = [asyncio.ensure_future(self._drive(job)) for job in jobs]

    async def _drive(self, job: Job) -> None:
        timer = RequestTimer(self._metrics)
        reason = "abort"
        self._gate.track(job.engine_id, lambda: abort_engine(self._engine, job.engine_id))
        try:
            stream = self._engine.generate(job.engine_id, list(job.prompt_ids), job.params,
                                           priority=job.priority)
            prompt_lps_sent = False
            async for out in stream:
                timer.on_tokens(len(out.new_token_ids), len(job.prompt_ids))
                finish = None
                if out.finished:
                    reason = finish = self._reason(out.finish_reason)
                prompt_lps = None if prompt_lps_sent else getattr(out, "prompt_logprobs", None)
                prompt_lps_sent = prompt_lps_sent or prompt_lps is not None
                self._queue.put_nowait(Piece(job.index, out.new_text, tuple(out.new_token_ids),
                                             out.new_logprobs, finish, len(job.prompt_ids), prompt_lps))
                if out.finished:
                    return
            reason = self._reason("abort")
            self._queue.put_nowait(Piece(job.index, "", (), None, reason, len(job.prompt_ids)))
        except asyncio.CancelledError:
            abort_engine(self._engine, job.engine_id)
            raise
        except Exception as err:  # surfaced to the consumer (e.g. InvalidParameter)
            reason = "error"
            self._queue.put_nowait(_Failed(_as_api_error(err)))
        finally:
            self._gate.untrack(job.engine_id)
            self._gate.release(1)
            if reason != "error":
                timer.on_finish(reason)
            self._open -= 1
            if self._open == 0:
                self._queue.put_nowait(None)

    def _reason(self, engine_reason: str | None) -> str:
        if engine_reason == "abort" and self._gate.drain_expired:
            return DRAIN_REASON
        return engine_reason or "stop"

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

    def cancel(self) -> None:
        for task in self._tasks:
            task.cancel()
