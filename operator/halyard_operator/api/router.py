"""`LLMDeployment.spec.router`: the per-deployment router in front of the workers."""
from __future__ import annotations

from dataclasses import dataclass

from halyard_operator.api.schema import DURATION_PATTERN, Rule, spec_field

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
class RouterQueueWaitSpec:
    """How long a request of each tier may wait for a worker with room before a 429."""

    RULES = (
        Rule(cel="duration(self.batch) <= duration(self.standard) && duration(self.standard) <= duration(self.critical)",
             message="spec.router.queue.maxWait must be ordered batch <= standard <= critical (lower tiers are "
                     "shed first); shorten batch or lengthen critical",
             path="", check=lambda w: w.batch <= w.standard <= w.critical),
    )

    critical: float = spec_field("Wait of critical-tier requests.", default="60s", **_DUR)
    standard: float = spec_field("Wait of standard-tier requests.", default="30s", **_DUR)
    batch: float = spec_field("Wait of batch-tier requests (0s: shed at once).", default="5s", **_DUR)


@dataclass(frozen=True, kw_only=True)
class RouterQueueSpec:
    """The admission queue: requests that find every worker past their tier's headroom
    (batch 1x, standard 1.5x, critical 2x engine.maxNumSeqs) wait here, highest tier
    first, instead of being refused at once."""

    max_requests: int = spec_field("Requests waiting at most per router replica (0: shed at once).",
                                   default=512, minimum=0, maximum=100000)
    max_wait: RouterQueueWaitSpec = spec_field("Per-tier wait before a 429.", default_factory=RouterQueueWaitSpec)


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
    queue: RouterQueueSpec = spec_field("Admission queue while every worker is saturated.",
                                        default_factory=RouterQueueSpec)
    cache: RouterCacheSpec = spec_field("Response cache (off by default).", default_factory=RouterCacheSpec)
