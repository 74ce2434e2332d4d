"""The one entry point reconcile calls: `plan_capacity(...)` -> pool replica counts.

Pure: (spec, observed pods and nodes, metrics, clock, previous state) ->
CapacityDecision. It chains the interruption handler, the autoscaler and the
capacity planner. The state it needs between reconciles is a small JSON
document the operator keeps in the `halyard.dev/scaling-state` annotation of
the LLMDeployment, so an operator restart resumes exactly where it was.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Mapping, NamedTuple

from halyard_operator.api import Condition, LLMDeploymentSpec
from halyard_operator.builders.placement import PoolCounts
from halyard_operator.builders.pools import ON_DEMAND, SPOT
from halyard_operator.config import TierConfig
from halyard_operator.policy.autoscaler import AutoscalerState, ReplicaObservation, autoscale
from halyard_operator.policy.capacity import CapacityState, PoolObservation, plan_pools
from halyard_operator.policy.interruption import PodInfo, plan_interruptions
from halyard_operator.policy.params import params_from_spec
from halyard_operator.names import NORMAL, SLO_AT_RISK, EventReason, Reason
from halyard_operator.observe.types import NodeInfo, ObservedPod
from halyard_operator.signals.types import DeploymentMetrics


@dataclass(frozen=True)
class ScalingState:
    """Everything remembered between reconciles. `desired`: the last serving target."""

    desired: int | None = None
    autoscaler: AutoscalerState = field(default_factory=AutoscalerState)
    capacity: CapacityState = field(default_factory=CapacityState)
    lost_seen: tuple[str, ...] = ()  # interrupted pods already reported as lost

    def to_json(self) -> str:
        return json.dumps({"desired": self.desired, "autoscaler": self.autoscaler.to_dict(),
                           "capacity": self.capacity.to_dict(), "lostSeen": list(self.lost_seen)},
                          separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str | None) -> "ScalingState":
        """Parse the annotation; a missing or unreadable one starts fresh (never fails)."""
        try:
            raw = json.loads(text) if text else {}
            return cls(desired=raw.get("desired"), autoscaler=AutoscalerState.from_dict(raw.get("autoscaler")),
                       capacity=CapacityState.from_dict(raw.get("capacity")),
                       lost_seen=tuple(raw.get("lostSeen") or ()))
        except (ValueError, TypeError, KeyError):
            return cls()


class Event(NamedTuple):
    """A Kubernetes Event to post on the LLMDeployment (`type`: Normal | Warning)."""

    type: str
    reason: str
    message: str


@dataclass(frozen=True)
class CapacityDecision:
    """What reconcile applies. Invariant: counts.on_demand + counts.spot >= desired.

    `drain`: pods to delete now (their SIGTERM drain finishes in-flight requests);
    `deletion_costs`: pod -> `controller.kubernetes.io/pod-deletion-cost` value;
    `events`: Events to post on the LLMDeployment;
    `wanted`: the autoscaler's size before the tier arbiter's `cap` (what the
    deployment asks the arbiter for); `reason`: the autoscaler's explanation.
    """

    counts: PoolCounts
    desired: int
    wanted: int
    reason: str
    conditions: tuple[Condition, ...]
    events: tuple[Event, ...]
    drain: tuple[str, ...]
    deletion_costs: Mapping[str, int]
    state: ScalingState
    metrics_status: dict | None
    metrics_live: bool = False  # decided from fresh metrics (not holding for stale or missing ones)


def _pool_obs(pods: list[ObservedPod], lost: int) -> PoolObservation:
    """Unscheduled pods carry their age (pendingTimeout); pods loading the model count as young."""
    return PoolObservation(ready=sum(1 for p in pods if p.ready),
                           pending_ages_s=tuple(0.0 if p.scheduled else p.age_s for p in pods if not p.ready),
                           lost=lost)


def plan_capacity(
    name: str,
    spec: LLMDeploymentSpec,
    tier: TierConfig,
    spot_available: bool,
    pods: tuple[ObservedPod, ...],
    nodes: Mapping[str, NodeInfo],
    metrics: DeploymentMetrics | None,
    now: float,
    state: ScalingState,
    cap: int | None = None,
) -> CapacityDecision:
    """Pool replica counts for one LLMDeployment `name` ("namespace/name").

    `spot_available`: the resolved provider has a spot pool. Pods being
    deleted are ignored; pods on interrupted nodes are not capacity. `cap`:
    the replicas the tier arbiter grants (None: no limit); the serving size
    is min(autoscaler's desired, cap).
    """
    params = params_from_spec(name, spec)
    live = tuple(p for p in pods if not p.deleting)
    desired_before = state.desired if state.desired is not None else params.scaling.min_replicas
    infos = tuple(PodInfo(p.name, p.node, p.ready, p.load) for p in live)
    interruptions = plan_interruptions(nodes, infos, desired_before)
    hit = set(interruptions.interrupted_pods)
    healthy = [p for p in live if p.name not in hit]
    obs = ReplicaObservation(current=desired_before, ready=sum(1 for p in healthy if p.ready),
                             pending=sum(1 for p in healthy if not p.ready))
    scaled = autoscale(params.scaling, obs, metrics, now, state.autoscaler, name)
    desired = scaled.desired if cap is None else max(0, min(scaled.desired, cap))
    newly_lost = [p for p in live if p.name in hit and p.name not in state.lost_seen]
    by_pool = {pool: [p for p in healthy if p.pool == pool] for pool in (ON_DEMAND, SPOT)}
    pools = plan_pools(
        desired, params.capacity.spot, tier.spot_allowed and spot_available,
        _pool_obs(by_pool[ON_DEMAND], 0),
        _pool_obs(by_pool[SPOT], sum(1 for p in newly_lost if p.pool == SPOT)),
        now, state.capacity)
    conditions = pools.conditions + (_slo_condition(scaled),)
    fresh = {p.name for p in newly_lost}
    notes = tuple(n for n in interruptions.notes if n.reason == EventReason.DRAINING or n.pod in fresh)
    events = _events(name, obs.current, desired, scaled, notes)
    new_state = ScalingState(desired=desired, autoscaler=scaled.state, capacity=pools.state,
                             lost_seen=tuple(sorted(hit)))
    return CapacityDecision(
        counts=PoolCounts(on_demand=pools.on_demand, spot=pools.spot), desired=desired,
        wanted=scaled.desired, reason=scaled.reason,
        conditions=conditions, events=events, drain=interruptions.drain,
        deletion_costs=interruptions.deletion_costs, state=new_state,
        metrics_status=None if metrics is None else metrics.to_status(),
        metrics_live=metrics is not None and not metrics.stale)


def _slo_condition(scaled) -> Condition:
    if scaled.slo_at_risk:
        return Condition.of(SLO_AT_RISK, True, Reason.SLO_AT_RISK, scaled.reason)
    return Condition.of(SLO_AT_RISK, False, Reason.WITHIN_SLO, scaled.reason)


def _events(name: str, current: int, desired: int, scaled, notes) -> tuple[Event, ...]:
    """Interruption notes (each once), then the size change with its reason."""
    events = [Event(NORMAL, note.reason, note.message) for note in notes]
    if desired != current and desired == scaled.desired:
        events.append(Event(NORMAL, EventReason.SCALED, scaled.reason))
    elif desired != current:
        why = f" ({scaled.reason})" if scaled.desired != current else ""
        events.append(Event(NORMAL, EventReason.SCALED, f"Scaled {name} {current} -> {desired}: the tier arbiter "
                                                        f"grants {desired} of {scaled.desired} wanted replica(s){why}"))
    return tuple(events)
