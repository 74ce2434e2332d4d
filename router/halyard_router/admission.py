"""Admission: a request that finds every backend past its tier's headroom waits
here instead of being refused at once (the idea of llm-d's flow control).

The queue is bounded in count (`--queue-max`) and, per request, in time: each
tier has its own wait budget (`--queue-wait-batch` < `standard` < `critical`).
A request leaves the queue when load drops (a request ends, a backend joins,
a scrape reports less work): waiters are admitted strictly by tier, then in
arrival order. Past its budget, or when the queue is full and no lower-tier
waiter can make room, a request is shed with 429.

The ordering and the capacity arithmetic are pure (`admissible`, `victim`, `with_room_first`);
`AdmissionQueue` only parks futures and wakes them.
"""
from __future__ import annotations

import asyncio
import bisect
import heapq
import itertools
import time
from dataclasses import dataclass, field
from typing import Callable, Mapping, Sequence

from halyard_router.policy import BackendLoad
from halyard_router.tiers import HEADROOM, RANK

ADMITTED, TIMEOUT, FULL, EVICTED = "admitted", "timeout", "full", "evicted"
RECHECK_S = 1.0  # a waiting request looks at the loads again at least this often


def tier_limit(tier: str, saturation: int) -> float:
    """Load (requests) at which a backend has no room left for this tier."""
    return saturation * HEADROOM[tier]


def admissible(tiers: Sequence[str], loads: Sequence[float], saturation: int, pending: int = 0) -> int:
    """How many of `tiers` (queue order) may start now. Each admitted request,
    and each of `pending` admitted ones not yet counted in `loads`, takes a slot
    on the least loaded backend; the first that finds no backend below its
    tier's limit stops the walk (headroom grows with the tier, so nothing behind
    it would fit either). No backend at all: every one may go (to the hold)."""
    if not loads:
        return len(tiers)
    heap = list(loads)
    heapq.heapify(heap)
    for _ in range(pending):
        heapq.heapreplace(heap, heap[0] + 1)
    for admitted, tier in enumerate(tiers):
        if heap[0] >= tier_limit(tier, saturation):
            return admitted
        heapq.heapreplace(heap, heap[0] + 1)
    return len(tiers)


def with_room_first(order: Sequence[str], loads: Sequence[BackendLoad], tier: str, saturation: int) -> list[str]:
    """The policy's candidates, those below the tier's limit first (each group
    keeps the policy's order): an admitted request goes where it has room."""
    limit = tier_limit(tier, saturation)
    full = {b.name for b in loads if b.load >= limit}
    return [n for n in order if n not in full] + [n for n in order if n in full]


def victim(ranks: Sequence[int], incoming: int) -> int | None:
    """Index (in queue order) of the waiter a full queue gives up for an arriving
    request of rank `incoming`: the newest of the lowest class, if that class is
    lower than the arrival's; None: the arrival itself is refused."""
    if not ranks or max(ranks) <= incoming:
        return None
    lowest = max(ranks)
    return max(i for i, rank in enumerate(ranks) if rank == lowest)


@dataclass(order=True)
class _Waiter:
    rank: int
    seq: int
    tier: str = field(compare=False)
    future: asyncio.Future = field(compare=False)


class AdmissionQueue:
    """Waiting requests of one router process. `loads()` gives the current load of
    every usable backend; `pump()` must run whenever load drops or membership
    changes (the router's `Backends` calls it)."""

    def __init__(self, loads: Callable[[], list[float]], saturation: int, max_waiting: int,
                 waits: Mapping[str, float]):
        self.loads, self.saturation, self.max_waiting, self.waits = loads, saturation, max_waiting, waits
        self.waiting: list[_Waiter] = []  # queue order: (rank, seq)
        self.in_transit = 0  # admitted, not yet in a backend's load
        self._seq = itertools.count()

    def depth(self, tier: str) -> int:
        return sum(1 for w in self.waiting if w.tier == tier)

    async def admit(self, tier: str, budget: float) -> tuple[str, float]:
        """Wait (at most `budget` seconds) until the request may go to a backend.
        Returns (outcome, seconds waited); the outcome is ADMITTED, TIMEOUT, FULL or
        EVICTED. After ADMITTED the caller must reach a backend (acquire its slot)
        without awaiting anything else first."""
        rank = RANK[tier]
        ahead = any(w.rank <= rank for w in self.waiting)
        if not ahead and admissible([tier], self.loads(), self.saturation, self.in_transit):
            return ADMITTED, 0.0
        if budget <= 0:
            return TIMEOUT, 0.0
        if len(self.waiting) >= self.max_waiting and not self._evict_for(rank):
            return FULL, 0.0
        waiter = _Waiter(rank, next(self._seq), tier, asyncio.get_running_loop().create_future())
        bisect.insort(self.waiting, waiter)
        started = time.monotonic()
        try:
            while not waiter.future.done() and (left := started + budget - time.monotonic()) > 0:
                await asyncio.wait((waiter.future,), timeout=min(left, RECHECK_S))
                self.pump()  # room can also appear without an event (a stale scrape ages out)
        except asyncio.CancelledError:  # the client left
            if self._settle(waiter) == ADMITTED:
                self.pump()  # its slot goes to the next waiter
            raise
        return self._settle(waiter), time.monotonic() - started

    def pump(self) -> None:
        """Admit every waiter that fits now, highest tier first."""
        if not self.waiting:
            return
        count = admissible([w.tier for w in self.waiting], self.loads(), self.saturation, self.in_transit)
        admitted, self.waiting = self.waiting[:count], self.waiting[count:]
        for waiter in admitted:
            waiter.future.set_result(ADMITTED)
        self.in_transit += count

    def _evict_for(self, rank: int) -> bool:
        index = victim([w.rank for w in self.waiting], rank)
        if index is None:
            return False
        self.waiting.pop(index).future.set_result(EVICTED)
        return True

    def _settle(self, waiter: _Waiter) -> str:
        """The waiter's outcome once its wait ended (admitted, evicted, timed out
        or cancelled because the client left)."""
        if not waiter.future.done():
            self.waiting.remove(waiter)
            waiter.future.cancel()
            return TIMEOUT
        outcome = waiter.future.result()
        if outcome == ADMITTED:
            self.in_transit -= 1
        return outcome
