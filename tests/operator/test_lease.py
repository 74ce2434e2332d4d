"""Lease-based leader election: one holder at a time, take-over after the
lease duration (on the candidate's own clock), release hands over at once."""
from __future__ import annotations

import asyncio
import copy

import pytest

from halyard_operator.kube.lease import LeaseElector, LeaseRecord, LeaseSettings, may_take, next_record
from halyard_operator.leadership import run_elected


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class LeaseStore:
    """The API server's behaviour for one Lease: resourceVersion checked on PUT (409 when stale)."""

    def __init__(self) -> None:
        self.obj: dict | None = None
        self.version = 0
        self.failing = False

    async def get(self, kind, name, namespace):
        if self.failing:
            raise OSError("connection refused")
        return copy.deepcopy(self.obj)

    async def create(self, obj):
        if self.obj is not None:
            return 409, None
        return 201, self._store(obj)

    async def replace(self, obj, ok=()):
        if self.failing:
            raise OSError("connection refused")
        if obj["metadata"].get("resourceVersion") != self.obj["metadata"]["resourceVersion"]:
            return 409, None
        return 200, self._store(obj)

    def _store(self, obj):
        self.version += 1
        self.obj = copy.deepcopy(obj)
        self.obj["metadata"]["resourceVersion"] = str(self.version)
        return copy.deepcopy(self.obj)

    @property
    def holder(self):
        return self.obj["spec"]["holderIdentity"]


def settings(identity: str) -> LeaseSettings:
    return LeaseSettings(namespace="halyard-system", identity=identity, lease_duration_s=15,
                         renew_deadline_s=10, retry_period_s=2)


def test_settings_must_order_retry_renew_and_duration():
    with pytest.raises(ValueError, match="retry period < renew deadline < lease duration"):
        LeaseSettings(namespace="n", identity="a", lease_duration_s=10, renew_deadline_s=10)


def test_next_record_keeps_acquire_time_on_renewal_and_counts_transitions():
    mine = LeaseRecord("a", 15, "t0", "t0", 3, "7")
    assert next_record(mine, "a", 15, "t1") == LeaseRecord("a", 15, "t0", "t1", 3, "7")
    taken = next_record(mine, "b", 15, "t2")
    assert (taken.holder, taken.acquire_time, taken.transitions, taken.resource_version) == ("b", "t2", 4, "7")
    assert next_record(LeaseRecord(None, 1, "t", "t", 4, "8"), "b", 15, "t3").transitions == 4


def test_may_take_only_free_own_or_expired_by_the_local_clock():
    held = LeaseRecord("a", 15, "t", "t", 0)
    assert may_take(held, "a", observed_at=0, now=1)
    assert not may_take(held, "b", observed_at=100, now=114.9)
    assert may_take(held, "b", observed_at=100, now=115)
    assert may_take(LeaseRecord(None, 1, "t", "t", 0), "b", observed_at=100, now=100)


async def test_standby_takes_over_only_after_the_lease_duration_since_the_last_renewal():
    store, clock = LeaseStore(), Clock()
    a, b = LeaseElector(store, settings("a"), clock), LeaseElector(store, settings("b"), clock)
    assert await a.try_acquire_or_renew() and store.holder == "a"
    assert not await b.try_acquire_or_renew() and not b.leading
    for _ in range(5):  # the leader renews every 2 s; the standby never gets in
        clock.now += 2
        assert await a.try_acquire_or_renew()
        assert not await b.try_acquire_or_renew()
    # The leader dies right after its last renewal; b first saw that record just now.
    clock.now += 14.9
    assert not await b.try_acquire_or_renew()
    clock.now += 0.1
    assert await b.try_acquire_or_renew() and store.holder == "b" and b.leading
    assert store.obj["spec"]["leaseTransitions"] == 1
    # The old leader, were it still alive, can no longer renew: the record is b's.
    assert not await a.try_acquire_or_renew() and not a.leading


async def test_two_candidates_racing_on_one_record_cannot_both_win():
    store, clock = LeaseStore(), Clock()
    a, b = LeaseElector(store, settings("a"), clock), LeaseElector(store, settings("b"), clock)
    assert await a.try_acquire_or_renew()
    await a.release()  # free: both may try at once
    stale = store.obj
    results = []
    for elector in (a, b):
        async def get(*_, _s=stale):
            return copy.deepcopy(_s)  # both read the same resourceVersion
        elector.kube = type("K", (), {"get": staticmethod(get), "replace": store.replace, "create": store.create})()
        results.append(await elector.try_acquire_or_renew())
    assert results == [True, False] and store.holder == "a"


async def test_release_lets_the_standby_in_at_once():
    store, clock = LeaseStore(), Clock()
    a, b = LeaseElector(store, settings("a"), clock), LeaseElector(store, settings("b"), clock)
    await a.try_acquire_or_renew()
    assert not await b.try_acquire_or_renew()
    await a.release()
    assert store.holder == "" and store.obj["spec"]["leaseDurationSeconds"] == 1
    assert await b.try_acquire_or_renew() and store.holder == "b"


async def test_hold_gives_up_after_the_renew_deadline_without_the_api():
    store = LeaseStore()
    fast = LeaseSettings(namespace="n", identity="a", lease_duration_s=0.5, renew_deadline_s=0.3,
                         retry_period_s=0.05)
    a = LeaseElector(store, fast)
    assert await a.try_acquire_or_renew()
    store.failing = True
    started = asyncio.get_running_loop().time()
    await asyncio.wait_for(a.hold(), 2)
    assert 0.3 <= asyncio.get_running_loop().time() - started < 0.6 and not a.leading


async def test_run_elected_runs_the_operator_only_while_leading_and_stops_it_when_lost(monkeypatch):
    store = LeaseStore()
    fast = LeaseSettings(namespace="n", identity="b", lease_duration_s=0.4, renew_deadline_s=0.2,
                         retry_period_s=0.05)
    store._store({"metadata": {"name": "halyard-operator", "namespace": "n"},
                  "spec": {"holderIdentity": "a", "leaseDurationSeconds": 1, "renewTime": "t"}})
    monkeypatch.setattr("halyard_operator.leadership.KubeClient", lambda *a, **k: _Ctx(store))
    started, lost = asyncio.Event(), []

    async def operator() -> None:
        started.set()
        store.failing = True  # the API goes away under the leader
        await asyncio.Event().wait()  # runs until cancelled

    task = asyncio.create_task(run_elected(None, fast, operator, on_lost=lambda: lost.append(1)))
    await asyncio.sleep(0.5)
    assert not started.is_set(), "a standby ran the operator while another replica held a valid Lease"
    await asyncio.wait_for(task, 3)  # a's lease (1 s) expires, b leads, then loses the API
    assert started.is_set() and lost == [1]


class _Ctx:
    def __init__(self, store):
        self.store = store

    async def __aenter__(self):
        return self.store

    async def __aexit__(self, *exc):
        return None
