"""The scaling step of a reconcile: policies in, pool sizes and side effects out.

`decide()` is pure: observed pods, nodes and serving metrics plus the state
kept in the `halyard.dev/scaling-state` annotation go through
`policy.plan_capacity` (interruptions, autoscaler, spot planner), and the
deployment's size is capped by the tier arbiter's grant. `apply_decision()`
carries out what the decision asks for that is not a child object: the state
annotation, draining interrupted pods, pod-deletion costs and Events.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from typing import Callable

from halyard_operator.api import LLMDeploymentSpec
from halyard_operator.builders.meta import Owner
from halyard_operator.config import OperatorConfig
from halyard_operator.kube.client import KubeClient
from halyard_operator.names import (
    CAPACITY_CONSTRAINED, DELETION_COST_ANNOTATION, DRAINING_ANNOTATION, STATE_ANNOTATION,
)
from halyard_operator.observe import GpuClaim, Observed, by_name
from halyard_operator.policy import CapacityDecision, ScalingState, plan_capacity
from halyard_operator.policy.interruption import COST_INTERRUPTED
from halyard_operator.policy.tiers import Demand
from halyard_operator.reconcile.fleet import FleetBook, foreign_gpus, usable_gpu_nodes, usable_gpus
from halyard_operator.signals.types import DeploymentMetrics

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ScalingInputs:
    """Everything `decide` reads besides the spec and the observed objects."""

    metrics: DeploymentMetrics | None
    loads: dict  # pod name -> running + waiting requests (last scrape)
    now: float
    state: ScalingState
    gpu_claims: tuple[GpuClaim, ...]  # GPUs used outside Halyard; () when unknown
    demand_floor: int | None = None  # replicas the routers' demand needs (minReplicas 0 only); None: unknown
    alive: Callable[[str], bool] | None = None  # does the deployment with this key_of() still exist? None: unknown


def key_of(owner: Owner) -> str:
    return f"{owner.namespace}/{owner.name}"


def with_demand(spec: LLMDeploymentSpec, floor: int | None) -> tuple[LLMDeploymentSpec, int | None]:
    """Scale from zero: a `minReplicas: 0` deployment whose routers hold or serve
    requests (or saw one within the scale-down window) is sized with minReplicas
    raised to `floor`; one idle for the window is capped at 0. Returns (spec for
    the policies, cap)."""
    if spec.scaling is None or spec.scaling.min_replicas != 0 or floor is None:
        return spec, None
    if floor > 0:
        return replace(spec, scaling=replace(spec.scaling, min_replicas=min(floor, spec.scaling.max_replicas))), None
    return spec, 0


def decide(owner: Owner, spec: LLMDeploymentSpec, config: OperatorConfig, spot_available: bool,
           observed: Observed, inputs: ScalingInputs, book: FleetBook) -> CapacityDecision:
    """The deployment's size per pool now, capped by its tier's grant of GPUs."""
    key, tier = key_of(owner), config.tiers[spec.tier]
    spec, zero = with_demand(spec, inputs.demand_floor)
    pods = tuple(replace(p, load=inputs.loads.get(p.name)) for p in observed.pods)
    nodes = by_name(observed.nodes or ())
    metrics = inputs.metrics if spec.scaling is not None else None
    first = plan_capacity(key, spec, tier, spot_available, pods, nodes, metrics, inputs.now, inputs.state, cap=zero)
    if zero is not None:
        return first
    usable = usable_gpu_nodes(observed.nodes or (), spec.resources.gpu_product)
    if not usable:  # nodes unknown (no permission) or none yet: the scheduler decides alone
        return first
    budget = usable_gpus(observed.nodes or (), spec.resources.gpu_product) - foreign_gpus(inputs.gpu_claims, usable)
    running = sum(1 for p in pods if p.node in usable and not p.deleting)
    minimum = spec.scaling.min_replicas if spec.scaling is not None else first.wanted
    demand = Demand(key, spec.tier, spec.resources.gpus, min(minimum, first.wanted), first.wanted, running)
    grant = book.grant(key, spec.resources.gpu_product, demand, budget, config.tiers, now=inputs.now,
                       alive=inputs.alive)
    if grant.granted >= first.desired:
        return first
    capped = plan_capacity(key, spec, tier, spot_available, pods, nodes, metrics, inputs.now, inputs.state,
                           cap=grant.granted)
    conditions = tuple(c for c in capped.conditions if c.type != CAPACITY_CONSTRAINED) + (grant.condition,)
    return replace(capped, conditions=conditions)


def pod_annotations(cost: int) -> dict[str, str]:
    """A worker pod's deletion cost; a pod on an interrupted node (the lowest
    cost) is also marked draining, so routers stop sending it requests at once."""
    out = {DELETION_COST_ANNOTATION: str(cost)}
    if cost == COST_INTERRUPTED:
        out[DRAINING_ANNOTATION] = "node-interruption"
    return out


async def apply_decision(kube: KubeClient, body: dict, decision: CapacityDecision, observed: Observed,
                         events) -> int:
    """State annotation (on change), drains, deletion costs (on change), Events; returns the pods drained."""
    meta = body["metadata"]
    ns, name = meta["namespace"], meta["name"]
    state = decision.state.to_json()
    if (meta.get("annotations") or {}).get(STATE_ANNOTATION) != state:
        await kube.patch("LLMDeployment", name, ns, {"metadata": {"annotations": {STATE_ANNOTATION: state}}})
    live = {p.name: p for p in observed.pods if not p.deleting}
    drained = 0
    for pod in decision.drain:
        if pod in live and await kube.delete("Pod", pod, ns):
            log.info("Draining pod %s/%s", ns, pod)
            drained += 1
    for pod, cost in decision.deletion_costs.items():
        wanted = pod_annotations(cost)
        current = {DELETION_COST_ANNOTATION: live[pod].deletion_cost, DRAINING_ANNOTATION: live[pod].draining} \
            if pod in live else {}
        if pod in live and pod not in decision.drain and any(current.get(k) != v for k, v in wanted.items()):
            await kube.patch("Pod", pod, ns, {"metadata": {"annotations": wanted}})
    for type_, reason, message in decision.events:
        log.info("%s/%s: %s", ns, name, message)
        events(body, type_, reason, message)
    return drained
