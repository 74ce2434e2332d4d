"""How many replicas run on each capacity pool (pure).

Static placement: the on-demand pool holds `onDemandFloor` replicas (or all of
them when spot is off), spot holds the rest plus `overprovision`. The input
`target` is the serving size: `spec.replicas`, or `scaling.minReplicas` until
the autoscaler supplies its own decision through the same argument.
"""
from __future__ import annotations

from dataclasses import dataclass

from halyard_operator.api import LLMDeploymentSpec


@dataclass(frozen=True)
class PoolCounts:
    """Replicas per pool. Invariant: on_demand >= 0, spot >= 0; spot includes
    the overprovision replicas, so total >= the target that produced it."""

    on_demand: int
    spot: int

    @property
    def total(self) -> int:
        return self.on_demand + self.spot


def serving_target(spec: LLMDeploymentSpec) -> int:
    """The replica count to place when no autoscaler decision is given."""
    if spec.replicas is not None:
        return spec.replicas
    return spec.scaling.min_replicas if spec.scaling is not None else 0


def place(spec: LLMDeploymentSpec, target: int | None = None, spot_allowed: bool = True) -> PoolCounts:
    """Split `target` replicas (default: serving_target) across the pools."""
    want = serving_target(spec) if target is None else target
    if want < 0:
        raise ValueError(f"target replicas must be >= 0, got {want}")
    spot = spec.capacity.spot
    if not (spot.enabled and spot_allowed):
        return PoolCounts(on_demand=want, spot=0)
    on_demand = min(spot.on_demand_floor, want)
    on_spot = want - on_demand
    return PoolCounts(on_demand=on_demand, spot=on_spot + spot.overprovision if on_spot else 0)
