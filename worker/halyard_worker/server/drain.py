"""Graceful drain: SIGTERM -> refuse new work, finish in-flight, then stop.

States: serving -> draining -> stopped. While draining `/ready` is 503 and new
requests get 503; in-flight requests run until `drain_timeout` seconds have
passed, then the rest are aborted and end with finish_reason "drain" and the
output they had (streams get a final chunk, then `[DONE]`).
"""
from __future__ import annotations

import asyncio
import logging

from halyard_worker.server.admission import Gate

log = logging.getLogger("halyard_worker.server")

# Time allowed, after aborting at the deadline, for handlers to send their
# final chunks before the HTTP server closes (seconds).
FLUSH_GRACE = 5.0


class Drainer:
    """Runs the drain once; `state` is "serving", "draining" or "stopped"."""

    def __init__(self, gate: Gate, timeout: float, on_start=lambda: None):
        self.gate = gate
        self.timeout = timeout
        self.state = "serving"
        self._on_start = on_start
        self._task: asyncio.Task | None = None

    def start(self) -> asyncio.Task:
        """Begin draining (idempotent); the task finishes when it is safe to exit."""
        if self._task is None:
            self.state = "draining"
            self.gate.draining = True
            self._on_start()
            self._task = asyncio.ensure_future(self._run())
        return self._task

    async def _run(self) -> None:
        log.info("draining: %d in-flight requests, up to %.1fs", self.gate.in_flight, self.timeout)
        if not await self.gate.wait_idle(self.timeout):
            self.gate.drain_expired = True
            aborted = self.gate.abort_all()
            log.warning("drain deadline passed: aborted %d requests", aborted)
            await self.gate.wait_idle(FLUSH_GRACE)
        self.state = "stopped"
        log.info("drained")
