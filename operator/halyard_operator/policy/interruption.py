"""Node interruption handling: detect notices, keep capacity, drain, order scale-downs.

Pure. A node is interrupted when it carries one of INTERRUPTION_TAINTS, or the
generic `halyard.dev/interruption` taint or annotation (any value; for the
annotation "false"/"" means no). Then, per pod:
  1. pods on interrupted nodes stop counting as ready capacity, so the
     autoscaler/capacity planner request replacements at once;
  2. HARD notices (the node goes away soon: spot interruption, impending
     termination, Karpenter disruption, ASG termination, generic) drain now:
     the pod is deleted, and the worker's SIGTERM drain finishes in-flight
     requests within the termination grace period;
     SOFT notices (rebalance recommendation, scheduled maintenance) drain only
     once the deployment's healthy Ready replicas cover its desired count;
  3. every pod gets a `controller.kubernetes.io/pod-deletion-cost` so a
     scale-down removes interrupted pods first, then not-Ready, then the
     least-loaded.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, NamedTuple

from halyard_operator.names import INTERRUPTION_KEY, EventReason
from halyard_operator.observe.types import NodeInfo

# taint key -> (source, hard?)
INTERRUPTION_TAINTS: dict[str, tuple[str, bool]] = {
    "karpenter.sh/disrupted": ("Karpenter disruption", True),
    "karpenter.sh/disruption": ("Karpenter disruption", True),
    "aws-node-termination-handler/spot-itn": ("AWS spot interruption notice", True),
    "aws-node-termination-handler/asg-lifecycle-termination": ("AWS ASG lifecycle termination", True),
    "aws-node-termination-handler/rebalance-recommendation": ("AWS rebalance recommendation", False),
    "aws-node-termination-handler/scheduled-maintenance": ("AWS scheduled maintenance", False),
    "cloud.google.com/impending-node-termination": ("GKE impending node termination", True),
    INTERRUPTION_KEY: (INTERRUPTION_KEY, True),
}

COST_INTERRUPTED = -1000
COST_NOT_READY = -500


@dataclass(frozen=True)
class Interruption:
    """Why a node is going away. `hard`: drain now; soft: drain after replacement is Ready."""

    node: str
    source: str
    hard: bool


@dataclass(frozen=True)
class PodInfo:
    """A worker pod. `load`: running + waiting requests (None when unknown)."""

    name: str
    node: str | None
    ready: bool
    load: float | None = None


class Note(NamedTuple):
    """What happens to one interrupted pod: `reason` is EventReason.DRAINING
    (deleted now) or EventReason.INTERRUPTION (kept until replaced)."""

    pod: str
    reason: str
    message: str


@dataclass(frozen=True)
class InterruptionPlan:
    """What to do. Invariants: every pod in `drain` is in `interrupted_pods`;
    `deletion_costs` has one entry per pod; interrupted pods cost the least;
    one note per interrupted pod."""

    interrupted_pods: tuple[str, ...]
    drain: tuple[str, ...]
    deletion_costs: Mapping[str, int]
    notes: tuple[Note, ...]

    @property
    def messages(self) -> tuple[str, ...]:
        return tuple(note.message for note in self.notes)


def detect(node: NodeInfo) -> Interruption | None:
    """The node's interruption notice, if any (hard notices win over soft ones)."""
    found = [INTERRUPTION_TAINTS[key] for key in node.taint_keys if key in INTERRUPTION_TAINTS]
    note = node.annotations.get(INTERRUPTION_KEY)
    if note is not None and note.strip().lower() not in ("", "false"):
        found.append(INTERRUPTION_TAINTS[INTERRUPTION_KEY])
    if not found:
        return None
    source, hard = max(found, key=lambda item: item[1])
    return Interruption(node=node.name, source=source, hard=hard)


def _cost(pod: PodInfo, interrupted: bool) -> int:
    if interrupted:
        return COST_INTERRUPTED
    if not pod.ready:
        return COST_NOT_READY
    return int(round(pod.load or 0.0))


def plan_interruptions(nodes: Mapping[str, NodeInfo], pods: tuple[PodInfo, ...], desired: int) -> InterruptionPlan:
    """Decide drains and deletion costs for one deployment's pods.

    `desired`: the replica count the deployment should serve with (soft
    notices wait until this many healthy pods are Ready).
    """
    notices = {pod.node: detect(nodes[pod.node]) for pod in pods if pod.node in nodes}
    hit = {pod.name: notices.get(pod.node) for pod in pods if pod.node and notices.get(pod.node)}
    healthy_ready = sum(1 for pod in pods if pod.ready and pod.name not in hit)
    replaced = healthy_ready >= desired
    drain, notes = [], []
    for pod in pods:
        notice = hit.get(pod.name)
        if notice is None:
            continue
        if notice.hard or replaced:
            drain.append(pod.name)
            notes.append(Note(pod.name, EventReason.DRAINING,
                              f"Draining pod {pod.name}: node {notice.node} has {notice.source}"))
        else:
            notes.append(Note(pod.name, EventReason.INTERRUPTION, f"Keeping pod {pod.name} until its "
                              f"replacement is Ready: node {notice.node} has {notice.source}"))
    costs = {pod.name: _cost(pod, pod.name in hit) for pod in pods}
    return InterruptionPlan(tuple(hit), tuple(drain), costs, tuple(notes))
