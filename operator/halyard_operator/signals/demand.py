"""The routers' demand signal: scale from zero, and the admission queue.

A deployment with `scaling.minReplicas: 0` has no worker to scrape while it
is at zero, so the operator reads its router pods instead: requests held
(waiting for a worker), requests in flight, and the time of the last request
(`halyard:router_requests_held`, `halyard:router_requests_in_flight`,
`halyard:router_last_request_timestamp_seconds`). `demand_floor` is pure:
any held or in-flight request, or one within the scale-down window, keeps at
least one replica; a deployment idle for the whole window goes to zero.

A saturated deployment's excess waits in the routers' admission queues
(`halyard:router_requests_queued{tier}`), not in the workers' queues: a router
sends a backend at most its tier's headroom (batch: 1x the engine's running
batch, so a batch-tier worker reports almost no queue at all). `with_router_queue`
(pure) adds those requests to the workers' queue, so the autoscaler's queue and
surge signals see all the demand that waits.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

from halyard_operator.signals.exposition import ExpositionError, parse_exposition
from halyard_operator.signals.scraper import ScrapeTarget
from halyard_operator.signals.types import DeploymentMetrics

HELD = "halyard:router_requests_held"
IN_FLIGHT = "halyard:router_requests_in_flight"
LAST_REQUEST = "halyard:router_last_request_timestamp_seconds"
QUEUED = "halyard:router_requests_queued"


@dataclass(frozen=True)
class RouterDemand:
    """Summed over the router pods that answered. `last_request`: Unix seconds
    of the newest request any router saw (0 when none has). `queued`: requests
    in the admission queues (every tier), waiting for a worker with room; they
    are also counted in `in_flight`."""

    held: float = 0.0
    in_flight: float = 0.0
    last_request: float = 0.0
    queued: float = 0.0

    @property
    def busy(self) -> bool:
        return self.held > 0 or self.in_flight > 0


def demand_of(texts: list[str]) -> RouterDemand | None:
    """Sum router /metrics bodies; None when none could be read (demand unknown)."""
    held = in_flight = last = queued = 0.0
    read = 0
    for text in texts:
        try:
            samples = parse_exposition(text)
        except ExpositionError:
            continue
        read += 1
        values = {s.name: s.value for s in samples}
        held += values.get(HELD, 0.0)
        in_flight += values.get(IN_FLIGHT, 0.0)
        last = max(last, values.get(LAST_REQUEST, 0.0))
        queued += sum(s.value for s in samples if s.name == QUEUED)
    return RouterDemand(held, in_flight, last, queued) if read else None


def with_router_queue(metrics: DeploymentMetrics | None, demand: RouterDemand | None) -> DeploymentMetrics | None:
    """The workers' signals with the routers' admission queues added to `queue`
    (unchanged when either is unknown: a router that did not answer adds nothing)."""
    if metrics is None or demand is None or not demand.queued:
        return metrics
    return replace(metrics, queue=metrics.queue + demand.queued)


def demand_floor(demand: RouterDemand | None, now: float, window_s: float) -> int | None:
    """Replicas the routers' demand requires: 1 while busy or within `window_s`
    of the last request, 0 once idle for the window, None when unknown."""
    if demand is None:
        return None
    if demand.busy or (demand.last_request and now - demand.last_request < window_s):
        return 1
    return 0


def router_targets(pods: list[dict], port: int) -> list[ScrapeTarget]:
    """Ready router pods with an IP -> their /metrics endpoints."""
    out = []
    for pod in pods:
        meta, status = pod.get("metadata") or {}, pod.get("status") or {}
        ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or ())
        if ready and status.get("podIP") and not meta.get("deletionTimestamp"):
            out.append(ScrapeTarget(meta["name"], f"http://{status['podIP']}:{port}/metrics"))
    return out


async def scrape_demand(targets: list[ScrapeTarget], timeout_s: float = 2.0) -> RouterDemand | None:
    """GET every router's /metrics; None when no router answered."""
    import asyncio

    import aiohttp

    async def one(session: aiohttp.ClientSession, target: ScrapeTarget) -> str | None:
        try:
            async with session.get(target.url, timeout=aiohttp.ClientTimeout(total=timeout_s)) as resp:
                return await resp.text() if resp.status == 200 else None
        except (aiohttp.ClientError, asyncio.TimeoutError):
            return None

    if not targets:
        return None
    async with aiohttp.ClientSession() as session:
        texts = await asyncio.gather(*(one(session, t) for t in targets))
    return demand_of([t for t in texts if t is not None])
