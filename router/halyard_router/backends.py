"""The router's live view of its backends (mutable, owned by one router process).

Membership comes from discovery (pod watch) or the static `--backend` list;
loads from the router's own in-flight counts and the last `/metrics` scrape.
A backend that refused a connection or answered 503 `draining` is benched for
`bench_s` so the next requests skip it without waiting for discovery.
"""
from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

from halyard_router.policy import BackendLoad


@dataclass(frozen=True)
class Backend:
    """A worker that may take requests. `name`: pod name (or the URL for static
    backends); `url`: its root, e.g. http://10.0.0.7:8000."""

    name: str
    url: str


@dataclass(frozen=True)
class Scrape:
    """A backend's vLLM gauges at time `at` (monotonic seconds)."""

    running: float
    waiting: float
    kv_usage: float | None
    at: float


@dataclass
class Backends:
    bench_s: float = 5.0
    stale_s: float = 5.0  # a scrape older than this is ignored
    members: dict = field(default_factory=dict)  # name -> Backend
    in_flight: dict = field(default_factory=dict)  # name -> int
    scrapes: dict = field(default_factory=dict)  # name -> Scrape
    benched: dict = field(default_factory=dict)  # name -> monotonic time the bench ends
    synced: bool = False  # discovery has listed at least once
    listeners: list = field(default_factory=list)  # called (no arguments) on every change
    _changed: asyncio.Event = field(default_factory=asyncio.Event)

    def replace(self, backends: list[Backend]) -> None:
        """New membership (discovery calls this on every pod event)."""
        new = {b.name: b for b in backends}
        if new != self.members or not self.synced:
            self.members = new
            for table in (self.scrapes, self.benched):
                for name in [n for n in table if n not in new]:
                    table.pop(name)
            self.synced = True
            self._wake()

    def bench(self, name: str) -> None:
        self.benched[name] = time.monotonic() + self.bench_s

    def record(self, name: str, scrape: Scrape | None) -> None:
        """A scrape result; None (unreachable) benches the backend."""
        if name not in self.members:
            return
        if scrape is None:
            self.scrapes.pop(name, None)
            self.bench(name)
            return
        previous = self.scrapes.get(name)
        self.scrapes[name] = scrape
        back = self.benched.pop(name, None) is not None
        if back or previous is None or (previous.running, previous.waiting) != (scrape.running, scrape.waiting):
            self._wake()

    def usable(self) -> list[Backend]:
        now = time.monotonic()
        return [b for n, b in self.members.items() if self.benched.get(n, 0.0) <= now]

    def loads(self, exclude: set[str] = frozenset()) -> list[BackendLoad]:
        now = time.monotonic()
        out = []
        for backend in self.usable():
            if backend.name in exclude:
                continue
            scrape = self.scrapes.get(backend.name)
            fresh = scrape is not None and now - scrape.at <= self.stale_s
            out.append(BackendLoad(backend.name, self.in_flight.get(backend.name, 0),
                                   scrape.running if fresh else None, scrape.waiting if fresh else None,
                                   scrape.kv_usage if fresh else None))
        return out

    def acquire(self, name: str) -> None:
        self.in_flight[name] = self.in_flight.get(name, 0) + 1

    def release(self, name: str) -> None:
        self.in_flight[name] = max(0, self.in_flight.get(name, 0) - 1)
        self._wake()

    def _wake(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()
        for listener in self.listeners:
            listener()

    async def wait_change(self, timeout: float) -> None:
        """Until membership, a bench or a load changes, or `timeout` seconds."""
        event = self._changed
        try:
            await asyncio.wait_for(event.wait(), timeout=max(0.0, timeout))
        except asyncio.TimeoutError:
            pass
