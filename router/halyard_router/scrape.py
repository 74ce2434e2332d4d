"""Backend load refresh: every `interval` seconds each backend's `/metrics` gives
its `vllm:num_requests_running`, `vllm:num_requests_waiting` and
`vllm:kv_cache_usage_perc`. A refused connection benches the backend (it is gone
or not listening yet); a slow answer only leaves the last figures to go stale:
a busy worker must not lose its traffic for answering late.
"""
from __future__ import annotations

import asyncio
import logging
import time

import aiohttp

from halyard_operator.signals.exposition import ExpositionError, snapshot_from_text
from halyard_router.backends import Backend, Backends, Scrape

log = logging.getLogger(__name__)


async def scrape_one(session: aiohttp.ClientSession, backend: Backend, timeout: float) -> Scrape | None | bool:
    """A Scrape, None when the backend refused the connection, False when the
    answer was slow or unreadable (keep the last figures)."""
    try:
        async with session.get(f"{backend.url}/metrics", timeout=aiohttp.ClientTimeout(total=timeout)) as resp:
            if resp.status != 200:
                return False
            snapshot = snapshot_from_text(await resp.text())
    except aiohttp.ClientConnectorError:
        return None
    except (aiohttp.ClientError, asyncio.TimeoutError, ExpositionError):
        return False
    gauges = snapshot.gauges
    return Scrape(gauges.get("running", 0.0), gauges.get("waiting", 0.0), gauges.get("kv_usage"), time.monotonic())


async def scrape_forever(session: aiohttp.ClientSession, backends: Backends, interval: float) -> None:
    timeout = max(1.0, 2 * interval)
    while True:
        members = list(backends.members.values())
        results = await asyncio.gather(*(scrape_one(session, b, timeout) for b in members))
        for backend, result in zip(members, results):
            if result is not False:
                backends.record(backend.name, result)
        await asyncio.sleep(interval)
