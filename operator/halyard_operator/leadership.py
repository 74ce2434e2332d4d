"""Run the kopf operator only while holding the Lease (two or more replicas).

A standby waits in `LeaseElector.acquire()` and runs no handler, timer or
watch: it cannot write anything. The leader runs kopf and renews the Lease
beside it. When a renewal has failed for the renew deadline the process
exits at once (exit code 1, like controller-runtime's "leader election
lost"): no reconcile may write after another replica can have taken over,
and the container restarts as a standby. A clean stop (SIGTERM: kopf stops
its handlers first) releases the Lease so a standby takes over immediately.
"""
from __future__ import annotations

import asyncio
import logging
import os
import socket
import uuid
from pathlib import Path
from typing import Awaitable, Callable

from halyard_operator.kube.client import KubeClient
from halyard_operator.kube.connection import SA_DIR, Connection
from halyard_operator.kube.lease import LeaseElector, LeaseSettings

log = logging.getLogger(__name__)


def default_identity() -> str:
    """The pod name (HOSTNAME in a pod) plus a random suffix: a restarted container is a new candidate."""
    return f"{os.environ.get('POD_NAME') or socket.gethostname()}_{uuid.uuid4().hex[:8]}"


def default_namespace() -> str | None:
    """POD_NAMESPACE, else the service account's namespace, else None."""
    if os.environ.get("POD_NAMESPACE"):
        return os.environ["POD_NAMESPACE"]
    path = Path(SA_DIR) / "namespace"
    return path.read_text().strip() if path.exists() else None


def lost_leadership() -> None:
    log.error("Leader election lost: exiting so that no write follows another replica's")
    logging.shutdown()
    os._exit(1)


async def run_elected(connection: Connection, settings: LeaseSettings,
                      operator: Callable[[], Awaitable[None]],
                      on_lost: Callable[[], None] = lost_leadership) -> None:
    """Wait for the Lease, then run `operator()` while renewing it.

    kopf gets no stop flag: a flag nobody sets leaves kopf's waiter task for
    it running, and kopf waits 5 s for such tasks at every exit. SIGTERM is
    kopf's own signal handling; a lost Lease exits the process (`on_lost`),
    or, where `on_lost` returns (tests), cancels the operator."""
    async with KubeClient(connection, timeout_s=settings.retry_period_s * 2) as kube:
        elector = LeaseElector(kube, settings)
        await elector.acquire()
        holder = asyncio.create_task(elector.hold(), name="lease-renewal")
        running = asyncio.create_task(operator(), name="operator")
        done, _ = await asyncio.wait({holder, running}, return_when=asyncio.FIRST_COMPLETED)
        if holder in done:
            on_lost()
            running.cancel()
            await asyncio.gather(running, return_exceptions=True)
            return
        holder.cancel()
        await elector.release()
        running.result()  # re-raise the operator's own failure, if any
