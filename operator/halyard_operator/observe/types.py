"""Typed observations of the cluster (frozen; stdlib only).

The policies (`halyard_operator.policy`), the metrics hub and the simulator
take these and never a Kubernetes dict; `observe.read` makes them.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Mapping


@dataclass(frozen=True, slots=True)
class NodeInfo:
    """A Node: name, taint keys and annotations (interruption notices), labels
    (pool placement), allocatable GPUs, and whether it takes new pods."""

    name: str
    taint_keys: tuple[str, ...] = ()
    annotations: Mapping[str, str] = field(default_factory=dict)
    labels: Mapping[str, str] = field(default_factory=dict)
    gpus: int = 0  # allocatable nvidia.com/gpu
    schedulable: bool = True  # not cordoned (spec.unschedulable)


@dataclass(frozen=True, slots=True)
class ContainerState:
    """One container of a worker pod as its kubelet reports it (containerStatuses[]).

    waiting_*: `state.waiting` (e.g. CrashLoopBackOff, ImagePullBackOff), empty when not waiting;
    last_*: `lastState.terminated` of the previous run (exit code, reason such as Error or
    OOMKilled, and the termination message), None/empty when it has not exited."""

    name: str
    ready: bool = False
    restarts: int = 0
    waiting_reason: str = ""
    waiting_message: str = ""
    last_exit_code: int | None = None
    last_reason: str = ""
    last_message: str = ""


@dataclass(frozen=True, slots=True)
class ObservedPod:
    """A worker pod. `pool`: "ondemand" | "spot" (the halyard.dev/pool label);
    `age_s`: seconds since creation; `scheduled`: past phase Pending (a pod still
    loading its model is scheduled but not ready); `load`: running + waiting requests;
    `ip`: the pod IP (None until assigned); `deletion_cost`: the current
    pod-deletion-cost annotation (None when absent); `draining`: the
    halyard.dev/draining annotation (None when absent); `containers`: the kubelet's
    init container then container states; `unschedulable`: the scheduler's message
    while PodScheduled is False with reason Unschedulable (else None), for
    `unschedulable_s` seconds."""

    name: str
    pool: str
    node: str | None
    ready: bool
    age_s: float
    scheduled: bool = True
    deleting: bool = False
    load: float | None = None
    ip: str | None = None
    deletion_cost: str | None = None
    containers: tuple[ContainerState, ...] = ()
    unschedulable: str | None = None
    unschedulable_s: float = 0.0
    draining: str | None = None  # the halyard.dev/draining annotation (routers skip the pod)


@dataclass(frozen=True, slots=True)
class PodSnapshot:
    """A worker pod as its last watch event showed it, kept in the operator's
    index; `at(now)` is the ObservedPod with its ages taken at `now` (epoch s).
    `pod.age_s` and `pod.unschedulable_s` are 0 here; `created` and
    `unschedulable_since` are epoch seconds (None: not known, age 0)."""

    pod: ObservedPod
    created: float | None = None
    unschedulable_since: float | None = None

    def at(self, now: float) -> ObservedPod:
        age = max(0.0, now - self.created) if self.created is not None else 0.0
        if self.pod.unschedulable is None or self.unschedulable_since is None:
            return replace(self.pod, age_s=age)
        return replace(self.pod, age_s=age, unschedulable_s=max(0.0, now - self.unschedulable_since))


@dataclass(frozen=True, slots=True)
class GpuClaim:
    """GPUs a live pod outside Halyard requests on a node (the tier budget subtracts them)."""

    node: str
    gpus: int


@dataclass(frozen=True)
class Observed:
    """Live state relevant to one LLMDeployment.

    children: (kind, name) -> live object, only those that exist (kept as
      objects: writes are diffed against them and status counts read from them).
    nodes: every Node, or None when nodes cannot be listed (no permission).
    missing_secrets: imagePullSecrets named in the spec that do not exist.
    pods: the worker pods of this LLMDeployment (label halyard.dev/deployment).
    """

    children: Mapping[tuple[str, str], dict] = field(default_factory=dict)
    nodes: tuple[NodeInfo, ...] | None = None
    missing_secrets: tuple[str, ...] = ()
    pods: tuple[ObservedPod, ...] = ()
