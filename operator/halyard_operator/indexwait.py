"""kopf's start-up on a large cluster: wake the objects waiting for the indexes once, not per object.

When it starts, kopf holds every listed object's handlers until every index
holds its initial list. Each object listed adds a toggle to one ToggleSet and
drops it once indexed, and kopf (1.44-1.45) wakes every waiting object at each
add and drop: O(objects²) wake-ups. A fleet of 5,000 LLMDeployments is ~35,000
watched objects (their children, pods and nodes); there a restarted operator
spent over six minutes at a full core, its RSS past 1 GB, before its first
reconcile (docs/performance.md).

What waits on a ToggleSet's condition is either the set (its overall state) or
one of its toggles. Adding or dropping a toggle changes no toggle's state, and
changes the set's only when its overall state flips, so notifying then alone
wakes exactly the tasks whose wait can end. `install()` replaces those three
methods and nothing else.
"""
from __future__ import annotations

from typing import Iterable

from kopf._cogs.aiokits.aiotoggles import Toggle, ToggleSet


async def _make_toggle(self: ToggleSet, __val: bool = False, *, name: str | None = None) -> Toggle:
    toggle = Toggle(__val, name=name, condition=self._condition)
    await _change(self, lambda toggles: toggles.add(toggle))
    return toggle


async def _drop_toggle(self: ToggleSet, toggle: Toggle) -> None:
    await _change(self, lambda toggles: toggles.discard(toggle))


async def _drop_toggles(self: ToggleSet, toggles: Iterable[Toggle]) -> None:
    await _change(self, lambda own: own.difference_update(toggles))


async def _change(self: ToggleSet, edit) -> None:
    async with self._condition:
        before = self.is_on()
        edit(self._toggles)
        if self.is_on() != before:
            self._condition.notify_all()


def install() -> None:
    """Make kopf's ToggleSet notify only when its overall state changes (idempotent)."""
    ToggleSet.make_toggle = _make_toggle
    ToggleSet.drop_toggle = _drop_toggle
    ToggleSet.drop_toggles = _drop_toggles
