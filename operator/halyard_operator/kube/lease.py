"""Leader election on a coordination.k8s.io/v1 Lease, the way client-go does it.

Candidates read the Lease, and write it only with the resourceVersion they
read (PUT), so two candidates can never both win one round: the loser gets
409. A holder renews every `retry_period_s`; a renewal that has not succeeded
for `renew_deadline_s` means leadership is lost. Another candidate takes the
Lease once the record it observed has not changed for `lease_duration_s` of
its *own* clock (the holder's timestamps are never compared with local time,
so clock skew between nodes does not matter). renew deadline < lease
duration: a holder that stopped renewing has given up before anyone else may
take over. A clean stop releases the Lease (no holder, duration 1 s) so a
standby takes over at once.
"""
from __future__ import annotations

import asyncio
import logging
import random
import time
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from typing import Callable

from halyard_operator.kube.client import KubeClient, KubeError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LeaseSettings:
    """Where the Lease lives and the election's timing (seconds);
    retry_period_s < renew_deadline_s < lease_duration_s."""

    namespace: str
    identity: str
    name: str = "halyard-operator"
    lease_duration_s: float = 15.0
    renew_deadline_s: float = 10.0
    retry_period_s: float = 2.0

    def __post_init__(self) -> None:
        if not 0 < self.retry_period_s < self.renew_deadline_s < self.lease_duration_s:
            raise ValueError("leader election needs retry period < renew deadline < lease duration, got "
                             f"{self.retry_period_s}s, {self.renew_deadline_s}s, {self.lease_duration_s}s")


@dataclass(frozen=True)
class LeaseRecord:
    """The Lease's spec as read (holder None or "" = free) plus its resourceVersion."""

    holder: str | None
    duration_s: int
    acquire_time: str | None
    renew_time: str | None
    transitions: int
    resource_version: str | None = None

    @classmethod
    def from_lease(cls, lease: dict) -> "LeaseRecord":
        spec = lease.get("spec") or {}
        return cls(holder=spec.get("holderIdentity") or None, duration_s=int(spec.get("leaseDurationSeconds") or 0),
                   acquire_time=spec.get("acquireTime"), renew_time=spec.get("renewTime"),
                   transitions=int(spec.get("leaseTransitions") or 0),
                   resource_version=(lease.get("metadata") or {}).get("resourceVersion"))


def next_record(current: LeaseRecord | None, identity: str, duration_s: float, now: str) -> LeaseRecord:
    """The record a candidate writes to take or renew the Lease (pure)."""
    if current is not None and current.holder == identity:
        return replace(current, duration_s=int(duration_s), renew_time=now)
    transitions = 0 if current is None else current.transitions + (1 if current.holder else 0)
    return LeaseRecord(holder=identity, duration_s=int(duration_s), acquire_time=now, renew_time=now,
                       transitions=transitions, resource_version=current.resource_version if current else None)


def may_take(current: LeaseRecord, identity: str, observed_at: float, now: float) -> bool:
    """Whether `identity` may write the Lease: it is free, ours, or its record
    has not changed for its own duration since we first saw it (local clock)."""
    return current.holder in (None, identity) or now >= observed_at + current.duration_s


def micro_time(at: float | None = None) -> str:
    """RFC 3339 with microseconds (Kubernetes MicroTime)."""
    moment = datetime.fromtimestamp(time.time() if at is None else at, tz=timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def lease_body(settings: LeaseSettings, record: LeaseRecord) -> dict:
    meta = {"name": settings.name, "namespace": settings.namespace,
            "labels": {"app.kubernetes.io/name": "halyard-operator"}}
    if record.resource_version:
        meta["resourceVersion"] = record.resource_version
    spec = {"holderIdentity": record.holder or "", "leaseDurationSeconds": max(1, record.duration_s),
            "acquireTime": record.acquire_time, "renewTime": record.renew_time,
            "leaseTransitions": record.transitions}
    return {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": meta, "spec": spec}


class LeaseElector:
    """acquire() waits until this candidate holds the Lease; hold() renews it
    and returns when leadership is lost; release() gives it up."""

    def __init__(self, kube: KubeClient, settings: LeaseSettings, clock: Callable[[], float] = time.monotonic):
        self.kube, self.settings, self.clock = kube, settings, clock
        self._observed: tuple[LeaseRecord | None, float] = (None, 0.0)
        self.leading = False

    async def try_acquire_or_renew(self) -> bool:
        s = self.settings
        lease = await self.kube.get("Lease", s.name, s.namespace)
        if lease is None:
            status, _ = await self.kube.create(lease_body(s, next_record(None, s.identity, s.lease_duration_s,
                                                                          micro_time())))
            return self._won(status != 409)
        current, now = LeaseRecord.from_lease(lease), self.clock()
        seen, seen_at = self._observed
        if seen is None or (seen.holder, seen.renew_time, seen.duration_s) != \
                (current.holder, current.renew_time, current.duration_s):
            self._observed = (current, now)
            seen_at = now
        if not may_take(current, s.identity, seen_at, now):
            return self._won(False)
        body = lease_body(s, next_record(current, s.identity, s.lease_duration_s, micro_time()))
        status, _ = await self.kube.replace(body, ok=(409,))
        return self._won(status != 409)

    def _won(self, won: bool) -> bool:
        if won and not self.leading:
            log.info("Acquired Lease %s/%s as %s", self.settings.namespace, self.settings.name, self.settings.identity)
        self.leading = won  # False: another holder's record is valid, or our write lost a race (409)
        return won

    async def acquire(self) -> None:
        """Return once this candidate holds the Lease (a standby waits here)."""
        log.info("Waiting for Lease %s/%s as %s", self.settings.namespace, self.settings.name, self.settings.identity)
        while not await self._attempt():
            await asyncio.sleep(self.settings.retry_period_s * (1 + 0.2 * random.random()))

    async def hold(self) -> None:
        """Renew every retry period; return when no renewal succeeded for the renew deadline."""
        last_ok = self.clock()
        while True:
            await asyncio.sleep(self.settings.retry_period_s)
            if await self._attempt():
                last_ok = self.clock()
            elif self.clock() - last_ok >= self.settings.renew_deadline_s or not self.leading:
                self.leading = False
                log.error("Lost Lease %s/%s", self.settings.namespace, self.settings.name)
                return

    async def _attempt(self) -> bool:
        try:
            return await asyncio.wait_for(self.try_acquire_or_renew(), timeout=self.settings.retry_period_s * 2)
        except (KubeError, OSError, asyncio.TimeoutError) as exc:
            log.warning("Lease %s/%s: %s", self.settings.namespace, self.settings.name, exc)
            return False

    async def release(self) -> None:
        """Hand the Lease back (holder cleared, duration 1 s) if we still hold it."""
        if not self.leading:
            return
        self.leading = False
        s = self.settings
        try:
            lease = await self.kube.get("Lease", s.name, s.namespace)
            if lease is None or LeaseRecord.from_lease(lease).holder != s.identity:
                return
            now = micro_time()
            record = replace(LeaseRecord.from_lease(lease), holder=None, duration_s=1, acquire_time=now, renew_time=now)
            await self.kube.replace(lease_body(s, record), ok=(409,))
            log.info("Released Lease %s/%s", s.namespace, s.name)
        except (KubeError, OSError) as exc:
            log.warning("Lease %s/%s not released: %s", s.namespace, s.name, exc)
