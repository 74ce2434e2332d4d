"""`LLMDeployment.spec.router`: the per-deployment router in front of the workers."""
from __future__ import annotations

from dataclasses import dataclass

from halyard_operator.api.schema import DURATION_PATTERN, spec_field

ROUTING_POLICIES = ("prefix", "least-load", "round-robin")
_DUR = dict(kind="duration", pattern=DURATION_PATTERN, max_length=32)


@dataclass(frozen=True, kw_only=True)
class RouterCacheSpec:
    """Exact-match reuse of deterministic answers (temperature 0 or a fixed seed, one choice)."""

    enabled: bool = spec_field("Serve repeated deterministic requests from the router's memory.",
                               default=False)
    max_entries: int = spec_field("Most answers kept per router replica.", default=1024,
                                  minimum=1, maximum=1_000_000)
    max_bytes: int = spec_field("Most bytes of answers kept per router replica.", default=67108864,
                                minimum=1024)
    ttl: float = spec_field("How long a stored answer may be reused.", default="5m", **_DUR)


@dataclass(frozen=True, kw_only=True)
class RouterSpec:
    """The router Deployment `<name>-router` behind Service `<name>`: prefix-cache- and
    load-aware routing, holding requests while the deployment scales up from zero,
    tier-based shedding, retries when a worker drains or its node goes away."""

    enabled: bool = spec_field(
        "Run the router; false points Service <name> straight at the workers (round robin, "
        "no hold: scaling from zero then needs another source of demand).", default=True)
    policy: str = spec_field(
        "prefix: send requests sharing leading prompt blocks to the same worker (bounded load); "
        "least-load: fewest running + waiting requests; round-robin.", default="prefix",
        enum=ROUTING_POLICIES)
    replicas: int = spec_field("Router replicas (a PodDisruptionBudget keeps one up).", default=2,
                               minimum=1, maximum=20)
    hold_timeout: float = spec_field(
        "How long a request may wait for a ready worker (scale from zero) before a 503 with Retry-After.",
        default="60s", **_DUR)
    hold_max: int = spec_field("Requests held at most per router replica while no worker is ready.",
                               default=256, minimum=0, maximum=100000)
    image: str | None = spec_field(
        "Router image; default: the operator's routerImage (halyard/operator, which carries halyard-router).",
        max_length=512)
    cache: RouterCacheSpec = spec_field("Response cache (off by default).", default_factory=RouterCacheSpec)
