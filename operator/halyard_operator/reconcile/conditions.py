"""Condition bookkeeping (pure): lastTransitionTime moves only on a flip."""
from __future__ import annotations

from dataclasses import replace
from typing import Iterable

from halyard_operator.api import Condition
from halyard_operator.names import OWNED_CONDITION_TYPES


def merge_conditions(previous: Iterable[dict], current: Iterable[Condition], generation: int | None,
                     now: str) -> list[dict]:
    """New conditions list: owned types from `current` (absent ones removed),
    other types kept as they were. `now` is an RFC 3339 timestamp."""
    before = {c.get("type"): c for c in previous or ()}
    out = [c for t, c in before.items() if t not in OWNED_CONDITION_TYPES]
    for cond in current:
        old = before.get(cond.type)
        since = old["lastTransitionTime"] if old and old.get("status") == cond.status else now
        out.append(replace(cond, last_transition_time=since, observed_generation=generation).to_status())
    return sorted(out, key=lambda c: c["type"])


def find(conditions: Iterable[dict], type_: str) -> dict | None:
    return next((c for c in conditions or () if c.get("type") == type_), None)
