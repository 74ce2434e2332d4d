"""Admission gate: bounded waiting, drain refusal, impossible requests refused.

The engine runs at most `max_num_seqs` requests at once; a request beyond that
waits. The gate admits a request only while the requests that would wait stay
within `max_queue` (by its own count of in-flight engine requests, and by the
engine's reported waiting count, which is higher when the KV cache and not the
batch size is the limit). So in-flight work is bounded by
`max_num_seqs + max_queue` and memory never grows without bound.
"""
from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Callable

from halyard_worker.server.errors import APIError

if TYPE_CHECKING:
    from halyard_worker.server.request import ServedRequest


class Gate:
    """Counts in-flight engine requests; refuses with 429 (full) or 503 (draining).
    Knows the live `ServedRequest`s, so the drain can abort them."""

    def __init__(self, max_running: int, max_queue: int, engine_waiting: Callable[[], int],
                 on_reject: Callable[[str], None] = lambda reason: None):
        self.max_running = max_running
        self.max_queue = max_queue
        self._engine_waiting = engine_waiting
        self._on_reject = on_reject
        self.in_flight = 0
        self.draining = False
        self.drain_expired = False  # set when the drain deadline passed: aborts mean "drain"
        self._live: dict[ServedRequest, int] = {}  # request -> slots it holds
        self._idle = asyncio.Event()
        self._idle.set()

    @property
    def capacity(self) -> int:
        """Engine requests that can ever be in flight at once."""
        return self.max_running + self.max_queue

    def check_possible(self, n: int, param: str) -> None:
        """400 for a request that could never be admitted, even on an idle server."""
        if n > self.capacity:
            raise APIError(400, f"{param}: {n} prompts in one request, but this server runs at most "
                                f"{self.max_running} at once and queues {self.max_queue} "
                                f"(--max-num-seqs + --max-queue = {self.capacity}); send at most "
                                f"{self.capacity} per request", param=param, code="too_many_prompts")

    def would_wait(self, n: int) -> int:
        """Requests waiting if `n` more were admitted now."""
        by_count = self.in_flight + n - self.max_running
        if by_count <= 0:
            return 0
        held = self._engine_waiting()  # held back by the KV cache: all `n` would wait too
        return max(by_count, held + n) if held else by_count

    def admit(self, request: ServedRequest) -> ServedRequest:
        """Reserve `request.n` engine slots or raise APIError (503 draining, 429 full)."""
        n = request.n
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
        self._live[request] = n
        self._idle.clear()
        return request

    def release(self, request: ServedRequest, k: int) -> None:
        """`request` gave back `k` of its slots (it releases each exactly once)."""
        held = self._live.get(request, 0) - k
        if held > 0:
            self._live[request] = held
        else:
            self._live.pop(request, None)
        self.in_flight = max(0, self.in_flight - k)
        if self.in_flight == 0:
            self._idle.set()

    def abort_all(self) -> int:
        live = list(self._live)
        for request in live:
            request.abort()
        return len(live)

    async def wait_idle(self, timeout: float) -> bool:
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
            return True
        except asyncio.TimeoutError:
            return False
