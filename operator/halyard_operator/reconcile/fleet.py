"""Tier arbitration across LLMDeployments: the operator's book of GPU demands.

Each reconcile records its deployment's demand (what the autoscaler wants,
what runs now) and asks for a grant. Deployments compete only with those
asking for the same GPU product (`spec.resources.gpuProduct`; unset means any
GPU node). The budget is the allocatable GPUs of the matching schedulable,
uninterrupted nodes minus the GPUs that pods outside Halyard request there.
The grant comes from the pure `policy.tiers.arbitrate`; the book is memory
only: after a restart it refills as the resume handlers reconcile every object.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable, Collection, Iterable, Mapping

from halyard_operator.config import TierConfig
from halyard_operator.memo import per_object
from halyard_operator.names import GPU_PRODUCT_LABEL
from halyard_operator.observe import GpuClaim, NodeInfo
from halyard_operator.policy.interruption import detect
from halyard_operator.policy.tiers import Demand, Grant, arbitrate, as_desired


@per_object
def usable_gpu_nodes(nodes: Iterable[NodeInfo], product: str | None) -> Mapping[str, int]:
    """Node name -> allocatable GPUs, for schedulable nodes without an
    interruption notice that carry `product` (any product when None).
    Computed once per node tuple and product (shared: do not mutate)."""
    return {node.name: node.gpus for node in nodes
            if node.gpus > 0 and node.schedulable and detect(node) is None
            and (not product or node.labels.get(GPU_PRODUCT_LABEL) == product)}


@per_object
def usable_gpus(nodes: Iterable[NodeInfo], product: str | None) -> int:
    """The allocatable GPUs of `usable_gpu_nodes(nodes, product)`."""
    return sum(usable_gpu_nodes(nodes, product).values())


def foreign_gpus(claims: Iterable[GpuClaim], nodes: Collection[str]) -> int:
    """GPUs requested by live pods outside Halyard bound to `nodes` (names; a set or mapping)."""
    return sum(claim.gpus for claim in claims if claim.node in nodes)


@dataclass
class FleetBook:
    """Last known demand of every LLMDeployment (mutable, one per operator process).

    With `alive` (is this deployment still in the cluster?, from the watch-fed
    index) an entry lasts exactly as long as its deployment, however rarely it
    is reconciled; without it, entries not refreshed within `ttl_s` are dropped
    (a deployment deleted while the operator was down never blocks GPUs). Both
    sweeps run at most every `sweep_s`. While a product's budget covers every
    desired replica of its group (a running sum), everyone gets what it asks
    and nothing is arbitrated; otherwise the group's grants are kept until a
    demand in it or its budget changes. Either way a reconcile costs a lookup,
    not an arbitration over every deployment, while the fleet grows or settles.
    """

    ttl_s: float = 120.0
    sweep_s: float = 30.0
    entries: dict = field(default_factory=dict)  # key -> (product, Demand, seen_at)
    _grants: dict = field(default_factory=dict)  # product -> (budget, {key: Grant})
    _wanted: dict = field(default_factory=dict)  # product -> GPUs the group's desired replicas take
    _counted: dict = field(default_factory=dict)  # key -> (product, GPUs it adds to _wanted)
    _swept_at: float | None = None

    def grant(self, key: str, product: str | None, demand: Demand, budget: int,
              tiers: Mapping[str, TierConfig], now: float | None = None,
              alive: Callable[[str], bool] | None = None) -> Grant:
        """Record `demand` and arbitrate `budget` GPUs among deployments of the same product."""
        at = time.monotonic() if now is None else now
        before = self.entries.get(key)
        self.entries[key] = (product, demand, at)
        known = demand.tier in tiers  # demands of unknown tiers take no part in arbitration
        self._count(key, product, demand.desired * demand.gpus_per_replica if known else 0)
        if before is None or before[:2] != (product, demand):
            self._changed(product, before[0] if before else product)
        self._sweep(key, at, alive)
        if known and self._wanted.get(product, 0) <= budget:
            return as_desired(demand)  # what `arbitrate` grants when everything fits
        budget_then, grants = self._grants.get(product, (None, {}))
        if budget_then != budget or key not in grants:
            group = tuple(d for p, d, _ in self.entries.values() if p == product and d.tier in tiers)
            grants = arbitrate(group, budget, tiers)
            self._grants[product] = (budget, grants)
        return grants[key]

    def _sweep(self, key: str, at: float, alive: Callable[[str], bool] | None) -> None:
        if self._swept_at is not None and at - self._swept_at < self.sweep_s:
            return
        self._swept_at = at
        for other in [k for k, (_, _, seen) in self.entries.items()
                      if k != key and (not alive(k) if alive is not None else at - seen > self.ttl_s)]:
            self.forget(other)

    def _count(self, key: str, product: str | None, gpus: int) -> None:
        """Keep `_wanted` the sum of what each entry's desired replicas take."""
        old_product, old_gpus = self._counted.pop(key, (None, 0))
        if old_gpus:
            self._wanted[old_product] -= old_gpus
        if gpus:
            self._counted[key] = (product, gpus)
            self._wanted[product] = self._wanted.get(product, 0) + gpus

    def _changed(self, *products: str | None) -> None:
        for product in products:
            self._grants.pop(product, None)

    def forget(self, key: str) -> None:
        entry = self.entries.pop(key, None)
        self._count(key, None, 0)
        if entry is not None:
            self._changed(entry[0])
