"""AsyncEngine: the server's only entry into the engine.

Two threads. The engine thread runs the core's step loop (`LLMEngine.step()`:
schedule, execute, update) and hands each step's `CoreOutput` deltas to the
output thread, which detokenizes, checks stop strings and publishes
`RequestOutput` snapshots on per-request asyncio queues (filled with
`call_soon_threadsafe`). A stop string found there comes back to the core
as a "stop" command, so the core may run that request one or two steps more;
those tokens are dropped. The event loop never waits on a model step and the
step loop never waits on text.
"""
from __future__ import annotations

import asyncio
import logging
import queue
import threading
from collections import deque
from typing import AsyncIterator

from halyard_worker.engine.output import CoreOutput
from halyard_worker.engine.output_processor import OutputProcessor
from halyard_worker.engine.types import (
    EngineConfig, EngineStats, InvalidParameter, RequestOutput, SamplingParams,
)

log = logging.getLogger(__name__)


class EngineDeadError(RuntimeError):
    """The engine loop has stopped; no request can be served."""


class RequestFailed(RuntimeError):
    """This request alone failed inside the engine (the others go on)."""


class AsyncEngine:
    """Construct with an `EngineConfig` (or its fields as keywords); the model
    loads in the constructor. `start()` launches the loop thread (generate()
    starts it on first use); `shutdown()` aborts everything and joins it."""

    def __init__(self, config: EngineConfig | None = None, **kwargs):
        from halyard_worker.engine.llm_engine import LLMEngine

        self.config = config or EngineConfig(**kwargs)
        self.engine = LLMEngine(self.config)
        self._outputs = OutputProcessor(self.engine.tokenizer, stream=True)
        self._outbox: queue.SimpleQueue = queue.SimpleQueue()  # core -> output thread, in order
        self._inbox: deque = deque()
        self._wake = threading.Event()
        self._queues: dict[str, tuple[asyncio.AbstractEventLoop, asyncio.Queue]] = {}
        self._lock = threading.Lock()  # guards _queues and tokenizer use
        self._thread: threading.Thread | None = None
        self._output_thread: threading.Thread | None = None
        self._stopping = False
        self._stats = self.engine.stats()

    # -- what the server reads ---------------------------------------------
    @property
    def tokenizer(self):
        """The Hugging Face tokenizer (chat templates, /tokenize)."""
        return self.engine.tokenizer

    @property
    def max_model_len(self) -> int:
        return self.engine.max_model_len

    @property
    def is_running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def stats(self) -> EngineStats:
        """Latest snapshot (refreshed by the loop after every step)."""
        return self._stats

    # -- lifecycle -------------------------------------------------------------
    def start(self) -> None:
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._loop, name="halyard-engine", daemon=True)
        self._output_thread = threading.Thread(target=self._output_loop, name="halyard-output", daemon=True)
        self._thread.start()
        self._output_thread.start()

    def shutdown(self, timeout: float = 30.0) -> None:
        """Abort every in-flight request (each iterator ends with "abort") and stop."""
        self._stopping = True
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._outbox.put(None)
            self._output_thread.join(timeout)
        self._thread = self._output_thread = None
        self._abort_all()
        self.engine.shutdown()

    # -- requests ------------------------------------------------------------
    async def generate(self, request_id: str, prompt: str | list[int], params: SamplingParams,
                       priority: int = 0) -> AsyncIterator[RequestOutput]:
        """Snapshots of one request until it finishes; raises InvalidParameter
        (before any output) for a prompt or parameters the engine cannot take."""
        ids = self._validate(request_id, prompt, params, priority)
        if self._stopping:
            raise EngineDeadError("engine is shut down")
        self.start()
        queue: asyncio.Queue = asyncio.Queue()
        with self._lock:
            if request_id in self._queues:
                raise InvalidParameter("request_id", f"{request_id!r} is already in use")
            self._queues[request_id] = (asyncio.get_running_loop(), queue)
        self._post(("add", request_id, prompt, params, priority, ids))
        finished = False
        try:
            while not finished:
                item = await queue.get()
                if isinstance(item, BaseException):
                    raise item
                finished = item.finished
                if item.finish_reason == "error":
                    raise RequestFailed(item.error or "engine error")
                yield item
        finally:
            if not finished:
                self.abort(request_id)  # consumer went away: free the blocks

    def abort(self, request_id: str) -> None:
        """End a request; its iterator finishes with finish_reason "abort"."""
        self._post(("abort", request_id))

    def _validate(self, request_id, prompt, params, priority) -> list[int]:
        if not isinstance(params, SamplingParams):
            raise InvalidParameter("params", f"must be SamplingParams, got {type(params).__name__}")
        if not isinstance(priority, int) or isinstance(priority, bool):
            raise InvalidParameter("priority", f"must be an integer, got {priority!r}")
        with self._lock:
            return self.engine.tokenize_prompt(prompt)

    def _post(self, command: tuple) -> None:
        self._inbox.append(command)
        self._wake.set()

    # -- the loop thread ---------------------------------------------------
    def _loop(self) -> None:
        engine = self.engine
        while not self._stopping:
            self._drain_inbox()
            if not engine.has_unfinished():
                self._wake.wait(0.5)
                self._wake.clear()
                continue
            try:
                outputs = engine.step()
            except Exception as err:  # a bug must not leave callers hanging
                log.exception("engine step failed; failing in-flight requests")
                self._fail_all(err)
                continue
            self._stats = engine.stats()
            if outputs:
                self._outbox.put(("outputs", outputs))
        self._stats = engine.stats()

    def _drain_inbox(self) -> None:
        while self._inbox:
            command = self._inbox.popleft()
            if command[0] == "add":
                _, rid, prompt, params, priority, ids = command
                try:
                    self.engine.add_request(rid, prompt, params, priority, prompt_ids=ids)
                except Exception as err:
                    self._deliver_error(rid, err)
                    continue
                self._outbox.put(("add", rid, prompt, ids, params))
            else:  # "abort" from a caller, "stop" from the output thread (a stop string)
                out = self.engine.finish_request(command[1], command[0])
                if out is not None:
                    self._outbox.put(("outputs", [out]))
        self._stats = self.engine.stats()

    # -- the output thread -------------------------------------------------
    def _output_loop(self) -> None:
        """Detokenize, check stop strings and publish, off the step loop."""
        while True:
            item = self._outbox.get()
            if item is None:
                return
            kind = item[0]
            with self._lock:
                if kind == "add":
                    self._outputs.add(*item[1:])
                    continue
                if kind == "fail":
                    for rid in item[1]:
                        self._outputs.fail(rid)
                    continue
                snapshots, stopped = self._outputs.process(item[1])
            for rid in stopped:
                self._post(("stop", rid))
            for out in snapshots:
                self._deliver(out)

    def _deliver(self, out: RequestOutput) -> None:
        with self._lock:
            entry = self._queues.get(out.request_id)
            if out.finished:
                self._queues.pop(out.request_id, None)
        if entry is not None:
            loop, queue = entry
            try:
                loop.call_soon_threadsafe(queue.put_nowait, out)
            except RuntimeError:
                pass  # the caller's event loop is closed: nobody is listening

    def _deliver_error(self, request_id: str, err: BaseException) -> None:
        with self._lock:
            entry = self._queues.pop(request_id, None)
        if entry is not None:
            try:
                entry[0].call_soon_threadsafe(entry[1].put_nowait, err)
            except RuntimeError:
                pass

    def _fail_all(self, err: Exception) -> None:
        rids = self.engine.request_ids
        for rid in rids:
            self.engine.abort(rid)
        self._outbox.put(("fail", rids))
        for rid in rids:
            self._deliver_error(rid, RuntimeError(f"engine step failed: {err}"))

    def _abort_all(self) -> None:
        """After both threads stopped: every request still known ends with "abort"."""
        self._drain_inbox()
        for rid in self.engine.request_ids:
            self._outbox.put(("outputs", [self.engine.abort(rid)]))
        self._outbox.put(None)
        self._output_loop()  # the rest of the queue, in this thread
        with self._lock:
            left = list(self._outputs.states)
        for rid in left:
            snapshots, _ = self._outputs.process([CoreOutput(rid, (), "abort")])
            for out in snapshots:
                self._deliver(out)
        self._stats = self.engine.stats()
