"""Condition bookkeeping (pure): lastTransitionTime moves only on a flip."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

# Condition types this reconcile owns (every type the API defines).
OWNED_TYPES = ("Ready", "Progressing", "Degraded", "ScalingActive",
               "CapacityConstrained", "SpotFallbackActive", "SLOAtRisk")


@dataclass(frozen=True)
class Cond:
    """A condition as computed now (no timestamps yet)."""

    type: str
    status: str  # "True" | "False" | "Unknown"
    reason: str
    message: str = ""


def merge_conditions(previous: Iterable[dict], current: Iterable[Cond], generation: int | None,
                     now: str) -> list[dict]:
    """New conditions list: owned types from `current` (absent ones removed),
    other types kept as they were. `now` is an RFC 3339 timestamp."""
    before = {c.get("type"): c for c in previous or ()}
    out = [c for t, c in before.items() if t not in OWNED_TYPES]
    for cond in current:
        old = before.get(cond.type)
        since = old["lastTransitionTime"] if old and old.get("status") == cond.status else now
        entry = {"type": cond.type, "status": cond.status, "reason": cond.reason,
                 "message": cond.message, "lastTransitionTime": since}
        if generation is not None:
            entry["observedGeneration"] = generation
        out.append(entry)
    return sorted(out, key=lambda c: c["type"])


def find(conditions: Iterable[dict], type_: str) -> dict | None:
    return next((c for c in conditions or () if c.get("type") == type_), None)
