"""Event-driven reconciles: coalesced pokes, the fast loop and the safety net.

`Trigger.poke(key)` asks for one reconcile of a deployment soon: pokes that
arrive before it starts (a burst of pod and child events) become that one
reconcile; a poke during a reconcile queues exactly one more. `poke_all()`
does the same for every deployment (a Node change), at most once per delay.

Two operator-wide loops replace per-object timers:
- `fast_loop`: every `metrics_interval`, the deployments whose decisions
  depend on live signals or time (autoscaled, or using spot) are sampled and
  re-decided, all at once with at most `concurrency` in flight; each one's
  scrapes have their own timeouts, so a slow or dead pod delays only its
  own deployment.
- `safety_net`: every `reconcile_interval` (minutes), every deployment is
  poked once, spread over the interval, in case an event was missed.
"""
from __future__ import annotations

import asyncio
import logging
from typing import Awaitable, Callable, Iterable

log = logging.getLogger(__name__)

Key = tuple[str, str]  # (namespace, name) of an LLMDeployment


class Trigger:
    """`run(key)` reconciles one deployment (and takes its lock); `locks[key]` is that lock."""

    def __init__(self, run: Callable[[Key], Awaitable[None]], keys: Callable[[], Iterable[Key]],
                 delay_s: float = 0.2, retry_s: float = 10.0):
        self.run, self.keys, self.delay_s, self.retry_s = run, keys, delay_s, retry_s
        self.pending: set[Key] = set()
        self.tasks: set[asyncio.Task] = set()
        self.all_pending = False
        self.later: dict[Key, asyncio.TimerHandle] = {}

    def poke(self, key: Key) -> None:
        if key in self.pending:
            return
        self.pending.add(key)
        self._spawn(self._fire(key))

    def poke_all(self) -> None:
        if not self.all_pending:
            self.all_pending = True
            self._spawn(self._fire_all())

    def poke_later(self, key: Key, delay_s: float) -> None:
        """Poke `key` in `delay_s` (a time-dependent condition comes due); the sooner of two requests wins."""
        loop = asyncio.get_running_loop()
        at = loop.time() + delay_s
        current = self.later.get(key)
        if current is not None and current.when() <= at:
            return
        if current is not None:
            current.cancel()
        self.later[key] = loop.call_at(at, self._due, key)

    def _due(self, key: Key) -> None:
        self.later.pop(key, None)
        self.poke(key)

    def started(self, key: Key) -> None:
        """Called by `run` once it holds the lock: later pokes queue a new reconcile."""
        self.pending.discard(key)

    def _spawn(self, coro) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _fire(self, key: Key) -> None:
        await asyncio.sleep(self.delay_s)
        try:
            await self.run(key)
        except Exception as exc:  # noqa: BLE001 - retried: the next poke or the safety net would anyway
            self.pending.discard(key)
            log.warning("Reconcile of LLMDeployment %s/%s failed (%r); retrying in %.0fs", *key, exc, self.retry_s)
            await asyncio.sleep(self.retry_s)
            self.poke(key)

    async def _fire_all(self) -> None:
        await asyncio.sleep(self.delay_s)
        self.all_pending = False
        for key in list(self.keys()):
            self.poke(key)

    def cancel(self) -> None:
        for handle in self.later.values():
            handle.cancel()
        self.later.clear()
        for task in list(self.tasks):
            task.cancel()


async def fast_loop(interval_s: float, keys: Callable[[], Iterable[Key]],
                    sample: Callable[[Key], Awaitable[None]], concurrency: int = 16) -> None:
    """Every `interval_s`: `sample(key)` (scrape, then reconcile) for each key, bounded."""
    sem = asyncio.Semaphore(concurrency)

    async def one(key: Key) -> None:
        async with sem:
            try:
                await sample(key)
            except Exception as exc:  # noqa: BLE001 - one deployment's failure must not stop the others
                log.warning("Scaling reconcile of LLMDeployment %s/%s failed: %r", *key, exc)

    while True:
        await asyncio.sleep(interval_s)
        await asyncio.gather(*(one(key) for key in list(keys())))


async def safety_net(interval_s: float, keys: Callable[[], Iterable[Key]], poke: Callable[[Key], None]) -> None:
    """Poke every deployment once per `interval_s`, evenly spread over it."""
    while True:
        batch = list(keys())
        if not batch:
            await asyncio.sleep(interval_s)
            continue
        step = interval_s / len(batch)
        for key in batch:
            await asyncio.sleep(step)
            poke(key)
