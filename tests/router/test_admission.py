"""The admission queue: who may start when every backend is past its tier's
headroom, in which order waiters leave, and when a request is shed."""
from __future__ import annotations

import asyncio

from halyard_router.admission import (ADMITTED, EVICTED, FULL, TIMEOUT, AdmissionQueue, admissible, victim,
                                      with_room_first)
from halyard_router.policy import BackendLoad

WAITS = {"critical": 60.0, "standard": 30.0, "batch": 5.0}


def test_each_tier_has_its_own_headroom():
    loads = [4.0, 4.0]  # both backends at saturation 4
    assert admissible(["batch"], loads, saturation=4) == 0
    assert admissible(["standard"], loads, saturation=4) == 1  # up to 6 per backend
    assert admissible(["critical"], loads, saturation=4) == 1  # up to 8
    assert admissible(["batch"], loads + [0.0], saturation=4) == 1  # one backend with room is enough
    assert admissible(["batch", "batch"], [], saturation=4) == 2  # no backend: the hold takes them


def test_admitted_requests_take_slots_until_none_is_left():
    # two backends at 5 and 6, standard limit 6: one slot on the first, then none
    assert admissible(["standard"] * 3, [5.0, 6.0], saturation=4) == 1
    # critical (limit 8) gets 3 + 2 slots
    assert admissible(["critical"] * 9, [5.0, 6.0], saturation=4) == 5
    # admitted requests not yet counted in the loads hold their slots
    assert admissible(["critical"] * 9, [5.0, 6.0], saturation=4, pending=4) == 1


def test_the_walk_stops_at_the_first_waiter_without_room():
    # queue order: critical before batch; batch never passes a critical that does not fit
    assert admissible(["critical", "batch"], [7.0], saturation=4) == 1
    assert admissible(["standard", "batch"], [5.0], saturation=4) == 1


def test_a_full_queue_gives_up_the_newest_of_the_lowest_class():
    assert victim([0, 1, 2, 2, 1], incoming=0) == 3
    assert victim([0, 1, 1], incoming=1) is None  # no lower class: the arrival is refused
    assert victim([], incoming=2) is None


def test_admitted_requests_go_where_their_tier_has_room():
    loads = [BackendLoad("a", in_flight=4), BackendLoad("b", in_flight=1)]
    assert with_room_first(["a", "b"], loads, "batch", saturation=4) == ["b", "a"]
    assert with_room_first(["a", "b"], loads, "critical", saturation=4) == ["a", "b"]


async def settle():
    """Let woken tasks run."""
    for _ in range(5):
        await asyncio.sleep(0)


async def cancel(*tasks):
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


class Loads:
    """Backend loads a test sets by hand, as the router's Backends would report them."""

    def __init__(self, *loads: float):
        self.values = list(loads)

    def __call__(self) -> list[float]:
        return list(self.values)


async def test_waiters_leave_by_tier_then_arrival_when_a_slot_frees():
    loads = Loads(8.0)  # one backend at the critical limit (saturation 4)
    queue = AdmissionQueue(loads, saturation=4, max_waiting=10, waits=WAITS)
    order = []

    async def request(name, tier):
        outcome, _ = await queue.admit(tier, WAITS[tier])
        order.append((name, outcome))
        loads.values[0] += 1  # it reached the backend

    tasks = [asyncio.create_task(request(n, t)) for n, t in
             (("s1", "standard"), ("c1", "critical"), ("s2", "standard"), ("c2", "critical"))]
    await asyncio.sleep(0)
    assert queue.depth("critical") == 2 and queue.depth("standard") == 2
    for _ in range(4):
        loads.values[0] = 7.0 if len(order) < 2 else 5.0  # a request ended: room for one
        queue.pump()
        await settle()
    await asyncio.gather(*tasks)
    assert [name for name, _ in order] == ["c1", "c2", "s1", "s2"]
    assert {outcome for _, outcome in order} == {ADMITTED}


async def test_an_arrival_does_not_pass_waiters_of_its_tier():
    loads = Loads(6.0)
    queue = AdmissionQueue(loads, saturation=4, max_waiting=10, waits=WAITS)
    first = asyncio.create_task(queue.admit("standard", 30))
    await asyncio.sleep(0)
    loads.values[0] = 5.0  # room for one standard request, and nobody pumped yet
    second = asyncio.create_task(queue.admit("standard", 30))
    await asyncio.sleep(0)
    assert queue.depth("standard") == 2
    queue.pump()
    assert (await first)[0] == ADMITTED
    assert queue.depth("standard") == 1 and not second.done()  # the first one's slot is taken
    critical, _ = await queue.admit("critical", 60)  # a higher tier with room goes at once
    assert critical == ADMITTED
    await cancel(second)


async def test_past_its_wait_a_request_is_shed_and_lower_tiers_wait_less():
    queue = AdmissionQueue(Loads(8.0), saturation=4, max_waiting=10, waits=WAITS)
    batch = asyncio.create_task(queue.admit("batch", 0.05))
    critical = asyncio.create_task(queue.admit("critical", 0.3))
    outcome, waited = await batch
    assert outcome == TIMEOUT and 0.04 <= waited < 0.3 and not critical.done()
    assert (await critical)[0] == TIMEOUT
    assert queue.depth("batch") == queue.depth("critical") == 0
    assert (await queue.admit("batch", 0))[0] == TIMEOUT  # no wait at all: shed at once


async def test_a_full_queue_sheds_the_lowest_tier_first():
    queue = AdmissionQueue(Loads(8.0), saturation=4, max_waiting=2, waits=WAITS)
    batch = asyncio.create_task(queue.admit("batch", 5))
    standard = asyncio.create_task(queue.admit("standard", 30))
    await asyncio.sleep(0)
    assert (await queue.admit("batch", 5))[0] == FULL  # nothing lower to give up
    critical = asyncio.create_task(queue.admit("critical", 60))
    assert (await batch)[0] == EVICTED
    assert queue.depth("critical") == 1 and queue.depth("standard") == 1
    await cancel(standard, critical)


async def test_a_client_that_leaves_after_admission_hands_its_slot_on():
    loads = Loads(6.0)
    queue = AdmissionQueue(loads, saturation=4, max_waiting=10, waits=WAITS)
    leaver = asyncio.create_task(queue.admit("standard", 30))
    stayer = asyncio.create_task(queue.admit("standard", 2))
    await asyncio.sleep(0)
    loads.values[0] = 5.0
    queue.pump()  # the leaver is admitted (one slot) ...
    leaver.cancel()  # ... but its client goes away before it reaches a backend
    await asyncio.sleep(0)
    assert (await stayer)[0] == ADMITTED
    assert queue.in_transit == 0 and not queue.waiting


async def test_room_that_appears_without_an_event_is_found_within_a_recheck(monkeypatch):
    import halyard_router.admission as admission

    monkeypatch.setattr(admission, "RECHECK_S", 0.05)
    loads = Loads(6.0)
    queue = AdmissionQueue(loads, saturation=4, max_waiting=10, waits=WAITS)
    waiting = asyncio.create_task(queue.admit("standard", 2))
    await asyncio.sleep(0.01)
    loads.values[0] = 2.0  # e.g. a scrape that counted other routers' requests went stale; nobody pumps
    outcome, waited = await waiting
    assert outcome == ADMITTED and waited < 1
