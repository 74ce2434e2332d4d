"""The scaling decision (pure): typed pool observations -> serving size and pool counts.

`decide_capacity` is the one decision function: the operator's reconcile
reaches it through `plan_capacity` (which first reads pods and nodes into a
`CapacityObservation`) and the simulator calls it directly with the
observation its fleet model makes. It chains the autoscaler and the spot
capacity planner; interruption handling (which pods to drain) happens
before, on pod identities, in `plan_capacity`.
"""
from __future__ import annotations

from dataclasses import dataclass

from halyard_operator.api import Condition
from halyard_operator.builders.placement import PoolCounts
from halyard_operator.names import SLO_AT_RISK, Reason
from halyard_operator.policy.autoscaler import AutoscalerState, ReplicaObservation, ScaleDecision, autoscale
from halyard_operator.policy.capacity import CapacityState, PoolObservation, plan_pools
from halyard_operator.policy.params import DeploymentParams
from halyard_operator.signals.types import DeploymentMetrics


@dataclass(frozen=True)
class CapacityObservation:
    """One deployment's healthy replicas per pool: pods being deleted and pods on
    interrupted nodes are excluded; `spot.lost` counts spot pods newly lost to
    an interruption. `current`: the serving target decided last time."""

    current: int
    on_demand: PoolObservation
    spot: PoolObservation

    @property
    def replicas(self) -> ReplicaObservation:
        return ReplicaObservation(current=self.current, ready=self.on_demand.ready + self.spot.ready,
                                  pending=self.on_demand.pending + self.spot.pending)


@dataclass(frozen=True)
class CapacityChoice:
    """The decision. Invariants: desired <= wanted unless capped below; counts.on_demand +
    counts.spot >= desired. `wanted`: the autoscaler's size before the tier arbiter's cap;
    `conditions`: SpotFallbackActive, CapacityConstrained, SLOAtRisk."""

    desired: int
    wanted: int
    counts: PoolCounts
    scaled: ScaleDecision
    conditions: tuple[Condition, ...]
    autoscaler: AutoscalerState
    capacity: CapacityState

    @property
    def reason(self) -> str:
        return self.scaled.reason


def decide_capacity(params: DeploymentParams, spot_allowed: bool, seen: CapacityObservation,
                    metrics: DeploymentMetrics | None, now: float, autoscaler: AutoscalerState,
                    capacity: CapacityState, cap: int | None = None) -> CapacityChoice:
    """Serving size (autoscaler, then min(desired, cap)) split between on-demand and spot.

    `spot_allowed`: the tier may use spot and the provider has a spot pool;
    `cap`: the replicas the tier arbiter grants (None: no limit).
    """
    scaled = autoscale(params.scaling, seen.replicas, metrics, now, autoscaler, params.name)
    desired = scaled.desired if cap is None else max(0, min(scaled.desired, cap))
    pools = plan_pools(desired, params.capacity.spot, spot_allowed, seen.on_demand, seen.spot, now, capacity)
    return CapacityChoice(desired=desired, wanted=scaled.desired,
                          counts=PoolCounts(on_demand=pools.on_demand, spot=pools.spot), scaled=scaled,
                          conditions=pools.conditions + (_slo_condition(scaled),),
                          autoscaler=scaled.state, capacity=pools.state)


def _slo_condition(scaled: ScaleDecision) -> Condition:
    if scaled.slo_at_risk:
        return Condition.of(SLO_AT_RISK, True, Reason.SLO_AT_RISK, scaled.reason)
    return Condition.of(SLO_AT_RISK, False, Reason.WITHIN_SLO, scaled.reason)
