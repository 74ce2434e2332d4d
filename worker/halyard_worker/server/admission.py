"""Admission gate: bounded waiting, drain refusal, unique live request ids.

The engine runs at most `max_num_seqs` requests at once; a request beyond that
waits. The gate admits a request only while the requests that would wait stay
within `max_queue` (by its own count of in-flight engine requests, and by the
engine's reported waiting count, which is higher when the KV cache and not the
batch size is the limit). So in-flight work is bounded by
`max_num_seqs + max_queue` and memory never grows without bound.
"""
from __future__ import annotations

import asyncio
import itertools
from typing import Callable

from halyard_worker.server.errors import APIError


class Gate:
    """Counts in-flight engine requests; refuses with 429 (full) or 503 (draining)."""

    def __init__(self, max_running: int, max_queue: int, engine_waiting: Callable[[], int],
                 on_reject: Callable[[str], None] = lambda reason: None):
        self.max_running = max_running
        self.max_queue = max_queue
        self._engine_waiting = engine_waiting
        self._on_reject = on_reject
        self.in_flight = 0
        self.draining = False
        self.drain_expired = False  # set when the drain deadline passed: aborts mean "drain"
        self._live: dict[str, Callable[[], None]] = {}  # engine request id -> abort
        self._idle = asyncio.Event()
        self._idle.set()
        self._suffix = itertools.count(1)
        self._ids: set[str] = set()  # request ids in use (X-Request-Id made unique)

    def would_wait(self, n: int) -> int:
        """Requests waiting if `n` more were admitted now."""
        by_count = self.in_flight + n - self.max_running
        return max(by_count, self._engine_waiting() + n if by_count > 0 else 0)

    def admit(self, n: int) -> None:
        """Reserve `n` engine requests or raise APIError (503 draining, 429 full)."""
        if self.draining:
            self._on_reject("draining")
            raise APIError(503, "the server is draining (shutting down); retry on another replica",
                           code="draining", headers={"Retry-After": "1"})
        if self.would_wait(n) > self.max_queue:
            self._on_reject("queue_full")
            raise APIError(429, f"the admission queue is full ({self.max_queue} waiting requests "
                                "allowed, --max-queue); retry later",
                           code="queue_full", headers={"Retry-After": "1"})
        self.in_flight += n
        self._idle.clear()

    def release(self, n: int) -> None:
        self.in_flight -= n
        if self.in_flight <= 0:
            self.in_flight = 0
            self._idle.set()

    def reserve_id(self, wanted: str) -> str:
        """`wanted` if no live request uses it, else `wanted-N`; held until `free_id`."""
        candidate = wanted
        while candidate in self._ids:
            candidate = f"{wanted}-{next(self._suffix)}"
        self._ids.add(candidate)
        return candidate

    def free_id(self, request_id: str) -> None:
        self._ids.discard(request_id)

    def track(self, engine_id: str, abort: Callable[[], None]) -> None:
        self._live[engine_id] = abort

    def untrack(self, engine_id: str) -> None:
        self._live.pop(engine_id, None)

    def abort_all(self) -> int:
        aborts = list(self._live.values())
        for abort in aborts:
            abort()
        return len(aborts)

    async def wait_idle(self, timeout: float) -> bool:
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
            return True
        except asyncio.TimeoutError:
            return False
