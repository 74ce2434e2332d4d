"""Async scraper: GET each worker pod's /metrics with bounded concurrency and timeouts.

A pod that does not answer (timeout, connection error, non-200, unparsable
body) is recorded as a failed scrape: its window keeps the last good sample
and flags it stale, never zeros.
"""
from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

import aiohttp

from halyard_operator.signals.exposition import ExpositionError, PodSnapshot, snapshot_from_text
from halyard_operator.signals.window import DeploymentWindow


@dataclass(frozen=True)
class ScrapeTarget:
    """One worker pod: `url` is its metrics endpoint, e.g. http://10.0.0.5:8000/metrics."""

    pod: str
    url: str
    model_name: str | None = None


@dataclass(frozen=True)
class ScrapeResult:
    pod: str
    snapshot: PodSnapshot | None
    error: str | None = None


async def _fetch(session: aiohttp.ClientSession, target: ScrapeTarget, sem: asyncio.Semaphore,
                 timeout_s: float) -> ScrapeResult:
    async with sem:
        try:
            async with session.get(target.url, timeout=aiohttp.ClientTimeout(total=timeout_s)) as resp:
                if resp.status != 200:
                    return ScrapeResult(target.pod, None, f"HTTP {resp.status}")
                body = await resp.text()
            return ScrapeResult(target.pod, snapshot_from_text(body, target.model_name))
        except (aiohttp.ClientError, asyncio.TimeoutError, ExpositionError) as err:
            return ScrapeResult(target.pod, None, f"{type(err).__name__}: {err}")


async def scrape_all(targets: list[ScrapeTarget], *, concurrency: int = 32, timeout_s: float = 2.0,
                     session: aiohttp.ClientSession | None = None) -> list[ScrapeResult]:
    """Scrape every target; at most `concurrency` requests in flight, each within `timeout_s`."""
    sem = asyncio.Semaphore(max(1, concurrency))
    own = session is None
    session = session or aiohttp.ClientSession()
    try:
        return list(await asyncio.gather(*(_fetch(session, t, sem, timeout_s) for t in targets)))
    finally:
        if own:
            await session.close()


async def scrape_into(window: DeploymentWindow, targets: list[ScrapeTarget], now: float | None = None,
                      **kwargs) -> list[ScrapeResult]:
    """Scrape `targets` and record the results into `window` (pods not in targets are dropped)."""
    results = await scrape_all(targets, **kwargs)
    at = time.time() if now is None else now
    window.retain({t.pod for t in targets})
    for result in results:
        window.observe(result.pod, at, result.snapshot)
    return results
