"""Priority tiers and the GPU arbiter.

Pure. Tiers are the operator configuration's `TierConfig`s (PriorityClass,
spot allowed, preemptible, shedding order). When GPUs run short the arbiter grants replicas tier by tier
(critical, then standard, then batch), water-filling within a tier (one
replica at a time, smallest grant first), in two passes: everyone's
minReplicas first, then up to desired. Pods of non-preemptible tiers that
already run keep their GPUs; preemptible tiers can lose them to higher tiers,
so lower tiers shrink first.
"""
from __future__ import annotations

import heapq
from dataclasses import dataclass
from typing import Mapping

from halyard_operator.config import DEFAULT_TIERS, TierConfig
from halyard_operator.api import Condition
from halyard_operator.names import CAPACITY_CONSTRAINED, Reason


@dataclass(frozen=True)
class Demand:
    """One deployment asking for GPUs. Invariant: 0 <= min_replicas <= desired; running >= 0."""

    name: str
    tier: str
    gpus_per_replica: int
    min_replicas: int
    desired: int
    running: int  # replicas that hold GPUs now


@dataclass(frozen=True)
class Grant:
    """Replicas granted. Invariant: granted <= desired; `condition` explains a hold-back."""

    name: str
    granted: int
    desired: int
    condition: Condition


def _order(demands, tiers):
    return sorted(demands, key=lambda d: (-tiers[d.tier].shedding_order, d.name))


def _fill(group, grants, goal, budget) -> int:
    """Water-fill `group` toward goal(d), one replica at a time (the smallest grant in GPUs
    first, then by name); returns the budget left. When the whole shortfall fits, every
    demand gets its goal at once; otherwise a heap keeps each step O(log n)."""
    short = [(d, goal(d) - grants[d.name]) for d in group if grants[d.name] < goal(d)]
    need = sum(n * d.gpus_per_replica for d, n in short)
    if need <= budget:
        for d, n in short:
            grants[d.name] += n
        return budget - need
    heap = [(grants[d.name] * d.gpus_per_replica, d.name, d) for d, _ in short]
    heapq.heapify(heap)
    while heap:
        _, name, d = heapq.heappop(heap)
        if d.gpus_per_replica > budget:
            continue  # the budget only shrinks: this one never fits again
        grants[name] += 1
        budget -= d.gpus_per_replica
        if grants[name] < goal(d):
            heapq.heappush(heap, (grants[name] * d.gpus_per_replica, name, d))
    return budget


def arbitrate(demands: tuple[Demand, ...], gpus_available: int,
              tiers: Mapping[str, TierConfig] = DEFAULT_TIERS) -> dict[str, Grant]:
    """Grant replicas from `gpus_available` (allocatable minus GPUs used by non-Halyard pods).

    Invariant: sum(granted * gpus_per_replica) <= max(gpus_available, kept GPUs
    of non-preemptible running pods).
    """
    grants = {d.name: 0 for d in demands}
    budget = gpus_available
    for d in demands:  # running pods of non-preemptible tiers keep their GPUs
        if not tiers[d.tier].preemptible:
            keep = min(d.running, d.desired)
            grants[d.name] = keep
            budget -= keep * d.gpus_per_replica
    ordered = _order(demands, tiers)
    levels = sorted({tiers[d.tier].shedding_order for d in demands}, reverse=True)
    for goal in (lambda d: d.min_replicas, lambda d: d.desired):
        for level in levels:
            group = [d for d in ordered if tiers[d.tier].shedding_order == level]
            budget = _fill(group, grants, goal, max(budget, 0))
    rank = {d.name: i for i, d in enumerate(ordered)}
    return {d.name: _grant(d, grants[d.name], ordered, rank, grants, gpus_available) for d in demands}


def as_desired(d: Demand) -> Grant:
    """The grant of a demand that fits: every desired replica."""
    cond = Condition.of(CAPACITY_CONSTRAINED, False, Reason.CAPACITY_AVAILABLE, f"{d.desired} replica(s) granted as desired")
    return Grant(d.name, d.desired, d.desired, cond)


def _grant(d: Demand, granted: int, ordered, rank: dict[str, int], grants, available: int) -> Grant:
    if granted >= d.desired:
        return as_desired(d)
    above = [o.name for o in ordered[:rank[d.name]] if o.tier != d.tier and grants[o.name]]
    by = f"; GPUs held by higher tiers: {_names(above)}" if above else ""
    msg = (f"held back by tier {d.tier}: wants {d.desired} replica(s), granted {granted} "
           f"({d.gpus_per_replica} GPU(s) each, {available} GPU(s) available to Halyard){by}")
    return Grant(d.name, granted, d.desired, Condition.of(CAPACITY_CONSTRAINED, True, Reason.GPUS_HELD_BY_HIGHER_TIERS if above else Reason.INSUFFICIENT_GPUS, msg))


def _names(names: list[str], shown: int = 5) -> str:
    """The first `shown` names, then how many more (a fleet's message stays one line)."""
    more = f" and {len(names) - shown} more" if len(names) > shown else ""
    return ", ".join(names[:shown]) + more
