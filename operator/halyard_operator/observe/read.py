"""Kubernetes API dicts -> typed observations (pure)."""
from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Iterable, Mapping

from halyard_operator.builders.pools import ON_DEMAND
from halyard_operator.names import (
    DELETION_COST_ANNOTATION, DEPLOYMENT_LABEL, DRAINING_ANNOTATION, GPU_RESOURCE, POOL_LABEL,
)
from halyard_operator.observe.types import ContainerState, GpuClaim, NodeInfo, Observed, ObservedPod, PodSnapshot


def _gpus(resources: Mapping | None) -> int:
    try:
        return int(str((resources or {}).get(GPU_RESOURCE, 0)))
    except ValueError:
        return 0


def _ready(status: Mapping) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or ())


def read_node(obj: Mapping) -> NodeInfo:
    """A Node object (API dict or kopf body) -> NodeInfo."""
    meta, spec = obj.get("metadata") or {}, obj.get("spec") or {}
    return NodeInfo(
        name=meta.get("name", ""),
        taint_keys=tuple(t.get("key", "") for t in spec.get("taints") or []),
        annotations=dict(meta.get("annotations") or {}),
        labels=dict(meta.get("labels") or {}),
        gpus=_gpus((obj.get("status") or {}).get("allocatable")),
        schedulable=not spec.get("unschedulable"),
    )


def _epoch(stamp: str | None) -> float | None:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp() if stamp else None


def snapshot_pod(obj: Mapping) -> PodSnapshot:
    """A worker Pod object -> PodSnapshot (ages are taken later, at each read)."""
    meta, status = obj.get("metadata") or {}, obj.get("status") or {}
    annotations = meta.get("annotations") or {}
    message, since = _unschedulable(status)
    pod = ObservedPod(
        name=meta.get("name", ""), pool=(meta.get("labels") or {}).get(POOL_LABEL, ON_DEMAND),
        node=(obj.get("spec") or {}).get("nodeName"), ready=_ready(status), age_s=0.0,
        scheduled=status.get("phase", "Pending") != "Pending",
        deleting=meta.get("deletionTimestamp") is not None,
        ip=status.get("podIP") or None,
        deletion_cost=annotations.get(DELETION_COST_ANNOTATION),
        draining=annotations.get(DRAINING_ANNOTATION),
        containers=tuple(read_container(c) for c in (*(status.get("initContainerStatuses") or ()),
                                                      *(status.get("containerStatuses") or ()))),
        unschedulable=message)
    return PodSnapshot(pod, created=_epoch(meta.get("creationTimestamp")), unschedulable_since=since)


def read_pod(obj: Mapping, now: float) -> ObservedPod:
    """A worker Pod object -> ObservedPod. `now`: epoch seconds (a missing timestamp counts as now)."""
    snap = snapshot_pod(obj)
    return replace(snap, created=snap.created if snap.created is not None else now,
                   unschedulable_since=snap.unschedulable_since if snap.unschedulable_since is not None
                   else now).at(now)


def read_container(status: Mapping) -> ContainerState:
    """A containerStatuses[] entry -> ContainerState."""
    waiting = (status.get("state") or {}).get("waiting") or {}
    last = (status.get("lastState") or {}).get("terminated") or {}
    return ContainerState(
        name=status.get("name", ""), ready=bool(status.get("ready")), restarts=int(status.get("restartCount") or 0),
        waiting_reason=waiting.get("reason") or "", waiting_message=waiting.get("message") or "",
        last_exit_code=last.get("exitCode"), last_reason=last.get("reason") or "",
        last_message=(last.get("message") or "").strip())


def _unschedulable(status: Mapping) -> tuple[str | None, float | None]:
    """The scheduler's verdict while it cannot place the pod, and since when (epoch s)."""
    cond = next((c for c in status.get("conditions") or () if c.get("type") == "PodScheduled"), None)
    if not cond or cond.get("status") != "False" or cond.get("reason") != "Unschedulable":
        return None, None
    return cond.get("message") or "the scheduler found no node", _epoch(cond.get("lastTransitionTime"))


def pod_gpus(pod: Mapping) -> int:
    """GPUs the pod's containers request (limits when no requests are given)."""
    return sum(_gpus((c.get("resources") or {}).get("requests") or (c.get("resources") or {}).get("limits"))
               for c in (pod.get("spec") or {}).get("containers") or ())


def read_gpu_claims(pods: Iterable[Mapping]) -> tuple[GpuClaim, ...]:
    """GPUs requested by live, bound pods outside Halyard (any namespace)."""
    claims = []
    for pod in pods:
        meta, spec = pod.get("metadata") or {}, pod.get("spec") or {}
        if DEPLOYMENT_LABEL in (meta.get("labels") or {}) or not spec.get("nodeName"):
            continue
        if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
            continue
        gpus = pod_gpus(pod)
        if gpus:
            claims.append(GpuClaim(spec["nodeName"], gpus))
    return tuple(claims)


def read_observed(now: float, children: Mapping[tuple[str, str], dict] | None = None,
                  nodes: Iterable[Mapping] | None = None, pods: Iterable[Mapping] = (),
                  missing_secrets: Iterable[str] = ()) -> Observed:
    """Everything observed about one LLMDeployment. `nodes=None`: nodes could not be listed."""
    return Observed(children=dict(children or {}),
                    nodes=None if nodes is None else tuple(map(read_node, nodes)),
                    missing_secrets=tuple(missing_secrets),
                    pods=tuple(read_pod(p, now) for p in pods))
