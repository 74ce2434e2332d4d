"""kopf's start-up wait for the indexes: every object waits for one ToggleSet; with the
patch, listing and indexing N objects wakes the waiters once, not N times each."""
from __future__ import annotations

import asyncio

import pytest
from kopf._cogs.aiokits.aiotoggles import ToggleSet

from halyard_operator import indexwait


@pytest.fixture
def patched(monkeypatch):
    for name in ("make_toggle", "drop_toggle", "drop_toggles"):
        monkeypatch.setattr(ToggleSet, name, getattr(ToggleSet, name))  # restored after the test
    indexwait.install()


async def _list_and_index(objects: int) -> int:
    """Emulate kopf's start-up: a resource toggle, then per object a toggle made, a worker
    waiting for the whole set, the toggle dropped once indexed; returns is_on() evaluations."""
    calls = 0

    def counted(states):
        nonlocal calls
        calls += 1
        return all(states)

    ready = ToggleSet(counted)
    resource = await ready.make_toggle(name="pods")
    waiters = []
    for i in range(objects):
        toggle = await ready.make_toggle(name=f"pod-{i}")
        waiters.append(asyncio.create_task(ready.wait_for(True)))
        await asyncio.sleep(0)  # the worker starts waiting
        await ready.drop_toggle(toggle)
    await ready.drop_toggle(resource)  # the listing is over
    await asyncio.wait_for(asyncio.gather(*waiters), timeout=30)
    return calls


async def test_start_up_wakes_the_waiting_objects_once(patched):
    assert await _list_and_index(400) < 10 * 400


async def test_unpatched_kopf_wakes_every_waiter_per_object():
    assert await _list_and_index(400) > 400 * 400 / 4  # what the patch removes


async def test_waits_still_end_when_the_set_or_a_toggle_turns(patched):
    ready = ToggleSet(all)
    assert ready.is_on()
    off = asyncio.create_task(ready.wait_for(False))
    toggle = await ready.make_toggle(False, name="nodes")  # the set turns off
    await asyncio.wait_for(off, timeout=1)
    on = asyncio.create_task(ready.wait_for(True))
    one = asyncio.create_task(toggle.wait_for(True))
    await asyncio.sleep(0)
    await toggle.turn_to(True)  # the toggle itself notifies, as in kopf
    await asyncio.wait_for(asyncio.gather(on, one), timeout=1)
    await ready.drop_toggles([toggle])
    assert ready.is_on() and len(ready) == 0
