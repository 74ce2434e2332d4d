"""Request classes from the deployment's tier (pure).

A request's class is the deployment's tier (critical < standard < batch in
engine priority: lower is served first). The header `X-Halyard-Tier` may only
lower it (a batch job on a critical deployment), never raise it; a body
`priority` integer is kept only when it is lower priority than the class.

Headroom: a backend is saturated when its load reaches `saturation` requests
(the engine's running batch). A class may still send to a backend below its
headroom: batch up to 1x saturation, standard 1.5x, critical 2x. When every
backend is past it the request waits in the admission queue (admission.py),
so lower classes wait first and are shed first.
"""
from __future__ import annotations

from dataclasses import dataclass

TIERS = ("critical", "standard", "batch")
RANK = {tier: rank for rank, tier in enumerate(TIERS)}
HEADROOM = {"critical": 2.0, "standard": 1.5, "batch": 1.0}
TIER_HEADER = "X-Halyard-Tier"


class TierError(ValueError):
    """A bad tier header; the message names the header and the valid values."""


@dataclass(frozen=True)
class RequestClass:
    """The class a request runs in and the engine priority sent for it."""

    tier: str
    priority: int


def request_class(deployment_tier: str, header: str | None, body_priority: object) -> RequestClass:
    tier = deployment_tier
    if header:
        wanted = header.strip().lower()
        if wanted not in RANK:
            raise TierError(f"header {TIER_HEADER}: {header!r} is not a tier; use one of {', '.join(TIERS)}")
        tier = max(tier, wanted, key=RANK.__getitem__)
    priority = RANK[tier]
    if isinstance(body_priority, int) and not isinstance(body_priority, bool):
        priority = max(priority, body_priority)
    return RequestClass(tier, priority)
