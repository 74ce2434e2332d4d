"""Condition bookkeeping (pure): lastTransitionTime moves only on a flip."""
from __future__ import annotations

from dataclasses import replace
from typing import Iterable

from halyard_operator.api import Condition
from halyard_operator.names import (
    CAPACITY_CONSTRAINED, DEGRADED, OWNED_CONDITION_TYPES, READY, SLO_AT_RISK, SPOT_FALLBACK_ACTIVE,
)

# (type, the status that means something is wrong), in the order `kubectl get llmd` reports them
FAILING = ((DEGRADED, "True"), (READY, "False"), (CAPACITY_CONSTRAINED, "True"), (SLO_AT_RISK, "True"),
           (SPOT_FALLBACK_ACTIVE, "True"))


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


def first_failing_reason(conditions: Iterable[dict]) -> str:
    """The reason of the first failing condition (Degraded=True, Ready=False, ...); "" when none fails."""
    for type_, bad in FAILING:
        cond = find(conditions, type_)
        if cond and cond.get("status") == bad:
            return cond.get("reason") or ""
    return ""
