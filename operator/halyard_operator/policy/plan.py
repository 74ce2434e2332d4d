"""The one entry point reconcile calls: `plan_capacity(...)` -> pool replica counts.

Pure: (spec, observed pods and nodes, metrics, clock, previous state) ->
CapacityDecision. It runs the interruption handler on the pods, then the
decision function the simulator also calls (`policy.decide.decide_capacity`:
autoscaler and capacity planner). The state it needs between reconciles is a small JSON
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
from halyard_operator.names import NORMAL, EventReason
from halyard_operator.policy.autoscaler import AutoscalerState
from halyard_operator.policy.capacity import CapacityState, PoolObservation
from halyard_operator.policy.decide import CapacityObservation, decide_capacity
from halyard_operator.policy.interruption import PodInfo, plan_interruptions
from halyard_operator.policy.params import params_from_spec
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
    is min(autoscaler's desired, cap). Pods and nodes become a
    `CapacityObservation`, decided by `decide_capacity` (what the simulator calls).
    """
    params = params_from_spec(name, spec)
    live = tuple(p for p in pods if not p.deleting)
    current = state.desired if state.desired is not None else params.scaling.min_replicas
    interruptions = plan_interruptions(nodes, tuple(PodInfo(p.name, p.node, p.ready, p.load) for p in live), current)
    hit = set(interruptions.interrupted_pods)
    healthy = [p for p in live if p.name not in hit]
    newly_lost = [p for p in live if p.name in hit and p.name not in state.lost_seen]
    seen = CapacityObservation(
        current=current,
        on_demand=_pool_obs([p for p in healthy if p.pool == ON_DEMAND], 0),
        spot=_pool_obs([p for p in healthy if p.pool == SPOT], sum(1 for p in newly_lost if p.pool == SPOT)))
    choice = decide_capacity(params, tier.spot_allowed and spot_available, seen, metrics, now,
                             state.autoscaler, state.capacity, cap)
    fresh = {p.name for p in newly_lost}
    notes = tuple(n for n in interruptions.notes if n.reason == EventReason.DRAINING or n.pod in fresh)
    new_state = ScalingState(desired=choice.desired, autoscaler=choice.autoscaler, capacity=choice.capacity,
                             lost_seen=tuple(sorted(hit)))
    return CapacityDecision(
        counts=choice.counts, desired=choice.desired, wanted=choice.wanted, reason=choice.reason,
        conditions=choice.conditions, events=_events(name, current, choice.desired, choice.scaled, notes),
        drain=interruptions.drain, deletion_costs=interruptions.deletion_costs, state=new_state,
        metrics_status=None if metrics is None else metrics.to_status(),
        metrics_live=metrics is not None and not metrics.stale)


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
